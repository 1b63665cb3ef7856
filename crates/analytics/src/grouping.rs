//! Group keys shared by every analytical query: the grouping dimensions and the period, as
//! polars key expressions in the plan and as a typed [`GroupKey`] when reading results back.

use chrono::NaiveDate;
use cx_domain::{Dimension, FiscalQuarter, Period, PeriodUnit};
use polars::prelude::*;

/// Which group a result row describes: the value of each grouped dimension (null where the
/// response has none, such as a digital response's office) and the period.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub values: Vec<(Dimension, Option<String>)>,
    pub period: Option<Period>,
}

impl GroupKey {
    /// A stable hash of a group key, so each group's bootstrap stream depends on the seed and the
    /// group only (not on which other groups the query returned): BLAKE3 of the key's dimensions,
    /// values and period as length-prefixed fields (never of a `Debug` text, which may change).
    pub fn stable_hash(&self) -> u64 {
        let mut h = blake3::Hasher::new();
        let mut field = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        for (dim, value) in &self.values {
            field(dim.as_str().as_bytes());
            match value {
                Some(v) => field(v.as_bytes()),
                None => field(b"\xff null"),
            }
        }
        if let Some(p) = &self.period {
            field(p.label.as_bytes());
            field(p.start.to_string().as_bytes());
        }
        u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
    }

    /// The value of `dim` in this key, when grouped by it.
    pub fn get(&self, dim: Dimension) -> Option<&str> {
        self.values.iter().find(|(d, _)| *d == dim).and_then(|(_, v)| v.as_deref())
    }
}

/// The key expressions of a grouping: the dimensions' columns, then the period's column(s).
/// Fiscal periods come straight from the partition columns; calendar periods truncate the
/// timestamp (labels come from the domain calendar when read back).
pub fn key_exprs(group_by: &[Dimension], period: Option<PeriodUnit>) -> Vec<Expr> {
    let mut keys: Vec<Expr> = group_by.iter().map(|d| col(d.column())).collect();
    keys.extend(period_exprs("submitted_at", period));
    keys
}

/// The names of the key columns `key_exprs` makes (a partial result summed again is grouped
/// by these).
pub fn key_names(group_by: &[Dimension], period: Option<PeriodUnit>) -> Vec<String> {
    let mut names: Vec<String> = group_by.iter().map(|d| d.column().to_string()).collect();
    match period {
        None => {}
        Some(PeriodUnit::FiscalQuarter) => names.extend(["fiscal_year".to_string(), "fiscal_quarter".to_string()]),
        Some(PeriodUnit::FiscalYear) => names.push("fiscal_year".to_string()),
        Some(_) => names.push("period_start".to_string()),
    }
    names
}

/// The key expressions of a period over the timestamp `time_column`.
pub fn period_exprs(time_column: &str, period: Option<PeriodUnit>) -> Vec<Expr> {
    let mut keys = Vec::new();
    // Truncating the UTC date is the same period as truncating the UTC timestamp, and much
    // cheaper (no time zone arithmetic per row).
    let truncated = |every: &str| col(time_column).cast(DataType::Date).dt().truncate(lit(every)).alias("period_start");
    match period {
        None => {}
        Some(PeriodUnit::FiscalQuarter) => keys.extend([col("fiscal_year"), col("fiscal_quarter")]),
        Some(PeriodUnit::FiscalYear) => keys.push(col("fiscal_year")),
        Some(PeriodUnit::Day) => keys.push(col(time_column).cast(DataType::Date).alias("period_start")),
        Some(PeriodUnit::Week) => keys.push(truncated("1w")),
        Some(PeriodUnit::Month) => keys.push(truncated("1mo")),
        Some(PeriodUnit::Quarter) => keys.push(truncated("1q")),
        Some(PeriodUnit::Year) => keys.push(truncated("1y")),
    }
    keys
}

/// Reads the [`GroupKey`] of each row of a collected result.
pub struct KeyReader<'a> {
    dims: Vec<(Dimension, &'a StringChunked)>,
    period: PeriodColumns<'a>,
}

enum PeriodColumns<'a> {
    None,
    Fiscal { unit: PeriodUnit, years: &'a Int32Chunked, quarters: Option<&'a Int32Chunked> },
    Calendar { unit: PeriodUnit, starts: &'a DateChunked },
}

impl<'a> KeyReader<'a> {
    pub fn new(df: &'a DataFrame, group_by: &[Dimension], period: Option<PeriodUnit>) -> PolarsResult<Self> {
        let dims = group_by.iter().map(|d| Ok((*d, df.column(d.column())?.str()?))).collect::<PolarsResult<_>>()?;
        let period = match period {
            None => PeriodColumns::None,
            Some(unit @ (PeriodUnit::FiscalQuarter | PeriodUnit::FiscalYear)) => PeriodColumns::Fiscal {
                unit,
                years: df.column("fiscal_year")?.i32()?,
                quarters: if unit == PeriodUnit::FiscalQuarter { Some(df.column("fiscal_quarter")?.i32()?) } else { None },
            },
            Some(unit) => PeriodColumns::Calendar { unit, starts: df.column("period_start")?.date()? },
        };
        Ok(KeyReader { dims, period })
    }

    /// The key of row `i`.
    pub fn key(&self, i: usize) -> GroupKey {
        GroupKey { values: self.dims.iter().map(|(d, c)| (*d, c.get(i).map(str::to_string))).collect(), period: self.period(i) }
    }

    /// Row `i`'s key as borrowed values and a number per period (the fiscal year and quarter,
    /// or the first day): equal for two rows exactly when their keys are, with no allocation
    /// of strings or period labels. `key(i)` makes the key itself.
    pub fn raw(&self, i: usize) -> (Vec<Option<&'a str>>, Option<i64>) {
        let period = match &self.period {
            PeriodColumns::None => None,
            PeriodColumns::Fiscal { years, quarters, .. } => years.get(i).map(|y| i64::from(y) * 10 + i64::from(quarters.and_then(|q| q.get(i)).unwrap_or(0))),
            PeriodColumns::Calendar { starts, .. } => starts.phys.get(i).map(i64::from),
        };
        (self.dims.iter().map(|(_, c)| c.get(i)).collect(), period)
    }

    fn period(&self, i: usize) -> Option<Period> {
        match &self.period {
            PeriodColumns::None => None,
            PeriodColumns::Fiscal { unit, years, quarters } => {
                let y = years.get(i)?;
                let q = quarters.map_or(Some(1), |c| c.get(i))?;
                Some(unit.period(FiscalQuarter::new(y, q as u32).start()))
            }
            PeriodColumns::Calendar { unit, starts } => {
                let days = starts.phys.get(i)?;
                Some(unit.period(NaiveDate::from_ymd_opt(1970, 1, 1)? + chrono::Duration::days(days as i64)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stable_hash_tells_keys_apart_and_depends_on_nothing_else() {
        let key = |v: Option<&str>| GroupKey { values: vec![(Dimension::Agency, v.map(str::to_string))], period: None };
        let (a, b, null, text_null) = (key(Some("VA")), key(Some("SSA")), key(None), key(Some("\u{ff} null")));
        assert_eq!(a.stable_hash(), key(Some("VA")).stable_hash());
        let hashes = [a.stable_hash(), b.stable_hash(), null.stable_hash(), text_null.stable_hash()];
        for i in 0..hashes.len() {
            for j in 0..i {
                assert_ne!(hashes[i], hashes[j], "{i} {j}");
            }
        }
        // Values are length-prefixed: moving a boundary between two values changes the hash.
        let two =
            |x: &str, y: &str| GroupKey { values: vec![(Dimension::Agency, Some(x.to_string())), (Dimension::Service, Some(y.to_string()))], period: None };
        assert_ne!(two("VA", "X").stable_hash(), two("VAX", "").stable_hash());
    }
}
