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
