//! Driver importance through the analytics layer: degenerate groups, warnings, quadrants, taps,
//! argument errors. (Equality with numpy and brute-force Shapley is tested in
//! tests/python/test_drivers_oracle.py.)

use crate::common::{analytics, shared_lake};
use cxlake::analytics::drivers::{DriverQuery, Missing, Quadrant};
use cxlake::analytics::{AnalyticsError, Filter};
use cxlake::domain::{Dimension, Driver, Measure, PeriodUnit};

/// Runs without small-cell suppression: these tests look at the statistics of tiny groups
/// (suppression is tested in suppression.rs).
fn run(q: &DriverQuery) -> Result<Vec<cxlake::analytics::drivers::DriverGroup>, AnalyticsError> {
    let a = analytics(shared_lake()).with_suppression(cxlake::analytics::suppression::Suppression::none());
    tokio::runtime::Runtime::new().unwrap().block_on(a.driver_importance(q))
}

#[test]
fn tiny_groups_get_an_error_and_a_warning_not_a_panic() {
    let q = DriverQuery { group_by: vec![Dimension::Office], period: Some(PeriodUnit::Week), ..Default::default() };
    let groups = run(&q).unwrap();
    let tiny = groups.iter().find(|g| g.n < 7).expect("some office-week has fewer responses than variables");
    assert!(tiny.error.is_some() && tiny.r2.is_none(), "{tiny:?}");
    assert!(tiny.warnings.iter().any(|w| w.contains("below max(30, 10 x 6 drivers) = 60")), "{:?}", tiny.warnings);
    assert!(tiny.drivers.iter().all(|d| d.shapley.is_none()));
    for g in &groups {
        assert!(g.r2.is_none_or(|r| r.is_finite()), "no NaN escapes");
        assert!(g.drivers.iter().all(|d| d.shapley.is_none_or(f64::is_finite)));
    }
}

#[test]
fn a_constant_driver_is_named() {
    // Within one office in one month, with few responses, some driver is often answered the same
    // by everyone: the group reports which one.
    let q = DriverQuery { group_by: vec![Dimension::Office], period: Some(PeriodUnit::Month), ..Default::default() };
    let groups = run(&q).unwrap();
    let constant = groups.iter().filter_map(|g| g.error.as_deref()).find(|e| e.contains("same answer"));
    let e = constant.expect("a group with a constant driver");
    assert!(Driver::ALL.iter().any(|d| e.contains(&format!("'{d}'"))) || e.contains("'trust'"), "{e}");
}

#[test]
fn shares_sum_to_one_ranks_follow_shapley_and_quadrants_split_on_averages() {
    let q = DriverQuery { group_by: vec![Dimension::ServiceType], ..Default::default() };
    for g in run(&q).unwrap() {
        let total: f64 = g.drivers.iter().map(|d| d.shapley_share.unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!(g.n_dropped.unwrap() > 0, "listwise deletion drops incomplete responses");
        let mean_i = 1.0 / g.drivers.len() as f64;
        let mean_p = g.drivers.iter().map(|d| d.performance.unwrap()).sum::<f64>() / g.drivers.len() as f64;
        for d in &g.drivers {
            let high_i = d.shapley_share.unwrap() >= mean_i - 1e-15;
            let high_p = d.performance.unwrap() >= mean_p;
            let expected = match (high_i, high_p) {
                (true, true) => Quadrant::MaintainStrength,
                (true, false) => Quadrant::FixFirst,
                (false, false) => Quadrant::Secondary,
                (false, true) => Quadrant::PossibleOverinvestment,
            };
            assert_eq!(d.quadrant, Some(expected), "{:?}", d.driver);
            let better = g.drivers.iter().filter(|o| o.shapley.unwrap() > d.shapley.unwrap()).count() as u32;
            assert_eq!(d.rank, Some(better + 1));
        }
    }
}

#[test]
fn taps_come_from_thumbs_responses_only_when_asked() {
    let base = DriverQuery { group_by: vec![Dimension::Agency], ..Default::default() };
    assert!(run(&base).unwrap().iter().all(|g| g.taps.is_empty()));
    let with = DriverQuery { taps: true, ..base };
    let groups = run(&with).unwrap();
    let shown: u64 = groups.iter().map(|g| g.taps[0].shown).sum();
    assert!(shown > 0);
    for t in groups.iter().flat_map(|g| &g.taps) {
        if let (Some(p), Some(ci)) = (t.positive_share, t.positive_ci) {
            assert!(ci.low <= p && p <= ci.high);
        }
    }
}

/// Tap shares count every response shown the tap list: a 1-5 trust survey with the v2 tap lists
/// (Touchpoints' `a11_v2_radio`) as well as a thumbs one.
#[test]
fn taps_count_on_likert_trust_surveys_with_tap_lists() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let csv = dir.path().join("v2.csv");
    let mut text =
        String::from("agency,response_id,submitted_at,collection_id,bureau,service_id,service_type,channel,scale,trust,positive_ease,negative_ease\n");
    for i in 0..40 {
        let (scale, trust) = if i % 2 == 0 { ("likert5", 1 + i % 5) } else { ("thumbs", i % 2) };
        text += &format!("VA,r{i},2025-03-01T12:00:00Z,c{scale},VA-VBA,VA-S01,benefits,digital,{scale},{trust},{},{}\n", i % 4 == 0, i % 3 == 0);
    }
    std::fs::write(&csv, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cxlake")).arg("ingest").arg("--lake").arg(&lake).arg(&csv).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let a = crate::common::analytics(&lake).with_suppression(cxlake::analytics::suppression::Suppression { min_cell: 0, min_cell_drivers: 0 });
    let q = DriverQuery { taps: true, ..Default::default() };
    let groups = tokio::runtime::Runtime::new().unwrap().block_on(a.driver_importance(&q)).unwrap();
    let ease = groups.iter().flat_map(|g| &g.taps).find(|t| t.topic == "ease").expect("an ease tap row");
    assert_eq!(ease.shown, 40, "{ease:?}");
    // positive_ease is true for i % 4 == 0: 10 of 40.
    assert_eq!(ease.positive_share, Some(0.25), "{ease:?}");
}

#[test]
fn pairwise_uses_more_responses_than_listwise() {
    let lw = DriverQuery { outcome: Measure::Satisfaction, ..Default::default() };
    let pw = DriverQuery { missing: Missing::Pairwise, ..lw.clone() };
    let (a, b) = (run(&lw).unwrap().remove(0), run(&pw).unwrap().remove(0));
    assert!(b.n > a.n, "smallest pair count {} vs complete cases {}", b.n, a.n);
    assert!((a.r2.unwrap() - b.r2.unwrap()).abs() < 0.05);
}

#[test]
fn bad_arguments_are_errors_naming_them() {
    let q = DriverQuery { outcome: Measure::Driver(Driver::Ease), ..Default::default() };
    assert!(matches!(run(&q), Err(AnalyticsError::Invalid { field, .. }) if field == "outcome"));
    let q = DriverQuery { bootstrap: Some(5000), ..Default::default() };
    assert!(matches!(run(&q), Err(AnalyticsError::Invalid { field, .. }) if field == "bootstrap"));
    let q = DriverQuery { drivers: vec![], ..Default::default() };
    assert!(matches!(run(&q), Err(AnalyticsError::Invalid { field, .. }) if field == "drivers"));
    let q = DriverQuery { filter: Filter::default().with(Dimension::Office, ["NOPE-1"]), ..Default::default() };
    assert!(run(&q).unwrap_err().to_string().contains("'NOPE-1'"));
}
