//! The one error of the lake crate.

/// Errors of the store, each naming the lake path or file involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no lake at '{path}': {reason}")]
    NotALake { path: String, reason: String },
    #[error("I/O error on '{path}': {source}")]
    Io { path: String, source: std::io::Error },
    #[error("cannot write '{path}': {reason}")]
    Write { path: String, reason: String },
    #[error("cannot read '{path}': {reason}")]
    Read { path: String, reason: String },
    #[error("'{path}' is in use by another process ({holder})")]
    InUse { path: String, holder: String },
    #[error("object store error on '{path}': {reason}")]
    Object { path: String, reason: String },
    /// A data file of the lake cannot be read (footer, schema, or a page that does not decode).
    #[error("data file '{path}' of the lake is unreadable: {reason}")]
    Corrupt { path: String, reason: String },
}
