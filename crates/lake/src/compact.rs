//! Compaction: a partition whose rows sit in more files than `FILE_ROWS` requires is rewritten
//! as few full files, row order kept, and swapped in atomically: the new files are written into
//! a private directory which then trades places with the partition directory in one
//! `renameat2(RENAME_EXCHANGE)`, so a reader lists either all old files or all new ones, never
//! both. Leftover temporary files of killed writers are removed on the way.

use super::commit::{partition_files, CommitRecord, WriteLock};
use super::error::StoreError;
use super::layout::PartitionKey;
use super::writer::{parquet_properties, AtomicParquetWriter, FILE_ROWS, UNIQUE_COLUMNS};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};
use std::fs::File;
use std::path::{Path, PathBuf};

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.display().to_string(), source }
}

fn bad(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { path: path.display().to_string(), reason: e.to_string() }
}

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

fn rows_of(path: &Path) -> Result<u64, StoreError> {
    let reader = SerializedFileReader::new(File::open(path).map_err(io_err(path))?).map_err(|e| bad(path, e))?;
    Ok(reader.metadata().file_metadata().num_rows() as u64)
}

/// Every partition directory of the lake, with temporary files of dead writers removed.
fn partitions(root: &Path, removed: &mut usize) -> Result<Vec<PartitionKey>, StoreError> {
    let mut out = Vec::new();
    let responses = root.join(super::layout::RESPONSES);
    let Ok(agencies) = std::fs::read_dir(&responses) else { return Ok(out) };
    for a in agencies.flatten() {
        for y in std::fs::read_dir(a.path()).map_err(io_err(&a.path()))?.flatten() {
            for q in std::fs::read_dir(y.path()).map_err(io_err(&y.path()))?.flatten() {
                let mut first = None;
                for f in std::fs::read_dir(q.path()).map_err(io_err(&q.path()))?.flatten() {
                    let name = f.file_name().to_string_lossy().into_owned();
                    if super::layout::is_temporary_file_name(&name) {
                        std::fs::remove_file(f.path()).map_err(io_err(&f.path()))?;
                        *removed += 1;
                    } else if first.is_none() {
                        first = Some(format!("{}/{}", q.path().strip_prefix(root).unwrap_or(&q.path()).display(), name));
                    }
                }
                if let Some(key) = first.as_deref().and_then(PartitionKey::from_file_path) {
                    out.push(key);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Compacts every partition that needs it.
pub fn compact(lock: &WriteLock, run_id: &str) -> Result<Compacted, StoreError> {
    let lake = lock.lake();
    let Some(root) = lake.local_root() else {
        return Err(StoreError::Write {
            path: lake.to_string(),
            reason: "compaction swaps partition directories, which object storage cannot do atomically; compact a local copy of the lake and upload it".into(),
        });
    };
    // (Taking the lock already removed dead writers' temporary files; count them here.)
    let mut out = Compacted { temporary_files_removed: lock.temporary_files_removed(), ..Compacted::default() };
    let staging = lock.staging(run_id)?;
    let mut record = CommitRecord { operation: "compact".into(), ..Default::default() };
    for key in partitions(root, &mut out.temporary_files_removed)? {
        let files = partition_files(lake, &key)?;
        let paths: Vec<PathBuf> = files.iter().map(|f| root.join(f)).collect();
        let rows: u64 = paths.iter().map(|p| rows_of(p)).sum::<Result<_, _>>()?;
        let needed = (rows as usize).div_ceil(FILE_ROWS).max(1);
        if files.len() <= needed {
            continue;
        }
        // The new partition directory, built privately.
        let fresh = staging.path().join(format!("{}-{}-{}", key.agency, key.quarter.year, key.quarter.quarter));
        std::fs::create_dir_all(&fresh).map_err(io_err(&fresh))?;
        let mut names = Vec::new();
        let mut writer: Option<(AtomicParquetWriter, usize)> = None;
        for path in &paths {
            let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).map_err(io_err(path))?).map_err(|e| bad(path, e))?;
            let schema = builder.schema().clone();
            for batch in builder.with_batch_size(64 * 1024).build().map_err(|e| bad(path, e))? {
                let batch = batch.map_err(|e| bad(path, e))?;
                let mut offset = 0;
                while offset < batch.num_rows() {
                    if writer.as_ref().is_some_and(|(_, n)| *n >= FILE_ROWS) {
                        writer.take().expect("checked").0.finish()?;
                    }
                    if writer.is_none() {
                        let name = format!("part-{run_id}-{:03}.parquet", names.len());
                        let w = AtomicParquetWriter::create(fresh.join(&name), schema.clone(), parquet_properties(&UNIQUE_COLUMNS))?;
                        names.push(name);
                        writer = Some((w, 0));
                    }
                    let (w, n) = writer.as_mut().expect("created");
                    let take = (FILE_ROWS - *n).min(batch.num_rows() - offset);
                    w.write(&batch.slice(offset, take))?;
                    *n += take;
                    offset += take;
                }
            }
        }
        if let Some((w, _)) = writer {
            w.finish()?;
        }
        let dir = root.join(key.dir());
        rustix::fs::renameat_with(rustix::fs::CWD, &fresh, rustix::fs::CWD, &dir, rustix::fs::RenameFlags::EXCHANGE)
            .map_err(|e| StoreError::Io { path: dir.display().to_string(), source: e.into() })?;
        for d in [dir.parent().expect("partition has a parent"), staging.path()] {
            File::open(d).and_then(|f| f.sync_all()).map_err(io_err(d))?;
        }
        out.partitions += 1;
        out.files_before += files.len();
        out.files_after += names.len();
        out.rows += rows;
        record.removed.extend(files);
        record.added.extend(names.iter().map(|n| format!("{}/{n}", key.dir())));
    }
    out.lake_version = if out.partitions > 0 { lock.commit(record)? } else { lock.version()? };
    Ok(out)
}
