//! Results as tables: a GraphQL response whose single top-level field is a list becomes one
//! flat, typed table (nested objects flattened to `parent_child` columns, one nested list of
//! objects exploded into rows, lists of scalars joined) encoded as an Arrow IPC stream, CSV or
//! Parquet, for BI tools and notebooks that pull tables, not JSON.

use arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use async_graphql::Value as GqlValue;
use serde_json::Value;
use std::sync::Arc;

/// A table encoding a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Arrow,
    Csv,
    Parquet,
}

/// The media types an `Accept` header names, in its order, without their parameters.
pub(crate) fn media_types(accept: &str) -> impl Iterator<Item = &str> {
    accept.split(',').map(|part| part.split(';').next().unwrap_or("").trim())
}

impl TableFormat {
    pub const ARROW_STREAM: &'static str = "application/vnd.apache.arrow.stream";
    pub const PARQUET: &'static str = "application/vnd.apache.parquet";

    /// The format a `format=` parameter names (`arrow`, `csv`, `parquet`).
    pub fn from_param(p: &str) -> Option<TableFormat> {
        match p.to_ascii_lowercase().as_str() {
            "arrow" => Some(TableFormat::Arrow),
            "csv" => Some(TableFormat::Csv),
            "parquet" => Some(TableFormat::Parquet),
            _ => None,
        }
    }

    /// The first table media type an `Accept` header lists, if any (JSON otherwise).
    pub fn from_accept(accept: &str) -> Option<TableFormat> {
        media_types(accept).find_map(|t| match t {
            Self::ARROW_STREAM => Some(TableFormat::Arrow),
            "text/csv" => Some(TableFormat::Csv),
            Self::PARQUET => Some(TableFormat::Parquet),
            _ => None,
        })
    }

    /// File name extension of a download.
    pub fn extension(self) -> &'static str {
        match self {
            TableFormat::Arrow => "arrows",
            TableFormat::Csv => "csv",
            TableFormat::Parquet => "parquet",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            TableFormat::Arrow => Self::ARROW_STREAM,
            TableFormat::Csv => "text/csv; charset=utf-8",
            TableFormat::Parquet => Self::PARQUET,
        }
    }
}

type Row = Vec<(String, Value)>;

/// A GraphQL scalar as JSON (enums as their names).
fn scalar(v: &GqlValue) -> Value {
    match v {
        GqlValue::Enum(name) => Value::String(name.to_string()),
        other => other.clone().into_json().unwrap_or(Value::Null),
    }
}

/// Flattens one object into rows, in the order the query selected the fields: scalars and
/// nested objects become columns; a nested list of objects multiplies the rows (at most one
/// per object); lists of scalars are joined with "; "; an empty list adds nothing.
fn flatten(obj: &async_graphql::indexmap::IndexMap<async_graphql::Name, GqlValue>, prefix: &str) -> Result<Vec<Row>, String> {
    let mut base: Row = Vec::new();
    let mut exploded: Option<(String, Vec<Row>)> = None;
    let mut nested: Vec<Vec<Row>> = Vec::new();
    for (k, v) in obj {
        let name = if prefix.is_empty() { k.to_string() } else { format!("{prefix}_{k}") };
        match v {
            GqlValue::Object(o) => nested.push(flatten(o, &name)?),
            GqlValue::List(items) if items.is_empty() => {}
            GqlValue::List(items) if items.iter().any(|i| matches!(i, GqlValue::Object(_))) => {
                if let Some((other, _)) = &exploded {
                    return Err(format!("'{other}' and '{name}' are both lists of objects; a table can unnest one: select only one of them"));
                }
                let mut rows = Vec::new();
                for item in items {
                    match item {
                        GqlValue::Object(o) => rows.extend(flatten(o, &name)?),
                        other => rows.push(vec![(name.clone(), scalar(other))]),
                    }
                }
                exploded = Some((name, rows));
            }
            GqlValue::List(items) => {
                let text: Vec<String> = items
                    .iter()
                    .map(|i| match scalar(i) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect();
                base.push((name, Value::String(text.join("; "))));
            }
            other => base.push((name, scalar(other))),
        }
    }
    let mut rows = vec![base];
    for group in nested.into_iter().chain(exploded.map(|(_, r)| r)) {
        if group.is_empty() {
            continue;
        }
        rows = rows.iter().flat_map(|r| group.iter().map(move |g| r.iter().chain(g).cloned().collect())).collect();
    }
    Ok(rows)
}

/// Prefix of the schema metadata keys (and, in the server, of `x-cxlake-` headers) that carry
/// a page's fields beside its rows: `cxlake.totalCount`, `cxlake.truncated`,
/// `cxlake.pageInfo_endCursor`.
pub const PAGE_METADATA: &str = "cxlake.";

/// The table of a GraphQL `data` object whose single field is a list, or a page: an object
/// holding one list (its rows) beside scalar fields (total count, truncation flag, cursor),
/// which go into the table's schema metadata, so no download hides that it was cut.
pub fn table(data: &GqlValue) -> Result<RecordBatch, String> {
    let GqlValue::Object(fields) = data else { return Err("the response has no data".into()) };
    let (mut name, mut list) = match fields.iter().collect::<Vec<_>>()[..] {
        [(name, list)] => (name, list),
        _ => return Err(format!("a table download needs exactly one top-level field; the query selects {}", fields.len())),
    };
    let mut metadata = std::collections::HashMap::new();
    if let GqlValue::Object(page) = list {
        let lists: Vec<_> = page.iter().filter(|(_, v)| matches!(v, GqlValue::List(_))).collect();
        let [(rows_name, rows)] = lists[..] else {
            return Err(format!("'{name}' is an object; a table download needs it to hold exactly one list"));
        };
        let others: async_graphql::indexmap::IndexMap<_, _> = page.iter().filter(|(k, _)| *k != rows_name).map(|(k, v)| (k.clone(), v.clone())).collect();
        for row in flatten(&others, "")? {
            for (k, v) in row {
                metadata.insert(format!("{PAGE_METADATA}{k}"), v.as_str().map_or_else(|| v.to_string(), str::to_string));
            }
        }
        (name, list) = (rows_name, rows);
    }
    let GqlValue::List(items) = list else { return Err(format!("'{name}' is not a list")) };
    let mut rows = Vec::new();
    for item in items {
        match item {
            GqlValue::Object(o) => rows.extend(flatten(o, "")?),
            other => rows.push(vec![(name.to_string(), scalar(other))]),
        }
    }
    let mut columns: Vec<String> = Vec::new();
    for row in &rows {
        for (k, _) in row {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let mut schema_fields = Vec::with_capacity(columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for c in &columns {
        let values: Vec<Option<&Value>> = rows.iter().map(|r| r.iter().find(|(k, _)| k == c).map(|(_, v)| v).filter(|v| !v.is_null())).collect();
        let present = || values.iter().flatten();
        let (ty, array): (DataType, ArrayRef) = if present().all(|v| v.is_boolean()) && present().next().is_some() {
            let mut b = BooleanBuilder::new();
            values.iter().for_each(|v| b.append_option(v.and_then(Value::as_bool)));
            (DataType::Boolean, Arc::new(b.finish()))
        } else if present().all(|v| v.is_i64() || v.is_u64()) && present().next().is_some() {
            let mut b = Int64Builder::new();
            values.iter().for_each(|v| b.append_option(v.and_then(Value::as_i64)));
            (DataType::Int64, Arc::new(b.finish()))
        } else if present().all(|v| v.is_number()) && present().next().is_some() {
            let mut b = Float64Builder::new();
            values.iter().for_each(|v| b.append_option(v.and_then(Value::as_f64)));
            (DataType::Float64, Arc::new(b.finish()))
        } else {
            let mut b = StringBuilder::new();
            values.iter().for_each(|v| b.append_option(v.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))));
            (DataType::Utf8, Arc::new(b.finish()))
        };
        schema_fields.push(Field::new(c, ty, true));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(schema_fields).with_metadata(metadata));
    RecordBatch::try_new_with_options(schema, arrays, &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len()))).map_err(|e| e.to_string())
}

/// A table being written in one of the formats, batch by batch (any `Write`: a buffer, or a
/// channel streaming to the client).
pub enum TableSink<W: std::io::Write + Send> {
    Arrow(arrow::ipc::writer::StreamWriter<W>),
    Parquet(parquet::arrow::ArrowWriter<W>),
    Csv(csv::Writer<W>, bool),
}

impl<W: std::io::Write + Send> TableSink<W> {
    pub fn new(out: W, schema: &arrow::datatypes::SchemaRef, format: TableFormat) -> Result<Self, String> {
        Ok(match format {
            TableFormat::Arrow => TableSink::Arrow(arrow::ipc::writer::StreamWriter::try_new(out, schema).map_err(|e| e.to_string())?),
            TableFormat::Parquet => {
                let props = cx_lake::writer::parquet_properties(&[]);
                TableSink::Parquet(parquet::arrow::ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(|e| e.to_string())?)
            }
            TableFormat::Csv => TableSink::Csv(csv::Writer::from_writer(out), false),
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        match self {
            TableSink::Arrow(w) => w.write(batch).map_err(|e| e.to_string()),
            TableSink::Parquet(w) => w.write(batch).map_err(|e| e.to_string()),
            TableSink::Csv(w, header_written) => {
                if !*header_written {
                    w.write_record(batch.schema().fields().iter().map(|f| f.name().as_str())).map_err(|e| e.to_string())?;
                    *header_written = true;
                }
                let options = arrow::util::display::FormatOptions::default();
                // Named zones need chrono-tz in arrow; UTC is written as an offset instead.
                let columns: Vec<ArrayRef> = batch
                    .columns()
                    .iter()
                    .map(|a| match a.data_type() {
                        DataType::Timestamp(unit, Some(tz)) if tz.as_ref() == "UTC" => {
                            arrow::compute::cast(a, &DataType::Timestamp(*unit, Some("+00:00".into()))).map_err(|e| e.to_string())
                        }
                        _ => Ok(a.clone()),
                    })
                    .collect::<Result<_, _>>()?;
                let formatters = columns
                    .iter()
                    .map(|a| arrow::util::display::ArrayFormatter::try_new(a.as_ref(), &options))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                for i in 0..batch.num_rows() {
                    w.write_record(formatters.iter().map(|f| f.value(i).to_string())).map_err(|e| e.to_string())?;
                }
                Ok(())
            }
        }
    }

    /// Completes the table (footer, trailing bytes) and returns the writer.
    pub fn finish(self) -> Result<(), String> {
        match self {
            TableSink::Arrow(mut w) => w.finish().map_err(|e| e.to_string()),
            TableSink::Parquet(w) => w.close().map(|_| ()).map_err(|e| e.to_string()),
            TableSink::Csv(mut w, _) => w.flush().map_err(|e| e.to_string()),
        }
    }
}

/// Encodes a table.
pub fn encode(batch: &RecordBatch, format: TableFormat) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut sink = TableSink::new(&mut out, &batch.schema(), format)?;
    sink.write(batch)?;
    sink.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gql(v: Value) -> GqlValue {
        GqlValue::from_json(v).unwrap()
    }

    #[test]
    fn nested_fields_flatten_and_one_list_explodes() {
        let data = json!({"driverImportance": [
            {"serviceType": "benefits", "n": 40, "r2": 0.5, "warnings": ["small n", "vif"], "drivers": [
                {"driver": "EASE", "shapley": 0.2, "suppressed": false}, {"driver": "EFFICIENCY", "shapley": 0.1, "suppressed": false}]},
            {"serviceType": "recreation", "n": 9, "r2": null, "warnings": [], "drivers": []}
        ]});
        let t = table(&gql(data)).unwrap();
        let names: Vec<String> = t.schema().fields().iter().map(|f| f.name().clone()).collect();
        // (json! sorts keys; the server keeps the query's order.) Exploded columns come last.
        assert_eq!(names, ["n", "r2", "serviceType", "warnings", "drivers_driver", "drivers_shapley", "drivers_suppressed"]);
        assert_eq!(t.num_rows(), 3);
        let types: Vec<DataType> = t.schema().fields().iter().map(|f| f.data_type().clone()).collect();
        assert_eq!(types[0..2], [DataType::Int64, DataType::Float64]);
        assert_eq!(types[6], DataType::Boolean);
        let csv = String::from_utf8(encode(&t, TableFormat::Csv).unwrap()).unwrap();
        assert_eq!(csv.lines().nth(1).unwrap(), "40,0.5,benefits,small n; vif,EASE,0.2,false");
        assert_eq!(csv.lines().nth(3).unwrap(), "9,,recreation,,,,");
        assert!(table(&gql(json!({"a": [], "b": []}))).is_err());
        let two = json!({"x": [{"a": [{"p": 1}], "b": [{"q": 2}]}]});
        assert!(table(&gql(two)).unwrap_err().contains("select only one"));
    }

    #[test]
    fn accept_headers_and_params() {
        assert_eq!(TableFormat::from_accept("text/csv"), Some(TableFormat::Csv));
        assert_eq!(TableFormat::from_accept("application/json, application/vnd.apache.arrow.stream;q=0.9"), Some(TableFormat::Arrow));
        assert_eq!(TableFormat::from_accept("application/json"), None);
        assert_eq!(TableFormat::from_param("Parquet"), Some(TableFormat::Parquet));
    }
}
