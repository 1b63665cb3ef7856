//! HTTP routes: GraphiQL at `/`, GraphQL at `/graphql` (POST, and GET for simple tools; JSON,
//! or a table in Arrow, CSV or Parquet by `Accept` or `format=`), `POST /v1/responses`
//! (real-time submit), `/health`, `/schema.graphql`.

use super::CxSchema;
use async_graphql::http::GraphiQLSource;
use super::cache::{self, is_read_only, Cached, QueryCache};
use super::download::{encode, table, TableFormat};
use crate::store::commit::lake_version;
use crate::store::Lake;
use async_graphql_poem::{GraphQLRequest, GraphQLResponse};
use crate::ingest::submit::{SubmitError, Submitter};
use poem::http::StatusCode;
use poem::web::{Data, Html};
use poem::{get, handler, post, Body, EndpointExt, IntoEndpoint, IntoResponse, Route};
use serde_json::{json, Value};
use std::sync::Arc;

/// Largest accepted submit body, in bytes.
pub const MAX_SUBMIT_BYTES: usize = 16 << 20;

fn reply(status: StatusCode, body: Value) -> poem::Response {
    poem::Response::builder().status(status).content_type("application/json").body(body.to_string())
}

/// `POST /v1/responses`: one response object or an array of them, in the lake's columns.
/// 200 with the ids once durable; 400 for a body that is not JSON; 422 naming each invalid
/// response and field (nothing is stored); 503 when the log cannot be written.
#[handler]
async fn submit(body: Body, submitter: Data<&Option<Arc<Submitter>>>) -> poem::Response {
    let Some(submitter) = submitter.0 else {
        return reply(StatusCode::METHOD_NOT_ALLOWED, json!({"error": "this server is read-only: it does not accept submissions"}));
    };
    let bytes = match body.into_bytes_limit(MAX_SUBMIT_BYTES).await {
        Ok(b) => b,
        Err(e) => return reply(StatusCode::PAYLOAD_TOO_LARGE, json!({"error": format!("body: {e} (at most {MAX_SUBMIT_BYTES} bytes)")})),
    };
    let items = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Array(items)) => items,
        Ok(obj @ Value::Object(_)) => vec![obj],
        Ok(_) => return reply(StatusCode::BAD_REQUEST, json!({"error": "body must be a JSON object or an array of objects"})),
        Err(e) => return reply(StatusCode::BAD_REQUEST, json!({"error": format!("body is not JSON: {e}")})),
    };
    match submitter.submit(items).await {
        Ok(ids) => reply(StatusCode::OK, json!({"accepted": ids.len(), "response_ids": ids})),
        Err(SubmitError::Invalid(problems)) => reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": SubmitError::Invalid(problems.clone()).to_string(), "problems": problems}),
        ),
        Err(e @ SubmitError::Unavailable(_)) => reply(StatusCode::SERVICE_UNAVAILABLE, json!({"error": e.to_string()})),
    }
}

#[handler]
fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").title("cxlake").finish())
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
async fn graphql(req: &poem::Request, state: Data<&Arc<State>>, gql: GraphQLRequest) -> poem::Response {
    let param = req.params::<FormatParam>().ok().and_then(|p| p.format);
    let format = match &param {
        Some(p) => match TableFormat::from_param(p) {
            Some(f) => Some(f),
            None => return reply(StatusCode::BAD_REQUEST, json!({"error": format!("format '{p}': expected arrow, csv or parquet")})),
        },
        None => req.header("accept").and_then(TableFormat::from_accept),
    };
    let request = gql.0;
    let key = if is_read_only(&request.query) {
        lake_version(&state.lake).ok().map(|version| {
            let vars = serde_json::to_value(&request.variables).unwrap_or_default();
            cache::key(&request.query, &vars, request.operation_name.as_deref(), format, version)
        })
    } else {
        None
    };
    if let Some(hit) = key.as_ref().and_then(|k| state.cache.get(k)) {
        return cached_response(hit, "hit");
    }
    let response = state.schema.execute(request).await;
    let encoded = match format {
        None if response.is_err() => return GraphQLResponse(response).into_response(),
        None => Cached { content_type: "application/json", disposition: None, body: serde_json::to_vec(&response).unwrap_or_default().into() },
        Some(_) if response.is_err() => return reply(StatusCode::BAD_REQUEST, serde_json::to_value(&response).unwrap_or_default()),
        Some(format) => {
            let name = match &response.data {
                async_graphql::Value::Object(o) => o.keys().next().map_or("result".to_string(), |k| k.to_string()),
                _ => "result".to_string(),
            };
            match table(&response.data).and_then(|t| encode(&t, format)) {
                Ok(bytes) => {
                    let ext = match format {
                        TableFormat::Arrow => "arrows",
                        TableFormat::Csv => "csv",
                        TableFormat::Parquet => "parquet",
                    };
                    Cached { content_type: format.content_type(), disposition: Some(format!("attachment; filename=\"{name}.{ext}\"")), body: bytes.into() }
                }
                Err(e) => return reply(StatusCode::BAD_REQUEST, json!({"error": e})),
            }
        }
    };
    if let Some(k) = key {
        state.cache.put(k, encoded.clone());
    }
    cached_response(encoded, "miss")
}

fn cached_response(c: Cached, cache: &'static str) -> poem::Response {
    let mut b = poem::Response::builder().content_type(c.content_type).header("x-cache", cache);
    if let Some(d) = c.disposition {
        b = b.header("content-disposition", d);
    }
    b.body(c.body)
}

/// What the routes share.
pub struct State {
    pub schema: CxSchema,
    pub lake: Lake,
    pub cache: QueryCache,
}

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
fn health(state: Data<&Arc<State>>) -> poem::Response {
    let lake = state.lake.root().display().to_string();
    let reachable = std::fs::metadata(state.lake.locate(crate::store::layout::LAKE_MANIFEST)).map_err(|e| e.to_string());
    let (status, code, lake_version, error) = match reachable.and_then(|_| lake_version(&state.lake).map_err(|e| e.to_string())) {
        Ok(v) => ("ok", StatusCode::OK, Some(v), None),
        Err(e) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE, None, Some(e)),
    };
    let body = Health { status, lake, lake_version, error, version: env!("CARGO_PKG_VERSION") };
    reply(code, serde_json::to_value(body).unwrap_or_default())
}

/// Results cached at most (entries, bytes).
pub const CACHE_ENTRIES: usize = 1024;
pub const CACHE_BYTES: usize = 256 << 20;

/// The application's routes over `schema` and `lake`; submissions go to `submitter` (none:
/// read-only).
pub fn routes(schema: CxSchema, lake: Lake, submitter: Option<Arc<Submitter>>) -> impl IntoEndpoint {
    let sdl = Arc::new(schema.sdl());
    let state = Arc::new(State { schema, lake, cache: QueryCache::new(CACHE_ENTRIES, CACHE_BYTES) });
    Route::new()
        .at("/", get(graphiql))
        .at("/graphql", get(graphql).post(graphql))
        .at("/v1/responses", post(submit))
        .at("/health", get(health))
        .at(
            "/schema.graphql",
            get(poem::endpoint::make_sync(move |_| {
                poem::Response::builder().content_type("text/plain; charset=utf-8").body((*sdl).clone())
            })),
        )
        .data(submitter)
        .data(state)
        .with(poem::middleware::Tracing)
}
