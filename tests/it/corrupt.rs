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
            assert!(text.contains("# cxlake export failed: ") && text.contains(&damaged), "the CSV last line names the file: {text:?}");
        }
    }
    // An export that does not touch the file ends normally, on the same server.
    let reply = tokio::task::spawn_blocking(move || raw_get(addr, "/v1/export?agency=SSA&format=csv")).await.unwrap();
    assert!(reply.starts_with(b"HTTP/1.1 200") && reply.ends_with(b"\r\n0\r\n\r\n"), "{}", String::from_utf8_lossy(&reply[..200]));
    server.abort();
}
