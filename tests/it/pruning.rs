//! Partition pruning: a one-agency one-quarter filter opens only that partition's files. Proof:
//! every other data file is overwritten with garbage, and the query still answers, with the
//! same numbers as on the intact lake, while an unpruned query over the garbage fails.

use crate::common::{analytics, data_files, fresh_lake};
use cxlake::analytics::{Filter, ScoresQuery};
use cxlake::domain::{Dimension, FiscalQuarter, PeriodUnit};

#[test]
fn one_agency_one_quarter_opens_only_its_partition() {
    let intact = fresh_lake(30_000, 21, 2);
    let damaged = fresh_lake(30_000, 21, 2);
    let quarter = FiscalQuarter::new(2023, 2);
    let partition = damaged.join(format!("responses/agency=VA/fiscal_year={}/fiscal_quarter={}", quarter.year, quarter.quarter));
    let mut kept = 0;
    for f in data_files(&damaged) {
        if f.starts_with(&partition) {
            kept += 1;
        } else {
            std::fs::write(&f, b"not a parquet file").unwrap();
        }
    }
    assert!(kept >= 1);

    let q = ScoresQuery {
        filter: Filter { from: Some(quarter.start()), to: Some(quarter.end()), ..Default::default() }
            .with(Dimension::Agency, ["VA"]),
        group_by: vec![Dimension::Service, Dimension::Channel],
        period: Some(PeriodUnit::Month),
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let good = rt.block_on(analytics(&intact).scores(&q)).unwrap();
    let pruned = rt.block_on(analytics(&damaged).scores(&q)).expect("only the intact partition is read");
    assert_eq!(pruned.files_scanned, kept);
    assert!(!pruned.rows.is_empty());
    assert_eq!(pruned.rows, good.rows);

    let everything = ScoresQuery { period: Some(PeriodUnit::Month), ..Default::default() };
    let err = rt.block_on(analytics(&damaged).scores(&everything)).unwrap_err().to_string();
    assert!(err.contains("data file 'responses/agency=") && err.contains("unreadable"), "the error names the file: {err}");
}

#[test]
fn a_foreign_parquet_file_is_named_with_what_is_wrong() {
    let lake = fresh_lake(5_000, 22, 1);
    let target = data_files(&lake).into_iter().next().unwrap();
    // A valid Parquet file of another table dropped into a partition.
    std::fs::remove_file(&target).unwrap();
    std::fs::copy(lake.join("dimensions/offices.parquet"), &target).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt.block_on(analytics(&lake).scores(&ScoresQuery::default())).unwrap_err().to_string();
    let rel = target.strip_prefix(&lake).unwrap().display().to_string();
    assert!(err.contains(&rel) && err.contains("column 'response_id' is missing"), "{err}");
}
