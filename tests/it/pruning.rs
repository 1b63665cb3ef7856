//! Partition pruning: a one-agency one-quarter filter opens only that partition's files. Proof:
//! every other data file is overwritten with garbage, and the query still answers, with the
//! same numbers as on the intact lake, while an unpruned query over the garbage fails. These
//! are properties of raw scans: the analytics here answer from raw rows only (rollups, which
//! never read the data files, are tested in `rollups.rs`).

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
        filter: Filter { from: Some(quarter.start()), to: Some(quarter.end()), ..Default::default() }.with(Dimension::Agency, ["VA"]),
        group_by: vec![Dimension::Service, Dimension::Channel],
        period: Some(PeriodUnit::Month),
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let raw = |lake: &std::path::Path| analytics(lake).with_rollups(false);
    let good = rt.block_on(raw(&intact).scores(&q)).unwrap();
    let pruned = rt.block_on(raw(&damaged).scores(&q)).expect("only the intact partition is read");
    assert_eq!(pruned.files_scanned, kept);
    assert!(!pruned.rows.is_empty());
    assert_eq!(pruned.rows, good.rows);

    let everything = ScoresQuery { period: Some(PeriodUnit::Month), ..Default::default() };
    let err = rt.block_on(raw(&damaged).scores(&everything)).unwrap_err().to_string();
    assert!(err.contains("data file 'responses/agency=") && err.contains("unreadable"), "the error names the file: {err}");
    // The rollups never read a data file: they still answer, as the intact lake does.
    let from_rollups = rt.block_on(analytics(&damaged).scores(&everything)).unwrap();
    assert_eq!((from_rollups.served.path(), from_rollups.files_scanned), ("rollup", 0));
    assert_eq!(from_rollups.rows.len(), rt.block_on(raw(&intact).scores(&everything)).unwrap().rows.len());
}

#[test]
fn a_foreign_parquet_file_is_named_with_what_is_wrong() {
    let lake = fresh_lake(5_000, 22, 1);
    let target = data_files(&lake).into_iter().next().unwrap();
    // A valid Parquet file of another table dropped into a partition.
    std::fs::remove_file(&target).unwrap();
    let offices =
        std::fs::read_dir(lake.join("dimensions/offices")).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|x| x == "parquet")).unwrap();
    std::fs::copy(offices, &target).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt.block_on(analytics(&lake).with_rollups(false).scores(&ScoresQuery::default())).unwrap_err().to_string();
    let rel = target.strip_prefix(&lake).unwrap().display().to_string();
    assert!(err.contains(&rel) && err.contains("column 'response_id' is missing"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_file_fails_only_the_queries_that_touch_it_and_the_server_stays_up() {
    use poem::IntoEndpoint;
    let lake = fresh_lake(5_000, 23, 1);
    let files = data_files(&lake);
    let target = files.iter().find(|f| f.to_string_lossy().contains("agency=VA/")).expect("a VA file").clone();
    let bytes = std::fs::read(&target).unwrap();
    std::fs::write(&target, &bytes[..bytes.len() / 2]).unwrap();
    let other = files.iter().find_map(|f| {
        let s = f.to_string_lossy();
        let a = s.split("agency=").nth(1)?.split('/').next()?.to_string();
        (a != "VA").then_some(a)
    });
    let other = other.expect("another agency");
    let schema = cxlake::api::schema(analytics(&lake).with_rollups(false));
    let cli = poem::test::TestClient::new(
        cxlake::api::server::routes(schema, cxlake::analytics::Analytics::open(cxlake::store::Lake::open(&lake).unwrap()).unwrap().with_rollups(false), None)
            .into_endpoint(),
    );
    let ask = |agency: &str| serde_json::json!({"query": format!(r#"{{ scores(filter: {{agency: ["{agency}"]}}, measures: [TRUST]) {{ n }} }}"#)});
    let rel = target.strip_prefix(&lake).unwrap().display().to_string();
    for _ in 0..2 {
        let resp = cli.post("/graphql").body_json(&ask("VA")).send().await;
        resp.assert_status_is_ok();
        let v: serde_json::Value = serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap();
        assert_eq!(v["errors"][0]["extensions"]["code"], "CORRUPT_DATA_FILE", "{v}");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains(&rel), "{v}");
        let resp = cli.post("/graphql").body_json(&ask(&other)).send().await;
        let v: serde_json::Value = serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap();
        assert!(v["errors"].is_null() && v["data"]["scores"][0]["n"].as_u64().unwrap() > 0, "{v}");
        cli.get("/health").send().await.assert_status_is_ok();
    }
    // A raw export that reaches the file fails with the file named in the log, not a crash;
    // one of another agency streams whole.
    let resp = cli.get(format!("/v1/export?agency={other}&format=csv")).send().await;
    resp.assert_status_is_ok();
    assert!(resp.0.into_body().into_string().await.unwrap().lines().count() > 1);
}

/// Issue 20: the files a query reads come from the responses table's Delta log, not from a
/// listing, so a zero-byte file, a foreign Parquet file and a stray copy of a data file
/// dropped into a partition directory change no answer (they used to break every lake-wide
/// query, or double count).
#[test]
fn files_the_log_does_not_hold_change_no_answer() {
    let lake = fresh_lake(5_000, 24, 1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let q = ScoresQuery { group_by: vec![Dimension::Agency], period: Some(PeriodUnit::FiscalQuarter), ..Default::default() };
    let before = rt.block_on(analytics(&lake).scores(&q)).unwrap();
    let live = data_files(&lake);
    let dir = live[0].parent().unwrap().to_path_buf();
    let offices =
        std::fs::read_dir(lake.join("dimensions/offices")).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|x| x == "parquet")).unwrap();
    std::fs::write(dir.join("part-zero.parquet"), b"").unwrap();
    std::fs::copy(&offices, dir.join("part-foreign.parquet")).unwrap();
    std::fs::copy(&live[0], dir.join("part-stray-copy.parquet")).unwrap();
    assert_eq!(crate::common::parquet_files_on_disk(&lake).len(), live.len() + 3);
    assert_eq!(data_files(&lake), live, "the table holds the same files");
    let after = rt.block_on(analytics(&lake).scores(&q)).unwrap();
    assert_eq!(after.files_scanned, before.files_scanned);
    assert_eq!(after.rows, before.rows);
}
