//! Small-cell suppression across every query: no statistic of a cell under the minimum is
//! shown, and no suppressed cell can be recovered by subtraction within one result.

use crate::common::{analytics, shared_lake};
use cxlake::analytics::suppression::Suppression;
use serde_json::Value;

/// As an analyst: suppression holds for every role (the public's grid and perturbation are
/// tested in `perturbation.rs`).
async fn run(query: &str) -> Value {
    let schema = cxlake::api::schema(analytics(shared_lake()));
    let resp = schema.execute(analyst(query)).await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    resp.data.into_json().unwrap()
}

fn analyst(query: &str) -> async_graphql::Request {
    async_graphql::Request::new(query).data(cxlake::api::auth::Principal { role: cxlake::api::auth::Role::Analyst, key_id: None })
}

fn n(v: &Value) -> u64 {
    v["n"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn scores_and_trends_withhold_small_cells() {
    let v = run("{ scores(groupBy: [OFFICE, CHANNEL], period: MONTH, measures: [TRUST, EASE]) { n mean sd meanLow agreeShare agreeLow distribution { count } suppressed suppressedReason } }").await;
    let rows = v["scores"].as_array().unwrap();
    let small: Vec<&Value> = rows.iter().filter(|r| n(r) < 10).collect();
    assert!(small.len() > 20 && small.len() < rows.len(), "the lake has small and large cells");
    for r in rows {
        let hidden = r["suppressed"].as_bool().unwrap();
        assert_eq!(hidden, n(r) < 10, "{r}");
        if hidden {
            for f in ["mean", "sd", "meanLow", "agreeShare", "agreeLow"] {
                assert!(r[f].is_null(), "{f} shown for a small cell: {r}");
            }
            assert!(r["distribution"].as_array().unwrap().is_empty());
            assert!(r["suppressedReason"].as_str().unwrap().contains("below the minimum cell size of 10"));
        }
    }
    let v = run("{ trends(groupBy: [OFFICE], period: MONTH) { n agreeShare mean suppressed previous { n agreeShare agreeChange meanChange suppressed } yearAgo { n agreeChange suppressed } } }").await;
    for r in v["trends"].as_array().unwrap() {
        assert_eq!(r["suppressed"].as_bool().unwrap(), n(r) < 10);
        for c in [&r["previous"], &r["yearAgo"]] {
            if c.is_null() {
                continue;
            }
            if n(c) < 10 || n(r) < 10 {
                assert!(c["agreeChange"].is_null(), "a change reveals a small cell: {r}");
            }
            if n(c) < 10 {
                assert!(c["suppressed"].as_bool().unwrap() && c.get("agreeShare").is_none_or(Value::is_null));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn benchmarks_apply_complementary_suppression() {
    let v = run("{ benchmark(level: OFFICE, peers: SAME_AGENCY, period: FISCAL_YEAR) { entity peerKey period n agreeShare mean peerN peerAgreeShare peerMean agreeDifference meanDifference rank percentile suppressed peerSuppressedReason } }").await;
    let rows = v["benchmark"].as_array().unwrap();
    let mut cells: std::collections::BTreeMap<(String, String), Vec<&Value>> = Default::default();
    for r in rows {
        cells.entry((r["peerKey"].to_string(), r["period"].to_string())).or_default().push(r);
    }
    let mut complementary = 0;
    for rows in cells.values() {
        let hidden = rows.iter().filter(|r| r["suppressed"].as_bool().unwrap()).count();
        let shown = rows.len() - hidden;
        assert!(!(hidden == 1 && shown >= 1), "a lone suppressed cell is total minus the shown ones: {rows:?}");
        complementary += rows.iter().filter(|r| r["suppressed"].as_bool().unwrap() && n(r) >= 10).count();
        for r in rows {
            if r["suppressed"].as_bool().unwrap() {
                for f in ["agreeShare", "mean", "peerAgreeShare", "peerMean", "agreeDifference", "meanDifference", "rank", "percentile"] {
                    assert!(r[f].is_null(), "{f} shown for a suppressed entity: {r}");
                }
            } else {
                assert!(n(r) >= 10);
                if r["peerN"].as_u64().unwrap() < 10 {
                    assert!(r["peerAgreeShare"].is_null() && r["agreeDifference"].is_null(), "small peers shown: {r}");
                }
                assert!(r["rank"].as_u64().unwrap() as usize <= shown, "ranked among shown entities only");
            }
        }
    }
    assert!(complementary > 0, "the lake exercises complementary suppression");
}

#[tokio::test(flavor = "multi_thread")]
async fn driver_importance_and_alerts_withhold_small_cells() {
    let v = run("{ driverImportance(groupBy: [OFFICE]) { n r2 error warnings suppressed drivers { r beta shapley johnson performance quadrant } taps { shown positiveShare negativeShare suppressed } } }").await;
    let groups = v["driverImportance"].as_array().unwrap();
    assert!(groups.iter().any(|g| n(g) < 30) && groups.iter().any(|g| n(g) >= 30));
    for g in groups {
        assert_eq!(g["suppressed"].as_bool().unwrap(), n(g) < 30);
        if n(g) < 30 {
            // The one warning a suppressed group may carry: no Likert driver answers (an office
            // whose surveys are all tapped-indicator ones), without counts.
            let warnings = g["warnings"].as_array().unwrap();
            assert!(g["r2"].is_null() && g["error"].is_null(), "{g}");
            assert!(warnings.is_empty() || (n(g) == 0 && warnings.len() == 1 && warnings[0] == cxlake::analytics::drivers::NO_LIKERT), "{g}");
            for d in g["drivers"].as_array().unwrap() {
                assert!(d.as_object().unwrap().values().all(Value::is_null), "{d}");
            }
        }
        for t in g["taps"].as_array().unwrap() {
            if t["shown"].as_u64().unwrap() < 10 {
                assert!(t["suppressed"].as_bool().unwrap() && t["positiveShare"].is_null() && t["negativeShare"].is_null());
            }
        }
    }
    // The same alert query without and with suppression: small cells are tested only without.
    let q = r#"{ alerts(levels: [OFFICE, SERVICE], period: MONTH, at: "2024-03", minN: 1, alpha: 0.999) { n change { n } } }"#;
    let open = cxlake::api::schema(analytics(shared_lake()).with_suppression(Suppression::none()));
    let all = open.execute(analyst(q)).await.data.into_json().unwrap();
    let small = |v: &Value| v["alerts"].as_array().unwrap().iter().filter(|a| n(a) < 10 || n(&a["change"]) < 10).count();
    assert!(small(&all) > 0, "the query reaches small cells when nothing is suppressed");
    let v = run(q).await;
    assert!(!v["alerts"].as_array().unwrap().is_empty());
    assert_eq!(small(&v), 0, "an alert on a small cell");
}
