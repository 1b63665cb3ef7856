//! The lake's tables are Delta Lake tables (delta-rs, `deltalake-core`): hive-partitioned
//! Parquet plus a transaction log (`<table>/_delta_log/<version>.json`). The log, not a
//! directory listing, says which files a table holds: a file is part of the table from the
//! commit that adds it, and a commit is one conditional create, so a writer killed at any
//! instant leaves every reader on the last commit (its files half-written or not are
//! invisible; `vacuum` removes them once older than the retention period).
//!
//! ```text
//! <lake>/responses/_delta_log/…              the responses table: agency, fiscal_year, fiscal_quarter
//! <lake>/responses/agency=VA/fiscal_year=2025/fiscal_quarter=1/part-….parquet
//! <lake>/telemetry/…, <lake>/indicators/…    observation tables, partitioned alike
//! <lake>/dimensions/services/, …/offices/    dimension tables: one file each, replaced whole
//! ```
//!
//! Every change is one commit of one table (`Change`): an ingest of a file adds all its
//! partitions' files at once; compaction removes and adds in one commit (`data_change`
//! false); a dimension edit removes the old file and adds the new one. The lake version is
//! derived from the tables' versions (`Versions::lake`): the number of commits in the lake.
//!
//! Readers keep the last snapshot of each table (`Tables`) and move it forward only when the
//! next commit file exists: one existence check per table per query, no listing.

use super::error::StoreError;
use super::lake::{DataFile, Lake};

use super::layout::{PartitionKey, Table};
use super::schema::PARTITION_COLUMNS;
use arrow::datatypes::SchemaRef;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake_core::kernel::{Action, Add, DataType as DeltaType, PrimitiveType, Remove, StructField, StructType};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, DeltaTableError};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// A dimension table: small, one file, replaced whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Services,
    Offices,
}

/// A Delta table of the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stored {
    Partitioned(Table),
    Dimension(Dimension),
    /// Sums derived from the responses (`rollup.rs`): not part of the lake version, since
    /// answers from them equal answers from the rows they sum.
    Rollup(super::rollup::Rollup),
}

impl From<Table> for Stored {
    fn from(t: Table) -> Stored {
        Stored::Partitioned(t)
    }
}

impl From<Dimension> for Stored {
    fn from(d: Dimension) -> Stored {
        Stored::Dimension(d)
    }
}

impl Stored {
    pub const RESPONSES: Stored = Stored::Partitioned(Table::Responses);
    pub const ALL: [Stored; 5] = [
        Stored::RESPONSES,
        Stored::Partitioned(Table::TELEMETRY),
        Stored::Partitioned(Table::INDICATORS),
        Stored::Dimension(Dimension::Services),
        Stored::Dimension(Dimension::Offices),
    ];

    /// The table's directory under the lake root.
    pub fn dir(self) -> &'static str {
        match self {
            Stored::Partitioned(t) => t.root(),
            Stored::Dimension(Dimension::Services) => "dimensions/services",
            Stored::Dimension(Dimension::Offices) => "dimensions/offices",
            Stored::Rollup(r) => r.dir(),
        }
    }

    /// The table's name in answers and metrics (`responses`, `services`, …).
    pub fn name(self) -> &'static str {
        self.dir().rsplit('/').next().expect("a directory has a last part")
    }

    fn partitioned(self) -> bool {
        matches!(self, Stored::Partitioned(_) | Stored::Rollup(_))
    }

    fn log_dir(self) -> String {
        format!("{}/_delta_log", self.dir())
    }
}

/// A data file of a table, or written to be added to one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TableFile {
    /// Path relative to the lake root.
    pub path: String,
    /// Its partition (`None` in a dimension table).
    pub partition: Option<PartitionKey>,
    pub size: u64,
    pub rows: u64,
}

/// One commit of one table.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// What made it (`ingest <file>`, `submit`, `compact`, `generate`, …), kept in the commit's
    /// `commitInfo`.
    pub operation: String,
    pub added: Vec<TableFile>,
    pub removed: Vec<TableFile>,
    /// The same rows in other files (compaction): the commit changes no data.
    pub rearranged: bool,
    /// The columns of the files (partition columns excluded), for a commit that creates its
    /// table.
    pub schema: Option<SchemaRef>,
}

/// Table versions (of the tables that exist), by table name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Versions(pub BTreeMap<&'static str, u64>);

impl Versions {
    /// The lake version: the number of commits in all tables (each table's versions count
    /// from 0), so it moves with every commit of any table.
    pub fn lake(&self) -> u64 {
        self.0.values().map(|v| v + 1).sum()
    }

    pub fn of(&self, t: Stored) -> Option<u64> {
        self.0.get(t.name()).copied()
    }
}

/// What a query reads: the latest snapshot of each table, or the one at a version or instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AsOf {
    #[default]
    Latest,
    /// This version of the table read.
    Version(u64),
    /// The last version of each table committed at or before this instant.
    Time(chrono::DateTime<chrono::Utc>),
}

/// The last snapshot of each table, shared by a lake's clones.
#[derive(Default)]
pub struct Tables {
    latest: Mutex<HashMap<Stored, DeltaTable>>,
}

fn delta_err(lake: &Lake, t: Stored) -> impl Fn(DeltaTableError) -> StoreError + '_ {
    move |e| StoreError::Read { path: lake.locate(t.dir()), reason: format!("Delta table: {e}") }
}

fn partition_values(key: &PartitionKey) -> HashMap<String, Option<String>> {
    [("agency", key.agency.clone()), ("fiscal_year", key.quarter.year.to_string()), ("fiscal_quarter", key.quarter.quarter.to_string())]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Some(v)))
        .collect()
}

fn key_of(values: &HashMap<String, Option<String>>) -> Option<PartitionKey> {
    let get = |k: &str| values.get(k).cloned().flatten();
    let quarter = cx_domain::FiscalQuarter::checked(get("fiscal_year")?.parse().ok()?, get("fiscal_quarter")?.parse().ok()?).ok()?;
    Some(PartitionKey { agency: get("agency")?, quarter })
}

/// The path of `file` relative to its table's directory.
fn in_table(t: Stored, path: &str) -> Result<String, StoreError> {
    path.strip_prefix(t.dir())
        .and_then(|p| p.strip_prefix('/'))
        .map(str::to_string)
        .ok_or_else(|| StoreError::Write { path: path.to_string(), reason: format!("a file of table {} must lie under {}/", t.name(), t.dir()) })
}

impl TableFile {
    /// The file as a data file of a partitioned table (`None` in a dimension table).
    pub fn data_file(&self) -> Option<DataFile> {
        Some(DataFile { path: self.path.clone(), partition: self.partition.clone()?, size: self.size })
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Lake {
    /// The latest snapshot of `t` (`None` if the table does not exist): the cached one, moved
    /// forward when a later commit exists.
    pub async fn delta_table(&self, t: Stored) -> Result<Option<DeltaTable>, StoreError> {
        let cached = self.tables().latest.lock().expect("table cache lock").get(&t).cloned();
        let mut table = match cached {
            Some(table) => {
                let v = table.version().unwrap_or(0);
                if !self.objects().exists_async(&format!("{}/{:020}.json", t.log_dir(), v + 1)).await? {
                    return Ok(Some(table));
                }
                table
            }
            None => DeltaTable::new(self.objects().delta_log_store(t.dir())?),
        };
        let log_store = table.log_store();
        let loaded = self.objects().run(async move { table.update_incremental(None).await.map(|()| table) }).await;
        match loaded {
            Ok(table) => {
                let mut cache = self.tables().latest.lock().expect("table cache lock");
                // A slower concurrent load never moves the cache back.
                if cache.get(&t).is_none_or(|c| c.version() < table.version()) {
                    cache.insert(t, table.clone());
                }
                Ok(Some(table))
            }
            Err(e) => {
                // No commit file at all: no table (yet). A log that does not load is an error.
                let exists = self.objects().run(async move { log_store.is_delta_table_location().await }).await;
                match exists {
                    Ok(false) => Ok(None),
                    _ => Err(delta_err(self, t)(e)),
                }
            }
        }
    }

    /// The snapshot of `t` that `as_of` names (`None`: no such table, or none yet then).
    pub async fn delta_table_as_of(&self, t: Stored, as_of: AsOf) -> Result<Option<DeltaTable>, StoreError> {
        if as_of == AsOf::Latest {
            return self.delta_table(t).await;
        }
        let Some(latest) = self.delta_table(t).await? else { return Ok(None) };
        let current = latest.version().unwrap_or(0);
        let mut table = DeltaTable::new(latest.log_store());
        let result = match as_of {
            AsOf::Latest => unreachable!("handled above"),
            AsOf::Version(v) if v == current => return Ok(Some(latest)),
            AsOf::Version(v) if v > current => {
                return Err(StoreError::Read { path: self.locate(t.dir()), reason: format!("table {} has no version {v} (its latest is {current})", t.name()) })
            }
            AsOf::Version(v) => self.objects().run(async move { table.load_version(v).await.map(|()| table) }).await,
            AsOf::Time(at) => self.objects().run(async move { table.load_with_datetime(at).await.map(|()| table) }).await,
        };
        let table = result.map_err(delta_err(self, t))?;
        if let AsOf::Time(at) = as_of {
            // delta-rs answers an instant before the first commit it knows with that commit:
            // the table did not exist yet (or its log from then is gone).
            let v = table.version().unwrap_or(0);
            let committed = table.snapshot().ok().and_then(|s| s.version_timestamp(v));
            if committed.is_some_and(|ms| ms > at.timestamp_millis()) {
                if v == 0 {
                    return Ok(None);
                }
                return Err(StoreError::Read {
                    path: self.locate(t.dir()),
                    reason: format!("table {} has no log from {at} any more (its earliest version kept is {v})", t.name()),
                });
            }
        }
        Ok(Some(table))
    }

    /// The versions of the lake's tables as `as_of` names them (a version names each table's
    /// own version).
    pub async fn versions_as_of(&self, as_of: AsOf) -> Result<Versions, StoreError> {
        let mut out = Versions::default();
        for t in Stored::ALL {
            if let Some(table) = self.delta_table_as_of(t, as_of).await? {
                out.0.insert(t.name(), table.version().unwrap_or(0));
            }
        }
        Ok(out)
    }

    /// The versions of the lake's tables now.
    pub async fn versions(&self) -> Result<Versions, StoreError> {
        self.versions_as_of(AsOf::Latest).await
    }

    /// The live data files of `t` in `table`'s snapshot whose partition `keep` admits, sorted.
    pub fn files_of(&self, t: Stored, table: &DeltaTable, keep: impl Fn(&Option<PartitionKey>) -> bool) -> Result<Vec<TableFile>, StoreError> {
        let snapshot = table.snapshot().map_err(delta_err(self, t))?;
        let mut files = Vec::new();
        for f in snapshot.log_data().iter() {
            let partition = if t.partitioned() {
                let values = f.partition_values_map();
                let Some(key) = key_of(&values) else {
                    return Err(StoreError::Read { path: self.locate(t.dir()), reason: format!("file {} has partition values {values:?}", f.path()) });
                };
                Some(key)
            } else {
                None
            };
            if keep(&partition) {
                let path = format!("{}/{}", t.dir(), f.path());
                files.push(TableFile { path, partition, size: f.size() as u64, rows: f.num_records().unwrap_or(0) as u64 });
            }
        }
        files.sort();
        Ok(files)
    }

    /// Commits `change` to `t` (creating the table if it does not exist and the change says
    /// its columns); returns the table's new version. Only for a holder of the write lock
    /// (`commit::WriteLock`). A concurrent writer elsewhere is caught by the log's conditional
    /// create: appends are retried on top of its commit (they commute), a change that removes
    /// files is not (see below).
    pub(crate) async fn commit_change(&self, t: Stored, change: Change) -> Result<u64, StoreError> {
        let fail = |reason: String| StoreError::Write { path: self.locate(t.dir()), reason };
        let mut actions = Vec::with_capacity(change.added.len() + change.removed.len());
        for f in &change.added {
            actions.push(Action::Add(Add {
                path: in_table(t, &f.path)?,
                partition_values: f.partition.as_ref().map(partition_values).unwrap_or_default(),
                size: f.size as i64,
                modification_time: now_ms(),
                data_change: !change.rearranged,
                stats: Some(serde_json::json!({ "numRecords": f.rows }).to_string()),
                tags: None,
                deletion_vector: None,
                base_row_id: None,
                default_row_commit_version: None,
                clustering_provider: None,
            }));
        }
        for f in &change.removed {
            actions.push(Action::Remove(Remove {
                path: in_table(t, &f.path)?,
                data_change: !change.rearranged,
                deletion_timestamp: Some(now_ms()),
                extended_file_metadata: Some(true),
                partition_values: Some(f.partition.as_ref().map(partition_values).unwrap_or_default()),
                size: Some(f.size as i64),
                tags: None,
                deletion_vector: None,
                base_row_id: None,
                default_row_commit_version: None,
            }));
        }
        // Expired logs are cleaned by `vacuum`, not by every commit (which would list the whole
        // log each time).
        let props = CommitProperties::default()
            .with_metadata([("cxlake.operation".to_string(), serde_json::Value::String(change.operation.clone()))])
            .with_cleanup_expired_logs(Some(false));
        let partition_by = t.partitioned().then(|| PARTITION_COLUMNS.iter().map(|(c, _)| c.to_string()).collect::<Vec<_>>());
        let version = match self.delta_table(t).await? {
            None => {
                let schema = change
                    .schema
                    .clone()
                    .ok_or_else(|| fail("the table does not exist (create the lake with `cxlake generate` or `cxlake migrate`)".into()))?;
                let columns = table_columns(t, &schema).map_err(|e| fail(e.to_string()))?;
                let log_store = self.objects().delta_log_store(t.dir())?;
                let create = deltalake_core::operations::create::CreateBuilder::new()
                    .with_log_store(log_store)
                    .with_table_name(t.name())
                    .with_columns(columns.fields().cloned())
                    .with_partition_columns(partition_by.clone().unwrap_or_default())
                    .with_save_mode(SaveMode::ErrorIfExists)
                    .with_actions(actions)
                    .with_commit_properties(props);
                self.objects().run(async move { create.await.map(|table| table.version().unwrap_or(0)) }).await.map_err(|e| fail(e.to_string()))?
            }
            Some(table) => {
                // Files a change removes must be live in the snapshot it commits on, and the
                // commit is not retried on a newer one: a commit that lands in between (any
                // writer's) fails this one rather than being merged around it (delta-rs does not
                // count `dataChange: false` removes as conflicts).
                let mut props = props;
                if !change.removed.is_empty() {
                    let live: std::collections::HashSet<String> = self.files_of(t, &table, |_| true)?.into_iter().map(|f| f.path).collect();
                    if let Some(gone) = change.removed.iter().find(|f| !live.contains(&f.path)) {
                        return Err(fail(format!("{} is no longer in the table (another writer changed it); nothing was committed", gone.path)));
                    }
                    props = props.with_max_retries(0);
                }
                let operation = if change.rearranged {
                    DeltaOperation::Optimize { predicate: None, target_size: super::writer::FILE_ROWS as i64 }
                } else {
                    let mode = if change.removed.is_empty() { SaveMode::Append } else { SaveMode::Overwrite };
                    DeltaOperation::Write { mode, partition_by, predicate: None }
                };
                let log_store = table.log_store();
                self.objects()
                    .run(async move {
                        let snapshot = table.snapshot()?;
                        let written = CommitBuilder::from(props)
                            .with_actions(actions)
                            .build(Some(snapshot), log_store, operation)
                            .into_prepared_commit_future()
                            .await?
                            .await?;
                        let version = written.version;
                        // The commit is durable now; a failed checkpoint (the post-commit hook)
                        // does not undo it.
                        if let Err(e) = written.await {
                            tracing::warn!(table = t.name(), version, error = %e, "post-commit work (checkpoint) failed");
                        }
                        Ok::<_, DeltaTableError>(version)
                    })
                    .await
                    .map_err(|e| fail(e.to_string()))?
            }
        };
        // Move the cached snapshot forward now, so this writer reads its own commit (a failure
        // here does not undo the commit: the next read retries).
        if let Err(e) = self.delta_table(t).await {
            tracing::warn!(table = t.name(), version, error = %e, "reloading the table after a commit failed");
        }
        Ok(version)
    }
}

/// The Delta schema of `t` with files of columns `schema`: those columns, then the
/// partition columns of a partitioned table.
pub fn table_columns(t: Stored, schema: &SchemaRef) -> Result<StructType, String> {
    let columns: StructType = schema.as_ref().try_into_kernel().map_err(|e| e.to_string())?;
    let mut fields: Vec<StructField> = columns.fields().cloned().collect();
    if t.partitioned() {
        for (name, ty) in &PARTITION_COLUMNS {
            let ty = match ty {
                polars::prelude::DataType::Int32 => PrimitiveType::Integer,
                polars::prelude::DataType::String => PrimitiveType::String,
                other => return Err(format!("partition column {name}: no Delta type for {other}")),
            };
            fields.push(StructField::new(*name, DeltaType::Primitive(ty), false));
        }
    }
    StructType::try_new(fields).map_err(|e| e.to_string())
}

/// The live files of table `t` in its latest snapshot (none before it exists), sorted.
pub fn live_files(lake: &Lake, t: Stored) -> Result<Vec<TableFile>, StoreError> {
    let lake2 = lake.clone();
    lake.objects().block_on(async move {
        match lake2.delta_table(t).await? {
            Some(snapshot) => lake2.files_of(t, &snapshot, |_| true),
            None => Ok(Vec::new()),
        }
    })
}

/// The live files of dimension `d` (one; none before the table is first written).
pub fn dimension_files(lake: &Lake, d: Dimension) -> Result<Vec<TableFile>, StoreError> {
    live_files(lake, d.into())
}

/// The name of the next file of dimension `d`: numbered by the table version that will add it
/// (the same for the same history, so generated lakes are reproducible byte for byte).
pub fn dimension_file_name(lake: &Lake, d: Dimension) -> Result<String, StoreError> {
    let (lake2, t) = (lake.clone(), Stored::Dimension(d));
    let next = lake.objects().block_on(async move { lake2.delta_table(t).await.map(|t| t.and_then(|t| t.version()).map_or(0, |v| v + 1)) })?;
    Ok(format!("{}/part-{next:05}.parquet", t.dir()))
}

/// Replaces dimension `d` with `batch`: a new file, and one commit that adds it and removes
/// the old one (readers see the old table or the new one); returns the new lake version.
pub fn replace_dimension(lock: &super::commit::WriteLock, d: Dimension, batch: &arrow::array::RecordBatch, operation: String) -> Result<u64, StoreError> {
    use super::writer::{parquet_properties, AtomicParquetWriter};
    let lake = lock.lake();
    let t = Stored::Dimension(d);
    let removed = dimension_files(lake, d)?;
    let path = dimension_file_name(lake, d)?;
    let mut w = AtomicParquetWriter::in_lake(lake, &path, batch.schema(), parquet_properties(&[]))?;
    w.write(batch)?;
    let size = w.finish()?;
    let added = vec![TableFile { path, partition: None, size, rows: batch.num_rows() as u64 }];
    lock.commit(t, Change { operation, added, removed, rearranged: false, schema: Some(batch.schema()) })
}
