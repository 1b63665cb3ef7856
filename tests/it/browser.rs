//! What a web page on another site can make a server do (issue 18: a keyless server accepted
//! form-like POSTs, GET mutations and any Host): mutations only by JSON POST, submissions only
//! as JSON, Host and Origin checked against the listen address when there are no keys, CORS
//! headers only for `--cors-origin`.

use crate::common::{analytics, fresh_lake, stored_ids};
use cxlake::api::server::Limits;
use cxlake::ingest::submit::Submitter;
use poem::http::StatusCode;
use poem::test::TestClient;
use poem::IntoEndpoint;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const HOST: &str = "127.0.0.1:8080";

fn response(lake: &Path, id: &str) -> Value {
    crate::common::submission(lake, id, "c-web")
}

/// The submitResponses mutation storing `response`.
fn mutation(r: &Value) -> String {
    format!(
        r#"mutation {{ submitResponses(responses: [{{responseId: "{}", agency: "{}", bureau: "{}", serviceId: "{}", serviceType: {}, channel: DIGITAL, collectionId: "c-web", scale: LIKERT_5, trust: 4, submittedAt: "2023-03-01T00:00:00Z"}}]) {{ accepted }} }}"#,
        r["response_id"].as_str().unwrap(),
        r["agency"].as_str().unwrap(),
        r["bureau"].as_str().unwrap(),
        r["service_id"].as_str().unwrap(),
        r["service_type"].as_str().unwrap().to_uppercase(),
    )
}

/// A writing server (submissions flushed every 100 ms) with `limits`.
fn server(lake: &Path, limits: Limits) -> TestClient<impl poem::Endpoint> {
    let a = analytics(lake);
    let submitter = Submitter::start(&a.lake, &lake.join("_wal"), a.catalog().inventory(), Duration::from_millis(100)).unwrap();
    let schema = cxlake::api::schema_with_submit(a.clone(), submitter.clone());
    TestClient::new(cxlake::api::server::routes_with(schema, a, Some(submitter), limits).into_endpoint())
}

/// A CORS preflight of a JSON POST to `/graphql` from a page of `origin`.
async fn preflight<E: poem::Endpoint>(cli: &TestClient<E>, origin: &str) -> poem::test::TestResponse {
    cli.options("/graphql")
        .header("host", HOST)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
}

fn keyless() -> Limits {
    Limits { port: Some(8080), ..Limits::default() }
}

async fn body(resp: poem::test::TestResponse) -> (StatusCode, Value) {
    let status = resp.0.status();
    let text = resp.0.into_body().into_string().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Waits until `control` is stored, then returns what is stored (refused ids, sent before
/// it, would be there by then).
fn stored_after(lake: &Path, control: &str) -> std::collections::HashMap<String, usize> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ids = stored_ids(lake);
        if ids.contains_key(control) || Instant::now() > deadline {
            assert!(ids.contains_key(control), "the control submission {control} was not stored");
            return ids;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_another_site_cannot_change_a_keyless_server() {
    let lake = fresh_lake(2_000, 41, 1);
    let cli = server(&lake, keyless());
    let mut refused_ids = Vec::new();
    // Form-like POSTs of a mutation: any page can send them without a preflight.
    for (i, content_type) in
        ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""].into_iter().enumerate()
    {
        let id = format!("web-gql-{i}");
        let doc = json!({ "query": mutation(&response(&lake, &id)) }).to_string();
        let mut req = cli.post("/graphql").header("host", HOST).header("origin", "http://127.0.0.1:8080");
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        let (status, v) = body(req.body(doc).send().await).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type:?}: {v}");
        refused_ids.push(id);
    }
    // A mutation over GET (an <img src> or a link could send it).
    let id = "web-get".to_string();
    let (status, v) = body(cli.get("/graphql").header("host", HOST).query("query", &mutation(&response(&lake, &id))).send().await).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    refused_ids.push(id);
    // POST /v1/responses with a JSON body but a form-like content type, or none.
    for (i, content_type) in ["text/plain", "application/x-www-form-urlencoded", ""].into_iter().enumerate() {
        let id = format!("web-rest-{i}");
        let mut req = cli.post("/v1/responses").header("host", HOST);
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        let (status, v) = body(req.body(response(&lake, &id).to_string()).send().await).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type:?}: {v}");
        assert!(v["error"].as_str().unwrap().contains("content"), "{v}");
        refused_ids.push(id);
    }
    // The same from a page of another origin, even as JSON, and to a foreign Host name.
    let id = "web-origin".to_string();
    let (status, v) =
        body(cli.post("/v1/responses").header("host", HOST).header("origin", "https://evil.example").body_json(&response(&lake, &id)).send().await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(v["error"].as_str().unwrap().contains("https://evil.example"), "{v}");
    refused_ids.push(id);
    let id = "web-rebound".to_string();
    let (status, v) = body(cli.post("/v1/responses").header("host", "evil.example:8080").body_json(&response(&lake, &id)).send().await).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap().contains("evil.example:8080"), "{v}");
    refused_ids.push(id);

    // The clients of the README still work: JSON from 127.0.0.1 or localhost, and GraphiQL's
    // own same-origin POSTs.
    let (status, v) = body(cli.post("/v1/responses").header("host", "localhost:8080").body_json(&response(&lake, "ok-rest")).send().await).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let doc = json!({ "query": mutation(&response(&lake, "ok-gql")) });
    let (status, v) = body(cli.post("/graphql").header("host", HOST).header("origin", "http://127.0.0.1:8080").body_json(&doc).send().await).await;
    assert_eq!((status, v["data"]["submitResponses"]["accepted"].as_u64()), (StatusCode::OK, Some(1)), "{v}");
    let stored = stored_after(&lake, "ok-gql");
    assert!(stored.contains_key("ok-rest"));
    for id in &refused_ids {
        assert!(!stored.contains_key(id), "{id} was stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_origins_and_cors() {
    let lake = crate::common::shared_lake();
    let a = analytics(lake);
    let client = |limits: Limits| TestClient::new(cxlake::api::server::routes_with(cxlake::api::schema(a.clone()), a.clone(), None, limits).into_endpoint());
    let query = json!({ "query": "{ services { id } }" });

    // DNS rebinding: a hostile name resolving to 127.0.0.1 reads nothing.
    let cli = client(keyless());
    for host in ["evil.example:8080", "127.0.0.1:9999", "localhost.evil.example:8080"] {
        let resp = cli.get("/v1/export?format=csv&agency=VA").header("host", host).send().await;
        resp.assert_status(StatusCode::MISDIRECTED_REQUEST);
        let resp = cli.post("/graphql").header("host", host).body_json(&query).send().await;
        resp.assert_status(StatusCode::MISDIRECTED_REQUEST);
    }
    for host in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080"] {
        cli.get("/v1/export?format=csv&agency=VA").header("host", host).send().await.assert_status_is_ok();
    }
    let named = client(Limits { allowed_hosts: vec!["cx.internal".into()], ..keyless() });
    named.post("/graphql").header("host", "cx.internal").body_json(&query).send().await.assert_status_is_ok();
    named.post("/graphql").header("host", "cx.internal:8080").header("origin", "https://cx.internal").body_json(&query).send().await.assert_status_is_ok();

    // No CORS headers by default, also for our own origin; foreign origins are refused.
    let resp = cli.post("/graphql").header("host", HOST).header("origin", "http://127.0.0.1:8080").body_json(&query).send().await;
    resp.assert_status_is_ok();
    assert!(resp.0.headers().get("access-control-allow-origin").is_none());
    let refused = preflight(&cli, "https://dash.example.gov").await;
    assert!(refused.0.status().is_client_error() && refused.0.headers().get("access-control-allow-origin").is_none());

    // --cors-origin: that origin's pages may call (preflight and request), others may not.
    let cors = client(Limits { cors_origins: vec!["https://dash.example.gov".into()], ..keyless() });
    let allowed = preflight(&cors, "https://dash.example.gov").await;
    allowed.assert_status_is_ok();
    allowed.assert_header("access-control-allow-origin", "https://dash.example.gov");
    let resp = cors.post("/graphql").header("host", HOST).header("origin", "https://dash.example.gov").body_json(&query).send().await;
    resp.assert_status_is_ok();
    resp.assert_header("access-control-allow-origin", "https://dash.example.gov");
    let other = cors.post("/graphql").header("host", HOST).header("origin", "https://other.example.gov").body_json(&query).send().await;
    assert_eq!(other.0.status(), StatusCode::FORBIDDEN);
    assert!(other.0.headers().get("access-control-allow-origin").is_none());
    // GraphiQL's own requests are same-origin: no CORS involved.
    let own = cors.post("/graphql").header("host", HOST).header("origin", "http://127.0.0.1:8080").body_json(&query).send().await;
    own.assert_status_is_ok();
    assert!(own.0.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_any_host_name_but_still_json_only() {
    let lake = fresh_lake(2_000, 42, 1);
    let keys = std::sync::Arc::new(cxlake::api::keys::KeyStore::open(&lake.parent().unwrap().join("keys.json")).unwrap());
    let admin = keys.update(|f| Ok(f.add("admin", cxlake::api::auth::Role::Admin).1)).unwrap();
    let cli = server(&lake, Limits { keys: Some(keys), ..keyless() });
    let auth = format!("Bearer {admin}");
    // A deployment behind any host name, with pages of other origins using keys.
    cli.post("/graphql")
        .header("host", "cx.example.gov")
        .header("origin", "https://dash.example.gov")
        .header("authorization", &auth)
        .body_json(&json!({"query": "{ services { id } }"}))
        .send()
        .await
        .assert_status_is_ok();
    let (status, v) = body(
        cli.post("/v1/responses").header("authorization", &auth).header("content-type", "text/plain").body(response(&lake, "k-plain").to_string()).send().await,
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v}");
    let (status, v) = body(
        cli.post("/graphql")
            .header("authorization", &auth)
            .header("content-type", "text/plain")
            .body(json!({"query": mutation(&response(&lake, "k-gql"))}).to_string())
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v}");
    let (status, v) = body(cli.post("/v1/responses").header("authorization", &auth).body_json(&response(&lake, "k-ok")).send().await).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let stored = stored_after(&lake, "k-ok");
    assert!(!stored.contains_key("k-plain") && !stored.contains_key("k-gql"));
}
