//! What a query selects: lists of values on every coding dimension, a date range on
//! `submitted_at` (UTC days, inclusive) and scales. One filter becomes both the partition filter
//! (which directories are listed at all) and the row predicate polars pushes into the scan.

use super::AnalyticsError;
use chrono::{Duration, NaiveDate};
use cx_domain::{Dimension, FiscalQuarter, PeriodUnit, Scale};
use cx_lake::PartitionFilter;
use polars::prelude::*;
use std::collections::BTreeMap;

/// The argument naming `dim` in a query's filter (`filter.service`, `filter.serviceType`), for
/// errors: the API's name of the dimension, not its lake column.
pub fn argument(dim: Dimension) -> String {
    let name = match dim {
        Dimension::Agency => "agency",
        Dimension::Bureau => "bureau",
        Dimension::Service => "service",
        Dimension::ServiceType => "serviceType",
        Dimension::Channel => "channel",
        Dimension::Office => "office",
        Dimension::Region => "region",
        Dimension::Stage => "stage",
    };
    format!("filter.{name}")
}

/// A selection of responses. Every `Some` list restricts to its values; `None` does not restrict.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Allowed values per dimension (for `Office`, `Region`: a listed value never matches null).
    pub values: BTreeMap<Dimension, Vec<String>>,
    /// First day included (UTC).
    pub from: Option<NaiveDate>,
    /// Last day included (UTC).
    pub to: Option<NaiveDate>,
    pub scales: Option<Vec<Scale>>,
    /// Which version of the lake's tables to read: the latest, or one named (time travel).
    pub as_of: cx_lake::delta::AsOf,
}

impl Filter {
    /// Restricts `dim` to `values`.
    pub fn with(mut self, dim: Dimension, values: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.values.insert(dim, values.into_iter().map(Into::into).collect());
        self
    }

    /// Checks the filter's own consistency (the catalog checks the codes).
    pub fn validate(&self) -> Result<(), AnalyticsError> {
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from > to {
                return Err(AnalyticsError::invalid("filter.from", format!("{from} is after filter.to {to}")));
            }
        }
        for (dim, values) in &self.values {
            if values.is_empty() {
                return Err(AnalyticsError::invalid(&argument(*dim), "an empty list selects nothing; leave the field out to select everything".into()));
            }
        }
        Ok(())
    }

    /// The public role's published grid, the second protection of small cells next to cell-key
    /// perturbation (issue 18; ARCHITECTURE.md, "Small cells"). Every cell a public query
    /// publishes must be a cell of a fixed grid: a time span of one fiscal quarter, one fiscal
    /// year or the whole lake, crossed with one value (or all values) of each dimension.
    ///
    /// - With `period` FISCAL_QUARTER, QUARTER (the same quarters, other labels) or FISCAL_YEAR,
    ///   `from` is the first day of one such period and `to` the last day of one: each row is
    ///   one whole period. DAY, WEEK, MONTH and calendar YEAR are refused.
    /// - Without `period`, `from` and `to` are both absent or span exactly one fiscal quarter or
    ///   one fiscal year.
    /// - A dimension lists more than one value only when the query groups by it (each row is
    ///   still one value's cell).
    ///
    /// Then a suppressed cell can be reached only as a sum of other cells of the grid, each
    /// perturbed by its own key, and there are few such sums (its fiscal year or the lake minus
    /// its other quarters; its agency or bureau minus its other services), not the hundreds of
    /// distinct date ranges or value lists whose differences average the noise away.
    pub fn check_public(&self, grouped: &[Dimension], period: Option<PeriodUnit>) -> Result<(), AnalyticsError> {
        // Two versions of one cell differ by the rows added between them: time travel would
        // difference a published cell into small ones.
        if self.as_of != cx_lake::delta::AsOf::Latest {
            return Err(AnalyticsError::invalid("filter.asOf", "the public role sees the lake as it is now; earlier versions are for analysts".into()));
        }
        let fiscal_year = |d: NaiveDate| PeriodUnit::FiscalYear.period(d);
        match period {
            Some(unit @ (PeriodUnit::FiscalQuarter | PeriodUnit::Quarter | PeriodUnit::FiscalYear)) => {
                if let Some(from) = self.from {
                    let p = unit.period(from);
                    if p.start != from {
                        return Err(AnalyticsError::invalid(
                            "filter.from",
                            format!("{from}: the public role sees whole periods; start on the first day of one ({} for {})", p.start, p.label),
                        ));
                    }
                }
                if let Some(to) = self.to {
                    let p = unit.period(to);
                    if p.end != to {
                        return Err(AnalyticsError::invalid(
                            "filter.to",
                            format!("{to}: the public role sees whole periods; end on the last day of one ({} for {})", p.end, p.label),
                        ));
                    }
                }
            }
            Some(unit) => {
                return Err(AnalyticsError::invalid("period", format!("{unit:?}: the public role sees fiscal quarters, quarters and fiscal years")));
            }
            None => {
                match (self.from, self.to) {
                    (None, None) => {}
                    (Some(from), Some(to)) => {
                        let quarter = FiscalQuarter::of(from);
                        let year = fiscal_year(from);
                        let whole = (quarter.start() == from && quarter.end() == to) || (year.start == from && year.end == to);
                        if !whole {
                            return Err(AnalyticsError::invalid(
                            "filter.from",
                            format!("{from} to {to}: the public role selects one whole fiscal quarter ({} to {}) or fiscal year ({} to {}), or groups by period", quarter.start(), quarter.end(), year.start, year.end),
                        ));
                        }
                    }
                    (from, _) => {
                        let (field, missing) = if from.is_some() { ("filter.to", "filter.to") } else { ("filter.from", "filter.from") };
                        return Err(AnalyticsError::invalid(
                            field,
                            format!("the public role selects one whole fiscal quarter or fiscal year: give {missing} too, or group by period"),
                        ));
                    }
                }
            }
        }
        for (dim, values) in &self.values {
            if values.len() > 1 && !grouped.contains(dim) {
                return Err(AnalyticsError::invalid(
                    &argument(*dim),
                    format!("{} values: the public role selects one value of a dimension at a time, or groups by it", values.len()),
                ));
            }
        }
        Ok(())
    }

    /// The partitions the filter can touch: agencies and the fiscal quarters of the date range.
    pub fn partitions(&self) -> PartitionFilter {
        PartitionFilter {
            as_of: self.as_of,
            agencies: self.values.get(&Dimension::Agency).map(|v| v.iter().cloned().collect()),
            quarters: match (self.from, self.to) {
                (None, None) => None,
                (from, to) => Some((
                    from.map_or(FiscalQuarter::new(i32::MIN / 2, 1), FiscalQuarter::of),
                    to.map_or(FiscalQuarter::new(i32::MAX / 2, 4), FiscalQuarter::of),
                )),
            },
        }
    }

    /// The row predicate, or `None` when every row passes.
    pub fn predicate(&self) -> Option<Expr> {
        self.predicate_on("submitted_at")
    }

    /// The row predicate with the date range on `time_column` (`observed_at` for telemetry).
    pub fn predicate_on(&self, time_column: &str) -> Option<Expr> {
        let mut preds: Vec<Expr> = Vec::new();
        for (dim, values) in &self.values {
            let series = Series::new("values".into(), values.clone());
            preds.push(col(dim.column()).is_in(lit(series).implode(false), false));
        }
        let micros = |d: NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_micros();
        let ts = |d: NaiveDate| lit(micros(d)).cast(DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)));
        if let Some(from) = self.from {
            preds.push(col(time_column).gt_eq(ts(from)));
        }
        if let Some(to) = self.to {
            preds.push(col(time_column).lt(ts(to + Duration::days(1))));
        }
        if let Some(scales) = &self.scales {
            let series = Series::new("scales".into(), scales.iter().map(|s| s.as_str()).collect::<Vec<_>>());
            preds.push(col("scale").is_in(lit(series).implode(false), false));
        }
        preds.into_iter().reduce(|a, b| a.and(b))
    }
}

#[cfg(test)]
mod public_tests {
    use super::*;

    #[test]
    fn the_public_sees_cells_of_the_grid() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let range = |from: &str, to: &str| Filter { from: Some(day(from)), to: Some(day(to)), ..Default::default() }.with(Dimension::Agency, ["VA"]);
        let ok = |f: &Filter, g: &[Dimension], p: Option<PeriodUnit>| assert!(f.check_public(g, p).is_ok(), "{f:?} {g:?} {p:?}: {:?}", f.check_public(g, p));
        let refused = |f: &Filter, g: &[Dimension], p: Option<PeriodUnit>, field: &str| match f.check_public(g, p) {
            Err(AnalyticsError::Invalid { field: got, .. }) => {
                assert_eq!(got, field, "{f:?} {p:?}")
            }
            other => panic!("{f:?} {p:?}: {other:?}"),
        };
        // One fiscal quarter, one fiscal year, the whole lake.
        ok(&range("2024-10-01", "2024-12-31"), &[], None);
        ok(&range("2024-10-01", "2025-09-30"), &[], None);
        ok(&Filter::default(), &[], None);
        // Whole periods when grouped by them (calendar quarters are the fiscal quarters).
        ok(&range("2024-10-01", "2025-06-30"), &[], Some(PeriodUnit::FiscalQuarter));
        ok(&range("2025-01-01", "2025-06-30"), &[], Some(PeriodUnit::Quarter));
        ok(&range("2022-10-01", "2025-09-30"), &[], Some(PeriodUnit::FiscalYear));
        ok(&Filter { to: None, ..range("2024-10-01", "2025-06-30") }, &[], Some(PeriodUnit::FiscalQuarter));
        // Anything else.
        refused(&range("2024-10-01", "2025-03-31"), &[], None, "filter.from");
        refused(&range("2024-11-01", "2024-12-31"), &[], None, "filter.from");
        refused(&Filter { to: None, ..range("2024-10-01", "2024-12-31") }, &[], None, "filter.to");
        refused(&Filter { from: None, ..range("2024-10-01", "2024-12-31") }, &[], None, "filter.from");
        refused(&range("2024-11-01", "2025-06-30"), &[], Some(PeriodUnit::FiscalQuarter), "filter.from");
        refused(&range("2024-10-01", "2025-05-31"), &[], Some(PeriodUnit::FiscalQuarter), "filter.to");
        refused(&range("2025-01-01", "2025-09-30"), &[], Some(PeriodUnit::FiscalYear), "filter.from");
        for unit in [PeriodUnit::Day, PeriodUnit::Week, PeriodUnit::Month, PeriodUnit::Year] {
            refused(&Filter::default(), &[], Some(unit), "period");
        }
        // Lists of values only of grouped dimensions.
        let two = Filter::default().with(Dimension::Service, ["A", "B"]);
        refused(&two, &[], None, "filter.service");
        refused(&two, &[Dimension::Office], None, "filter.service");
        ok(&two, &[Dimension::Service], None);
    }
}
