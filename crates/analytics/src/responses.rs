//! Raw responses, a page at a time: the rows a filter selects in a stable order (`submitted_at`,
//! then `response_id`), at most `MAX_PAGE` per page, with the total count and a cursor (keyset
//! pagination: the next page starts after the last row of this one, so pages stay consistent
//! while new rows arrive). Who may read them is the API's business; this only reads.

use super::filter::Filter;
use super::{gated, Weight};
use super::{Analytics, AnalyticsError};
use polars::prelude::*;

/// The largest page a caller may ask for.
pub const MAX_PAGE: usize = 1000;

/// Where a page starts: after this row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub submitted_at_us: i64,
    pub response_id: String,
}

impl Cursor {
    /// An opaque token: `<microseconds>.<response id>`, hex-encoded.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.submitted_at_us, self.response_id).bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// The cursor a token names. Any text is handled (it is the caller's): the token is read as
    /// bytes, never sliced as a string.
    pub fn decode(token: &str) -> Result<Cursor, AnalyticsError> {
        let bad = || AnalyticsError::invalid("after", "not a cursor returned by this API (use pageInfo.endCursor)".into());
        let digits = token.as_bytes();
        if !digits.len().is_multiple_of(2) || digits.len() > 1024 || !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad());
        }
        let nibble = |d: u8| (d as char).to_digit(16).expect("checked hex digit") as u8;
        let bytes: Vec<u8> = digits.chunks_exact(2).map(|pair| (nibble(pair[0]) << 4) | nibble(pair[1])).collect();
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (at, id) = text.split_once('.').ok_or_else(bad)?;
        Ok(Cursor { submitted_at_us: at.parse().map_err(|_| bad())?, response_id: id.to_string() })
    }
}

#[derive(Debug, Clone)]
pub struct ResponsesQuery {
    pub filter: Filter,
    pub first: usize,
    pub after: Option<Cursor>,
}

/// One stored response with its partition columns.
#[derive(Debug, Clone, PartialEq)]
pub struct RawResponse {
    pub response_id: String,
    /// RFC 3339, UTC.
    pub submitted_at: String,
    pub agency: String,
    pub fiscal_year: i32,
    pub fiscal_quarter: i32,
    pub collection_id: String,
    pub bureau: String,
    pub service_id: String,
    pub service_type: String,
    pub channel: String,
    pub stage: String,
    pub office_id: Option<String>,
    pub region: Option<String>,
    pub scale: String,
    /// trust, satisfaction, then the drivers in `Driver::ALL` order, by column name.
    pub answers: Vec<(String, Option<i32>)>,
    /// positive_<topic>, negative_<topic> taps, by column name.
    pub taps: Vec<(String, Option<bool>)>,
    pub free_text_1: Option<String>,
    pub free_text_2: Option<String>,
    pub weight: f64,
}

/// A page of raw responses.
#[derive(Debug, Clone)]
pub struct ResponsesPage {
    pub rows: Vec<RawResponse>,
    /// Rows the filter selects in all.
    pub total: u64,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl Analytics {
    /// One page of the raw responses `q.filter` selects.
    pub async fn responses(&self, q: &ResponsesQuery) -> Result<ResponsesPage, AnalyticsError> {
        self.catalog().check(&q.filter)?;
        if q.first == 0 || q.first > MAX_PAGE {
            return Err(AnalyticsError::invalid("first", format!("{} is not a page size from 1 to {MAX_PAGE}; page through more with `after`", q.first)));
        }
        let files = self.lake.response_files(&q.filter.partitions()).await?;
        if files.is_empty() {
            return Ok(ResponsesPage { rows: Vec::new(), total: 0, next: None });
        }
        let lf = self.lake.scan_responses(&files)?;
        let lf = match q.filter.predicate() {
            Some(p) => lf.filter(p),
            None => lf,
        };
        let (first, after) = (q.first, q.after.clone());
        let (total, page) = self
            .blocking(Weight::Light, move |cancel| {
                let lf = gated(lf, cancel);
                let total = lf.clone().select([len().alias("n")]).collect()?.column("n")?.u32()?.get(0).unwrap_or(0) as u64;
                cancel.check()?;
                let lf = match &after {
                    None => lf,
                    Some(c) => {
                        let at = col("submitted_at").dt().timestamp(TimeUnit::Microseconds);
                        lf.filter(
                            at.clone().gt(lit(c.submitted_at_us)).or(at.eq(lit(c.submitted_at_us)).and(col("response_id").gt(lit(c.response_id.clone())))),
                        )
                    }
                };
                let page = lf
                    .sort(["submitted_at", "response_id"], SortMultipleOptions::default())
                    .limit(first as IdxSize + 1)
                    .with_column(col("submitted_at").dt().timestamp(TimeUnit::Microseconds).alias("submitted_at_us"))
                    .collect()?;
                Ok((total, page))
            })
            .await
            .map_err(|e| self.explain_failure(&files, e))?;
        let mut rows = to_rows(&page)?;
        let next = if rows.len() > first {
            rows.truncate(first);
            let last = rows.last().expect("a full page");
            let at = page.column("submitted_at_us")?.i64()?.get(first - 1).unwrap_or(0);
            Some(Cursor { submitted_at_us: at, response_id: last.response_id.clone() })
        } else {
            None
        };
        Ok(ResponsesPage { rows, total, next })
    }
}

/// The columns of every raw response as tables of them show it: the columns inside the files,
/// then the partition columns, in this order whatever the files hold.
pub fn response_schema() -> Schema {
    let mut schema = cx_lake::schema::polars_file_schema();
    for (name, dtype) in cx_lake::schema::polars_hive_schema().iter() {
        if schema.get(name).is_none() {
            schema.with_column(name.clone(), dtype.clone());
        }
    }
    schema
}

impl Analytics {
    /// Every raw response of `agencies` (of every agency: `None`), as a lazy scan of their
    /// partitions' files with the columns of `response_schema` in its order; rows of other
    /// agencies are filtered out as well as their files (row-level, not only file-level). No
    /// file: an empty frame of that schema.
    pub async fn response_rows(&self, agencies: Option<&[String]>) -> Result<LazyFrame, AnalyticsError> {
        let mut filter = Filter::default();
        if let Some(a) = agencies {
            filter.values.insert(cx_domain::Dimension::Agency, a.to_vec());
        }
        let schema = response_schema();
        let files = self.lake.response_files(&filter.partitions()).await?;
        if files.is_empty() {
            return Ok(DataFrame::empty_with_schema(&schema).lazy());
        }
        let mut lf = self.lake.scan_responses(&files)?;
        if let Some(p) = filter.predicate() {
            lf = lf.filter(p);
        }
        Ok(lf.select(schema.iter_names().map(|n| col(n.clone())).collect::<Vec<_>>()))
    }
}

fn to_rows(df: &DataFrame) -> Result<Vec<RawResponse>, AnalyticsError> {
    let text = |name: &str| -> Result<Vec<Option<String>>, AnalyticsError> {
        Ok(df.column(name)?.cast(&DataType::String)?.str()?.iter().map(|v| v.map(str::to_string)).collect())
    };
    let ints = |name: &str| -> Result<Vec<Option<i32>>, AnalyticsError> { Ok(df.column(name)?.cast(&DataType::Int32)?.i32()?.iter().collect()) };
    let flags = |name: &str| -> Result<Vec<Option<bool>>, AnalyticsError> { Ok(df.column(name)?.bool()?.iter().collect()) };
    let at = df.column("submitted_at_us")?.i64()?.iter().collect::<Vec<_>>();
    let (id, agency, coll, bureau, service, stype, channel, stage, office, region, scale, ft1, ft2) = (
        text("response_id")?,
        text("agency")?,
        text("collection_id")?,
        text("bureau")?,
        text("service_id")?,
        text("service_type")?,
        text("channel")?,
        text("stage")?,
        text("office_id")?,
        text("region")?,
        text("scale")?,
        text("free_text_1")?,
        text("free_text_2")?,
    );
    let (fy, fq) = (ints("fiscal_year")?, ints("fiscal_quarter")?);
    let weight: Vec<Option<f64>> = df.column("weight")?.f64()?.iter().collect();
    let answer_cols: Vec<String> =
        ["trust", "satisfaction"].iter().map(|s| s.to_string()).chain(cx_domain::Driver::ALL.iter().map(|d| d.as_str().to_string())).collect();
    let answers: Vec<(String, Vec<Option<i32>>)> = answer_cols.into_iter().map(|c| ints(&c).map(|v| (c, v))).collect::<Result<_, _>>()?;
    let tap_cols: Vec<String> = cx_domain::TapIndicator::all().into_iter().map(|i| i.column()).collect();
    let taps: Vec<(String, Vec<Option<bool>>)> = tap_cols.into_iter().map(|c| flags(&c).map(|v| (c, v))).collect::<Result<_, _>>()?;
    let s = |v: &[Option<String>], i: usize| v[i].clone().unwrap_or_default();
    Ok((0..df.height())
        .map(|i| RawResponse {
            response_id: s(&id, i),
            submitted_at: at[i]
                .and_then(chrono::DateTime::from_timestamp_micros)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                .unwrap_or_default(),
            agency: s(&agency, i),
            fiscal_year: fy[i].unwrap_or_default(),
            fiscal_quarter: fq[i].unwrap_or_default(),
            collection_id: s(&coll, i),
            bureau: s(&bureau, i),
            service_id: s(&service, i),
            service_type: s(&stype, i),
            channel: s(&channel, i),
            stage: s(&stage, i),
            office_id: office[i].clone(),
            region: region[i].clone(),
            scale: s(&scale, i),
            answers: answers.iter().map(|(c, v)| (c.clone(), v[i])).collect(),
            taps: taps.iter().map(|(c, v)| (c.clone(), v[i])).collect(),
            free_text_1: ft1[i].clone(),
            free_text_2: ft2[i].clone(),
            weight: weight[i].unwrap_or(1.0),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor { submitted_at_us: 1_700_000_000_123_456, response_id: "r-1.x".into() };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        // Multibyte, emoji, combining marks and signs (issue 18: "aéb" panicked slicing inside é).
        for bad in ["", "zz", "abc", "41", &"41".repeat(600), "aéb", "éé", "🦀", "\u{301}a", "a\u{301}", "+1+1", "-1", "日本", &"é".repeat(100_000)] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }
}
