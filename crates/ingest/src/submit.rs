//! Real-time submit: responses are validated like ingested rows, appended to the durable
//! submit log and acknowledged once the log is fsynced (many concurrent submitters share each
//! fsync). A background flusher seals the log every interval, turns the sealed segment into
//! lake files through the same staging, dedup and commit as batch ingestion, then deletes it.
//! On start the segments left by a previous process are replayed the same way; a torn or
//! corrupt tail record is dropped (it was never acknowledged: a failed write is cut off and
//! its segment closed, so no acknowledged record ever follows a torn one). The log directory
//! is locked for the process's lifetime, so a second server pointed at it refuses to start.

use super::formats::json::{parse_object, to_object};
use super::pipeline::run_id;
use super::stage::{IdCache, Stager};
use cx_domain::validate::{Inventory, Problem, Response};
use cx_lake::commit::WriteLock;
use cx_lake::delta::Change;
use cx_lake::quarantine::{QuarantineRow, QuarantineWriter};
use cx_lake::wal::{read_segment, segments, DirOwner, Lag, Wal};
use cx_lake::{Lake, StoreError};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Responses one submit may carry at most.
pub const MAX_BATCH: usize = 10_000;

/// Why a submit was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The request itself is wrong (4xx): each problem names the response and field.
    #[error("{} problem(s), first: response {}: {}: {}", .0.len(), .0[0].index, .0[0].column, .0[0].reason)]
    Invalid(Vec<ItemProblem>),
    /// The log could not be written (5xx); nothing was acknowledged.
    #[error("not stored: {0}")]
    Unavailable(String),
}

/// A problem of one response in a submitted batch.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct ItemProblem {
    pub index: usize,
    pub column: String,
    pub reason: String,
}

fn item(index: usize, p: Problem) -> ItemProblem {
    ItemProblem { index, column: p.column, reason: p.reason }
}

/// Validates a submitted batch (JSON objects in the lake's columns). A missing `response_id`
/// gets a new UUID and a missing `submitted_at` the time of receipt. All or nothing: any
/// problem refuses the whole batch.
pub fn validate_batch(items: Vec<Value>, inventory: &Inventory) -> Result<Vec<Response>, SubmitError> {
    let invalid = |index: usize, column: &str, reason: String| SubmitError::Invalid(vec![ItemProblem { index, column: column.into(), reason }]);
    if items.is_empty() {
        return Err(invalid(0, "(body)", "no responses to submit".into()));
    }
    if items.len() > MAX_BATCH {
        return Err(invalid(MAX_BATCH, "(body)", format!("{} responses in one submit; at most {MAX_BATCH}", items.len())));
    }
    let now = chrono::Utc::now();
    let mut problems = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    let mut ids = HashSet::new();
    for (i, v) in items.into_iter().enumerate() {
        let Value::Object(mut obj) = v else {
            problems.push(ItemProblem { index: i, column: "(response)".into(), reason: "is not a JSON object".into() });
            continue;
        };
        obj.entry("response_id").or_insert_with(|| Value::String(uuid::Uuid::new_v4().to_string()));
        obj.entry("submitted_at").or_insert_with(|| Value::String(now.to_rfc3339()));
        match parse_object(&obj, now) {
            Ok(r) => {
                let found = inventory.problems(&r);
                if !found.is_empty() {
                    problems.extend(found.into_iter().map(|p| item(i, p)));
                } else if !ids.insert(r.response_id.clone()) {
                    problems.push(ItemProblem { index: i, column: "response_id".into(), reason: format!("'{}' appears twice in this submit", r.response_id) });
                } else {
                    out.push(r);
                }
            }
            Err(ps) => problems.extend(ps.into_iter().map(|p| item(i, p))),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(SubmitError::Invalid(problems))
    }
}

/// The submit service of one lake.
pub struct Submitter {
    wal: Wal,
    /// The codes submissions are checked against; replaced when the lake's inventory changes.
    inventory: std::sync::RwLock<Arc<Inventory>>,
    stop: Arc<AtomicBool>,
    /// Responses this process moved from the log into the lake (replay included).
    committed: Arc<std::sync::atomic::AtomicU64>,
    /// The log directory's lock, held while the submitter (or its flusher) lives.
    _owner: Arc<DirOwner>,
}

/// What a flush of the log did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Flushed {
    pub segments: usize,
    pub stored: u64,
    pub duplicates_skipped: u64,
    pub dropped_tails: usize,
    /// Stretches of damage with intact records after them (the file changed after it was
    /// written); the records after are kept.
    pub damaged: usize,
}

impl Submitter {
    /// Replays the log in `wal_dir` into `lake`, then starts the log writer and a flusher that
    /// moves acknowledged responses into the lake every `interval`.
    pub fn start(lake: &Lake, wal_dir: &Path, inventory: Inventory, interval: Duration) -> Result<Arc<Submitter>, StoreError> {
        let owner = Arc::new(DirOwner::acquire(wal_dir)?);
        let replayed = flush_segments(lake, wal_dir, None)?;
        if replayed.segments > 0 {
            tracing::info!(
                segments = replayed.segments,
                stored = replayed.stored,
                duplicates = replayed.duplicates_skipped,
                dropped_tails = replayed.dropped_tails,
                "replayed the submit log"
            );
        }
        let wal = Wal::start(wal_dir)?;
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(std::sync::atomic::AtomicU64::new(replayed.stored));
        let submitter = Arc::new(Submitter {
            wal: wal.clone(),
            inventory: std::sync::RwLock::new(Arc::new(inventory)),
            stop: stop.clone(),
            committed: committed.clone(),
            _owner: owner.clone(),
        });
        let (lake, dir) = (lake.clone(), wal_dir.to_path_buf());
        std::thread::Builder::new()
            .name("cxlake-flush".into())
            .spawn(move || {
                let _owner = owner;
                let ids = std::sync::Mutex::new(IdCache::default());
                // The newest sealed segment not yet moved into the lake: a failed flush is
                // retried at the next tick even if nothing new was submitted.
                let mut upto: Option<PathBuf> = None;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    match wal.rotate() {
                        Ok(Some(sealed)) => upto = Some(sealed),
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = %e, "sealing the submit log failed"),
                    }
                    let Some(sealed) = &upto else { continue };
                    match flush_segments_cached(&lake, &dir, Some(sealed), Some(&ids)) {
                        Ok(f) => {
                            committed.fetch_add(f.stored, Ordering::Relaxed);
                            wal.flushed(sealed);
                            upto = None;
                        }
                        Err(e) => tracing::error!(error = %e, "moving submitted responses into the lake failed; will retry"),
                    }
                }
            })
            .map_err(|source| StoreError::Io { path: "cxlake-flush thread".into(), source })?;
        Ok(submitter)
    }

    /// How far the lake is behind the log: acknowledged submits not yet visible to queries.
    pub fn lag(&self) -> Lag {
        self.wal.lag()
    }

    /// Responses moved from the log into the lake so far.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }

    pub fn inventory(&self) -> Arc<Inventory> {
        self.inventory.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Checks later submissions against `inventory` (the lake's, after an edit).
    pub fn set_inventory(&self, inventory: Inventory) {
        *self.inventory.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(inventory);
    }

    /// Validates and durably logs a batch; returns the response ids once it is on disk.
    pub async fn submit(&self, items: Vec<Value>) -> Result<Vec<String>, SubmitError> {
        let responses = validate_batch(items, &self.inventory())?;
        let ids: Vec<String> = responses.iter().map(|r| r.response_id.clone()).collect();
        let payload = serde_json::to_vec(&responses.iter().map(|r| Value::Object(to_object(r))).collect::<Vec<_>>()).expect("responses serialize");
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.wal.append(payload, move |r| {
            let _ = tx.send(r);
        });
        match rx.await {
            Ok(Ok(())) => Ok(ids),
            Ok(Err(e)) => Err(SubmitError::Unavailable(e)),
            Err(_) => Err(SubmitError::Unavailable("the submit log writer stopped".into())),
        }
    }
}

impl Drop for Submitter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Moves sealed segments into the lake under the write lock: every segment in `dir` up to and
/// including `upto` (all of them at replay, before a writer exists), so one that failed before
/// is retried. Each segment is one commit; it is deleted only after its rows are published
/// and the commit recorded.
pub fn flush_segments(lake: &Lake, dir: &Path, upto: Option<&Path>) -> Result<Flushed, StoreError> {
    flush_segments_cached(lake, dir, upto, None)
}

/// `flush_segments` reusing the partition ids the flusher keeps between flushes.
pub fn flush_segments_cached(lake: &Lake, dir: &Path, upto: Option<&Path>, ids: Option<&std::sync::Mutex<IdCache>>) -> Result<Flushed, StoreError> {
    let todo: Vec<PathBuf> = segments(dir)?.into_iter().map(|(_, p)| p).filter(|p| upto.is_none_or(|u| p.as_path() <= u)).collect();
    let mut out = Flushed::default();
    if todo.is_empty() {
        return Ok(out);
    }
    let lock = WriteLock::acquire(lake)?;
    for path in todo {
        let read = read_segment(&path)?;
        let source = format!("submit {}", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let run = run_id();
        let staging = lock.staging(&run)?;
        let mut stager = Stager::new(staging.path());
        // A client retrying a submit repeats its ids: not a problem, just nothing new.
        stager.repeats_are_duplicates = true;
        let mut quarantine = QuarantineWriter::new(lake, &run);
        for d in &read.damage {
            if d.records_after {
                tracing::error!(segment = %path.display(), offset = d.offset, bytes = d.len, reason = %d.reason, "the submit log was damaged after it was written; skipped the damage, kept the records after it");
                out.damaged += 1;
            } else {
                tracing::warn!(segment = %path.display(), offset = d.offset, reason = %d.reason, "dropped the unacknowledged tail of the submit log");
                out.dropped_tails += 1;
            }
        }
        let now = chrono::Utc::now();
        for (i, record) in read.records.iter().enumerate() {
            let items: Vec<Map<String, Value>> = match serde_json::from_slice(record) {
                Ok(items) => items,
                Err(e) => {
                    quarantine.push(QuarantineRow {
                        source: source.clone(),
                        line: Some(i as u64 + 1),
                        column: None,
                        reason: format!("unreadable log record: {e}"),
                        raw: None,
                    })?;
                    continue;
                }
            };
            for obj in items {
                // Validated when submitted; checked again so nothing unexpected reaches the lake.
                match parse_object(&obj, now + chrono::Duration::days(1)) {
                    Ok(r) => stager.push(&r, i as u64 + 1)?,
                    Err(problems) => {
                        for p in problems {
                            quarantine.push(QuarantineRow {
                                source: source.clone(),
                                line: Some(i as u64 + 1),
                                column: Some(p.column),
                                reason: p.reason,
                                raw: Some(Value::Object(obj.clone()).to_string()),
                            })?;
                        }
                    }
                }
            }
        }
        let forget = || {
            if let Some(ids) = ids {
                ids.lock().unwrap_or_else(|e| e.into_inner()).clear();
            }
        };
        let committed = stager.commit_with(&lock, &run, &source, ids).inspect_err(|_| forget())?;
        for q in committed.quarantined {
            quarantine.push(q)?;
        }
        quarantine.finish()?;
        if !committed.added.is_empty() {
            let keys = cx_lake::compact::keys_of(&committed.added);
            // If the commit fails its rows are not in the lake: the ids kept for them go too.
            lock.commit(cx_lake::Table::Responses, Change { operation: source.clone(), added: committed.added, ..Default::default() })
                .inspect_err(|_| forget())?;
            // A partition the flusher has added many small files to is compacted now, in its
            // own commit (submits go on into the log meanwhile).
            // Its failure is logged, not the flush's: the segment is in the lake already.
            match cx_lake::compact::compact_table(&lock, cx_lake::Table::Responses, Some(&keys), cx_lake::compact::AUTO_COMPACT_FILES, &run) {
                Ok(c) if c.partitions > 0 => {
                    tracing::info!(partitions = c.partitions, files_before = c.files_before, files_after = c.files_after, "compacted");
                    forget(); // the partitions' file lists changed
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "compacting after a flush failed; the next flush tries again");
                    forget();
                }
            }
        }
        out.segments += 1;
        out.stored += committed.stored;
        out.duplicates_skipped += committed.duplicates_skipped;
        std::fs::remove_file(&path).map_err(|source| StoreError::Io { path: path.display().to_string(), source })?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(out)
}
