//! The observations tables (telemetry and service-level indicators): their columns, declared
//! once with the Arrow form for writers and the polars form for scans, building record batches
//! from `domain::observations::Observation`, and reading back the identity (key) and value of
//! each stored observation, so ingestion can skip what a partition already holds.
//!
//! Partitioned like the responses (`<table>/agency=/fiscal_year=/fiscal_quarter=`, by
//! `observed_at` in UTC); the partition columns live only in the path.

use super::error::StoreError;
use super::lake::Lake;
use arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType as ArrowType, Field, Schema as ArrowSchema, TimeUnit as ArrowUnit};
use cx_domain::observations::Observation;
use cx_domain::Channel;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use polars::prelude::{DataType, Schema as PolarsSchema, TimeUnit, TimeZone};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

static ARROW: LazyLock<Arc<ArrowSchema>> = LazyLock::new(|| {
    Arc::new(ArrowSchema::new(vec![
        Field::new("service_id", ArrowType::Utf8, false),
        Field::new("observed_at", ArrowType::Timestamp(ArrowUnit::Microsecond, Some("UTC".into())), false),
        Field::new("metric", ArrowType::Utf8, false),
        Field::new("value", ArrowType::Float64, false),
        Field::new("channel", ArrowType::Utf8, true),
        Field::new("page", ArrowType::Utf8, true),
        Field::new("office_id", ArrowType::Utf8, true),
    ]))
});

pub fn arrow_schema() -> Arc<ArrowSchema> {
    ARROW.clone()
}

/// The polars schema of the columns inside the files.
pub fn polars_schema() -> PolarsSchema {
    let text = DataType::String;
    [
        ("service_id", text.clone()),
        ("observed_at", DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))),
        ("metric", text.clone()),
        ("value", DataType::Float64),
        ("channel", text.clone()),
        ("page", text.clone()),
        ("office_id", text),
    ]
    .into_iter()
    .map(|(n, t)| (n.into(), t))
    .collect()
}

/// One record batch of `rows` (their agency is the partition's, not a column).
pub fn batch(rows: &[Observation]) -> RecordBatch {
    let text = |f: &dyn Fn(&Observation) -> Option<&str>| Arc::new(rows.iter().map(f).collect::<StringArray>()) as ArrayRef;
    RecordBatch::try_new(
        arrow_schema(),
        vec![
            text(&|o| Some(o.service_id.as_str())),
            Arc::new(TimestampMicrosecondArray::from(rows.iter().map(|o| o.observed_at.timestamp_micros()).collect::<Vec<_>>()).with_timezone("UTC")),
            text(&|o| Some(o.metric.as_str())),
            Arc::new(Float64Array::from(rows.iter().map(|o| o.value).collect::<Vec<_>>())),
            text(&|o| o.channel.map(Channel::as_str)),
            text(&|o| o.page.as_deref()),
            text(&|o| o.office_id.as_deref()),
        ],
    )
    .expect("observations batch matches its schema")
}

/// The key (`Observation::key`) and value of every observation in a stored file.
pub fn read_keys(lake: &Lake, file: &str, agency: &str, into: &mut HashMap<String, f64>) -> Result<(), StoreError> {
    let fail = |reason: String| lake.unreadable(file, reason);
    let reader = ParquetRecordBatchReaderBuilder::try_new(lake.objects().open(file)?)
        .and_then(|b| b.with_batch_size(64 * 1024).build())
        .map_err(|e| fail(e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| fail(e.to_string()))?;
        let text = |name: &str| -> Result<&StringArray, StoreError> {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| fail(format!("column '{name}' is missing or not text")))
        };
        let (service, metric, channel, page, office) = (text("service_id")?, text("metric")?, text("channel")?, text("page")?, text("office_id")?);
        let at = batch
            .column_by_name("observed_at")
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .ok_or_else(|| fail("column 'observed_at' is missing or not a timestamp".into()))?;
        let value = batch
            .column_by_name("value")
            .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
            .ok_or_else(|| fail("column 'value' is missing or not a float".into()))?;
        let opt = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_string());
        for i in 0..batch.num_rows() {
            let o = Observation {
                agency: agency.to_string(),
                service_id: service.value(i).to_string(),
                observed_at: chrono::DateTime::from_timestamp_micros(at.value(i)).unwrap_or_default(),
                metric: metric.value(i).to_string(),
                value: value.value(i),
                channel: opt(channel, i).and_then(|c| c.parse().ok()),
                page: opt(page, i),
                office_id: opt(office, i),
            };
            into.insert(o.key(), o.value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::{parquet_properties, AtomicParquetWriter};

    #[test]
    fn stored_observations_read_back_with_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::create(dir.path().join("lake")).unwrap();
        let o = Observation {
            agency: "VA".into(),
            service_id: "VA-S001".into(),
            observed_at: "2025-03-01T00:00:00Z".parse().unwrap(),
            metric: "page_views".into(),
            value: 42.0,
            channel: Some(Channel::Digital),
            page: Some("/apply".into()),
            office_id: None,
        };
        let mut other = o.clone();
        other.page = None;
        other.value = 7.0;
        let rel = "telemetry/agency=VA/fiscal_year=2025/fiscal_quarter=2/part-a.parquet";
        let mut w = AtomicParquetWriter::in_lake(&lake, rel, arrow_schema(), parquet_properties(&[])).unwrap();
        w.write(&batch(&[o.clone(), other.clone()])).unwrap();
        w.finish().unwrap();
        let mut keys = HashMap::new();
        read_keys(&lake, rel, "VA", &mut keys).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[&o.key()], 42.0);
        assert_eq!(keys[&other.key()], 7.0);
        let arrow_names: Vec<String> = arrow_schema().fields().iter().map(|f| f.name().clone()).collect();
        let polars_names: Vec<String> = polars_schema().iter_names().map(|n| n.to_string()).collect();
        assert_eq!(arrow_names, polars_names, "writers and scans declare the same columns");
    }
}
