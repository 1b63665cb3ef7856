//! The schema of the responses table, declared once; the Arrow schema (for writers) and the
//! polars schema (for scans) are both derived from it.

use arrow::datatypes::{DataType as ArrowType, Field, Schema as ArrowSchema, TimeUnit as ArrowUnit};
use cx_domain::survey::{tap_column, TAP_TOPICS};
use cx_domain::Driver;
use polars::prelude::{DataType, Schema as PolarsSchema, TimeUnit, TimeZone};
use std::sync::Arc;

/// Storage type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    /// Microseconds since the epoch, UTC.
    TimestampUtc,
    /// Small integer answers (Likert 1-5, thumbs 0/1).
    Answer,
    Flag,
    Real,
}

/// One column of the responses table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
}

fn col(name: impl Into<String>, ty: ColumnType, nullable: bool) -> Column {
    Column { name: name.into(), ty, nullable }
}

/// Columns stored inside each response file, in file order. The partition columns
/// (`agency`, `fiscal_year`, `fiscal_quarter`) are in the path only.
pub fn response_columns() -> Vec<Column> {
    use ColumnType::*;
    let mut cols = vec![
        col("response_id", Text, false),
        col("submitted_at", TimestampUtc, false),
        col("collection_id", Text, false),
        col("bureau", Text, false),
        col("service_id", Text, false),
        col("service_type", Text, false),
        col("channel", Text, false),
        col("office_id", Text, true),
        col("region", Text, true),
        col("stage", Text, false),
        col("scale", Text, false),
        col("trust", Answer, true),
        col("satisfaction", Answer, true),
    ];
    cols.extend(Driver::ALL.iter().map(|d| col(d.as_str(), Answer, true)));
    for positive in [true, false] {
        cols.extend(TAP_TOPICS.iter().map(|t| col(tap_column(t, positive), Flag, true)));
    }
    cols.push(col("free_text_1", Text, true));
    cols.push(col("free_text_2", Text, true));
    cols.push(col("weight", Real, false));
    cols
}

/// Partition columns and their types as scans expose them.
pub const PARTITION_COLUMNS: [(&str, DataType); 3] = [("agency", DataType::String), ("fiscal_year", DataType::Int32), ("fiscal_quarter", DataType::Int32)];

pub fn arrow_schema() -> Arc<ArrowSchema> {
    let fields: Vec<Field> = response_columns()
        .into_iter()
        .map(|c| {
            let ty = match c.ty {
                ColumnType::Text => ArrowType::Utf8,
                ColumnType::TimestampUtc => ArrowType::Timestamp(ArrowUnit::Microsecond, Some("UTC".into())),
                ColumnType::Answer => ArrowType::Int8,
                ColumnType::Flag => ArrowType::Boolean,
                ColumnType::Real => ArrowType::Float64,
            };
            Field::new(c.name, ty, c.nullable)
        })
        .collect();
    Arc::new(ArrowSchema::new(fields))
}

/// polars type of a stored column.
pub fn polars_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text => DataType::String,
        ColumnType::TimestampUtc => DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
        ColumnType::Answer => DataType::Int8,
        ColumnType::Flag => DataType::Boolean,
        ColumnType::Real => DataType::Float64,
    }
}

/// The polars schema of the columns inside the files.
pub fn polars_file_schema() -> PolarsSchema {
    response_columns().into_iter().map(|c| (c.name.into(), polars_type(c.ty))).collect()
}

/// The polars schema of the hive partition columns.
pub fn polars_hive_schema() -> PolarsSchema {
    PARTITION_COLUMNS.iter().map(|(n, t)| ((*n).into(), t.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_the_a11_columns() {
        let names: Vec<String> = response_columns().into_iter().map(|c| c.name).collect();
        for required in ["response_id", "submitted_at", "trust", "satisfaction", "employee", "positive_other", "negative_humanity", "weight"] {
            assert!(names.iter().any(|n| n == required), "{required} missing");
        }
        assert_eq!(names.len(), 13 + 6 + 14 + 3);
        assert_eq!(arrow_schema().fields().len(), names.len());
        assert_eq!(polars_file_schema().len(), names.len());
    }
}
