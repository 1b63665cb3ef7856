//! What a query selects: lists of values on every coding dimension, a date range on
//! `submitted_at` (UTC days, inclusive) and scales. One filter becomes both the partition filter
//! (which directories are listed at all) and the row predicate polars pushes into the scan.

use super::AnalyticsError;
use crate::domain::{Dimension, FiscalQuarter, Scale};
use crate::store::PartitionFilter;
use chrono::{Duration, NaiveDate};
use polars::prelude::*;
use std::collections::BTreeMap;

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
                return Err(AnalyticsError::invalid(
                    &format!("filter.{}", dim.as_str()),
                    "an empty list selects nothing; leave the field out to select everything".into(),
                ));
            }
        }
        Ok(())
    }

    /// The second protection of small cells for the public role (issue 18; next to cell-key
    /// perturbation): whole fiscal quarters only (`from` the first day of one, `to` the last day
    /// of one), periods of a quarter or longer, and at most one value per dimension and scale.
    /// Then a small cell can only be reached as a sum of other separately perturbed cells, whose
    /// noise adds up, not as the difference of two overlapping selections (an agency minus a
    /// list of its other services; two date ranges a month apart). Not yet enforced: the
    /// differencing battery must be adapted first (see the issue 18 note).
    pub fn check_public(&self, period: Option<crate::domain::PeriodUnit>) -> Result<(), AnalyticsError> {
        use crate::domain::PeriodUnit;
        if let Some(from) = self.from {
            if FiscalQuarter::of(from).start() != from {
                return Err(AnalyticsError::invalid(
                    "filter.from",
                    format!("{from}: the public role selects whole fiscal quarters; start on the first day of one ({})", FiscalQuarter::of(from).start()),
                ));
            }
        }
        if let Some(to) = self.to {
            if FiscalQuarter::of(to).end() != to {
                return Err(AnalyticsError::invalid(
                    "filter.to",
                    format!("{to}: the public role selects whole fiscal quarters; end on the last day of one ({})", FiscalQuarter::of(to).end()),
                ));
            }
        }
        if let Some(unit @ (PeriodUnit::Day | PeriodUnit::Week | PeriodUnit::Month)) = period {
            return Err(AnalyticsError::invalid("period", format!("{unit:?}: the public role sees periods of a quarter or longer")));
        }
        for (dim, values) in &self.values {
            if values.len() > 1 {
                return Err(AnalyticsError::invalid(
                    &format!("filter.{}", dim.as_str()),
                    format!("{} values: the public role selects one at a time", values.len()),
                ));
            }
        }
        if self.scales.as_ref().is_some_and(|s| s.len() > 1) {
            return Err(AnalyticsError::invalid("filter.scales", "the public role selects one scale at a time".into()));
        }
        Ok(())
    }

    /// The partitions the filter can touch: agencies and the fiscal quarters of the date range.
    pub fn partitions(&self) -> PartitionFilter {
        PartitionFilter {
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
    use crate::domain::PeriodUnit;

    #[test]
    fn the_public_selects_whole_quarters_and_one_value_per_dimension() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let whole = Filter { from: Some(day("2024-10-01")), to: Some(day("2025-03-31")), ..Default::default() }.with(Dimension::Agency, ["VA"]);
        assert!(whole.check_public(Some(PeriodUnit::FiscalQuarter)).is_ok());
        assert!(whole.check_public(Some(PeriodUnit::Year)).is_ok());
        let refused = |f: &Filter, p: Option<PeriodUnit>, field: &str| match f.check_public(p) {
            Err(AnalyticsError::Invalid { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{f:?} {p:?}: {other:?}"),
        };
        refused(&Filter { from: Some(day("2024-11-01")), ..whole.clone() }, None, "filter.from");
        refused(&Filter { to: Some(day("2025-02-28")), ..whole.clone() }, None, "filter.to");
        refused(&whole, Some(PeriodUnit::Month), "period");
        refused(&whole.clone().with(Dimension::Service, ["A", "B"]), None, &format!("filter.{}", Dimension::Service.as_str()));
        refused(&Filter { scales: Some(vec![crate::domain::Scale::Likert5, crate::domain::Scale::Thumbs]), ..whole.clone() }, None, "filter.scales");
    }
}
