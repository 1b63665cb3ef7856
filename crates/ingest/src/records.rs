//! Small tables read whole (the service inventory, telemetry, indicators): CSV with a header,
//! JSON lines, or Parquet, each row a list of cells by column name with its line (row) number.
//! Column names are trimmed and lower-cased; empty text and JSON null are absent values.
//! Structural problems (encoding, ragged rows, unknown columns, a line that is not a JSON
//! object) are errors naming the file and line; the values are judged by the caller.

use super::formats::Format;
use super::IngestError;
use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, ListArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

/// One value as the source gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
    Flag(bool),
    /// A list (JSON array, Parquet list), kept as its items' text.
    List(Vec<String>),
}

impl Cell {
    /// The value as text (numbers without a trailing `.0`, lists joined by `;`).
    pub fn text(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Cell::Number(n) => n.to_string(),
            Cell::Flag(b) => b.to_string(),
            Cell::List(items) => items.join(";"),
        }
    }
}

/// One row: its 1-based line (text) or row (Parquet) number and its present values.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub line: u64,
    pub cells: BTreeMap<String, Cell>,
}

impl Record {
    pub fn get(&self, column: &str) -> Option<&Cell> {
        self.cells.get(column)
    }

    /// The row as one JSON object, for the quarantine's `raw`.
    pub fn raw(&self) -> String {
        let obj: serde_json::Map<String, serde_json::Value> = self
            .cells
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Cell::Text(t) => serde_json::Value::String(t.clone()),
                    Cell::Number(n) => serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, serde_json::Value::Number),
                    Cell::Flag(b) => serde_json::Value::Bool(*b),
                    Cell::List(items) => serde_json::Value::Array(items.iter().cloned().map(serde_json::Value::String).collect()),
                };
                (k.clone(), v)
            })
            .collect();
        serde_json::Value::Object(obj).to_string()
    }
}

fn malformed(path: &Path, line: u64, message: impl Into<String>) -> IngestError {
    IngestError::Malformed { path: path.display().to_string(), line, message: message.into() }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> IngestError + '_ {
    move |source| IngestError::Io { path: path.display().to_string(), source }
}

/// Reads every row of `path`. `columns` are the names the table knows: any other column is an
/// error naming it (a misspelt column must not be silently dropped).
pub fn read(path: &Path, format: Format, columns: &[&str]) -> Result<Vec<Record>, IngestError> {
    let check = |name: &str, line: u64| -> Result<String, IngestError> {
        let n = name.trim().to_ascii_lowercase();
        if columns.contains(&n.as_str()) {
            Ok(n)
        } else {
            Err(malformed(path, line, format!("unknown column '{}' (the table's columns: {})", name.escape_debug(), columns.join(", "))))
        }
    };
    match format {
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new().flexible(false).from_path(path).map_err(|e| malformed(path, 1, e.to_string()))?;
            let header: Vec<String> = reader.headers().map_err(|e| malformed(path, 1, e.to_string()))?.iter().map(|h| check(h, 1)).collect::<Result<_, _>>()?;
            let mut out = Vec::new();
            for row in reader.records() {
                let row = row.map_err(|e| {
                    let line = e.position().map_or(0, |p| p.line());
                    malformed(path, line, e.to_string())
                })?;
                let line = row.position().map_or(out.len() as u64 + 2, |p| p.line());
                let cells = header.iter().zip(row.iter()).filter(|(_, v)| !v.trim().is_empty()).map(|(h, v)| (h.clone(), Cell::Text(v.to_string()))).collect();
                out.push(Record { line, cells });
            }
            Ok(out)
        }
        Format::Jsonl => {
            let file = std::fs::File::open(path).map_err(io(path))?;
            let mut out = Vec::new();
            for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
                let n = i as u64 + 1;
                let line = line.map_err(|e| malformed(path, n, e.to_string()))?;
                if line.trim().is_empty() {
                    continue;
                }
                let value: serde_json::Value = serde_json::from_str(&line).map_err(|e| malformed(path, n, format!("not JSON: {e}")))?;
                let serde_json::Value::Object(obj) = value else {
                    return Err(malformed(path, n, "not a JSON object"));
                };
                let mut cells = BTreeMap::new();
                for (k, v) in obj {
                    let k = check(&k, n)?;
                    let cell = match v {
                        serde_json::Value::Null => continue,
                        serde_json::Value::String(s) if s.trim().is_empty() => continue,
                        serde_json::Value::String(s) => Cell::Text(s),
                        serde_json::Value::Number(x) => Cell::Number(x.as_f64().unwrap_or(f64::NAN)),
                        serde_json::Value::Bool(b) => Cell::Flag(b),
                        serde_json::Value::Array(items) => {
                            Cell::List(items.into_iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect())
                        }
                        other @ serde_json::Value::Object(_) => Cell::Text(other.to_string()),
                    };
                    cells.insert(k, cell);
                }
                out.push(Record { line: n, cells });
            }
            Ok(out)
        }
        Format::Parquet => {
            let file = std::fs::File::open(path).map_err(io(path))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.with_batch_size(64 * 1024).build())
                .map_err(|e| malformed(path, 0, format!("not a readable Parquet file: {e}")))?;
            let mut out = Vec::new();
            for batch in reader {
                let batch = batch.map_err(|e| malformed(path, out.len() as u64 + 1, e.to_string()))?;
                let first = out.len();
                out.extend((0..batch.num_rows()).map(|i| Record { line: (first + i) as u64 + 1, cells: BTreeMap::new() }));
                for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                    let name = check(field.name(), 0)?;
                    let cells = parquet_cells(column).map_err(|e| malformed(path, first as u64 + 1, format!("column '{name}': {e}")))?;
                    for (i, cell) in cells.into_iter().enumerate() {
                        if let Some(c) = cell {
                            out[first + i].cells.insert(name.clone(), c);
                        }
                    }
                }
            }
            Ok(out)
        }
        other => Err(malformed(path, 0, format!("{other:?} is a format of survey responses, not of this table (use csv, jsonl or parquet)"))),
    }
}

/// The cells of one Parquet column: numbers as numbers, booleans as flags, lists as lists,
/// everything else (text, dates, timestamps) as its text.
fn parquet_cells(column: &ArrayRef) -> Result<Vec<Option<Cell>>, String> {
    let n = column.len();
    let ty = column.data_type();
    if ty.is_numeric() {
        let c = cast(column, &DataType::Float64).map_err(|e| e.to_string())?;
        let a = c.as_any().downcast_ref::<Float64Array>().expect("cast to Float64");
        return Ok((0..n).map(|i| a.is_valid(i).then(|| Cell::Number(a.value(i)))).collect());
    }
    if let Some(a) = column.as_any().downcast_ref::<BooleanArray>() {
        return Ok((0..n).map(|i| a.is_valid(i).then(|| Cell::Flag(a.value(i)))).collect());
    }
    if let Some(a) = column.as_any().downcast_ref::<ListArray>() {
        return (0..n)
            .map(|i| {
                if !a.is_valid(i) {
                    return Ok(None);
                }
                let items = cast(&a.value(i), &DataType::Utf8).map_err(|e| e.to_string())?;
                let s = items.as_any().downcast_ref::<StringArray>().expect("cast to Utf8");
                Ok(Some(Cell::List((0..s.len()).filter(|j| s.is_valid(*j)).map(|j| s.value(j).to_string()).collect())))
            })
            .collect();
    }
    let c = cast(column, &DataType::Utf8).map_err(|e| e.to_string())?;
    let a = c.as_any().downcast_ref::<StringArray>().expect("cast to Utf8");
    Ok((0..n).map(|i| (a.is_valid(i) && !a.value(i).trim().is_empty()).then(|| Cell::Text(a.value(i).to_string()))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_lines_give_the_same_cells() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "Service_ID,value,page\nVA-S01,12,\nVA-S02,3.5,/apply\n").unwrap();
        let rows = read(&csv, Format::Csv, &["service_id", "value", "page"]).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].get("service_id").unwrap().text(), "VA-S01");
        assert!(rows[0].get("page").is_none(), "empty text is absent");
        let jsonl = dir.path().join("t.jsonl");
        std::fs::write(&jsonl, "{\"service_id\":\"VA-S01\",\"value\":12,\"page\":null}\n\n{\"service_id\":\"VA-S02\",\"value\":3.5,\"page\":\"/apply\"}\n")
            .unwrap();
        let j = read(&jsonl, Format::Jsonl, &["service_id", "value", "page"]).unwrap();
        assert_eq!(j[1].line, 3);
        assert_eq!(j[0].get("value"), Some(&Cell::Number(12.0)));
        assert_eq!(j[1].get("page").unwrap().text(), "/apply");
    }

    #[test]
    fn unknown_columns_and_broken_lines_name_the_place() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "service_id,valeu\nx,1\n").unwrap();
        let e = read(&csv, Format::Csv, &["service_id", "value"]).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("'valeu'"), "{e}");
        std::fs::write(&csv, "service_id,value\nx,1\ny,2,3\n").unwrap();
        let e = read(&csv, Format::Csv, &["service_id", "value"]).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        let jsonl = dir.path().join("t.jsonl");
        std::fs::write(&jsonl, "{\"service_id\":\"x\"}\n[1,2]\n").unwrap();
        let e = read(&jsonl, Format::Jsonl, &["service_id"]).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("not a JSON object"), "{e}");
    }
}
