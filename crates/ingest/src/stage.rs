//! Staging and committing validated responses: rows are routed to their partition and spilled
//! to private Arrow IPC files as they come (memory stays bounded by a row budget, whatever the
//! input size); at commit each partition is deduplicated by response id against what the lake
//! holds and written as few Parquet files of at most `FILE_ROWS` rows, published atomically.

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray, UInt64Array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::row::{RowConverter, SortField};
use cx_domain::validate::Response;
use cx_domain::FiscalQuarter;
use cx_lake::batch::ResponseBatchBuilder;
use cx_lake::commit::WriteLock;
use cx_lake::delta::TableFile;
use cx_lake::quarantine::QuarantineRow;
use cx_lake::writer::{RollingWriter, UNIQUE_COLUMNS};
use cx_lake::{schema, PartitionKey, StoreError};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

/// Rows of one partition buffered before they are spilled to staging.
const SPILL_ROWS: usize = 64 * 1024;
/// Rows buffered over all partitions at most; beyond it the largest buffer is spilled.
const BUDGET_ROWS: usize = 512 * 1024;

/// Staged batches carry the source line of each row beside the lake columns.
static STAGED_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields: Vec<Field> = schema::arrow_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("_line", DataType::UInt64, false));
    Arc::new(Schema::new(fields))
});

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.display().to_string(), source }
}

fn arrow_err(path: &Path) -> impl Fn(arrow::error::ArrowError) -> StoreError + '_ {
    move |e| StoreError::Write { path: path.display().to_string(), reason: e.to_string() }
}

/// The lake columns as row-encoding fields (to compare whole rows).
fn lake_schema_fields() -> Vec<SortField> {
    schema::arrow_schema().fields().iter().map(|f| SortField::new(f.data_type().clone())).collect()
}

/// The partition a response belongs to.
pub fn partition_of(r: &Response) -> PartitionKey {
    PartitionKey { agency: r.agency.clone(), quarter: FiscalQuarter::of(r.submitted_at.date_naive()) }
}

#[derive(Default)]
struct Buffer {
    rows: Option<ResponseBatchBuilder>,
    lines: Vec<u64>,
    staged: Vec<PathBuf>,
}

impl Buffer {
    fn take_batch(&mut self) -> Option<RecordBatch> {
        let b = self.rows.as_mut()?;
        if b.is_empty() {
            return None;
        }
        let lake = b.finish();
        let mut cols: Vec<ArrayRef> = lake.columns().to_vec();
        cols.push(Arc::new(UInt64Array::from(std::mem::take(&mut self.lines))));
        Some(RecordBatch::try_new(STAGED_SCHEMA.clone(), cols).expect("staged batch matches its schema"))
    }
}

/// Response ids of partitions, kept between commits by a long-lived writer (the submit
/// flusher commits to the same few partitions every second): an entry is reused while the
/// partition's files are the ones it was read from plus files this writer added, and only new
/// files are read. At most `ID_CACHE_PARTITIONS` partitions are kept (least recently used out).
#[derive(Default)]
pub struct IdCache {
    entries: HashMap<PartitionKey, (Vec<String>, HashSet<String>, u64)>,
    tick: u64,
}

/// Partitions whose ids an `IdCache` keeps at most.
pub const ID_CACHE_PARTITIONS: usize = 8;

impl IdCache {
    /// The ids stored in `key`'s partition, reading only files not read before.
    fn ids(&mut self, lake: &cx_lake::Lake, key: &PartitionKey) -> Result<HashSet<String>, StoreError> {
        let files = cx_lake::commit::partition_files(lake, key)?;
        let (known, mut ids, _) = self.entries.remove(key).unwrap_or_default();
        let (known, mut ids) = if known.iter().all(|f| files.contains(f)) { (known, std::mem::take(&mut ids)) } else { (Vec::new(), HashSet::new()) };
        for f in files.iter().filter(|f| !known.contains(f)) {
            cx_lake::commit::for_each_id(lake, f, |id| {
                ids.insert(id.to_string());
            })?;
        }
        Ok(ids)
    }

    /// Remembers the ids of `key` after a commit that adds `added` files holding `new_ids`
    /// (a writer whose commit then fails must `clear` the cache: it holds ids the lake does not).
    fn keep(&mut self, lake: &cx_lake::Lake, key: PartitionKey, mut ids: HashSet<String>, new_ids: impl IntoIterator<Item = String>, added: &[TableFile]) {
        ids.extend(new_ids);
        let Ok(mut files) = cx_lake::commit::partition_files(lake, &key) else { return };
        files.extend(added.iter().map(|f| f.path.clone()));
        self.tick += 1;
        self.entries.insert(key, (files, ids, self.tick));
        while self.entries.len() > ID_CACHE_PARTITIONS {
            let oldest = self.entries.iter().min_by_key(|(_, e)| e.2).map(|(k, _)| k.clone()).expect("non-empty");
            self.entries.remove(&oldest);
        }
    }

    /// Forgets every partition (after a commit that failed).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Validated responses on their way into the lake.
pub struct Stager {
    dir: PathBuf,
    parts: HashMap<PartitionKey, Buffer>,
    buffered: usize,
    spills: usize,
    pub rows: u64,
    /// Whether a response id repeated within the input is skipped as a duplicate (submit
    /// retries) rather than quarantined (a file that repeats an id).
    pub repeats_are_duplicates: bool,
}

impl Stager {
    /// Stages into `dir` (a private directory under the write lock).
    pub fn new(dir: &Path) -> Stager {
        Stager { dir: dir.to_path_buf(), parts: HashMap::new(), buffered: 0, spills: 0, rows: 0, repeats_are_duplicates: false }
    }

    pub fn push(&mut self, r: &Response, line: u64) -> Result<(), StoreError> {
        let key = partition_of(r);
        let buf = self.parts.entry(key).or_default();
        let builder = buf.rows.get_or_insert_with(|| ResponseBatchBuilder::new(1024));
        builder.push(r);
        buf.lines.push(line);
        let len = builder.len();
        self.buffered += 1;
        self.rows += 1;
        if len >= SPILL_ROWS {
            self.spill(&partition_of(r))?;
        } else if self.buffered >= BUDGET_ROWS {
            let largest = self.parts.iter().max_by_key(|(_, b)| b.lines.len()).map(|(k, _)| k.clone()).expect("a buffer is non-empty");
            self.spill(&largest)?;
        }
        Ok(())
    }

    fn spill(&mut self, key: &PartitionKey) -> Result<(), StoreError> {
        let buf = self.parts.get_mut(key).expect("spilled partition exists");
        let Some(batch) = buf.take_batch() else { return Ok(()) };
        self.buffered -= batch.num_rows();
        self.spills += 1;
        let path = self.dir.join(format!("spill-{:06}.arrow", self.spills));
        let file = std::fs::File::create(&path).map_err(io_err(&path))?;
        let mut w = FileWriter::try_new_buffered(file, &STAGED_SCHEMA).map_err(arrow_err(&path))?;
        w.write(&batch).map_err(arrow_err(&path))?;
        w.finish().map_err(arrow_err(&path))?;
        buf.staged.push(path);
        Ok(())
    }

    /// Deduplicates and publishes everything staged; `run_id` names the new files.
    pub fn commit(self, lock: &WriteLock, run_id: &str, source: &str) -> Result<Committed, StoreError> {
        self.commit_with(lock, run_id, source, None)
    }

    /// `commit`, reusing (and updating) the ids a long-lived writer keeps in `cache`.
    pub fn commit_with(mut self, lock: &WriteLock, run_id: &str, source: &str, cache: Option<&std::sync::Mutex<IdCache>>) -> Result<Committed, StoreError> {
        let mut work: Vec<(PartitionKey, Vec<PathBuf>, Option<RecordBatch>)> =
            self.parts.iter_mut().map(|(k, b)| (k.clone(), std::mem::take(&mut b.staged), b.take_batch())).collect();
        work.sort_by(|a, b| a.0.cmp(&b.0));
        let outcomes: Vec<PartitionOutcome> = work
            .into_par_iter()
            .map(|(key, staged, tail)| {
                let existing = match cache {
                    Some(c) => c.lock().expect("id cache lock").ids(lock.lake(), &key)?,
                    None => IdCache::default().ids(lock.lake(), &key)?,
                };
                let (outcome, existing, new_ids) = commit_partition(lock, &key, existing, &staged, tail, run_id, source, self.repeats_are_duplicates)?;
                if let Some(c) = cache {
                    c.lock().expect("id cache lock").keep(lock.lake(), key, existing, new_ids, &outcome.added);
                }
                Ok(outcome)
            })
            .collect::<Result<_, _>>()?;
        let mut out = Committed::default();
        for o in outcomes {
            out.added.extend(o.added);
            out.stored += o.stored;
            out.duplicates_skipped += o.duplicates_skipped;
            out.skipped_lines.extend(o.skipped_lines);
            out.quarantined.extend(o.quarantined);
        }
        out.quarantined.sort_by_key(|q| q.line);
        out.skipped_lines.sort_unstable();
        Ok(out)
    }
}

/// What a commit published.
#[derive(Debug, Default)]
pub struct Committed {
    /// Data files written, to be committed.
    pub added: Vec<TableFile>,
    pub stored: u64,
    /// Rows whose response id the lake already held (an idempotent rerun), or repeating an
    /// earlier row of the same input exactly.
    pub duplicates_skipped: u64,
    /// The source lines of those rows, sorted.
    pub skipped_lines: Vec<u64>,
    /// Rows repeating a response id seen earlier in the same input with other content.
    pub quarantined: Vec<QuarantineRow>,
}

type PartitionOutcome = Committed;

fn read_staged(path: &Path) -> Result<Vec<RecordBatch>, StoreError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let reader = FileReader::try_new_buffered(file, None).map_err(arrow_err(path))?;
    reader.map(|b| b.map_err(arrow_err(path))).collect()
}

/// Publishes one partition's staged rows; returns what it did, the ids the partition held and
/// the ids it added.
#[allow(clippy::too_many_arguments)]
fn commit_partition(
    lock: &WriteLock,
    key: &PartitionKey,
    existing: HashSet<String>,
    staged: &[PathBuf],
    tail: Option<RecordBatch>,
    run_id: &str,
    source: &str,
    repeats_are_duplicates: bool,
) -> Result<(PartitionOutcome, HashSet<String>, Vec<String>), StoreError> {
    let lake = lock.lake();
    // One lookup per staged row: a fast hasher (ids are not attacker-chosen keys of a
    // long-lived table; the map lives for one partition's commit). Beside its first line, each
    // id keeps a 128-bit digest of its row's content (two independently seeded hashes of the
    // row's Arrow row encoding), so a repeat is told apart from a conflict.
    let mut seen: HashMap<Box<str>, (u64, u128), foldhash::fast::RandomState> = HashMap::default();
    let content_seeds = (foldhash::fast::RandomState::default(), foldhash::fast::RandomState::default());
    let converter = RowConverter::new(lake_schema_fields()).map_err(|e| StoreError::Write { path: key.dir(), reason: e.to_string() })?;
    let mut out = Committed::default();
    let lake_schema = schema::arrow_schema();
    let mut writer =
        RollingWriter::new(lake, lake_schema.clone(), &UNIQUE_COLUMNS, Some(key.clone()), |n| format!("{}/part-{run_id}-{n:03}.parquet", key.dir()));
    let mut handle = |batch: RecordBatch, out: &mut Committed| -> Result<(), StoreError> {
        let ids = batch.column(0).as_any().downcast_ref::<StringArray>().expect("response_id is text");
        let lines = batch.column(batch.num_columns() - 1).as_any().downcast_ref::<UInt64Array>().expect("_line is u64");
        let rows =
            converter.convert_columns(&batch.columns()[..batch.num_columns() - 1]).map_err(|e| StoreError::Write { path: key.dir(), reason: e.to_string() })?;
        let digest = |i: usize| -> u128 {
            use std::hash::BuildHasher;
            let bytes = rows.row(i);
            let (a, b) = (content_seeds.0.hash_one(bytes.as_ref()), content_seeds.1.hash_one(bytes.as_ref()));
            (u128::from(a) << 64) | u128::from(b)
        };
        let mut keep = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            let (id, line) = (ids.value(i), lines.value(i));
            // An earlier row of this input first: an exact repeat is a duplicate, other content a
            // conflict, whether or not the lake already holds the id (so a rerun of a file with
            // a conflict quarantines it again rather than calling it stored).
            let fresh = if let Some((first, content)) = seen.get(id) {
                if repeats_are_duplicates || *content == digest(i) {
                    // The same row again (a re-export repeats rows): stored once, counted as a
                    // duplicate, as it would be in a later run.
                    out.duplicates_skipped += 1;
                    out.skipped_lines.push(line);
                } else {
                    out.quarantined.push(QuarantineRow {
                        source: source.to_string(),
                        line: Some(line),
                        column: Some("response_id".into()),
                        reason: format!("conflict: response_id '{}' again with different content (first at line {first})", id.escape_debug()),
                        raw: None,
                    });
                }
                false
            } else if !existing.is_empty() && existing.contains(id) {
                seen.insert(id.into(), (line, digest(i)));
                out.duplicates_skipped += 1;
                out.skipped_lines.push(line);
                false
            } else {
                seen.insert(id.into(), (line, digest(i)));
                true
            };
            keep.push(fresh);
        }
        let lake_batch =
            RecordBatch::try_new(lake_schema.clone(), batch.columns()[..batch.num_columns() - 1].to_vec()).expect("staged columns match the lake schema");
        let kept = if keep.iter().all(|k| *k) {
            lake_batch
        } else {
            filter_record_batch(&lake_batch, &BooleanArray::from(keep)).map_err(|e| StoreError::Write { path: key.dir(), reason: e.to_string() })?
        };
        writer.write(&kept)?;
        out.stored += kept.num_rows() as u64;
        Ok(())
    };
    for path in staged {
        for batch in read_staged(path)? {
            handle(batch, &mut out)?;
        }
        std::fs::remove_file(path).map_err(io_err(path))?;
    }
    if let Some(batch) = tail {
        handle(batch, &mut out)?;
    }
    out.added = writer.finish()?;
    let new_ids = seen.into_keys().map(String::from).collect();
    out.skipped_lines.sort_unstable();
    Ok((out, existing, new_ids))
}
