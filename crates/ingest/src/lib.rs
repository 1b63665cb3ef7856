//! Getting data in: readers of outside files (the lake's own columns as CSV, JSON lines or
//! Parquet, and Touchpoints A-11 exports), one parser and the domain's validation rules for
//! every row, quarantine of what fails, staging, deduplication and atomic publication, and the
//! real-time submit path with its durable log. Errors name the file, line and column.

pub mod fields;
pub mod formats;
pub mod numeric_csv;
pub mod observations;
pub mod pipeline;
pub mod records;
pub mod services;
pub mod stage;
pub mod submit;

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
    #[error("mapping: {message}")]
    Mapping { message: String },
    #[error(transparent)]
    Store(#[from] cx_lake::StoreError),
}
