//! Compaction: a partition whose rows sit in more files than `FILE_ROWS` requires is rewritten
//! as few full files, row order kept, and swapped in by one Delta commit that removes the old
//! files and adds the new ones with `dataChange: false`: every snapshot holds all the old files
//! or all the new ones, never both, locally and in S3 alike. The old files stay where they are
//! (older versions still read them) until `vacuum` removes them after the retention period.

use super::commit::WriteLock;
use super::delta::{Change, Stored, TableFile};
use super::error::StoreError;
use super::layout::{PartitionKey, Table};
use super::writer::{RollingWriter, FILE_ROWS, UNIQUE_COLUMNS};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Live files in one partition above which a writer compacts it on its own (the submit
/// flusher adds a file per partition per flush).
pub const AUTO_COMPACT_FILES: usize = 16;

/// What compaction did.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct Compacted {
    pub partitions: usize,
    pub files_before: usize,
    pub files_after: usize,
    pub rows: u64,
    pub temporary_files_removed: usize,
    pub lake_version: u64,
}

/// The partitions of `table` holding more than `min_files` live files smaller than
/// `FILE_ROWS` (and more than their rows need), with those files.
fn crowded(lock: &WriteLock, table: Table, only: Option<&[PartitionKey]>, min_files: usize) -> Result<Vec<(PartitionKey, Vec<TableFile>)>, StoreError> {
    let files = super::delta::live_files(lock.lake(), table.into())?;
    let mut by_partition: std::collections::BTreeMap<PartitionKey, Vec<TableFile>> = Default::default();
    // Full files stay as they are: only the small ones are merged.
    for f in files.into_iter().filter(|f| (f.rows as usize) < FILE_ROWS) {
        let key = f.partition.clone().expect("a partitioned table's file has a partition");
        if only.is_none_or(|keys| keys.contains(&key)) {
            by_partition.entry(key).or_default().push(f);
        }
    }
    Ok(by_partition
        .into_iter()
        .filter(|(_, files)| {
            let rows: u64 = files.iter().map(|f| f.rows).sum();
            files.len() > min_files.max((rows as usize).div_ceil(FILE_ROWS).max(1))
        })
        .collect())
}

/// Rewrites one partition's files as full files, row order kept; returns the new files (not
/// yet committed).
fn rewrite(lock: &WriteLock, table: Table, key: &PartitionKey, files: &[TableFile], run_id: &str) -> Result<Vec<TableFile>, StoreError> {
    let lake = lock.lake();
    let mut writer: Option<RollingWriter> = None;
    for file in files {
        let bad = |e: parquet::errors::ParquetError| lake.unreadable(&file.path, e);
        let builder = ParquetRecordBatchReaderBuilder::try_new(lake.objects().open(&file.path)?).map_err(bad)?;
        let schema = builder.schema().clone();
        let w = writer.get_or_insert_with(|| {
            RollingWriter::new(lake, schema, &UNIQUE_COLUMNS, Some(key.clone()), move |n| format!("{}/part-{run_id}-c{n:03}.parquet", key.dir_in(table)))
        });
        for batch in builder.with_batch_size(64 * 1024).build().map_err(bad)? {
            w.write(&batch.map_err(|e| lake.unreadable(&file.path, e))?)?;
        }
    }
    writer.map_or(Ok(Vec::new()), RollingWriter::finish)
}

/// Compacts the partitions of `table` (those in `only`, or all) that hold more than
/// `min_files` files and more than their rows need: one commit per partition.
pub fn compact_table(lock: &WriteLock, table: Table, only: Option<&[PartitionKey]>, min_files: usize, run_id: &str) -> Result<Compacted, StoreError> {
    let mut out = Compacted::default();
    for (key, files) in crowded(lock, table, only, min_files)? {
        let added = rewrite(lock, table, &key, &files, run_id)?;
        out.partitions += 1;
        out.files_before += files.len();
        out.files_after += added.len();
        out.rows += added.iter().map(|f| f.rows).sum::<u64>();
        let change = Change { operation: format!("compact {}", key.dir_in(table)), added, removed: files, rearranged: true, schema: None };
        out.lake_version = lock.commit(table, change)?;
    }
    if out.partitions == 0 {
        out.lake_version = lock.version()?;
    }
    Ok(out)
}

/// Compacts every partition of every partitioned table that needs it.
pub fn compact(lock: &WriteLock, run_id: &str) -> Result<Compacted, StoreError> {
    let mut out = Compacted { temporary_files_removed: lock.temporary_files_removed(), ..Compacted::default() };
    for table in Table::ALL {
        let c = compact_table(lock, table, None, 1, run_id)?;
        out.partitions += c.partitions;
        out.files_before += c.files_before;
        out.files_after += c.files_after;
        out.rows += c.rows;
    }
    out.lake_version = lock.version()?;
    Ok(out)
}

/// The partitions `files` lie in, sorted (what a writer that added them may compact).
pub fn keys_of(files: &[TableFile]) -> Vec<PartitionKey> {
    let mut keys: Vec<PartitionKey> = files.iter().filter_map(|f| f.partition.clone()).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// What vacuum removed (or would remove, in a dry run).
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct Vacuumed {
    /// Files removed, relative to the lake root.
    pub files: Vec<String>,
    pub dry_run: bool,
    pub lake_version: u64,
}

/// Removes from every table the data files no snapshot of the last `retention` needs: files
/// compaction or a dimension edit removed, and files of writers killed before their commit
/// (Delta's full vacuum lists the table's directories for those). Under the write lock, so no
/// writer has files awaiting its commit; time travel to versions older than `retention` then
/// fails for lack of their files.
pub fn vacuum(lock: &WriteLock, retention: std::time::Duration, dry_run: bool) -> Result<Vacuumed, StoreError> {
    use deltalake_core::operations::vacuum::VacuumMode;
    let mut out = Vacuumed { dry_run, ..Default::default() };
    let retention =
        chrono::Duration::from_std(retention).map_err(|e| StoreError::Write { path: lock.lake().to_string(), reason: format!("retention: {e}") })?;
    for t in Stored::ALL.into_iter().chain(super::rollup::Rollup::ALL.map(Stored::Rollup)) {
        let lake = lock.lake().clone();
        let files = lock.lake().objects().block_on(async move {
            let Some(table) = lake.delta_table(t).await? else { return Ok(Vec::new()) };
            let run = table.vacuum().with_retention_period(retention).with_enforce_retention_duration(false).with_mode(VacuumMode::Full).with_dry_run(dry_run);
            let (_, metrics) = run.await.map_err(|e| StoreError::Write { path: lake.locate(t.dir()), reason: format!("vacuum: {e}") })?;
            Ok::<_, StoreError>(metrics.files_deleted)
        })?;
        out.files.extend(files.into_iter().map(|f| if f.starts_with(t.dir()) { f } else { format!("{}/{f}", t.dir()) }));
    }
    out.lake_version = lock.version()?;
    Ok(out)
}
