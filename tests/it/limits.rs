//! Limits and keys end to end: query depth, complexity and aliases, request body size, the
//! time limit, per-key rate limits, anonymous access off, key revocation through the keys
//! file, the `cxlake keys` command, and raw pages that say when they were cut (JSON, CSV
//! headers, Parquet metadata) and page through every row exactly once.

use crate::common::{analytics, fresh_lake};
use cxlake::api::auth::Role;
use cxlake::api::keys::{KeyFile, KeyStore};
use cxlake::api::server::{routes_with, Limits};
use poem::test::TestClient;
use poem::IntoEndpoint;
use serde_json::{json, Value};
use std::sync::Arc;

async fn body(resp: poem::test::TestResponse) -> (u16, Value) {
    let status = resp.0.status().as_u16();
    let text = resp.0.into_body().into_string().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn client(lake: &std::path::Path, limits: Limits) -> TestClient<impl poem::Endpoint> {
    let schema = cxlake::api::schema(analytics(lake));
    TestClient::new(routes_with(schema, cxlake::analytics::Analytics::open(cxlake::store::Lake::open(lake).unwrap()).unwrap(), None, limits).into_endpoint())
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_beyond_the_limits_get_clear_errors() {
    let lake = crate::common::shared_lake();
    let cli = client(lake, Limits { max_body: 4096, ..Limits::default() });
    let aliases: String = (0..20).map(|i| format!("a{i}: services {{ id }} ")).collect();
    let deep = format!("{{ {}x{} }}", "services { ".repeat(13), " }".repeat(13));
    let wide: String = (0..1100).map(|_| "id ").collect();
    for (query, expect) in
        [(format!("{{ {aliases} }}"), "aliased fields"), (deep, "nested 14 fields deep; at most 12"), (format!("{{ services {{ {wide} }} }}"), "too complex")]
    {
        let (status, v) = body(cli.post("/graphql").body_json(&json!({ "query": query })).send().await).await;
        assert!(status < 500, "{v}");
        let message = v["errors"][0]["message"].as_str().unwrap_or_else(|| panic!("no error for {expect}: {v}")).to_lowercase();
        assert!(message.contains(expect), "{expect}: {message}");
    }
    let big = json!({ "query": format!("{{ services {{ id }} }} # {}", "x".repeat(5000)) });
    let (status, v) = body(cli.post("/graphql").body_json(&big).send().await).await;
    assert_eq!(status, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("4096"), "{v}");
}

/// The standard introspection query of every client and IDE (graphql-core's text, as graphql-js
/// and GraphiQL send it, with and without its optional fields) goes through the depth limit.
#[tokio::test(flavor = "multi_thread")]
async fn the_standard_introspection_query_is_answered() {
    let lake = crate::common::shared_lake();
    let cli = client(lake, Limits::default());
    for fixture in ["introspection_default.graphql", "introspection_full.graphql"] {
        let query = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(fixture)).unwrap();
        let (status, v) = body(cli.post("/graphql").body_json(&json!({ "query": query })).send().await).await;
        assert_eq!(status, 200, "{fixture}: {v}");
        assert!(v.get("errors").is_none(), "{fixture}: {}", v["errors"]);
        let types = v["data"]["__schema"]["types"].as_array().unwrap();
        assert!(types.iter().any(|t| t["name"] == "QueryRoot"), "{fixture}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_over_the_time_limit_is_stopped_with_a_timeout_error() {
    let lake = crate::common::shared_lake();
    let cli = client(lake, Limits { timeout: std::time::Duration::from_millis(1), ..Limits::default() });
    let q = json!({"query": "{ driverImportance(groupBy: [SERVICE], bootstrap: 200) { n drivers { shapleyLow } } }"});
    let (status, v) = body(cli.post("/graphql").body_json(&q).send().await).await;
    assert_eq!(status, 200);
    assert_eq!(v["errors"][0]["extensions"]["code"], "TIMEOUT", "{v}");
    // The server goes on answering.
    let (status, _) = body(cli.get("/health").send().await).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_rate_limits_anonymous_access_and_revocation() {
    let lake = crate::common::shared_lake();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let mut file = KeyFile::default();
    let (entry, key) = file.add("dashboard", Role::Analyst);
    file.save(&path).unwrap();
    let store = Arc::new(KeyStore::open(&path).unwrap());
    let cli = client(lake, Limits { keys: Some(store.clone()), anonymous: false, rate_per_second: 2, ..Limits::default() });
    let q = json!({"query": "{ services { id } }"});
    let (status, v) = body(cli.post("/graphql").body_json(&q).send().await).await;
    assert_eq!(status, 401, "anonymous access is off: {v}");
    let (status, v) = body(cli.post("/graphql").header("authorization", "Bearer cxk_nope_0000").body_json(&q).send().await).await;
    assert_eq!(status, 401, "{v}");
    // Two per second, bursts of four: a quick run of ten is cut off with 429 and retry-after.
    let mut codes = Vec::new();
    for _ in 0..10 {
        let resp = cli.post("/graphql").header("authorization", format!("Bearer {key}")).body_json(&q).send().await;
        if resp.0.status().as_u16() == 429 {
            assert!(resp.0.headers().get("retry-after").is_some());
        }
        codes.push(resp.0.status().as_u16());
    }
    assert!(codes[0] == 200 && codes.contains(&429), "{codes:?}");
    // An admin manages keys over HTTP: the new key works at once, lists show no secret, a
    // revoked one stops at once; an analyst may not manage keys.
    let admin = {
        let mut f = KeyFile::load(&path).unwrap();
        let k = f.add("ops", Role::Admin).1;
        f.save(&path).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        k
    };
    let (status, created) = body(
        cli.post("/v1/keys")
            .header("authorization", format!("Bearer {admin}"))
            .body_json(&json!({"name": "va", "role": "agency", "agency": "VA"}))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let new_key = created["key"].as_str().unwrap().to_string();
    let (status, _) = body(cli.post("/graphql").header("authorization", format!("Bearer {new_key}")).body_json(&q).send().await).await;
    assert!(status == 200 || status == 429, "{status}");
    let (status, listed) = body(cli.get("/v1/keys").header("authorization", format!("Bearer {admin}")).send().await).await;
    assert_eq!(status, 200);
    assert!(listed.to_string().contains("\"va\"") && !listed.to_string().contains("hash") && !listed.to_string().contains(&new_key[13..]), "{listed}");
    let (status, _) = body(cli.get("/v1/keys").header("authorization", format!("Bearer {key}")).send().await).await;
    assert!(status == 403 || status == 429, "an analyst lists keys: {status}");
    let id = created["id"].as_str().unwrap();
    let (status, revoked) = body(cli.delete(format!("/v1/keys/{id}")).header("authorization", format!("Bearer {admin}")).send().await).await;
    assert_eq!(status, 200, "{revoked}");
    let (status, v) = body(cli.post("/graphql").header("authorization", format!("Bearer {new_key}")).body_json(&q).send().await).await;
    assert_eq!(status, 401, "{v}");
    let (status, _) = body(cli.delete("/v1/keys/nope").header("authorization", format!("Bearer {admin}")).send().await).await;
    assert_eq!(status, 404);
    // Revoked in the file: refused once the server rereads it (within a second).
    let mut file = KeyFile::load(&path).unwrap();
    file.revoke(&entry.id).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    file.save(&path).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (status, v) = body(cli.post("/graphql").header("authorization", format!("Bearer {key}")).body_json(&q).send().await).await;
    assert_eq!(status, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("revoked"), "{v}");
}

#[test]
fn the_keys_command_adds_lists_and_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cxlake")).arg("keys").arg("--keys").arg(&keys).args(args).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, key, _) = run(&["add", "--name", "va team", "--role", "agency", "--agency", "VA"]);
    assert!(ok && key.trim().starts_with("cxk_"), "{key}");
    let (ok, _, err) = run(&["add", "--name", "x", "--role", "agency"]);
    assert!(!ok && err.contains("needs an agency"), "{err}");
    let (ok, _, err) = run(&["add", "--name", "x", "--role", "root"]);
    assert!(!ok && err.contains("unknown role"), "{err}");
    let id = key.trim().split('_').nth(1).unwrap().to_string();
    let (_, list, _) = run(&["list"]);
    assert!(list.contains(&id) && list.contains("agency:VA") && list.contains("live") && !list.contains(key.trim()), "{list}");
    let (ok, _, _) = run(&["revoke", &id]);
    assert!(ok);
    let (_, list, _) = run(&["list"]);
    assert!(list.contains("revoked"), "{list}");
    assert_eq!(KeyFile::load(&keys).unwrap().verify(key.trim()).unwrap_err().to_string(), format!("the API key '{id}' was revoked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_pages_say_when_they_are_cut_and_page_through_every_row_once() {
    let lake = fresh_lake(2_500, 81, 1);
    let cli = client(&lake, Limits::default());
    let agency = analytics(&lake).catalog().services.iter().map(|s| s.agency.clone()).collect::<std::collections::BTreeSet<_>>();
    let page = |after: Option<String>| {
        json!({"query": "query($a: [String!], $after: String) { responses(filter: {agency: $a}, first: 100, after: $after) { totalCount truncated pageInfo { hasNextPage endCursor } rows { responseId } } }",
               "variables": {"a": agency, "after": after}})
    };
    let mut seen = std::collections::HashSet::new();
    let mut after = None;
    let mut total = None;
    loop {
        let (status, v) = body(cli.post("/graphql").body_json(&page(after.clone())).send().await).await;
        assert_eq!(status, 200, "{v}");
        let p = &v["data"]["responses"];
        let t = p["totalCount"].as_u64().unwrap_or_else(|| panic!("{v}"));
        assert_eq!(*total.get_or_insert(t), t);
        for r in p["rows"].as_array().unwrap() {
            assert!(seen.insert(r["responseId"].as_str().unwrap().to_string()), "a row came twice");
        }
        assert_eq!(p["truncated"], p["pageInfo"]["hasNextPage"]);
        match p["pageInfo"]["endCursor"].as_str() {
            Some(c) => after = Some(c.to_string()),
            None => break,
        }
    }
    let total = total.unwrap();
    assert!(total > 100, "the agency has more than one page ({total})");
    assert_eq!(seen.len() as u64, total);
    // The same first page as a table: the cut is in the headers (every format) and in the
    // Parquet file's metadata.
    for (accept, format) in [("text/csv", "csv"), ("application/vnd.apache.parquet", "parquet")] {
        let resp = cli.post("/graphql").header("accept", accept).body_json(&page(None)).send().await;
        resp.assert_status_is_ok();
        let h = |k: &str| resp.0.headers().get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        assert_eq!(h("x-cxlake-truncated").as_deref(), Some("true"), "{format}");
        assert_eq!(h("x-cxlake-totalcount"), Some(total.to_string()), "{format}");
        assert!(h("x-cxlake-pageinfo-endcursor").is_some(), "{format}");
        let bytes = resp.0.into_body().into_bytes().await.unwrap();
        if format == "parquet" {
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
            let meta = reader.schema().metadata().clone();
            assert_eq!(meta.get("cxlake.truncated").map(String::as_str), Some("true"), "{meta:?}");
            assert_eq!(meta.get("cxlake.totalCount"), Some(&total.to_string()));
            let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
            assert_eq!(rows, 100);
        } else {
            assert_eq!(String::from_utf8_lossy(&bytes).lines().count(), 101);
        }
    }
    // A page size beyond the maximum is refused, not cut silently.
    let (_, v) = body(cli.post("/graphql").body_json(&json!({"query": "{ responses(first: 5000) { totalCount } }"})).send().await).await;
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("1 to 1000"), "{v}");
}

#[test]
fn serve_refuses_a_public_address_without_keys_and_serves_with_them() {
    let lake = crate::common::shared_lake();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cxlake")).args(["serve", "--listen", "0.0.0.0:0", "--lake"]).arg(lake).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("needs --keys"), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let mut file = KeyFile::default();
    let key = file.add("analyst", Role::Analyst).1;
    file.save(&keys).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cxlake"))
        .args(["serve", "--no-anonymous", "--listen", &format!("127.0.0.1:{port}"), "--keys"])
        .arg(&keys)
        .arg("--lake")
        .arg(lake)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ask = |auth: Option<&str>| -> Option<u16> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        let body = r#"{"query":"{ services { id } }"}"#;
        let auth = auth.map(|k| format!("authorization: Bearer {k}\r\n")).unwrap_or_default();
        write!(
            s,
            "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{auth}connection: close\r\n\r\n{body}",
            body.len()
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        text.split_whitespace().nth(1)?.parse().ok()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while ask(None).is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (anonymous, keyed) = (ask(None), ask(Some(&key)));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!((anonymous, keyed), (Some(401), Some(200)));
}

/// Issue 18: a fragment of aliased heavy fields spread N times ran N times the work past every
/// limit. Aliases are counted with spreads expanded, and a field repeated with the same
/// arguments within a request is computed once.
#[tokio::test(flavor = "multi_thread")]
async fn fragment_spreads_count_their_aliases_and_repeats_are_computed_once() {
    let lake = crate::common::shared_lake();
    let cli = client(lake, Limits::default());
    let fragment: String = (0..9).map(|i| format!("a{i}: scores(groupBy: [AGENCY]) {{ n }} ")).collect();
    let query = format!("{{ ...F ...F }} fragment F on QueryRoot {{ {fragment} }}");
    let (status, v) = body(cli.post("/graphql").body_json(&json!({ "query": query })).send().await).await;
    assert!(status < 500, "{v}");
    let message = v["errors"][0]["message"].as_str().unwrap_or_else(|| panic!("18 aliases allowed: {v}"));
    assert!(message.contains("18 aliased fields") && message.contains("at most 16"), "{message}");

    let schema = cxlake::api::schema(analytics(lake));
    let memo = Arc::new(cxlake::api::memo::Memo::default());
    let query = "{ a: scores(groupBy: [AGENCY]) { n mean } b: scores(groupBy: [AGENCY]) { n mean } c: scores(groupBy: [CHANNEL]) { n } ...F } \
                 fragment F on QueryRoot { d: scores(groupBy: [AGENCY]) { n mean } e: scores(groupBy: [CHANNEL], weighted: true) { n } }";
    let resp = schema.execute(async_graphql::Request::new(query).data(memo.clone())).await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    let data = resp.data.into_json().unwrap();
    assert!(data["a"].as_array().is_some_and(|a| !a.is_empty()));
    assert_eq!(data["a"], data["b"]);
    assert_eq!(data["a"], data["d"]);
    assert_eq!(memo.computed(), 3, "AGENCY once, CHANNEL and weighted CHANNEL once each");
}

/// Issue 18: an aggregate grouped by everything by day returned 40 MB of JSON. The groups a
/// query may return are capped, with an error naming the cap.
#[tokio::test(flavor = "multi_thread")]
async fn aggregates_beyond_the_group_cap_are_refused_with_the_cap_named() {
    let lake = crate::common::shared_lake();
    let a = analytics(lake);
    let services = a.catalog().services.len();
    let schema = cxlake::api::schema(a.with_max_groups(services - 1));
    let resp = schema.execute("{ scores(groupBy: [SERVICE], period: FISCAL_YEAR) { n } }").await;
    let e = &resp.errors[0];
    assert!(e.message.contains(&format!("at most {} are returned", services - 1)), "{}", e.message);
    assert_eq!(e.extensions.as_ref().and_then(|x| x.get("code")).map(|c| c.to_string()), Some("\"TOO_MANY_GROUPS\"".into()));
    for query in
        ["{ tappedDriverImportance(groupBy: [SERVICE], period: FISCAL_YEAR) { n } }", "{ driverImportance(groupBy: [SERVICE], period: FISCAL_YEAR) { n } }"]
    {
        let analyst = cxlake::api::auth::Principal { role: Role::Analyst, key_id: None };
        let resp = schema.execute(async_graphql::Request::new(query).data(analyst)).await;
        assert!(resp.errors.first().is_some_and(|e| e.message.contains("groups; at most")), "{query}: {:?}", resp.errors);
    }
    let resp = schema.execute("{ scores(groupBy: [AGENCY]) { n } }").await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
}

/// Issue 18: past its running and queued slots a heavy query is refused at once with BUSY (and a
/// retry hint), while light queries keep their own slots.
#[tokio::test(flavor = "multi_thread")]
async fn a_heavy_query_past_its_slots_is_busy_and_light_ones_still_run() {
    use cxlake::analytics::{Admission, Slots};
    let lake = crate::common::shared_lake();
    let one = Slots { running: 1, queued: 0 };
    let schema = cxlake::api::schema(analytics(lake).with_admission(Admission::new(one, one)));
    let analyst = || cxlake::api::auth::Principal { role: Role::Analyst, key_id: None };
    let heavy = "{ driverImportance(groupBy: [AGENCY], bootstrap: 50) { n } }";
    let (first, second) = tokio::join!(
        schema.execute(async_graphql::Request::new(heavy).data(analyst())),
        schema.execute(async_graphql::Request::new(heavy.replace("50", "60")).data(analyst()))
    );
    // Whichever reaches admission first runs; the other is refused at once.
    let (ran, refused) = if first.errors.is_empty() { (first, second) } else { (second, first) };
    assert!(ran.errors.is_empty(), "{:?}", ran.errors);
    let e = refused.errors.first().expect("one heavy query is refused");
    let ext = e.extensions.as_ref().unwrap();
    assert_eq!(ext.get("code").map(|c| c.to_string()), Some("\"BUSY\"".into()), "{e:?}");
    assert_eq!(ext.get("retryAfterSeconds").map(|c| c.to_string()), Some("1".into()));
    assert!(e.message.contains("1 heavy queries are running and 0 waiting"), "{}", e.message);
    let (light, again) = tokio::join!(
        schema.execute(async_graphql::Request::new("{ scores(groupBy: [AGENCY]) { n } }").data(analyst())),
        schema.execute(async_graphql::Request::new(heavy).data(analyst()))
    );
    assert!(light.errors.is_empty() && again.errors.is_empty(), "{:?} {:?}", light.errors, again.errors);
}
