//! Partition layout of the lake. Responses are hive-partitioned by agency and federal fiscal
//! quarter, so a filter on either prunes whole directories:
//!
//! ```text
//! <lake>/lake.json
//! <lake>/responses/agency=VA/fiscal_year=2025/fiscal_quarter=1/part-….parquet
//! <lake>/telemetry/agency=VA/fiscal_year=2025/fiscal_quarter=1/part-….parquet
//! <lake>/indicators/agency=VA/fiscal_year=2025/fiscal_quarter=1/part-….parquet
//! <lake>/dimensions/services/, offices/       (one-file Delta tables)
//! ```
//!
//! Each table directory is a Delta table (`delta.rs`, its `_delta_log/` beside the partitions).
//! Partition columns live only in the path and the log (the hive convention DuckDB, Spark and
//! Trino follow), not inside the files.

use cx_domain::FiscalQuarter;
use std::collections::BTreeSet;

pub const LAKE_MANIFEST: &str = "lake.json";
pub const RESPONSES: &str = "responses";
pub const DIMENSIONS: &str = "dimensions";
/// Where the old layout (format 1) kept the dimension files (`migrate.rs` moves them).
pub const SERVICES_FILE: &str = "dimensions/services.parquet";
pub const OFFICES_FILE: &str = "dimensions/offices.parquet";

pub use cx_domain::codes::is_valid_agency_code;
use cx_domain::observations::ObservationTable;

/// The partitioned tables of the lake, all laid out alike (agency, fiscal year, quarter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Responses,
    Observations(ObservationTable),
}

impl Table {
    /// Every partitioned table.
    pub const ALL: [Table; 3] = [Table::Responses, Table::TELEMETRY, Table::INDICATORS];

    /// The Arrow schema of the table's files (partition columns excluded).
    pub fn arrow_schema(self) -> arrow::datatypes::SchemaRef {
        match self {
            Table::Responses => super::schema::arrow_schema(),
            Table::Observations(_) => super::observations::arrow_schema(),
        }
    }

    pub const TELEMETRY: Table = Table::Observations(ObservationTable::Telemetry);
    pub const INDICATORS: Table = Table::Observations(ObservationTable::Indicators);

    /// The table's directory under the lake root.
    pub fn root(self) -> &'static str {
        match self {
            Table::Responses => RESPONSES,
            Table::Observations(t) => t.as_str(),
        }
    }
}

/// The partition a response belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub agency: String,
    pub quarter: FiscalQuarter,
}

impl PartitionKey {
    /// Directory of the partition relative to the lake root.
    pub fn dir(&self) -> String {
        self.dir_in(Table::Responses)
    }

    /// Directory of the partition of `table` relative to the lake root.
    pub fn dir_in(&self, table: Table) -> String {
        format!("{}/agency={}/fiscal_year={}/fiscal_quarter={}", table.root(), self.agency, self.quarter.year, self.quarter.quarter)
    }

    /// Parses the partition from a data file path relative to the lake root
    /// (`responses/agency=VA/fiscal_year=2025/fiscal_quarter=1/part-x.parquet`).
    pub fn from_file_path(path: &str) -> Option<PartitionKey> {
        Self::from_path_in(Table::Responses, path)
    }

    /// Parses the partition from the path of a data file of `table`.
    pub fn from_path_in(table: Table, path: &str) -> Option<PartitionKey> {
        let mut parts = path.split('/');
        if parts.next()? != table.root() {
            return None;
        }
        let agency = parts.next()?.strip_prefix("agency=")?;
        let year = parts.next()?.strip_prefix("fiscal_year=")?.parse().ok()?;
        let quarter: u32 = parts.next()?.strip_prefix("fiscal_quarter=")?.parse().ok()?;
        let file = parts.next()?;
        if parts.next().is_some() || !is_data_file_name(file) || !is_valid_agency_code(agency) || !(1..=4).contains(&quarter) {
            return None;
        }
        Some(PartitionKey { agency: agency.to_string(), quarter: FiscalQuarter::new(year, quarter) })
    }
}

/// A writer's temporary file (`.tmp-<random>.partial`, hidden from readers), published under
/// its final name by a rename when complete.
pub fn is_temporary_file_name(name: &str) -> bool {
    name.starts_with(".tmp-") && name.ends_with(".partial")
}

/// Data files end in `.parquet` and are not hidden (temporary files start with `.`, side data
/// lives under `_` directories).
pub fn is_data_file_name(name: &str) -> bool {
    name.ends_with(".parquet") && !name.starts_with('.') && !name.starts_with('_')
}

/// Which partitions a query may touch. `None` means no restriction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartitionFilter {
    pub agencies: Option<BTreeSet<String>>,
    /// Inclusive range of fiscal quarters.
    pub quarters: Option<(FiscalQuarter, FiscalQuarter)>,
    /// Which snapshot of the table: the latest, or one a query names (time travel).
    pub as_of: super::delta::AsOf,
}

impl PartitionFilter {
    pub fn matches(&self, key: &PartitionKey) -> bool {
        self.agencies.as_ref().is_none_or(|a| a.contains(&key.agency)) && self.quarters.is_none_or(|(lo, hi)| lo <= key.quarter && key.quarter <= hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_paths_round_trip() {
        let key = PartitionKey { agency: "VA".into(), quarter: FiscalQuarter::new(2025, 1) };
        assert_eq!(key.dir(), "responses/agency=VA/fiscal_year=2025/fiscal_quarter=1");
        let file = format!("{}/part-0.parquet", key.dir());
        assert_eq!(PartitionKey::from_file_path(&file), Some(key.clone()));
        let telemetry = format!("{}/part-0.parquet", key.dir_in(Table::TELEMETRY));
        assert_eq!(telemetry, "telemetry/agency=VA/fiscal_year=2025/fiscal_quarter=1/part-0.parquet");
        assert_eq!(PartitionKey::from_path_in(Table::TELEMETRY, &telemetry), Some(key));
        assert_eq!(PartitionKey::from_file_path(&telemetry), None, "telemetry is not a response file");
    }

    #[test]
    fn temporary_and_foreign_paths_are_not_data_files() {
        for p in [
            "responses/agency=VA/fiscal_year=2025/fiscal_quarter=1/.tmp123.parquet",
            "responses/agency=VA/fiscal_year=2025/fiscal_quarter=1/part-0.parquet.tmp",
            "responses/agency=VA/fiscal_year=2025/fiscal_quarter=5/part-0.parquet",
            "responses/agency=../fiscal_year=2025/fiscal_quarter=1/part-0.parquet",
            "dimensions/services.parquet",
        ] {
            assert_eq!(PartitionKey::from_file_path(p), None, "{p}");
        }
    }

    #[test]
    fn filter_on_agency_and_quarter_range() {
        let f = PartitionFilter {
            agencies: Some(["VA".to_string()].into()),
            quarters: Some((FiscalQuarter::new(2025, 1), FiscalQuarter::new(2025, 2))),
            ..Default::default()
        };
        let key = |a: &str, y, q| PartitionKey { agency: a.into(), quarter: FiscalQuarter::new(y, q) };
        assert!(f.matches(&key("VA", 2025, 2)));
        assert!(!f.matches(&key("VA", 2025, 3)) && !f.matches(&key("SSA", 2025, 1)));
        assert!(PartitionFilter::default().matches(&key("SSA", 2020, 4)));
    }
}
