//! A lake, on local disk or in S3 (`objects.rs`): validation that the root is a lake,
//! listing of data files with partition pruning, and lazy polars scans over exactly the
//! files a query needs.

use super::error::StoreError;
use super::layout::{self, PartitionFilter, PartitionKey, Table, LAKE_MANIFEST};
use super::objects::{Objects, Root};
use super::schema;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// `lake.json` at the lake root: marks a directory as a cxlake lake and records its layout.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LakeManifest {
    pub format: String,
    pub format_version: u32,
    pub partitioning: Vec<String>,
    pub created_by: String,
}

impl LakeManifest {
    pub const FORMAT: &'static str = "cxlake";
    /// 2: every table a Delta table (`delta.rs`). 1: files found by listing, with cxlake's own
    /// commit records (`cxlake migrate` converts it in place).
    pub const VERSION: u32 = 2;

    pub fn current() -> Self {
        LakeManifest {
            format: Self::FORMAT.into(),
            format_version: Self::VERSION,
            partitioning: schema::PARTITION_COLUMNS.iter().map(|(n, _)| n.to_string()).collect(),
            created_by: format!("cxlake {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// One immutable data file of a partitioned table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DataFile {
    /// Path relative to the lake root.
    pub path: String,
    pub partition: PartitionKey,
    pub size: u64,
}

/// A local directory made to exist, as an absolute root.
fn made_local(dir: &Path) -> Result<Root, StoreError> {
    let io = |source| StoreError::Io { path: dir.display().to_string(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    Ok(Root::Local(dir.canonicalize().map_err(io)?))
}

/// An opened lake.
#[derive(Clone)]
pub struct Lake {
    objects: Objects,
    /// What queries scanned (shared by clones; `scanned`).
    scanned: Arc<super::scanned::ScanCounters>,
    /// The last snapshot of each Delta table (shared by clones).
    tables: Arc<super::delta::Tables>,
    /// Rollup files read, decoded (shared by clones).
    rollups: Arc<super::rollup::RollupCache>,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake").field("root", &self.objects).finish()
    }
}

impl std::fmt::Display for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.objects.root())
    }
}

impl Lake {
    /// Opens the lake at a local directory, checking that it holds a readable `lake.json`.
    pub fn open(root: impl AsRef<Path>) -> Result<Lake, StoreError> {
        let shown = root.as_ref().display().to_string();
        let root = root
            .as_ref()
            .canonicalize()
            .map_err(|e| StoreError::NotALake { path: shown, reason: format!("{e} (create one with `cxlake generate --out DIR`)") })?;
        Self::open_root(Root::Local(root))
    }

    /// Opens the lake at `location`: a local directory or `s3://bucket/prefix`.
    pub fn open_url(location: &str) -> Result<Lake, StoreError> {
        match Root::parse(location)? {
            Root::Local(dir) => Self::open(dir),
            root => Self::open_root(root),
        }
    }

    fn open_root(root: Root) -> Result<Lake, StoreError> {
        let lake = Self::at(root)?;
        let not_a_lake = |reason: String| StoreError::NotALake { path: lake.to_string(), reason };
        let text = lake
            .objects
            .read(LAKE_MANIFEST)
            .map_err(|e| not_a_lake(format!("cannot read {LAKE_MANIFEST}: {e}")))?
            .ok_or_else(|| not_a_lake(format!("there is no {LAKE_MANIFEST} (create a lake with `cxlake generate --out` or `cxlake ingest`)")))?;
        let manifest: LakeManifest = serde_json::from_slice(&text).map_err(|e| not_a_lake(format!("{LAKE_MANIFEST} is not valid: {e}")))?;
        if manifest.format == LakeManifest::FORMAT && manifest.format_version == 1 {
            return Err(not_a_lake(format!(
                "this lake has the old layout (format {} v1: files found by listing); run `cxlake migrate {}` once to turn it into Delta tables in place (no data file is rewritten)",
                LakeManifest::FORMAT,
                lake
            )));
        }
        if manifest.format != LakeManifest::FORMAT || manifest.format_version != LakeManifest::VERSION {
            return Err(not_a_lake(format!(
                "{LAKE_MANIFEST} declares format {} v{}, this cxlake reads {} v{}",
                manifest.format,
                manifest.format_version,
                LakeManifest::FORMAT,
                LakeManifest::VERSION
            )));
        }
        Ok(lake)
    }

    /// Creates a new, empty lake at a local directory (which may exist but must not hold a lake).
    pub fn create(root: impl AsRef<Path>) -> Result<Lake, StoreError> {
        Self::create_root(made_local(root.as_ref())?)
    }

    /// Creates a new, empty lake at `location`: a local directory or `s3://bucket/prefix`.
    pub fn create_url(location: &str) -> Result<Lake, StoreError> {
        match Root::parse(location)? {
            Root::Local(dir) => Self::create(dir),
            root => Self::create_root(root),
        }
    }

    /// Opens the lake at `location`, creating it first if it holds none. Safe against a
    /// concurrent creator: the manifest is created only if absent, then validated.
    pub fn open_or_create_url(location: &str) -> Result<Lake, StoreError> {
        let root = match Root::parse(location)? {
            Root::Local(dir) => made_local(&dir)?,
            root => root,
        };
        let lake = Self::at(root.clone())?;
        if !lake.objects.exists(LAKE_MANIFEST)? {
            lake.create_tables()?;
            let json = serde_json::to_vec_pretty(&LakeManifest::current()).expect("manifest serializes");
            lake.objects.create(LAKE_MANIFEST, json)?;
        }
        Self::open_root(root)
    }

    /// Creates the partitioned tables that do not exist yet (empty), each its own first commit;
    /// a table a concurrent creator made first is left as it is.
    fn create_tables(&self) -> Result<(), StoreError> {
        use super::delta::{Change, Stored};
        for table in Table::ALL {
            let (lake, t) = (self.clone(), Stored::Partitioned(table));
            let change = Change { operation: "create".into(), schema: Some(table.arrow_schema()), ..Default::default() };
            let created = self.objects.block_on(async move {
                match lake.delta_table(t).await? {
                    Some(_) => Ok(()),
                    None => lake.commit_change(t, change).await.map(|_| ()),
                }
            });
            if let Err(e) = created {
                // Another creator's table is as good as ours.
                if !self.objects.block_on({
                    let lake = self.clone();
                    async move { lake.delta_table(t).await.is_ok_and(|t| t.is_some()) }
                }) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Whether `location` holds a lake (a `lake.json`).
    pub fn exists_at(location: &str) -> Result<bool, StoreError> {
        match Root::parse(location)? {
            Root::Local(dir) => Ok(dir.join(LAKE_MANIFEST).exists()),
            root => Self::at(root)?.objects.exists(LAKE_MANIFEST),
        }
    }

    /// The lake at `location` without checking its manifest (for `migrate`).
    pub(crate) fn at_location(location: &str) -> Result<Lake, StoreError> {
        let root = match Root::parse(location)? {
            Root::Local(dir) => Root::Local(dir.canonicalize().map_err(|e| StoreError::NotALake { path: location.into(), reason: e.to_string() })?),
            root => root,
        };
        Self::at(root)
    }

    fn create_root(root: Root) -> Result<Lake, StoreError> {
        let lake = Self::at(root)?;
        let exists = || StoreError::Write { path: lake.to_string(), reason: "a lake already exists here".into() };
        if lake.objects.exists(LAKE_MANIFEST)? {
            return Err(exists());
        }
        lake.create_tables()?;
        let json = serde_json::to_vec_pretty(&LakeManifest::current()).expect("manifest serializes");
        if !lake.objects.create(LAKE_MANIFEST, json)? {
            return Err(exists());
        }
        Ok(lake)
    }

    fn at(root: Root) -> Result<Lake, StoreError> {
        if let Root::Local(dir) = &root {
            if dir.to_string_lossy().contains('=') {
                return Err(StoreError::NotALake {
                    path: dir.display().to_string(),
                    reason: "a lake path must not contain '=' (it would be read as a hive partition)".into(),
                });
            }
        }
        Ok(Lake { objects: Objects::new(root)?, scanned: Default::default(), tables: Default::default(), rollups: Default::default() })
    }

    pub(crate) fn tables(&self) -> &super::delta::Tables {
        &self.tables
    }

    /// The lake's objects: read, create, replace, list, open, publish.
    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    /// The local directory of a lake on disk; `None` for a lake in S3.
    pub fn local_root(&self) -> Option<&Path> {
        self.objects.local_root()
    }

    /// Where a path relative to the root is (a local path or an `s3://` URL), for messages
    /// and scans.
    pub fn locate(&self, relative: &str) -> String {
        self.objects.url(relative)
    }

    /// The response files in the partitions `filter` admits, from the table's snapshot (the
    /// latest, or the one `filter.as_of` names): no listing, and a file no commit added is
    /// never read.
    pub async fn response_files(&self, filter: &PartitionFilter) -> Result<Vec<DataFile>, StoreError> {
        self.table_files(Table::Responses, filter).await
    }

    /// The data files of `table` in the partitions `filter` admits (see `response_files`).
    pub async fn table_files(&self, table: Table, filter: &PartitionFilter) -> Result<Vec<DataFile>, StoreError> {
        let t = super::delta::Stored::Partitioned(table);
        let Some(snapshot) = self.delta_table_as_of(t, filter.as_of).await? else { return Ok(Vec::new()) };
        let files = self.files_of(t, &snapshot, |p| p.as_ref().is_some_and(|k| filter.matches(k)))?;
        Ok(files.iter().filter_map(|f| f.data_file()).collect())
    }

    /// Data files, rows and bytes handed to this lake's scans since it was opened.
    pub async fn scanned(&self) -> super::scanned::Scanned {
        self.scanned.totals(&self.objects).await
    }

    /// A lazy scan over exactly `files`, with the partition columns taken from their paths.
    /// The schema is given up front, so planning reads no file. `files` must not be empty.
    pub fn scan_responses(&self, files: &[DataFile]) -> PolarsResult<LazyFrame> {
        self.scan_files(files, schema::polars_file_schema())
    }

    /// `scan_responses` with a column `path_column` naming each row's file (as `locate` names
    /// it).
    pub fn scan_responses_with_paths(&self, files: &[DataFile], path_column: &str) -> PolarsResult<LazyFrame> {
        self.scan_files_with(files, schema::polars_file_schema(), Some(path_column))
    }

    /// This lake with at most `bytes` of merged rollup frames kept in memory (1 GiB unless
    /// set); the cache starts empty.
    pub fn with_rollup_memory(mut self, bytes: usize) -> Lake {
        self.rollups = Arc::new(super::rollup::RollupCache::with_budget(256 << 20, bytes));
        self
    }

    pub(crate) fn rollup_cache(&self) -> &super::rollup::RollupCache {
        &self.rollups
    }

    /// A lazy scan over files of an observations table (telemetry, indicators).
    pub fn scan_observations(&self, files: &[DataFile]) -> PolarsResult<LazyFrame> {
        self.scan_files(files, super::observations::polars_schema())
    }

    fn scan_files(&self, files: &[DataFile], file_schema: Schema) -> PolarsResult<LazyFrame> {
        self.scan_files_with(files, file_schema, None)
    }

    fn scan_files_with(&self, files: &[DataFile], file_schema: Schema, path_column: Option<&str>) -> PolarsResult<LazyFrame> {
        polars_ensure!(!files.is_empty(), ComputeError: "scan of an empty file list");
        self.scanned.record(&self.objects, files.iter().map(|f| (f.path.as_str(), f.size)));
        let paths: Vec<PlRefPath> = files.iter().map(|f| PlRefPath::new(self.locate(&f.path))).collect();
        let args = ScanArgsParquet {
            hive_options: HiveOptions { enabled: Some(true), hive_start_idx: 0, schema: Some(Arc::new(schema::polars_hive_schema())), try_parse_dates: false },
            schema: Some(Arc::new(file_schema)),
            cloud_options: self.objects.cloud_options(),
            include_file_paths: path_column.map(PlSmallStr::from),
            ..Default::default()
        };
        LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)
    }

    /// The first of `files` that is not a readable Parquet file of its table, with the reason:
    /// used to name the culprit when a scan fails. Footers and schemas first (cheap: zero-byte,
    /// truncated and foreign files), then, if they are all sound, every page of every file is
    /// decoded (bytes damaged inside a column chunk), which reads the files whole.
    pub fn find_unreadable(&self, files: &[DataFile]) -> Option<(String, String)> {
        use rayon::prelude::*;
        let first = |deep: bool| files.par_iter().find_map_first(|f| self.check_data_file(&f.path, deep).err().map(|reason| (f.path.clone(), reason)));
        first(false).or_else(|| first(true))
    }

    /// The number of rows of the data file `path` (relative to the root), from its footer.
    pub fn data_file_rows(&self, path: &str) -> Result<u64, String> {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let file = self.objects.open(path).map_err(|e| e.to_string())?;
        let reader = SerializedFileReader::new(file).map_err(|e| e.to_string())?;
        Ok(reader.metadata().file_metadata().num_rows().max(0) as u64)
    }

    /// The Arrow schema of the data file `path` (relative to the root), from its footer.
    pub fn data_file_schema(&self, path: &str) -> Result<arrow::datatypes::SchemaRef, String> {
        use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
        let file = self.objects.open(path).map_err(|e| e.to_string())?;
        Ok(ArrowReaderMetadata::load(&file, ArrowReaderOptions::default()).map_err(|e| e.to_string())?.schema().clone())
    }

    /// The error of a read of the data file `path` (relative to the root) that failed with
    /// `error`: `StoreError::Corrupt` naming the file and, when a check finds it, the column
    /// and row group that do not decode.
    pub fn unreadable(&self, path: &str, error: impl std::fmt::Display) -> StoreError {
        let reason = self.check_data_file(path, true).err().unwrap_or_else(|| error.to_string());
        tracing::error!(path = %self.locate(path), %reason, "unreadable data file");
        StoreError::Corrupt { path: self.locate(path), reason }
    }

    /// Whether the data file `path` (relative to the root) is a readable Parquet file of its
    /// table (the responses or an observations table, by its directory): its footer and
    /// columns, and with `deep` every page of every column, each decoded on its own when the
    /// whole file fails so the reason names the column and row group.
    pub fn check_data_file(&self, path: &str, deep: bool) -> Result<(), String> {
        use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
        use parquet::arrow::ProjectionMask;
        let expected = if path.starts_with(&format!("{}/", layout::RESPONSES)) { schema::arrow_schema() } else { super::observations::arrow_schema() };
        let file = self.objects.open(path).map_err(|e| e.to_string())?;
        let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::default()).map_err(|e| e.to_string())?;
        for field in expected.fields() {
            match meta.schema().field_with_name(field.name()) {
                Ok(found) if found.data_type() == field.data_type() => {}
                Ok(found) => return Err(format!("column '{}' is {} where the lake stores {}", field.name(), found.data_type(), field.data_type())),
                Err(_) => return Err(format!("column '{}' is missing", field.name())),
            }
        }
        if !deep {
            return Ok(());
        }
        let decode = |row_groups: Option<Vec<usize>>, mask: Option<ProjectionMask>| -> Result<(), String> {
            let mut builder =
                ParquetRecordBatchReaderBuilder::new_with_metadata(file.try_clone().map_err(|e| e.to_string())?, meta.clone()).with_batch_size(64 * 1024);
            if let Some(rg) = row_groups {
                builder = builder.with_row_groups(rg);
            }
            if let Some(mask) = mask {
                builder = builder.with_projection(mask);
            }
            for batch in builder.build().map_err(|e| e.to_string())? {
                batch.map_err(|e| e.to_string())?;
            }
            Ok(())
        };
        let Err(whole) = decode(None, None) else { return Ok(()) };
        let parquet_schema = meta.metadata().file_metadata().schema_descr_ptr();
        for rg in 0..meta.metadata().num_row_groups() {
            for (j, column) in parquet_schema.columns().iter().enumerate() {
                if let Err(e) = decode(Some(vec![rg]), Some(ProjectionMask::leaves(&parquet_schema, [j]))) {
                    return Err(format!("column '{}' of row group {rg} does not decode: {e}", column.name()));
                }
            }
        }
        Err(format!("its pages do not decode: {whole}"))
    }

    /// Reads a whole dimension table (small by design); `None` before it is first written.
    pub fn read_dimension(&self, d: super::delta::Dimension) -> PolarsResult<Option<DataFrame>> {
        let files = super::delta::dimension_files(self, d).map_err(|e| polars_err!(ComputeError: "{e}"))?;
        let Some(file) = files.last() else { return Ok(None) };
        let args = ScanArgsParquet { hive_options: HiveOptions::new_disabled(), cloud_options: self.objects.cloud_options(), ..Default::default() };
        LazyFrame::scan_parquet(PlRefPath::new(self.locate(&file.path)), args)?.collect().map(Some)
    }
}
