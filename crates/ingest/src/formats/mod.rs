//! Input formats. Each opens a file as a `Source` that yields parsed rows in chunks (rows are
//! converted in parallel within a chunk); structural problems (encoding, ragged rows, headers)
//! are errors naming the file and line, problems of values are per row.

pub mod csv;
pub mod json;
pub mod parquet;
pub mod touchpoints;

use super::fields::Fields;
use super::IngestError;
use chrono::{DateTime, Utc};
use cx_domain::validate::{Inventory, Problem, Response};
use std::path::Path;

/// Rows converted per chunk.
pub const CHUNK_ROWS: usize = 16 * 1024;

/// The formats `cxlake ingest` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header of lake column names (`agency`, `response_id`, `submitted_at`, ...).
    Csv,
    /// One JSON object per line with lake column names.
    Jsonl,
    /// Parquet with lake column names (`agency` may come from an `agency=` path segment).
    Parquet,
    /// Touchpoints A-11 v2 response export (thumbs or Likert question_1 and tapped indicators).
    TouchpointsV2,
    /// Touchpoints A-11 v1 export: Likert items question_1..question_N.
    TouchpointsV1,
}

impl Format {
    pub const ALL: [Format; 5] = [Format::Csv, Format::Jsonl, Format::Parquet, Format::TouchpointsV2, Format::TouchpointsV1];

    /// The name `--format` and `format=` take.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
            Format::TouchpointsV2 => "touchpoints-v2",
            Format::TouchpointsV1 => "touchpoints-v1",
        }
    }

    /// The format a file name implies (`.csv`, `.jsonl`/`.ndjson`/`.json`, `.parquet`).
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        match name.rsplit('.').next()? {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    /// A format by its name, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown format '{}' (one of {})", s.escape_debug(), Format::ALL.map(Format::name).join(", ")))
    }
}

/// One input row, parsed.
#[derive(Debug)]
pub struct ParsedRow {
    /// 1-based line (text formats) or row (Parquet) in the source.
    pub line: u64,
    pub result: Result<Response, Vec<Problem>>,
    /// The raw input, kept only for rows with problems.
    pub raw: Option<String>,
}

/// Parses one row; the raw text is taken only when it has problems.
pub(crate) fn parse_row<F: Fields + ?Sized>(f: &F, line: u64, now: DateTime<Utc>, raw: impl FnOnce() -> String) -> ParsedRow {
    let result = super::fields::parse_response(f, now);
    let raw = result.is_err().then(raw);
    ParsedRow { line, result, raw }
}

/// A file being read.
pub trait Source: Send {
    /// The next chunk of rows, `None` at the end.
    fn next_chunk(&mut self) -> Result<Option<Vec<ParsedRow>>, IngestError>;
}

/// What the command line says about a file beyond its rows: the Touchpoints coding.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    pub mapping: touchpoints::Mapping,
    pub inventory: Inventory,
    /// Timestamps after this are rejected.
    pub now: DateTime<Utc>,
    /// Only rows of this agency are stored (a collector's upload); others are quarantined.
    pub agency: Option<String>,
    /// The name the source goes by in summaries, quarantine and commit records (default:
    /// its path).
    pub source_name: Option<String>,
}

impl OpenOptions {
    /// What identifies one ingest of `path` into `table`: the file's bytes and every option that
    /// changes what is stored from them (the format, the Touchpoints coding, an agency
    /// restriction). The same bytes under a corrected mapping are another unit of work.
    pub fn ingest_key(&self, path: &Path, format: Format, table: &str) -> Result<String, IngestError> {
        let options = serde_json::json!({
            "format": format!("{format:?}"),
            "table": table,
            "agency": self.agency,
            "mapping": matches!(format, Format::TouchpointsV1 | Format::TouchpointsV2).then_some(&self.mapping),
        });
        let mut h = blake3::Hasher::new();
        h.update(cx_lake::commit::file_digest(path)?.as_bytes());
        h.update(options.to_string().as_bytes());
        Ok(h.finalize().to_hex().to_string())
    }
}

/// Opens `path` in `format`.
pub fn open(path: &Path, format: Format, opts: &OpenOptions) -> Result<Box<dyn Source>, IngestError> {
    Ok(match format {
        Format::Csv => Box::new(csv::CsvSource::open(path, opts.now, csv::lake_layout)?),
        Format::TouchpointsV2 | Format::TouchpointsV1 => {
            let layout = touchpoints::layout_fn(format, &opts.mapping, &opts.inventory)?;
            Box::new(csv::CsvSource::open(path, opts.now, layout)?)
        }
        Format::Jsonl => Box::new(json::JsonLinesSource::open(path, opts.now)?),
        Format::Parquet => Box::new(parquet::ParquetSource::open(path, opts.now)?),
    })
}
