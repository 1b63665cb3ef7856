//! The HTTP server: routes, GraphiQL, GraphQL over POST and GET, clear errors.

use crate::common::{analytics, shared_lake};
use cxlake::api::{schema, sdl, server::routes};
use poem::test::TestClient;

fn client() -> TestClient<impl poem::Endpoint> {
    use poem::IntoEndpoint;
    let a = analytics(shared_lake());
    TestClient::new(routes(schema(a.clone()), a, None).into_endpoint())
}

async fn post(q: &str) -> serde_json::Value {
    let resp = client().post("/graphql").body_json(&serde_json::json!({ "query": q })).send().await;
    resp.assert_status_is_ok();
    resp.json().await.value().deserialize()
}

#[tokio::test(flavor = "multi_thread")]
async fn health_graphiql_and_schema_routes() {
    let c = client();
    let h = c.get("/health").send().await;
    h.assert_status_is_ok();
    let body: serde_json::Value = serde_json::from_str(&h.0.into_body().into_string().await.unwrap()).unwrap();
    // A generated lake: responses, telemetry and indicators created (version 0) and filled (1),
    // services and offices written once (0): eight commits.
    assert_eq!((body["status"].as_str(), body["lake_version"].as_u64()), (Some("ok"), Some(8)), "{body}");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let page = c.get("/").send().await;
    page.assert_status_is_ok();
    assert!(page.0.into_body().into_string().await.unwrap().to_lowercase().contains("graphiql"));
    // Every response carries a request id: the caller's, or a new one.
    let r = c.get("/health").header("x-request-id", "abc-123").send().await;
    assert_eq!(r.0.headers().get("x-request-id").unwrap(), "abc-123");
    assert_eq!(c.get("/health").send().await.0.headers().get("x-request-id").unwrap().len(), 36);
    // Prometheus metrics count what was served.
    c.post("/graphql").body_json(&serde_json::json!({"query": "{ services { id } }"})).send().await.assert_status_is_ok();
    c.post("/graphql").body_json(&serde_json::json!({"query": "{ services { id } }"})).send().await.assert_status_is_ok();
    let m = c.get("/metrics").send().await.0.into_body().into_string().await.unwrap();
    for line in [
        "cxlake_http_requests_total{route=\"/health\",status=\"200\"} 3",
        "cxlake_http_requests_total{route=\"/graphql\",status=\"200\"} 2",
        "cxlake_cache_hits_total 1",
        "cxlake_cache_misses_total 1",
        "cxlake_graphql_duration_seconds_count{operation=\"services\",format=\"json\"} 2",
        "cxlake_lake_version 8",
    ] {
        assert!(m.contains(line), "{line} not in\n{m}");
    }
    // A scores query over the whole lake that no rollup covers (office by service) hands every
    // data file to the scan: files, rows (from the footers) and bytes are counted (at least
    // these: other tests share the process).
    c.post("/graphql")
        .body_json(&serde_json::json!({"query": "{ scores(groupBy: [OFFICE, SERVICE], measures: [TRUST]) { n } }"}))
        .send()
        .await
        .assert_status_is_ok();
    let m = c.get("/metrics").send().await.0.into_body().into_string().await.unwrap();
    let value = |name: &str| -> u64 {
        m.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("{name} not in\n{m}"))
    };
    let files = crate::common::data_files(shared_lake());
    let bytes: u64 = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    assert!(value("cxlake_scanned_files_total ") >= files.len() as u64);
    assert!(value("cxlake_scanned_bytes_total ") >= bytes);
    assert!(value("cxlake_scanned_rows_total ") >= crate::common::SHARED_ROWS);
    assert!(value("cxlake_score_computations_total{path=\"raw\"} ") >= 1);
    let s = c.get("/schema.graphql").send().await;
    s.assert_status_is_ok();
    s.assert_text(sdl()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scores_over_post_and_get() {
    let q = "{ scores(groupBy: [SERVICE_TYPE], measures: [TRUST]) { serviceType n mean agreeShare agreeLow agreeHigh } }";
    let v = post(q).await;
    let rows = v["data"]["scores"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    let total: u64 = rows.iter().map(|r| r["n"].as_u64().unwrap()).sum();
    assert!(total > 30_000);
    let resp = client().get("/graphql").query("query", &q).send().await;
    resp.assert_status_is_ok();
    let g: serde_json::Value = resp.json().await.value().deserialize();
    assert_eq!(g["data"], v["data"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_name_what_was_wrong() {
    let v = post("{ scores { nope } }").await;
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("nope"), "{v}");
    let v = post(r#"{ scores(filter: {agency: ["XX"]}) { n } }"#).await;
    let e = &v["errors"][0];
    assert!(e["message"].as_str().unwrap().contains("'XX'"), "{v}");
    assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(e["extensions"]["argument"], "filter.agency");
    let v = post(r#"{ scores(filter: {channel: [TELEPATHY]}) { n } }"#).await;
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("TELEPATHY"), "{v}");
    let v = post(r#"{ scores(filter: {from: "2025-13-01"}) { n } }"#).await;
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("'2025-13-01' is not a date"), "{v}");
}

#[test]
fn a_missing_lake_is_a_clear_error() {
    let err = cxlake::store::Lake::open("/definitely/not/here").unwrap_err().to_string();
    assert!(err.contains("/definitely/not/here") && err.contains("no lake"), "{err}");
}
