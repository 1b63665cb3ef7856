//! Polars lazy queries that turn the lake into results (typed structs). One file per capability;
//! each builds its plan in one place and collects once. Knows nothing of GraphQL or HTTP.
//!
//! Architecture invariant: statistics are never computed here. Queries reduce rows to
//! sufficient statistics (counts, sums of weights, ...) per group in one pass; `cx_stats`
//! turns those into estimates and intervals.

pub mod benchmark;
pub mod catalog;
pub mod cellkey;
pub mod drivers;
pub mod filter;
pub mod grouping;
pub mod hisp;
pub mod observations;
pub mod responses;
pub mod rollups;
pub mod scores;
pub mod suppression;
pub mod tapped;
pub mod trends;

pub use catalog::Catalog;
pub use filter::Filter;
pub use grouping::GroupKey;
pub use scores::{ScoreRow, ScoresQuery, ScoresResult};

use cx_lake::{Lake, StoreError};
use polars::prelude::{polars_bail, LazyFrame, OptFlags, PolarsError};

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
    #[error("query task failed: {0}")]
    Task(String),
    /// The caller stopped waiting (the request ended or timed out): the work was abandoned.
    #[error("the query was cancelled")]
    Cancelled,
    /// Too many queries of this weight are running and waiting: try again later.
    #[error("the server is busy: {running} {weight} queries are running and {queued} waiting, the most it queues; try again shortly")]
    Busy { weight: &'static str, running: usize, queued: usize },
    /// The answer would hold more groups than a query may return.
    #[error("the query would return {groups} groups; at most {max} are returned (group by fewer dimensions, a coarser period or a narrower filter)")]
    TooManyGroups { groups: usize, max: usize },
}

/// Set when the caller of a blocking job stops waiting for it (its future was dropped: the
/// request was cancelled or hit the time limit). Long work checks it between steps and stops;
/// polars plans check it on every batch of rows they stream (`gated`).
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

/// `lf` with a check of `cancel` on every batch of rows streaming through it: a plan built on
/// the gated scan fails within one batch once its caller is gone (polars has no other way to
/// interrupt a running query). The check passes filters and projections through, so pruning
/// and pushdown are unchanged.
pub(crate) fn gated(lf: LazyFrame, cancel: &Cancel) -> LazyFrame {
    let cancel = cancel.clone();
    lf.map(
        move |df| {
            if cancel.is_cancelled() {
                polars_bail!(ComputeError: "the query was cancelled");
            }
            Ok(df)
        },
        OptFlags::PREDICATE_PUSHDOWN | OptFlags::PROJECTION_PUSHDOWN | OptFlags::STREAMING,
        None,
        Some("cancellation check"),
    )
}

/// How much a job weighs for admission control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    /// One aggregating scan (scores, benchmarks, trends, raw pages, observations).
    Light,
    /// Model fits, bootstraps, reports: many times the work of a scan.
    Heavy,
}

/// How many jobs of one weight may run at once and wait at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    pub running: usize,
    pub queued: usize,
}

/// Admission control: jobs of each weight take a slot, wait in a bounded queue when none is
/// free, and are refused (`Busy`) when the queue is full, so heavy queries cannot crowd out
/// light ones or pile up work and memory without bound. A slot is held until the blocking job
/// itself ends, not just until its caller stops waiting, so abandoned work still counts.
#[derive(Debug)]
pub struct Admission {
    light: Gate,
    heavy: Gate,
}

#[derive(Debug)]
struct Gate {
    slots: Slots,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    waiting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Gate {
    fn new(slots: Slots) -> Gate {
        let slots = Slots { running: slots.running.max(1), queued: slots.queued };
        Gate { slots, permits: std::sync::Arc::new(tokio::sync::Semaphore::new(slots.running)), waiting: Default::default() }
    }
}

/// Where heavy jobs run, with their own parallel loops: threads at a lower scheduling priority
/// (nice 10), so while a heavy job computes, light queries get the cores they ask for (its
/// polars scans still use polars' own threads).
fn heavy_pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::LazyLock<rayon::ThreadPool> = std::sync::LazyLock::new(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("cxlake-heavy-{i}"))
            .start_handler(|_| {
                // On Linux the nice value is per thread; failing to lower it is harmless.
                let _ = rustix::process::setpriority_process(None, 10);
            })
            .build()
            .expect("the heavy-job thread pool starts")
    });
    &POOL
}

/// Decrements a waiting count when dropped (the waiter got in or gave up).
struct Waiting(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Admission {
    pub fn new(light: Slots, heavy: Slots) -> Admission {
        Admission { light: Gate::new(light), heavy: Gate::new(heavy) }
    }

    /// Defaults for a machine with `cores`: one heavy job per two cores (at least one), four
    /// light jobs per core; each queues up to 16 more per core.
    pub fn for_cores(cores: usize) -> Admission {
        let (light, heavy) = Admission::default_slots(cores);
        Admission::new(light, heavy)
    }

    /// The default (light, heavy) slots for a machine with `cores`.
    pub fn default_slots(cores: usize) -> (Slots, Slots) {
        let cores = cores.max(1);
        (Slots { running: 4 * cores, queued: 16 * cores }, Slots { running: cores.div_ceil(2), queued: 4 * cores })
    }

    async fn enter(&self, weight: Weight) -> Result<tokio::sync::OwnedSemaphorePermit, AnalyticsError> {
        let gate = match weight {
            Weight::Light => &self.light,
            Weight::Heavy => &self.heavy,
        };
        if let Ok(permit) = gate.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if gate.waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= gate.slots.queued {
            gate.waiting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            let weight = if weight == Weight::Heavy { "heavy" } else { "light" };
            return Err(AnalyticsError::Busy { weight, running: gate.slots.running, queued: gate.slots.queued });
        }
        let _waiting = Waiting(gate.waiting.clone());
        gate.permits.clone().acquire_owned().await.map_err(|e| AnalyticsError::Task(e.to_string()))
    }

    /// Runs blocking work off the async runtime once admitted. The job gets a `Cancel` that is set if this future is dropped before the job ends; it holds
    /// its slot until it returns.
    pub async fn run<T: Send + 'static>(
        &self,
        weight: Weight,
        f: impl FnOnce(&Cancel) -> Result<T, AnalyticsError> + Send + 'static,
    ) -> Result<T, AnalyticsError> {
        let permit = self.enter(weight).await?;
        let cancel = Cancel::default();
        let _guard = CancelOnDrop(cancel.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let outcome = match weight {
                Weight::Light => f(&cancel),
                Weight::Heavy => heavy_pool().install(|| f(&cancel)),
            };
            let result = match outcome {
                // A gated plan stopped by the cancellation.
                Err(AnalyticsError::Polars(_)) if cancel.is_cancelled() => Err(AnalyticsError::Cancelled),
                r => r,
            };
            if matches!(result, Err(AnalyticsError::Cancelled)) {
                tracing::info!("abandoned query stopped");
            }
            result
        })
        .await
        .map_err(|e| AnalyticsError::Task(e.to_string()))?
    }
}

impl Default for Admission {
    fn default() -> Self {
        Admission::for_cores(std::thread::available_parallelism().map_or(2, |n| n.get()))
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
    /// Slots for blocking jobs, shared by clones.
    admission: std::sync::Arc<Admission>,
    /// Groups an aggregate query may return (no cap unless set: a server sets `MAX_GROUPS` or
    /// its `--max-groups`; a local `cxlake query` is not capped).
    pub max_groups: usize,
    /// The secret of the record keys (cell-key perturbation): given, or read (created if
    /// absent) from the lake the first time a perturbed view needs it; shared by clones.
    cell_key: std::sync::Arc<std::sync::OnceLock<cellkey::CellKeySecret>>,
    /// Set in a view that publishes perturbed counts (the public role's, `perturbed`): every
    /// count it returns, and every statistic, comes from counts perturbed by their cell keys
    /// (`cx_stats::cellkey`). `None`: exact numbers.
    pub perturb: Option<cellkey::CellKeySecret>,
    /// Whether scores (and what is built on them) may be answered from rollups; off, every
    /// query reads raw rows (the same answers, for comparison).
    pub rollups: bool,
    /// Where the score computations of this view are recorded (a request's view).
    pub served_log: Option<rollups::ServedLog>,
}

/// Groups an aggregate query served over HTTP returns at most, unless configured otherwise.
pub const MAX_GROUPS: usize = 20_000;

impl Analytics {
    /// Opens the analytics over `lake`, reading its catalog. Blocking: call it outside async
    /// worker threads (or in `spawn_blocking`).
    pub fn open(lake: Lake) -> Result<Analytics, AnalyticsError> {
        let version = cx_lake::commit::lake_version(&lake)?;
        let catalog = std::sync::Arc::new(Catalog::load(&lake)?);
        Ok(Analytics {
            lake,
            catalog: std::sync::Arc::new(std::sync::RwLock::new((version, catalog))),
            suppression: suppression::Suppression::default(),
            admission: std::sync::Arc::new(Admission::default()),
            max_groups: usize::MAX,
            cell_key: Default::default(),
            perturb: None,
            rollups: true,
            served_log: None,
        })
    }

    /// The same analytics with the record keys' secret given (instead of the lake's).
    pub fn with_cell_key_secret(self, secret: cellkey::CellKeySecret) -> Analytics {
        let cell_key = std::sync::OnceLock::new();
        let _ = cell_key.set(secret);
        Analytics { cell_key: std::sync::Arc::new(cell_key), ..self }
    }

    /// The view that publishes perturbed counts (the public role's; see `suppression.rs`),
    /// over the same lake, catalog and minimum cell sizes. Reads or creates the lake's secret
    /// the first time it is needed (blocking I/O off the async workers).
    pub async fn perturbed(&self) -> Result<Analytics, AnalyticsError> {
        let secret = match self.cell_key.get() {
            Some(s) => s.clone(),
            None => {
                let lake = self.lake.clone();
                let loaded = tokio::task::spawn_blocking(move || cellkey::CellKeySecret::load_or_create(&lake))
                    .await
                    .map_err(|e| AnalyticsError::Task(e.to_string()))??;
                self.cell_key.get_or_init(|| loaded).clone()
            }
        };
        Ok(Analytics { perturb: Some(secret), ..self.clone() })
    }

    /// For a view publishing perturbed counts (the public role's), refuses a selection outside
    /// the published grid (`Filter::check_public`); other views publish any selection exactly.
    pub fn check_published(&self, filter: &Filter, grouped: &[cx_domain::Dimension], period: Option<cx_domain::PeriodUnit>) -> Result<(), AnalyticsError> {
        match self.perturb {
            Some(_) => filter.check_public(grouped, period),
            None => Ok(()),
        }
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

    /// The same analytics with other admission slots.
    pub fn with_admission(self, admission: Admission) -> Analytics {
        Analytics { admission: std::sync::Arc::new(admission), ..self }
    }

    /// The same analytics answering from rollups (`true`, the default) or only from raw rows.
    pub fn with_rollups(self, rollups: bool) -> Analytics {
        Analytics { rollups, ..self }
    }

    /// The same analytics recording what served each score computation in `log`.
    pub fn with_served_log(self, log: Option<rollups::ServedLog>) -> Analytics {
        Analytics { served_log: log, ..self }
    }

    /// The same analytics returning at most `max_groups` groups per query.
    pub fn with_max_groups(self, max_groups: usize) -> Analytics {
        Analytics { max_groups, ..self }
    }

    /// `Err(TooManyGroups)` when an aggregate holds more than the groups a query may return.
    pub(crate) fn check_groups(&self, groups: usize) -> Result<(), AnalyticsError> {
        if groups > self.max_groups {
            return Err(AnalyticsError::TooManyGroups { groups, max: self.max_groups });
        }
        Ok(())
    }

    /// The same analytics with other minimum cell sizes.
    pub fn with_suppression(self, suppression: suppression::Suppression) -> Analytics {
        Analytics { suppression, ..self }
    }

    /// Turns a failed scan of `files` into an error naming the unreadable file, when one is.
    /// The search may decode every file (`Lake::find_unreadable`): on a multi-threaded runtime
    /// the async worker hands its other tasks over meanwhile (`block_in_place`).
    pub(crate) fn explain_failure(&self, files: &[cx_lake::DataFile], error: AnalyticsError) -> AnalyticsError {
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

    /// Runs blocking polars work off the async runtime once admitted (`Admission::run`).
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        weight: Weight,
        f: impl FnOnce(&Cancel) -> Result<T, AnalyticsError> + Send + 'static,
    ) -> Result<T, AnalyticsError> {
        self.admission.run(weight, f).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_job_whose_caller_stops_waiting_is_cancelled() {
        let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = stopped.clone();
        let admission = Admission::for_cores(2);
        let job = admission.run(Weight::Light, move |cancel| {
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
        assert_eq!(admission.run(Weight::Light, |cancel| cancel.check().map(|_| 7)).await.unwrap(), 7);
    }

    /// A job that holds its slot until told to finish.
    fn held(admission: &std::sync::Arc<Admission>, weight: Weight) -> (tokio::task::JoinHandle<Result<u8, AnalyticsError>>, std::sync::mpsc::Sender<()>) {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let a = admission.clone();
        (tokio::spawn(async move { a.run(weight, move |_| Ok(rx.recv().map_or(0, |_| 1))).await }), tx)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn admission_queues_then_refuses_and_keeps_light_work_moving() {
        let slots = Slots { running: 1, queued: 1 };
        let admission = std::sync::Arc::new(Admission::new(slots, slots));
        let (first, release_first) = held(&admission, Weight::Heavy);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let (second, release_second) = held(&admission, Weight::Heavy);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // A third heavy query finds the slot taken and the queue full.
        match admission.run(Weight::Heavy, |_| Ok(3u8)).await {
            Err(e @ AnalyticsError::Busy { .. }) => assert!(e.to_string().contains("1 heavy queries are running and 1 waiting"), "{e}"),
            other => panic!("expected BUSY, got {other:?}"),
        }
        // Light work has its own slots.
        assert_eq!(admission.run(Weight::Light, |_| Ok(4u8)).await.unwrap(), 4);
        release_first.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        release_second.send(()).unwrap();
        assert_eq!(second.await.unwrap().unwrap(), 1, "the queued query ran once a slot was free");
        // A caller that gave up while queued leaves the queue.
        let (third, release_third) = held(&admission, Weight::Heavy);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), admission.run(Weight::Heavy, |_| Ok(5u8))).await.is_err());
        let (fourth, release_fourth) = held(&admission, Weight::Heavy);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release_third.send(()).unwrap();
        release_fourth.send(()).unwrap();
        assert_eq!((third.await.unwrap().unwrap(), fourth.await.unwrap().unwrap()), (1, 1));
    }

    /// A gated plan gives the same answer as the plan, and stops with an error once cancelled.
    #[test]
    fn a_gated_plan_stops_when_cancelled() {
        use polars::prelude::*;
        let n = 2_000_000i64;
        let df = df!("k" => (0..n).map(|i| i % 1000).collect::<Vec<_>>(), "v" => (0..n).collect::<Vec<_>>()).unwrap();
        let plan = |lf: LazyFrame| lf.filter(col("k").lt(lit(500))).group_by([col("k")]).agg([col("v").sum()]).sort(["k"], Default::default());
        let run = |lf: LazyFrame| plan(lf).collect_with_engine(Engine::Streaming).map(|r| r.unwrap_single());
        let cancel = Cancel::default();
        let plain = run(df.clone().lazy()).unwrap();
        assert_eq!(run(gated(df.clone().lazy(), &cancel)).unwrap(), plain);
        assert_eq!(plain.height(), 500);
        cancel.cancel();
        let err = run(gated(df.lazy(), &cancel)).unwrap_err();
        assert!(err.to_string().contains("cancelled"), "{err}");
    }
}
