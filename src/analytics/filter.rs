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
