//! How every response travels, whatever the route: `HEAD` answers with the headers and the
//! length a `GET` would have, a single byte range of a complete (buffered) body is honoured
//! (206 with `Content-Range`, 416 when it cannot be satisfied), and bodies are compressed when
//! the client asks for it (`Accept-Encoding`: zstd, gzip, br or deflate, by q-value) unless
//! they are compressed already (Parquet, images) or a range was asked for.
//!
//! Table downloads are complete before they are encoded, so readers that fetch by URL (polars'
//! `read_csv`/`read_parquet`/`scan_parquet`, DuckDB's httpfs, BI "from web" connectors) get the
//! `Content-Length`, `Accept-Ranges: bytes` and `ETag` they look for, and can read a Parquet
//! footer first. Streamed bodies (raw exports of any size) keep streaming: they are compressed
//! on the fly and never buffered here.

use bytes::Bytes;
use poem::http::{header, HeaderValue, Method, StatusCode};
use poem::web::{Compress, CompressionAlgo};
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response, Result};

/// The middleware; see the module documentation.
pub struct Delivery;

impl<E: Endpoint> Middleware<E> for Delivery {
    type Output = DeliveryEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        DeliveryEndpoint { ep }
    }
}

pub struct DeliveryEndpoint<E> {
    ep: E,
}

/// Media types not worth compressing again.
fn precompressed(content_type: &str) -> bool {
    let t = content_type.split(';').next().unwrap_or("").trim();
    t == "application/vnd.apache.parquet" || t.starts_with("image/") || t == "application/zip" || t.ends_with("+zip") || t.contains("spreadsheetml")
}

/// The coding to use for an `Accept-Encoding` header: the highest q-value among those we
/// speak, ties broken by zstd, gzip, br, deflate; `None` for identity (or nothing acceptable).
pub fn negotiate(accept_encoding: &str) -> Option<CompressionAlgo> {
    let mut best: Option<(u32, u8, CompressionAlgo)> = None;
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts.filter_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok())).next().unwrap_or(1.0);
        let q = (q.clamp(0.0, 1.0) * 1000.0) as u32;
        let (rank, algo) = match name.as_str() {
            "zstd" => (4, CompressionAlgo::ZSTD),
            "gzip" | "x-gzip" => (3, CompressionAlgo::GZIP),
            "br" => (2, CompressionAlgo::BR),
            "deflate" => (1, CompressionAlgo::DEFLATE),
            _ => continue,
        };
        if q > 0 && best.as_ref().is_none_or(|(bq, br, _)| (q, rank) > (*bq, *br)) {
            best = Some((q, rank, algo));
        }
    }
    best.map(|(_, _, a)| a)
}

/// A single byte range of a body of `len` bytes (RFC 9110 14.1.2): `Some(Ok(start..end))`,
/// `Some(Err(()))` when it cannot be satisfied, `None` when the header is not one range we
/// honour (several ranges, another unit): then the whole body is sent.
pub fn byte_range(header: &str, len: u64) -> Option<Result<std::ops::Range<u64>, ()>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        if suffix == 0 {
            return Some(Err(()));
        }
        len.saturating_sub(suffix)..len
    } else {
        let start: u64 = first.parse().ok()?;
        let end = if last.is_empty() { len } else { last.parse::<u64>().ok()?.saturating_add(1).min(len) };
        if last.parse::<u64>().is_ok_and(|l| l < start) {
            return None; // invalid syntax: ignore the header
        }
        start..end
    };
    if range.start >= len || range.is_empty() {
        return Some(Err(()));
    }
    Some(Ok(range))
}

/// The complete body, if it is one (an exact size known in advance), else the body back.
fn complete(body: Body) -> std::result::Result<Body, Body> {
    let boxed: http_body_util::combinators::BoxBody<Bytes, std::io::Error> = body.into();
    let hint = http_body::Body::size_hint(&boxed);
    let body = Body::from(boxed);
    if hint.exact().is_some() {
        Ok(body)
    } else {
        Err(body)
    }
}

fn etag(bytes: &[u8]) -> String {
    format!("\"{}\"", &blake3::hash(bytes).to_hex()[..32])
}

impl<E: Endpoint> Endpoint for DeliveryEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Response> {
        let head = req.method() == Method::HEAD;
        if head {
            req.set_method(Method::GET);
        }
        let get = req.method() == Method::GET;
        let range = req.header(header::RANGE).map(str::to_string);
        let if_range = req.header(header::IF_RANGE).map(str::to_string);
        let coding = req.header(header::ACCEPT_ENCODING).and_then(negotiate);
        let mut resp = match self.ep.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        let content_type = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let compress = coding.filter(|_| !precompressed(&content_type) && resp.headers().get(header::CONTENT_ENCODING).is_none());
        if compress.is_some() {
            resp.headers_mut().append(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        let body = match complete(resp.take_body()) {
            Ok(body) => body,
            Err(stream) => {
                // A stream: never buffered; compressed on the fly when asked (not for HEAD).
                resp.set_body(stream);
                return Ok(match compress.filter(|_| !head) {
                    Some(algo) => Compress::new(resp, algo).into_response(),
                    None if head => {
                        resp.set_body(());
                        resp
                    }
                    None => resp,
                });
            }
        };
        let bytes = body.into_bytes().await.map_err(|e| poem::Error::new(e, StatusCode::INTERNAL_SERVER_ERROR))?;
        let ok = resp.status() == StatusCode::OK;
        if ok && get {
            let tag = etag(&bytes);
            resp.headers_mut().insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            resp.headers_mut().insert(header::ETAG, HeaderValue::from_str(&tag).expect("hex etag"));
            // A range of another version of the resource is not served (If-Range).
            let honour = if_range.as_deref().is_none_or(|t| t.trim() == tag);
            if let Some(r) = range.as_deref().filter(|_| honour).and_then(|r| byte_range(r, bytes.len() as u64)) {
                let len = bytes.len();
                return Ok(match r {
                    Ok(r) => {
                        resp.set_status(StatusCode::PARTIAL_CONTENT);
                        let value = format!("bytes {}-{}/{len}", r.start, r.end - 1);
                        resp.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_str(&value).expect("ascii"));
                        finish(resp, bytes.slice(r.start as usize..r.end as usize), head)
                    }
                    Err(()) => {
                        resp.set_status(StatusCode::RANGE_NOT_SATISFIABLE);
                        let value = format!("bytes */{len}");
                        resp.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_str(&value).expect("ascii"));
                        finish(resp, Bytes::new(), head)
                    }
                });
            }
        }
        let bytes = match compress {
            Some(algo) if bytes.len() >= 256 => {
                let coding = algo.to_string();
                resp.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_str(&coding).expect("ascii coding"));
                // Another coding is another representation: its own strong ETag (RFC 9110
                // 8.8.3), so an If-Range from a compressed response never matches the ranges,
                // which are always of the identity bytes.
                if let Some(tag) = resp.headers().get(header::ETAG).and_then(|t| t.to_str().ok()).map(str::to_string) {
                    let coded = format!("{}-{coding}\"", tag.trim_end_matches('"'));
                    resp.headers_mut().insert(header::ETAG, HeaderValue::from_str(&coded).expect("ascii etag"));
                }
                Compress::new(bytes, algo).into_response().into_body().into_bytes().await.map_err(|e| poem::Error::new(e, StatusCode::INTERNAL_SERVER_ERROR))?
            }
            _ => bytes,
        };
        Ok(finish(resp, bytes, head))
    }
}

/// `bytes` as the body with its length; for `HEAD` the length alone.
fn finish(mut resp: Response, bytes: Bytes, head: bool) -> Response {
    resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    if head {
        resp.set_body(());
    } else {
        resp.set_body(bytes);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(byte_range("bytes=0-99", 1000), Some(Ok(0..100)));
        assert_eq!(byte_range("bytes=990-", 1000), Some(Ok(990..1000)));
        assert_eq!(byte_range("bytes=-8", 1000), Some(Ok(992..1000)));
        assert_eq!(byte_range("bytes=-2000", 1000), Some(Ok(0..1000)));
        assert_eq!(byte_range("bytes=900-5000", 1000), Some(Ok(900..1000)));
        assert_eq!(byte_range("bytes=1000-", 1000), Some(Err(())));
        assert_eq!(byte_range("bytes=-0", 1000), Some(Err(())));
        assert_eq!(byte_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(byte_range("items=0-1", 1000), None);
        assert_eq!(byte_range("bytes=9-3", 1000), None);
        assert_eq!(byte_range("bytes=x-3", 1000), None);
    }

    #[test]
    fn codings_by_q_value_then_preference() {
        assert!(matches!(negotiate("gzip, br"), Some(CompressionAlgo::GZIP)));
        assert!(matches!(negotiate("gzip, br, zstd"), Some(CompressionAlgo::ZSTD)));
        assert!(matches!(negotiate("gzip;q=0.5, br;q=0.9"), Some(CompressionAlgo::BR)));
        assert!(negotiate("identity").is_none());
        assert!(negotiate("gzip;q=0").is_none());
        assert!(negotiate("").is_none());
    }
}
