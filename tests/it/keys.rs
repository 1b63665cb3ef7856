//! The keys file under concurrent change (issue 18: `cxlake keys revoke` racing an admin's
//! `POST /v1/keys` lost revocations) and failed authentications limited per client address.

use cxlake::api::auth::Role;
use cxlake::api::keys::{KeyFile, KeyStore};
use cxlake::api::server::{routes_with, Limits};
use poem::test::TestClient;
use poem::IntoEndpoint;
use serde_json::{json, Value};
use std::sync::Arc;

fn client(limits: Limits) -> TestClient<impl poem::Endpoint> {
    let a = crate::common::analytics(crate::common::shared_lake());
    TestClient::new(routes_with(cxlake::api::schema(a.clone()), a, None, limits).into_endpoint())
}

async fn status_of(cli: &TestClient<impl poem::Endpoint>, key: &str) -> u16 {
    cli.post("/graphql").header("authorization", format!("Bearer {key}")).body_json(&json!({"query": "{ services { id } }"})).send().await.0.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_revocations_racing_http_creations_all_hold() {
    const N: usize = 30;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let mut file = KeyFile::default();
    let admin = file.add("admin", Role::Admin).1;
    let victims: Vec<(String, String)> = (0..N).map(|i| file.add(&format!("victim {i}"), Role::Analyst)).map(|(e, k)| (e.id, k)).collect();
    file.save(&path).unwrap();
    let store = Arc::new(KeyStore::open(&path).unwrap());
    // (Thirty revoked keys tried below: no limit on failed authentications here.)
    let cli = client(Limits { keys: Some(store), auth_failures_per_minute: 0, ..Limits::default() });
    for (_, key) in &victims {
        assert_eq!(status_of(&cli, key).await, 200);
    }

    // N `cxlake keys revoke` processes and N key creations over HTTP, all at once.
    let revokers: Vec<_> = victims
        .iter()
        .map(|(id, _)| {
            std::process::Command::new(env!("CARGO_BIN_EXE_cxlake"))
                .arg("keys")
                .arg("--keys")
                .arg(&path)
                .args(["revoke", id])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let creations = futures::future::join_all((0..N).map(|i| {
        let req = cli
            .post("/v1/keys")
            .header("authorization", format!("Bearer {admin}"))
            .body_json(&json!({"name": format!("created {i}"), "role": "agency", "agency": "VA"}));
        async move {
            let resp = req.send().await;
            let status = resp.0.status().as_u16();
            let v: Value = serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap();
            (status, v)
        }
    }))
    .await;
    for (p, (id, _)) in revokers.into_iter().zip(&victims) {
        let out = p.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && said.contains(&format!("revoked key {id}")), "{said} {}", String::from_utf8_lossy(&out.stderr));
    }
    let created: Vec<(String, String)> = creations
        .into_iter()
        .map(|(status, v)| {
            assert_eq!(status, 201, "{v}");
            (v["id"].as_str().unwrap().to_string(), v["key"].as_str().unwrap().to_string())
        })
        .collect();

    // The file holds every change...
    let file = KeyFile::load(&path).unwrap();
    let lost: Vec<&String> =
        victims.iter().map(|(id, _)| id).filter(|id| file.keys.iter().find(|k| &k.id == *id).is_none_or(|k| k.revoked_at.is_none())).collect();
    assert!(lost.is_empty(), "{} of {N} revocations lost: {lost:?}", lost.len());
    let missing: Vec<&String> = created.iter().map(|(id, _)| id).filter(|id| !file.keys.iter().any(|k| &k.id == *id && k.revoked_at.is_none())).collect();
    assert!(missing.is_empty(), "{} of {N} created keys lost: {missing:?}", missing.len());
    // ... and the running server honours it once it rereads the file (within a second).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for (id, key) in &victims {
        assert_eq!(status_of(&cli, key).await, 401, "revoked key {id} still works");
    }
    for (id, key) in &created {
        assert_eq!(status_of(&cli, key).await, 200, "created key {id} does not work");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_keys_are_limited_per_client_address() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let (_, good) = KeyStore::open(&path).unwrap().update(|f| Ok(f.add("dashboard", Role::Analyst))).unwrap();
    let store = Arc::new(KeyStore::open(&path).unwrap());
    // The default: ten failures a minute. A quick run of guesses is cut off after ten, and
    // the address is refused from then on even with a right key (a right guess would
    // otherwise stand out), while requests without a key are served.
    let cli = client(Limits { keys: Some(store.clone()), ..Limits::default() });
    assert_eq!(Limits::default().auth_failures_per_minute, 10);
    // (Sixty in well under the six seconds after which the quota would allow one more.)
    let started = std::time::Instant::now();
    let mut codes = Vec::new();
    for i in 0..60 {
        let resp = cli
            .post("/graphql")
            .header("authorization", format!("Bearer cxk_{i:08x}_{}", "0".repeat(64)))
            .body_json(&json!({"query": "{ services { id } }"}))
            .send()
            .await;
        if resp.0.status().as_u16() == 429 {
            let retry: u64 = resp.0.headers().get("retry-after").expect("retry-after").to_str().unwrap().parse().unwrap();
            assert!((1..=6).contains(&retry), "{retry}");
        }
        codes.push(resp.0.status().as_u16());
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(6), "too slow to tell: {:?}", started.elapsed());
    assert!(codes[..10].iter().all(|c| *c == 401), "{codes:?}");
    assert!(codes[10..].iter().all(|c| *c == 429), "{codes:?}");
    let resp = cli.post("/graphql").header("authorization", format!("Bearer {good}")).body_json(&json!({"query": "{ services { id } }"})).send().await;
    assert_eq!(resp.0.status().as_u16(), 429, "the failing address is refused with a right key too");
    let v: Value = serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap();
    assert!(v["error"].as_str().unwrap().contains("too many failed authentications"), "{v}");
    let anonymous = cli.post("/graphql").body_json(&json!({"query": "{ services { id } }"})).send().await;
    assert_eq!(anonymous.0.status().as_u16(), 200);

    // Once the quota allows another attempt the right key works again: 120 a minute is one
    // attempt every half second.
    let cli = client(Limits { keys: Some(store), auth_failures_per_minute: 120, ..Limits::default() });
    let mut first_429 = None;
    for i in 0..1000 {
        if status_of(&cli, &format!("cxk_{i:08x}_{}", "1".repeat(64))).await == 429 {
            first_429 = Some(i);
            break;
        }
    }
    assert!(first_429.is_some_and(|i| i >= 120), "{first_429:?}");
    assert_eq!(status_of(&cli, &good).await, 429);
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(status_of(&cli, &good).await, 200);
}
