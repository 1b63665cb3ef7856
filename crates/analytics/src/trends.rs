//! Trends and regression alerts (A-11 280.7: alarms "when critical metrics have regressed").
//!
//! Trends: per group, each period's score with the change from the previous period and from the
//! same period a year earlier (Welch for means, Newcombe and the two-proportion z-test for agree
//! shares). Alerts: the groups whose agree share dropped in a target period against the previous
//! period and against the year before, one-sided z-tests with Benjamini-Hochberg q-values over
//! every test in the list, sorted by severity. Both come from one scores pass.

use super::scores::{ScoreRow, ScoresQuery};
use super::{Analytics, AnalyticsError, Filter};
use chrono::{Datelike, Duration, NaiveDate};
use cx_domain::{Dimension, Measure, Period, PeriodUnit};
use cx_stats::hypothesis::{benjamini_hochberg, cohens_h, normal_p_lower};
use cx_stats::Comparison;
use std::collections::BTreeMap;

/// The period before `p`.
pub fn previous(unit: PeriodUnit, p: &Period) -> Period {
    unit.period(p.start - Duration::days(1))
}

/// The same period a year before `p` (for weeks: 52 weeks before).
pub fn year_ago(unit: PeriodUnit, p: &Period) -> Period {
    let date = match unit {
        PeriodUnit::Week => p.start - Duration::weeks(52),
        _ => NaiveDate::from_ymd_opt(p.start.year() - 1, p.start.month(), p.start.day()).unwrap_or(p.start - Duration::days(365)),
    };
    unit.period(date)
}

/// A change of a score between two periods.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The earlier period compared with.
    pub against: Period,
    pub before: ScoreRow,
    /// Now minus before.
    pub mean: Option<Comparison>,
    pub agree: Option<Comparison>,
}

fn change(now: &ScoreRow, before: &ScoreRow, against: Period, confidence: f64) -> Change {
    Change { against, before: before.clone(), mean: now.mean_difference(before, confidence), agree: now.agree_difference(before, confidence) }
}

#[derive(Debug, Clone)]
pub struct TrendsQuery {
    pub measure: Measure,
    pub group_by: Vec<Dimension>,
    pub period: PeriodUnit,
    pub filter: Filter,
    pub weighted: bool,
    pub confidence: f64,
}

/// One group's score in one period, with its changes.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendRow {
    pub row: ScoreRow,
    pub previous: Option<Change>,
    pub year_ago: Option<Change>,
}

impl Analytics {
    pub async fn trends(&self, q: &TrendsQuery) -> Result<Vec<TrendRow>, AnalyticsError> {
        let scores = self
            .scores(&ScoresQuery {
                filter: q.filter.clone(),
                group_by: q.group_by.clone(),
                period: Some(q.period),
                measures: vec![q.measure],
                weighted: q.weighted,
                confidence: q.confidence,
            })
            .await?;
        Ok(with_changes(scores.rows, q.period, q.confidence))
    }
}

/// Attaches to each (group, period) row its changes from the previous and year-ago periods.
fn with_changes(rows: Vec<ScoreRow>, unit: PeriodUnit, confidence: f64) -> Vec<TrendRow> {
    // One series per group (its dimension values) and measure.
    type SeriesKey = (Vec<(Dimension, Option<String>)>, Measure);
    let mut series: BTreeMap<SeriesKey, BTreeMap<Period, ScoreRow>> = BTreeMap::new();
    for r in rows {
        let period = r.key.period.clone().expect("trends group by period");
        series.entry((r.key.values.clone(), r.measure)).or_default().insert(period, r);
    }
    let mut out = Vec::new();
    for (_, by_period) in series {
        for (period, row) in &by_period {
            let compare = |p: Period| by_period.get(&p).map(|before| change(row, before, p.clone(), confidence));
            out.push(TrendRow { row: row.clone(), previous: compare(previous(unit, period)), year_ago: compare(year_ago(unit, period)) });
        }
    }
    out
}

#[derive(Debug, Clone)]
pub struct AlertsQuery {
    pub measures: Vec<Measure>,
    pub period: PeriodUnit,
    /// The period to check (its label, such as FY2026Q4); default the latest complete period.
    pub at: Option<String>,
    pub levels: Vec<Dimension>,
    /// Both periods of a comparison need at least this many answers.
    pub min_n: u64,
    /// Alerts are the drops with a q-value below this.
    pub alpha: f64,
    pub filter: Filter,
    pub weighted: bool,
    /// Today, for "complete": a period is complete when it ended before this day.
    pub today: NaiveDate,
    pub confidence: f64,
}

/// A significant drop.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub level: Dimension,
    pub entity: String,
    pub measure: Measure,
    pub period: Period,
    /// `previous` or `year_ago`.
    pub comparison: &'static str,
    pub now: ScoreRow,
    pub change: Change,
    /// One-sided p-value of a drop of the agree share (two-proportion z).
    pub p_value: f64,
    /// Benjamini-Hochberg q-value over every test of the query.
    pub q_value: f64,
    /// Cohen's h of the agree shares (negative for a drop).
    pub effect_size: f64,
}

/// What an alerts query checked: the period, how many tests, and the alerts.
#[derive(Debug, Clone)]
pub struct AlertsResult {
    pub period: Option<Period>,
    pub tests: usize,
    pub alerts: Vec<Alert>,
}

impl Analytics {
    pub async fn alerts(&self, q: &AlertsQuery) -> Result<AlertsResult, AnalyticsError> {
        if q.levels.is_empty() || q.measures.is_empty() {
            return Err(AnalyticsError::invalid("levels", "name at least one level and one measure".into()));
        }
        if !(q.alpha > 0.0 && q.alpha < 1.0) {
            return Err(AnalyticsError::invalid("alpha", format!("{} is not in (0, 1)", q.alpha)));
        }
        // The target period: `at`, or the latest complete one up to the lake's last quarter.
        let target = match &q.at {
            Some(label) => q.period.parse(label).ok_or_else(|| {
                AnalyticsError::invalid("at", format!("'{label}' is not a {:?} period label (such as {})", q.period, q.period.period(q.today).label))
            })?,
            None => {
                let files = self.lake.response_files(&q.filter.partitions()).await?;
                let Some(last) = files.iter().map(|f| f.partition.quarter).max() else {
                    return Ok(AlertsResult { period: None, tests: 0, alerts: Vec::new() });
                };
                let day = last.end().min(q.today - Duration::days(1));
                let p = q.period.period(day);
                if p.end < q.today {
                    p
                } else {
                    previous(q.period, &p)
                }
            }
        };
        // Only the target, previous and year-ago periods are read.
        let mut filter = q.filter.clone();
        let start = year_ago(q.period, &target).start.min(previous(q.period, &target).start);
        filter.from = Some(filter.from.map_or(start, |f| f.max(start)));
        filter.to = Some(filter.to.map_or(target.end, |t| t.min(target.end)));
        if filter.from > filter.to {
            return Ok(AlertsResult { period: Some(target), tests: 0, alerts: Vec::new() });
        }
        // One scores pass per level, every measure in it.
        let mut rows: Vec<(Dimension, TrendRow)> = Vec::new();
        for &level in &q.levels {
            let scores = self
                .scores(&ScoresQuery {
                    filter: filter.clone(),
                    group_by: vec![level],
                    period: Some(q.period),
                    measures: q.measures.clone(),
                    weighted: q.weighted,
                    confidence: q.confidence,
                })
                .await?;
            rows.extend(with_changes(scores.rows, q.period, q.confidence).into_iter().map(|r| (level, r)));
        }
        let mut tests: Vec<Alert> = Vec::new();
        for (level, r) in rows {
            let measure = r.row.measure;
            if r.row.key.period.as_ref() != Some(&target) {
                continue;
            }
            let Some(entity) = r.row.key.get(level).map(str::to_string) else { continue };
            for (name, c) in [("previous", r.previous), ("year_ago", r.year_ago)] {
                let Some(c) = c else { continue };
                let (Some(agree), Some(now_p), Some(before_p)) = (c.agree, r.row.agree_share, c.before.agree_share) else {
                    continue;
                };
                if r.row.n < q.min_n || c.before.n < q.min_n {
                    continue;
                }
                tests.push(Alert {
                    level,
                    entity: entity.clone(),
                    measure,
                    period: target.clone(),
                    comparison: name,
                    now: r.row.clone(),
                    p_value: normal_p_lower(agree.statistic),
                    change: c,
                    q_value: 1.0,
                    effect_size: cohens_h(now_p, before_p),
                });
            }
        }
        let q_values = benjamini_hochberg(&tests.iter().map(|t| t.p_value).collect::<Vec<_>>());
        let count = tests.len();
        let mut alerts: Vec<Alert> =
            tests.into_iter().zip(q_values).map(|(t, qv)| Alert { q_value: qv, ..t }).filter(|t| t.q_value < q.alpha && t.effect_size < 0.0).collect();
        // Most severe first: the strongest evidence (q-value, then p-value), then the largest
        // drop (effect size).
        alerts.sort_by(|a, b| a.q_value.total_cmp(&b.q_value).then(a.p_value.total_cmp(&b.p_value)).then(a.effect_size.total_cmp(&b.effect_size)));
        Ok(AlertsResult { period: Some(target), tests: count, alerts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_and_year_ago_periods() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let q = PeriodUnit::FiscalQuarter.period(d("2025-10-15"));
        assert_eq!(q.label, "FY2026Q1");
        assert_eq!(previous(PeriodUnit::FiscalQuarter, &q).label, "FY2025Q4");
        assert_eq!(year_ago(PeriodUnit::FiscalQuarter, &q).label, "FY2025Q1");
        let w = PeriodUnit::Week.period(d("2025-03-12"));
        assert_eq!(year_ago(PeriodUnit::Week, &w).label, "2024-W11");
        let m = PeriodUnit::Month.period(d("2024-03-31"));
        assert_eq!(previous(PeriodUnit::Month, &m).label, "2024-02");
        assert_eq!(year_ago(PeriodUnit::FiscalYear, &PeriodUnit::FiscalYear.period(d("2025-01-01"))).label, "FY2024");
    }
}
