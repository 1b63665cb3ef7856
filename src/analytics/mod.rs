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
pub mod hisp;
pub mod grouping;
pub mod observations;
pub mod responses;
pub mod scores;
pub mod suppression;
pub mod tapped;
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
    /// The caller stopped waiting (the request ended or timed out): the work was abandoned.
    #[error("the query was cancelled")]
    Cancelled,
}

/// Set when the caller of a blocking job stops waiting for it (its future was dropped: the
/// request was cancelled or hit the time limit). Long work checks it between steps and stops;
/// a polars scan already running completes first (polars offers no way to interrupt it).
#[derive(Clone, Default, Debug)]
pub struct Cancel(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once the caller is gone.
    pub fn check(&self) -> Result<(), AnalyticsError> {
        if self.is_cancelled() {
            return Err(AnalyticsError::Cancelled);
        }
        Ok(())
    }

    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed)
    }
}

/// Cancels when dropped (with the future awaiting the job).
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
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
    /// The catalog and the lake version it was read at; shared by clones, reread by
    /// `refresh` when the lake moves on (the inventory is editable).
    catalog: std::sync::Arc<std::sync::RwLock<(u64, std::sync::Arc<Catalog>)>>,
    /// Minimum cell sizes applied to every result.
    pub suppression: suppression::Suppression,
}

impl Analytics {
    /// Opens the analytics over `lake`, reading its catalog. Blocking: call it outside async
    /// worker threads (or in `spawn_blocking`).
    pub fn open(lake: Lake) -> Result<Analytics, AnalyticsError> {
        let version = crate::store::commit::lake_version(&lake)?;
        let catalog = std::sync::Arc::new(Catalog::load(&lake)?);
        Ok(Analytics {
            lake,
            catalog: std::sync::Arc::new(std::sync::RwLock::new((version, catalog))),
            suppression: suppression::Suppression::default(),
        })
    }

    /// The lake's catalog (codes, services, offices) as last read.
    pub fn catalog(&self) -> std::sync::Arc<Catalog> {
        self.catalog.read().unwrap_or_else(|e| e.into_inner()).1.clone()
    }

    /// The lake version the catalog was read at.
    pub fn catalog_version(&self) -> u64 {
        self.catalog.read().unwrap_or_else(|e| e.into_inner()).0
    }

    /// Rereads the catalog if it was read at another version than `version`; whether it did.
    /// Blocking.
    pub fn refresh(&self, version: u64) -> Result<bool, AnalyticsError> {
        if self.catalog_version() == version {
            return Ok(false);
        }
        let fresh = std::sync::Arc::new(Catalog::load(&self.lake)?);
        *self.catalog.write().unwrap_or_else(|e| e.into_inner()) = (version, fresh);
        Ok(true)
    }

    /// The same analytics with other minimum cell sizes.
    pub fn with_suppression(self, suppression: suppression::Suppression) -> Analytics {
        Analytics { suppression, ..self }
    }

    /// Turns a failed scan of `files` into an error naming the unreadable file, when one is.
    /// The search may decode every file (`Lake::find_unreadable`): on a multi-threaded runtime
    /// the async worker hands its other tasks over meanwhile (`block_in_place`).
    pub(crate) fn explain_failure(&self, files: &[crate::store::DataFile], error: AnalyticsError) -> AnalyticsError {
        let find = || self.lake.find_unreadable(files);
        let multi_thread = tokio::runtime::Handle::try_current().is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        match error {
            AnalyticsError::Polars(_) => match if multi_thread { tokio::task::block_in_place(find) } else { find() } {
                Some((path, reason)) => {
                    tracing::error!(%path, %reason, "unreadable data file");
                    AnalyticsError::CorruptFile { path, reason }
                }
                None => error,
            },
            other => other,
        }
    }

    /// Runs blocking polars work off the async runtime. The job gets a `Cancel` that is set
    /// if this future is dropped before the job ends.
    pub(crate) async fn blocking<T: Send + 'static>(
        f: impl FnOnce(&Cancel) -> Result<T, AnalyticsError> + Send + 'static,
    ) -> Result<T, AnalyticsError> {
        let cancel = Cancel::default();
        let _guard = CancelOnDrop(cancel.clone());
        tokio::task::spawn_blocking(move || {
            let result = f(&cancel);
            if matches!(result, Err(AnalyticsError::Cancelled)) {
                tracing::info!("abandoned query stopped");
            }
            result
        })
        .await
        .map_err(|e| AnalyticsError::Task(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_job_whose_caller_stops_waiting_is_cancelled() {
        let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = stopped.clone();
        let job = Analytics::blocking(move |cancel| {
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_secs(30) {
                if let Err(e) = cancel.check() {
                    seen.store(true, std::sync::atomic::Ordering::SeqCst);
                    return Err::<(), _>(e);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Ok(())
        });
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), job).await.is_err());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !stopped.load(std::sync::atomic::Ordering::SeqCst) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(stopped.load(std::sync::atomic::Ordering::SeqCst), "the abandoned job did not stop");
        // A job that completes is not cancelled.
        assert_eq!(Analytics::blocking(|cancel| cancel.check().map(|_| 7)).await.unwrap(), 7);
    }
}
