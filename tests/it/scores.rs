//! Scores through the analytics layer: recovery of planted structure and clear errors.
//! (Equality with an independent SQL engine is tested in tests/python/test_scores_oracle.py.)

use crate::common::{analytics, shared_lake};
use cxlake::analytics::{AnalyticsError, Filter, ScoresQuery};
use cxlake::domain::{Dimension, Measure, PeriodUnit, Scale};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

#[test]
fn the_planted_service_drop_shows_in_its_quarter() {
    let truth: serde_json::Value = serde_json::from_slice(&std::fs::read(shared_lake().join("truth.json")).unwrap()).unwrap();
    let drop = truth["drops"].as_array().unwrap().iter().find(|d| d["level"] == "service").unwrap().clone();
    let service = drop["id"].as_str().unwrap();
    let q = ScoresQuery {
        filter: Filter::default().with(Dimension::Service, [service]),
        period: Some(PeriodUnit::FiscalQuarter),
        measures: vec![Measure::Trust],
        ..Default::default()
    };
    let rows = rt().block_on(analytics(shared_lake()).scores(&q)).unwrap().rows;
    assert_eq!(rows.len(), 20, "one row per fiscal quarter");
    let last = rows.last().unwrap();
    assert_eq!(last.key.period.as_ref().unwrap().label, drop["fiscal_quarter"].as_str().unwrap());
    let before: Vec<f64> = rows[..rows.len() - 1].iter().filter_map(|r| r.agree_share).collect();
    let typical = before.iter().sum::<f64>() / before.len() as f64;
    let dropped = last.agree_share.unwrap();
    assert!(typical - dropped > 0.15, "agree share {dropped} vs typical {typical}");
    assert!(last.agree_ci.unwrap().high < typical, "the drop is outside the interval");
}

#[test]
fn means_use_likert_only_and_shares_pool_both_scales() {
    let q = ScoresQuery { group_by: vec![Dimension::Agency], ..Default::default() };
    let rows = rt().block_on(analytics(shared_lake()).scores(&q)).unwrap().rows;
    let mixed = rows.iter().find(|r| r.n_thumbs > 0 && r.n_likert > 0).expect("a group with both scales");
    assert_eq!(mixed.n, mixed.n_likert + mixed.n_thumbs);
    let mean = mixed.mean.unwrap();
    assert!((1.0..=5.0).contains(&mean));
    let likert_only = ScoresQuery {
        filter: Filter { scales: Some(vec![Scale::Likert5]), ..Filter::default() }.with(Dimension::Agency, [mixed.key.values[0].1.clone().unwrap()]),
        ..Default::default()
    };
    let lr = rt().block_on(analytics(shared_lake()).scores(&likert_only)).unwrap().rows;
    let same = lr.iter().find(|r| r.measure == mixed.measure).unwrap();
    assert_eq!(same.mean, mixed.mean, "thumbs answers do not move the mean");
    assert_ne!(same.agree_share, mixed.agree_share, "thumbs answers count in the agree share");
}

#[test]
fn weights_change_estimates_and_shrink_effective_n() {
    let base = ScoresQuery { measures: vec![Measure::Trust], ..Default::default() };
    let w = ScoresQuery { weighted: true, ..base.clone() };
    let a = rt().block_on(analytics(shared_lake()).scores(&base)).unwrap().rows.remove(0);
    let b = rt().block_on(analytics(shared_lake()).scores(&w)).unwrap().rows.remove(0);
    assert_eq!(a.n, b.n);
    assert_eq!(a.n_effective, a.n as f64);
    assert!(b.n_effective < b.n as f64 * 0.99, "Kish n_eff {} of n {}", b.n_effective, b.n);
    assert_ne!(a.mean, b.mean);
    let (wa, wb) = (a.agree_ci.unwrap(), b.agree_ci.unwrap());
    assert!(wb.high - wb.low > wa.high - wa.low, "weighted interval is wider");
}

#[test]
fn grouping_by_office_keeps_responses_without_one() {
    let q = ScoresQuery { group_by: vec![Dimension::Office], measures: vec![Measure::Trust], ..Default::default() };
    let rows = rt().block_on(analytics(shared_lake()).scores(&q)).unwrap().rows;
    let total: u64 = rows.iter().map(|r| r.n).sum();
    let all = rt().block_on(analytics(shared_lake()).scores(&ScoresQuery { measures: vec![Measure::Trust], ..Default::default() })).unwrap();
    assert_eq!(total, all.rows[0].n);
    assert!(rows.iter().any(|r| r.key.values[0].1.is_none()), "a null-office group (digital responses)");
}

#[test]
fn unknown_codes_and_bad_ranges_are_errors_naming_them() {
    let a = analytics(shared_lake());
    let bad = ScoresQuery { filter: Filter::default().with(Dimension::Agency, ["NOPE"]), ..Default::default() };
    let err = rt().block_on(a.scores(&bad)).unwrap_err();
    assert!(matches!(&err, AnalyticsError::Invalid { field, .. } if field == "filter.agency"), "{err}");
    assert!(err.to_string().contains("'NOPE'"), "{err}");

    let region = ScoresQuery { filter: Filter::default().with(Dimension::Region, ["ZZ"]), ..Default::default() };
    assert!(rt().block_on(a.scores(&region)).unwrap_err().to_string().contains("'ZZ'"));

    let d = |s: &str| s.parse().unwrap();
    let range = ScoresQuery { filter: Filter { from: Some(d("2025-03-01")), to: Some(d("2025-01-01")), ..Default::default() }, ..Default::default() };
    assert!(rt().block_on(a.scores(&range)).unwrap_err().to_string().contains("filter.from"));
}

#[test]
fn calendar_periods_agree_with_the_domain_calendar() {
    // Polars truncation (used in the plan) and the domain's definition give the same labels:
    // every row's period contains the days the filter selected.
    let d = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
    for unit in [PeriodUnit::Week, PeriodUnit::Month, PeriodUnit::Quarter, PeriodUnit::Year, PeriodUnit::FiscalYear] {
        let q = ScoresQuery {
            filter: Filter { from: Some(d("2024-12-30")), to: Some(d("2025-01-05")), ..Default::default() },
            period: Some(unit),
            measures: vec![Measure::Trust],
            ..Default::default()
        };
        let rows = rt().block_on(analytics(shared_lake()).scores(&q)).unwrap().rows;
        for r in &rows {
            let p = r.key.period.as_ref().unwrap();
            assert_eq!(unit.period(p.start), *p, "{unit:?}");
            assert!(p.start <= d("2025-01-05") && p.end >= d("2024-12-30"), "{unit:?} {p:?}");
        }
        let expected = match unit {
            PeriodUnit::Week | PeriodUnit::FiscalYear => 1,
            _ => 2,
        };
        assert_eq!(rows.len(), expected, "{unit:?}: {:?}", rows.iter().map(|r| &r.key.period).collect::<Vec<_>>());
    }
}

/// Driver items are 1-5 on every row: a thumbs-trust survey's driver answers count in the
/// driver's scores (a 3-row lake: one Likert and two thumbs responses, all answering ease).
#[test]
fn driver_answers_count_on_thumbs_surveys_too() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let csv = dir.path().join("three.csv");
    std::fs::write(
        &csv,
        "agency,response_id,submitted_at,collection_id,bureau,service_id,service_type,channel,scale,trust,ease\n\
         VA,r1,2025-03-01T12:00:00Z,c1,VA-VBA,VA-S01,benefits,digital,likert5,4,4\n\
         VA,r2,2025-03-01T12:00:00Z,c2,VA-VBA,VA-S01,benefits,digital,thumbs,1,5\n\
         VA,r3,2025-03-01T12:00:00Z,c2,VA-VBA,VA-S01,benefits,digital,thumbs,0,3\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cxlake")).arg("ingest").arg("--lake").arg(&lake).arg(&csv).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let a = analytics(&lake).with_suppression(cxlake::analytics::suppression::Suppression { min_cell: 0, min_cell_drivers: 0 });
    let q = ScoresQuery { measures: vec![Measure::Driver(cxlake::domain::Driver::Ease), Measure::Trust], ..Default::default() };
    let rows = rt().block_on(a.scores(&q)).unwrap().rows;
    let ease = rows.iter().find(|r| r.measure == Measure::Driver(cxlake::domain::Driver::Ease)).unwrap();
    assert_eq!((ease.n, ease.n_likert, ease.n_thumbs), (3, 3, 0), "{ease:?}");
    assert_eq!(ease.mean, Some(4.0));
    let trust = rows.iter().find(|r| r.measure == Measure::Trust).unwrap();
    assert_eq!((trust.n, trust.n_likert, trust.n_thumbs), (3, 1, 2), "{trust:?}");
}
