//! HTTP routes: GraphiQL at `/`, GraphQL at `/graphql` (POST, and GET for simple tools; JSON,
//! or a table in Arrow, CSV or Parquet by `Accept` or `format=`), `POST /v1/responses`
//! (real-time submit), `/health`, `/metrics` (Prometheus), `/schema.graphql`. Every response
//! carries an `x-request-id` (the caller's, or a new UUID) that the request's log lines share.
//!
//! A server without keys first refuses what a web page on another site could make it do
//! (foreign `Host` or `Origin`, form-like POSTs: `browser.rs`); CORS only for `--cors-origin`.
//!
//! Access (`auth.rs`): every request gets a principal from its `Authorization: Bearer` key
//! (401 for a bad key, or for none when anonymous access is off; an address with too many
//! failed authentications gets 429 with `retry-after` for any key it presents), is
//! rate-limited per key (per client address for anonymous callers; 429 with `retry-after`),
//! and a GraphQL request is bounded in body size and time (`Limits`).

use super::auth::Principal;
use super::cache::{self, Cached, QueryCache};
use super::download::{encode, table, TableFormat};
use super::metrics::{operation_of, Metrics, OperationLabels, RouteLabels};
use super::state::{current_version, current_version_refreshed, refresh_catalog, reply, ApiError, AuthFailures};
pub use super::state::{Limits, State};
use super::CxSchema;
use async_graphql_poem::GraphQLResponse;
use cx_analytics::Analytics;
use cx_ingest::submit::{SubmitError, Submitter};
use poem::http::StatusCode;
use poem::web::{Data, Html};
use poem::{get, handler, post, Body, Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Route};
use serde_json::{json, Value};
use std::sync::Arc;

/// Largest accepted submit body, in bytes.
pub const MAX_SUBMIT_BYTES: usize = 16 << 20;

/// The principal of a request from its `Authorization` header, or the reply refusing it.
fn authenticate(req: &poem::Request, limits: &Limits) -> Result<Principal, ApiError> {
    let Some(keys) = &limits.keys else { return Ok(Principal::local_admin()) };
    let refuse = |reason: String| {
        tracing::warn!(target: "cxlake::access", %reason, "unauthenticated");
        ApiError::new(StatusCode::UNAUTHORIZED, reason).with_header("www-authenticate", "Bearer")
    };
    match req.header("authorization") {
        None if limits.anonymous => Ok(Principal::anonymous()),
        None => Err(refuse("this server requires an API key: send 'Authorization: Bearer <key>'".into())),
        Some(h) => {
            let token = h.strip_prefix("Bearer ").ok_or_else(|| refuse("the Authorization header must read 'Bearer <key>'".into()))?;
            Principal::of_key(keys, token.trim()).map_err(|e| refuse(e.to_string()))
        }
    }
}

/// Whether a request's body is declared JSON (`application/json`, any parameters).
fn is_json(req: &poem::Request) -> bool {
    req.content_type().and_then(|t| t.split(';').next()).is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// `POST /v1/responses`: one response object or an array of them, in the lake's columns.
/// 200 with the ids once durable; 415 unless sent as `application/json` (a form or a
/// `text/plain` body from a web page must not submit); 400 for a body that is not JSON; 422
/// naming each invalid response and field (nothing is stored); 503 when the log cannot be
/// written.
#[handler]
async fn submit(req: &poem::Request, body: Body, state: Data<&Arc<State>>, principal: Data<&Principal>) -> poem::Response {
    let Some(submitter) = &state.submitter else {
        return ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "this server is read-only: it does not accept submissions").into_response();
    };
    if !is_json(req) {
        let got = req.content_type().map_or("none".to_string(), |t| format!("'{t}'"));
        return ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("POST /v1/responses takes JSON: send content-type: application/json (got {got})"))
            .into_response();
    }
    let bytes = match body.into_bytes_limit(MAX_SUBMIT_BYTES).await {
        Ok(b) => b,
        Err(e) => return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("body: {e} (at most {MAX_SUBMIT_BYTES} bytes)")).into_response(),
    };
    let items = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Array(items)) => items,
        Ok(obj @ Value::Object(_)) => vec![obj],
        Ok(_) => return ApiError::new(StatusCode::BAD_REQUEST, "body must be a JSON object or an array of objects").into_response(),
        Err(e) => return ApiError::new(StatusCode::BAD_REQUEST, format!("body is not JSON: {e}")).into_response(),
    };
    if let Some(reason) = principal.role.submit_refusal(items.iter().map(|item| item.get("agency").and_then(Value::as_str).unwrap_or(""))) {
        return ApiError::forbidden(&principal, reason).into_response();
    }
    let n = items.len() as u64;
    // The lake version is not read on the way in (acknowledgements wait only for the local
    // log): a batch refused while the inventory has moved on since it was read is checked
    // once more against the new inventory.
    let retry = items.clone();
    let mut result = submitter.submit(items).await;
    if matches!(result, Err(SubmitError::Invalid(_))) && current_version_refreshed(&state).await.is_some_and(|changed| changed) {
        result = submitter.submit(retry).await;
    }
    match result {
        Ok(ids) => {
            state.metrics.submitted.inc_by(ids.len() as u64);
            reply(StatusCode::OK, json!({"accepted": ids.len(), "response_ids": ids}))
        }
        Err(SubmitError::Invalid(problems)) => {
            state.metrics.submit_refused.inc_by(n);
            reply(StatusCode::UNPROCESSABLE_ENTITY, json!({"error": SubmitError::Invalid(problems.clone()).to_string(), "problems": problems}))
        }
        Err(e @ SubmitError::Unavailable(_)) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// GraphiQL 3.9.0 with React 18.3.1, vendored in `crates/server/src/graphiql/` (versions, licences and
/// how to refresh them in its README) and served from the binary: the page makes no request
/// beyond this server, so it works offline and on networks that block public CDNs.
const GRAPHIQL_PAGE: &str = include_str!("graphiql/index.html");
const GRAPHIQL_ASSETS: [(&str, &str, &[u8]); 4] = [
    ("graphiql.min.js", "text/javascript; charset=utf-8", include_bytes!("graphiql/graphiql.min.js")),
    ("graphiql.min.css", "text/css; charset=utf-8", include_bytes!("graphiql/graphiql.min.css")),
    ("react.production.min.js", "text/javascript; charset=utf-8", include_bytes!("graphiql/react.production.min.js")),
    ("react-dom.production.min.js", "text/javascript; charset=utf-8", include_bytes!("graphiql/react-dom.production.min.js")),
];

#[handler]
fn graphiql() -> Html<&'static str> {
    Html(GRAPHIQL_PAGE)
}

#[handler]
fn graphiql_asset(poem::web::Path(name): poem::web::Path<String>) -> poem::Response {
    match GRAPHIQL_ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => {
            poem::Response::builder().content_type(*content_type).header("cache-control", "public, max-age=86400").body(bytes::Bytes::from_static(bytes))
        }
        None => ApiError::new(StatusCode::NOT_FOUND, format!("no GraphiQL asset '{}'", name.escape_debug())).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct FormatParam {
    format: Option<String>,
}

/// `/graphql`: the JSON response, or, when the `Accept` header names a table type
/// (`application/vnd.apache.arrow.stream`, `text/csv`, `application/vnd.apache.parquet`) or a
/// `format=arrow|csv|parquet` parameter is given, the single top-level list of the result as
/// one flat table. A query with errors, or whose result is not one list, gets 400 with JSON.
/// Successful read-only queries are answered from the cache while the lake version is the same.
#[handler]
async fn graphql(req: &poem::Request, body: Body, state: Data<&Arc<State>>, principal: Data<&Principal>) -> poem::Response {
    let gql = match read_request(req, body, state.limits.max_body).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    // GraphQL over HTTP: a client that accepts application/graphql-response+json gets it, with
    // 400 for a request that never executed; everyone else keeps application/json (200).
    let media = JsonMedia::of(req.header("accept"));
    let param = req.params::<FormatParam>().ok().and_then(|p| p.format);
    let format = match &param {
        Some(p) => match TableFormat::from_param(p) {
            Some(f) => Some(f),
            None => return ApiError::new(StatusCode::BAD_REQUEST, format!("format '{p}': expected arrow, csv or parquet")).into_response(),
        },
        None => req.header("accept").and_then(TableFormat::from_accept),
    };
    let version = current_version(&state.lake).await.ok();
    if let Some(v) = version {
        refresh_catalog(&state, v).await;
    }
    let served = cx_analytics::rollups::ServedLog::default();
    let mut request = gql.data(principal.0.clone()).data(served.clone());
    let refused = super::prepare(&mut request).err();
    let started = std::time::Instant::now();
    let output_types = match format {
        Some(_) => Some(state.output_types().await),
        None => None,
    };
    // The document is parsed once, here: the GET check, the metrics label, the cache key and
    // the table's columns read it, and the executor runs it (a document that does not parse is
    // left to the executor, which reports it).
    let (operation_name, variables) = (request.operation_name.clone(), serde_json::to_value(&request.variables).unwrap_or_default());
    let (operation, mutation, key, plan) = match request.parsed_query() {
        Ok(doc) => (
            operation_of(doc),
            is_mutation(doc, operation_name.as_deref()),
            version.filter(|_| cache::is_read_only(doc)).map(|v| cache::key(doc, &variables, operation_name.as_deref(), format, &principal.role.label(), v)),
            output_types.map(|types| types.and_then(|t| t.plan(doc, operation_name.as_deref()))),
        ),
        Err(_) => ("invalid".to_string(), false, None, None),
    };
    if req.method() == poem::http::Method::GET && mutation {
        return ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "a mutation must be sent with POST (GET requests never change anything)")
            .with_header("allow", "POST")
            .into_response();
    }
    // A table the query cannot make (two top-level fields, no list) is refused before any work.
    if let Some(Err(e)) = &plan {
        return ApiError::bad_request(e.clone()).into_response();
    }
    let labels = OperationLabels { operation, format: format.map_or("json".to_string(), |f| format!("{f:?}").to_lowercase()) };
    if let Some(hit) = key.as_ref().and_then(|k| state.cache.get(k)) {
        state.metrics.cache_hits.inc();
        state.metrics.latency.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
        return cached_response(hit, "hit", media);
    }
    if key.is_some() {
        state.metrics.cache_misses.inc();
    }
    // The work stops (and its admission slot frees) when the time limit passes or the client
    // hangs up, whichever comes first.
    let executed = tokio::select! {
        r = async {
            match refused {
                Some(e) => Ok(async_graphql::Response::from_errors(vec![e])),
                None => tokio::time::timeout(state.limits.timeout, state.schema.execute(request)).await,
            }
        } => r,
        _ = super::connection::hung_up(req) => {
            tracing::info!("the client hung up; its query was stopped");
            return ApiError::new(StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST), "the client closed the connection").into_response();
        }
    };
    let response = match executed {
        Ok(r) => r,
        Err(_) => {
            let message = format!("the query took longer than the limit of {:?} and was stopped", state.limits.timeout);
            return media.typed(reply(StatusCode::OK, json!({"data": null, "errors": [{"message": message, "extensions": {"code": "TIMEOUT"}}]})));
        }
    };
    let executed_in = started.elapsed();
    let served = served.entries();
    state.metrics.record_served(&served);
    let served = served_headers(&served);
    let encoded = match format {
        // A document that failed to parse or validate, or whose variables or operation could
        // not be used, never executed: no field has a path and there is no data.
        None if response.is_err()
            && media == JsonMedia::GraphqlResponse
            && response.data == async_graphql::Value::Null
            && response.errors.iter().all(|e| e.path.is_empty()) =>
        {
            let mut body = json!({"errors": response.errors});
            if !response.extensions.is_empty() {
                body["extensions"] = serde_json::to_value(&response.extensions).unwrap_or_default();
            }
            return media.typed(reply(StatusCode::BAD_REQUEST, body));
        }
        None if response.is_err() => return media.typed(GraphQLResponse(response).into_response()),
        None => Cached { content_type: "application/json", disposition: None, headers: served, body: serde_json::to_vec(&response).unwrap_or_default().into() },
        Some(_) if response.is_err() => return reply(StatusCode::BAD_REQUEST, serde_json::to_value(&response).unwrap_or_default()),
        Some(format) => {
            let name = match &response.data {
                async_graphql::Value::Object(o) => o.keys().next().map_or("result".to_string(), |k| k.to_string()),
                _ => "result".to_string(),
            };
            // A table's columns come from the query and the schema's types, not from the rows.
            let planned = plan.unwrap_or_else(|| Err("the document does not parse".into()));
            match planned.and_then(|plan| table(&response.data, &plan)).and_then(|t| Ok((encode(&t, format)?, t.schema()))) {
                Ok((bytes, schema)) => {
                    let ext = format.extension();
                    let mut headers: Vec<(String, String)> = schema
                        .metadata()
                        .iter()
                        .filter_map(|(k, v)| {
                            k.strip_prefix(super::download::PAGE_METADATA)
                                .map(|k| (format!("x-cxlake-{}", k.to_ascii_lowercase().replace('_', "-")), v.clone()))
                        })
                        .collect();
                    headers.extend(served);
                    headers.sort();
                    Cached {
                        content_type: format.content_type(),
                        disposition: Some(format!("attachment; filename=\"{name}.{ext}\"")),
                        headers,
                        body: bytes.into(),
                    }
                }
                Err(e) => return ApiError::new(StatusCode::BAD_REQUEST, e).into_response(),
            }
        }
    };
    tracing::debug!(operation = %labels.operation, executed = ?executed_in, encoded = ?(started.elapsed() - executed_in), bytes = encoded.body.len(), "graphql request answered");
    if let Some(k) = key {
        state.cache.put(k, encoded.clone());
    }
    state.metrics.latency.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    cached_response(encoded, "miss", media)
}

/// What served a request's computations (scores and what is built on them, driver and
/// tapped importance), as response headers: `x-cxlake-served`
/// (rollup, raw or mixed), `x-cxlake-rollups` (the rollups read), `x-cxlake-rollup-rows` and
/// `x-cxlake-raw-files`; none for a request that computed no scores.
fn served_headers(entries: &[cx_analytics::rollups::Served]) -> Vec<(String, String)> {
    let all = cx_analytics::rollups::Served::combined(entries);
    if all.path() == "none" {
        return Vec::new();
    }
    vec![
        ("x-cxlake-served".into(), all.path().into()),
        ("x-cxlake-rollups".into(), all.rollups.iter().map(|r| r.name()).collect::<Vec<_>>().join(",")),
        ("x-cxlake-rollup-rows".into(), all.rollup_rows.to_string()),
        ("x-cxlake-raw-files".into(), all.raw_files.to_string()),
    ]
}

/// Which JSON media type a GraphQL response is sent as (GraphQL over HTTP, 2024 draft).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonMedia {
    /// `application/json`: every GraphQL result with status 200 (what existing clients expect).
    Json,
    /// `application/graphql-response+json`, when the client accepts it: 4xx for requests that
    /// did not execute.
    GraphqlResponse,
}

impl JsonMedia {
    const GRAPHQL_RESPONSE: &'static str = "application/graphql-response+json";

    fn of(accept: Option<&str>) -> JsonMedia {
        let named = accept.is_some_and(|a| super::download::media_types(a).any(|t| t.eq_ignore_ascii_case(Self::GRAPHQL_RESPONSE)));
        if named {
            JsonMedia::GraphqlResponse
        } else {
            JsonMedia::Json
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            JsonMedia::Json => "application/json; charset=utf-8",
            JsonMedia::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
        }
    }

    /// `r` sent as this media type.
    fn typed(self, mut r: poem::Response) -> poem::Response {
        r.headers_mut().insert("content-type", poem::http::HeaderValue::from_static(self.content_type()));
        r
    }
}

/// Whether the operation a request would run is a mutation.
fn is_mutation(doc: &async_graphql::parser::types::ExecutableDocument, operation: Option<&str>) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let ty = match (&doc.operations, operation) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) => ops.values().next().map(|op| op.node.ty),
    };
    ty == Some(OperationType::Mutation)
}

/// The GraphQL request of a GET (query string) or POST (JSON body of at most `max` bytes).
async fn read_request(req: &poem::Request, body: Body, max: usize) -> Result<async_graphql::Request, poem::Response> {
    let no_query = || ApiError::new(StatusCode::BAD_REQUEST, "no 'query': a GraphQL request names its document in 'query'").into_response();
    if req.method() == poem::http::Method::GET {
        let request = async_graphql::http::parse_query_string(req.uri().query().unwrap_or(""))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("query string: {e}")).into_response())?;
        return if request.query.is_empty() { Err(no_query()) } else { Ok(request) };
    }
    if !is_json(req) {
        let got = req.content_type().map_or("none".to_string(), |t| format!("'{t}'"));
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("a GraphQL POST is JSON: send content-type: application/json (got {got})"))
            .into_response());
    }
    let bytes = body
        .into_bytes_limit(max)
        .await
        .map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("request body: {e} (at most {max} bytes)")).into_response())?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Array(_)) => Err(ApiError::new(StatusCode::BAD_REQUEST, "batched requests are not supported: send one request per call").into_response()),
        Ok(v) if !v.get("query").is_some_and(Value::is_string) => Err(no_query()),
        Ok(v) => serde_json::from_value(v).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("not a GraphQL request: {e}")).into_response()),
        Err(e) => Err(ApiError::new(StatusCode::BAD_REQUEST, format!("request body is not JSON: {e}")).into_response()),
    }
}

fn cached_response(c: Cached, cache: &'static str, media: JsonMedia) -> poem::Response {
    let content_type = if c.content_type == "application/json" { media.content_type() } else { c.content_type };
    // The representation depends on Accept (JSON media type, table formats).
    let mut b = poem::Response::builder().content_type(content_type).header("x-cache", cache).header("vary", "accept");
    if let Some(d) = c.disposition {
        b = b.header("content-disposition", d);
    }
    for (k, v) in c.headers {
        b = b.header(k, v);
    }
    b.body(c.body)
}

#[handler]
async fn metrics(state: Data<&Arc<State>>) -> poem::Response {
    if let Ok(v) = current_version(&state.lake).await {
        state.metrics.lake_version.set(v as i64);
    }
    if let Some(s) = &state.submitter {
        state.metrics.committed.set(s.committed() as i64);
        let lag = s.lag();
        state.metrics.submit_pending.set(lag.records as i64);
        let waited = lag.oldest.and_then(|t| t.elapsed().ok()).map_or(0.0, |d| d.as_secs_f64());
        state.metrics.submit_lag.set(waited);
    }
    poem::Response::builder().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.encode(state.lake.scanned().await))
}

/// Routes counted by name; anything else is `other` (bounded label values).
const ROUTES: [&str; 9] = ["/", "/graphql", "/v1/responses", "/v1/export", "/v1/ingest", "/v1/keys", "/health", "/metrics", "/schema.graphql"];

/// What `/health` reports: whether the lake can be read, and its version.
#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
    lake: String,
    lake_version: Option<u64>,
    error: Option<String>,
    version: &'static str,
}

#[handler]
async fn health(state: Data<&Arc<State>>) -> poem::Response {
    let lake = state.lake.clone();
    let reachable = tokio::task::spawn_blocking(move || match lake.objects().exists(cx_lake::layout::LAKE_MANIFEST) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("{} is missing", cx_lake::layout::LAKE_MANIFEST)),
        Err(e) => Err(e.to_string()),
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let version = match reachable {
        Ok(()) => current_version(&state.lake).await,
        Err(e) => Err(e),
    };
    let lake = state.lake.to_string();
    let (status, code, lake_version, error) = match version {
        Ok(v) => ("ok", StatusCode::OK, Some(v), None),
        Err(e) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE, None, Some(e)),
    };
    let body = Health { status, lake, lake_version, error, version: env!("CARGO_PKG_VERSION") };
    reply(code, serde_json::to_value(body).unwrap_or_default())
}

/// Results cached at most (entries, bytes).
pub const CACHE_ENTRIES: usize = 1024;
pub const CACHE_BYTES: usize = 256 << 20;

/// The application's routes over `schema`, which serves `analytics` (the REST routes and the
/// scan counters of `/metrics` use it); submissions go to `submitter` (none:
/// read-only). No keys: every caller is a local admin.
pub fn routes(schema: CxSchema, analytics: Analytics, submitter: Option<Arc<Submitter>>) -> impl IntoEndpoint {
    routes_with(schema, analytics, submitter, Limits::default())
}

/// `routes` with access control and limits.
pub fn routes_with(schema: CxSchema, analytics: Analytics, submitter: Option<Arc<Submitter>>, limits: Limits) -> impl IntoEndpoint {
    routes_with_metrics(schema, analytics, submitter, limits, Arc::default())
}

/// `routes_with`, counting into `metrics` (shared with the SQL protocols' listeners, so one
/// `/metrics` covers them).
pub fn routes_with_metrics(
    schema: CxSchema,
    analytics: Analytics,
    submitter: Option<Arc<Submitter>>,
    limits: Limits,
    counters: Arc<Metrics>,
) -> impl IntoEndpoint {
    let lake = analytics.lake.clone();
    let sdl = Arc::new(schema.sdl());
    let limiter = std::num::NonZeroU32::new(limits.rate_per_second).map(|rate| {
        governor::RateLimiter::keyed(governor::Quota::per_second(rate).allow_burst(rate.saturating_mul(std::num::NonZeroU32::new(2).expect("2 > 0"))))
    });
    let state = Arc::new(State {
        schema,
        lake,
        analytics,
        cache: QueryCache::new(CACHE_ENTRIES, CACHE_BYTES),
        metrics: counters,
        submitter,
        auth_failures: AuthFailures::new(limits.auth_failures_per_minute),
        limits,
        limiter,
        output_types: Default::default(),
    });
    let counted = state.clone();
    let guarded = state.clone();
    let browser = Arc::new(state.limits.browser());
    let cors = super::browser::CorsPolicy(state.limits.cors_origins.clone());
    Route::new()
        .at("/", get(graphiql))
        .at("/graphiql/:file", get(graphiql_asset))
        .at("/graphql", get(graphql).post(graphql))
        .at("/v1/responses", post(submit))
        .at("/v1/export", get(super::export::export_rows))
        .at("/v1/ingest", post(super::upload::ingest_upload))
        .at("/v1/reports/hisp", get(super::report::hisp_download))
        .at("/v1/keys", get(super::admin::list_keys).post(super::admin::add_key))
        .at("/v1/keys/:id", poem::delete(super::admin::revoke_key))
        .at("/health", get(health))
        .at("/metrics", get(metrics))
        .at(
            "/schema.graphql",
            // The whole schema names fields other roles cannot see: admins only (others use
            // introspection, which shows each role its own part).
            get(poem::endpoint::make_sync(move |req: poem::Request| match req.extensions().get::<Principal>() {
                Some(p) if p.role == super::auth::Role::Admin => poem::Response::builder().content_type("text/plain; charset=utf-8").body((*sdl).clone()),
                Some(p) => ApiError::forbidden(p, format!("role '{}' sees the schema through introspection; the whole SDL is for admins", p.role.label()))
                    .into_response(),
                None => ApiError::forbidden(&Principal::anonymous(), "no principal".into()).into_response(),
            })),
        )
        .data(state)
        .around(move |ep, mut req| {
            let state = guarded.clone();
            async move {
                let open = matches!(req.uri().path(), "/" | "/health" | "/metrics") || req.uri().path().starts_with("/graphiql/");
                // An address that failed too often is not even heard with a key (a right guess
                // must look no different from a wrong one).
                let guard = state.auth_failures.as_ref().filter(|_| !open && state.limits.keys.is_some() && req.header("authorization").is_some());
                let addr = req.remote_addr().as_socket_addr().map(|a| a.ip());
                if let Some(wait) = guard.and_then(|g| g.blocked(addr)) {
                    return Ok(guard.expect("checked").refusal(addr, wait));
                }
                let principal = match authenticate(&req, &state.limits) {
                    Ok(p) => p,
                    Err(refused) if !open => {
                        if let Some((g, wait)) = guard.and_then(|g| g.failed(addr).map(|w| (g, w))) {
                            return Ok(g.refusal(addr, wait));
                        }
                        return Ok(refused.into_response());
                    }
                    Err(_) => Principal::anonymous(),
                };
                if let (Some(limiter), false) = (&state.limiter, open) {
                    let who = match (&principal.key_id, req.remote_addr().as_socket_addr()) {
                        (Some(id), _) => format!("key:{id}"),
                        (None, Some(addr)) => format!("addr:{}", addr.ip()),
                        (None, None) => "anonymous".to_string(),
                    };
                    if let Err(not_until) = limiter.check_key(&who) {
                        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
                        tracing::warn!(target: "cxlake::access", %who, "rate limited");
                        let message = format!("rate limit of {} requests per second exceeded; retry in {} ms", state.limits.rate_per_second, wait.as_millis());
                        return Ok(ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
                            .with_header("retry-after", wait.as_secs().max(1).to_string())
                            .into_response());
                    }
                }
                req.extensions_mut().insert(principal);
                ep.call(req).await.map(IntoResponse::into_response)
            }
        })
        .around(move |ep, req| {
            // Before any key is looked at: what a web page must not make a keyless server do.
            let browser = browser.clone();
            async move {
                match browser.refusal(&req) {
                    Some(refused) => Ok(refused),
                    None => ep.call(req).await.map(IntoResponse::into_response),
                }
            }
        })
        .around(move |ep, req| {
            let state = counted.clone();
            async move {
                let path = req.uri().path().to_string();
                let route = ROUTES.iter().find(|r| **r == path).map_or("other", |r| r).to_string();
                let resp = ep.call(req).await?.into_response();
                state.metrics.requests.get_or_create(&RouteLabels { route, status: resp.status().as_u16() }).inc();
                Ok(resp)
            }
        })
        .with(super::delivery::Delivery)
        .with(cors)
        .with(poem::middleware::CatchPanic::new())
        .with(poem::middleware::Tracing)
        .with(poem::middleware::RequestId::default().reuse_id(poem::middleware::ReuseId::Use))
}
