//! Access control, attacked: for each role without the right, a scripted list of distinct ways
//! to read another agency's raw rows or free text, to write for another agency, or to see a
//! small cell unsuppressed. Canary rows (marked free text, known ids, a 3-row cell) are
//! ingested for two agencies; an attempt succeeds if any canary it may not see comes back, in
//! any format, or a small cell shows a statistic. Zero may succeed.

use crate::common::{analytics, fresh_lake};
use cxlake::api::auth::Role;
use cxlake::api::keys::{KeyFile, KeyStore};
use cxlake::api::server::{routes_with, Limits};
use poem::test::TestClient;
use poem::IntoEndpoint;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

struct Setup {
    /// The agency whose rows the attackers want, and one of its services and offices.
    victim: String,
    victim_service: String,
    /// A CSV of one row of the attacker's own agency.
    own_csv: String,
    /// The attacking agency (for agency and collector keys).
    own: String,
    keys: Vec<(&'static str, Option<String>)>,
    revoked: String,
    admin: String,
    /// A CSV of rows for the victim, dated June 2025 (no other rows are).
    evil_csv: String,
}

fn canary_csv(dir: &Path, rows: &[(String, String, String, String, String, String)]) -> std::path::PathBuf {
    let mut csv =
        "agency,response_id,submitted_at,collection_id,bureau,service_id,service_type,channel,scale,trust,satisfaction,free_text_1,free_text_2\n".to_string();
    for (agency, bureau, service, stype, channel, _) in rows {
        for i in 0..3 {
            csv += &format!("{agency},canary-{agency}-{i},2025-01-0{}T12:00:00Z,canary,{bureau},{service},{stype},{channel},likert5,{},2,CANARY-{agency}-secret,CANARY-{agency}-more\n", i + 1, 5 - i);
        }
    }
    let path = dir.join("canary.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

fn setup(lake: &Path) -> Setup {
    let a = analytics(lake);
    let catalog = a.catalog();
    let mut agencies: Vec<&cxlake::analytics::catalog::ServiceInfo> = Vec::new();
    for s in &catalog.services {
        if !agencies.iter().any(|x| x.agency == s.agency) {
            agencies.push(s);
        }
    }
    let (victim, own) = (agencies[0], agencies[1]);
    let rows: Vec<_> = [victim, own]
        .iter()
        .map(|s| (s.agency.clone(), s.bureau.clone(), s.id.clone(), s.service_type.to_string(), s.channels[0].to_string(), String::new()))
        .collect();
    let csv = canary_csv(lake.parent().unwrap(), &rows);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cxlake")).args(["ingest", "--lake"]).arg(lake).arg(&csv).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let path = lake.parent().unwrap().join("keys.json");
    let mut file = KeyFile::default();
    let mut keys = vec![("public", None)];
    for (label, role) in [("analyst", Role::Analyst), ("agency", Role::Agency(own.agency.clone())), ("collector", Role::Collector(own.agency.clone()))] {
        keys.push((label, Some(file.add(label, role).1)));
    }
    let (revoked_entry, revoked) = file.add("revoked", Role::Agency(victim.agency.clone()));
    file.revoke(&revoked_entry.id).unwrap();
    let admin = file.add("admin", Role::Admin).1;
    file.save(&path).unwrap();
    let one_row = |s: &cxlake::analytics::catalog::ServiceInfo, id: &str| {
        format!(
            "agency,response_id,submitted_at,collection_id,bureau,service_id,service_type,channel,scale,trust\n{},{id},2025-06-15T00:00:00Z,x,{},{},{},{},likert5,1\n",
            s.agency, s.bureau, s.id, s.service_type, s.channels[0]
        )
    };
    let (evil_csv, own_csv) = (one_row(victim, "evil-csv-1"), one_row(own, "own-csv-1"));
    Setup { victim: victim.agency.clone(), victim_service: victim.id.clone(), own_csv, own: own.agency.clone(), keys, revoked, admin, evil_csv }
}

/// One attempt: a request, and what it returned.
struct Outcome {
    status: u16,
    content_type: String,
    body: String,
}

/// Table bodies as text (Parquet decoded), so a canary cannot hide in compression.
fn readable(content_type: &str, bytes: Vec<u8>) -> String {
    if content_type.contains("parquet") && !bytes.is_empty() {
        let Ok(reader) = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).and_then(|b| b.build()) else {
            return String::new();
        };
        let mut out = String::new();
        for batch in reader.flatten() {
            for c in batch.columns() {
                let f = arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default()).unwrap();
                for i in 0..c.len() {
                    out += &format!("{} ", f.value(i));
                }
            }
        }
        return out;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

enum Req {
    Gql(Value),
    GqlAccept(Value, &'static str),
    Get(String),
    Raw(&'static str, String, &'static str, String),
}

fn auth<'a, E: poem::Endpoint>(r: poem::test::TestRequestBuilder<'a, E>, key: Option<&str>) -> poem::test::TestRequestBuilder<'a, E> {
    match key {
        Some(k) => r.header("authorization", format!("Bearer {k}")),
        None => r,
    }
}

async fn send<E: poem::Endpoint>(cli: &TestClient<E>, key: Option<&str>, req: &Req) -> Outcome {
    let auth = |r| auth(r, key);
    let resp = match req {
        Req::Gql(body) => auth(cli.post("/graphql")).body_json(body).send().await,
        Req::GqlAccept(body, accept) => auth(cli.post("/graphql")).header("accept", *accept).body_json(body).send().await,
        Req::Get(uri) => auth(cli.get(uri)).send().await,
        Req::Raw(method, uri, ctype, body) => {
            let r = match *method {
                "GET" => cli.get(uri),
                "DELETE" => cli.delete(uri),
                _ => cli.post(uri),
            };
            auth(r).header("content-type", *ctype).body(body.clone()).send().await
        }
    };
    let status = resp.0.status().as_u16();
    let content_type = resp.0.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let bytes = resp.0.into_body().into_vec().await.unwrap_or_default();
    Outcome { status, body: readable(&content_type, bytes), content_type }
}

fn q(query: &str) -> Value {
    json!({ "query": query })
}

fn enc(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// The attempts to read the victim's raw rows or free text (or, for agency keys, anyone's
/// but their own), or to write for the victim.
fn raw_attempts(s: &Setup) -> Vec<(&'static str, Req)> {
    let v = &s.victim;
    let raw = "{ responses { rows { responseId freeText1 freeText2 } } }".to_string();
    let victim_filter = format!(r#"{{ responses(filter: {{agency: ["{v}"]}}) {{ rows {{ responseId freeText1 }} }} }}"#);
    let submit_victim = json!({"agency": v, "response_id": "evil-1", "submitted_at": "2025-06-15T00:00:00Z", "collection_id": "x", "bureau": "x",
        "service_id": s.victim_service, "service_type": "benefits", "channel": "digital", "scale": "likert5", "trust": 1});
    let mutation = format!(
        r#"mutation {{ submitResponses(responses: [{{agency: "{v}", bureau: "x", serviceId: "{}", serviceType: BENEFITS, channel: DIGITAL, collectionId: "c", scale: LIKERT_5, trust: 1}}]) {{ accepted }} }}"#,
        s.victim_service
    );
    vec![
        ("plain raw query", Req::Gql(q(&raw))),
        ("filter naming the victim", Req::Gql(q(&victim_filter))),
        ("filter naming own and victim", Req::Gql(q(&format!(r#"{{ responses(filter: {{agency: ["{}", "{v}"]}}) {{ rows {{ freeText1 }} }} }}"#, s.own)))),
        (
            "filter by the victim's service only",
            Req::Gql(q(&format!(r#"{{ responses(filter: {{service: ["{}"]}}) {{ rows {{ freeText1 }} }} }}"#, s.victim_service))),
        ),
        ("alias", Req::Gql(q(&format!(r#"{{ x: responses(filter: {{agency: ["{v}"]}}) {{ rows {{ freeText1 }} }} }}"#)))),
        (
            "two aliases, own then victim",
            Req::Gql(q(&format!(r#"{{ a: responses {{ rows {{ responseId }} }} b: responses(filter: {{agency: ["{v}"]}}) {{ rows {{ freeText1 }} }} }}"#))),
        ),
        (
            "named fragment",
            Req::Gql(q(&format!(r#"query {{ ...F }} fragment F on QueryRoot {{ responses(filter: {{agency: ["{v}"]}}) {{ rows {{ freeText1 }} }} }}"#))),
        ),
        ("inline fragment", Req::Gql(q(&format!(r#"{{ ... on QueryRoot {{ responses(filter: {{agency: ["{v}"]}}) {{ rows {{ freeText2 }} }} }} }}"#)))),
        (
            "variables",
            Req::Gql(json!({"query": "query($f: ResponseFilter) { responses(filter: $f) { rows { freeText1 } } }", "variables": {"f": {"agency": [v]}}})),
        ),
        (
            "operationName picks the raw operation",
            Req::Gql(json!({"query": format!("query A {{ services {{ id }} }} query B {victim_filter}"), "operationName": "B"})),
        ),
        ("@include(if: true)", Req::Gql(q(&format!(r#"{{ responses(filter: {{agency: ["{v}"]}}) @include(if: true) {{ rows {{ freeText1 }} }} }}"#)))),
        ("@skip(if: false)", Req::Gql(q(&format!(r#"{{ responses(filter: {{agency: ["{v}"]}}) @skip(if: false) {{ rows {{ freeText1 }} }} }}"#)))),
        ("lower-case agency code", Req::Gql(q(&format!(r#"{{ responses(filter: {{agency: ["{}"]}}) {{ rows {{ freeText1 }} }} }}"#, v.to_lowercase())))),
        ("page size beyond the limit", Req::Gql(q(&format!(r#"{{ responses(filter: {{agency: ["{v}"]}}, first: 100000) {{ rows {{ freeText1 }} }} }}"#)))),
        (
            "forged cursor",
            Req::Gql(q(&format!(
                r#"{{ responses(after: "{}") {{ rows {{ freeText1 }} }} }}"#,
                cxlake::analytics::responses::Cursor { submitted_at_us: 0, response_id: format!("canary-{v}-0") }.encode()
            ))),
        ),
        ("batched request", Req::Raw("POST", "/graphql".into(), "application/json", json!([q("{ services { id } }"), q(&victim_filter)]).to_string())),
        ("application/graphql body", Req::Raw("POST", "/graphql".into(), "application/graphql", victim_filter.clone())),
        ("GET query", Req::Get(format!("/graphql?query={}", enc(&victim_filter)))),
        ("GET as CSV", Req::Get(format!("/graphql?format=csv&query={}", enc(&victim_filter)))),
        ("POST as Arrow", Req::GqlAccept(q(&victim_filter), "application/vnd.apache.arrow.stream")),
        ("POST as CSV", Req::GqlAccept(q(&victim_filter), "text/csv")),
        ("POST as Parquet", Req::GqlAccept(q(&victim_filter), "application/vnd.apache.parquet")),
        ("export, no agency", Req::Get("/v1/export?format=csv".into())),
        ("export of the victim", Req::Get(format!("/v1/export?agency={v}&format=csv"))),
        ("export of own and victim", Req::Get(format!("/v1/export?agency={},{v}&format=arrow", s.own))),
        ("export as Parquet", Req::Get(format!("/v1/export?agency={v}"))),
        ("export with a date range", Req::Get(format!("/v1/export?agency={v}&from=FY2020Q1&to=FY2030Q4&format=csv"))),
        ("introspect the raw type", Req::Gql(q(r#"{ __type(name: "RawResponseOut") { fields { name } } }"#))),
        ("introspect the query fields", Req::Gql(q("{ __schema { queryType { fields { name args { name } } } } }"))),
        ("introspect every type", Req::Gql(q("{ __schema { types { name fields { name } } } }"))),
        ("the whole schema file", Req::Get("/schema.graphql".into())),
        ("submit for the victim (REST)", Req::Raw("POST", "/v1/responses".into(), "application/json", submit_victim.to_string())),
        (
            "submit own and victim (REST)",
            Req::Raw("POST", "/v1/responses".into(), "application/json", json!([dict_own(&submit_victim, &s.own), submit_victim]).to_string()),
        ),
        ("submit for the victim (mutation)", Req::Gql(q(&mutation))),
        ("upload a file of the victim's rows", Req::Raw("POST", "/v1/ingest?format=csv&name=evil.csv".into(), "text/csv", s.evil_csv.clone())),
        ("keys: create an admin key", Req::Raw("POST", "/v1/keys".into(), "application/json", json!({"name": "mine", "role": "admin"}).to_string())),
        ("keys: list the keys", Req::Get("/v1/keys".into())),
        ("keys: revoke the admin's key", Req::Raw("DELETE", format!("/v1/keys/{}", &s.admin[4..12]), "application/json", String::new())),
        ("upload as JSON lines", Req::Raw("POST", "/v1/ingest?format=jsonl".into(), "application/x-ndjson", format!("{submit_victim}\n"))),
        (
            "upload telemetry of the victim",
            Req::Raw(
                "POST",
                "/v1/ingest?format=csv&table=telemetry".into(),
                "text/csv",
                format!("service_id,observed_at,metric,value\n{},2025-06-15,page_views,7\n", s.victim_service),
            ),
        ),
        (
            "upload indicators of the victim",
            Req::Raw(
                "POST",
                "/v1/ingest?format=jsonl&table=indicators".into(),
                "application/x-ndjson",
                format!("{{\"agency\":\"{v}\",\"service_id\":\"{}\",\"observed_at\":\"2025-06-01\",\"metric\":\"backlog\",\"value\":7}}\n", s.victim_service),
            ),
        ),
        ("inventory: change the victim's service", Req::Gql(q(&inventory_change(v, &s.victim_service)))),
        ("inventory: add a service to the victim", Req::Gql(q(&inventory_change(v, "EVIL-1")))),
    ]
}

fn inventory_change(agency: &str, id: &str) -> String {
    format!(
        r#"mutation {{ upsertServices(services: [{{id: "{id}", name: "hijacked", description: "x", agency: "{agency}", agencyName: "x", bureau: "x", bureauName: "x", orgUnit: "x", serviceType: BENEFITS, channels: [DIGITAL]}}]) {{ added updated }} }}"#
    )
}

fn dict_own(v: &Value, own: &str) -> Value {
    let mut v = v.clone();
    v["agency"] = json!(own);
    v["response_id"] = json!("evil-own");
    v
}

/// Attempts at small cells (the canary collection has 3 rows per agency).
fn cell_attempts() -> Vec<(&'static str, Req)> {
    vec![
        (
            "scores by service, office and week",
            Req::Gql(q("{ scores(groupBy: [SERVICE, OFFICE], period: WEEK) { n mean sd agreeShare agreeLow agreeHigh suppressed } }")),
        ),
        (
            "scores distribution",
            Req::Gql(q("{ scores(groupBy: [SERVICE, CHANNEL], period: WEEK, measures: [TRUST]) { n mean distribution { value count } suppressed } }")),
        ),
        ("benchmark by office", Req::Gql(q("{ benchmark(level: OFFICE, measure: TRUST) { entity n mean agreeShare suppressed } }"))),
        ("trends by service", Req::Gql(q("{ trends(groupBy: [SERVICE], period: WEEK) { n mean agreeShare suppressed } }"))),
        ("drivers by service", Req::Gql(q("{ driverImportance(groupBy: [SERVICE]) { n r2 suppressed drivers { shapley beta } } }"))),
    ]
}

/// Whether a JSON value shows a statistic of a cell below the minimum size.
fn small_cell_shown(v: &Value, min: u64) -> Option<String> {
    match v {
        Value::Object(o) => {
            if let Some(n) = o.get("n").and_then(Value::as_u64) {
                let limit = if o.contains_key("r2") { 30 } else { min };
                if n < limit {
                    for k in ["mean", "sd", "agreeShare", "agreeLow", "agreeHigh", "r2", "distribution", "drivers"] {
                        let shown = match o.get(k) {
                            Some(Value::Array(items)) => items.iter().any(|d| d.get("count").is_some() || d.get("shapley").is_some_and(|x| !x.is_null())),
                            Some(x) => !x.is_null(),
                            None => false,
                        };
                        if shown {
                            return Some(format!("{k} of a cell of {n}: {v}"));
                        }
                    }
                }
            }
            o.values().find_map(|x| small_cell_shown(x, min))
        }
        Value::Array(a) => a.iter().find_map(|x| small_cell_shown(x, min)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_role_reads_what_it_may_not() {
    let lake = fresh_lake(3_000, 71, 1);
    let s = setup(&lake);
    let limits = Limits { keys: Some(Arc::new(KeyStore::open(&lake.parent().unwrap().join("keys.json")).unwrap())), ..Limits::default() };
    let a = analytics(&lake);
    let submitter =
        cxlake::ingest::submit::Submitter::start(&a.lake, &lake.join("_wal"), a.catalog().inventory(), std::time::Duration::from_millis(50)).unwrap();
    let schema = cxlake::api::schema_with_submit(a, submitter.clone());
    let cli = TestClient::new(
        routes_with(schema, cxlake::analytics::Analytics::open(cxlake::store::Lake::open(&lake).unwrap()).unwrap(), Some(submitter), limits).into_endpoint(),
    );

    // The admin reads everything, and so fills the result cache for the others to try.
    let everything = q(r#"{ responses(filter: {from: "2025-01-01", to: "2025-01-31"}, first: 1000) { totalCount rows { responseId freeText1 } } }"#);
    let admin = send(&cli, Some(&s.admin), &Req::Gql(everything.clone())).await;
    let short = |b: &str| b.chars().take(400).collect::<String>();
    assert!(admin.body.contains(&format!("CANARY-{}", s.victim)), "{}", short(&admin.body));
    let own_raw = send(&cli, s.keys[2].1.as_deref(), &Req::Gql(q(r#"{ responses(filter: {from: "2025-01-01"}) { rows { freeText1 } } }"#))).await;
    assert!(own_raw.body.contains(&format!("CANARY-{}", s.own)) && !own_raw.body.contains(&format!("CANARY-{}", s.victim)), "{}", short(&own_raw.body));

    // The small-cell attempts are valid queries (the admin gets answers, suppressed).
    for (what, req) in cell_attempts() {
        let out = send(&cli, Some(&s.admin), &req).await;
        assert!(out.status == 200 && !out.body.contains("\"errors\""), "{what}: {}", short(&out.body));
        assert!(out.body.contains("\"suppressed\":true"), "{what} shows no suppressed cell: the attempt tests nothing");
    }
    let mut tried = 0;
    let mut failures = Vec::new();
    for (role, key) in &s.keys {
        let mut attempts = raw_attempts(&s);
        attempts.push(("the admin's cached query", Req::Gql(everything.clone())));
        attempts.push(("a revoked key of the victim", Req::Gql(q("{ responses { rows { freeText1 } } }"))));
        attempts.push(("a forged key", Req::Gql(q("{ responses { rows { freeText1 } } }"))));
        attempts.extend(cell_attempts());
        assert!(attempts.len() >= 30, "{role}: {} attempts", attempts.len());
        for (what, req) in &attempts {
            let key = match *what {
                "a revoked key of the victim" => Some(s.revoked.clone()),
                "a forged key" => Some(format!("cxk_{}_{}", &s.admin[4..12], "0".repeat(64))),
                _ => key.clone(),
            };
            let out = send(&cli, key.as_deref(), req).await;
            tried += 1;
            assert!(out.status < 500, "{role}, {what}: status {}: {}", out.status, short(&out.body));
            let may_read_own = *role == "agency";
            let leaked = out.body.contains(&format!("CANARY-{}", s.victim))
                || out.body.contains(&format!("canary-{}-", s.victim))
                || (!may_read_own && (out.body.contains("CANARY-") || out.body.contains("canary-")))
                || (out.status < 300 && out.body.contains("RawResponseOut") && *role != "agency")
                || (out.status < 300 && (out.body.contains("\"name\":\"submitResponses\"") || out.body.contains("submitResponses(")) && *role != "collector")
                || (out.body.contains("\"responses\"") && what.starts_with("introspect") && *role != "agency")
                || (out.status < 300 && what.starts_with("submit") && !out.body.contains("errors"))
                || (out.status < 300 && what.starts_with("keys:"))
                || (out.status < 300 && what.starts_with("inventory:") && !out.body.contains("errors"))
                || (out.status < 300
                    && what.starts_with("upload")
                    && serde_json::from_str::<Value>(&out.body).ok().and_then(|v| v["rows_stored"].as_u64()) != Some(0))
                || small_cell_shown(&serde_json::from_str(&out.body).unwrap_or(Value::Null), 10).is_some();
            if leaked {
                failures.push(format!("{role}: {what}: {} {}: {}", out.status, out.content_type, &out.body[..out.body.len().min(300)]));
            }
        }
    }
    // The victim's inventory is as it was.
    let services = cxlake::store::services::read(&cxlake::store::Lake::open(&lake).unwrap()).unwrap();
    assert!(services.iter().all(|x| x.name != "hijacked" && x.id != "EVIL-1"));
    // No telemetry or indicators were stored for the victim.
    for table in ["telemetry", "indicators"] {
        let query = format!(
            r#"{{ {table}(filter: {{agency: ["{}"], from: "2025-06-01", to: "2025-06-30", metric: ["page_views", "backlog"]}}) {{ count }} }}"#,
            s.victim
        );
        let out = send(&cli, Some(&s.admin), &Req::Gql(q(&query))).await;
        assert!(out.body.contains(&format!("\"{table}\":[]")), "{table}: {}", short(&out.body));
    }
    // Nothing was written for the victim by anyone (every attempt dated its rows June 2025).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let written = send(
        &cli,
        Some(&s.admin),
        &Req::Gql(q(&format!(r#"{{ responses(filter: {{agency: ["{}"], from: "2025-06-01", to: "2025-06-30"}}) {{ totalCount }} }}"#, s.victim))),
    )
    .await;
    assert!(written.body.contains("\"totalCount\":0"), "{}", short(&written.body));
    // The admin's own upload of the same file is stored: the attempts failed for the role, not the file.
    let admin_upload = send(&cli, Some(&s.admin), &Req::Raw("POST", "/v1/ingest?format=csv&name=ok.csv".into(), "text/csv", s.evil_csv.clone())).await;
    assert!(admin_upload.body.contains("\"rows_stored\":1"), "{}", short(&admin_upload.body));
    // A collector's upload of its own agency's rows is stored; the same rows named for the
    // victim were quarantined above with the reason.
    let collector = send(&cli, s.keys[3].1.as_deref(), &Req::Raw("POST", "/v1/ingest?format=csv&name=own.csv".into(), "text/csv", s.own_csv.clone())).await;
    assert!(collector.body.contains("\"rows_stored\":1"), "{}", short(&collector.body));
    let refused = send(
        &cli,
        s.keys[3].1.as_deref(),
        &Req::Raw("POST", "/v1/ingest?format=csv&name=evil2.csv".into(), "text/csv", s.evil_csv.replace("evil-csv-1", "evil-csv-2")),
    )
    .await;
    assert!(refused.body.contains("may only hold rows of agency"), "{}", short(&refused.body));
    // Uploads are counted in /metrics: the admin's and the collector's rows stored, at least
    // the collectors' refused rows quarantined.
    let metrics = send(&cli, None, &Req::Get("/metrics".into())).await.body;
    let value = |name: &str| metrics.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<u64>().ok());
    assert_eq!(value("cxlake_ingested_rows_total "), Some(2), "{metrics}");
    assert!(value("cxlake_quarantined_rows_total ").unwrap_or(0) >= 2, "{metrics}");
    assert!(failures.is_empty(), "{} of {tried} attempts succeeded:\n{}", failures.len(), failures.join("\n"));
    assert!(tried >= 4 * 30);
}
