//! A data file whose bytes were damaged inside a column chunk (its footer intact): an export
//! over it is aborted where the client sees it (no clean end of the chunked body), and every
//! query or read that touches it fails with an error naming the file.

use crate::common::{data_files, fresh_lake};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Overwrites 32 bytes (fixed seed) in the middle of every column chunk of the first row group
/// of `file`, leaving its footer readable.
pub fn damage_column_chunks(file: &Path) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let meta = SerializedFileReader::new(std::fs::File::open(file).unwrap()).unwrap().metadata().clone();
    let mut bytes = std::fs::read(file).unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for column in meta.row_group(0).columns() {
        let start = column.dictionary_page_offset().unwrap_or(column.data_page_offset()) as usize;
        let middle = start + column.compressed_size() as usize / 2;
        for b in &mut bytes[middle..middle + 32] {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            *b = (state >> 56) as u8;
        }
    }
    std::fs::write(file, bytes).unwrap();
}

/// A small lake with one of VA's data files damaged inside its column chunks; the file's path
/// relative to the lake.
pub fn damaged_lake(seed: u64) -> (PathBuf, String) {
    let lake = fresh_lake(20_000, seed, 1);
    let target = data_files(&lake).into_iter().find(|f| f.to_string_lossy().contains("agency=VA/")).expect("a VA file");
    damage_column_chunks(&target);
    (lake.clone(), target.strip_prefix(&lake).unwrap().display().to_string())
}

/// The raw bytes of an HTTP/1.1 GET answered by the server at `addr`, read until it closes the
/// connection.
fn raw_get(addr: std::net::SocketAddr, path: &str) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = Vec::new();
    // A reset after the partial body is an aborted transfer too.
    let _ = s.read_to_end(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_over_a_damaged_file_is_aborted_where_the_client_sees_it() {
    use poem::listener::{Acceptor, Listener};
    let (lake, damaged) = damaged_lake(31);
    let analytics = crate::common::analytics(&lake);
    let app = cxlake::api::server::routes(cxlake::api::schema(analytics.clone()), analytics, None);
    let acceptor = cxlake::api::connection::bind("127.0.0.1:0".parse().unwrap()).into_acceptor().await.unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    let server = tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));

    for format in ["csv", "arrow", "parquet"] {
        let reply = tokio::task::spawn_blocking(move || raw_get(addr, &format!("/v1/export?agency=VA&format={format}"))).await.unwrap();
        let text = String::from_utf8_lossy(&reply);
        assert!(text.starts_with("HTTP/1.1 200"), "{format}: {}", &text[..text.len().min(300)]);
        assert!(text.contains("transfer-encoding: chunked"), "{format}: the export streams");
        // The terminating zero-length chunk never comes: the transfer is cut short.
        assert!(!reply.ends_with(b"\r\n0\r\n\r\n"), "{format}: the body of a failed export ended cleanly");
        if format == "csv" {
            assert!(
                text.contains("# cxlake export failed: data file") && text.contains(&damaged) && text.contains("does not decode"),
                "the CSV last line names the file: {text:?}"
            );
        }
    }
    // An export that does not touch the file ends normally, on the same server.
    let reply = tokio::task::spawn_blocking(move || raw_get(addr, "/v1/export?agency=SSA&format=csv")).await.unwrap();
    assert!(reply.starts_with(b"HTTP/1.1 200") && reply.ends_with(b"\r\n0\r\n\r\n"), "{}", String::from_utf8_lossy(&reply[..200]));
    server.abort();
}

/// Runs a query against raw rows: these tests are about reading damaged data files, which
/// rollups (built from the files while intact) never read.
async fn graphql(lake: &Path, query: &str) -> serde_json::Value {
    use poem::IntoEndpoint;
    let analytics = crate::common::analytics(lake).with_rollups(false);
    let client = poem::test::TestClient::new(cxlake::api::server::routes(cxlake::api::schema(analytics.clone()), analytics, None).into_endpoint());
    let resp = client.post("/graphql").body_json(&serde_json::json!({ "query": query })).send().await;
    resp.assert_status_is_ok();
    resp.json().await.value().deserialize()
}

/// The one error of a failed query: its message and code.
fn only_error(v: &serde_json::Value) -> (String, String) {
    let errors = v["errors"].as_array().unwrap_or_else(|| panic!("the query did not fail: {v}"));
    assert_eq!(errors.len(), 1, "{v}");
    (errors[0]["message"].as_str().unwrap().to_string(), errors[0]["extensions"]["code"].as_str().unwrap_or("").to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_read_of_a_damaged_column_chunk_names_the_file() {
    let (lake, damaged) = damaged_lake(32);
    for query in [
        r#"{ responses(filter: {agency: ["VA"]}, first: 1000) { totalCount rows { responseId collectionId trust } } }"#,
        r#"{ scores(filter: {agency: ["VA"]}, groupBy: [SERVICE], measures: [TRUST]) { service n mean } }"#,
        r#"{ driverImportance(filter: {agency: ["VA"]}) { n } }"#,
        r#"{ trends(measure: TRUST, filter: {agency: ["VA"]}, period: FISCAL_QUARTER) { period n } }"#,
    ] {
        let (message, code) = only_error(&graphql(&lake, query).await);
        assert_eq!(code, "CORRUPT_DATA_FILE", "{query}: {message}");
        assert!(message.contains(&damaged) && message.contains("does not decode"), "{query}: the error names the file and what is wrong: {message}");
    }
    // Queries pruned away from the file still answer.
    let ok = graphql(&lake, r#"{ scores(filter: {agency: ["SSA"]}, measures: [TRUST]) { n } }"#).await;
    assert!(ok["errors"].is_null() && ok["data"]["scores"][0]["n"].as_u64().unwrap() > 0, "{ok}");

    // The ids read for deduplication at ingest.
    let store = cxlake::store::Lake::open(&lake).unwrap();
    let err = cxlake::store::commit::for_each_id(&store, &damaged, |_| {}).unwrap_err().to_string();
    assert!(err.contains(&damaged) && err.contains("unreadable"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_telemetry_file_is_named_too() {
    let lake = fresh_lake(20_000, 33, 1);
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![lake.join("telemetry/agency=VA")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                files.push(p);
            }
        }
    }
    files.sort();
    let target = files.first().expect("a VA telemetry file");
    damage_column_chunks(target);
    let relative = target.strip_prefix(&lake).unwrap().display().to_string();
    let (message, code) = only_error(&graphql(&lake, r#"{ telemetry(filter: {agency: ["VA"]}) { count sum } }"#).await);
    assert_eq!(code, "CORRUPT_DATA_FILE", "{message}");
    assert!(message.contains(&relative) && message.contains("does not decode"), "{message}");
}
