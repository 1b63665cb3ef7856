//! Table downloads have the schema of their GraphQL type, not one guessed from the rows
//! (issue 19): for every list query, a normal result, an empty one and one where every cell is
//! suppressed download with the same Arrow columns, types and nullability. The queries and
//! their fields are read from the schema by introspection, so a new list query is covered
//! without touching this test.

use crate::common::{analytics, shared_lake};
use cxlake::analytics::suppression::Suppression;
use cxlake::analytics::Analytics;
use poem::test::TestClient;
use poem::IntoEndpoint;
use serde_json::{json, Value};

const INTROSPECTION: &str = r#"{ __schema { queryType { name } types { name kind
    fields { name args { name type { ...T } } type { ...T } }
    inputFields { name } } }
  }
  fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"#;

fn client(a: Analytics) -> TestClient<impl poem::Endpoint> {
    TestClient::new(cxlake::api::server::routes(cxlake::api::schema(a.clone()), a, None).into_endpoint())
}

/// The named type under NON_NULL and LIST wrappers, and whether a LIST was among them.
fn named(t: &Value) -> (String, String, bool) {
    let (mut t, mut list) = (t, false);
    while t["name"].is_null() {
        list |= t["kind"] == "LIST";
        t = &t["ofType"];
    }
    (t["name"].as_str().unwrap().to_string(), t["kind"].as_str().unwrap().to_string(), list)
}

struct Types(Vec<Value>);

impl Types {
    fn get(&self, name: &str) -> &Value {
        self.0.iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("no type {name}"))
    }

    /// A selection of every scalar field of `object`, its nested objects' scalar fields (one
    /// level) and its first list of objects (exploded).
    fn selection(&self, object: &str, depth: usize) -> String {
        let mut out = Vec::new();
        let mut exploded = false;
        for f in self.get(object)["fields"].as_array().unwrap() {
            let (ty, kind, list) = named(&f["type"]);
            let required_args = f["args"].as_array().unwrap().iter().any(|a| a["type"]["kind"] == "NON_NULL");
            if required_args {
                continue;
            }
            let name = f["name"].as_str().unwrap();
            match kind.as_str() {
                "SCALAR" | "ENUM" => out.push(name.to_string()),
                "OBJECT" if depth > 0 && (!list || !exploded) => {
                    exploded |= list;
                    let inner = self.selection(&ty, depth - 1);
                    if !inner.is_empty() {
                        out.push(format!("{name} {{ {inner} }}"));
                    }
                }
                _ => {}
            }
        }
        out.join(" ")
    }
}

/// The Arrow fields of a download: (name, type, nullable).
async fn download(c: &TestClient<impl poem::Endpoint>, query: &str) -> Result<(Vec<(String, String, bool)>, usize), String> {
    let resp = c.post("/graphql").header("accept", "application/vnd.apache.arrow.stream").body_json(&json!({ "query": query })).send().await;
    let status = resp.0.status();
    let bytes = resp.0.into_body().into_vec().await.unwrap();
    if !status.is_success() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
    }
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).map_err(|e| e.to_string())?;
    let schema = reader.schema();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    Ok((schema.fields().iter().map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable())).collect(), rows))
}

/// Values for the required arguments of the list queries that have them.
fn required(query: &str, arg: &str) -> &'static str {
    match (query, arg) {
        ("benchmark", "level") => "SERVICE",
        ("hispDueDates", "fiscalYear") => "2024",
        // A survey with one Likert satisfaction question: findings (no trust question).
        ("surveyCheck", "definition") => r#""name: s\nquestions:\n  - {id: q1, text: Rate it, type: likert5, measure: satisfaction, required: true}\n""#,
        other => panic!("give the list query's required argument {other:?} a value in this test"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_list_query_downloads_with_the_schema_of_its_type() {
    let normal = client(analytics(shared_lake()));
    let suppressed = client(analytics(shared_lake()).with_suppression(Suppression { min_cell: 1_000_000_000, min_cell_drivers: 1_000_000_000 }));
    let resp = normal.post("/graphql").body_json(&json!({ "query": INTROSPECTION })).send().await;
    let v: Value = resp.json().await.value().deserialize();
    let types = Types(v["data"]["__schema"]["types"].as_array().unwrap().clone());
    let query_type = v["data"]["__schema"]["queryType"]["name"].as_str().unwrap().to_string();
    let (mut compared, mut with_rows, mut emptied) = (Vec::new(), 0, 0);
    for f in types.get(&query_type)["fields"].as_array().unwrap().clone() {
        let (item, kind, list) = named(&f["type"]);
        if !list || kind != "OBJECT" {
            continue;
        }
        let name = f["name"].as_str().unwrap();
        let mut args: Vec<String> = f["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["type"]["kind"] == "NON_NULL")
            .map(|a| format!("{}: {}", a["name"].as_str().unwrap(), required(name, a["name"].as_str().unwrap())))
            .collect();
        // A date range with no data, where the query takes a filter with one.
        let filter = f["args"].as_array().unwrap().iter().find(|a| a["name"] == "filter").map(|a| named(&a["type"]).0);
        let dated = filter.as_deref().is_some_and(|t| types.get(t)["inputFields"].as_array().unwrap().iter().any(|i| i["name"] == "from"));
        let selection = types.selection(&item, 1);
        let text = |args: &[String]| {
            if args.is_empty() {
                format!("{{ {name} {{ {selection} }} }}")
            } else {
                format!("{{ {name}({}) {{ {selection} }} }}", args.join(", "))
            }
        };
        let full = download(&normal, &text(&args)).await.unwrap_or_else(|e| panic!("{name}: {e}\n{}", text(&args)));
        with_rows += usize::from(full.1 > 0);
        let hidden = download(&suppressed, &text(&args)).await.unwrap_or_else(|e| panic!("{name} (all suppressed): {e}"));
        assert_eq!(hidden.0, full.0, "{name}: all suppressed");
        if dated {
            args.push(r#"filter: { from: "2010-01-01", to: "2010-03-31" }"#.into());
            let empty = download(&normal, &text(&args)).await.unwrap_or_else(|e| panic!("{name} (empty): {e}"));
            assert_eq!(empty.1, 0, "{name}: the 2010 filter selects nothing");
            assert_eq!(empty.0, full.0, "{name}: empty");
            emptied += 1;
        }
        compared.push(name.to_string());
    }
    println!("{} list queries compared ({emptied} also empty): {compared:?}", compared.len());
    for q in ["scores", "driverImportance", "benchmark", "trends", "alerts", "services", "offices"] {
        assert!(compared.iter().any(|c| c == q), "{q} not compared: {compared:?}");
    }
    assert!(with_rows >= compared.len() / 2, "most list queries return rows on the sample lake");
    assert!(emptied >= 4);
    // The types are the GraphQL types': a count is a non-null Int64, a mean a nullable Float64.
    let (scores, _) = download(&normal, "{ scores { n mean suppressed distribution { value count } } }").await.unwrap();
    let get = |name: &str| scores.iter().find(|c| c.0 == name).cloned().unwrap();
    assert_eq!(get("n"), ("n".into(), "Int64".into(), false));
    assert_eq!(get("mean"), ("mean".into(), "Float64".into(), true));
    assert_eq!(get("suppressed"), ("suppressed".into(), "Boolean".into(), false));
    assert_eq!(get("distribution_count"), ("distribution_count".into(), "Int64".into(), true), "an exploded list's columns are nullable");
}
