//! The lake: where things live (partition layout; a local directory or S3, `objects.rs`), what
//! the files hold (schema), finding the files a query needs (listing with partition pruning,
//! through object_store), scanning them lazily with polars, and writing new files atomically.
//!
//! Architecture invariant: data files are immutable once visible. A file appears under its
//! final name only when complete (write to a hidden temporary name, fsync, rename); nothing
//! rewrites or appends to a visible file. Per-file side data (rollups of sufficient
//! statistics) will live beside the data under `_side/`, keyed by the data file's path.

pub mod batch;
pub mod commit;
pub mod compact;
pub mod delta;
pub mod error;
pub mod export;
pub mod lake;
pub mod layout;
pub mod lease;
pub mod migrate;
pub mod objects;
pub mod observations;
pub mod quarantine;
pub mod scanned;
pub mod schema;
pub mod services;
pub mod wal;
pub mod writer;

pub use error::StoreError;
pub use lake::{DataFile, Lake};
pub use layout::{PartitionFilter, PartitionKey, Table};
