//! Hostile input, generated: 10,000 random and mutated GraphQL requests (valid documents with
//! bytes flipped, inserted and cut, enums and numbers swapped for nonsense, huge numbers, deep
//! nesting, long strings, invalid UTF-8, random variables, and every string argument and
//! cursor replaced by multibyte text, emoji, lone combining marks or very long strings)
//! against the server in-process. Every one must get an answer below 500, and the server must
//! not panic. Fixed seed.

use crate::common::fresh_lake;
use poem::test::TestClient;
use poem::IntoEndpoint;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

const CASES: u32 = 10_000;

/// Valid documents to start from: every top-level field, variables, fragments, introspection.
const SEEDS: &[&str] = &[
    "{ scores(groupBy: [AGENCY], measures: [TRUST]) { agency n mean agreeShare agreeLow agreeHigh suppressed } }",
    "{ scores(filter: {agency: [\"VA\"], from: \"2022-01-01\", to: \"2022-03-31\"}, period: MONTH, weighted: true) { period n mean distribution { value count } } }",
    "{ driverImportance(groupBy: [SERVICE_TYPE], outcome: SATISFACTION, bootstrap: 20, seed: 3) { serviceType n r2 drivers { driver shapley beta rank } } }",
    "{ benchmark(level: AGENCY, measure: TRUST, peers: ALL) { entity n mean peerMean rank } }",
    "{ trends(groupBy: [CHANNEL], period: FISCAL_QUARTER) { channel period n mean change { difference pValue } } }",
    "{ alerts(levels: [SERVICE], minN: 5, alpha: 0.2) { level entity measure q } }",
    "{ services(agency: [\"VA\"]) { id name serviceType channels } offices { id state } }",
    "{ responses(first: 5) { totalCount truncated pageInfo { hasNextPage endCursor } rows { responseId freeText1 trust tapsPositive } } }",
    "query Q($f: ResponseFilter, $n: Int) { responses(filter: $f, first: $n) { rows { responseId } } }",
    "query { ...F } fragment F on QueryRoot { scores { n } }",
    "{ __schema { types { name fields { name } } } }",
    "{ __type(name: \"ScoreRowOut\") { fields { name type { name } } } }",
    "mutation { submitResponses(responses: [{agency: \"VA\", bureau: \"x\", serviceId: \"s\", serviceType: BENEFITS, channel: DIGITAL, collectionId: \"c\", scale: LIKERT_5, trust: 4}]) { accepted } }",
    // String arguments and cursors (the `Strings` edit replaces them with hostile text).
    "{ responses(after: \"3137.6964\", first: 2) { totalCount pageInfo { endCursor } rows { responseId } } }",
    "{ services(search: \"U.S. Citizenship\", agency: [\"VA\"]) { id name } }",
    "{ scores(filter: {agency: [\"VA\"], service: [\"VA-S01\"], office: [\"o\"], region: [\"CA\"], from: \"2022-01-01\"}) { n } }",
    "{ telemetry(filter: {agency: [\"VA\"], metric: [\"page_views\"], page: [\"/apply\"]}) { count } }",
    "{ hispReport(fiscalYear: 2022, quarter: 1) { dueDate } }",
    "{ surveyCheck(definition: \"questions: []\") { findings { rule message } } }",
];

/// What the `Strings` edit puts inside every string literal: multibyte characters at odd
/// offsets (a byte slice would cut one), emoji and ZWJ sequences, lone combining marks, bidi
/// controls, hex-looking text that is not UTF-8, signs, and very long strings.
const HOSTILE: &[&str] = &[
    "aéb",
    "é",
    "éé",
    "€",
    "🦀",
    "🦀🦀🦀",
    "👩\u{200d}👩\u{200d}👧",
    "\u{301}",
    "e\u{301}\u{301}\u{301}",
    "\u{202e}VA",
    "日本語",
    "ff",
    "c3",
    "+1+1",
    "-0",
    "\u{feff}",
    "\u{10ffff}",
    "a\u{0}b",
];

/// Replacement tokens: nonsense enums, huge and negative numbers, odd strings.
const TOKENS: &[&str] = &[
    "NOT_AN_ENUM",
    "1e309",
    "-1",
    "99999999999999999999999",
    "0",
    "-2147483649",
    "null",
    "\"\\u0000\"",
    "\"\"",
    "true",
    "[]",
    "{}",
    "$undefined",
    "@skip(if: $x)",
    "...Missing",
    "\"FY9999Q9\"",
    "\"2022-02-30\"",
    "__typename",
    "\u{202e}",
    "🦀",
];

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Cut(usize, usize),
    Token(usize, usize),
    Nest(usize),
    Long(usize),
    /// Every string literal's content replaced by `HOSTILE[i]`, or by a long run of it.
    Strings(usize, usize),
}

#[derive(Debug, Clone)]
struct Case {
    seed: usize,
    edits: Vec<Edit>,
    variables: Option<String>,
    raw_body: bool,
    get: bool,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8)).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Edit::Cut(i, n)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(i, t)| Edit::Token(i, t)),
        (1usize..5000).prop_map(Edit::Nest),
        (1usize..200_000).prop_map(Edit::Long),
        (0..HOSTILE.len(), prop_oneof![Just(1usize), 2usize..64, 10_000usize..60_000]).prop_map(|(t, n)| Edit::Strings(t, n)),
    ]
}

fn variables() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(r#"{"f": {"agency": ["VA", 1e400]}, "n": 99999999999}"#.to_string())),
        Just(Some(r#"{"f": "not an object", "n": -5}"#.to_string())),
        Just(Some(r#"{"f": {"from": "yesterday"}, "n": 1.5}"#.to_string())),
        "[ -~]{0,60}".prop_map(Some),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (0..SEEDS.len(), proptest::collection::vec(edit(), 0..4), variables(), any::<bool>(), prop::bool::weighted(0.15))
        .prop_map(|(seed, edits, variables, raw_body, get)| Case { seed, edits, variables, raw_body, get })
}

/// The document bytes after the edits.
fn document(c: &Case) -> Vec<u8> {
    let mut doc = SEEDS[c.seed].as_bytes().to_vec();
    for e in &c.edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match e {
            Edit::Flip(i, b) if !doc.is_empty() => {
                let i = i % doc.len();
                doc[i] = *b;
            }
            Edit::Flip(..) => {}
            Edit::Insert(i, bytes) => {
                let i = at(*i, doc.len());
                doc.splice(i..i, bytes.iter().copied());
            }
            Edit::Cut(i, n) => {
                let i = at(*i, doc.len());
                let end = (i + n).min(doc.len());
                doc.drain(i..end);
            }
            Edit::Token(i, t) => {
                let i = at(*i, doc.len());
                doc.splice(i..i, TOKENS[*t].bytes());
            }
            Edit::Nest(depth) => {
                let mut nested = b"{ scores ".to_vec();
                nested.extend(std::iter::repeat_n(b'{', *depth));
                nested.extend(std::iter::repeat_n(b'}', *depth));
                nested.extend(b" }");
                doc = nested;
            }
            Edit::Long(n) => {
                let i = at(0, doc.len());
                doc.splice(i..i, format!("# {}\n", "x".repeat(*n)).into_bytes());
            }
            Edit::Strings(t, n) => doc = with_strings(&doc, &HOSTILE[*t].repeat(*n)),
        }
    }
    doc
}

/// `doc` with the content of every `"..."` literal replaced by `text` (JSON-escaped, which is
/// valid GraphQL string syntax).
fn with_strings(doc: &[u8], text: &str) -> Vec<u8> {
    let escaped = serde_json::to_string(text).expect("a string serializes");
    let inner = &escaped.as_bytes()[1..escaped.len() - 1];
    let mut out = Vec::with_capacity(doc.len());
    let mut inside = false;
    for &b in doc {
        match (b, inside) {
            (b'"', false) => {
                out.push(b'"');
                out.extend_from_slice(inner);
                inside = true;
            }
            (b'"', true) => {
                out.push(b'"');
                inside = false;
            }
            (_, true) => {}
            (b, false) => out.push(b),
        }
    }
    out
}

/// A caller's text in a cursor or string argument is an input error naming the argument,
/// never a panic (issue 18: `responses(after: "aéb")` was a 500 from slicing inside é).
#[tokio::test(flavor = "multi_thread")]
async fn multibyte_and_long_string_arguments_are_clear_errors() {
    let lake = crate::common::shared_lake();
    let a = crate::common::analytics(lake);
    let cli = TestClient::new(cxlake::api::server::routes(cxlake::api::schema(a.clone()), a, None).into_endpoint());
    let ask = |query: String| {
        let req = cli.post("/graphql").body_json(&serde_json::json!({ "query": query }));
        async move {
            let resp = req.send().await;
            let status = resp.0.status().as_u16();
            let v: serde_json::Value = serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap();
            (status, v)
        }
    };
    for text in HOSTILE.iter().map(|t| t.to_string()).chain([format!("a{}", "é".repeat(300)), "🦀".repeat(50_000)]) {
        let literal = serde_json::to_string(&text).unwrap();
        let (status, v) = ask(format!("{{ responses(after: {literal}) {{ totalCount }} }}")).await;
        assert_eq!(status, 200, "{text:?}: {v}");
        let e = &v["errors"][0];
        assert_eq!((e["extensions"]["code"].as_str(), e["extensions"]["argument"].as_str()), (Some("BAD_USER_INPUT"), Some("after")), "{text:?}: {v}");
        assert!(e["message"].as_str().unwrap().contains("after"), "{v}");
        let (status, v) = ask(format!("{{ services(search: {literal}) {{ id }} }}")).await;
        assert!(status == 200 && v["errors"].is_null() && v["data"]["services"].is_array(), "{text:?}: {v}");
        let (status, v) = ask(format!("{{ scores(filter: {{agency: [{literal}]}}) {{ n }} }}")).await;
        assert_eq!((status, v["errors"][0]["extensions"]["code"].as_str()), (200, Some("BAD_USER_INPUT")), "{text:?}: {v}");
    }
}

#[test]
fn ten_thousand_hostile_requests_get_answers_not_crashes() {
    let lake = fresh_lake(500, 91, 1);
    let schema = cxlake::api::schema(crate::common::analytics(&lake));
    let routes =
        cxlake::api::server::routes(schema, cxlake::analytics::Analytics::open(cxlake::store::Lake::open(&lake).unwrap()).unwrap(), None).into_endpoint();
    let cli = TestClient::new(routes);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = Config { cases: CASES, failure_persistence: None, max_shrink_iters: 200, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
    let result = runner.run(&case(), |c| {
        let doc = document(&c);
        let status = rt.block_on(async {
            // (A URI over 64 kB is refused by the HTTP layer before the server sees it.)
            let resp = if c.get && doc.len() < 8000 {
                let q: String = doc.iter().map(|b| format!("%{b:02X}")).collect();
                cli.get(format!("/graphql?query={q}")).send().await
            } else if c.raw_body {
                let mut body = b"{\"query\": \"".to_vec();
                body.extend(&doc);
                body.extend(b"\"}");
                cli.post("/graphql").content_type("application/json").body(body).send().await
            } else {
                let mut body = serde_json::json!({"query": String::from_utf8_lossy(&doc)});
                if let Some(v) = &c.variables {
                    body["variables"] = serde_json::from_str(v).unwrap_or(serde_json::Value::String(v.clone()));
                }
                cli.post("/graphql").body_json(&body).send().await
            };
            resp.0.status().as_u16()
        });
        *statuses.lock().unwrap().entry(status).or_default() += 1;
        prop_assert!(status < 500, "status {status} for {:?}", String::from_utf8_lossy(&doc).chars().take(300).collect::<String>());
        Ok(())
    });
    let statuses = statuses.into_inner().unwrap();
    eprintln!("statuses: {statuses:?}");
    result.unwrap();
    // The mix reached both the executor and the refusals.
    assert!(statuses.get(&200).copied().unwrap_or(0) > 1000 && statuses.keys().any(|s| (400..500).contains(s)), "{statuses:?}");
}
