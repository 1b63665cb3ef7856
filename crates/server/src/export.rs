//! `GET /v1/export`: raw response rows of the partitions a filter admits, streamed as Arrow IPC,
//! CSV or Parquet while they are read (bounded memory: one batch in flight plus the encoder's
//! current row group), for notebooks and BI tools that want the rows themselves.
//!
//! Parameters: `format=parquet|arrow|csv` (default parquet), `agency=VA,SSA`, `from=FY2024Q1`,
//! `to=FY2025Q4` (fiscal quarters, inclusive). Filters select whole partitions.
//!
//! A failure after the headers were sent (an unreadable data file) cannot change the status:
//! the transfer is aborted instead (no terminating chunk, the connection closed:
//! `connection.rs`), so no client takes a partial export for a whole one. CSV also gets a last
//! line `# cxlake export failed: <reason naming the file>` before the abort; Arrow and Parquet
//! have no place for an error record (the stream lacks its end marker, the file its footer).

use super::connection::Abort;
use super::download::{TableFormat, TableSink};
use super::state::State;
use cx_domain::{FiscalQuarter, PeriodUnit};
use cx_lake::export::{export, EXPORT_SCHEMA};
use cx_lake::PartitionFilter;
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::IntoResponse;
use poem::{handler, Body};
use std::sync::Arc;

#[derive(serde::Deserialize)]
pub struct ExportParams {
    format: Option<String>,
    agency: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn bad(message: String) -> poem::Response {
    super::state::ApiError::new(StatusCode::BAD_REQUEST, message).into_response()
}

fn quarter(param: &str, label: &str) -> Result<FiscalQuarter, String> {
    PeriodUnit::FiscalQuarter
        .parse(label)
        .map(|p| FiscalQuarter::of(p.start))
        .ok_or_else(|| format!("{param}: '{label}' is not a fiscal quarter such as FY2025Q1"))
}

/// Sends what the encoder writes to the response body in chunks of about 1 MB.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = bytes::Bytes::from(std::mem::take(&mut self.buf));
            self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))?;
        }
        Ok(())
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        // The encoders' last bytes (a Parquet footer, the end of an Arrow stream).
        let _ = std::io::Write::flush(self);
    }
}

#[handler]
pub async fn export_rows(
    req: &poem::Request,
    params: Query<ExportParams>,
    state: Data<&Arc<State>>,
    principal: Data<&crate::auth::Principal>,
) -> poem::Response {
    let format = match params.format.as_deref() {
        None => TableFormat::Parquet,
        Some(f) => match TableFormat::from_param(f) {
            Some(f) => f,
            None => return bad(format!("format '{f}': expected arrow, csv or parquet")),
        },
    };
    let mut filter = PartitionFilter::default();
    let asked: Option<Vec<String>> = params.agency.as_ref().map(|a| a.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect());
    match principal.role.raw_agencies(asked.as_deref()) {
        Ok(agencies) => filter.agencies = agencies.map(|a| a.into_iter().collect()),
        Err(reason) => return super::state::ApiError::forbidden(&principal, reason).into_response(),
    }
    let range = (params.from.as_deref().map(|l| quarter("from", l)), params.to.as_deref().map(|l| quarter("to", l)));
    match range {
        (Some(Err(e)), _) | (_, Some(Err(e))) => return bad(e),
        (from, to) => {
            if from.is_some() || to.is_some() {
                let lo = from.and_then(Result::ok).unwrap_or(FiscalQuarter::new(1900, 1));
                let hi = to.and_then(Result::ok).unwrap_or(FiscalQuarter::new(9999, 4));
                filter.quarters = Some((lo, hi));
            }
        }
    }
    let files = match state.lake.response_files(&filter).await {
        Ok(f) => f,
        Err(e) => return bad(e.to_string()),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let lake = state.lake.clone();
    tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter { tx: tx.clone(), buf: Vec::new() };
        let result = (|| -> Result<u64, String> {
            let mut sink = TableSink::new(writer, &EXPORT_SCHEMA, format)?;
            let rows = export(&lake, &files, |batch| sink.write(&batch).map_err(|reason| cx_lake::StoreError::Write { path: "export".into(), reason }))
                .map_err(|e| e.to_string())?;
            sink.finish()?;
            Ok(rows)
        })();
        match result {
            Ok(rows) => tracing::info!(rows, files = files.len(), "export streamed"),
            Err(e) => {
                tracing::error!(error = %e, "export failed; the transfer is aborted");
                if format == TableFormat::Csv {
                    let line = format!("# cxlake export failed: {}\n", e.replace(['\r', '\n'], " "));
                    let _ = tx.blocking_send(Ok(bytes::Bytes::from(line)));
                }
                let _ = tx.blocking_send(Err(std::io::Error::other(e)));
            }
        }
    });
    // The body's error aborts the connection: a client must not see a clean end.
    let stream = Abort::of(req).on_error(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let ext = format.extension();
    poem::Response::builder()
        .content_type(format.content_type())
        .header("content-disposition", format!("attachment; filename=\"responses.{ext}\""))
        .body(Body::from_bytes_stream(stream))
}
