//! CSV sources: the lake's own columns, or any layout that maps file columns (and constants)
//! onto the input columns (the Touchpoints exports).

use super::{parse_row, ParsedRow, Source, CHUNK_ROWS};
use crate::fields::{col, input_column, Fields, INPUT_COLUMNS};
use crate::IngestError;
use chrono::{DateTime, Utc};
use csv::StringRecord;
use cx_domain::validate::Problem;
use rayon::prelude::*;
use std::borrow::Cow;
use std::fs::File;
use std::path::Path;

/// Where the value of one input column comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldSource {
    Absent,
    /// A column of the file, by position.
    Column(usize),
    /// The same value for every row (Touchpoints coding from the sidecar or flags).
    Constant(String),
    /// A column of the file, or when it is empty this prefix followed by the line number.
    ColumnOrLine(usize, String),
}

/// How a file's columns map onto the input columns (`INPUT_COLUMNS` order).
#[derive(Debug, Clone)]
pub struct CsvLayout {
    pub sources: Vec<FieldSource>,
}

/// Builds a layout from a file's header, or says what is wrong with the header.
pub type LayoutFn = Box<dyn FnOnce(&StringRecord) -> Result<CsvLayout, String> + Send>;

/// Columns that may appear in exports of a hive lake and are derived, not read.
const DERIVED: [&str; 2] = ["fiscal_year", "fiscal_quarter"];

/// The lake's own layout: every header name is a lake column, each at most once.
pub fn lake_layout(header: &StringRecord) -> Result<CsvLayout, String> {
    let mut sources = vec![FieldSource::Absent; col::COUNT];
    for (i, name) in header.iter().enumerate() {
        let name = name.trim();
        if DERIVED.contains(&name) {
            continue;
        }
        let c = input_column(name).ok_or_else(|| match super::touchpoints::looks_like(header.iter()) {
            Some(format) => format!(
                "unknown column '{}': the header looks like a Touchpoints A-11 {} export; ingest it with --format {} and its coding (--mapping SIDECAR.toml or flags)",
                name.escape_debug(),
                format.name().trim_start_matches("touchpoints-"),
                format.name(),
            ),
            None => format!("unknown column '{}' (expected lake columns: {})", name.escape_debug(), INPUT_COLUMNS.join(", ")),
        })?;
        if sources[c] != FieldSource::Absent {
            return Err(format!("column '{name}' appears twice"));
        }
        sources[c] = FieldSource::Column(i);
    }
    let missing: Vec<&str> = [col::AGENCY, col::RESPONSE_ID, col::SUBMITTED_AT, col::SERVICE_ID, col::SCALE]
        .into_iter()
        .filter(|c| sources[*c] == FieldSource::Absent)
        .map(|c| INPUT_COLUMNS[c].as_str())
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing required column(s): {}", missing.join(", ")));
    }
    Ok(CsvLayout { sources })
}

struct CsvRow<'a> {
    rec: &'a StringRecord,
    layout: &'a CsvLayout,
    line: u64,
}

impl Fields for CsvRow<'_> {
    fn text(&self, column: usize) -> Result<Option<Cow<'_, str>>, Problem> {
        let cell = |i: usize| self.rec.get(i).filter(|t| !t.is_empty());
        Ok(match &self.layout.sources[column] {
            FieldSource::Absent => None,
            FieldSource::Column(i) => cell(*i).map(Cow::Borrowed),
            FieldSource::Constant(v) => Some(Cow::Borrowed(v.as_str())),
            FieldSource::ColumnOrLine(i, prefix) => Some(cell(*i).map(Cow::Borrowed).unwrap_or_else(|| Cow::Owned(format!("{prefix}{}", self.line)))),
        })
    }
}

/// Formats a csv error as the file, line and what is wrong.
fn malformed(path: &str, e: csv::Error) -> IngestError {
    let line = e.position().map_or(0, |p| p.line());
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => {
            format!("field {} is not valid UTF-8 (the file must be UTF-8 encoded)", err.field() + 1)
        }
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("has {len} fields where the header has {expected_len}")
        }
        _ => e.to_string(),
    };
    IngestError::Malformed { path: path.to_string(), line, message }
}

/// A CSV file read in chunks: a reader thread parses records ahead while the previous chunk
/// is converted in parallel.
pub struct CsvSource {
    path: String,
    chunks: std::sync::mpsc::Receiver<Result<Vec<StringRecord>, IngestError>>,
    recycle: std::sync::mpsc::SyncSender<Vec<StringRecord>>,
    layout: CsvLayout,
    now: DateTime<Utc>,
    rows: u64,
}

impl CsvSource {
    pub fn open(path: &Path, now: DateTime<Utc>, layout: impl FnOnce(&StringRecord) -> Result<CsvLayout, String>) -> Result<CsvSource, IngestError> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|source| IngestError::Io { path: shown.clone(), source })?;
        let mut reader = csv::ReaderBuilder::new().has_headers(true).buffer_capacity(1 << 20).from_reader(file);
        let mut header = reader.headers().map_err(|e| malformed(&shown, e))?.clone();
        if header.is_empty() || (header.len() == 1 && header[0].trim().is_empty()) {
            return Err(IngestError::Malformed { path: shown, line: 1, message: "is empty (no header line)".into() });
        }
        // A byte-order mark some spreadsheet programs write is not part of the first name.
        if let Some(first) = header.get(0).and_then(|h| h.strip_prefix('\u{feff}')).map(str::to_string) {
            let mut fixed = StringRecord::from(vec![first]);
            fixed.extend(header.iter().skip(1));
            header = fixed;
        }
        let layout = layout(&header).map_err(|message| IngestError::Malformed { path: shown.clone(), line: 1, message: format!("wrong header: {message}") })?;
        let (tx, chunks) = std::sync::mpsc::sync_channel(2);
        let (recycle, recycled) = std::sync::mpsc::sync_channel::<Vec<StringRecord>>(4);
        let thread_path = shown.clone();
        std::thread::Builder::new()
            .name("cxlake-csv".into())
            .spawn(move || loop {
                let mut records = recycled.try_recv().unwrap_or_default();
                records.resize_with(CHUNK_ROWS, StringRecord::new);
                let mut n = 0;
                while n < CHUNK_ROWS {
                    match reader.read_record(&mut records[n]) {
                        Ok(true) => n += 1,
                        Ok(false) => break,
                        Err(e) => {
                            let _ = tx.send(Err(malformed(&thread_path, e)));
                            return;
                        }
                    }
                }
                records.truncate(n);
                if tx.send(Ok(records)).is_err() || n == 0 {
                    return;
                }
            })
            .map_err(|source| IngestError::Io { path: shown.clone(), source })?;
        Ok(CsvSource { path: shown, chunks, recycle, layout, now, rows: 0 })
    }
}

impl Source for CsvSource {
    fn next_chunk(&mut self) -> Result<Option<Vec<ParsedRow>>, IngestError> {
        let records = match self.chunks.recv() {
            Ok(r) => r?,
            Err(_) => Vec::new(),
        };
        self.rows += records.len() as u64;
        if records.is_empty() {
            if self.rows == 0 {
                return Err(IngestError::Malformed { path: self.path.clone(), line: 2, message: "has a header but no rows".into() });
            }
            return Ok(None);
        }
        let (layout, now) = (&self.layout, self.now);
        let rows = records
            .par_iter()
            .map(|rec| {
                let line = rec.position().map_or(0, |p| p.line());
                let row = CsvRow { rec, layout, line };
                parse_row(&row, line, now, || {
                    rec.iter().map(|f| if f.contains(',') { format!("\"{f}\"") } else { f.to_string() }).collect::<Vec<_>>().join(",")
                })
            })
            .collect();
        let _ = self.recycle.try_send(records);
        Ok(Some(rows))
    }
}
