//! Issue 20: a lake of the old layout (format 1: files found by listing, `_lake/commits`
//! records, a `HEAD` file, one Parquet file per dimension) is refused with a message naming
//! `cxlake migrate`, which turns it into Delta tables in place without rewriting a data file:
//! the same answers after, files that are not data of their table left out (and moved where
//! vacuum cannot delete them), and a second run changes nothing.

use crate::common::{analytics, data_files, fresh_lake};
use cxlake::analytics::ScoresQuery;
use cxlake::domain::{Dimension, PeriodUnit};
use std::path::Path;

/// Turns a generated lake into one of the old layout: no logs, dimension files at their old
/// paths, the old commit records and head, `lake.json` v1.
fn make_old(lake: &Path) {
    for dir in ["responses", "telemetry", "indicators", "dimensions/services", "dimensions/offices"] {
        std::fs::remove_dir_all(lake.join(dir).join("_delta_log")).unwrap();
    }
    for t in ["services", "offices"] {
        std::fs::rename(lake.join(format!("dimensions/{t}/part-00000.parquet")), lake.join(format!("dimensions/{t}.parquet"))).unwrap();
        std::fs::remove_dir(lake.join(format!("dimensions/{t}"))).unwrap();
    }
    std::fs::create_dir_all(lake.join("_lake/commits")).unwrap();
    std::fs::write(lake.join("_lake/commits/00000000000000000001.json"), b"{}").unwrap();
    std::fs::write(lake.join("_lake/HEAD"), b"1").unwrap();
    let manifest = std::fs::read_to_string(lake.join("lake.json")).unwrap().replace("\"format_version\": 2", "\"format_version\": 1");
    std::fs::write(lake.join("lake.json"), manifest).unwrap();
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cxlake")).args(args).output().unwrap()
}

#[test]
fn an_old_lake_is_refused_then_migrated_in_place_with_the_same_answers() {
    let lake = fresh_lake(5_000, 61, 1);
    let q = ScoresQuery { group_by: vec![Dimension::Agency, Dimension::Office], period: Some(PeriodUnit::FiscalQuarter), ..Default::default() };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let want = rt.block_on(analytics(&lake).scores(&q)).unwrap().rows;
    let files = data_files(&lake);
    let digests: Vec<_> = files.iter().map(|f| blake3::hash(&std::fs::read(f).unwrap())).collect();
    make_old(&lake);
    // A zero-byte file and a stray non-Parquet file in partition folders of the old lake.
    let dir = files[0].parent().unwrap();
    std::fs::write(dir.join("part-zero.parquet"), b"").unwrap();
    std::fs::write(dir.join("notes.txt"), b"someone's notes").unwrap();

    let err = cxlake::store::Lake::open(&lake).unwrap_err().to_string();
    assert!(err.contains("old layout") && err.contains("cxlake migrate"), "{err}");

    let out = cli(&["migrate", lake.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("responses: {} files", files.len())), "{text}");
    assert!(text.contains("left out") && text.contains("part-zero.parquet") && text.contains("notes.txt"), "{text}");
    // Left-out files moved out of the table, kept.
    let rel = dir.strip_prefix(&lake).unwrap();
    assert!(!dir.join("part-zero.parquet").exists() && lake.join("_lake/left_out").join(rel).join("part-zero.parquet").exists());
    // No data file rewritten; the same answers.
    assert_eq!(data_files(&lake), files);
    assert_eq!(files.iter().map(|f| blake3::hash(&std::fs::read(f).unwrap())).collect::<Vec<_>>(), digests);
    let got = rt.block_on(analytics(&lake).scores(&q)).unwrap().rows;
    assert_eq!(got, want);
    // The inventory came along: the services table holds the generated services.
    assert!(!cxlake::store::services::read(&cxlake::store::Lake::open(&lake).unwrap()).unwrap().is_empty());
    assert!(!lake.join("_lake/commits/00000000000000000001.json").exists());
    assert!(std::fs::read_to_string(lake.join("_lake/HEAD")).unwrap().contains("migrated"));

    // A second run changes nothing.
    let again = cli(&["migrate", lake.to_str().unwrap()]);
    assert!(again.status.success() && String::from_utf8_lossy(&again.stdout).contains("nothing to do"), "{again:?}");
    assert_eq!(rt.block_on(analytics(&lake).scores(&q)).unwrap().rows, want);
}
