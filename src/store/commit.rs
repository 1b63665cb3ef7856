//! Changing the lake: one writer at a time (an exclusive lock file), a private staging
//! directory per write, and a commit log that numbers every change, so the lake has a version
//! readers and caches can key on.
//!
//! ```text
//! <lake>/_lake/writer.lock                  held (flock) by the one process writing
//! <lake>/_lake/commits/<version>.json       one record per commit: files added and removed
//! <lake>/_lake/HEAD                         the last version (so readers need not list commits)
//! <lake>/_lake/ingested/<blake3>.json       digests of source files already ingested
//! <lake>/_staging/<run>/                    private scratch of a write in progress
//! ```
//!
//! Data files are published (renamed into their partition) before the commit record that
//! lists them is written, so a crash between the two leaves whole files whose rows a rerun
//! recognises by response id; the record itself appears atomically.

use super::lake::{Lake, StoreError};
use super::layout::PartitionKey;
use super::writer::{replace_file_atomic, write_file_atomic};
use arrow::array::{Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::Path;

pub const LOCK_FILE: &str = "_lake/writer.lock";
pub const COMMITS_DIR: &str = "_lake/commits";
pub const HEAD_FILE: &str = "_lake/HEAD";
pub const INGESTED_DIR: &str = "_lake/ingested";
pub const STAGING_DIR: &str = "_staging";

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.display().to_string(), source }
}

/// The exclusive right to change a lake, held until dropped (or the process dies: the
/// operating system releases the lock).
pub struct WriteLock {
    lake: Lake,
    _file: File,
}

impl WriteLock {
    /// Waits for the lock, then clears staging left by writers that died.
    pub fn acquire(lake: &Lake) -> Result<WriteLock, StoreError> {
        let path = lake.locate(LOCK_FILE);
        std::fs::create_dir_all(path.parent().expect("lock file has a parent")).map_err(io_err(&path))?;
        let file = File::options().create(true).truncate(false).write(true).open(&path).map_err(io_err(&path))?;
        file.lock().map_err(io_err(&path))?;
        let staging = lake.locate(STAGING_DIR);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
        }
        Ok(WriteLock { lake: lake.clone(), _file: file })
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// A fresh private staging directory (removed when the returned guard drops).
    pub fn staging(&self, name: &str) -> Result<tempfile::TempDir, StoreError> {
        let dir = self.lake.locate(STAGING_DIR);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        tempfile::Builder::new().prefix(&format!("{name}-")).tempdir_in(&dir).map_err(io_err(&dir))
    }

    /// The version of the last commit (0 for a lake never changed since it was created).
    pub fn version(&self) -> Result<u64, StoreError> {
        lake_version(&self.lake)
    }

    /// Records a commit of files already published; returns its version.
    pub fn commit(&self, mut record: CommitRecord) -> Result<u64, StoreError> {
        record.version = self.version()? + 1;
        record.committed_at = chrono::Utc::now().to_rfc3339();
        let path = self.lake.locate(&format!("{COMMITS_DIR}/{:020}.json", record.version));
        write_file_atomic(&path, &serde_json::to_vec_pretty(&record).expect("commit record serializes"))?;
        replace_file_atomic(&self.lake.locate(HEAD_FILE), record.version.to_string().as_bytes())?;
        Ok(record.version)
    }

    /// Whether a source file with this digest was ingested before, and its record if so.
    pub fn ingested(&self, digest: &str) -> Result<Option<IngestedFile>, StoreError> {
        let path = self.lake.locate(&format!("{INGESTED_DIR}/{digest}.json"));
        match std::fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Remembers that a source file was ingested completely.
    pub fn mark_ingested(&self, file: &IngestedFile) -> Result<(), StoreError> {
        let path = self.lake.locate(&format!("{INGESTED_DIR}/{}.json", file.digest));
        write_file_atomic(&path, &serde_json::to_vec_pretty(file).expect("record serializes"))
    }
}

/// The version of a lake: the number of its last commit record. Reads `_lake/HEAD` and checks
/// that no later record exists (a writer that died between the record and the head), so it
/// costs a read and a stat whatever the number of commits: it runs on every query.
pub fn lake_version(lake: &Lake) -> Result<u64, StoreError> {
    let head = lake.locate(HEAD_FILE);
    let mut version = match std::fs::read_to_string(&head) {
        Ok(text) => text.trim().parse::<u64>().map_err(|e| StoreError::Write { path: head.display().to_string(), reason: format!("not a version: {e}") })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io_err(&head)(e)),
    };
    while lake.locate(&format!("{COMMITS_DIR}/{:020}.json", version + 1)).exists() {
        version += 1;
    }
    Ok(version)
}

/// One change to the lake.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CommitRecord {
    pub version: u64,
    pub committed_at: String,
    /// What made the change: `ingest <file>`, `submit`, `compact`.
    pub operation: String,
    /// Data files added and removed, relative to the lake root.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub rows_added: u64,
}

/// A source file that was ingested completely.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IngestedFile {
    pub digest: String,
    pub source: String,
    pub rows_read: u64,
    pub rows_stored: u64,
    pub version: u64,
}

/// The blake3 digest of a file's bytes, hex.
pub fn file_digest(path: &Path) -> Result<String, StoreError> {
    let mut hasher = blake3::Hasher::new();
    let file = File::open(path).map_err(io_err(path))?;
    hasher.update_reader(file).map_err(io_err(path))?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Data files of one partition, relative to the lake root, sorted.
pub fn partition_files(lake: &Lake, key: &PartitionKey) -> Result<Vec<String>, StoreError> {
    let dir = lake.locate(&key.dir());
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let name = entry.map_err(io_err(&dir))?.file_name().to_string_lossy().into_owned();
        if super::layout::is_data_file_name(&name) {
            files.push(format!("{}/{name}", key.dir()));
        }
    }
    files.sort();
    Ok(files)
}

/// Calls `f` with every response id in a Parquet file of the responses table (reads only that
/// column).
pub fn for_each_id(path: &Path, mut f: impl FnMut(&str)) -> Result<(), StoreError> {
    let fail = |reason: String| StoreError::Write { path: path.display().to_string(), reason };
    let file = File::open(path).map_err(io_err(path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| fail(e.to_string()))?;
    let index = builder
        .parquet_schema()
        .columns()
        .iter()
        .position(|c| c.name() == "response_id")
        .ok_or_else(|| fail("has no response_id column".into()))?;
    let mask = ProjectionMask::leaves(builder.parquet_schema(), [index]);
    let reader = builder.with_projection(mask).with_batch_size(64 * 1024).build().map_err(|e| fail(e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| fail(e.to_string()))?;
        let ids = batch.column(0).as_any().downcast_ref::<StringArray>().ok_or_else(|| fail("response_id is not text".into()))?;
        for i in 0..ids.len() {
            if ids.is_valid(i) {
                f(ids.value(i));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_number_the_lake_versions() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::create(dir.path().join("lake")).unwrap();
        let lock = WriteLock::acquire(&lake).unwrap();
        assert_eq!(lock.version().unwrap(), 0);
        assert_eq!(lock.commit(CommitRecord { operation: "test".into(), ..Default::default() }).unwrap(), 1);
        assert_eq!(lock.commit(CommitRecord::default()).unwrap(), 2);
        assert_eq!(lake_version(&lake).unwrap(), 2);
        // A writer that died after its record but before moving the head: the record counts.
        std::fs::write(lake.locate(&format!("{COMMITS_DIR}/{:020}.json", 3)), b"{}").unwrap();
        assert_eq!(lake_version(&lake).unwrap(), 3);
        assert_eq!(lock.commit(CommitRecord::default()).unwrap(), 4);
        assert_eq!(std::fs::read_to_string(lake.locate(HEAD_FILE)).unwrap(), "4");
        assert!(lock.ingested("abc").unwrap().is_none());
        let f = IngestedFile { digest: "abc".into(), source: "x.csv".into(), rows_read: 3, rows_stored: 2, version: 2 };
        lock.mark_ingested(&f).unwrap();
        assert_eq!(lock.ingested("abc").unwrap(), Some(f));
    }

    #[test]
    fn acquiring_the_lock_clears_stale_staging() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::create(dir.path().join("lake")).unwrap();
        let stale = lake.locate(&format!("{STAGING_DIR}/run-dead/x.arrow"));
        std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
        std::fs::write(&stale, b"partial").unwrap();
        let lock = WriteLock::acquire(&lake).unwrap();
        assert!(!stale.exists());
        let s = lock.staging("run").unwrap();
        assert!(s.path().starts_with(lake.locate(STAGING_DIR)));
    }
}
