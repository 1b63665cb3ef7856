//! Turning one input row, whatever its format, into a typed `Response`: each format exposes its
//! row through `Fields` (text, or typed values where the format has types), and one function
//! parses and names every problem by column. Validation rules themselves live in the domain.

use chrono::{DateTime, Utc};
use cx_domain::survey::TAP_TOPICS;
use cx_domain::validate::{Problem, Response};
use cx_domain::{Channel, Scale, ServiceType, Stage};
use std::borrow::Cow;
use std::str::FromStr;
use std::sync::LazyLock;

/// The columns an input row may carry, in this order: `agency` (a partition column, so not in
/// the data files) and then the data-file columns of `schema::response_columns()`.
pub static INPUT_COLUMNS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut cols = vec!["agency".to_string()];
    cols.extend(cx_lake::schema::response_columns().into_iter().map(|c| c.name));
    cols
});

/// Positions in `INPUT_COLUMNS`.
pub mod col {
    pub const AGENCY: usize = 0;
    pub const RESPONSE_ID: usize = 1;
    pub const SUBMITTED_AT: usize = 2;
    pub const COLLECTION_ID: usize = 3;
    pub const BUREAU: usize = 4;
    pub const SERVICE_ID: usize = 5;
    pub const SERVICE_TYPE: usize = 6;
    pub const CHANNEL: usize = 7;
    pub const OFFICE_ID: usize = 8;
    pub const REGION: usize = 9;
    pub const STAGE: usize = 10;
    pub const SCALE: usize = 11;
    pub const TRUST: usize = 12;
    pub const SATISFACTION: usize = 13;
    pub const DRIVERS: usize = 14;
    pub const POSITIVE: usize = 20;
    pub const NEGATIVE: usize = 27;
    pub const FREE_TEXT_1: usize = 34;
    pub const FREE_TEXT_2: usize = 35;
    pub const WEIGHT: usize = 36;
    pub const COUNT: usize = 37;
}

/// Position of an input column by name.
pub fn input_column(name: &str) -> Option<usize> {
    INPUT_COLUMNS.iter().position(|c| c == name)
}

fn bad(column: usize, reason: String) -> Problem {
    Problem { column: INPUT_COLUMNS[column].clone(), reason }
}

/// Timestamp layouts accepted besides RFC 3339, compiled once (chrono re-reads a format string
/// on every call otherwise). Zoned ones first; the rest are read as UTC.
static ZONED: LazyLock<Vec<Vec<chrono::format::Item<'static>>>> = LazyLock::new(|| {
    ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"].iter().map(|f| chrono::format::StrftimeItems::new(f).parse().expect("valid format")).collect()
});
static NAIVE: LazyLock<Vec<Vec<chrono::format::Item<'static>>>> = LazyLock::new(|| {
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d"].iter().map(|f| chrono::format::StrftimeItems::new(f).parse().expect("valid format")).collect()
});

/// Parses a timestamp: RFC 3339 (`2025-03-01T12:00:00Z`), the SQL form DuckDB and Spark write
/// (`2025-03-01 12:00:00.123+00`), or a zone-less date-time or date, read as UTC.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    use chrono::format::{parse, Parsed};
    let t = text.trim();
    if let Ok(ts) = DateTime::parse_from_rfc3339(t) {
        return Some(ts.with_timezone(&Utc));
    }
    for items in ZONED.iter() {
        let mut p = Parsed::new();
        if parse(&mut p, t, items.iter()).is_ok() {
            if let Ok(ts) = p.to_datetime() {
                return Some(ts.with_timezone(&Utc));
            }
        }
    }
    let naive = t.strip_suffix(" UTC").unwrap_or(t);
    for items in NAIVE.iter() {
        let mut p = Parsed::new();
        if parse(&mut p, naive, items.iter()).is_ok() {
            if let Ok(ts) = p.to_naive_datetime_with_offset(0) {
                return Some(ts.and_utc());
            }
            if let Ok(d) = p.to_naive_date() {
                return Some(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
            }
        }
    }
    None
}

/// Parses a tapped indicator: `true`/`false`, `1`/`0` (any case).
pub fn parse_flag(text: &str) -> Option<bool> {
    match text.trim() {
        "1" => Some(true),
        "0" => Some(false),
        t if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("t") => Some(true),
        t if t.eq_ignore_ascii_case("false") || t.eq_ignore_ascii_case("f") => Some(false),
        _ => None,
    }
}

fn shown(text: &str) -> String {
    const SHOWN: usize = 40;
    if text.len() <= SHOWN {
        text.escape_debug().to_string()
    } else {
        let mut end = SHOWN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes)", text[..end].escape_debug(), text.len())
    }
}

/// One input row. Absent columns, nulls and empty text are all `None`. The typed accessors
/// parse text by default; formats with types (JSON, Parquet) override them.
pub trait Fields {
    fn text(&self, column: usize) -> Result<Option<Cow<'_, str>>, Problem>;

    fn int(&self, column: usize) -> Result<Option<i64>, Problem> {
        match self.text(column)? {
            None => Ok(None),
            Some(t) => t.trim().parse::<i64>().map(Some).map_err(|_| bad(column, format!("'{}' is not a whole number", shown(&t)))),
        }
    }

    fn flag(&self, column: usize) -> Result<Option<bool>, Problem> {
        match self.text(column)? {
            None => Ok(None),
            Some(t) => parse_flag(&t).map(Some).ok_or_else(|| bad(column, format!("'{}' is not true/false or 1/0", shown(&t)))),
        }
    }

    fn real(&self, column: usize) -> Result<Option<f64>, Problem> {
        match self.text(column)? {
            None => Ok(None),
            Some(t) => t.trim().parse::<f64>().map(Some).map_err(|_| bad(column, format!("'{}' is not a number", shown(&t)))),
        }
    }

    fn timestamp(&self, column: usize) -> Result<Option<DateTime<Utc>>, Problem> {
        match self.text(column)? {
            None => Ok(None),
            Some(t) => {
                parse_timestamp(&t).map(Some).ok_or_else(|| bad(column, format!("'{}' is not a timestamp (RFC 3339, e.g. 2025-03-01T12:00:00Z)", shown(&t))))
            }
        }
    }
}

/// Collects problems while reading fields, so one row reports all of them at once.
struct Reader<'a, F: Fields + ?Sized> {
    f: &'a F,
    problems: Vec<Problem>,
}

impl<F: Fields + ?Sized> Reader<'_, F> {
    fn keep<T>(&mut self, r: Result<Option<T>, Problem>) -> Option<T> {
        r.unwrap_or_else(|p| {
            self.problems.push(p);
            None
        })
    }

    fn required_text(&mut self, column: usize) -> String {
        match self.f.text(column) {
            Ok(Some(t)) => t.into_owned(),
            Ok(None) => {
                self.problems.push(bad(column, "is required".into()));
                String::new()
            }
            Err(p) => {
                self.problems.push(p);
                String::new()
            }
        }
    }

    fn optional_text(&mut self, column: usize) -> Option<String> {
        let t = self.f.text(column);
        self.keep(t).map(Cow::into_owned)
    }

    fn code<T: FromStr<Err = String>>(&mut self, column: usize, default: Option<T>) -> Option<T> {
        match self.f.text(column) {
            Ok(Some(t)) => match t.trim().parse::<T>() {
                Ok(v) => Some(v),
                Err(e) => {
                    self.problems.push(bad(column, e));
                    None
                }
            },
            Ok(None) if default.is_some() => default,
            Ok(None) => {
                self.problems.push(bad(column, "is required".into()));
                None
            }
            Err(p) => {
                self.problems.push(p);
                None
            }
        }
    }
}

/// Parses one row into a response, or every problem it has (parse failures and rule
/// violations alike, each naming its column). `now` bounds timestamps.
pub fn parse_response<F: Fields + ?Sized>(f: &F, now: DateTime<Utc>) -> Result<Response, Vec<Problem>> {
    let mut r = Reader { f, problems: Vec::new() };
    let response_id = r.required_text(col::RESPONSE_ID);
    let submitted_at = f.timestamp(col::SUBMITTED_AT);
    let submitted_at = match submitted_at {
        Ok(Some(t)) => Some(t),
        Ok(None) => {
            r.problems.push(bad(col::SUBMITTED_AT, "is required".into()));
            None
        }
        Err(p) => {
            r.problems.push(p);
            None
        }
    };
    let agency = r.required_text(col::AGENCY);
    let collection_id = r.required_text(col::COLLECTION_ID);
    let bureau = r.required_text(col::BUREAU);
    let service_id = r.required_text(col::SERVICE_ID);
    let service_type = r.code::<ServiceType>(col::SERVICE_TYPE, None);
    let channel = r.code::<Channel>(col::CHANNEL, None);
    let office_id = r.optional_text(col::OFFICE_ID);
    let region = r.optional_text(col::REGION);
    let stage = r.code::<Stage>(col::STAGE, Some(Stage::Transaction));
    let scale = r.code::<Scale>(col::SCALE, None);
    let trust = {
        let v = f.int(col::TRUST);
        r.keep(v)
    };
    let satisfaction = {
        let v = f.int(col::SATISFACTION);
        r.keep(v)
    };
    let mut drivers = [None; 6];
    for (i, d) in drivers.iter_mut().enumerate() {
        let v = f.int(col::DRIVERS + i);
        *d = r.keep(v);
    }
    let mut positive = [None; 7];
    let mut negative = [None; 7];
    for i in 0..TAP_TOPICS.len() {
        let (p, n) = (f.flag(col::POSITIVE + i), f.flag(col::NEGATIVE + i));
        positive[i] = r.keep(p);
        negative[i] = r.keep(n);
    }
    let free_text = [r.optional_text(col::FREE_TEXT_1), r.optional_text(col::FREE_TEXT_2)];
    let weight = {
        let v = f.real(col::WEIGHT);
        r.keep(v)
    }
    .unwrap_or(1.0);
    let (Some(submitted_at), Some(service_type), Some(channel), Some(stage), Some(scale)) = (submitted_at, service_type, channel, stage, scale) else {
        return Err(r.problems);
    };
    let response = Response {
        response_id,
        submitted_at,
        collection_id,
        agency,
        bureau,
        service_id,
        service_type,
        channel,
        office_id,
        region,
        stage,
        scale,
        trust,
        satisfaction,
        drivers,
        positive,
        negative,
        free_text,
        weight,
    };
    r.problems.extend(response.problems(now));
    if r.problems.is_empty() {
        Ok(response)
    } else {
        Err(r.problems)
    }
}

/// A response as the text of its input columns (the inverse of `parse_response` for text
/// formats): used to write exports and the submit log.
pub fn response_texts(r: &Response) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = vec![None; col::COUNT];
    out[col::AGENCY] = Some(r.agency.clone());
    out[col::RESPONSE_ID] = Some(r.response_id.clone());
    out[col::SUBMITTED_AT] = Some(r.submitted_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
    out[col::COLLECTION_ID] = Some(r.collection_id.clone());
    out[col::BUREAU] = Some(r.bureau.clone());
    out[col::SERVICE_ID] = Some(r.service_id.clone());
    out[col::SERVICE_TYPE] = Some(r.service_type.to_string());
    out[col::CHANNEL] = Some(r.channel.to_string());
    out[col::OFFICE_ID] = r.office_id.clone();
    out[col::REGION] = r.region.clone();
    out[col::STAGE] = Some(r.stage.to_string());
    out[col::SCALE] = Some(r.scale.to_string());
    out[col::TRUST] = r.trust.map(|v| v.to_string());
    out[col::SATISFACTION] = r.satisfaction.map(|v| v.to_string());
    for i in 0..6 {
        out[col::DRIVERS + i] = r.drivers[i].map(|v| v.to_string());
    }
    for i in 0..TAP_TOPICS.len() {
        out[col::POSITIVE + i] = r.positive[i].map(|v| v.to_string());
        out[col::NEGATIVE + i] = r.negative[i].map(|v| v.to_string());
    }
    out[col::FREE_TEXT_1] = r.free_text[0].clone();
    out[col::FREE_TEXT_2] = r.free_text[1].clone();
    out[col::WEIGHT] = Some(r.weight.to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_domain::survey::tap_column;
    use cx_domain::Driver;

    #[test]
    fn column_positions_match_the_schema() {
        let at = |i: usize| INPUT_COLUMNS[i].as_str();
        assert_eq!(INPUT_COLUMNS.len(), col::COUNT);
        assert_eq!(
            [at(col::AGENCY), at(col::RESPONSE_ID), at(col::SUBMITTED_AT), at(col::SCALE), at(col::SATISFACTION), at(col::WEIGHT)],
            ["agency", "response_id", "submitted_at", "scale", "satisfaction", "weight"]
        );
        for (i, d) in Driver::ALL.iter().enumerate() {
            assert_eq!(at(col::DRIVERS + i), d.as_str());
        }
        for (i, t) in TAP_TOPICS.iter().enumerate() {
            assert_eq!(at(col::POSITIVE + i), tap_column(t, true));
            assert_eq!(at(col::NEGATIVE + i), tap_column(t, false));
        }
        assert_eq!((at(col::FREE_TEXT_1), at(col::FREE_TEXT_2)), ("free_text_1", "free_text_2"));
    }

    #[test]
    fn timestamps_in_the_forms_other_engines_write() {
        let want = "2025-03-01T12:00:00.250Z".parse::<DateTime<Utc>>().unwrap();
        for t in [
            "2025-03-01T12:00:00.25Z",
            "2025-03-01T07:00:00.25-05:00",
            "2025-03-01 12:00:00.25+00",
            "2025-03-01 12:00:00.25+00:00",
            "2025-03-01 12:00:00.25",
            "2025-03-01 12:00:00.25 UTC",
        ] {
            assert_eq!(parse_timestamp(t), Some(want), "{t}");
        }
        assert_eq!(parse_timestamp("2025-03-01"), "2025-03-01T00:00:00Z".parse().ok());
        for t in ["", "yesterday", "2025-13-01", "2025-03-01T25:00:00Z"] {
            assert_eq!(parse_timestamp(t), None, "{t}");
        }
    }

    /// A text row over all input columns.
    struct Texts(Vec<Option<String>>);
    impl Fields for Texts {
        fn text(&self, column: usize) -> Result<Option<Cow<'_, str>>, Problem> {
            Ok(self.0[column].as_deref().filter(|t| !t.is_empty()).map(Cow::Borrowed))
        }
    }

    #[test]
    fn text_round_trip_and_every_problem_at_once() {
        let now = "2026-11-25T00:00:00Z".parse().unwrap();
        let mut row = vec![None; col::COUNT];
        for (c, v) in [
            (col::AGENCY, "VA"),
            (col::RESPONSE_ID, "r1"),
            (col::SUBMITTED_AT, "2025-03-01T12:00:00Z"),
            (col::COLLECTION_ID, "c1"),
            (col::BUREAU, "VA-VBA"),
            (col::SERVICE_ID, "VA-S01"),
            (col::SERVICE_TYPE, "benefits"),
            (col::CHANNEL, "digital"),
            (col::SCALE, "thumbs"),
            (col::TRUST, "1"),
            (col::POSITIVE + 2, "true"),
            (col::NEGATIVE, "0"),
            (col::WEIGHT, "1.5"),
        ] {
            row[c] = Some(v.to_string());
        }
        let r = parse_response(&Texts(row.clone()), now).unwrap();
        assert_eq!((r.stage, r.positive[2], r.negative[0], r.weight), (Stage::Transaction, Some(true), Some(false), 1.5));
        assert_eq!(parse_response(&Texts(response_texts(&r)), now).unwrap(), r);

        row[col::CHANNEL] = Some("fax".into());
        row[col::TRUST] = Some("five".into());
        row[col::SATISFACTION] = Some("3".into());
        row[col::SUBMITTED_AT] = None;
        let problems = parse_response(&Texts(row), now).unwrap_err();
        let cols: Vec<&str> = problems.iter().map(|p| p.column.as_str()).collect();
        assert_eq!(cols, ["submitted_at", "channel", "trust"]);
        assert!(problems[1].reason.contains("unknown Channel 'fax'"), "{problems:?}");
    }
}
