//! Raw exports: every row of the data files a partition filter admits, with the partition
//! columns (`agency`, `fiscal_year`, `fiscal_quarter`) appended, read file by file in batches
//! so memory stays bounded whatever the export's size.

use super::error::StoreError;
use super::lake::{DataFile, Lake};
use super::schema;
use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::sync::{Arc, LazyLock};

/// Rows per exported batch.
pub const EXPORT_BATCH_ROWS: usize = 64 * 1024;

/// The lake's columns followed by the partition columns.
pub static EXPORT_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields: Vec<Field> = schema::arrow_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("agency", DataType::Utf8, false));
    fields.push(Field::new("fiscal_year", DataType::Int32, false));
    fields.push(Field::new("fiscal_quarter", DataType::Int32, false));
    Arc::new(Schema::new(fields))
});

/// Hands every row of `files` to `sink`, batch by batch; returns the rows exported.
pub fn export(lake: &Lake, files: &[DataFile], mut sink: impl FnMut(RecordBatch) -> Result<(), StoreError>) -> Result<u64, StoreError> {
    let mut rows = 0;
    for f in files {
        let fail = |e: &dyn std::fmt::Display| lake.unreadable(&f.path, e);
        let file = lake.objects().open(&f.path)?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| fail(&e))?.with_batch_size(EXPORT_BATCH_ROWS).build().map_err(|e| fail(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| fail(&e))?;
            let n = batch.num_rows();
            let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
            cols.push(Arc::new(StringArray::from(vec![f.partition.agency.as_str(); n])));
            cols.push(Arc::new(Int32Array::from(vec![f.partition.quarter.year; n])));
            cols.push(Arc::new(Int32Array::from(vec![f.partition.quarter.quarter as i32; n])));
            let out = RecordBatch::try_new(EXPORT_SCHEMA.clone(), cols).map_err(|e| fail(&e))?;
            rows += n as u64;
            sink(out)?;
        }
    }
    Ok(rows)
}
