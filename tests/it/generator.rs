//! The synthetic generator: deterministic, realistic in shape, with its planted truth.

use crate::common::{analytics, data_files, fresh_lake, shared_lake};
use cxlake::domain::survey::{tap_columns, TAP_TOPICS};
use cxlake::domain::FiscalQuarter;
use cxlake::stats::logistic::{self, Pattern};
use cxlake::store::{Lake, PartitionFilter};
use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn all_rows(path: &std::path::Path) -> DataFrame {
    let lake = Lake::open(path).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let files = rt.block_on(lake.response_files(&PartitionFilter::default())).unwrap();
    lake.scan_responses(&files).unwrap().collect().unwrap()
}

#[test]
fn same_seed_gives_identical_files_and_another_seed_does_not() {
    // FY2022-25: both the Likert design and the v2 form.
    let a = fresh_lake(15_000, 3, 4);
    let b = fresh_lake(15_000, 3, 4);
    let c = fresh_lake(15_000, 4, 4);
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

    // Thumbs trust comes with the A-11 v2 form: about a fifth of all responses over FY2022-26.
    let thumbs = df.column("scale").unwrap().str().unwrap().iter().filter(|s| *s == Some("thumbs")).count() as f64;
    assert!((0.10..=0.35).contains(&(thumbs / n)), "thumbs share {}", thumbs / n);

    // Missing driver answers among Likert-design responses (no tap list): 10-20%.
    let likert = df.clone().lazy().filter(col("positive_ease").is_null()).collect().unwrap();
    assert!(likert.column("scale").unwrap().str().unwrap().iter().all(|s| s == Some("likert5")));
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
    let truth: serde_json::Value = serde_json::from_slice(&std::fs::read(shared_lake().join("truth.json")).unwrap()).unwrap();
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
    let rel =
        |root: &std::path::Path| -> Vec<std::path::PathBuf> { data_files(root).into_iter().map(|p| p.strip_prefix(root).unwrap().to_path_buf()).collect() };
    assert_eq!(rel(&sample), rel(&fresh), "regenerate data/sample with the command above");
    let mut others: Vec<std::path::PathBuf> = rel(&fresh);
    others.extend(["truth.json", "dimensions/services/part-00000.parquet", "dimensions/offices/part-00000.parquet"].map(Into::into));
    for f in others {
        assert!(
            std::fs::read(sample.join(&f)).unwrap() == std::fs::read(fresh.join(&f)).unwrap(),
            "data/sample/{} differs from the generator's output; regenerate it",
            f.display()
        );
    }
}

/// One response, as the A-11 v2 tests look at it.
struct Response {
    quarter: FiscalQuarter,
    service: String,
    service_type: String,
    collection: String,
    thumbs: bool,
    trust: Option<i8>,
    satisfaction: Option<i8>,
    drivers_answered: usize,
    /// In `TAP_TOPICS` order: went well, then didn't go well.
    positive: [Option<bool>; 7],
    negative: [Option<bool>; 7],
    second_comment: bool,
}

impl Response {
    /// Asked the A-11 v2 form (shown the tap lists).
    fn v2(&self) -> bool {
        self.positive[0].is_some()
    }

    /// The 14 indicators as bits: went well j is bit j, didn't go well j is bit 7 + j.
    fn bits(&self) -> u32 {
        let set = |t: &[Option<bool>; 7]| t.iter().enumerate().fold(0u32, |b, (j, x)| b | (u32::from(*x == Some(true)) << j));
        set(&self.positive) | (set(&self.negative) << 7)
    }

    /// "Agrees": thumbs up, or 4-5 on 1-5 trust.
    fn agrees(&self) -> Option<bool> {
        self.trust.map(|t| if self.thumbs { t == 1 } else { t >= 4 })
    }
}

fn responses(path: &std::path::Path) -> Vec<Response> {
    let df = all_rows(path);
    // Whole columns as vectors: indexing a chunked column row by row is slow.
    let s = |c: &str| df.column(c).unwrap().str().unwrap().iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>();
    let i8s = |c: &str| df.column(c).unwrap().i8().unwrap().iter().collect::<Vec<_>>();
    let i32s = |c: &str| df.column(c).unwrap().i32().unwrap().iter().collect::<Vec<_>>();
    let flags = |c: String| df.column(&c).unwrap().bool().unwrap().iter().collect::<Vec<_>>();
    let (fy, fq) = (i32s("fiscal_year"), i32s("fiscal_quarter"));
    let (service, service_type, collection, scale, text2) = (s("service_id"), s("service_type"), s("collection_id"), s("scale"), s("free_text_2"));
    let (trust, satisfaction) = (i8s("trust"), i8s("satisfaction"));
    let drivers: Vec<_> = ["effectiveness", "ease", "efficiency", "transparency", "humanity", "employee"].map(i8s).into();
    let positive: Vec<_> = TAP_TOPICS.iter().map(|t| flags(format!("positive_{t}"))).collect();
    let negative: Vec<_> = TAP_TOPICS.iter().map(|t| flags(format!("negative_{t}"))).collect();
    (0..df.height())
        .map(|i| Response {
            quarter: FiscalQuarter::new(fy[i].unwrap(), fq[i].unwrap() as u32),
            service: service[i].clone().unwrap(),
            service_type: service_type[i].clone().unwrap(),
            collection: collection[i].clone().unwrap(),
            thumbs: scale[i].as_deref() == Some("thumbs"),
            trust: trust[i],
            satisfaction: satisfaction[i],
            drivers_answered: drivers.iter().filter(|d| d[i].is_some()).count(),
            positive: std::array::from_fn(|j| positive[j][i]),
            negative: std::array::from_fn(|j| negative[j][i]),
            second_comment: text2[i].is_some(),
        })
        .collect()
}

fn truth(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path.join("truth.json")).unwrap()).unwrap()
}

/// The Touchpoints A-11 v2 form arrives from FY2024 Q2, staggered over a year, on most
/// designated services' collections; non-designated services and earlier quarters keep the
/// Likert design. Each design fills exactly its own columns.
#[test]
fn the_v2_form_replaces_likert_on_designated_services_from_fy2024q2() {
    let rows = responses(shared_lake());
    let designated: BTreeSet<String> = analytics(shared_lake()).catalog().services.iter().filter(|s| s.designated).map(|s| s.id.clone()).collect();
    let from = FiscalQuarter::new(2024, 2);
    let mut first_v2: BTreeMap<&str, FiscalQuarter> = BTreeMap::new();
    let mut last_likert: BTreeMap<&str, FiscalQuarter> = BTreeMap::new();
    let mut v2_scales: BTreeMap<&str, BTreeSet<bool>> = BTreeMap::new();
    let (mut v2, mut radio, mut thumbs) = (0u64, 0u64, 0u64);
    let (mut designated_late, mut designated_late_v2) = (0u64, 0u64);
    for r in &rows {
        let all = r.positive.iter().chain(&r.negative);
        if r.v2() {
            assert!(all.clone().all(Option::is_some), "every indicator offered on the v2 form");
            assert!(r.quarter >= from, "a v2 response in {}", r.quarter);
            assert!(designated.contains(&r.service), "{} is not designated", r.service);
            assert_eq!((r.satisfaction, r.drivers_answered, r.second_comment), (None, 0, false), "trust, taps and one comment only");
            match r.thumbs {
                true => assert!(r.trust.is_none_or(|t| t == 0 || t == 1)),
                false => assert!(r.trust.is_none_or(|t| (1..=5).contains(&t))),
            }
            v2 += 1;
            radio += u64::from(!r.thumbs);
            thumbs += u64::from(r.thumbs);
            let q = first_v2.entry(&r.collection).or_insert(r.quarter);
            *q = (*q).min(r.quarter);
            v2_scales.entry(&r.collection).or_default().insert(r.thumbs);
        } else {
            assert!(all.clone().all(Option::is_none), "no tap column on the Likert design");
            assert!(!r.thumbs, "the Likert design asks 1-5");
            assert!(r.trust.is_some() || r.satisfaction.is_some() || r.drivers_answered > 0);
            let q = last_likert.entry(&r.collection).or_insert(r.quarter);
            *q = (*q).max(r.quarter);
        }
        if designated.contains(&r.service) && r.quarter >= FiscalQuarter::new(2025, 1) {
            designated_late += 1;
            designated_late_v2 += u64::from(r.v2());
        }
    }
    // Each collection switches once, between FY2024 Q2 and FY2025 Q1 (its last Likert response
    // before both its first v2 one and FY2025 Q2), to one trust scale.
    assert!(first_v2.len() > 20, "{} collections switched", first_v2.len());
    for (c, q) in &first_v2 {
        assert_eq!(v2_scales[c].len(), 1, "{c} keeps its trust scale");
        if let Some(l) = last_likert.get(c) {
            assert!(l < q && *l < FiscalQuarter::new(2025, 1), "{c}: Likert until {l}, v2 from {q}");
        }
    }
    let starts: BTreeSet<_> = first_v2.values().collect();
    assert!(starts.len() >= 3 && starts.contains(&from), "staggered: {starts:?}");
    let late = designated_late_v2 as f64 / designated_late as f64;
    assert!(late > 0.6, "v2 share of designated services' responses from FY2025: {late}");
    assert!(thumbs > 0 && radio > 0);
    let n = rows.len() as f64;
    let t = &truth(shared_lake());
    assert_eq!(t["tapped"]["v2_share"].as_f64().unwrap(), v2 as f64 / n);
    assert_eq!(t["tapped"]["radio_share"].as_f64().unwrap(), radio as f64 / v2 as f64);
    assert_eq!(t["thumbs_share"].as_f64().unwrap(), thumbs as f64 / n);
    let radio_share = radio as f64 / v2 as f64;
    assert!((0.05..=0.4).contains(&radio_share), "radio share {radio_share}");
}

/// `truth.json`'s `tapped` section: every service type's intercept, the 14 log-odds under the
/// lake's column names, and the drivers' planted order, the same as the Likert trust weights'.
#[test]
fn truth_records_the_tapped_model() {
    let t = truth(shared_lake());
    let tapped = &t["tapped"];
    assert_eq!(tapped["form_from"], "FY2024Q2");
    assert!(!tapped["description"].as_str().unwrap().is_empty());
    let types = tapped["by_service_type"].as_object().unwrap();
    let likert = t["trust_weights"].as_object().unwrap();
    assert_eq!(types.keys().collect::<Vec<_>>(), likert.keys().collect::<Vec<_>>());
    let columns: Vec<String> = TAP_TOPICS.iter().map(|t| format!("positive_{t}")).chain(TAP_TOPICS.iter().map(|t| format!("negative_{t}"))).collect();
    assert_eq!(columns.iter().collect::<BTreeSet<_>>(), tap_columns().collect::<Vec<_>>().iter().collect::<BTreeSet<_>>());
    let mut orders = BTreeSet::new();
    for (name, ty) in types {
        let b0 = ty["intercept"].as_f64().unwrap();
        let p0 = 1.0 / (1.0 + (-b0).exp());
        assert!((0.6..=0.9).contains(&p0), "{name}: agree share with no tap {p0}");
        let lo = ty["log_odds"].as_object().unwrap();
        assert_eq!(lo.keys().collect::<BTreeSet<_>>(), columns.iter().collect::<BTreeSet<_>>(), "{name}: the 14 indicators");
        let x = |c: &str| lo[c].as_f64().unwrap();
        for topic in &TAP_TOPICS[..6] {
            let (p, m) = (x(&format!("positive_{topic}")), x(&format!("negative_{topic}")));
            assert!(p > 0.0 && m < -p, "{name} {topic}: a bad experience weighs more than a good one ({p}, {m})");
        }
        assert!(x("positive_other").abs() < 0.5 && x("negative_other").abs() < 0.5);
        let order: Vec<&str> = ty["driver_order"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
        assert_eq!(order.len(), 7);
        assert_eq!(order[6], "other");
        for w in order[..6].windows(2) {
            assert!(x(&format!("positive_{}", w[0])) > x(&format!("positive_{}", w[1])), "{name}: {order:?}");
        }
        // One story: the tapped order is the Likert trust weights' order.
        let w = likert[name].as_object().unwrap();
        let mut by_weight: Vec<&str> = w.keys().map(String::as_str).collect();
        by_weight.sort_by(|a, b| w[*b].as_f64().unwrap().total_cmp(&w[*a].as_f64().unwrap()));
        assert_eq!(order[..6], by_weight[..], "{name}");
        orders.insert(order);
    }
    assert!(orders.len() >= 5, "the order differs by service type");
}

/// The v2 responses carry the planted model: tap rates alike across the six drivers, the agree
/// share of those who tapped nothing is sigmoid(intercept), and a logistic regression of
/// "agrees" on the 14 indicators recovers the planted log-odds (and, with n >= 20k, the
/// drivers' order of importance).
#[test]
fn v2_outcomes_follow_the_planted_logit() {
    let lake = fresh_lake(600_000, 2025, 5);
    let t = truth(&lake);
    let rows = responses(&lake);
    let by_type = t["tapped"]["by_service_type"].as_object().unwrap();

    // Tap rates: equal in expectation over the six drivers (so their importance order is that of
    // the log-odds), "other" rarer.
    let v2: Vec<&Response> = rows.iter().filter(|r| r.v2()).collect();
    let n = v2.len() as f64;
    assert!(n > 100_000.0, "{n} v2 responses");
    let rate = |f: &dyn Fn(&Response) -> bool| v2.iter().filter(|r| f(r)).count() as f64 / n;
    for side in [0, 1] {
        let rates: Vec<f64> = (0..7).map(|j| rate(&|r| if side == 0 { r.positive[j] } else { r.negative[j] } == Some(true))).collect();
        let mean = rates[..6].iter().sum::<f64>() / 6.0;
        assert!((0.08..=0.3).contains(&mean), "{rates:?}");
        // Standard error of a rate at this n: below 0.0015.
        assert!(rates[..6].iter().all(|r| (r - mean).abs() < 0.006), "{rates:?}");
        assert!(rates[6] < mean / 2.0, "{rates:?}");
    }

    let (mut covered, mut intervals, mut ordered) = (0, 0, 0);
    let (mut notap_agree, mut notap_expected, mut notap_var) = (0.0, 0.0, 0.0);
    for (name, ty) in by_type {
        let mut counts: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
        for r in v2.iter().filter(|r| r.service_type == *name) {
            if let Some(a) = r.agrees() {
                let c = counts.entry(r.bits()).or_default();
                if a {
                    c.0 += 1.0
                } else {
                    c.1 += 1.0
                }
            }
        }
        let patterns: Vec<Pattern> = counts.iter().map(|(b, (e, ne))| Pattern { bits: *b, events: *e, non_events: *ne }).collect();
        let n_type: f64 = patterns.iter().map(|p| p.events + p.non_events).sum();
        assert!(n_type > 1000.0, "{name}: {n_type} v2 responses");

        // Nobody tapped anything: agrees with probability sigmoid(intercept) exactly.
        let p0 = 1.0 / (1.0 + (-ty["intercept"].as_f64().unwrap()).exp());
        let (e, ne) = counts.get(&0).copied().unwrap_or_default();
        let se = (p0 * (1.0 - p0) / (e + ne)).sqrt();
        assert!((e / (e + ne) - p0).abs() < 4.0 * se, "{name}: {} of {} agree with no tap, planted {p0}", e, e + ne);
        (notap_agree, notap_expected, notap_var) = (notap_agree + e, notap_expected + p0 * (e + ne), notap_var + p0 * (1.0 - p0) * (e + ne));

        // The planted log-odds, each inside the fitted 95% Wald interval (in >= 90% of cases) and
        // none further than 4.5 standard errors.
        let fit = logistic::logit(&patterns, 14).unwrap();
        let planted: Vec<f64> = TAP_TOPICS
            .iter()
            .map(|t| format!("positive_{t}"))
            .chain(TAP_TOPICS.iter().map(|t| format!("negative_{t}")))
            .map(|c| ty["log_odds"][&c].as_f64().unwrap())
            .collect();
        for (j, c) in fit.coefficients.iter().enumerate() {
            let (b, se) = (c.estimate.unwrap(), c.std_error.unwrap());
            assert!((b - planted[j]).abs() < 4.5 * se, "{name} indicator {j}: {b} ± {se}, planted {}", planted[j]);
            intervals += 1;
            covered += usize::from((b - planted[j]).abs() <= 1.959_964 * se);
        }

        // Where n reaches 20k, the dominance of McFadden's R² over the seven topic sets ranks the
        // drivers as planted.
        if n_type >= 20_000.0 {
            let sets: Vec<Vec<usize>> = (0..7).map(|j| vec![j, 7 + j]).collect();
            let dominance = logistic::dominance(&patterns, 14, &sets).unwrap();
            let mut got: Vec<usize> = (0..6).collect();
            got.sort_by(|a, b| dominance[*b].total_cmp(&dominance[*a]));
            let got: Vec<&str> = got.into_iter().map(|d| TAP_TOPICS[d]).collect();
            let planted: Vec<&str> = ty["driver_order"].as_array().unwrap()[..6].iter().map(|d| d.as_str().unwrap()).collect();
            assert_eq!(got, planted, "{name}: dominance {dominance:?}");
            ordered += 1;
        }
    }
    let pooled = (notap_agree - notap_expected) / notap_var.sqrt();
    assert!(pooled.abs() < 4.0, "no-tap agree count {notap_agree} vs expected {notap_expected}: z = {pooled}");
    assert!(covered as f64 >= 0.9 * intervals as f64, "{covered} of {intervals} intervals cover the planted log-odds");
    assert!(ordered >= 3, "{ordered} service types with 20k v2 responses");
}
