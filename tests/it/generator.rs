//! The synthetic generator: deterministic, realistic in shape, with its planted truth.

use crate::common::{data_files, fresh_lake, shared_lake};
use cxlake::domain::FiscalQuarter;
use cxlake::store::{Lake, PartitionFilter};
use polars::prelude::*;

fn all_rows(path: &std::path::Path) -> DataFrame {
    let lake = Lake::open(path).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let files = rt.block_on(lake.response_files(&PartitionFilter::default())).unwrap();
    lake.scan_responses(&files).unwrap().collect().unwrap()
}

#[test]
fn same_seed_gives_identical_files_and_another_seed_does_not() {
    let a = fresh_lake(15_000, 3, 2);
    let b = fresh_lake(15_000, 3, 2);
    let c = fresh_lake(15_000, 4, 2);
    let (fa, fb) = (data_files(&a), data_files(&b));
    assert_eq!(fa.len(), fb.len());
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(x.strip_prefix(&a).unwrap(), y.strip_prefix(&b).unwrap());
        assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap(), "{} differs", x.display());
    }
    assert_eq!(std::fs::read(a.join("truth.json")).unwrap(), std::fs::read(b.join("truth.json")).unwrap());
    let bytes = |p: &std::path::Path| data_files(p).iter().map(|f| std::fs::read(f).unwrap()).collect::<Vec<_>>();
    assert_ne!(bytes(&a), bytes(&c));
}

#[test]
fn row_count_is_exact_and_ids_are_unique() {
    let df = all_rows(shared_lake());
    assert_eq!(df.height(), 40_000);
    assert_eq!(df.column("response_id").unwrap().n_unique().unwrap(), 40_000);
}

#[test]
fn every_row_lies_in_its_partitions_fiscal_quarter() {
    let df = all_rows(shared_lake());
    let ts = df.column("submitted_at").unwrap().datetime().unwrap().clone();
    let fy = df.column("fiscal_year").unwrap().i32().unwrap();
    let fq = df.column("fiscal_quarter").unwrap().i32().unwrap();
    for i in 0..df.height() {
        let us = ts.phys.get(i).unwrap();
        let day = chrono::DateTime::from_timestamp_micros(us).unwrap().date_naive();
        let q = FiscalQuarter::of(day);
        assert_eq!((q.year, q.quarter as i32), (fy.get(i).unwrap(), fq.get(i).unwrap()), "row {i} at {day}");
    }
}

#[test]
fn shape_matches_federal_cx_data() {
    let df = all_rows(shared_lake());
    let n = df.height() as f64;
    let agencies = df.column("agency").unwrap().n_unique().unwrap();
    let services = df.column("service_id").unwrap().n_unique().unwrap();
    let types = df.column("service_type").unwrap().n_unique().unwrap();
    assert!((20..=30).contains(&agencies), "{agencies} agencies");
    assert!((120..=190).contains(&services), "{services} services");
    assert_eq!(types, 7);
    let quarters = df.column("fiscal_year").unwrap().n_unique().unwrap();
    assert_eq!(quarters, 5);

    let thumbs = df.column("scale").unwrap().str().unwrap().iter().filter(|s| *s == Some("thumbs")).count() as f64;
    assert!((0.10..=0.20).contains(&(thumbs / n)), "thumbs share {}", thumbs / n);

    // Missing driver answers among Likert responses: 10-20%.
    let likert = df.clone().lazy().filter(col("scale").eq(lit("likert5"))).collect().unwrap();
    let drivers = ["effectiveness", "ease", "efficiency", "transparency", "humanity", "employee"];
    let missing: usize = drivers.iter().map(|d| likert.column(d).unwrap().null_count()).sum();
    let share = missing as f64 / (likert.height() * drivers.len()) as f64;
    assert!((0.10..=0.20).contains(&share), "missing driver share {share}");

    // Skewed positive: means around 4.0-4.5.
    for m in ["trust", "satisfaction", "ease", "employee"] {
        let mean = likert.column(m).unwrap().as_materialized_series().cast(&DataType::Float64).unwrap().mean().unwrap();
        assert!((3.9..=4.5).contains(&mean), "{m} mean {mean}");
    }
}

#[test]
fn volumes_are_heavy_tailed() {
    let df = all_rows(shared_lake());
    let counts = df
        .lazy()
        .group_by([col("service_id")])
        .agg([len().alias("n")])
        .sort(["n"], SortMultipleOptions::default().with_order_descending(true))
        .collect()
        .unwrap();
    let n: Vec<u32> = counts.column("n").unwrap().idx().unwrap().no_null_iter().collect();
    let top10: u32 = n.iter().take(n.len() / 10).sum();
    // The busiest tenth of services carries far more than a tenth of responses.
    assert!(top10 as f64 > 0.4 * 40_000.0, "top decile carries {top10}");
}

#[test]
fn truth_names_the_planted_structure() {
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shared_lake().join("truth.json")).unwrap()).unwrap();
    assert_eq!(truth["trust_weights"].as_object().unwrap().len(), 7);
    assert_eq!(truth["agency_effects"].as_object().unwrap().len(), 25);
    let drops = truth["drops"].as_array().unwrap();
    assert!(drops.iter().any(|d| d["level"] == "service" && d["fiscal_quarter"] == "FY2026Q4"));
    assert!(drops.iter().any(|d| d["level"] == "office"));
    assert_ne!(truth["trust_weights"]["benefits"], truth["trust_weights"]["compliance"]);
}

#[test]
fn the_committed_sample_lake_is_what_the_generator_writes() {
    // data/sample is `cxlake generate --out data/sample --rows 200000` (seed 2025).
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
    let fresh = fresh_lake(200_000, 2025, 5);
    let rel = |root: &std::path::Path| -> Vec<std::path::PathBuf> {
        data_files(root).into_iter().map(|p| p.strip_prefix(root).unwrap().to_path_buf()).collect()
    };
    assert_eq!(rel(&sample), rel(&fresh), "regenerate data/sample with the command above");
    let mut others: Vec<std::path::PathBuf> = rel(&fresh);
    others.extend(["truth.json", "dimensions/services.parquet", "dimensions/offices.parquet"].map(Into::into));
    for f in others {
        assert!(
            std::fs::read(sample.join(&f)).unwrap() == std::fs::read(fresh.join(&f)).unwrap(),
            "data/sample/{} differs from the generator's output; regenerate it",
            f.display()
        );
    }
}
