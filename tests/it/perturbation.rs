//! Cell-key perturbation (issue 18): the public role's counts are perturbed (at most 2 either
//! way, the same for the same records, statistics from the perturbed distribution, suppression
//! decided on the true n), every other role's are exact, and the queries the public may not run
//! say so.

use crate::common::{analytics, shared_lake};
use cxlake::analytics::cellkey::CellKeySecret;
use cxlake::api::auth::{Principal, Role};
use serde_json::Value;

fn secret() -> CellKeySecret {
    CellKeySecret::from_hex(&"5e".repeat(32)).unwrap()
}

async fn run(role: Role, query: &str) -> Value {
    let schema = cxlake::api::schema(analytics(shared_lake()).with_cell_key_secret(secret()));
    let resp = schema.execute(async_graphql::Request::new(query).data(Principal { role, key_id: None })).await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    resp.data.into_json().unwrap()
}

fn u(v: &Value, f: &str) -> i64 {
    v[f].as_u64().unwrap_or_else(|| panic!("{f} in {v}")) as i64
}

fn counts(row: &Value) -> Vec<(String, i64, i64)> {
    row["distribution"].as_array().unwrap().iter().map(|d| (d["scale"].as_str().unwrap().to_string(), u(d, "value"), u(d, "count"))).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn public_scores_are_perturbed_consistently_and_other_roles_exact() {
    let q = "{ scores(groupBy: [SERVICE], period: FISCAL_YEAR, measures: [TRUST, EASE]) { service period measure n nLikert nThumbs mean agreeShare suppressed suppressedReason perturbed distribution { scale value count } } }";
    let public = run(Role::Public, q).await;
    let exact = run(Role::Analyst, q).await;
    assert_eq!(run(Role::Admin, q).await, exact, "every role but the public gets the same exact numbers");
    assert_eq!(run(Role::Agency("VA".into()), q).await, exact);
    assert_eq!(run(Role::Public, q).await, public, "the same records give the same perturbed numbers");
    // The analyst's numbers are the analytics' own.
    let direct = analytics(shared_lake())
        .scores(&cxlake::analytics::ScoresQuery {
            group_by: vec![cxlake::domain::Dimension::Service],
            period: Some(cxlake::domain::PeriodUnit::FiscalYear),
            measures: vec![cxlake::domain::Measure::Trust, cxlake::domain::Measure::Driver(cxlake::domain::Driver::Ease)],
            ..Default::default()
        })
        .await
        .unwrap();
    let (p, e) = (public["scores"].as_array().unwrap(), exact["scores"].as_array().unwrap());
    assert_eq!(p.len(), e.len());
    assert_eq!(e.len(), direct.rows.len());
    let (mut changed, mut sum_change, mut suppressed) = (0, 0i64, 0);
    for ((pr, er), dr) in p.iter().zip(e).zip(&direct.rows) {
        assert_eq!((&pr["service"], &pr["period"], &pr["measure"]), (&er["service"], &er["period"], &er["measure"]));
        assert_eq!(u(er, "n") as u64, dr.n);
        assert!(pr["perturbed"].as_bool().unwrap() && !er["perturbed"].as_bool().unwrap());
        // Suppression is decided on the true n; the n shown stays on its side of the minimum.
        let hidden = pr["suppressed"].as_bool().unwrap();
        assert_eq!(hidden, er["suppressed"].as_bool().unwrap());
        assert_eq!(hidden, u(pr, "n") < 10, "{pr}");
        for f in ["n", "nLikert", "nThumbs"] {
            assert!((u(pr, f) - u(er, f)).abs() <= 2, "{f}: {pr} vs {er}");
        }
        sum_change += u(pr, "n") - u(er, "n");
        changed += (pr != er) as usize;
        if hidden {
            suppressed += 1;
            let reason = pr["suppressedReason"].as_str().unwrap();
            assert!(!reason.contains("n = ") && reason.contains("below the minimum cell size of 10"), "{reason}");
            assert!(pr["mean"].is_null() && pr["distribution"].as_array().unwrap().is_empty());
            continue;
        }
        // Each count within 2 of the truth; the statistics are those of the perturbed distribution.
        let (pc, ec) = (counts(pr), counts(er));
        assert_eq!(pc.iter().map(|c| (&c.0, c.1)).collect::<Vec<_>>(), ec.iter().map(|c| (&c.0, c.1)).collect::<Vec<_>>());
        for (a, b) in pc.iter().zip(&ec) {
            assert!((a.2 - b.2).abs() <= 2 && a.2 >= 0, "{pr}");
            if b.2 == 0 {
                assert_eq!(a.2, 0, "an empty bin stays empty");
            }
        }
        let likert: Vec<&(String, i64, i64)> = pc.iter().filter(|c| c.0 == "LIKERT_5").collect();
        let total: i64 = likert.iter().map(|c| c.2).sum();
        if total > 0 {
            let mean = likert.iter().map(|c| (c.1 * c.2) as f64).sum::<f64>() / total as f64;
            assert!((pr["mean"].as_f64().unwrap() - mean).abs() < 1e-12, "{pr}");
        }
        let all: i64 = pc.iter().map(|c| c.2).sum();
        let agree: i64 = pc.iter().filter(|c| (c.0 == "LIKERT_5" && c.1 >= 4) || (c.0 == "THUMBS" && c.1 == 1)).map(|c| c.2).sum();
        assert!((pr["agreeShare"].as_f64().unwrap() - agree as f64 / all as f64).abs() < 1e-12, "{pr}");
    }
    assert!(suppressed > 10 && changed > p.len() / 2, "{suppressed} suppressed, {changed} of {} changed", p.len());
    // Zero on average (up to the moves to the side of the minimum).
    assert!((sum_change as f64 / p.len() as f64).abs() < 0.2, "{sum_change} over {}", p.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_public_query_with_counts_is_perturbed_or_refused() {
    // Benchmarks: the entity and its peers perturbed, the decisions as for exact roles.
    let q =
        "{ benchmark(level: SERVICE, peers: SAME_AGENCY, period: FISCAL_YEAR) { entity peerKey period n peerN suppressed peerSuppressedReason perturbed } }";
    let (p, e) = (run(Role::Public, q).await, run(Role::Analyst, q).await);
    let (p, e) = (p["benchmark"].as_array().unwrap(), e["benchmark"].as_array().unwrap());
    assert_eq!(p.len(), e.len());
    assert!(p.iter().zip(e).any(|(a, b)| a["peerN"] != b["peerN"]));
    for (a, b) in p.iter().zip(e) {
        assert_eq!(
            (&a["entity"], &a["suppressed"], &a["peerSuppressedReason"].is_null()),
            (&b["entity"], &b["suppressed"], &b["peerSuppressedReason"].is_null())
        );
        assert!((u(a, "n") - u(b, "n")).abs() <= 2 && (u(a, "peerN") - u(b, "peerN")).abs() <= 2);
        assert!(a["perturbed"].as_bool().unwrap() && !b["perturbed"].as_bool().unwrap());
    }
    // Trends (and their changes).
    let q = "{ trends(groupBy: [AGENCY], period: FISCAL_QUARTER) { agency period n perturbed previous { n } } }";
    let (p, e) = (run(Role::Public, q).await, run(Role::Analyst, q).await);
    for (a, b) in p["trends"].as_array().unwrap().iter().zip(e["trends"].as_array().unwrap()) {
        assert!((u(a, "n") - u(b, "n")).abs() <= 2 && a["perturbed"].as_bool().unwrap());
        if !a["previous"].is_null() {
            assert!((u(&a["previous"], "n") - u(&b["previous"], "n")).abs() <= 2);
        }
    }
    // Driver importance: n, n dropped and performance from perturbed counts.
    let q = "{ driverImportance(groupBy: [AGENCY], taps: true) { agency n nDropped nEffective suppressed perturbed warnings drivers { performance } taps { shown suppressed } } }";
    let q = q.replace(", taps: true", "");
    let (p, e) = (run(Role::Public, &q).await, run(Role::Analyst, &q).await);
    let (p, e) = (p["driverImportance"].as_array().unwrap(), e["driverImportance"].as_array().unwrap());
    assert!(p.iter().zip(e).any(|(a, b)| a["n"] != b["n"]));
    for (a, b) in p.iter().zip(e) {
        assert_eq!((&a["agency"], &a["suppressed"]), (&b["agency"], &b["suppressed"]));
        assert!((u(a, "n") - u(b, "n")).abs() <= 2 && (u(a, "nDropped") - u(b, "nDropped")).abs() <= 2, "{a} {b}");
        assert!(a["perturbed"].as_bool().unwrap() && !b["perturbed"].as_bool().unwrap());
        if u(a, "n") > 0 {
            assert_eq!(a["nEffective"].as_f64().unwrap(), u(a, "n") as f64, "unweighted: the effective n is the n shown");
        }
        for w in a["warnings"].as_array().unwrap() {
            assert!(!w.as_str().unwrap().contains(&format!("n = {} ", u(b, "n"))) || u(a, "n") == u(b, "n"), "a warning shows the true n: {w}");
        }
        for (x, y) in a["drivers"].as_array().unwrap().iter().zip(b["drivers"].as_array().unwrap()) {
            if let (Some(x), Some(y)) = (x["performance"].as_f64(), y["performance"].as_f64()) {
                assert!((x - y).abs() < 0.15 && x <= 1.0, "{x} {y}");
            }
        }
    }
    let q = "{ driverImportance(groupBy: [AGENCY], taps: true) { agency taps { topic shown positiveShare suppressed } } }".replace(", taps: true", "");
    let (p, e) = (run(Role::Public, &q).await, run(Role::Analyst, &q).await);
    for (a, b) in p["driverImportance"].as_array().unwrap().iter().zip(e["driverImportance"].as_array().unwrap()) {
        for (x, y) in a["taps"].as_array().unwrap().iter().zip(b["taps"].as_array().unwrap()) {
            assert_eq!(x["suppressed"], y["suppressed"]);
            assert!((u(x, "shown") - u(y, "shown")).abs() <= 2);
        }
    }
    // The HISP report: each count, each question's n and the respondents.
    let q = "{ hispReport(fiscalYear: 2026, quarter: 3) { perturbed rows { serviceId channel pointScale volumeOfRespondents questions { n counts suppressed } } } }";
    let (p, e) = (run(Role::Public, q).await, run(Role::Analyst, q).await);
    assert!(p["hispReport"]["perturbed"].as_bool().unwrap() && !e["hispReport"]["perturbed"].as_bool().unwrap());
    let (p, e) = (p["hispReport"]["rows"].as_array().unwrap(), e["hispReport"]["rows"].as_array().unwrap());
    assert_eq!(p.len(), e.len());
    let mut differ = 0;
    for (a, b) in p.iter().zip(e) {
        assert!((u(a, "volumeOfRespondents") - u(b, "volumeOfRespondents")).abs() <= 2);
        for (x, y) in a["questions"].as_array().unwrap().iter().zip(b["questions"].as_array().unwrap()) {
            assert_eq!(x["suppressed"], y["suppressed"]);
            assert!((u(x, "n") - u(y, "n")).abs() <= 2);
            if let (Some(xc), Some(yc)) = (x["counts"].as_array(), y["counts"].as_array()) {
                for (c, d) in xc.iter().zip(yc) {
                    assert!((c.as_i64().unwrap() - d.as_i64().unwrap()).abs() <= 2);
                    differ += (c != d) as usize;
                }
            }
        }
    }
    assert!(differ > 0);
    // Services with their scores, and service levels: the public's rows are perturbed.
    let v =
        run(Role::Public, r#"{ services(agency: ["VA"]) { id scores { n perturbed } } serviceLevels { rows { scores { score { n perturbed } } } } }"#).await;
    assert!(v["services"].as_array().unwrap().iter().flat_map(|s| s["scores"].as_array().unwrap()).all(|s| s["perturbed"] == true));
    assert!(v["serviceLevels"]["rows"].as_array().unwrap().iter().flat_map(|r| r["scores"].as_array().unwrap()).all(|s| s["score"]["perturbed"] == true));
    // Alerts compare the public's minimum with the n shown: each alert's n is a perturbed one.
    let q = r#"{ alerts(levels: [SERVICE], period: FISCAL_QUARTER, at: "FY2024Q2", minN: 10, alpha: 0.999) { entity n perturbed } }"#;
    let a = run(Role::Public, q).await;
    assert!(a["alerts"].as_array().unwrap().iter().all(|x| x["perturbed"] == true && u(x, "n") >= 10));
    // Tapped importance is refused to the public, with the reason; served to an analyst.
    let schema = cxlake::api::schema(analytics(shared_lake()).with_cell_key_secret(secret()));
    let q = "{ tappedDriverImportance { n } }";
    let resp = schema.execute(async_graphql::Request::new(q).data(Principal::anonymous())).await;
    let err = resp.errors.first().expect("refused");
    assert!(err.message.contains("not offered to the public role"), "{}", err.message);
    assert_eq!(err.extensions.as_ref().and_then(|x| x.get("code")).map(|c| c.to_string()), Some("\"FORBIDDEN\"".into()));
    let resp = schema.execute(async_graphql::Request::new(q).data(Principal { role: Role::Analyst, key_id: None })).await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hisp_download_is_perturbed_for_the_public_only() {
    use cxlake::api::keys::{KeyFile, KeyStore};
    use cxlake::api::server::{routes_with, Limits};
    use poem::test::TestClient;
    use poem::IntoEndpoint;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let mut file = KeyFile::default();
    let analyst = file.add("analyst", Role::Analyst).1;
    file.save(&path).unwrap();
    let a = analytics(shared_lake()).with_cell_key_secret(secret());
    let limits = Limits { keys: Some(std::sync::Arc::new(KeyStore::open(&path).unwrap())), ..Limits::default() };
    let cli = TestClient::new(routes_with(cxlake::api::schema(a.clone()), a, None, limits).into_endpoint());
    let url = "/v1/reports/hisp?fiscalYear=2026&quarter=3&format=csv";
    let public = cli.get(url).send().await;
    public.assert_status_is_ok();
    public.assert_header("x-cxlake-counts", "perturbed");
    let public = public.0.into_body().into_string().await.unwrap();
    let exact = cli.get(url).header("authorization", format!("Bearer {analyst}")).send().await;
    exact.assert_header("x-cxlake-counts", "exact");
    let exact = exact.0.into_body().into_string().await.unwrap();
    assert_ne!(public, exact);
    assert_eq!(public.lines().count(), exact.lines().count());
    // The same download again: the same perturbed numbers.
    assert_eq!(cli.get(url).send().await.0.into_body().into_string().await.unwrap(), public);
}

/// The public's published grid (issue 18, `Filter::check_public`): a selection that is not a
/// cell of it is refused naming the argument, in every query that publishes counts; the same
/// selection is served to an analyst.
#[tokio::test(flavor = "multi_thread")]
async fn the_public_sees_only_cells_of_the_published_grid() {
    let schema = cxlake::api::schema(analytics(shared_lake()).with_cell_key_secret(secret()));
    let ask = |role: Role, q: String| {
        let schema = schema.clone();
        async move { schema.execute(async_graphql::Request::new(q).data(Principal { role, key_id: None })).await }
    };
    let refused = [
        ("scores(period: MONTH) { n }", "period"),
        (r#"scores(filter: { from: "2024-01-01", to: "2024-01-31" }) { n }"#, "filter.from"),
        (r#"scores(filter: { from: "2023-10-01", to: "2024-03-31" }) { n }"#, "filter.from"),
        (r#"scores(filter: { from: "2023-10-01" }) { n }"#, "filter.to"),
        (r#"scores(filter: { from: "2023-11-01", to: "2024-03-31" }, period: FISCAL_QUARTER) { n }"#, "filter.from"),
        (r#"scores(filter: { agency: ["VA", "SSA"] }) { n }"#, "filter.agency"),
        (r#"scores(filter: { agency: ["VA", "SSA"] }, groupBy: [SERVICE]) { n }"#, "filter.agency"),
        ("trends(period: WEEK) { n }", "period"),
        ("trends(period: YEAR) { n }", "period"),
        (r#"benchmark(level: SERVICE, filter: { from: "2024-01-01", to: "2024-02-29" }) { n }"#, "filter.from"),
        (r#"driverImportance(filter: { agency: ["VA", "SSA"] }) { n }"#, "filter.agency"),
        (r#"scores(filter: { service: ["VA-S01", "VA-S02"] }) { n }"#, "filter.service"),
        // A benchmark of listed entities would publish their ad hoc sums as peer groups.
        (r#"benchmark(level: AGENCY, filter: { agency: ["VA", "SSA", "DOI"] }) { n }"#, "filter.agency"),
        (r#"alerts(period: MONTH, at: "2024-03") { n }"#, "period"),
        ("serviceLevels(period: MONTH) { rows { period } }", "period"),
    ];
    for (q, argument) in refused {
        let q = format!("{{ {q} }}");
        let resp = ask(Role::Public, q.clone()).await;
        let err = resp.errors.first().unwrap_or_else(|| panic!("{q}: served to the public"));
        let ext = err.extensions.as_ref().expect("extensions");
        assert_eq!(ext.get("argument").map(|a| a.to_string()), Some(format!("\"{argument}\"")), "{q}: {}", err.message);
        assert!(err.message.contains("public role"), "{q}: {}", err.message);
        let resp = ask(Role::Analyst, q.clone()).await;
        assert!(resp.errors.is_empty(), "{q}: {:?}", resp.errors);
    }
    let served = [
        r#"scores(filter: { from: "2023-10-01", to: "2023-12-31" }) { n }"#,
        r#"scores(filter: { from: "2023-10-01", to: "2024-09-30" }) { n }"#,
        r#"scores(filter: { agency: ["VA", "SSA"], from: "2023-10-01", to: "2024-09-30" }, groupBy: [AGENCY], period: FISCAL_QUARTER) { n }"#,
        r#"trends(groupBy: [SERVICE], period: QUARTER, filter: { from: "2024-01-01" }) { n }"#,
        "trends(period: FISCAL_YEAR) { n }",
        r#"benchmark(level: SERVICE, period: FISCAL_QUARTER, filter: { from: "2023-10-01", to: "2024-09-30" }) { n }"#,
        "alerts { n }",
        r#"services(agency: ["VA"]) { scores(from: "2023-10-01", to: "2023-12-31") { n } }"#,
        r#"services { scores(period: FISCAL_YEAR) { n } }"#,
    ];
    for q in served {
        let q = format!("{{ {q} }}");
        let resp = ask(Role::Public, q.clone()).await;
        assert!(resp.errors.is_empty(), "{q}: {:?}", resp.errors);
    }
    // The list of a service's scores with a partial date range is refused too (it is a scores
    // query of the listed services).
    let resp = ask(Role::Public, r#"{ services(agency: ["VA"]) { scores(from: "2023-11-01", to: "2023-12-31") { n } } }"#.into()).await;
    let err = resp.errors.first().expect("refused");
    let ext = err.extensions.as_ref().expect("extensions");
    assert_eq!(ext.get("code").map(|c| c.to_string()), Some("\"BAD_USER_INPUT\"".into()), "{}", err.message);
    assert_eq!(ext.get("argument").map(|c| c.to_string()), Some("\"from\"".into()), "{}", err.message);
}
