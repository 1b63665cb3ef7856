//! What a web page on another site may make this server do.
//!
//! A server without keys treats every caller as an admin, so a page in the user's browser
//! must not reach it:
//!
//! - **Host** (against DNS rebinding: a hostile name resolved to 127.0.0.1 would read raw rows
//!   as same-origin): the `Host` header must name the server: `localhost`, `127.0.0.1` or
//!   `[::1]` with the listen port, or a name given with `--allowed-host` (with the listen port,
//!   no port, or exactly the port given with it). 421 otherwise.
//! - **Origin** (cross-site requests): a request carrying an `Origin` header must come from one
//!   of those hosts (http or https) or a `--cors-origin`. 403 otherwise.
//! - **Simple requests** (a form or `fetch(..., {mode: "no-cors"})` needs no preflight): a
//!   `POST` with no content type or a browser-safelisted one (`text/plain`,
//!   `application/x-www-form-urlencoded`, `multipart/form-data`) changes nothing: 415.
//!
//! With keys, a page cannot attach `Authorization: Bearer` without a CORS preflight, and
//! anonymous callers may change nothing, so these checks stay off (any host name may front the
//! server). `GET` never runs a mutation (405, in `server.rs`); `/graphql` and `/v1/responses`
//! take JSON bodies only (415) whatever the keys.
//!
//! CORS: no `Access-Control-*` header is ever sent unless origins are listed with
//! `--cors-origin`; then poem's `Cors` answers preflights and marks responses for exactly those
//! origins (same-origin requests, such as GraphiQL's own, pass untouched).

use poem::http::{header, uri::Authority, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use std::sync::Arc;

/// The loopback names a keyless server answers to (with its port).
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Content types a browser sends without a CORS preflight.
const SIMPLE_CONTENT_TYPES: [&str; 3] = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"];

/// Which names and origins a browser may use; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct BrowserPolicy {
    /// Whether the checks apply (the server has no keys).
    pub keyless: bool,
    /// The port the server listens on (`None` or 0: any port is taken as the server's).
    pub port: Option<u16>,
    /// Further host names, `name` or `name:port` (`--allowed-host`).
    pub allowed_hosts: Vec<String>,
    /// Origins granted CORS (`--cors-origin`), as `scheme://host[:port]`.
    pub cors_origins: Vec<String>,
}

/// `name[:port]`, lowercase, from a Host header or an origin's authority.
fn split_host(authority: &str) -> Option<(String, Option<u16>)> {
    let a: Authority = authority.trim().parse().ok()?;
    if a.as_str().contains('@') {
        return None;
    }
    Some((a.host().to_ascii_lowercase(), a.port_u16()))
}

/// An origin as `scheme://host[:port]`, lowercase; `None` if it is not one.
pub fn normalize_origin(origin: &str) -> Option<String> {
    let uri: poem::http::Uri = origin.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    let path_ok = matches!(uri.path_and_query().map(|p| p.as_str()), None | Some("") | Some("/"));
    if !(scheme == "http" || scheme == "https") || !path_ok || authority.as_str().contains('@') {
        return None;
    }
    Some(format!("{scheme}://{}", authority.as_str().to_ascii_lowercase()))
}

impl BrowserPolicy {
    /// Checks `--allowed-host` names and `--cors-origin` origins; each problem names the value.
    pub fn validate(&self) -> Result<(), String> {
        for h in &self.allowed_hosts {
            match split_host(h) {
                Some((name, _)) if !name.is_empty() && !h.contains('/') => {}
                _ => return Err(format!("--allowed-host '{h}' is not a host name (such as cx.example.gov or cx.example.gov:8443)")),
            }
        }
        for o in &self.cors_origins {
            if normalize_origin(o).is_none() {
                return Err(format!("--cors-origin '{o}' is not an origin: give scheme, host and optional port, such as https://dashboard.example.gov"));
            }
        }
        Ok(())
    }

    /// Whether `name`/`port` (from a Host header or an origin) is this server.
    fn is_own(&self, name: &str, port: Option<u16>) -> bool {
        let listen = self.port.filter(|p| *p != 0);
        let loopback = LOOPBACK_NAMES.contains(&name)
            && match (listen, port) {
                (None, _) => true,
                (Some(l), Some(p)) => l == p,
                (Some(l), None) => l == 80,
            };
        loopback
            || self.allowed_hosts.iter().filter_map(|h| split_host(h)).any(|(allowed, fixed)| {
                allowed == name
                    && match fixed {
                        Some(f) => port == Some(f),
                        None => port.is_none() || port == listen || listen.is_none(),
                    }
            })
    }

    fn is_cors_origin(&self, origin: &str) -> bool {
        normalize_origin(origin).is_some_and(|o| self.cors_origins.iter().any(|c| normalize_origin(c).as_deref() == Some(o.as_str())))
    }

    /// The refusal of a request a browser must not make, if it is one.
    pub fn refusal(&self, req: &Request) -> Option<Response> {
        if !self.keyless {
            return None;
        }
        let refuse = |status: StatusCode, reason: String| {
            tracing::warn!(target: "cxlake::access", %reason, "refused a browser request");
            Some(super::state::ApiError::new(status, reason).into_response())
        };
        let host = req.header(header::HOST).map(str::to_string).or_else(|| req.uri().authority().map(|a| a.to_string()));
        // Browsers always send Host; a client without one is not a page.
        if let Some(host) = host {
            if !split_host(&host).is_some_and(|(name, port)| self.is_own(&name, port)) {
                return refuse(
                    StatusCode::MISDIRECTED_REQUEST,
                    format!(
                        "Host '{}' is not this server: a server without keys answers to {} (start it with --allowed-host NAME for other names)",
                        host.escape_debug(),
                        self.own_names()
                    ),
                );
            }
        }
        if let Some(origin) = req.header(header::ORIGIN) {
            let own = normalize_origin(origin)
                .and_then(|o| o.split_once("://").and_then(|(_, a)| split_host(a)))
                .is_some_and(|(name, port)| self.is_own(&name, port));
            if !own && !self.is_cors_origin(origin) {
                return refuse(
                    StatusCode::FORBIDDEN,
                    format!(
                        "cross-origin request from '{}' refused: a server without keys serves only its own pages (give trusted origins with --cors-origin, or use keys)",
                        origin.escape_debug()
                    ),
                );
            }
        }
        if req.method() == Method::POST {
            let essence = req.content_type().map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
            match essence.as_deref() {
                None | Some("") => {
                    return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "a POST needs a content type (application/json; text/csv, application/x-ndjson or application/vnd.apache.parquet for /v1/ingest)".into())
                }
                Some(t) if SIMPLE_CONTENT_TYPES.contains(&t) => {
                    return refuse(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        format!("content type '{t}' is refused: any web page can send it, and a server without keys must not let one change anything (send application/json; text/csv, application/x-ndjson or application/vnd.apache.parquet for /v1/ingest)"),
                    )
                }
                Some(_) => {}
            }
        }
        None
    }

    fn own_names(&self) -> String {
        let port = self.port.filter(|p| *p != 0).map_or(String::new(), |p| format!(":{p}"));
        LOOPBACK_NAMES.iter().map(|n| format!("{n}{port}")).chain(self.allowed_hosts.iter().cloned()).collect::<Vec<_>>().join(", ")
    }
}

/// poem's `Cors` for cross-origin requests from the listed origins; all other requests (no
/// `Origin`, same-origin such as GraphiQL's own, unlisted origins) skip it and get no CORS
/// header. Without listed origins nothing is added.
pub struct CorsPolicy(pub Vec<String>);

impl<E: Endpoint + 'static> Middleware<E> for CorsPolicy {
    type Output = CorsPolicyEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        let inner = Arc::new(ep);
        let cors = (!self.0.is_empty()).then(|| {
            poem::middleware::Cors::new()
                .allow_origins(self.0.iter().filter_map(|o| normalize_origin(o)))
                .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::DELETE, Method::OPTIONS])
                .expose_headers([
                    "content-disposition",
                    "x-cache",
                    "x-request-id",
                    "x-cxlake-totalcount",
                    "x-cxlake-truncated",
                    "x-cxlake-pageinfo-endcursor",
                    "retry-after",
                ])
                .allow_credentials(false)
                .transform(inner.clone())
        });
        CorsPolicyEndpoint { inner, cors, origins: self.0.iter().filter_map(|o| normalize_origin(o)).collect() }
    }
}

pub struct CorsPolicyEndpoint<E> {
    inner: Arc<E>,
    cors: Option<poem::middleware::CorsEndpoint<Arc<E>>>,
    origins: Vec<String>,
}

/// Whether the request's `Origin` is the host it is addressed to (same-origin).
fn same_origin(req: &Request) -> bool {
    let (Some(origin), Some(host)) = (req.header(header::ORIGIN), req.header(header::HOST)) else { return false };
    normalize_origin(origin).is_some_and(|o| o.split_once("://").is_some_and(|(_, a)| a.eq_ignore_ascii_case(host.trim())))
}

impl<E: Endpoint + 'static> Endpoint for CorsPolicyEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let listed = req.header(header::ORIGIN).and_then(normalize_origin).is_some_and(|o| self.origins.contains(&o));
        match &self.cors {
            Some(cors) if listed && !same_origin(&req) => cors.call(req).await,
            // Other origins get no CORS headers (a keyless server refuses them: `BrowserPolicy`).
            _ => self.inner.call(req).await.map(IntoResponse::into_response),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(host: Option<&str>, origin: Option<&str>) -> Request {
        let mut b = Request::builder().method(Method::GET).uri(poem::http::Uri::from_static("/graphql"));
        if let Some(h) = host {
            b = b.header(header::HOST, h);
        }
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        b.finish()
    }

    #[test]
    fn hosts_and_origins_of_a_keyless_server() {
        let p = BrowserPolicy {
            keyless: true,
            port: Some(8080),
            allowed_hosts: vec!["cx.example.gov".into(), "proxy.local:8443".into()],
            cors_origins: vec!["https://dash.example.gov".into()],
        };
        p.validate().unwrap();
        for ok in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080", "LOCALHOST:8080", "cx.example.gov", "cx.example.gov:8080", "proxy.local:8443"] {
            assert!(p.refusal(&get(Some(ok), None)).is_none(), "{ok}");
        }
        for bad in ["evil.example:8080", "127.0.0.1:9090", "localhost", "127.0.0.1.evil.example:8080", "proxy.local", "x@127.0.0.1:8080"] {
            assert_eq!(p.refusal(&get(Some(bad), None)).map(|r| r.status()), Some(StatusCode::MISDIRECTED_REQUEST), "{bad}");
        }
        assert!(p.refusal(&get(None, None)).is_none(), "no Host: not a browser");
        for ok in ["http://127.0.0.1:8080", "https://cx.example.gov", "https://dash.example.gov", "HTTPS://DASH.example.gov/"] {
            assert!(p.refusal(&get(Some("127.0.0.1:8080"), Some(ok))).is_none(), "{ok}");
        }
        for bad in ["null", "http://evil.example", "http://127.0.0.1:9999", "https://dash.example.gov:444", "file://"] {
            assert_eq!(p.refusal(&get(Some("127.0.0.1:8080"), Some(bad))).map(|r| r.status()), Some(StatusCode::FORBIDDEN), "{bad}");
        }
        // With keys nothing is checked here.
        let keyed = BrowserPolicy { keyless: false, ..p.clone() };
        assert!(keyed.refusal(&get(Some("evil.example"), Some("http://evil.example"))).is_none());
        assert!(BrowserPolicy { allowed_hosts: vec!["https://x/".into()], ..Default::default() }
            .validate()
            .unwrap_err()
            .contains("--allowed-host 'https://x/'"));
        assert!(BrowserPolicy { cors_origins: vec!["dash.example.gov".into()], ..Default::default() }
            .validate()
            .unwrap_err()
            .contains("--cors-origin 'dash.example.gov'"));
    }
}
