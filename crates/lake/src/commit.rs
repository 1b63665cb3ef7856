//! Changing the lake: one writer at a time (an exclusive lock file), a private staging
//! directory per write, and commits through each table's Delta log (`delta.rs`), whose
//! versions give the lake a version readers and caches can key on.
//!
//! ```text
//! <lake>/_lake/writer.lock                  held (flock) by the one process writing
//! <lake>/_lake/ingested/<blake3>.json       digests of source files already ingested
//! <lake>/_staging/<run>/                    private scratch of a write in progress
//! <lake>/_staging/<run>.owner               locked (flock) by the process staging there
//! <lake>/<table>/_delta_log/                each table's commits (delta.rs)
//! ```
//!
//! Staging needs no lock: an ingest reads, validates and stages a file while other writers
//! (the submit flusher, other ingests) commit, and takes the lock only to publish. A writer
//! taking the lock removes the staging of processes that died (whose `.owner` is unlocked).
//!
//! Data files are written under their final names first, then one commit adds them all: until
//! it exists no reader sees any of them, and a writer killed before it leaves files no
//! snapshot references (`vacuum` removes them).
//!
//! On a local disk the lock is an `flock` on `writer.lock` and staging is under the lake; in
//! object storage it is a renewed lease object (`lease.rs`) and staging is a local temporary
//! directory. The lock keeps cxlake's own writers in turn; the Delta log's conditional create
//! is what makes two commits of one version impossible whoever writes.

use super::delta::{Change, Stored};
use super::error::StoreError;
use super::lake::Lake;
use super::layout::PartitionKey;
use arrow::array::{Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::Path;

pub const LOCK_FILE: &str = "_lake/writer.lock";
pub const INGESTED_DIR: &str = "_lake/ingested";
pub const STAGING_DIR: &str = "_staging";

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.display().to_string(), source }
}

/// How the right to write is held.
enum Held {
    /// An exclusive `flock` (local lake), released by the operating system if the process dies.
    File { _locked: File },
    /// A renewed lease object (lake in object storage), expiring if the process dies.
    Lease(Box<super::lease::Lease>),
}

/// The exclusive right to change a lake, held until dropped (or the process dies).
pub struct WriteLock {
    lake: Lake,
    held: Held,
    /// Temporary files of dead writers removed when the lock was taken.
    swept: usize,
}

/// The lake directories writers write into (besides the tables' partition directories): where
/// a killed writer can leave a temporary file. Not the root
/// (`lake.json` is created without the lock) nor the submit log.
const WRITER_DIRS: [&str; 6] =
    ["_lake", INGESTED_DIR, super::layout::DIMENSIONS, "dimensions/services", "dimensions/offices", super::quarantine::QUARANTINE_DIR];

/// Removes the temporary files (`.tmp-*.partial`) that writers killed mid-write left in the
/// partition directories of every table and in `WRITER_DIRS` of the local lake at `root`;
/// returns how many. Only for a holder of the lock; a file some live process holds locked (each
/// writer locks its temporary file while it writes) is left alone. (In object storage there
/// are none: objects are uploaded whole from the writer's local disk.)
fn sweep_temporary_files(root: &Path) -> Result<usize, StoreError> {
    use super::layout::{is_temporary_file_name, Table};
    /// The directories `depth` levels below `dir` (missing ones: none).
    fn dirs_below(dir: &Path, depth: usize, out: &mut Vec<std::path::PathBuf>) -> Result<(), StoreError> {
        if depth == 0 {
            out.push(dir.to_path_buf());
            return Ok(());
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err(dir))?;
            if entry.file_type().map_err(io_err(dir))?.is_dir() {
                dirs_below(&entry.path(), depth - 1, out)?;
            }
        }
        Ok(())
    }
    let mut dirs = Vec::new();
    for table in Table::ALL {
        // <table>/agency=*/fiscal_year=*/fiscal_quarter=*
        dirs_below(&root.join(table.root()), 3, &mut dirs)?;
    }
    dirs.extend(WRITER_DIRS.iter().map(|d| root.join(d)));
    let mut removed = 0;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            if entry.file_name().to_str().is_some_and(is_temporary_file_name) && entry.file_type().map_err(io_err(&dir))?.is_file() {
                // A live writer holds its temporary file locked (an ingest writes its
                // quarantine while it stages, without the write lock).
                let Ok(file) = File::open(entry.path()) else { continue };
                if file.try_lock().is_err() {
                    continue;
                }
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&entry.path())(e)),
                }
            }
        }
    }
    if removed > 0 {
        tracing::info!(lake = %root.display(), removed, "removed temporary files left by writers that died");
    }
    Ok(removed)
}

impl WriteLock {
    /// Waits for the lock, then clears what writers that died left: their staging, and their
    /// temporary files in the lake's directories (local lakes).
    pub fn acquire(lake: &Lake) -> Result<WriteLock, StoreError> {
        let Some(root) = lake.local_root() else {
            let lease = super::lease::Lease::acquire(lake.objects(), LOCK_FILE)?;
            return Ok(WriteLock { lake: lake.clone(), held: Held::Lease(Box::new(lease)), swept: 0 });
        };
        let file = Self::lock_file(root)?;
        file.lock().map_err(io_err(&root.join(LOCK_FILE)))?;
        Self::held(lake, root, file)
    }

    /// `acquire` if no other writer holds the lock of the local lake now; `None` if one does
    /// (and for a lake in object storage, which has nothing to clear). For a writing server
    /// starting up: it clears what dead writers left without waiting behind a long ingest.
    pub fn try_acquire(lake: &Lake) -> Result<Option<WriteLock>, StoreError> {
        let Some(root) = lake.local_root() else { return Ok(None) };
        let file = Self::lock_file(root)?;
        match file.try_lock() {
            Ok(()) => Self::held(lake, root, file).map(Some),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io_err(&root.join(LOCK_FILE))(e)),
        }
    }

    fn lock_file(root: &Path) -> Result<File, StoreError> {
        let path = root.join(LOCK_FILE);
        std::fs::create_dir_all(path.parent().expect("lock file has a parent")).map_err(io_err(&path))?;
        File::options().create(true).truncate(false).write(true).open(&path).map_err(io_err(&path))
    }

    /// The lock of the local lake at `root`, once `file` is locked: dead writers' leftovers
    /// cleared (staging directories and temporary files whose owner is gone).
    fn held(lake: &Lake, root: &Path, file: File) -> Result<WriteLock, StoreError> {
        clear_dead_staging(&root.join(STAGING_DIR))?;
        let swept = sweep_temporary_files(root)?;
        Ok(WriteLock { lake: lake.clone(), held: Held::File { _locked: file }, swept })
    }

    /// How many temporary files of dead writers taking the lock removed.
    pub fn temporary_files_removed(&self) -> usize {
        self.swept
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// A fresh private staging directory (see [`Staging`]).
    pub fn staging(&self, name: &str) -> Result<Staging, StoreError> {
        Staging::create(&self.lake, name)
    }

    /// The lake version now (`delta::Versions::lake`).
    pub fn version(&self) -> Result<u64, StoreError> {
        lake_version(&self.lake)
    }

    /// Commits `change` to table `t` (one Delta commit: all its files or none); returns the
    /// new lake version. Fails, committing nothing, if the lease was lost or the Delta log
    /// refuses the commit (a conflicting concurrent commit).
    pub fn commit(&self, t: impl Into<Stored>, change: Change) -> Result<u64, StoreError> {
        if let Held::Lease(lease) = &self.held {
            lease.check()?;
        }
        let (lake, t) = (self.lake.clone(), t.into());
        // A change of the responses is followed by its rollups' (`rollup::maintain`).
        let rollups = (t == Stored::RESPONSES).then(|| change.clone());
        let version = self.lake.objects().block_on(async move {
            lake.commit_change(t, change).await?;
            Ok::<_, StoreError>(lake.versions().await?.lake())
        })?;
        if let Some(change) = rollups {
            // The data is committed: a failure here leaves files without rollups, which
            // readers answer from raw rows (and `cxlake rollup build` catches up).
            match super::rollup::maintain(self, &change) {
                Ok(done) => tracing::debug!(added = done.added, removed = done.removed, rows = done.rows, "rollups maintained"),
                Err(e) => {
                    tracing::warn!(error = %e, "maintaining the rollups failed; queries read the raw rows of the files concerned until `cxlake rollup build`")
                }
            }
        }
        Ok(version)
    }

    /// Whether a source file with this digest was ingested before, and its record if so.
    pub fn ingested(&self, digest: &str) -> Result<Option<IngestedFile>, StoreError> {
        ingested(&self.lake, digest)
    }

    /// Remembers that a source file was ingested completely.
    pub fn mark_ingested(&self, file: &IngestedFile) -> Result<(), StoreError> {
        let path = format!("{INGESTED_DIR}/{}.json", file.digest);
        self.lake.objects().create(&path, serde_json::to_vec_pretty(file).expect("record serializes")).map(|_| ())
    }
}

/// Whether a source file with this digest was ingested into `lake`, and its record if so (a
/// writer checks again under the lock before it publishes).
pub fn ingested(lake: &Lake, digest: &str) -> Result<Option<IngestedFile>, StoreError> {
    let bytes = lake.objects().read(&format!("{INGESTED_DIR}/{digest}.json"))?;
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// A private staging directory, removed when dropped. Under a local lake it is
/// `_staging/<name>-<random>/`, owned through a lock on its `.owner` file, which exists and is
/// locked before the directory does; in the system's temporary directory for a lake in object
/// storage. Creating one needs no write lock.
pub enum Staging {
    Local { dir: std::path::PathBuf, _owner: tempfile::NamedTempFile },
    Temp(tempfile::TempDir),
}

impl Staging {
    pub fn create(lake: &Lake, name: &str) -> Result<Staging, StoreError> {
        let prefix = format!("{name}-");
        let Some(root) = lake.local_root() else {
            return tempfile::Builder::new().prefix(&prefix).tempdir().map(Staging::Temp).map_err(io_err(&std::env::temp_dir()));
        };
        let parent = root.join(STAGING_DIR);
        std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        let owner = tempfile::Builder::new().prefix(&prefix).suffix(".owner").tempfile_in(&parent).map_err(io_err(&parent))?;
        owner.as_file().lock().map_err(io_err(owner.path()))?;
        let dir = owner.path().with_extension("");
        std::fs::create_dir(&dir).map_err(io_err(&dir))?;
        Ok(Staging::Local { dir, _owner: owner })
    }

    pub fn path(&self) -> &Path {
        match self {
            Staging::Local { dir, .. } => dir,
            Staging::Temp(t) => t.path(),
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // The directory goes first, then (as the fields drop) its owner file.
        if let Staging::Local { dir, .. } = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Removes the staging directories whose owner is gone (its `.owner` file unlocked or absent).
fn clear_dead_staging(staging: &Path) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(staging) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(staging)(e)),
    };
    for entry in entries {
        let dir = entry.map_err(io_err(staging))?.path();
        if !dir.is_dir() {
            continue;
        }
        let owner_path = dir.with_extension("owner");
        let owner = match File::open(&owner_path) {
            Ok(f) => match f.try_lock() {
                Ok(()) => Some(f),
                Err(std::fs::TryLockError::WouldBlock) => continue, // alive: staging now
                Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&owner_path)(e)),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&owner_path)(e)),
        };
        std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
        if owner.is_some() {
            let _ = std::fs::remove_file(&owner_path);
        }
    }
    Ok(())
}

/// The version of a lake: the number of commits of its tables (`delta::Versions::lake`).
/// One existence check per table when nothing changed (it runs on every query).
pub fn lake_version(lake: &Lake) -> Result<u64, StoreError> {
    Ok(versions(lake)?.lake())
}

/// The versions of a lake's tables now.
pub fn versions(lake: &Lake) -> Result<super::delta::Versions, StoreError> {
    let lake2 = lake.clone();
    lake.objects().block_on(async move { lake2.versions().await })
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
    partition_files_in(lake, super::layout::Table::Responses, key)
}

/// Data files of one partition of `table` in its latest snapshot, relative to the lake root,
/// sorted.
pub fn partition_files_in(lake: &Lake, table: super::layout::Table, key: &PartitionKey) -> Result<Vec<String>, StoreError> {
    let filter =
        super::layout::PartitionFilter { agencies: Some([key.agency.clone()].into()), quarters: Some((key.quarter, key.quarter)), ..Default::default() };
    let lake2 = lake.clone();
    let files = lake.objects().block_on(async move { lake2.table_files(table, &filter).await })?;
    Ok(files.into_iter().map(|f| f.path).collect())
}

/// Calls `f` with every response id in a data file of the responses table, given relative to
/// the lake root (reads only that column).
pub fn for_each_id(lake: &Lake, file: &str, mut f: impl FnMut(&str)) -> Result<(), StoreError> {
    let fail = |reason: String| lake.unreadable(file, reason);
    let builder = ParquetRecordBatchReaderBuilder::try_new(lake.objects().open(file)?).map_err(|e| fail(e.to_string()))?;
    let index = builder.parquet_schema().columns().iter().position(|c| c.name() == "response_id").ok_or_else(|| fail("has no response_id column".into()))?;
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

    /// An empty responses file at `path` (relative to the lake), as a file of `key`.
    fn empty_file(lake: &Lake, key: &PartitionKey, name: &str) -> super::super::delta::TableFile {
        let path = format!("{}/{name}", key.dir());
        let schema = crate::schema::arrow_schema();
        let w = crate::writer::AtomicParquetWriter::in_lake(lake, &path, schema, crate::writer::parquet_properties(&[])).unwrap();
        let size = w.finish().unwrap();
        super::super::delta::TableFile { path, partition: Some(key.clone()), size, rows: 0 }
    }

    #[test]
    fn commits_number_the_lake_versions() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::create(dir.path().join("lake")).unwrap();
        let lock = WriteLock::acquire(&lake).unwrap();
        // Three tables created empty: three commits.
        assert_eq!(lock.version().unwrap(), 3);
        let key = PartitionKey { agency: "VA".into(), quarter: cx_domain::FiscalQuarter::checked(2025, 1).unwrap() };
        let a = empty_file(&lake, &key, "part-a.parquet");
        // Written but not committed: no reader sees it.
        assert!(partition_files(&lake, &key).unwrap().is_empty());
        let change = Change { operation: "test".into(), added: vec![a.clone()], ..Default::default() };
        assert_eq!(lock.commit(Stored::RESPONSES, change).unwrap(), 4);
        assert_eq!(partition_files(&lake, &key).unwrap(), vec![a.path.clone()]);
        assert!(std::path::Path::new(&lake.locate("responses/_delta_log/00000000000000000001.json")).exists());
        // A stray file in the partition (not in any commit) stays invisible.
        std::fs::write(lake.locate(&format!("{}/part-stray.parquet", key.dir())), b"").unwrap();
        assert_eq!(partition_files(&lake, &key).unwrap(), vec![a.path.clone()]);
        // A second handle on the lake (another process) sees the same versions.
        let other = Lake::open(lake.local_root().unwrap()).unwrap();
        assert_eq!(lake_version(&other).unwrap(), 4);
        assert_eq!(versions(&other).unwrap().of(Stored::RESPONSES), Some(1));
        assert!(lock.ingested("abc").unwrap().is_none());
        let f = IngestedFile { digest: "abc".into(), source: "x.csv".into(), rows_read: 3, rows_stored: 2, version: 2 };
        lock.mark_ingested(&f).unwrap();
        assert_eq!(lock.ingested("abc").unwrap(), Some(f));
    }

    #[test]
    fn acquiring_the_lock_clears_stale_staging() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::create(dir.path().join("lake")).unwrap();
        let stale = std::path::PathBuf::from(lake.locate(&format!("{STAGING_DIR}/run-dead/x.arrow")));
        std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
        std::fs::write(&stale, b"partial").unwrap();
        // A writer that died staging: its owner file exists but nobody holds it.
        let dead = std::path::PathBuf::from(lake.locate(&format!("{STAGING_DIR}/run-died")));
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.with_extension("owner"), b"").unwrap();
        // An ingest staging now, without the lock.
        let live = Staging::create(&lake, "live").unwrap();
        std::fs::write(live.path().join("rows.arrow"), b"rows").unwrap();
        let lock = WriteLock::acquire(&lake).unwrap();
        assert!(!stale.exists() && !dead.exists() && !dead.with_extension("owner").exists());
        assert!(live.path().join("rows.arrow").exists(), "a live process's staging is kept");
        let s = lock.staging("run").unwrap();
        assert!(s.path().starts_with(lake.locate(STAGING_DIR)));
        let (s_path, live_path) = (s.path().to_path_buf(), live.path().to_path_buf());
        drop((s, live));
        assert!(!s_path.exists() && !live_path.exists() && !live_path.with_extension("owner").exists());
    }
}
