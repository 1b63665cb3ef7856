//! The quarterly HISP report as files: CSV (the data rows in performance.gov's column layout)
//! and XLSX (the same rows on a `data` sheet, and an `about` sheet with the due date and its
//! source, the suppression rule and the designated services without data), and
//! `GET /v1/reports/hisp?fiscalYear=Y&quarter=Q&format=csv|xlsx[&agency=A]`.

use super::state::{ApiError, State};
use cx_analytics::hisp::{HispQuery, HispReport, ReportValue};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{handler, IntoResponse};
use std::sync::Arc;

/// The report's data rows as CSV, with the header of `domain::hisp::columns()`.
pub fn csv_bytes(report: &HispReport) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(cx_domain::hisp::columns()).expect("write to memory");
    for row in &report.rows {
        let cells: Vec<String> = row
            .cells(report.quarter)
            .into_iter()
            .map(|c| match c {
                ReportValue::Text(t) => t,
                ReportValue::Int(n) => n.to_string(),
                ReportValue::Empty => String::new(),
            })
            .collect();
        w.write_record(cells).expect("write to memory");
    }
    w.into_inner().expect("flush to memory")
}

/// The report as an XLSX workbook.
pub fn xlsx_bytes(report: &HispReport) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let data = book.add_worksheet().set_name("data")?;
    for (j, c) in cx_domain::hisp::columns().iter().enumerate() {
        data.write_string_with_format(0, j as u16, c, &bold)?;
    }
    for (i, row) in report.rows.iter().enumerate() {
        for (j, cell) in row.cells(report.quarter).into_iter().enumerate() {
            let (r, c) = (i as u32 + 1, j as u16);
            match cell {
                ReportValue::Text(t) => {
                    data.write_string(r, c, t)?;
                }
                ReportValue::Int(n) => {
                    data.write_number(r, c, n as f64)?;
                }
                ReportValue::Empty => {}
            }
        }
    }
    data.set_freeze_panes(1, 0)?;
    let about = book.add_worksheet().set_name("about")?;
    let lines: Vec<(String, String)> = vec![
        ("report".into(), format!("HISP quarterly CX data, FY{} Q{}", report.quarter.year, report.quarter.quarter)),
        ("due_date".into(), report.due.date.to_string()),
        ("due_date_source".into(), report.due.source.as_str().to_string()),
        ("due_statement".into(), report.due_statement()),
        (
            "suppression".into(),
            format!("questions with fewer than {} answers in a row have their counts withheld (listed in suppressed_questions)", report.min_cell),
        ),
        ("counts".into(), counts_statement(report).into()),
        ("generated_by".into(), format!("cxlake {}", env!("CARGO_PKG_VERSION"))),
    ];
    for (i, (k, v)) in lines.iter().enumerate() {
        about.write_string_with_format(i as u32, 0, k, &bold)?;
        about.write_string(i as u32, 1, v)?;
    }
    let start = lines.len() as u32 + 1;
    about.write_string_with_format(start, 0, "designated services without data", &bold)?;
    for (j, h) in ["service_id", "service_name", "department_abbreviation", "service_provider_id"].iter().enumerate() {
        about.write_string_with_format(start + 1, j as u16, *h, &bold)?;
    }
    for (i, s) in report.services_without_data.iter().enumerate() {
        let r = start + 2 + i as u32;
        about.write_string(r, 0, &s.id)?;
        about.write_string(r, 1, &s.name)?;
        about.write_string(r, 2, &s.agency)?;
        about.write_string(r, 3, &s.bureau)?;
    }
    book.save_to_buffer()
}

/// Whether the counts are exact or perturbed, in words.
fn counts_statement(report: &HispReport) -> &'static str {
    if report.perturbed {
        "perturbed: each count of answers, each question's n and the respondents are perturbed by the cell-key method (at most 2 either way, zero on average), as every count published to the public role is"
    } else {
        "exact"
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct HispParams {
    fiscal_year: i32,
    quarter: u32,
    format: Option<String>,
    agency: Option<String>,
}

/// `GET /v1/reports/hisp`: the report as CSV (default) or XLSX; the due date, its source and
/// the number of designated services without data in `x-cxlake-*` headers.
#[handler]
pub async fn hisp_download(req: &poem::Request, state: Data<&Arc<State>>) -> poem::Response {
    let bad = |message: String| ApiError::bad_request(message).into_response();
    let params = match req.params::<HispParams>() {
        Ok(p) => p,
        Err(e) => return bad(format!("expected ?fiscalYear=Y&quarter=Q[&format=csv|xlsx][&agency=A]: {e}")),
    };
    let quarter = match super::telemetry::fiscal_quarter(params.fiscal_year, params.quarter) {
        Ok(q) => q,
        Err(e) => return bad(e.to_string()),
    };
    let xlsx = match params.format.as_deref() {
        None | Some("csv") => false,
        Some("xlsx") => true,
        Some(other) => return bad(format!("format '{other}': expected csv or xlsx")),
    };
    // The public role's counts are perturbed here as in `hispReport`.
    let exact = req.extensions().get::<crate::auth::Principal>().is_some_and(|p| p.role.exact_counts());
    let analytics = if exact {
        state.analytics.clone()
    } else {
        match state.analytics.perturbed().await {
            Ok(a) => a,
            Err(e) => return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    };
    let q = HispQuery { quarter, agencies: params.agency.map(|a| vec![a]) };
    let report = match analytics.hisp_report(&q).await {
        Ok(r) => r,
        Err(e @ cx_analytics::AnalyticsError::Invalid { .. }) => return bad(e.to_string()),
        Err(e @ cx_analytics::AnalyticsError::Busy { .. }) => {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).with_header("retry-after", "1").into_response()
        }
        Err(e) => return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let name = format!("hisp-FY{}Q{}", quarter.year, quarter.quarter);
    let (body, content_type, ext) = if xlsx {
        match xlsx_bytes(&report) {
            Ok(b) => (b, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    } else {
        (csv_bytes(&report), "text/csv; charset=utf-8", "csv")
    };
    poem::Response::builder()
        .content_type(content_type)
        .header("content-disposition", format!("attachment; filename=\"{name}.{ext}\""))
        .header("x-cxlake-due-date", report.due.date.to_string())
        .header("x-cxlake-due-date-source", report.due.source.as_str().to_string())
        .header("x-cxlake-services-without-data", report.services_without_data.len().to_string())
        .header("x-cxlake-counts", if report.perturbed { "perturbed" } else { "exact" })
        .body(body)
}
