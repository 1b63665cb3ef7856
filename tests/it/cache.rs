//! The result cache keys on the parsed document (issue 18: whitespace inside a string literal
//! was treated as layout, so `search: "a  b"` answered from the entry of `search: "a b"`).

use crate::common::{analytics, shared_lake};
use poem::test::TestClient;
use poem::IntoEndpoint;
use serde_json::{json, Value};

fn client() -> TestClient<impl poem::Endpoint> {
    let a = analytics(shared_lake());
    TestClient::new(cxlake::api::server::routes(cxlake::api::schema(a.clone()), a, None).into_endpoint())
}

/// The ids a `services(search:)` query finds, and whether the cache answered it.
async fn search(cli: &TestClient<impl poem::Endpoint>, needle: &str, layout: &str) -> (Vec<String>, String) {
    let literal = serde_json::to_string(needle).unwrap();
    let query = ["{", "services(search:", &literal, ")", "{", "id", "}", "}"].join(layout);
    let resp = cli.post("/graphql").body_json(&json!({ "query": query })).send().await;
    resp.assert_status_is_ok();
    let cache = resp.0.headers().get("x-cache").map(|h| h.to_str().unwrap().to_string());
    let v: Value = serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap();
    let cache = cache.unwrap_or_else(|| panic!("no x-cache: {v}"));
    let ids = v["data"]["services"].as_array().unwrap_or_else(|| panic!("{v}")).iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    (ids, cache)
}

#[tokio::test(flavor = "multi_thread")]
async fn string_literals_that_differ_only_in_spaces_have_their_own_entries() {
    // A two-word service name: found with one space, not with two.
    let catalog = analytics(shared_lake()).catalog();
    let name = catalog.services.iter().map(|s| s.name.clone()).find(|n| n.split(' ').count() >= 3).expect("a service name of three words");
    let words: Vec<&str> = name.split(' ').collect();
    let one = format!("{} {}", words[0], words[1]);
    let two = format!("{}  {}", words[0], words[1]);
    let fresh = |needle: &str| {
        let n = needle.to_lowercase();
        let mut ids: Vec<String> = catalog
            .services
            .iter()
            .filter(|s| [&s.name, &s.description, &s.org_unit].iter().any(|t| t.to_lowercase().contains(&n)))
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        ids
    };
    let (want_one, want_two) = (fresh(&one), fresh(&two));
    assert!(!want_one.is_empty() && want_two.is_empty(), "{one:?} {want_one:?} / {two:?} {want_two:?}");

    for order in [[&one, &two], [&two, &one]] {
        let cli = client();
        for needle in order {
            let (mut ids, cache) = search(&cli, needle, " ").await;
            ids.sort();
            assert_eq!(cache, "miss", "{needle:?} was answered from another query's entry");
            assert_eq!(ids, if *needle == one { want_one.clone() } else { want_two.clone() }, "{needle:?}");
        }
        // Each is its own entry, and a query laid out differently is the same document.
        for needle in order {
            let (mut ids, cache) = search(&cli, needle, "\n  ").await;
            ids.sort();
            assert_eq!((cache.as_str(), ids), ("hit", if *needle == one { want_one.clone() } else { want_two.clone() }), "{needle:?}");
        }
    }
}
