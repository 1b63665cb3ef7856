//! A-11 checks end to end: the survey design check of 280.10 (`cxlake survey check` on the
//! example in `data/surveys/`, with no findings, and on a broken one, each violation named
//! with its rule, exit 1; the same through GraphQL), and the HISP due dates of 280.16.

use std::process::Command;

const BROKEN: &str = "name: broken\nquestions:\n  - id: q1\n    text: Rate us\n    type: stars5\n    measure: satisfaction\n    required: true\n  - id: q2\n    text: Why?\n    type: free_text\n    required: true\n  - id: q3\n    text: Purpose of your visit\n    type: multiple_choice\n";

fn check(path: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cxlake")).args(["survey", "check"]).arg(path).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn the_cli_passes_the_example_and_names_each_broken_rule() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/surveys/a11_transactional.yaml");
    let (code, out) = check(&example);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("9 questions, 0 violations, 0 for review"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, BROKEN).unwrap();
    let (code, out) = check(&broken);
    assert_eq!(code, 1, "{out}");
    for expected in [
        "violation: no question measures trust (280.10 required trust question)",
        "review [q1]: the satisfaction question uses Stars5",
        "violation [q2]: the free-text question is required",
        "violation [q3]: the question names no measure",
    ] {
        assert!(out.contains(expected), "{expected} not in\n{out}");
    }
    std::fs::write(&broken, "name: x\nquestions: [{id: q1, type: slider}]\n").unwrap();
    let (code, out) = check(&broken);
    assert_ne!(code, 0);
    assert!(out.contains("broken.yaml") && out.contains("slider"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn graphql_checks_a_definition() {
    let schema = cxlake::api::schema(crate::common::analytics(crate::common::shared_lake()));
    let q = async_graphql::Request::new("query($d: String!) { surveyCheck(definition: $d) { severity rule question message } }")
        .variables(async_graphql::Variables::from_json(serde_json::json!({ "d": BROKEN })));
    let v = schema.execute(q).await.into_result().unwrap().data.into_json().unwrap();
    let findings = v["surveyCheck"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["severity"] == "REVIEW" && f["question"] == "q1"), "{v}");
    assert_eq!(findings.iter().filter(|f| f["severity"] == "VIOLATION").count(), 3, "{v}");
    let bad = async_graphql::Request::new(r#"{ surveyCheck(definition: "{ not json") { rule } }"#);
    let e = schema.execute(bad).await;
    assert_eq!(e.errors[0].extensions.as_ref().unwrap().get("code").unwrap().to_string(), "\"BAD_USER_INPUT\"");
}

#[tokio::test(flavor = "multi_thread")]
async fn graphql_gives_hisp_due_dates_and_says_where_they_come_from() {
    let schema = cxlake::api::schema(crate::common::analytics(crate::common::shared_lake()));
    let v = schema
        .execute("{ a: hispDueDates(fiscalYear: 2022) { fiscalQuarter dueDate source } b: hispDueDates(fiscalYear: 2023) { dueDate source } }")
        .await
        .into_result()
        .unwrap()
        .data
        .into_json()
        .unwrap();
    let dates = |k: &str| v[k].as_array().unwrap().iter().map(|d| (d["dueDate"].as_str().unwrap().to_string(), d["source"].as_str().unwrap().to_string())).collect::<Vec<_>>();
    let published = ["2022-01-28", "2022-04-29", "2022-07-29", "2022-10-28"];
    assert_eq!(dates("a"), published.iter().map(|d| (d.to_string(), "PUBLISHED".to_string())).collect::<Vec<_>>());
    let rule = ["2023-01-31", "2023-04-28", "2023-07-31", "2023-10-31"];
    assert_eq!(dates("b"), rule.iter().map(|d| (d.to_string(), "RULE".to_string())).collect::<Vec<_>>());
    assert_eq!(v["a"][0]["fiscalQuarter"], "FY2022Q1");
    let bad = schema.execute("{ hispDueDates(fiscalYear: 99999) { dueDate } }").await;
    assert!(bad.errors[0].message.contains("fiscalYear"), "{:?}", bad.errors);
}
