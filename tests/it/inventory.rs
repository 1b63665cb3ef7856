//! The service inventory (A-11 280.5): edits through GraphQL (roles, all or nothing, every
//! problem named), through `cxlake ingest --table services` (line and field), the join of
//! services to their scores, and responses of a new service accepted once it is listed.

use crate::common::{analytics, fresh_lake};
use cxlake::api::auth::{Principal, Role};
use serde_json::{json, Value};
use std::path::Path;

/// Runs a query on a server that writes (a submitter on the lake), as `role`.
async fn run(lake: &Path, role: Role, query: &str) -> Value {
    let a = analytics(lake);
    let wal = tempfile::tempdir().unwrap();
    let submitter = cxlake::ingest::submit::Submitter::start(&a.lake, wal.path(), a.catalog().inventory(), std::time::Duration::from_millis(50)).unwrap();
    let schema = cxlake::api::schema_with_submit(a, submitter);
    let req = async_graphql::Request::new(query).data(Principal { role, key_id: None });
    serde_json::to_value(schema.execute(req).await).unwrap()
}

fn service_input(id: &str, agency: &str, channels: &str, extra: &str) -> String {
    format!(
        r#"{{id: "{id}", name: "Passport renewal", description: "Renew a passport", agency: "{agency}", agencyName: "Department of State",
            bureau: "{agency}-CA", bureauName: "Bureau of Consular Affairs", orgUnit: "Passport Services", serviceType: ADMINISTRATIVE,
            channels: [{channels}], designated: true {extra}}}"#
    )
}

fn stored(lake: &Path) -> Vec<cxlake::domain::inventory::ServiceRecord> {
    cxlake::store::services::read(&cxlake::store::Lake::open(lake).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn graphql_edits_are_checked_all_or_nothing_and_seen_at_once() {
    let lake = fresh_lake(3_000, 41, 1);
    let before = stored(&lake);
    let agency = before[0].agency.clone();

    // One valid and one invalid service: nothing changes, every problem is named.
    let bad = format!(
        "mutation {{ upsertServices(services: [{}, {}]) {{ added }} }}",
        service_input("NEW-1", &agency, "DIGITAL", ""),
        service_input("NEW-2", &agency, "IN_PERSON, MAIL", r#", description: """#)
    );
    let out = run(&lake, Role::Admin, &bad).await;
    let err = &out["errors"][0];
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{out}");
    let problems: Vec<(String, String)> = err["extensions"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["at"].as_str().unwrap().to_string(), p["field"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        problems,
        [("services[1]", "description"), ("services[1]", "non_digital_reason"), ("services[1]", "digitization_options")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(stored(&lake), before, "a refused change stores nothing");

    // A read-only server refuses edits.
    let ro = cxlake::api::schema(analytics(&lake));
    let req = async_graphql::Request::new(bad.clone()).data(Principal { role: Role::Admin, key_id: None });
    let out = serde_json::to_value(ro.execute(req).await).unwrap();
    assert_eq!(out["errors"][0]["extensions"]["code"], "READ_ONLY", "{out}");

    // Roles: analysts, agency readers and the public may not edit; a collector only its own agency.
    for role in [Role::Public, Role::Analyst, Role::Agency(agency.clone())] {
        let m = format!("mutation {{ upsertServices(services: [{}]) {{ added }} }}", service_input("NEW-1", &agency, "DIGITAL", ""));
        let out = run(&lake, role.clone(), &m).await;
        assert!(out["errors"][0]["message"].as_str().unwrap_or("").contains("may not change the service inventory"), "{role:?}: {out}");
    }
    let m = format!("mutation {{ upsertServices(services: [{}]) {{ added }} }}", service_input("NEW-1", "ZZ", "DIGITAL", ""));
    let out = run(&lake, Role::Collector(agency.clone()), &m).await;
    assert!(out["errors"][0]["message"].as_str().unwrap().contains(&format!("only change services of agency {agency}")), "{out}");
    assert_eq!(stored(&lake), before);

    // A valid change by the agency's collector: added, listed, filterable, versioned.
    let good = format!(
        "mutation {{ upsertServices(services: [{}, {}]) {{ added updated unchanged services lakeVersion }} }}",
        service_input("NEW-1", &agency, "DIGITAL", ""),
        service_input("NEW-2", &agency, "IN_PERSON, MAIL", r#", nonDigitalReason: "wet signatures", digitizationOptions: ["e-signature"]"#)
    );
    let out = run(&lake, Role::Collector(agency.clone()), &good).await;
    let change = &out["data"]["upsertServices"];
    assert_eq!(change["added"], json!(["NEW-1", "NEW-2"]), "{out}");
    assert_eq!(change["services"].as_u64().unwrap() as usize, before.len() + 2);
    assert!(change["lakeVersion"].as_u64().unwrap() >= 1);
    let listed = run(
        &lake,
        Role::Public,
        r#"{ services(hasDigitalChannel: false, search: "passport") { id nonDigitalReason digitizationOptions hasDigitalChannel designated } }"#,
    )
    .await;
    assert_eq!(
        listed["data"]["services"],
        json!([{"id": "NEW-2", "nonDigitalReason": "wet signatures", "digitizationOptions": ["e-signature"], "hasDigitalChannel": false, "designated": true}])
    );

    // The same change again is unchanged; moving a service to another agency is refused.
    let out = run(&lake, Role::Admin, &good.replace("added updated unchanged services lakeVersion", "unchanged")).await;
    assert_eq!(out["data"]["upsertServices"]["unchanged"], json!(["NEW-1", "NEW-2"]));
    let moved = format!("mutation {{ upsertServices(services: [{}]) {{ added }} }}", service_input("NEW-1", "ZZ", "DIGITAL", ""));
    let out = run(&lake, Role::Admin, &moved).await;
    assert!(out["errors"][0]["message"].as_str().unwrap().contains("cannot move to another agency"), "{out}");

    // Responses of the new service are accepted by ingestion now (the inventory is checked).
    let csv = lake.parent().unwrap().join("new.csv");
    std::fs::write(
        &csv,
        format!("agency,response_id,submitted_at,collection_id,bureau,service_id,service_type,channel,scale,trust,satisfaction\n{agency},n1,2022-03-01T00:00:00Z,c,{agency}-CA,NEW-1,administrative,digital,likert5,4,5\n{agency},n2,2022-03-01T00:00:00Z,c,{agency}-CA,GONE-1,administrative,digital,likert5,4,5\n"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cxlake")).args(["ingest", "--json", "--lake"]).arg(&lake).arg(&csv).output().unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((summary["rows_stored"].as_u64(), summary["rows_quarantined"].as_u64()), (Some(1), Some(1)), "{summary}");
    assert!(summary["quarantined_by_column"]["service_id"]["example"].as_str().unwrap().contains("GONE-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn services_join_their_scores() {
    let lake = fresh_lake(4_000, 43, 1);
    let a = analytics(&lake);
    // The busiest service, scored directly.
    let by_service = cxlake::analytics::ScoresQuery {
        group_by: vec![cxlake::domain::Dimension::Service],
        measures: vec![cxlake::domain::Measure::Trust],
        ..Default::default()
    };
    let exact = a.scores(&by_service).await.unwrap().rows;
    // The public role's view perturbs the counts (cell-key method); an analyst's is exact.
    let perturbed = a.perturbed().await.unwrap().scores(&by_service).await.unwrap().rows;
    for (role, all) in [(Role::Public, &perturbed), (Role::Analyst, &exact)] {
        let direct = all.iter().max_by_key(|r| r.true_n()).unwrap().clone();
        let id = direct.key.get(cxlake::domain::Dimension::Service).unwrap().to_string();
        let first = a.catalog().services.iter().find(|s| s.id == id).unwrap().clone();
        let out = run(
            &lake,
            role.clone(),
            &format!(r#"{{ services(agency: ["{}"]) {{ id scores(measures: [TRUST]) {{ n agreeShare suppressed perturbed }} }} }}"#, first.agency),
        )
        .await;
        let joined = out["data"]["services"].as_array().unwrap().iter().find(|s| s["id"] == json!(first.id)).unwrap();
        let score = &joined["scores"][0];
        assert!(direct.n >= 10);
        assert_eq!(score["perturbed"].as_bool(), Some(role == Role::Public));
        // Every listed service's scores (fetched in one batch) are its row of the grouped query.
        for listed in out["data"]["services"].as_array().unwrap() {
            let row = all.iter().find(|r| r.key.get(cxlake::domain::Dimension::Service) == listed["id"].as_str());
            let got = &listed["scores"];
            match row {
                Some(r) => assert_eq!((got[0]["n"].as_u64(), got[0]["agreeShare"].as_f64()), (Some(r.n), r.agree_share), "{listed}"),
                None => assert_eq!(got, &json!([]), "{listed}"),
            }
        }
        assert_eq!(score["n"].as_u64(), Some(direct.n));
        assert_eq!(score["agreeShare"].as_f64(), direct.agree_share);
    }
    // The public numbers differ from the exact ones somewhere (they are perturbed), and the
    // same records always give the same numbers.
    assert!(perturbed.iter().zip(&exact).any(|(p, e)| p.n != e.n || p.agree_share != e.agree_share));
    assert_eq!(perturbed, a.perturbed().await.unwrap().scores(&by_service).await.unwrap().rows);
}

#[test]
fn cli_import_names_line_and_field_and_changes_nothing_on_error() {
    let lake = fresh_lake(2_000, 47, 1);
    let before = stored(&lake);
    let dir = lake.parent().unwrap();
    let header =
        "service_id,name,description,agency,agency_name,bureau,bureau_name,org_unit,service_type,channels,designated,non_digital_reason,digitization_options\n";
    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        format!("{header}X-1,Permits,Apply for a permit,DOI,Interior,DOI-NPS,Park Service,Permits office,regulatory,digital;phone,yes,,\nX-2,Visits,Visit a park,DOI,Interior,DOI-NPS,Park Service,Visitor office,recreation,in_person;fax,no,,\n"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cxlake")).args(["ingest", "--table", "services", "--lake"]).arg(&lake).arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("line 3 (service 'X-2'), channels:") && stderr.contains("'fax'"), "{stderr}");
    assert_eq!(stored(&lake), before);

    let good = dir.join("good.csv");
    std::fs::write(
        &good,
        format!("{header}X-1,Permits,Apply for a permit,DOI,Interior,DOI-NPS,Park Service,Permits office,regulatory,digital;phone,yes,,\nX-2,Visits,Visit a park,DOI,Interior,DOI-NPS,Park Service,Visitor office,recreation,in_person,no,The visit is the service,online booking|virtual tours\n"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cxlake"))
        .args(["ingest", "--json", "--table", "services", "--lake"])
        .arg(&lake)
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["added"], json!(["X-1", "X-2"]));
    let after = stored(&lake);
    let x2 = after.iter().find(|s| s.id == "X-2").unwrap();
    assert_eq!(x2.digitization_options, ["online booking", "virtual tours"]);
    assert!(!x2.designated && after.iter().find(|s| s.id == "X-1").unwrap().designated);
}

/// A service added by another process (`cxlake ingest --table services`) is accepted by a
/// running server's real-time submit path: the refused batch is checked again against the
/// inventory the lake holds now.
#[tokio::test(flavor = "multi_thread")]
async fn a_running_server_accepts_submissions_for_a_service_added_elsewhere() {
    let lake = fresh_lake(2_000, 49, 1);
    let a = analytics(&lake);
    let wal = tempfile::tempdir().unwrap();
    let submitter = cxlake::ingest::submit::Submitter::start(&a.lake, wal.path(), a.catalog().inventory(), std::time::Duration::from_millis(50)).unwrap();
    let cli = poem::test::TestClient::new(cxlake::api::server::routes(cxlake::api::schema_with_submit(a.clone(), submitter.clone()), a, Some(submitter)));
    let response = json!({"agency": "DOI", "response_id": "late-1", "submitted_at": "2022-03-01T00:00:00Z", "collection_id": "c",
        "bureau": "DOI-NPS", "service_id": "LATE-1", "service_type": "regulatory", "channel": "digital", "scale": "likert5", "trust": 4});
    let before = cli.post("/v1/responses").body_json(&response).send().await;
    before.assert_status(poem::http::StatusCode::UNPROCESSABLE_ENTITY);
    let services = lake.parent().unwrap().join("late.csv");
    std::fs::write(
        &services,
        "service_id,name,description,agency,agency_name,bureau,bureau_name,org_unit,service_type,channels\nLATE-1,Permits,Apply for a permit,DOI,Interior,DOI-NPS,Park Service,Permits office,regulatory,digital\n",
    )
    .unwrap();
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_cxlake")).args(["ingest", "--table", "services", "--lake"]).arg(&lake).arg(&services).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = cli.post("/v1/responses").body_json(&response).send().await;
    after.assert_status_is_ok();
    after.assert_json(json!({"accepted": 1, "response_ids": ["late-1"]})).await;
}
