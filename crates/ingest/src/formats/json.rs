//! JSON responses: one object with lake column names, typed (numbers, booleans, strings,
//! null). Used by JSON-lines files, the submit log and `POST /v1/responses`.

use super::{ParsedRow, Source, CHUNK_ROWS};
use crate::fields::col;
use crate::fields::{input_column, parse_response, parse_timestamp, response_texts, Fields, INPUT_COLUMNS};
use crate::IngestError;
use chrono::{DateTime, Utc};
use cx_domain::validate::{Problem, Response};
use rayon::prelude::*;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

struct JsonRow<'a>(&'a Map<String, Value>);

fn wrong(column: usize, v: &Value, expected: &str) -> Problem {
    let mut shown = v.to_string();
    if shown.len() > 40 {
        let mut end = 40;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
        shown.push('…');
    }
    Problem { column: INPUT_COLUMNS[column].clone(), reason: format!("{shown} is not {expected}") }
}

impl JsonRow<'_> {
    fn get(&self, column: usize) -> Option<&Value> {
        self.0.get(&INPUT_COLUMNS[column]).filter(|v| !v.is_null())
    }
}

impl Fields for JsonRow<'_> {
    fn text(&self, column: usize) -> Result<Option<Cow<'_, str>>, Problem> {
        match self.get(column) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(Cow::Borrowed(s))),
            Some(v @ Value::Number(_)) => Ok(Some(Cow::Owned(v.to_string()))),
            Some(v) => Err(wrong(column, v, "text")),
        }
    }

    fn int(&self, column: usize) -> Result<Option<i64>, Problem> {
        match self.get(column) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| wrong(column, &Value::Number(n.clone()), "a whole number")),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(v @ Value::String(s)) => s.trim().parse().map(Some).map_err(|_| wrong(column, v, "a whole number")),
            Some(v) => Err(wrong(column, v, "a whole number")),
        }
    }

    fn flag(&self, column: usize) -> Result<Option<bool>, Problem> {
        match self.get(column) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v @ Value::Number(n)) => match n.as_i64() {
                Some(0) => Ok(Some(false)),
                Some(1) => Ok(Some(true)),
                _ => Err(wrong(column, v, "true/false or 1/0")),
            },
            Some(v @ Value::String(s)) => crate::fields::parse_flag(s).map(Some).ok_or_else(|| wrong(column, v, "true/false or 1/0")),
            Some(v) => Err(wrong(column, v, "true/false or 1/0")),
        }
    }

    fn real(&self, column: usize) -> Result<Option<f64>, Problem> {
        match self.get(column) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(v @ Value::String(s)) => s.trim().parse().map(Some).map_err(|_| wrong(column, v, "a number")),
            Some(v) => Err(wrong(column, v, "a number")),
        }
    }

    fn timestamp(&self, column: usize) -> Result<Option<DateTime<Utc>>, Problem> {
        match self.get(column) {
            None => Ok(None),
            Some(v @ Value::String(s)) => parse_timestamp(s).map(Some).ok_or_else(|| wrong(column, v, "a timestamp (RFC 3339, e.g. 2025-03-01T12:00:00Z)")),
            Some(v) => Err(wrong(column, v, "a timestamp string")),
        }
    }
}

/// Keys of an input object that are derived from others and ignored.
const DERIVED: [&str; 2] = ["fiscal_year", "fiscal_quarter"];

/// Parses one JSON object into a response, or every problem it has (unknown keys included).
pub fn parse_object(obj: &Map<String, Value>, now: DateTime<Utc>) -> Result<Response, Vec<Problem>> {
    let unknown: Vec<Problem> = obj
        .keys()
        .filter(|k| input_column(k).is_none() && !DERIVED.contains(&k.as_str()))
        .map(|k| Problem { column: k.clone(), reason: format!("is not a lake column (expected: {})", INPUT_COLUMNS.join(", ")) })
        .collect();
    match (parse_response(&JsonRow(obj), now), unknown.is_empty()) {
        (Ok(r), true) => Ok(r),
        (Ok(_), false) => Err(unknown),
        (Err(mut p), _) => {
            p.extend(unknown);
            Err(p)
        }
    }
}

/// A response as a JSON object in the lake's columns (what `parse_object` reads back).
pub fn to_object(r: &Response) -> Map<String, Value> {
    let texts = response_texts(r);
    let mut obj = Map::new();
    for (i, v) in texts.into_iter().enumerate() {
        let Some(v) = v else { continue };
        let value = match i {
            c if (col::TRUST..col::POSITIVE).contains(&c) => Value::from(v.parse::<i64>().expect("answers are numbers")),
            c if (col::POSITIVE..col::FREE_TEXT_1).contains(&c) => Value::Bool(v == "true"),
            col::WEIGHT => Value::from(r.weight),
            _ => Value::String(v),
        };
        obj.insert(INPUT_COLUMNS[i].clone(), value);
    }
    obj
}

/// Parses one line of a JSON-lines file; `Err` is a structural problem of the file.
pub fn parse_line(bytes: &[u8], line: u64, now: DateTime<Utc>) -> Result<Option<ParsedRow>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("is not valid UTF-8 (byte {})", e.valid_up_to() + 1))?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("is not JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("is not a JSON object".into());
    };
    let result = parse_object(&obj, now);
    let raw = result.is_err().then(|| text.to_string());
    Ok(Some(ParsedRow { line, result, raw }))
}

/// A JSON-lines file read in chunks.
pub struct JsonLinesSource {
    path: String,
    reader: BufReader<File>,
    lines: Vec<Vec<u8>>,
    line: u64,
    rows: u64,
    now: DateTime<Utc>,
}

impl JsonLinesSource {
    pub fn open(path: &Path, now: DateTime<Utc>) -> Result<JsonLinesSource, IngestError> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|source| IngestError::Io { path: shown.clone(), source })?;
        Ok(JsonLinesSource { path: shown, reader: BufReader::with_capacity(1 << 20, file), lines: Vec::new(), line: 0, rows: 0, now })
    }
}

impl Source for JsonLinesSource {
    fn next_chunk(&mut self) -> Result<Option<Vec<ParsedRow>>, IngestError> {
        self.lines.resize_with(CHUNK_ROWS, Vec::new);
        let first = self.line + 1;
        let mut n = 0;
        while n < CHUNK_ROWS {
            let buf = &mut self.lines[n];
            buf.clear();
            let read = self.reader.read_until(b'\n', buf).map_err(|source| IngestError::Io { path: self.path.clone(), source })?;
            if read == 0 {
                break;
            }
            n += 1;
        }
        self.line += n as u64;
        let now = self.now;
        let parsed: Vec<Result<Option<ParsedRow>, String>> =
            self.lines[..n].par_iter().enumerate().map(|(i, bytes)| parse_line(bytes, first + i as u64, now)).collect();
        let mut rows = Vec::with_capacity(n);
        for (i, p) in parsed.into_iter().enumerate() {
            match p {
                Ok(Some(row)) => rows.push(row),
                Ok(None) => {}
                Err(message) => return Err(IngestError::Malformed { path: self.path.clone(), line: first + i as u64, message }),
            }
        }
        self.rows += rows.len() as u64;
        if n == 0 {
            if self.rows == 0 {
                return Err(IngestError::Malformed { path: self.path.clone(), line: 1, message: "has no rows (the file is empty)".into() });
            }
            return Ok(None);
        }
        Ok(Some(rows))
    }
}
