//! The survey design check end to end: `cxlake survey check` on the example definition in
//! `data/surveys/` (no findings) and on a broken one (each violation named with its rule,
//! exit 1), and the same check through GraphQL.

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
