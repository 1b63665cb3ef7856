//! Parquet sources with lake column names, from this lake or any engine (column types are cast
//! to the lake's: integer widths, string views, timestamp units and zones). `agency` may come
//! from an `agency=` directory of the path, as in a hive-partitioned export.

use super::{parse_row, ParsedRow, Source, CHUNK_ROWS};
use crate::fields::{col, input_column, Fields, INPUT_COLUMNS};
use crate::IngestError;
use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, Utc};
use cx_domain::validate::Problem;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use rayon::prelude::*;
use std::borrow::Cow;
use std::fs::File;
use std::path::Path;

/// Typed column of one batch.
enum Column {
    Absent,
    Constant(String),
    Text(StringArray),
    Int(Int64Array),
    Flag(BooleanArray),
    Real(Float64Array),
    Time(TimestampMicrosecondArray),
}

fn target_type(c: usize) -> DataType {
    match c {
        col::SUBMITTED_AT => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        c if (col::TRUST..col::POSITIVE).contains(&c) => DataType::Int64,
        c if (col::POSITIVE..col::FREE_TEXT_1).contains(&c) => DataType::Boolean,
        col::WEIGHT => DataType::Float64,
        _ => DataType::Utf8,
    }
}

struct ParquetRow<'a> {
    cols: &'a [Column],
    row: usize,
}

impl Fields for ParquetRow<'_> {
    fn text(&self, column: usize) -> Result<Option<Cow<'_, str>>, Problem> {
        let i = self.row;
        Ok(match &self.cols[column] {
            Column::Absent => None,
            Column::Constant(v) => Some(Cow::Borrowed(v.as_str())),
            Column::Text(a) => (a.is_valid(i) && !a.value(i).is_empty()).then(|| Cow::Borrowed(a.value(i))),
            Column::Int(a) => a.is_valid(i).then(|| Cow::Owned(a.value(i).to_string())),
            Column::Flag(a) => a.is_valid(i).then(|| Cow::Owned(a.value(i).to_string())),
            Column::Real(a) => a.is_valid(i).then(|| Cow::Owned(a.value(i).to_string())),
            Column::Time(a) => a.is_valid(i).then(|| Cow::Owned(a.value(i).to_string())),
        })
    }

    fn int(&self, column: usize) -> Result<Option<i64>, Problem> {
        match &self.cols[column] {
            Column::Int(a) => Ok(a.is_valid(self.row).then(|| a.value(self.row))),
            _ => Ok(None),
        }
    }

    fn flag(&self, column: usize) -> Result<Option<bool>, Problem> {
        match &self.cols[column] {
            Column::Flag(a) => Ok(a.is_valid(self.row).then(|| a.value(self.row))),
            _ => Ok(None),
        }
    }

    fn real(&self, column: usize) -> Result<Option<f64>, Problem> {
        match &self.cols[column] {
            Column::Real(a) => Ok(a.is_valid(self.row).then(|| a.value(self.row))),
            _ => Ok(None),
        }
    }

    fn timestamp(&self, column: usize) -> Result<Option<DateTime<Utc>>, Problem> {
        match &self.cols[column] {
            Column::Time(a) if a.is_valid(self.row) => Ok(DateTime::from_timestamp_micros(a.value(self.row))),
            _ => Ok(None),
        }
    }
}

/// The `agency=X` directory of a path, if any.
fn agency_from_path(path: &Path) -> Option<String> {
    path.components().rev().find_map(|c| c.as_os_str().to_str()?.strip_prefix("agency=").map(str::to_string))
}

/// A Parquet file read batch by batch.
pub struct ParquetSource {
    path: String,
    reader: ParquetRecordBatchReader,
    /// Position in the file's schema of each input column.
    positions: Vec<Option<usize>>,
    agency: Option<String>,
    row: u64,
    now: DateTime<Utc>,
}

impl ParquetSource {
    pub fn open(path: &Path, now: DateTime<Utc>) -> Result<ParquetSource, IngestError> {
        let shown = path.display().to_string();
        let malformed = |message: String| IngestError::Malformed { path: shown.clone(), line: 0, message };
        let file = File::open(path).map_err(|source| IngestError::Io { path: shown.clone(), source })?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| malformed(format!("is not a readable Parquet file: {e}")))?;
        let mut positions = vec![None; col::COUNT];
        for (i, field) in builder.schema().fields().iter().enumerate() {
            let name = field.name();
            if ["fiscal_year", "fiscal_quarter"].contains(&name.as_str()) {
                continue;
            }
            let c = input_column(name).ok_or_else(|| {
                malformed(format!("wrong schema: unknown column '{}' (expected lake columns: {})", name.escape_debug(), INPUT_COLUMNS.join(", ")))
            })?;
            positions[c] = Some(i);
        }
        let agency = if positions[col::AGENCY].is_none() { agency_from_path(path) } else { None };
        let missing: Vec<&str> = [col::RESPONSE_ID, col::SUBMITTED_AT, col::SERVICE_ID, col::SCALE]
            .into_iter()
            .filter(|c| positions[*c].is_none())
            .chain((positions[col::AGENCY].is_none() && agency.is_none()).then_some(col::AGENCY))
            .map(|c| INPUT_COLUMNS[c].as_str())
            .collect();
        if !missing.is_empty() {
            return Err(malformed(format!("wrong schema: missing required column(s): {}", missing.join(", "))));
        }
        let reader = builder.with_batch_size(CHUNK_ROWS).build().map_err(|e| malformed(e.to_string()))?;
        Ok(ParquetSource { path: shown, reader, positions, agency, row: 0, now })
    }

    fn typed(&self, batch: &RecordBatch) -> Result<Vec<Column>, IngestError> {
        let opts = CastOptions { safe: false, ..Default::default() };
        (0..col::COUNT)
            .map(|c| {
                let Some(p) = self.positions[c] else {
                    return Ok(match (c, &self.agency) {
                        (col::AGENCY, Some(a)) => Column::Constant(a.clone()),
                        _ => Column::Absent,
                    });
                };
                let ty = target_type(c);
                let cast: ArrayRef = cast_with_options(batch.column(p), &ty, &opts).map_err(|e| IngestError::Malformed {
                    path: self.path.clone(),
                    line: self.row + 1,
                    message: format!("column '{}' is {} and cannot be read as {ty}: {e}", INPUT_COLUMNS[c], batch.column(p).data_type()),
                })?;
                let any = cast.as_any();
                Ok(match ty {
                    DataType::Int64 => Column::Int(any.downcast_ref::<Int64Array>().expect("cast to Int64").clone()),
                    DataType::Boolean => Column::Flag(any.downcast_ref::<BooleanArray>().expect("cast to Boolean").clone()),
                    DataType::Float64 => Column::Real(any.downcast_ref::<Float64Array>().expect("cast to Float64").clone()),
                    DataType::Timestamp(..) => Column::Time(any.downcast_ref::<TimestampMicrosecondArray>().expect("cast to timestamp").clone()),
                    _ => Column::Text(any.downcast_ref::<StringArray>().expect("cast to Utf8").clone()),
                })
            })
            .collect()
    }
}

impl Source for ParquetSource {
    fn next_chunk(&mut self) -> Result<Option<Vec<ParsedRow>>, IngestError> {
        let Some(batch) = self.reader.next() else {
            if self.row == 0 {
                return Err(IngestError::Malformed { path: self.path.clone(), line: 0, message: "has no rows".into() });
            }
            return Ok(None);
        };
        let batch = batch.map_err(|e| IngestError::Malformed { path: self.path.clone(), line: self.row + 1, message: e.to_string() })?;
        let cols = self.typed(&batch)?;
        let (first, now) = (self.row + 1, self.now);
        self.row += batch.num_rows() as u64;
        let rows = (0..batch.num_rows())
            .into_par_iter()
            .map(|row| {
                let r = ParquetRow { cols: &cols, row };
                parse_row(&r, first + row as u64, now, || {
                    (0..col::COUNT).filter_map(|c| r.text(c).ok().flatten().map(|v| format!("{}={v}", INPUT_COLUMNS[c]))).collect::<Vec<_>>().join(", ")
                })
            })
            .collect();
        Ok(Some(rows))
    }
}
