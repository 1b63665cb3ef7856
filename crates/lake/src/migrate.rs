//! `cxlake migrate`: a lake of the old layout (format 1: data files found by listing, cxlake's
//! own commit records) becomes Delta tables in place, without rewriting a data file (Delta's
//! convert-to-delta): each table's existing files are added in its first commit, with their
//! partition values from their paths and row counts from their footers. A file that is not a
//! readable Parquet file of its table (a zero-byte or foreign file, a writer's leftover) is
//! named and left out, so it stays invisible. The dimension tables' single files are copied
//! into their table directories (small by design). `lake.json` is rewritten last and each
//! table that already has a log is left alone, so a run cut short is simply run again.

use super::commit::WriteLock;
use super::delta::{Change, Dimension, Stored, TableFile};
use super::error::StoreError;
use super::lake::{Lake, LakeManifest};
use super::layout::{self, PartitionKey, Table, LAKE_MANIFEST};
use serde::Serialize;

/// What a migration did.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Migrated {
    /// Tables converted now: name, files, rows.
    pub tables: Vec<(String, usize, u64)>,
    /// Files left out, with the reason.
    pub left_out: Vec<(String, String)>,
    /// Whether the lake was already in the current layout (nothing to do).
    pub already_current: bool,
    pub lake_version: u64,
}

/// Converts the lake at `location` in place (see the module documentation).
pub fn migrate(location: &str) -> Result<Migrated, StoreError> {
    let lake = Lake::at_location(location)?;
    let not_a_lake = |reason: String| StoreError::NotALake { path: lake.to_string(), reason };
    let text = lake.objects().read(LAKE_MANIFEST)?.ok_or_else(|| not_a_lake(format!("there is no {LAKE_MANIFEST}: not a cxlake lake")))?;
    let manifest: LakeManifest = serde_json::from_slice(&text).map_err(|e| not_a_lake(format!("{LAKE_MANIFEST} is not valid: {e}")))?;
    let mut out = Migrated::default();
    if manifest.format != LakeManifest::FORMAT || !(1..=LakeManifest::VERSION).contains(&manifest.format_version) {
        return Err(not_a_lake(format!(
            "{LAKE_MANIFEST} declares format {} v{}; migrate converts {} v1",
            manifest.format,
            manifest.format_version,
            LakeManifest::FORMAT
        )));
    }
    let lock = WriteLock::acquire(&lake)?;
    if manifest.format_version == LakeManifest::VERSION {
        out.already_current = true;
        out.lake_version = lock.version()?;
        return Ok(out);
    }
    for table in Table::ALL {
        let t = Stored::Partitioned(table);
        if exists(&lake, t)? {
            continue;
        }
        let mut added = Vec::new();
        for (path, size) in lake.objects().list(&format!("{}/", table.root()))? {
            let name = path.rsplit('/').next().unwrap_or_default();
            if path.contains("/_") || layout::is_temporary_file_name(name) {
                continue; // a log, side data, or a writer's leftover
            }
            let Some(key) = PartitionKey::from_path_in(table, &path).filter(|_| layout::is_data_file_name(name)) else {
                set_aside(&lake, &path)?;
                out.left_out.push((path, format!("not a data file of a partition directory (moved to {LEFT_OUT}/)")));
                continue;
            };
            // A file that cannot be read now (I/O) stops the migration; one that reads but is not
            // a Parquet file of this table is left out, moved where no vacuum deletes it.
            lake.objects().open(&path)?;
            match lake.check_data_file(&path, false).and_then(|()| lake.data_file_rows(&path)) {
                Ok(rows) => added.push(TableFile { path, partition: Some(key), size, rows }),
                Err(reason) => {
                    set_aside(&lake, &path)?;
                    out.left_out.push((path, format!("{reason} (moved to {LEFT_OUT}/)")));
                }
            }
        }
        added.sort();
        out.tables.push((t.name().to_string(), added.len(), added.iter().map(|f| f.rows).sum()));
        lock.commit(t, Change { operation: "migrate".into(), added, schema: Some(table.arrow_schema()), ..Default::default() })?;
    }
    for (d, old) in [(Dimension::Services, layout::SERVICES_FILE), (Dimension::Offices, layout::OFFICES_FILE)] {
        let t = Stored::Dimension(d);
        if !exists(&lake, t)? {
            if let Some(bytes) = lake.objects().read(old)? {
                let path = super::delta::dimension_file_name(&lake, d)?;
                let size = bytes.len() as u64;
                lake.objects().replace(&path, bytes.to_vec())?;
                let schema = lake.data_file_schema(&path).map_err(|reason| StoreError::Corrupt { path: lake.locate(old), reason })?;
                let rows = lake.data_file_rows(&path).map_err(|reason| StoreError::Corrupt { path: lake.locate(old), reason })?;
                out.tables.push((t.name().to_string(), 1, rows));
                let added = vec![TableFile { path, partition: None, size, rows }];
                lock.commit(t, Change { operation: "migrate".into(), added, schema: Some(schema), ..Default::default() })?;
            }
        }
        lake.objects().delete(old)?;
    }
    // The home-made commit records are retired: the tables' logs replace them. The head is
    // overwritten, not deleted, so an old cxlake still running fails to read a version and
    // commits nothing (it would otherwise count from 0 and write files no table holds).
    for (path, _) in lake.objects().list("_lake/commits/")? {
        lake.objects().delete(&path)?;
    }
    lake.objects().replace("_lake/HEAD", b"migrated to Delta tables: run a cxlake that reads them\n".to_vec())?;
    lake.objects().replace(LAKE_MANIFEST, serde_json::to_vec_pretty(&LakeManifest::current()).expect("manifest serializes"))?;
    out.lake_version = lock.version()?;
    Ok(out)
}

/// Where files left out of a table go (out of every table's directory).
pub const LEFT_OUT: &str = "_lake/left_out";

/// Moves `path` under `LEFT_OUT`, keeping its relative path.
fn set_aside(lake: &Lake, path: &str) -> Result<(), StoreError> {
    let bytes = lake.objects().read(path)?.unwrap_or_default();
    lake.objects().replace(&format!("{LEFT_OUT}/{path}"), bytes.to_vec())?;
    lake.objects().delete(path)
}

fn exists(lake: &Lake, t: Stored) -> Result<bool, StoreError> {
    let lake2 = lake.clone();
    lake.objects().block_on(async move { lake2.delta_table(t).await.map(|t| t.is_some()) })
}
