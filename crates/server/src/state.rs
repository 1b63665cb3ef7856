//! What the HTTP routes share: the `State` (schema, lake, analytics, cache, metrics, submitter,
//! limits), the `Limits` of who may call and how much, and the one shape of every REST answer
//! and error (`reply`, `ApiError`). The route handlers (`server.rs`, `admin.rs`, `export.rs`,
//! `upload.rs`, `report.rs`) depend on this module, never on each other.

use super::auth::Principal;
use super::cache::QueryCache;
use super::keys::KeyStore;
use super::metrics::Metrics;
use super::CxSchema;
use cx_analytics::Analytics;
use cx_ingest::submit::Submitter;
use cx_lake::commit::lake_version;
use cx_lake::Lake;
use poem::http::StatusCode;
use poem::IntoResponse;
use serde_json::{json, Value};
use std::sync::Arc;

/// Who may call, and how much.
#[derive(Clone)]
pub struct Limits {
    /// The keys file (none: every caller is a local admin; the CLI allows that on loopback only).
    pub keys: Option<Arc<KeyStore>>,
    /// Whether a request without a key is served as public.
    pub anonymous: bool,
    /// Requests per second per key (or per client address without a key); 0: unlimited.
    pub rate_per_second: u32,
    /// Largest GraphQL request body, in bytes.
    pub max_body: usize,
    /// Time a GraphQL request may take.
    pub timeout: std::time::Duration,
    /// The port the server listens on: without keys, the `Host` a browser sends must name it
    /// (`browser.rs`). `None`: any port.
    pub port: Option<u16>,
    /// Host names a server without keys answers to besides the loopback names (`--allowed-host`).
    pub allowed_hosts: Vec<String>,
    /// Origins granted CORS (`--cors-origin`); none: no CORS headers at all.
    pub cors_origins: Vec<String>,
    /// Failed authentications a client address may make per minute (as a burst, then one
    /// every 60/n s) before its requests with a key get 429 (`--auth-failures`); 0: no limit.
    pub auth_failures_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            keys: None,
            anonymous: true,
            rate_per_second: 0,
            max_body: 1 << 20,
            timeout: std::time::Duration::from_secs(30),
            port: None,
            allowed_hosts: Vec::new(),
            cors_origins: Vec::new(),
            auth_failures_per_minute: 10,
        }
    }
}

impl Limits {
    /// What a browser may make this server do (`browser.rs`).
    pub fn browser(&self) -> super::browser::BrowserPolicy {
        super::browser::BrowserPolicy {
            keyless: self.keys.is_none(),
            port: self.port,
            allowed_hosts: self.allowed_hosts.clone(),
            cors_origins: self.cors_origins.clone(),
        }
    }
}

pub(crate) type Limiter = governor::DefaultKeyedRateLimiter<String>;

/// Failed authentications by client address (against key guessing): governor's keyed limiter
/// counts each failure; an address past its quota is refused (429, `retry-after`) on every
/// request presenting a key, before the key is even looked at, until the quota lets one more
/// attempt through. Requests without a key are not affected. Behind a proxy every client has
/// the proxy's address.
pub(crate) struct AuthFailures {
    limiter: governor::DefaultKeyedRateLimiter<Option<std::net::IpAddr>>,
    /// Addresses refused until the instant given.
    blocked: std::sync::Mutex<std::collections::HashMap<Option<std::net::IpAddr>, std::time::Instant>>,
    per_minute: u32,
}

impl AuthFailures {
    pub(crate) fn new(per_minute: u32) -> Option<AuthFailures> {
        let n = std::num::NonZeroU32::new(per_minute)?;
        Some(AuthFailures { limiter: governor::RateLimiter::keyed(governor::Quota::per_minute(n)), blocked: Default::default(), per_minute })
    }

    /// How long `addr` is still refused, if it is.
    pub(crate) fn blocked(&self, addr: Option<std::net::IpAddr>) -> Option<std::time::Duration> {
        let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let until = *blocked.get(&addr)?;
        until.checked_duration_since(std::time::Instant::now()).filter(|d| !d.is_zero())
    }

    /// Counts a failure of `addr`; how long it is refused from now, if it is over its quota.
    pub(crate) fn failed(&self, addr: Option<std::net::IpAddr>) -> Option<std::time::Duration> {
        let not_until = self.limiter.check_key(&addr).err()?;
        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
        let now = std::time::Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        if blocked.len() >= 4096 {
            blocked.retain(|_, until| *until > now);
            self.limiter.retain_recent();
        }
        blocked.insert(addr, now + wait);
        Some(wait)
    }

    pub(crate) fn refusal(&self, addr: Option<std::net::IpAddr>, wait: std::time::Duration) -> poem::Response {
        let who = addr.map_or("an unknown address".to_string(), |a| a.to_string());
        tracing::warn!(target: "cxlake::access", %who, "too many failed authentications");
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed authentications from {who} (at most {} per minute): retry in {secs} s", self.per_minute),
        )
        .with_header("retry-after", secs.to_string())
        .into_response()
    }
}

/// The one error of the REST routes: a status and a message, sent as `{"error": message}`,
/// with the headers it needs (`retry-after`, `www-authenticate`).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), headers: Vec::new() }
    }

    /// 400: what was wrong with the request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 403 for a request its principal may not make (logged).
    pub fn forbidden(principal: &Principal, reason: String) -> ApiError {
        tracing::warn!(target: "cxlake::access", role = %principal.role.label(), key = principal.key_id.as_deref().unwrap_or("-"), %reason, "denied");
        ApiError::new(StatusCode::FORBIDDEN, reason)
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> ApiError {
        self.headers.push((name, value.into()));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> poem::Response {
        let mut r = reply(self.status, json!({"error": self.message}));
        for (name, value) in self.headers {
            if let Ok(v) = poem::http::HeaderValue::from_str(&value) {
                r.headers_mut().insert(name, v);
            }
        }
        r
    }
}

/// A JSON reply: the one shape of every REST answer and error.
pub(crate) fn reply(status: StatusCode, body: Value) -> poem::Response {
    poem::Response::builder().status(status).content_type("application/json").body(body.to_string())
}

/// Rereads the catalog (inventory, offices) when the lake moved past the version it was read
/// at, and gives the submitter the new inventory: an edit by any process (`upsertServices`
/// here or on another replica, `cxlake ingest --table services`) holds for the next request.
/// Whether it reread.
pub(crate) async fn refresh_catalog(state: &State, version: u64) -> bool {
    let reread = refresh_analytics(&state.analytics, version).await;
    if reread {
        if let Some(s) = &state.submitter {
            s.set_inventory(state.analytics.catalog().inventory());
        }
    }
    reread
}

/// Rereads `analytics`' catalog when it was read at another version than `version` (off the
/// async workers); whether it reread. A failure is logged and leaves the catalog as it was.
pub(crate) async fn refresh_analytics(analytics: &cx_analytics::Analytics, version: u64) -> bool {
    if analytics.catalog_version() == version {
        return false;
    }
    let analytics = analytics.clone();
    match tokio::task::spawn_blocking(move || analytics.refresh(version)).await {
        Ok(Ok(reread)) => reread,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the catalog was not reread");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "the catalog was not reread");
            false
        }
    }
}

/// Reads the lake version and refreshes the catalog when it moved (see `refresh_catalog`);
/// whether it did (`None`: the version could not be read).
pub(crate) async fn current_version_refreshed(state: &State) -> Option<bool> {
    let v = current_version(&state.lake).await.ok()?;
    Some(refresh_catalog(state, v).await)
}

/// The lake version (a read and a stat; two requests on S3), off the async workers.
pub(crate) async fn current_version(lake: &Lake) -> Result<u64, String> {
    let lake = lake.clone();
    tokio::task::spawn_blocking(move || lake_version(&lake).map_err(|e| e.to_string())).await.map_err(|e| e.to_string())?
}

/// What the routes share.
pub struct State {
    pub schema: CxSchema,
    pub lake: Lake,
    /// The analytics the schema serves (the same catalog and suppression), for REST routes.
    pub analytics: Analytics,
    pub cache: QueryCache,
    pub metrics: std::sync::Arc<Metrics>,
    pub submitter: Option<Arc<Submitter>>,
    pub limits: Limits,
    pub(crate) limiter: Option<Limiter>,
    pub(crate) auth_failures: Option<AuthFailures>,
    /// The schema's output types, read once by introspection (table downloads' columns).
    pub(crate) output_types: tokio::sync::OnceCell<Arc<super::download::OutputTypes>>,
}

impl State {
    /// The schema's output types (introspected on first use).
    pub async fn output_types(&self) -> Result<Arc<super::download::OutputTypes>, String> {
        self.output_types.get_or_try_init(|| async { super::download::OutputTypes::of(&self.schema).await.map(Arc::new) }).await.cloned()
    }
}
