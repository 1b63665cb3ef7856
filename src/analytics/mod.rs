//! Polars lazy queries that turn the lake into results (typed structs). One file per capability;
//! each builds its plan in one place and collects once. Knows nothing of GraphQL or HTTP.
//!
//! Architecture invariant: statistics are never computed here. Queries reduce rows to
//! sufficient statistics (counts, sums of weights, ...) per group in one pass; `crate::stats`
//! turns those into estimates and intervals.

pub mod benchmark;
pub mod catalog;
pub mod drivers;
pub mod filter;
pub mod grouping;
pub mod responses;
pub mod scores;
pub mod suppression;
pub mod trends;

pub use catalog::Catalog;
pub use filter::Filter;
pub use grouping::GroupKey;
pub use scores::{ScoreRow, ScoresQuery, ScoresResult};

use crate::store::{Lake, StoreError};
use polars::prelude::PolarsError;

/// Errors of an analytical query, each naming what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// The caller asked for something invalid; `field` names the argument.
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("query failed: {0}")]
    Polars(#[from] PolarsError),
    /// A data file of the lake cannot be read; other partitions still answer.
    #[error("data file '{path}' of the lake is unreadable: {reason}")]
    CorruptFile { path: String, reason: String },
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    #[error("query task failed: {0}")]
    Task(String),
}

impl AnalyticsError {
    pub fn invalid(field: &str, message: String) -> Self {
        AnalyticsError::Invalid { field: field.to_string(), message }
    }
}

/// The lake and its catalog of known codes: what every query runs against.
#[derive(Debug, Clone)]
pub struct Analytics {
    pub lake: Lake,
    pub catalog: Catalog,
    /// Minimum cell sizes applied to every result.
    pub suppression: suppression::Suppression,
}

impl Analytics {
    /// Opens the analytics over `lake`, reading its catalog. Blocking: call it outside async
    /// worker threads (or in `spawn_blocking`).
    pub fn open(lake: Lake) -> Result<Analytics, AnalyticsError> {
        let catalog = Catalog::load(&lake)?;
        Ok(Analytics { lake, catalog, suppression: suppression::Suppression::default() })
    }

    /// The same analytics with other minimum cell sizes.
    pub fn with_suppression(self, suppression: suppression::Suppression) -> Analytics {
        Analytics { suppression, ..self }
    }

    /// Turns a failed scan of `files` into an error naming the unreadable file, when one is.
    pub(crate) fn explain_failure(&self, files: &[crate::store::DataFile], error: AnalyticsError) -> AnalyticsError {
        match error {
            AnalyticsError::Polars(_) => match self.lake.find_unreadable(files) {
                Some((path, reason)) => {
                    tracing::error!(%path, %reason, "unreadable data file");
                    AnalyticsError::CorruptFile { path, reason }
                }
                None => error,
            },
            other => other,
        }
    }

    /// Runs blocking polars work off the async runtime.
    pub(crate) async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, AnalyticsError> + Send + 'static,
    ) -> Result<T, AnalyticsError> {
        tokio::task::spawn_blocking(f).await.map_err(|e| AnalyticsError::Task(e.to_string()))?
    }
}
