//! A lake on local disk, opened through object_store: validation that the root is a lake,
//! listing of data files with partition pruning, and lazy polars scans over exactly the
//! files a query needs.

use super::layout::{self, PartitionFilter, PartitionKey, LAKE_MANIFEST, RESPONSES};
use super::schema;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::ObjectStore;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Errors of the store, each naming the lake path or file involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no lake at '{path}': {reason}")]
    NotALake { path: String, reason: String },
    #[error("listing '{path}' failed: {source}")]
    List { path: String, source: object_store::Error },
    #[error("I/O error on '{path}': {source}")]
    Io { path: String, source: std::io::Error },
    #[error("cannot write '{path}': {reason}")]
    Write { path: String, reason: String },
}

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
    pub const VERSION: u32 = 1;

    pub fn current() -> Self {
        LakeManifest {
            format: Self::FORMAT.into(),
            format_version: Self::VERSION,
            partitioning: schema::PARTITION_COLUMNS.iter().map(|(n, _)| n.to_string()).collect(),
            created_by: format!("cxlake {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// One immutable data file of the responses table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DataFile {
    /// Path relative to the lake root.
    pub path: String,
    pub partition: PartitionKey,
    pub size: u64,
}

/// An opened lake.
#[derive(Clone)]
pub struct Lake {
    root: PathBuf,
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake").field("root", &self.root).finish()
    }
}

impl Lake {
    /// Opens the lake at `root`, checking that it exists and holds a readable `lake.json`.
    pub fn open(root: impl AsRef<Path>) -> Result<Lake, StoreError> {
        let shown = root.as_ref().display().to_string();
        let not_a_lake = |reason: String| StoreError::NotALake { path: shown.clone(), reason };
        let root = root
            .as_ref()
            .canonicalize()
            .map_err(|e| not_a_lake(format!("{e} (create one with `cxlake generate --out DIR`)")))?;
        let manifest_path = root.join(LAKE_MANIFEST);
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|e| not_a_lake(format!("cannot read {LAKE_MANIFEST}: {e}")))?;
        let manifest: LakeManifest = serde_json::from_str(&text)
            .map_err(|e| not_a_lake(format!("{LAKE_MANIFEST} is not valid: {e}")))?;
        if manifest.format != LakeManifest::FORMAT || manifest.format_version != LakeManifest::VERSION {
            return Err(not_a_lake(format!(
                "{LAKE_MANIFEST} declares format {} v{}, this cxlake reads {} v{}",
                manifest.format, manifest.format_version, LakeManifest::FORMAT, LakeManifest::VERSION
            )));
        }
        Self::at(root)
    }

    /// Creates a new, empty lake at `root` (the directory may exist but must not hold a lake).
    pub fn create(root: impl AsRef<Path>) -> Result<Lake, StoreError> {
        let root = root.as_ref();
        let io = |source| StoreError::Io { path: root.display().to_string(), source };
        std::fs::create_dir_all(root).map_err(io)?;
        let root = root.canonicalize().map_err(io)?;
        let manifest = root.join(LAKE_MANIFEST);
        if manifest.exists() {
            return Err(StoreError::Write { path: root.display().to_string(), reason: "a lake already exists here".into() });
        }
        let json = serde_json::to_vec_pretty(&LakeManifest::current()).expect("manifest serializes");
        super::writer::write_file_atomic(&manifest, &json)?;
        Self::at(root)
    }

    fn at(root: PathBuf) -> Result<Lake, StoreError> {
        if root.to_string_lossy().contains('=') {
            return Err(StoreError::NotALake {
                path: root.display().to_string(),
                reason: "a lake path must not contain '=' (it would be read as a hive partition)".into(),
            });
        }
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| StoreError::NotALake { path: root.display().to_string(), reason: e.to_string() })?;
        Ok(Lake { root, store: Arc::new(store) })
    }

    /// Absolute root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Absolute location of a path relative to the root.
    pub fn locate(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// The response files in the partitions `filter` admits. Only the admitted agencies'
    /// directories are listed; other partitions are never opened.
    pub async fn response_files(&self, filter: &PartitionFilter) -> Result<Vec<DataFile>, StoreError> {
        let prefixes: Vec<String> = match &filter.agencies {
            Some(agencies) => agencies
                .iter()
                .filter(|a| layout::is_valid_agency_code(a))
                .map(|a| format!("{RESPONSES}/agency={a}/"))
                .collect(),
            None => vec![format!("{RESPONSES}/")],
        };
        let mut files = Vec::new();
        for prefix in prefixes {
            let listed: Vec<_> = self
                .store
                .list(Some(&StorePath::from(prefix.as_str())))
                .try_collect()
                .await
                .or_else(|e| match e {
                    object_store::Error::NotFound { .. } => Ok(Vec::new()),
                    source => Err(StoreError::List { path: self.locate(&prefix).display().to_string(), source }),
                })?;
            for meta in listed {
                let path = meta.location.to_string();
                if let Some(partition) = PartitionKey::from_file_path(&path) {
                    if filter.matches(&partition) {
                        files.push(DataFile { path, partition, size: meta.size });
                    }
                }
            }
        }
        files.sort();
        Ok(files)
    }

    /// A lazy scan over exactly `files`, with the partition columns taken from their paths.
    /// The schema is given up front, so planning reads no file. `files` must not be empty.
    pub fn scan_responses(&self, files: &[DataFile]) -> PolarsResult<LazyFrame> {
        polars_ensure!(!files.is_empty(), ComputeError: "scan of an empty file list");
        let paths: Vec<PlRefPath> = files
            .iter()
            .map(|f| PlRefPath::new(self.locate(&f.path).to_string_lossy().as_ref()))
            .collect();
        let args = ScanArgsParquet {
            hive_options: HiveOptions {
                enabled: Some(true),
                hive_start_idx: 0,
                schema: Some(Arc::new(schema::polars_hive_schema())),
                try_parse_dates: false,
            },
            schema: Some(Arc::new(schema::polars_file_schema())),
            ..Default::default()
        };
        LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)
    }

    /// The first of `files` that is not a readable Parquet file of the responses table, with the
    /// reason: used to name the culprit when a scan fails. Reads only footers.
    pub fn find_unreadable(&self, files: &[DataFile]) -> Option<(String, String)> {
        let expected = schema::arrow_schema();
        files.iter().find_map(|f| {
            let path = self.locate(&f.path);
            let check = || -> Result<(), String> {
                let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
                let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| e.to_string())?;
                let schema = builder.schema();
                for field in expected.fields() {
                    match schema.field_with_name(field.name()) {
                        Ok(found) if found.data_type() == field.data_type() => {}
                        Ok(found) => {
                            return Err(format!("column '{}' is {} where the lake stores {}", field.name(), found.data_type(), field.data_type()))
                        }
                        Err(_) => return Err(format!("column '{}' is missing", field.name())),
                    }
                }
                Ok(())
            };
            check().err().map(|reason| (f.path.clone(), reason))
        })
    }

    /// Reads a whole dimension table (small by design).
    pub fn read_dimension(&self, relative: &str) -> PolarsResult<DataFrame> {
        let path = self.locate(relative);
        polars_ensure!(path.exists(), ComputeError: "dimension table '{}' is missing", path.display());
        let args = ScanArgsParquet { hive_options: HiveOptions::new_disabled(), ..Default::default() };
        LazyFrame::scan_parquet(PlRefPath::new(path.to_string_lossy().as_ref()), args)?.collect()
    }
}
