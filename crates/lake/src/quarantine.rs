//! The quarantine table: rows that could not be stored, one row per problem, with the source,
//! line, column, reason and the raw input, so they can be fixed and ingested again.
//!
//! `<lake>/quarantine/part-<run>.parquet`, written atomically like data files; plain Parquet
//! any engine reads.

use super::error::StoreError;
use super::lake::Lake;
use super::writer::{parquet_properties, AtomicParquetWriter};
use arrow::array::{ArrayRef, RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, LazyLock};

pub const QUARANTINE_DIR: &str = "quarantine";

/// Longest raw input kept per quarantined row, in bytes.
pub const MAX_RAW: usize = 4096;

/// One problem of one input row.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineRow {
    /// The source file (or `submit`).
    pub source: String,
    /// 1-based line (CSV, JSON lines) or row (Parquet) in the source.
    pub line: Option<u64>,
    pub column: Option<String>,
    pub reason: String,
    pub raw: Option<String>,
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("quarantined_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("source", DataType::Utf8, false),
        Field::new("line", DataType::UInt64, true),
        Field::new("column", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, true),
    ]))
});

/// Truncates `raw` to at most `MAX_RAW` bytes on a character boundary.
pub fn clip(raw: &str) -> String {
    if raw.len() <= MAX_RAW {
        return raw.to_string();
    }
    let mut end = MAX_RAW;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &raw[..end])
}

/// What identifies one recorded problem of one source row: the source, line, column, reason
/// and raw input (as stored, clipped).
type RowKey = [u8; 16];

fn row_key(source: &str, line: Option<u64>, column: Option<&str>, reason: &str, raw: Option<&str>) -> RowKey {
    let mut h = blake3::Hasher::new();
    for part in [Some(source), line.map(|l| l.to_string()).as_deref(), column, Some(reason), raw] {
        match part {
            // Length-prefixed, so no two different tuples hash the same bytes.
            Some(p) => h.update(&[1]).update(&(p.len() as u64).to_le_bytes()).update(p.as_bytes()),
            None => h.update(&[0]),
        };
    }
    h.finalize().as_bytes()[..16].try_into().expect("16 bytes")
}

/// The keys of the problems the quarantine table already records for `source`.
fn recorded(lake: &Lake, source: &str) -> Result<std::collections::HashSet<RowKey>, StoreError> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::UInt64Type;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let objects = lake.objects();
    let mut keys = std::collections::HashSet::new();
    for (rel, _) in objects.list(QUARANTINE_DIR)? {
        if !rel.ends_with(".parquet") {
            continue;
        }
        let unreadable = |reason: String| StoreError::Read { path: objects.url(&rel), reason };
        let Some(bytes) = objects.read(&rel)? else { continue };
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| unreadable(e.to_string()))?;
        let wanted = ["source", "line", "column", "reason", "raw"];
        let mask = parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), wanted);
        for batch in builder.with_projection(mask).build().map_err(|e| unreadable(e.to_string()))? {
            let batch = batch.map_err(|e| unreadable(e.to_string()))?;
            let text = |name: &str| batch.column_by_name(name).map(|c| c.as_string::<i32>().clone());
            let (Some(src), Some(column), Some(reason), Some(raw)) = (text("source"), text("column"), text("reason"), text("raw")) else {
                return Err(unreadable("not a quarantine file (missing columns)".into()));
            };
            let line = batch.column_by_name("line").map(|c| c.as_primitive::<UInt64Type>().clone());
            let Some(line) = line else { return Err(unreadable("not a quarantine file (no line column)".into())) };
            for i in 0..batch.num_rows() {
                if src.value(i) != source {
                    continue;
                }
                let (column, raw) = ((!column.is_null(i)).then(|| column.value(i)), (!raw.is_null(i)).then(|| raw.value(i)));
                keys.insert(row_key(source, (!line.is_null(i)).then(|| line.value(i)), column, reason.value(i), raw));
            }
        }
    }
    Ok(keys)
}

/// Streams quarantined rows of one run into one file, created on the first row.
pub struct QuarantineWriter {
    lake: Lake,
    run_id: String,
    pending: Vec<QuarantineRow>,
    writer: Option<AtomicParquetWriter>,
    pub rows: u64,
    /// For a file ingest: the problems already recorded for its source (read on the first
    /// quarantined row), which are not recorded again when the file is ingested again.
    recorded: Option<(String, Option<std::collections::HashSet<RowKey>>)>,
    /// Rows not written because the quarantine table already held them.
    pub already_recorded: u64,
}

impl QuarantineWriter {
    pub fn new(lake: &Lake, run_id: &str) -> Self {
        QuarantineWriter { lake: lake.clone(), run_id: run_id.to_string(), pending: Vec::new(), writer: None, rows: 0, recorded: None, already_recorded: 0 }
    }

    /// A writer for the rows of one source file that leaves out the problems the quarantine
    /// table already records for the same source, line, column, reason and raw input (a retry
    /// of the same file does not grow the table).
    pub fn for_source(lake: &Lake, run_id: &str, source: &str) -> Self {
        QuarantineWriter { recorded: Some((source.to_string(), None)), ..Self::new(lake, run_id) }
    }

    pub fn push(&mut self, row: QuarantineRow) -> Result<(), StoreError> {
        if let Some((source, known)) = &mut self.recorded {
            if row.source == *source {
                if known.is_none() {
                    // Leaving out what is recorded is a courtesy: if the table cannot be read
                    // (a stray file, a transient error) the row is recorded again, never lost.
                    *known = Some(recorded(&self.lake, source).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "cannot read the quarantine table; problems recorded before may be recorded again");
                        Default::default()
                    }));
                }
                let raw = row.raw.as_deref().map(clip);
                let key = row_key(&row.source, row.line, row.column.as_deref(), &row.reason, raw.as_deref());
                if known.as_ref().is_some_and(|k| k.contains(&key)) {
                    self.already_recorded += 1;
                    return Ok(());
                }
            }
        }
        self.pending.push(row);
        self.rows += 1;
        if self.pending.len() >= 8192 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() {
            let target = format!("{QUARANTINE_DIR}/part-{}.parquet", self.run_id);
            self.writer = Some(AtomicParquetWriter::in_lake(&self.lake, &target, SCHEMA.clone(), parquet_properties(&["raw"]))?);
        }
        let now = chrono::Utc::now().timestamp_micros();
        let n = self.pending.len();
        let (mut run, mut at, mut source, mut line, mut column, mut reason, mut raw) = (
            StringBuilder::new(),
            TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
            StringBuilder::new(),
            UInt64Builder::with_capacity(n),
            StringBuilder::new(),
            StringBuilder::new(),
            StringBuilder::new(),
        );
        for r in self.pending.drain(..) {
            run.append_value(&self.run_id);
            at.append_value(now);
            source.append_value(&r.source);
            line.append_option(r.line);
            column.append_option(r.column.as_deref());
            reason.append_value(&r.reason);
            raw.append_option(r.raw.as_deref().map(clip));
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(run.finish()),
            Arc::new(at.finish()),
            Arc::new(source.finish()),
            Arc::new(line.finish()),
            Arc::new(column.finish()),
            Arc::new(reason.finish()),
            Arc::new(raw.finish()),
        ];
        let batch = RecordBatch::try_new(SCHEMA.clone(), cols).expect("quarantine batch matches its schema");
        self.writer.as_mut().expect("writer created above").write(&batch)
    }

    /// Publishes the file (if any row was quarantined); returns its path relative to the lake.
    pub fn finish(mut self) -> Result<Option<String>, StoreError> {
        self.flush()?;
        match self.writer.take() {
            None => Ok(None),
            Some(w) => {
                w.finish()?;
                Ok(Some(format!("{QUARANTINE_DIR}/part-{}.parquet", self.run_id)))
            }
        }
    }
}
