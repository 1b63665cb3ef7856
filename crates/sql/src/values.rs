//! Answers as protocol-neutral columns and cells: the few SQL types the catalog's tables hold
//! (every polars type a query can make maps to one of them; anything else is shown as text), so
//! a wire protocol encodes cells without knowing polars.

use chrono::{NaiveDate, NaiveDateTime};
use polars::prelude::*;

/// A column's SQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Bool,
    Int64,
    Float64,
    Text,
    Date,
    Timestamp,
}

impl SqlType {
    /// The type of a polars column.
    pub fn of(dtype: &DataType) -> SqlType {
        match dtype {
            DataType::Boolean => SqlType::Bool,
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
                SqlType::Int64
            }
            DataType::Float32 | DataType::Float64 => SqlType::Float64,
            DataType::Date => SqlType::Date,
            DataType::Datetime(_, _) => SqlType::Timestamp,
            _ => SqlType::Text,
        }
    }

    /// Its Postgres type: the oid of `pg_type`, the type's name there (`udt_name`), the name
    /// `format_type` and `information_schema.columns.data_type` give, and its length in bytes
    /// (-1: variable).
    pub fn postgres(self) -> (i64, &'static str, &'static str, i64) {
        match self {
            SqlType::Bool => (16, "bool", "boolean", 1),
            SqlType::Int64 => (20, "int8", "bigint", 8),
            SqlType::Float64 => (701, "float8", "double precision", 8),
            SqlType::Text => (25, "text", "text", -1),
            SqlType::Date => (1082, "date", "date", 4),
            SqlType::Timestamp => (1114, "timestamp", "timestamp without time zone", 8),
        }
    }

    pub const ALL: [SqlType; 6] = [SqlType::Bool, SqlType::Int64, SqlType::Float64, SqlType::Text, SqlType::Date, SqlType::Timestamp];
}

/// A result column: its name and SQL type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub ty: SqlType,
}

/// The fields of a schema, in order.
pub fn fields(schema: &Schema) -> Vec<Field> {
    schema.iter().map(|(name, dtype)| Field { name: name.to_string(), ty: SqlType::of(dtype) }).collect()
}

/// One value of a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int64(i64),
    Float64(f64),
    Text(String),
    Date(NaiveDate),
    /// UTC.
    Timestamp(NaiveDateTime),
}

/// Row `i` of `frame`, as cells of the types `fields(frame.schema())` names.
pub fn row(frame: &DataFrame, i: usize) -> Vec<Cell> {
    frame.columns().iter().map(|c| cell(c.get(i).unwrap_or(AnyValue::Null))).collect()
}

fn cell(v: AnyValue) -> Cell {
    match v {
        AnyValue::Null => Cell::Null,
        AnyValue::Boolean(b) => Cell::Bool(b),
        AnyValue::Int8(x) => Cell::Int64(x.into()),
        AnyValue::Int16(x) => Cell::Int64(x.into()),
        AnyValue::Int32(x) => Cell::Int64(x.into()),
        AnyValue::Int64(x) => Cell::Int64(x),
        AnyValue::UInt8(x) => Cell::Int64(x.into()),
        AnyValue::UInt16(x) => Cell::Int64(x.into()),
        AnyValue::UInt32(x) => Cell::Int64(x.into()),
        AnyValue::UInt64(x) => Cell::Int64(i64::try_from(x).unwrap_or(i64::MAX)),
        AnyValue::Float32(x) => Cell::Float64(x.into()),
        AnyValue::Float64(x) => Cell::Float64(x),
        AnyValue::String(s) => Cell::Text(s.to_string()),
        AnyValue::StringOwned(s) => Cell::Text(s.to_string()),
        AnyValue::Date(days) => {
            NaiveDate::from_ymd_opt(1970, 1, 1).and_then(|e| e.checked_add_signed(chrono::Duration::days(days.into()))).map_or(Cell::Null, Cell::Date)
        }
        AnyValue::Datetime(t, unit, _) | AnyValue::DatetimeOwned(t, unit, _) => {
            let micros = match unit {
                TimeUnit::Nanoseconds => t.div_euclid(1000),
                TimeUnit::Microseconds => t,
                TimeUnit::Milliseconds => t.saturating_mul(1000),
            };
            chrono::DateTime::from_timestamp_micros(micros).map_or(Cell::Null, |d| Cell::Timestamp(d.naive_utc()))
        }
        other => Cell::Text(other.to_string()),
    }
}

/// The Arrow type a SQL type travels as (Flight SQL): fixed by the type, never by the rows.
pub fn arrow_type(t: SqlType) -> arrow::datatypes::DataType {
    use arrow::datatypes::{DataType as A, TimeUnit as U};
    match t {
        SqlType::Bool => A::Boolean,
        SqlType::Int64 => A::Int64,
        SqlType::Float64 => A::Float64,
        SqlType::Text => A::Utf8,
        SqlType::Date => A::Date32,
        SqlType::Timestamp => A::Timestamp(U::Microsecond, None),
    }
}

/// The Arrow schema of result columns (every column nullable).
pub fn arrow_schema(fields: &[Field]) -> arrow::datatypes::SchemaRef {
    std::sync::Arc::new(arrow::datatypes::Schema::new(
        fields.iter().map(|f| arrow::datatypes::Field::new(f.name.clone(), arrow_type(f.ty), true)).collect::<Vec<_>>(),
    ))
}

/// A frame as an Arrow record batch of `arrow_schema(fields(frame.schema()))`, column by column.
pub fn record_batch(frame: &DataFrame) -> PolarsResult<arrow::array::RecordBatch> {
    use arrow::array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use std::sync::Arc;
    let fields = fields(frame.schema());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(fields.len());
    for (c, f) in frame.columns().iter().zip(&fields) {
        let s = c.as_materialized_series();
        arrays.push(match f.ty {
            SqlType::Bool => Arc::new(s.bool()?.iter().collect::<BooleanArray>()),
            SqlType::Int64 => Arc::new(s.cast(&DataType::Int64)?.i64()?.iter().collect::<Int64Array>()),
            SqlType::Float64 => Arc::new(s.cast(&DataType::Float64)?.f64()?.iter().collect::<Float64Array>()),
            SqlType::Date => Arc::new(s.date()?.physical().iter().collect::<Date32Array>()),
            SqlType::Timestamp => {
                let micros = s.cast(&DataType::Datetime(TimeUnit::Microseconds, None))?;
                Arc::new(micros.datetime()?.physical().iter().collect::<TimestampMicrosecondArray>())
            }
            SqlType::Text => match s.dtype() {
                DataType::String => Arc::new(s.str()?.iter().collect::<StringArray>()),
                // Other types shown as text, value by value (as `row` shows them).
                _ => Arc::new(
                    (0..s.len())
                        .map(|i| match cell(s.get(i).unwrap_or(AnyValue::Null)) {
                            Cell::Null => None,
                            Cell::Text(t) => Some(t),
                            other => Some(format!("{other:?}")),
                        })
                        .collect::<StringArray>(),
                ),
            },
        });
    }
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(frame.height()));
    arrow::array::RecordBatch::try_new_with_options(arrow_schema(&fields), arrays, &options).map_err(|e| PolarsError::ComputeError(e.to_string().into()))
}
