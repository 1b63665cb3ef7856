//! Rollups answer exactly what raw rows answer: every period unit, every filter dimension,
//! groupings, ranges that cut months, weights, scales and suppression, against the same
//! analytics with rollups off; files without rollups are read raw, never twice; every writer
//! keeps the rollup tables in line with the responses. (Equality with DuckDB over the raw rows
//! is tested in tests/python, once with rollups and once without.)

use crate::common::{analytics, fresh_lake, shared_lake};
use chrono::NaiveDate;
use cxlake::analytics::drivers::{DriverQuery, Missing};
use cxlake::analytics::rollups::{route, Served, ServedLog};
use cxlake::analytics::{Analytics, Filter, ScoreRow, ScoresQuery};
use cxlake::domain::{Dimension, Measure, PeriodUnit, Scale};
use cxlake::store::delta::Change;
use cxlake::store::rollup::Rollup;
use std::path::Path;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

const PERIODS: [Option<PeriodUnit>; 8] = [
    None,
    Some(PeriodUnit::Day),
    Some(PeriodUnit::Week),
    Some(PeriodUnit::Month),
    Some(PeriodUnit::Quarter),
    Some(PeriodUnit::Year),
    Some(PeriodUnit::FiscalQuarter),
    Some(PeriodUnit::FiscalYear),
];

const DIMENSIONS: [Dimension; 8] = [
    Dimension::Agency,
    Dimension::Bureau,
    Dimension::Service,
    Dimension::ServiceType,
    Dimension::Channel,
    Dimension::Office,
    Dimension::Region,
    Dimension::Stage,
];

/// Asserts two answers are the same rows: keys, counts and bins exactly, statistics to 1e-12.
fn assert_same(label: &str, a: &[ScoreRow], b: &[ScoreRow]) {
    assert_eq!(a.len(), b.len(), "{label}: rows");
    let close = |x: Option<f64>, y: Option<f64>, what: &str| match (x, y) {
        (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{label} {what}: {x} vs {y}"),
        (x, y) => assert_eq!(x, y, "{label} {what}"),
    };
    for (r, s) in a.iter().zip(b) {
        assert_eq!(r.key, s.key, "{label}");
        assert_eq!(r.measure, s.measure, "{label}");
        assert_eq!((r.n, r.n_likert, r.n_thumbs), (s.n, s.n_likert, s.n_thumbs), "{label} {:?}", r.key);
        assert_eq!(r.suppressed, s.suppressed, "{label} {:?}", r.key);
        assert_eq!(r.bins.len(), s.bins.len(), "{label} {:?}", r.key);
        for ((sa, ba), (sb, bb)) in r.bins.iter().zip(&s.bins) {
            assert_eq!((sa, ba.value, ba.count), (sb, bb.value, bb.count), "{label} {:?}", r.key);
            close(Some(ba.weight), Some(bb.weight), "bin weight");
            close(Some(ba.weight_sq), Some(bb.weight_sq), "bin squared weight");
        }
        close(r.mean, s.mean, "mean");
        close(r.sd, s.sd, "sd");
        close(r.agree_share, s.agree_share, "agree share");
        close(Some(r.n_effective), Some(s.n_effective), "n effective");
        close(r.mean_ci.map(|c| c.low), s.mean_ci.map(|c| c.low), "mean ci");
        close(r.agree_ci.map(|c| c.high), s.agree_ci.map(|c| c.high), "agree ci");
    }
}

/// Runs `q` with rollups and without; asserts the same answer; returns what served the first.
fn both(a: &Analytics, q: &ScoresQuery, label: &str) -> Served {
    let with = rt().block_on(a.clone().with_rollups(true).scores(q)).unwrap_or_else(|e| panic!("{label}: {e}"));
    let without = rt().block_on(a.clone().with_rollups(false).scores(q)).unwrap();
    assert_eq!(without.served.rollup_files, 0, "{label}: rollups off reads none");
    assert_same(label, &with.rows, &without.rows);
    assert!(!with.rows.is_empty() || q.filter.from.is_some(), "{label}: an answer with rows");
    with.served
}

#[test]
fn every_period_filter_grouping_range_and_weighting_answers_as_raw_rows_do() {
    let a = analytics(shared_lake()).with_suppression(cxlake::analytics::suppression::Suppression { min_cell: 10, ..Default::default() });
    let catalog = a.catalog();
    let service = &catalog.services[3];
    // An office and region that hold responses.
    let placed = rt()
        .block_on(a.clone().with_rollups(false).scores(&ScoresQuery { group_by: vec![Dimension::Office, Dimension::Region], ..Default::default() }))
        .unwrap()
        .rows
        .into_iter()
        .find(|r| r.key.get(Dimension::Office).is_some() && r.key.get(Dimension::Region).is_some())
        .expect("a response with an office and region");
    let value = |d: Dimension| -> String {
        match d {
            Dimension::Agency => service.agency.clone(),
            Dimension::Bureau => service.bureau.clone(),
            Dimension::Service => service.id.clone(),
            Dimension::ServiceType => service.service_type.as_str().to_string(),
            Dimension::Channel => "digital".to_string(),
            Dimension::Office => placed.key.get(Dimension::Office).unwrap().to_string(),
            Dimension::Region => placed.key.get(Dimension::Region).unwrap().to_string(),
            Dimension::Stage => "transaction".to_string(),
        }
    };
    let ranges: [(Option<&str>, Option<&str>); 7] = [
        (None, None),
        (Some("2023-01-01"), Some("2024-06-30")), // whole months
        (Some("2023-01-15"), Some("2024-06-10")), // cuts a month at both ends
        (Some("2023-01-15"), None),
        (None, Some("2024-06-10")),
        (Some("2023-03-05"), Some("2023-03-25")), // inside one month
        (Some("2023-03-20"), Some("2023-04-10")), // across a boundary, no whole month
    ];
    let mut paths = std::collections::BTreeMap::<&str, usize>::new();
    let mut checked = 0;
    for period in PERIODS {
        for (i, (from, to)) in ranges.iter().enumerate() {
            {
                let weighted = i % 2 == 1;
                // Group by each dimension, no filter.
                for g in DIMENSIONS {
                    if period == Some(PeriodUnit::Day) && i < 3 && g != Dimension::Agency {
                        continue; // day × every dimension over years: covered by the agency case
                    }
                    let q = ScoresQuery {
                        filter: Filter { from: from.map(day), to: to.map(day), ..Default::default() },
                        group_by: vec![g],
                        period,
                        measures: vec![Measure::Trust, Measure::Driver(cxlake::domain::Driver::Ease)],
                        weighted,
                        ..Default::default()
                    };
                    let served = both(&a, &q, &format!("group {g:?} {period:?} {from:?}..{to:?} w={weighted}"));
                    *paths.entry(served.path()).or_default() += 1;
                    checked += 1;
                    // The route is the rollup's whenever one covers the query.
                    if route(&q.filter, &q.group_by, q.period).is_some_and(|p| p.iter().all(|p| p.rollup.is_some())) {
                        assert_eq!(served.raw_files, 0, "{q:?}: a covered query reads no raw rows");
                    }
                }
            }
            // Filter on each dimension, grouped by period only; with a scale filter.
            for f in DIMENSIONS {
                let q = ScoresQuery {
                    filter: Filter { from: from.map(day), to: to.map(day), scales: Some(vec![Scale::Likert5]), ..Default::default() }.with(f, [value(f)]),
                    period,
                    measures: vec![Measure::Trust, Measure::Satisfaction],
                    weighted: true,
                    ..Default::default()
                };
                let served = both(&a, &q, &format!("filter {f:?} {period:?} {from:?}..{to:?}"));
                *paths.entry(served.path()).or_default() += 1;
                checked += 1;
            }
        }
    }
    // Two dimensions of one rollup, and of none (office × service reads raw rows).
    for (g, expected) in [
        (vec![Dimension::Service, Dimension::Channel], "rollup"),
        (vec![Dimension::Office, Dimension::Region], "rollup"),
        (vec![Dimension::Service, Dimension::Office], "raw"),
    ] {
        let q = ScoresQuery { group_by: g.clone(), period: Some(PeriodUnit::FiscalQuarter), measures: Measure::all(), ..Default::default() };
        assert_eq!(both(&a, &q, &format!("{g:?}")).path(), expected, "{g:?}");
    }
    assert!(checked > 500, "{checked} queries");
    assert!(paths.get("rollup").copied().unwrap_or(0) > checked / 2, "most queries from rollups: {paths:?}");
    assert!(paths.contains_key("raw"), "some from raw rows: {paths:?}");
}

#[test]
fn the_planner_takes_whole_months_from_the_monthly_rollup_and_edges_from_the_daily() {
    let filter = Filter { from: Some(day("2024-01-15")), to: Some(day("2024-06-10")), ..Default::default() };
    let pieces = route(&filter, &[Dimension::Service], Some(PeriodUnit::Month)).unwrap();
    let got: Vec<(Option<Rollup>, Option<NaiveDate>, Option<NaiveDate>)> = pieces.iter().map(|p| (p.rollup, p.filter.from, p.filter.to)).collect();
    assert_eq!(
        got,
        vec![
            (Some(Rollup::ServiceMonth), Some(day("2024-02-01")), Some(day("2024-05-31"))),
            (Some(Rollup::ServiceDay), Some(day("2024-01-15")), Some(day("2024-01-31"))),
            (Some(Rollup::ServiceDay), Some(day("2024-06-01")), Some(day("2024-06-10"))),
        ]
    );
    // Places have no daily rollup: their edges are raw rows.
    let pieces = route(&filter, &[Dimension::Office], None).unwrap();
    assert_eq!(pieces.iter().map(|p| p.rollup).collect::<Vec<_>>(), vec![Some(Rollup::PlaceMonth), None, None]);
    // Weeks and days need days; an office by day has no rollup.
    assert_eq!(route(&Filter::default(), &[Dimension::Agency], Some(PeriodUnit::Week)).unwrap()[0].rollup, Some(Rollup::ServiceDay));
    assert!(route(&Filter::default(), &[Dimension::Office], Some(PeriodUnit::Day)).is_none());
    assert!(route(&Filter::default(), &[Dimension::Office, Dimension::Bureau], None).is_none());
    // The calendar's ends are left to raw rows, never a panic.
    assert!(route(&Filter { from: Some(NaiveDate::MAX), ..Default::default() }, &[], None).is_none());
    assert!(route(&Filter { to: Some(NaiveDate::MIN), ..Default::default() }, &[], None).is_none());
    // Within one month: the daily rollup only.
    let inside = Filter { from: Some(day("2024-03-05")), to: Some(day("2024-03-25")), ..Default::default() };
    assert_eq!(route(&inside, &[], None).unwrap().iter().map(|p| p.rollup).collect::<Vec<_>>(), vec![Some(Rollup::ServiceDay)]);
}

/// The rollup files of `kind` (paths relative to the lake root).
fn rollup_files(root: &Path, kind: Rollup) -> Vec<cxlake::store::delta::TableFile> {
    let lake = cxlake::store::Lake::open(root).unwrap();
    cxlake::store::delta::live_files(&lake, kind.into()).unwrap()
}

fn data_paths(root: &Path) -> Vec<String> {
    crate::common::data_files(root).iter().map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned()).collect()
}

/// Asserts each rollup table holds exactly one file per live data file.
fn assert_in_line(root: &Path) {
    let data = data_paths(root);
    for kind in Rollup::ALL {
        let mut covered: Vec<String> = rollup_files(root, kind).iter().map(|f| kind.data_path_of(&f.path).unwrap()).collect();
        covered.sort();
        assert_eq!(covered, data, "{kind:?} holds one file per data file");
    }
}

#[test]
fn files_without_rollups_are_read_raw_never_twice_and_build_catches_up() {
    let root = fresh_lake(6_000, 5, 2);
    assert_in_line(&root);
    let lake = cxlake::store::Lake::open(&root).unwrap();
    let queries = [
        ScoresQuery { group_by: vec![Dimension::Agency], period: Some(PeriodUnit::Month), weighted: true, ..Default::default() },
        ScoresQuery { group_by: vec![Dimension::Office], period: Some(PeriodUnit::FiscalQuarter), ..Default::default() },
        ScoresQuery { group_by: vec![Dimension::Channel], period: Some(PeriodUnit::Week), ..Default::default() },
    ];
    let check = |expected: &str| {
        let a = analytics(&root);
        for q in &queries {
            let served = both(&a, q, &format!("{expected} {:?}", q.group_by));
            assert_eq!(served.path(), expected, "{q:?}");
        }
    };
    check("rollup");
    // Every other rollup file dropped (as a writer killed after its data commit leaves them).
    let lock = cxlake::store::commit::WriteLock::acquire(&lake).unwrap();
    for kind in Rollup::ALL {
        let removed: Vec<_> = rollup_files(&root, kind).into_iter().step_by(2).collect();
        lock.commit(kind, Change { operation: "test: drop rollups".into(), removed, ..Default::default() }).unwrap();
    }
    check("mixed");
    let built = cxlake::store::rollup::build(&lock).unwrap();
    assert!(built.added > 0 && built.removed == 0, "{built:?}");
    assert_in_line(&root);
    assert_eq!(cxlake::store::rollup::build(&lock).unwrap().added, 0, "a second build changes nothing");
    drop(lock);
    check("rollup");
    // A rollup file deleted behind the log's back: queries fall back to raw rows (the same
    // answers), and the build notices it and builds it again.
    let victim = rollup_files(&root, Rollup::ServiceMonth).remove(0);
    std::fs::remove_file(root.join(&victim.path)).unwrap();
    let a = analytics(&root);
    assert_eq!(both(&a, &queries[0], "a rollup file deleted").path(), "raw");
    let lock = cxlake::store::commit::WriteLock::acquire(&lake).unwrap();
    let repaired = cxlake::store::rollup::build(&lock).unwrap();
    assert_eq!((repaired.added, repaired.removed), (1, 1), "{repaired:?}");
    drop(lock);
    assert!(root.join(&victim.path).exists());
    check("rollup");
    // A lake without rollup tables at all answers from raw rows, the same.
    std::fs::remove_dir_all(root.join("rollups")).unwrap();
    check("raw");
}

#[test]
fn every_writer_keeps_the_rollups_in_line_and_time_travel_uses_them_rightly() {
    let root = fresh_lake(4_000, 9, 1);
    let lake = cxlake::store::Lake::open(&root).unwrap();
    // Time travel names a version of the table read (the responses).
    let version_before = cxlake::store::commit::versions(&lake).unwrap().of(cxlake::store::delta::Stored::RESPONSES).unwrap();
    // Ingest a file, then compact: each is followed by its rollups.
    let a = analytics(&root);
    let s = &a.catalog().services[0];
    let opts = cxlake::ingest::formats::OpenOptions { inventory: a.catalog().inventory(), now: chrono::Utc::now(), ..Default::default() };
    // Two files into one new partition (FY2023 Q1), so compaction has two to merge.
    for part in 0..2 {
        let csv = root.parent().unwrap().join(format!("more-{part}.csv"));
        let mut text = String::from("response_id,submitted_at,agency,bureau,service_id,service_type,channel,collection_id,stage,scale,trust,weight\n");
        for i in (part * 25)..(part * 25 + 25) {
            text.push_str(&format!(
                "extra-{i},2022-11-{:02}T12:00:00Z,{},{},{},{},digital,c1,transaction,likert5,{},1.5\n",
                1 + i % 28,
                s.agency,
                s.bureau,
                s.id,
                s.service_type.as_str(),
                1 + i % 5
            ));
        }
        std::fs::write(&csv, text).unwrap();
        let summary = cxlake::ingest::pipeline::ingest_file(&lake, &csv, cxlake::ingest::formats::Format::Csv, &opts, &|_| {}).unwrap();
        assert_eq!(summary.rows_stored, 25, "{summary:?}");
    }
    assert_in_line(&root);
    let version_ingested = cxlake::store::commit::versions(&lake).unwrap().of(cxlake::store::delta::Stored::RESPONSES).unwrap();
    let lock = cxlake::store::commit::WriteLock::acquire(&lake).unwrap();
    let compacted = cxlake::store::compact::compact(&lock, "t1").unwrap();
    drop(lock);
    assert!(compacted.partitions > 0, "{compacted:?}");
    assert_in_line(&root);
    // Now, before the ingest, and between the ingest and the compaction (whose two small files
    // lost their rollups when compaction replaced them: read raw): the same answers with and
    // without rollups, on one analytics (its caches see every version).
    let a = analytics(&root);
    for (as_of, path) in [
        (cxlake::store::delta::AsOf::Latest, "rollup"),
        (cxlake::store::delta::AsOf::Version(version_before), "rollup"),
        (cxlake::store::delta::AsOf::Version(version_ingested), "mixed"),
        (cxlake::store::delta::AsOf::Latest, "rollup"),
    ] {
        let q = ScoresQuery {
            filter: Filter { as_of, ..Default::default() },
            group_by: vec![Dimension::Service],
            period: Some(PeriodUnit::Month),
            ..Default::default()
        };
        assert_eq!(both(&a, &q, &format!("{as_of:?}")).path(), path, "{as_of:?}");
    }
    let now = rt().block_on(analytics(&root).scores(&ScoresQuery::default())).unwrap();
    let before =
        rt().block_on(analytics(&root).scores(&ScoresQuery {
            filter: Filter { as_of: cxlake::store::delta::AsOf::Version(version_before), ..Default::default() },
            ..Default::default()
        }))
        .unwrap();
    assert_eq!(now.rows[0].n, before.rows[0].n + 50);
}

/// Runs a driver-importance query with rollups and without; asserts the same groups (counts,
/// warnings and errors exactly, estimates to 1e-12); returns what served the first.
fn drivers_both(a: &Analytics, q: &DriverQuery, label: &str) -> Served {
    let log = ServedLog::default();
    let with = rt().block_on(a.clone().with_rollups(true).with_served_log(Some(log.clone())).driver_importance(q)).unwrap_or_else(|e| panic!("{label}: {e}"));
    let raw_log = ServedLog::default();
    let without = rt().block_on(a.clone().with_rollups(false).with_served_log(Some(raw_log.clone())).driver_importance(q)).unwrap();
    assert_eq!(Served::combined(&raw_log.entries()).rollup_files, 0, "{label}: rollups off reads none");
    assert_eq!(with.len(), without.len(), "{label}: groups");
    let close = |x: Option<f64>, y: Option<f64>, what: &str| match (x, y) {
        (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{label} {what}: {x} vs {y}"),
        (x, y) => assert_eq!(x, y, "{label} {what}"),
    };
    for (g, h) in with.iter().zip(&without) {
        assert_eq!(g.key, h.key, "{label}");
        assert_eq!((g.n, g.n_dropped, &g.error, &g.warnings, &g.suppressed), (h.n, h.n_dropped, &h.error, &h.warnings, &h.suppressed), "{label} {:?}", g.key);
        close(Some(g.n_effective), Some(h.n_effective), "n effective");
        close(g.r2, h.r2, "r2");
        close(g.adj_r2, h.adj_r2, "adjusted r2");
        assert_eq!(g.drivers.len(), h.drivers.len(), "{label}");
        for (s, t) in g.drivers.iter().zip(&h.drivers) {
            assert_eq!((s.driver, s.rank, s.quadrant), (t.driver, t.rank, t.quadrant), "{label} {:?}", g.key);
            for (x, y, what) in [
                (s.r, t.r, "r"),
                (s.beta, t.beta, "beta"),
                (s.first, t.first, "first"),
                (s.last, t.last, "last"),
                (s.pratt, t.pratt, "pratt"),
                (s.johnson, t.johnson, "johnson"),
                (s.shapley, t.shapley, "shapley"),
                (s.shapley_share, t.shapley_share, "shapley share"),
                (s.vif, t.vif, "vif"),
                (s.performance, t.performance, "performance"),
            ] {
                close(x, y, what);
            }
        }
    }
    assert!(!with.is_empty(), "{label}: an answer with groups");
    Served::combined(&log.entries())
}

#[test]
fn driver_importance_from_moments_answers_as_raw_rows_do() {
    use cxlake::domain::Driver;
    let a = analytics(shared_lake()).with_suppression(cxlake::analytics::suppression::Suppression { min_cell: 10, ..Default::default() });
    let catalog = a.catalog();
    let service_type = catalog.services[2].service_type.as_str().to_string();
    let ranges: [(Option<&str>, Option<&str>); 3] = [(None, None), (Some("2023-01-01"), Some("2024-06-30")), (Some("2023-01-15"), Some("2024-06-10"))];
    let groupings: [(Vec<Dimension>, Option<PeriodUnit>); 6] = [
        (vec![], None),
        (vec![Dimension::ServiceType], Some(PeriodUnit::FiscalYear)),
        (vec![Dimension::Office], None),
        (vec![Dimension::Agency, Dimension::Channel], Some(PeriodUnit::Quarter)),
        (vec![Dimension::Region], Some(PeriodUnit::Month)),
        (vec![Dimension::Service], Some(PeriodUnit::FiscalQuarter)),
    ];
    let mut paths = std::collections::BTreeMap::<&str, usize>::new();
    for (k, (group_by, period)) in groupings.iter().enumerate() {
        for (i, (from, to)) in ranges.iter().enumerate() {
            for missing in [Missing::Listwise, Missing::Pairwise] {
                let weighted = (i + k) % 2 == 1;
                let mut filter = Filter { from: from.map(day), to: to.map(day), ..Default::default() };
                if k == 3 {
                    filter = filter.with(Dimension::ServiceType, [service_type.clone()]);
                }
                let q = DriverQuery {
                    filter,
                    group_by: group_by.clone(),
                    period: *period,
                    outcome: if k % 2 == 0 { Measure::Trust } else { Measure::Satisfaction },
                    drivers: if k == 4 { vec![Driver::Efficiency, Driver::Ease, Driver::Effectiveness] } else { Driver::ALL.to_vec() },
                    weighted,
                    missing,
                    ..Default::default()
                };
                let label = format!("{group_by:?} {period:?} {from:?}..{to:?} {missing:?} w={weighted}");
                let served = drivers_both(&a, &q, &label);
                // Whole months (or no dates) from rollups alone; the days that cut a month raw;
                // places (no moments rollup) raw.
                let expected = match (group_by.iter().all(|d| Rollup::DriversServiceMonth.covers([*d])), i) {
                    (false, _) => "raw",
                    (true, 2) => "mixed",
                    (true, _) => "rollup",
                };
                assert_eq!(served.path(), expected, "{label}");
                assert!(served.rollups.iter().all(|r| Rollup::MOMENTS.contains(r)), "{label}: {served:?}");
                *paths.entry(served.path()).or_default() += 1;
            }
        }
    }
    // What reads raw rows: day and week periods, the stage (not in the moments rollup), a
    // bootstrap, taps.
    let raw = [
        DriverQuery { group_by: vec![Dimension::Agency], period: Some(PeriodUnit::Week), ..Default::default() },
        DriverQuery { group_by: vec![Dimension::Stage], ..Default::default() },
        DriverQuery { group_by: vec![Dimension::ServiceType], bootstrap: Some(20), ..Default::default() },
        DriverQuery { group_by: vec![Dimension::ServiceType], taps: true, ..Default::default() },
    ];
    for q in raw {
        assert_eq!(drivers_both(&a, &q, &format!("{q:?}")).path(), "raw", "{q:?}");
    }
    assert!(paths["rollup"] >= 16 && paths["mixed"] >= 8 && paths["raw"] >= 12, "{paths:?}");
}

#[test]
fn tapped_importance_from_tap_patterns_answers_as_raw_rows_do() {
    use cxlake::analytics::tapped::{TappedModel, TappedQuery};
    use cxlake::domain::TapIndicator;
    let a = analytics(shared_lake()).with_suppression(cxlake::analytics::suppression::Suppression { min_cell: 10, ..Default::default() });
    let ranges: [(Option<&str>, Option<&str>); 3] = [(None, None), (Some("2023-01-01"), Some("2024-06-30")), (Some("2023-01-15"), Some("2024-06-10"))];
    // Few groups each (every group fits its model on every subset of the seven topic sets).
    let groupings: [(Vec<Dimension>, Option<PeriodUnit>); 4] = [
        (vec![], None),
        (vec![Dimension::ServiceType], None),
        (vec![Dimension::Region], Some(PeriodUnit::FiscalYear)),
        (vec![Dimension::Agency, Dimension::Channel], None),
    ];
    let close = |x: Option<f64>, y: Option<f64>, what: &str| match (x, y) {
        (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{what}: {x} vs {y}"),
        (x, y) => assert_eq!(x, y, "{what}"),
    };
    let run = |q: &TappedQuery, rollups: bool| {
        let log = ServedLog::default();
        let groups = rt().block_on(a.clone().with_rollups(rollups).with_served_log(Some(log.clone())).tapped_importance(q)).unwrap();
        (groups, Served::combined(&log.entries()))
    };
    let mut checked = 0;
    for (k, (group_by, period)) in groupings.iter().enumerate() {
        for (i, (from, to)) in ranges.iter().enumerate() {
            for model in [TappedModel::Logistic, TappedModel::Linear] {
                let weighted = (i + k) % 2 == 1;
                let q = TappedQuery {
                    filter: Filter { from: from.map(day), to: to.map(day), ..Default::default() },
                    group_by: group_by.clone(),
                    period: *period,
                    model,
                    weighted,
                    outcome: if k == 3 { Measure::Satisfaction } else { Measure::Trust },
                    indicators: if k == 2 { TapIndicator::all().into_iter().rev().step_by(2).collect() } else { TapIndicator::all() },
                    bootstrap: (k == 1 && i == 0).then_some(20),
                    ..Default::default()
                };
                let label = format!("{group_by:?} {period:?} {from:?}..{to:?} {model:?} w={weighted}");
                let ((with, served), (without, raw)) = (run(&q, true), run(&q, false));
                assert_eq!(served.path(), if i == 2 { "mixed" } else { "rollup" }, "{label}");
                assert!(served.rollups.iter().all(|r| Rollup::TAPS.contains(r)), "{label}: {served:?}");
                assert_eq!(raw.path(), "raw", "{label}");
                assert!(!with.is_empty(), "{label}");
                if !weighted {
                    // Counts alone: the same cells, the same fits, bit for bit.
                    assert_eq!(format!("{with:?}"), format!("{without:?}"), "{label}");
                }
                assert_eq!(with.len(), without.len(), "{label}");
                for (g, h) in with.iter().zip(&without) {
                    assert_eq!(
                        (&g.key, g.n, g.n_dropped, g.n_not_shown, g.n_outcome_missing),
                        (&h.key, h.n, h.n_dropped, h.n_not_shown, h.n_outcome_missing),
                        "{label}"
                    );
                    assert_eq!(
                        (&g.error, &g.warnings, &g.suppressed, g.bootstrap_replicates),
                        (&h.error, &h.warnings, &h.suppressed, h.bootstrap_replicates),
                        "{label}"
                    );
                    for (x, y, what) in [
                        (g.events, h.events, "events"),
                        (g.log_likelihood, h.log_likelihood, "log likelihood"),
                        (g.mcfadden, h.mcfadden, "mcfadden"),
                        (g.r2, h.r2, "r2"),
                    ] {
                        close(x, y, &format!("{label} {what}"));
                    }
                    for (c, d) in g.coefficients.iter().zip(&h.coefficients) {
                        close(c.estimate, d.estimate, &format!("{label} {}", c.indicator));
                        close(c.std_error, d.std_error, &format!("{label} {} se", c.indicator));
                    }
                    for (c, d) in g.drivers.iter().zip(&h.drivers) {
                        close(c.importance, d.importance, &format!("{label} {:?}", c.topic));
                    }
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 24);
}
