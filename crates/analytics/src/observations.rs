//! Telemetry and service-level indicators: aggregates by service and period (count, sum, mean,
//! median, min, max of the observations, one polars pass with the filter pushed into the scan),
//! drop alarms on telemetry counts, and indicators beside the CX scores of the same service
//! (or office) and period, with their correlation across services or offices.
//!
//! The drop rule (`alarms`): for each series (service, metric, channel, page), the window is
//! the `window_days` days ending at `as_of` and the baseline the `baseline_days` days before
//! it; days without an observation count 0. The expected window total is the baseline's daily
//! mean × `window_days`. A series alarms when its window total is at most (1 − `min_drop`) of
//! what was expected *and* its lower-tail p-value is below `alpha` under a quasi-Poisson model:
//! with φ the baseline's daily variance over its daily mean (at least 1), P(X ≤ total/φ) for
//! X ~ Poisson(expected/φ) (continuous in total/φ: Q(total/φ + 1, expected/φ)). The test keeps small series quiet (a few missing clicks are not a
//! drop) and scales with how much the series varies by itself (real and generated telemetry
//! vary more than Poisson: φ near 1 for steady counts, several for bursty ones, weekday swings
//! included, which makes the test conservative); the ratio keeps huge series from alarming on
//! small, statistically clear dips. With whole weeks in both windows, weekday patterns cancel.
//! Measured on generated telemetry without drops (`tests/it/observations.rs`), and the planted
//! drop's detection delay, in ARCHITECTURE.md.

use super::grouping::{period_exprs, KeyReader};
use super::Weight;
use super::{Analytics, AnalyticsError, Filter, ScoresQuery};
use chrono::{Duration, NaiveDate};
use cx_domain::observations::ObservationTable;
use cx_domain::{Dimension, Measure, Period, PeriodUnit};
use cx_lake::Table;
use cx_stats::Interval;
use polars::prelude::*;
use std::collections::BTreeMap;

/// What an aggregate can be grouped by besides the metric (always a key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObservationKey {
    Agency,
    Service,
    Channel,
    Page,
    Office,
}

impl ObservationKey {
    pub fn column(self) -> &'static str {
        match self {
            ObservationKey::Agency => "agency",
            ObservationKey::Service => "service_id",
            ObservationKey::Channel => "channel",
            ObservationKey::Page => "page",
            ObservationKey::Office => "office_id",
        }
    }
}

/// A selection of observations: the filter's agency, service, channel and office lists and
/// date range (on `observed_at`), plus metrics and pages.
#[derive(Debug, Clone, Default)]
pub struct ObservationFilter {
    pub filter: Filter,
    pub metrics: Option<Vec<String>>,
    pub pages: Option<Vec<String>>,
}

impl ObservationFilter {
    fn predicate(&self) -> Option<Expr> {
        let list = |column: &str, values: &[String]| col(column).is_in(lit(Series::new("v".into(), values.to_vec())).implode(false), false);
        let mut preds: Vec<Expr> = self.filter.predicate_on("observed_at").into_iter().collect();
        if let Some(m) = &self.metrics {
            preds.push(list("metric", m));
        }
        if let Some(p) = &self.pages {
            preds.push(list("page", p));
        }
        preds.into_iter().reduce(|a, b| a.and(b))
    }

    fn validate(&self) -> Result<(), AnalyticsError> {
        for dim in self.filter.values.keys() {
            if !matches!(dim, Dimension::Agency | Dimension::Service | Dimension::Channel | Dimension::Office) {
                return Err(AnalyticsError::invalid(
                    &super::filter::argument(*dim),
                    "telemetry and indicators are coded by agency, service, channel and office only".into(),
                ));
            }
        }
        for (field, list) in [("metrics", &self.metrics), ("pages", &self.pages)] {
            if list.as_ref().is_some_and(|l| l.is_empty()) {
                return Err(AnalyticsError::invalid(field, "an empty list selects nothing; leave it out to select everything".into()));
            }
        }
        Ok(())
    }
}

/// An aggregate query.
#[derive(Debug, Clone)]
pub struct AggregateQuery {
    pub table: ObservationTable,
    pub filter: ObservationFilter,
    pub by: Vec<ObservationKey>,
    pub period: Option<PeriodUnit>,
}

/// One group of observations of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateRow {
    pub metric: String,
    pub keys: Vec<(ObservationKey, Option<String>)>,
    pub period: Option<Period>,
    /// Observations in the group.
    pub count: u64,
    pub sum: f64,
    pub mean: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl AggregateRow {
    pub fn get(&self, key: ObservationKey) -> Option<&str> {
        self.keys.iter().find(|(k, _)| *k == key).and_then(|(_, v)| v.as_deref())
    }
}

impl Analytics {
    /// The files and scan of `table` the filter admits (`None`: no file).
    async fn scan_observations(&self, table: ObservationTable, f: &ObservationFilter) -> Result<Option<(Vec<cx_lake::DataFile>, LazyFrame)>, AnalyticsError> {
        f.validate()?;
        self.catalog().check(&f.filter)?;
        let files = self.lake.table_files(Table::Observations(table), &f.filter.partitions()).await?;
        if files.is_empty() {
            return Ok(None);
        }
        let lf = self.lake.scan_observations(&files)?;
        let lf = match f.predicate() {
            Some(p) => lf.filter(p),
            None => lf,
        };
        Ok(Some((files, lf)))
    }

    /// Count, sum, mean, median, min and max of the observations per metric, keys and period.
    pub async fn aggregate(&self, q: &AggregateQuery) -> Result<Vec<AggregateRow>, AnalyticsError> {
        let Some((files, lf)) = self.scan_observations(q.table, &q.filter).await? else {
            return Ok(Vec::new());
        };
        let mut keys: Vec<Expr> = vec![col("metric")];
        keys.extend(q.by.iter().map(|k| col(k.column())));
        keys.extend(period_exprs("observed_at", q.period));
        let v = col("value");
        let lf = lf.group_by(keys).agg([
            len().cast(DataType::UInt64).alias("count"),
            v.clone().sum().alias("sum"),
            v.clone().mean().alias("mean"),
            v.clone().median().alias("median"),
            v.clone().min().alias("min"),
            v.max().alias("max"),
        ]);
        let df = self
            .blocking(Weight::Light, move |_| Ok(lf.collect_with_engine(Engine::Streaming)?.unwrap_single()))
            .await
            .map_err(|e| self.explain_failure(&files, e))?;
        let periods = KeyReader::new(&df, &[], q.period)?;
        let metric = df.column("metric")?.str()?;
        let key_cols: Vec<(ObservationKey, &StringChunked)> = q.by.iter().map(|k| Ok((*k, df.column(k.column())?.str()?))).collect::<PolarsResult<_>>()?;
        let num = |c: &str| -> PolarsResult<Float64Chunked> { Ok(df.column(c)?.cast(&DataType::Float64)?.f64()?.clone()) };
        let (count, sum, mean, median, min, max) = (df.column("count")?.u64()?, num("sum")?, num("mean")?, num("median")?, num("min")?, num("max")?);
        let mut rows: Vec<AggregateRow> = (0..df.height())
            .map(|i| AggregateRow {
                metric: metric.get(i).unwrap_or_default().to_string(),
                keys: key_cols.iter().map(|(k, c)| (*k, c.get(i).map(str::to_string))).collect(),
                period: periods.key(i).period,
                count: count.get(i).unwrap_or(0),
                sum: sum.get(i).unwrap_or(0.0),
                mean: mean.get(i).unwrap_or(f64::NAN),
                median: median.get(i).unwrap_or(f64::NAN),
                min: min.get(i).unwrap_or(f64::NAN),
                max: max.get(i).unwrap_or(f64::NAN),
            })
            .collect();
        rows.sort_by(|a, b| (&a.metric, &a.keys, a.period.as_ref().map(|p| p.start)).cmp(&(&b.metric, &b.keys, b.period.as_ref().map(|p| p.start))));
        Ok(rows)
    }
}

/// A drop-alarm query (see the module documentation for the rule).
#[derive(Debug, Clone)]
pub struct AlarmQuery {
    pub filter: ObservationFilter,
    /// Last day of the window; default the last day with telemetry.
    pub as_of: Option<NaiveDate>,
    pub window_days: u32,
    pub baseline_days: u32,
    /// Smallest fall (share of the expected total) that alarms.
    pub min_drop: f64,
    pub alpha: f64,
    /// Report every evaluated series, not only those that alarm.
    pub all: bool,
}

impl Default for AlarmQuery {
    fn default() -> Self {
        AlarmQuery { filter: ObservationFilter::default(), as_of: None, window_days: 7, baseline_days: 28, min_drop: 0.3, alpha: 0.001, all: false }
    }
}

/// One evaluated series.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRow {
    pub agency: String,
    pub service_id: String,
    pub metric: String,
    pub channel: Option<String>,
    pub page: Option<String>,
    pub window_total: f64,
    pub baseline_daily_mean: f64,
    pub expected: f64,
    /// window total / expected.
    pub ratio: f64,
    pub p_value: f64,
    /// The baseline's daily variance over its mean, at least 1 (1: Poisson).
    pub dispersion: f64,
    pub alarm: bool,
}

/// The outcome of a drop check.
#[derive(Debug, Clone)]
pub struct AlarmReport {
    pub as_of: Option<NaiveDate>,
    pub window: Option<(NaiveDate, NaiveDate)>,
    pub baseline: Option<(NaiveDate, NaiveDate)>,
    pub rule: String,
    pub series_evaluated: usize,
    pub rows: Vec<AlarmRow>,
}

impl AlarmQuery {
    fn validate(&self) -> Result<(), AnalyticsError> {
        if !(1..=366).contains(&self.window_days) {
            return Err(AnalyticsError::invalid("windowDays", format!("{} is not from 1 to 366", self.window_days)));
        }
        if !(1..=3660).contains(&self.baseline_days) {
            return Err(AnalyticsError::invalid("baselineDays", format!("{} is not from 1 to 3660", self.baseline_days)));
        }
        if !(self.min_drop > 0.0 && self.min_drop < 1.0) {
            return Err(AnalyticsError::invalid("minDrop", format!("{} is not in (0, 1)", self.min_drop)));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(AnalyticsError::invalid("alpha", format!("{} is not in (0, 1)", self.alpha)));
        }
        Ok(())
    }

    pub fn rule(&self) -> String {
        format!(
            "alarm when the last {w} days total at most {keep:.0}% of the expected total (the previous {b} days' daily mean x {w}) and P(X <= total/phi) < {a} for X ~ Poisson(expected/phi), phi = the previous {b} days' daily variance / mean (at least 1)",
            w = self.window_days,
            b = self.baseline_days,
            keep = (1.0 - self.min_drop) * 100.0,
            a = self.alpha
        )
    }
}

impl Analytics {
    /// Checks telemetry series for sharp drops against their recent baseline.
    pub async fn alarms(&self, q: &AlarmQuery) -> Result<AlarmReport, AnalyticsError> {
        q.validate()?;
        let mut report = AlarmReport { as_of: None, window: None, baseline: None, rule: q.rule(), series_evaluated: 0, rows: Vec::new() };
        let as_of = match q.as_of {
            Some(d) => d,
            None => {
                let Some((files, lf)) = self.scan_observations(ObservationTable::Telemetry, &q.filter).await? else {
                    return Ok(report);
                };
                let lf = lf.select([col("observed_at").max().cast(DataType::Date).alias("last")]);
                let df = self.blocking(Weight::Light, move |_| Ok(lf.collect()?)).await.map_err(|e| self.explain_failure(&files, e))?;
                let days = df.column("last")?.date()?.phys.get(0);
                match days {
                    Some(d) => NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + Duration::days(d as i64),
                    None => return Ok(report),
                }
            }
        };
        let window_start = as_of - Duration::days(q.window_days as i64 - 1);
        let baseline_start = window_start - Duration::days(q.baseline_days as i64);
        report.as_of = Some(as_of);
        report.window = Some((window_start, as_of));
        report.baseline = Some((baseline_start, window_start - Duration::days(1)));
        let mut f = q.filter.clone();
        f.filter.from = Some(f.filter.from.map_or(baseline_start, |d| d.max(baseline_start)));
        f.filter.to = Some(f.filter.to.map_or(as_of, |d| d.min(as_of)));
        let Some((files, lf)) = self.scan_observations(ObservationTable::Telemetry, &f).await? else {
            return Ok(report);
        };
        let ws = window_start.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_micros();
        let in_window = col("observed_at").gt_eq(lit(ws).cast(DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))));
        let series = [col("agency"), col("service_id"), col("metric"), col("channel"), col("page")];
        let mut by_day: Vec<Expr> = series.to_vec();
        by_day.push(col("observed_at").dt().truncate(lit("1d")).alias("day"));
        by_day.push(in_window.alias("in_window"));
        let lf = lf.group_by(by_day).agg([col("value").sum().alias("v")]).group_by(series).agg([
            when(col("in_window")).then(col("v")).otherwise(lit(0.0)).sum().alias("window"),
            when(col("in_window")).then(lit(0.0)).otherwise(col("v")).sum().alias("baseline"),
            when(col("in_window")).then(lit(0.0)).otherwise(col("v") * col("v")).sum().alias("baseline_sq"),
        ]);
        let df = self
            .blocking(Weight::Light, move |_| Ok(lf.collect_with_engine(Engine::Streaming)?.unwrap_single()))
            .await
            .map_err(|e| self.explain_failure(&files, e))?;
        let text = |c: &str| -> PolarsResult<Vec<Option<String>>> { Ok(df.column(c)?.str()?.iter().map(|v| v.map(str::to_string)).collect()) };
        let (agency, service, metric, channel, page) = (text("agency")?, text("service_id")?, text("metric")?, text("channel")?, text("page")?);
        let window = df.column("window")?.f64()?;
        let baseline = df.column("baseline")?.f64()?;
        let baseline_sq = df.column("baseline_sq")?.f64()?;
        let days = q.baseline_days as f64;
        for i in 0..df.height() {
            let (w, b, b2) = (window.get(i).unwrap_or(0.0), baseline.get(i).unwrap_or(0.0), baseline_sq.get(i).unwrap_or(0.0));
            let daily = b / days;
            let expected = daily * q.window_days as f64;
            if expected <= 0.0 {
                continue; // nothing to fall from
            }
            report.series_evaluated += 1;
            let ratio = w / expected;
            // Quasi-Poisson: the baseline's day-to-day variance over its mean (at least 1)
            // scales the counts, so a series that varies more than Poisson needs a deeper fall.
            let variance = if days > 1.0 { ((b2 - days * daily * daily) / (days - 1.0)).max(0.0) } else { daily };
            let dispersion = (variance / daily).max(1.0);
            let p = cx_stats::hypothesis::poisson_lower_p(w.max(0.0) / dispersion, expected / dispersion).unwrap_or(1.0);
            let alarm = ratio <= 1.0 - q.min_drop && p < q.alpha;
            if alarm || q.all {
                report.rows.push(AlarmRow {
                    agency: agency[i].clone().unwrap_or_default(),
                    service_id: service[i].clone().unwrap_or_default(),
                    metric: metric[i].clone().unwrap_or_default(),
                    channel: channel[i].clone(),
                    page: page[i].clone(),
                    window_total: w,
                    baseline_daily_mean: daily,
                    expected,
                    ratio,
                    p_value: p,
                    dispersion,
                    alarm,
                });
            }
        }
        report.rows.sort_by(|a, b| {
            b.alarm.cmp(&a.alarm).then(a.p_value.total_cmp(&b.p_value)).then((&a.service_id, &a.metric, &a.page).cmp(&(&b.service_id, &b.metric, &b.page)))
        });
        Ok(report)
    }
}

/// Indicators beside scores.
#[derive(Debug, Clone)]
pub struct ServiceLevelQuery {
    /// Agency, service and office lists and the date range apply to both tables.
    pub filter: Filter,
    /// Indicators (default: all in the lake).
    pub indicators: Option<Vec<String>>,
    /// One row per office (else per service).
    pub by_office: bool,
    pub period: PeriodUnit,
    pub measures: Vec<Measure>,
    /// Correlate each indicator's mean with each measure's agree share across the rows.
    pub correlate: bool,
}

/// One indicator's mean in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorValue {
    pub metric: String,
    pub mean: f64,
    pub count: u64,
}

/// One service (or office) and period: its indicators and its scores.
#[derive(Debug, Clone)]
pub struct ServiceLevelRow {
    pub service_id: String,
    pub office_id: Option<String>,
    pub period: Period,
    pub indicators: Vec<IndicatorValue>,
    pub scores: Vec<super::ScoreRow>,
}

/// Correlation of an indicator with a measure's agree share over the rows having both.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorCorrelation {
    pub metric: String,
    pub measure: Measure,
    pub n: usize,
    pub r: Option<f64>,
    pub ci: Option<Interval>,
    pub p_value: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct ServiceLevelResult {
    pub rows: Vec<ServiceLevelRow>,
    pub correlations: Vec<IndicatorCorrelation>,
}

impl Analytics {
    /// Service-level indicators and CX scores of the same service (or office) and period.
    /// Rows are the cells with indicators; their scores follow the suppression rules, and a
    /// suppressed score takes no part in the correlations.
    pub async fn service_levels(&self, q: &ServiceLevelQuery) -> Result<ServiceLevelResult, AnalyticsError> {
        if q.measures.is_empty() {
            return Err(AnalyticsError::invalid("measures", "name at least one measure".into()));
        }
        let mut by = vec![ObservationKey::Service];
        let mut group_by = vec![Dimension::Service];
        if q.by_office {
            by.push(ObservationKey::Office);
            group_by.push(Dimension::Office);
        }
        let agg = AggregateQuery {
            table: ObservationTable::Indicators,
            filter: ObservationFilter { filter: q.filter.clone(), metrics: q.indicators.clone(), pages: None },
            by: by.clone(),
            period: Some(q.period),
        };
        let indicators = self.aggregate(&agg).await?;
        let scores = self
            .scores(&ScoresQuery {
                filter: q.filter.clone(),
                group_by: group_by.clone(),
                period: Some(q.period),
                measures: q.measures.clone(),
                ..Default::default()
            })
            .await?;
        type Cell = (String, Option<String>, String);
        let mut score_rows: BTreeMap<Cell, Vec<super::ScoreRow>> = BTreeMap::new();
        for r in scores.rows {
            let Some(period) = r.key.period.clone() else { continue };
            let cell = (r.key.get(Dimension::Service).unwrap_or_default().to_string(), r.key.get(Dimension::Office).map(str::to_string), period.label.clone());
            score_rows.entry(cell).or_default().push(r);
        }
        let mut rows: BTreeMap<Cell, ServiceLevelRow> = BTreeMap::new();
        for a in indicators {
            let (Some(service), Some(period)) = (a.get(ObservationKey::Service), a.period.clone()) else { continue };
            let office = a.get(ObservationKey::Office).map(str::to_string);
            if q.by_office && office.is_none() {
                continue; // a service-wide indicator has no office row
            }
            let cell = (service.to_string(), office.clone(), period.label.clone());
            let row = rows.entry(cell.clone()).or_insert_with(|| ServiceLevelRow {
                service_id: service.to_string(),
                office_id: office,
                period,
                indicators: Vec::new(),
                scores: score_rows.get(&cell).cloned().unwrap_or_default(),
            });
            row.indicators.push(IndicatorValue { metric: a.metric, mean: a.mean, count: a.count });
        }
        let mut rows: Vec<ServiceLevelRow> = rows.into_values().collect();
        rows.sort_by(|a, b| (&a.service_id, &a.office_id, a.period.start).cmp(&(&b.service_id, &b.office_id, b.period.start)));
        let mut correlations = Vec::new();
        if q.correlate {
            let metrics: std::collections::BTreeSet<String> = rows.iter().flat_map(|r| r.indicators.iter().map(|i| i.metric.clone())).collect();
            for metric in metrics {
                for &measure in &q.measures {
                    let (mut x, mut y) = (Vec::new(), Vec::new());
                    for r in &rows {
                        let ind = r.indicators.iter().find(|i| i.metric == metric).map(|i| i.mean);
                        let share = r.scores.iter().find(|s| s.measure == measure).and_then(|s| s.agree_share);
                        if let (Some(a), Some(b)) = (ind, share) {
                            x.push(a);
                            y.push(b);
                        }
                    }
                    let p = cx_stats::pearson(&x, &y, 0.95);
                    correlations.push(IndicatorCorrelation {
                        metric: metric.clone(),
                        measure,
                        n: x.len(),
                        r: p.map(|p| p.r),
                        ci: p.and_then(|p| p.ci),
                        p_value: p.and_then(|p| p.p_value),
                    });
                }
            }
        }
        Ok(ServiceLevelResult { rows, correlations })
    }
}
