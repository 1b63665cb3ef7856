//! Atomic writers: a file becomes visible under its final name only when it is complete and
//! durable (write to a hidden temporary file in the same directory, fsync, rename without
//! replacing, fsync the directory). A crash at any instant leaves either no file or a whole one;
//! a dropped writer removes its temporary file. For a lake in object storage the file is
//! written to a local temporary file and uploaded whole when finished (`objects.rs`).

use super::error::StoreError;
use super::lake::Lake;
use super::objects::Objects;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use std::io::Write;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// Rows per Parquet row group: large enough for efficient scans, small enough to bound the
/// writer's memory.
pub const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Rows per data file that ingestion and compaction aim for (at most).
pub const FILE_ROWS: usize = 1 << 20;

/// Columns whose values are mostly unique (no dictionary encoding).
pub const UNIQUE_COLUMNS: [&str; 3] = ["response_id", "free_text_1", "free_text_2"];

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.display().to_string(), source }
}

/// Writer properties for lake files: zstd, dictionaries for low-cardinality text, statistics
/// per page so readers can skip row groups. `unique_columns` (ids, free text) skip the
/// dictionary, which would only be abandoned.
pub fn parquet_properties(unique_columns: &[&str]) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("valid zstd level")))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(format!("cxlake {}", env!("CARGO_PKG_VERSION")));
    for c in unique_columns {
        b = b.set_column_dictionary_enabled((*c).into(), false);
    }
    b.build()
}

/// A temporary file in `dir`, locked (flock) while this process has it open, so a writer
/// sweeping dead writers' temporary files leaves it alone.
fn temp_in(dir: &Path) -> Result<NamedTempFile, StoreError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = tempfile::Builder::new().prefix(".tmp-").suffix(".partial").tempfile_in(dir).map_err(io_err(dir))?;
    tmp.as_file().lock().map_err(io_err(tmp.path()))?;
    Ok(tmp)
}

/// Makes the temporary file durable and visible as `target`; fails if `target` exists.
fn publish(tmp: NamedTempFile, target: &Path) -> Result<(), StoreError> {
    publish_with(tmp, target, false)
}

/// `publish`, replacing `target` when `replace` (for small pointers such as the lake's head;
/// data files are never replaced).
fn publish_with(tmp: NamedTempFile, target: &Path, replace: bool) -> Result<(), StoreError> {
    // Temporary files are private (0600); published lake files are readable by other engines.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(io_err(target))?;
    }
    tmp.as_file().sync_all().map_err(io_err(target))?;
    let persisted = if replace { tmp.persist(target) } else { tmp.persist_noclobber(target) };
    persisted.map_err(|e| StoreError::Io { path: target.display().to_string(), source: e.error })?;
    if let Some(dir) = target.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
    }
    Ok(())
}

/// Writes `bytes` to `target` atomically.
pub fn write_file_atomic(target: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut tmp = temp_in(dir)?;
    tmp.write_all(bytes).map_err(io_err(target))?;
    publish(tmp, target)
}

/// Writes `bytes` to `target` atomically, replacing what was there: readers see the old or the
/// new content, never a mix.
pub fn replace_file_atomic(target: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut tmp = temp_in(dir)?;
    tmp.write_all(bytes).map_err(io_err(target))?;
    publish_with(tmp, target, true)
}

/// Where a finished file goes.
enum Target {
    /// A local path (the temporary file is beside it).
    Local(PathBuf),
    /// An object of a lake in object storage, relative to its root.
    Object(Objects, String),
}

/// Streams record batches into a Parquet file that appears atomically at `finish`.
pub struct AtomicParquetWriter {
    writer: ArrowWriter<NamedTempFile>,
    target: Target,
    shown: String,
}

impl AtomicParquetWriter {
    /// A writer of the local file `target`.
    pub fn create(target: impl Into<PathBuf>, schema: SchemaRef, props: WriterProperties) -> Result<Self, StoreError> {
        let target = target.into();
        let tmp = temp_in(target.parent().unwrap_or(Path::new(".")))?;
        Self::new(tmp, target.display().to_string(), Target::Local(target), schema, props)
    }

    /// A writer of `relative` in `lake`, wherever the lake lives.
    pub fn in_lake(lake: &Lake, relative: &str, schema: SchemaRef, props: WriterProperties) -> Result<Self, StoreError> {
        match lake.local_root() {
            Some(root) => Self::create(root.join(relative), schema, props),
            None => {
                let tmp = tempfile::Builder::new().prefix(".tmp-").suffix(".partial").tempfile().map_err(io_err(&std::env::temp_dir()))?;
                Self::new(tmp, lake.locate(relative), Target::Object(lake.objects().clone(), relative.to_string()), schema, props)
            }
        }
    }

    fn new(tmp: NamedTempFile, shown: String, target: Target, schema: SchemaRef, props: WriterProperties) -> Result<Self, StoreError> {
        let writer = ArrowWriter::try_new(tmp, schema, Some(props)).map_err(|e| StoreError::Write { path: shown.clone(), reason: e.to_string() })?;
        Ok(Self { writer, target, shown })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), StoreError> {
        self.writer.write(batch).map_err(|e| StoreError::Write { path: self.shown.clone(), reason: e.to_string() })
    }

    /// Completes the file and makes it visible; returns its size in bytes.
    pub fn finish(self) -> Result<u64, StoreError> {
        let shown = self.shown;
        let tmp = self.writer.into_inner().map_err(|e| StoreError::Write { path: shown.clone(), reason: e.to_string() })?;
        let size = tmp.as_file().metadata().map_err(|source| StoreError::Io { path: shown.clone(), source })?.len();
        match self.target {
            Target::Local(target) => publish(tmp, &target)?,
            // The temporary file is removed when `tmp` drops, uploaded or not.
            Target::Object(objects, relative) => objects.upload(tmp.path(), &relative)?,
        }
        Ok(size)
    }
}

/// Writes a stream of record batches into files of at most `FILE_ROWS` rows each (the last one
/// shorter), `name(n)` naming the n-th (relative to the lake root); `finish` returns them as
/// files for one commit. No file is created for no rows. Ingestion and compaction write
/// through it.
pub struct RollingWriter<'a> {
    lake: &'a Lake,
    schema: SchemaRef,
    unique_columns: &'a [&'a str],
    partition: Option<super::layout::PartitionKey>,
    name: Box<dyn Fn(usize) -> String + Send + 'a>,
    current: Option<(AtomicParquetWriter, super::delta::TableFile)>,
    done: Vec<super::delta::TableFile>,
}

impl<'a> RollingWriter<'a> {
    pub fn new(
        lake: &'a Lake,
        schema: SchemaRef,
        unique_columns: &'a [&'a str],
        partition: Option<super::layout::PartitionKey>,
        name: impl Fn(usize) -> String + Send + 'a,
    ) -> Self {
        RollingWriter { lake, schema, unique_columns, partition, name: Box::new(name), current: None, done: Vec::new() }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), StoreError> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.current.as_ref().is_some_and(|(_, f)| f.rows as usize >= FILE_ROWS) {
                self.close()?;
            }
            if self.current.is_none() {
                let path = (self.name)(self.done.len());
                let w = AtomicParquetWriter::in_lake(self.lake, &path, self.schema.clone(), parquet_properties(self.unique_columns))?;
                self.current = Some((w, super::delta::TableFile { path, partition: self.partition.clone(), size: 0, rows: 0 }));
            }
            let (w, f) = self.current.as_mut().expect("created above");
            let take = (FILE_ROWS - f.rows as usize).min(batch.num_rows() - offset);
            w.write(&batch.slice(offset, take))?;
            f.rows += take as u64;
            offset += take;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), StoreError> {
        if let Some((w, mut f)) = self.current.take() {
            f.size = w.finish()?;
            self.done.push(f);
        }
        Ok(())
    }

    /// Completes the last file; returns every file written, in order.
    pub fn finish(mut self) -> Result<Vec<super::delta::TableFile>, StoreError> {
        self.close()?;
        Ok(self.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_never_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.json");
        write_file_atomic(&target, b"first").unwrap();
        assert!(write_file_atomic(&target, b"second").is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"first");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn abandoned_parquet_writer_leaves_nothing_visible() {
        let dir = tempfile::tempdir().unwrap();
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::empty());
        let w = AtomicParquetWriter::create(dir.path().join("p.parquet"), schema, parquet_properties(&[])).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
