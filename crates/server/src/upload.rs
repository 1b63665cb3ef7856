//! `POST /v1/ingest?format=csv|jsonl|parquet[&table=responses|telemetry|indicators][&name=FILE]`:
//! a file uploaded over HTTP and ingested as `cxlake ingest` would (validation, quarantine,
//! deduplication, one commit), on a
//! server that writes (`--submit`). Collectors may upload rows of their own agency only: rows of
//! any other are quarantined with the reason; admins any. The body is spooled to a private
//! temporary file (at most `MAX_UPLOAD_BYTES`); the answer is the ingest summary as JSON.

use super::auth::Principal;
use super::state::{reply, State};
use cx_ingest::formats::{Format, OpenOptions};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::IntoResponse;
use poem::{handler, Body};
use std::sync::Arc;

/// Largest accepted upload.
pub const MAX_UPLOAD_BYTES: u64 = 1 << 30;

#[derive(serde::Deserialize)]
pub struct UploadParams {
    format: Option<String>,
    name: Option<String>,
    /// responses (default), telemetry or indicators.
    table: Option<String>,
}

#[handler]
pub async fn ingest_upload(params: Query<UploadParams>, body: Body, state: Data<&Arc<State>>, principal: Data<&Principal>) -> poem::Response {
    let Some(submitter) = &state.submitter else {
        return super::state::ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "this server is read-only: start it with --submit to accept uploads")
            .into_response();
    };
    // Collectors may upload only their own agency's rows (others are quarantined); admins any.
    if !principal.role.submits() {
        return super::state::ApiError::forbidden(&principal, format!("role '{}' may not ingest", principal.role.label())).into_response();
    }
    let agency = principal.role.agency().map(str::to_string);
    let format = match params.format.as_deref().map(str::parse::<Format>) {
        Some(Ok(f @ (Format::Csv | Format::Jsonl | Format::Parquet))) => f,
        Some(Ok(_)) => {
            return super::state::ApiError::new(StatusCode::BAD_REQUEST, "Touchpoints exports need a mapping: ingest them with `cxlake ingest --mapping`")
                .into_response()
        }
        _ => return super::state::ApiError::new(StatusCode::BAD_REQUEST, "format must be csv, jsonl or parquet").into_response(),
    };
    let table = match params.table.as_deref() {
        None | Some("responses") => None,
        Some(t) => match t.parse::<cx_domain::observations::ObservationTable>() {
            Ok(t) => Some(t),
            Err(e) => return super::state::ApiError::new(StatusCode::BAD_REQUEST, format!("{e}, or responses")).into_response(),
        },
    };
    let name = params.name.clone().unwrap_or_else(|| format!("upload.{format:?}").to_lowercase());
    // Spool the body, refusing it past the limit.
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return super::state::ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("no room for the upload: {e}")).into_response(),
    };
    let path = dir.path().join("upload");
    let spooled = async {
        use tokio::io::AsyncReadExt;
        let mut file = tokio::fs::File::create(&path).await?;
        let mut limited = body.into_async_read().take(MAX_UPLOAD_BYTES + 1);
        let n = tokio::io::copy(&mut limited, &mut file).await?;
        file.sync_all().await?;
        Ok::<u64, std::io::Error>(n)
    };
    match spooled.await {
        Ok(n) if n > MAX_UPLOAD_BYTES => {
            return super::state::ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("uploads are at most {MAX_UPLOAD_BYTES} bytes")).into_response()
        }
        Ok(_) => {}
        Err(e) => return super::state::ApiError::new(StatusCode::BAD_REQUEST, format!("reading the upload: {e}")).into_response(),
    }
    super::state::current_version_refreshed(&state).await;
    let opts = OpenOptions {
        inventory: submitter.inventory().as_ref().clone(),
        now: chrono::Utc::now(),
        agency,
        source_name: Some(format!("upload:{name}")),
        ..Default::default()
    };
    let lake = state.lake.clone();
    let who = principal.role.label();
    let result = tokio::task::spawn_blocking(move || {
        let summary = match table {
            None => cx_ingest::pipeline::ingest_file(&lake, &path, format, &opts, &|_| {}),
            Some(t) => cx_lake::commit::WriteLock::acquire(&lake)
                .map_err(Into::into)
                .and_then(|lock| cx_ingest::observations::ingest_file(&lock, &path, format, t, &opts)),
        };
        drop(dir);
        summary
    })
    .await;
    match result {
        Ok(Ok(summary)) => {
            tracing::info!(role = %who, source = %summary.source, stored = summary.rows_stored, quarantined = summary.rows_quarantined, "upload ingested");
            state.metrics.ingested.inc_by(summary.rows_stored);
            state.metrics.quarantined.inc_by(summary.rows_quarantined);
            reply(StatusCode::OK, serde_json::to_value(summary).unwrap_or_default())
        }
        Ok(Err(e)) => super::state::ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
        Err(e) => super::state::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("ingest task failed: {e}")).into_response(),
    }
}
