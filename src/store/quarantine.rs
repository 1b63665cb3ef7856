//! The quarantine table: rows that could not be stored, one row per problem, with the source,
//! line, column, reason and the raw input, so they can be fixed and ingested again.
//!
//! `<lake>/quarantine/part-<run>.parquet`, written atomically like data files; plain Parquet
//! any engine reads.

use super::lake::{Lake, StoreError};
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

/// Streams quarantined rows of one run into one file, created on the first row.
pub struct QuarantineWriter {
    lake: Lake,
    run_id: String,
    pending: Vec<QuarantineRow>,
    writer: Option<AtomicParquetWriter>,
    pub rows: u64,
}

impl QuarantineWriter {
    pub fn new(lake: &Lake, run_id: &str) -> Self {
        QuarantineWriter { lake: lake.clone(), run_id: run_id.to_string(), pending: Vec::new(), writer: None, rows: 0 }
    }

    pub fn push(&mut self, row: QuarantineRow) -> Result<(), StoreError> {
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
