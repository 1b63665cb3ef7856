//! A-11 checks end to end: the survey design check of 280.10 by edition (`cxlake survey check`
//! on the examples in `data/surveys/`, each with no findings under its own edition, and on a
//! broken one, each violation named with its rule, exit 1; the v2 form under the 2022 rules
//! missing its satisfaction item; an explicit edition overriding the definition's; the same
//! through GraphQL), and the HISP due dates of 280.16.

use std::process::Command;

const BROKEN: &str = "name: broken\nquestions:\n  - id: q1\n    text: Rate us\n    type: stars5\n    measure: satisfaction\n    required: true\n  - id: q2\n    text: Why?\n    type: free_text\n    required: true\n  - id: q3\n    text: Purpose of your visit\n    type: multiple_choice\n";

fn check(path: &std::path::Path) -> (i32, String) {
    check_with(path, &[])
}

fn check_with(path: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cxlake")).args(["survey", "check"]).arg(path).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn the_cli_passes_the_example_and_names_each_broken_rule() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/surveys/a11_transactional.yaml");
    let (code, out) = check(&example);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("9 questions, 0 violations, 0 for review (edition a11_2022)"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, BROKEN).unwrap();
    let (code, out) = check(&broken);
    assert_eq!(code, 1, "{out}");
    for expected in [
        "violation: no trust question: required by the 2022 text of 280.10 (280.10 required trust question)",
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

fn example(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/surveys").join(name)
}

#[test]
fn each_example_passes_its_own_edition() {
    for (file, questions, edition) in [("a11_transactional.yaml", 9, "a11_2022"), ("touchpoints_a11_v2.yaml", 4, "touchpoints_a11_v2")] {
        for args in [&[][..], &["--edition", edition][..]] {
            let (code, out) = check_with(&example(file), args);
            assert_eq!(code, 0, "{file} {args:?}: {out}");
            assert!(out.contains(&format!("{questions} questions, 0 violations, 0 for review (edition {edition})")), "{file} {args:?}: {out}");
        }
    }
}

#[test]
fn the_v2_form_under_the_2022_rules_lacks_its_satisfaction_item() {
    let (code, out) = check_with(&example("touchpoints_a11_v2.yaml"), &["--edition", "a11_2022"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("violation: no satisfaction question: required by the 2022 text of 280.10") && out.contains("(280.10 required satisfaction question)"),
        "{out}"
    );
    assert!(out.contains("review [answer_01]: the trust question uses Thumbs: discuss with OMB before use"), "{out}");
    assert!(out.contains("4 questions, 1 violations, 1 for review (edition a11_2022)"), "{out}");
}

#[test]
fn an_explicit_edition_overrides_the_definitions() {
    let (code, out) = check_with(&example("a11_transactional.yaml"), &["--edition", "touchpoints_a11_v2", "--json"]);
    assert_eq!(code, 1, "{out}");
    let findings: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let violations: Vec<&str> = findings.iter().filter(|f| f["severity"] == "violation").map(|f| f["rule"].as_str().unwrap()).collect();
    assert_eq!(violations, ["Touchpoints A-11 v2 'What went well?' list", "Touchpoints A-11 v2 'What didn't go so well?' list"], "{out}");
    assert!(findings.iter().any(|f| f["question"] == "q1" && f["message"] == "a satisfaction question: the v2 form asks none"), "{out}");
    let (code, out) = check_with(&example("a11_transactional.yaml"), &["--edition", "a11_2019"]);
    assert_ne!(code, 0);
    assert!(out.contains("a11_2022") && out.contains("touchpoints_a11_v2"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn graphql_checks_each_example_under_its_own_edition_or_the_one_asked() {
    let schema = cxlake::api::schema(crate::common::analytics(crate::common::shared_lake()));
    let ask = |file: &str, edition: Option<&str>| {
        let d = std::fs::read_to_string(example(file)).unwrap();
        async_graphql::Request::new("query($d: String!, $e: SurveyEdition) { surveyCheck(definition: $d, edition: $e) { severity rule question message } }")
            .variables(async_graphql::Variables::from_json(serde_json::json!({ "d": d, "e": edition })))
    };
    for file in ["a11_transactional.yaml", "touchpoints_a11_v2.yaml"] {
        let v = schema.execute(ask(file, None)).await.into_result().unwrap().data.into_json().unwrap();
        assert_eq!(v["surveyCheck"], serde_json::json!([]), "{file}");
    }
    let v = schema.execute(ask("touchpoints_a11_v2.yaml", Some("A11_2022"))).await.into_result().unwrap().data.into_json().unwrap();
    let violations: Vec<_> = v["surveyCheck"].as_array().unwrap().iter().filter(|f| f["severity"] == "VIOLATION").collect();
    assert_eq!(violations.len(), 1, "{v}");
    assert_eq!(violations[0]["rule"], "280.10 required satisfaction question");
    assert!(violations[0]["message"].as_str().unwrap().starts_with("no satisfaction question: required by the 2022 text of 280.10"), "{v}");
    let v = schema.execute(ask("a11_transactional.yaml", Some("TOUCHPOINTS_A11_V2"))).await.into_result().unwrap().data.into_json().unwrap();
    assert!(v["surveyCheck"].as_array().unwrap().iter().any(|f| f["rule"] == "Touchpoints A-11 v2 'What went well?' list"), "{v}");
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
    let dates = |k: &str| {
        v[k].as_array().unwrap().iter().map(|d| (d["dueDate"].as_str().unwrap().to_string(), d["source"].as_str().unwrap().to_string())).collect::<Vec<_>>()
    };
    let published = ["2022-01-28", "2022-04-29", "2022-07-29", "2022-10-28"];
    assert_eq!(dates("a"), published.iter().map(|d| (d.to_string(), "PUBLISHED".to_string())).collect::<Vec<_>>());
    let rule = ["2023-01-31", "2023-04-28", "2023-07-31", "2023-10-31"];
    assert_eq!(dates("b"), rule.iter().map(|d| (d.to_string(), "RULE".to_string())).collect::<Vec<_>>());
    assert_eq!(v["a"][0]["fiscalQuarter"], "FY2022Q1");
    let bad = schema.execute("{ hispDueDates(fiscalYear: 99999) { dueDate } }").await;
    assert!(bad.errors[0].message.contains("fiscalYear"), "{:?}", bad.errors);
}
