//! The lake: where things live (partition layout; a local directory or S3, `objects.rs`), what
//! the files hold (schema), which files a table holds (each table is a Delta Lake table:
//! `delta.rs`), scanning them lazily with polars, and writing and committing new files.
//!
//! Architecture invariant: a table is exactly the files its Delta log's snapshot lists; data
//! files are immutable, written under their final names and invisible until the one commit that
//! adds them, so a reader sees a change whole or not at all.

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
pub mod rollup;
pub mod scanned;
pub mod schema;
pub mod services;
pub mod wal;
pub mod writer;

pub use error::StoreError;
pub use lake::{DataFile, Lake};
pub use layout::{PartitionFilter, PartitionKey, Table};
