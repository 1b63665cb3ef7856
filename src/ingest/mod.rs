//! Getting data in: readers of outside files, with errors that name the file, line and column.

pub mod numeric_csv;

/// Errors of reading input files, each naming the file and where in it.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read '{path}': {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: line {line}: {message}")]
    Malformed { path: String, line: u64, message: String },
    #[error("{path}: no column '{column}' (columns: {available})")]
    MissingColumn { path: String, column: String, available: String },
    #[error("{path}: line {line}, column '{column}': '{value}' is not a number")]
    NotNumeric { path: String, line: u64, column: String, value: String },
}
