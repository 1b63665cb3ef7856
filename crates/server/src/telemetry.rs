//! Telemetry, service-level indicators and the quarterly HISP report over GraphQL: types and
//! resolvers only; `analytics::observations` and `analytics::hisp` compute everything.

use super::query::gql_error;
use super::types::{Channel, Date, MeasureName, PeriodUnit, ScoreOut, ServiceOut};
use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject};
use cx_analytics::hisp::{HispQuery, HispReport, HispRow};
use cx_analytics::observations::{AggregateQuery, AggregateRow, AlarmQuery, ObservationFilter, ObservationKey, ServiceLevelQuery};
use cx_analytics::{Analytics, AnalyticsError, Filter};
use cx_domain::observations::ObservationTable;
use cx_domain::{self as domain, Dimension, FiscalQuarter};

/// Which observations: every given list restricts.
#[derive(InputObject, Default, Debug, Clone)]
pub struct ObservationFilterInput {
    pub agency: Option<Vec<String>>,
    pub service: Option<Vec<String>>,
    pub channel: Option<Vec<Channel>>,
    pub office: Option<Vec<String>>,
    /// Metric or indicator names (page_views, transactions, wait_time_minutes, ...).
    pub metric: Option<Vec<String>>,
    /// Page or flow names (telemetry).
    pub page: Option<Vec<String>>,
    /// First day included (UTC, on observed_at).
    pub from: Option<Date>,
    /// Last day included.
    pub to: Option<Date>,
}

impl From<ObservationFilterInput> for ObservationFilter {
    fn from(f: ObservationFilterInput) -> ObservationFilter {
        let mut filter = Filter { from: f.from.map(|d| d.0), to: f.to.map(|d| d.0), ..Default::default() };
        for (dim, values) in [
            (Dimension::Agency, f.agency),
            (Dimension::Service, f.service),
            (Dimension::Channel, f.channel.map(|v| v.into_iter().map(|c| domain::Channel::from(c).to_string()).collect())),
            (Dimension::Office, f.office),
        ] {
            if let Some(v) = values {
                filter.values.insert(dim, v);
            }
        }
        ObservationFilter { filter, metrics: f.metric, pages: f.page }
    }
}

/// What observations can be grouped by (the metric always is).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ObservationGroup {
    Agency,
    Service,
    Channel,
    Page,
    Office,
}

impl From<ObservationGroup> for ObservationKey {
    fn from(g: ObservationGroup) -> ObservationKey {
        match g {
            ObservationGroup::Agency => ObservationKey::Agency,
            ObservationGroup::Service => ObservationKey::Service,
            ObservationGroup::Channel => ObservationKey::Channel,
            ObservationGroup::Page => ObservationKey::Page,
            ObservationGroup::Office => ObservationKey::Office,
        }
    }
}

/// One group of observations of one metric: count, sum, mean, median, min, max.
#[derive(SimpleObject, Debug, Clone)]
pub struct AggregateOut {
    pub metric: String,
    pub agency: Option<String>,
    pub service: Option<String>,
    pub channel: Option<String>,
    pub page: Option<String>,
    pub office: Option<String>,
    /// Period label when grouped by period.
    pub period: Option<String>,
    pub period_start: Option<Date>,
    pub period_end: Option<Date>,
    /// Observations in the group.
    pub count: u64,
    pub sum: f64,
    pub mean: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl From<AggregateRow> for AggregateOut {
    fn from(r: AggregateRow) -> Self {
        let get = |k| r.get(k).map(str::to_string);
        AggregateOut {
            agency: get(ObservationKey::Agency),
            service: get(ObservationKey::Service),
            channel: get(ObservationKey::Channel),
            page: get(ObservationKey::Page),
            office: get(ObservationKey::Office),
            period: r.period.as_ref().map(|p| p.label.clone()),
            period_start: r.period.as_ref().map(|p| Date(p.start)),
            period_end: r.period.as_ref().map(|p| Date(p.end)),
            metric: r.metric,
            count: r.count,
            sum: r.sum,
            mean: r.mean,
            median: r.median,
            min: r.min,
            max: r.max,
        }
    }
}

/// One telemetry series checked for a drop.
#[derive(SimpleObject, Debug, Clone)]
pub struct AlarmOut {
    pub agency: String,
    pub service: String,
    pub metric: String,
    pub channel: Option<String>,
    pub page: Option<String>,
    pub window_total: f64,
    pub baseline_daily_mean: f64,
    pub expected: f64,
    /// Window total / expected.
    pub ratio: f64,
    /// P(X <= window total / dispersion), X ~ Poisson(expected / dispersion).
    pub p_value: f64,
    /// The baseline's daily variance over its mean (at least 1).
    pub dispersion: f64,
    pub alarm: bool,
}

/// The outcome of a drop check, with the rule it applied.
#[derive(SimpleObject, Debug, Clone)]
pub struct AlarmReportOut {
    pub rule: String,
    pub as_of: Option<Date>,
    pub window_start: Option<Date>,
    pub window_end: Option<Date>,
    pub baseline_start: Option<Date>,
    pub baseline_end: Option<Date>,
    /// Series with a baseline to fall from.
    pub series_evaluated: u64,
    pub alarms: Vec<AlarmOut>,
}

/// An indicator's mean in one cell.
#[derive(SimpleObject, Debug, Clone)]
pub struct IndicatorOut {
    pub metric: String,
    pub mean: f64,
    /// Observations averaged.
    pub count: u64,
}

impl From<cx_analytics::observations::IndicatorValue> for IndicatorOut {
    fn from(i: cx_analytics::observations::IndicatorValue) -> Self {
        IndicatorOut { metric: i.metric, mean: i.mean, count: i.count }
    }
}

/// One measure's score in a cell.
#[derive(SimpleObject, Debug, Clone)]
pub struct MeasureScoreOut {
    pub measure: MeasureName,
    pub score: ScoreOut,
}

/// A service (or office) and period: indicators beside scores.
#[derive(SimpleObject, Debug, Clone)]
pub struct ServiceLevelRowOut {
    pub service: String,
    pub office: Option<String>,
    pub period: String,
    pub period_start: Date,
    pub period_end: Date,
    pub indicators: Vec<IndicatorOut>,
    pub scores: Vec<MeasureScoreOut>,
}

/// Pearson correlation across the cells of an indicator's mean with a measure's agree share
/// (suppressed scores excluded), with its t-test and Fisher-z 95% interval.
#[derive(SimpleObject, Debug, Clone)]
pub struct IndicatorCorrelationOut {
    pub metric: String,
    pub measure: MeasureName,
    pub n: u64,
    pub r: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub p_value: Option<f64>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct ServiceLevelsOut {
    pub rows: Vec<ServiceLevelRowOut>,
    pub correlations: Vec<IndicatorCorrelationOut>,
}

/// One question of a HISP report row.
#[derive(SimpleObject, Debug, Clone)]
pub struct HispQuestionOut {
    /// 1-11 (q1 satisfaction, q2 trust, q3 effectiveness, q4 ease, q5 efficiency,
    /// q6 transparency, q7 employee, q8 humanity).
    pub number: u32,
    pub text: String,
    /// Counts of answers 1 to 5 (on the thumbs scale: down, up, 0, 0, 0); null when not asked
    /// on the scale or withheld.
    pub counts: Option<Vec<u64>>,
    pub n: u64,
    pub suppressed: bool,
}

/// One designated service, channel and scale of a HISP report.
#[derive(SimpleObject, Debug, Clone)]
pub struct HispRowOut {
    pub department_name: String,
    pub department_abbreviation: String,
    pub service_provider_name: String,
    pub service_provider_id: String,
    pub service_name: String,
    pub service_id: String,
    pub channel: String,
    pub point_scale: u32,
    pub volume_of_customers: Option<u64>,
    pub volume_of_customers_provided_survey_opportunity: Option<u64>,
    pub volume_of_respondents: u64,
    pub questions: Vec<HispQuestionOut>,
    pub service_level_indicators: Vec<IndicatorOut>,
    pub summary: String,
}

impl From<&HispRow> for HispRowOut {
    fn from(r: &HispRow) -> Self {
        HispRowOut {
            department_name: r.service.agency_name.clone(),
            department_abbreviation: r.service.agency.clone(),
            service_provider_name: r.service.bureau_name.clone(),
            service_provider_id: r.service.bureau.clone(),
            service_name: r.service.name.clone(),
            service_id: r.service.id.clone(),
            channel: r.channel.clone(),
            point_scale: r.point_scale as u32,
            volume_of_customers: r.volume_of_customers,
            volume_of_customers_provided_survey_opportunity: r.surveys_offered,
            volume_of_respondents: r.respondents,
            questions: r
                .questions
                .iter()
                .map(|q| HispQuestionOut {
                    number: q.number as u32,
                    text: q.text.to_string(),
                    counts: q.counts.map(|c| c.to_vec()),
                    n: q.n,
                    suppressed: q.suppressed,
                })
                .collect(),
            service_level_indicators: r.indicators.iter().cloned().map(Into::into).collect(),
            summary: r.summary.clone(),
        }
    }
}

/// The quarterly HISP report (A-11 280.14-16). The same data as `GET /v1/reports/hisp`
/// (CSV, XLSX).
#[derive(SimpleObject, Debug, Clone)]
pub struct HispReportOut {
    pub fiscal_year: i32,
    pub quarter: u32,
    pub due_date: Date,
    /// PUBLISHED (OMB's table) or RULE (last business day of the month after the quarter).
    pub due_date_source: String,
    pub due_statement: String,
    /// Questions with fewer answers than this in a row have their counts withheld.
    pub min_cell: u64,
    /// True when every count of answers, each question's n and the respondents are perturbed
    /// by the cell-key method (the public role); other roles get exact counts.
    pub perturbed: bool,
    /// The columns of the CSV/XLSX download (performance.gov layout).
    pub columns: Vec<String>,
    pub rows: Vec<HispRowOut>,
    pub services_without_data: Vec<ServiceOut>,
}

impl From<&HispReport> for HispReportOut {
    fn from(r: &HispReport) -> Self {
        HispReportOut {
            fiscal_year: r.quarter.year,
            quarter: r.quarter.quarter,
            due_date: Date(r.due.date),
            due_date_source: r.due.source.as_str().to_string(),
            due_statement: r.due_statement(),
            min_cell: r.min_cell,
            perturbed: r.perturbed,
            columns: domain::hisp::columns(),
            rows: r.rows.iter().map(Into::into).collect(),
            services_without_data: r.services_without_data.iter().map(ServiceOut::from).collect(),
        }
    }
}

/// A fiscal year and quarter given as arguments (`FiscalQuarter::checked`), as an error naming
/// the argument.
pub fn fiscal_quarter(year: i32, quarter: u32) -> Result<FiscalQuarter, AnalyticsError> {
    FiscalQuarter::checked(year, quarter).map_err(|e| AnalyticsError::invalid(e.field, e.message))
}

#[derive(Default)]
pub struct TelemetryQuery;

async fn aggregate(
    ctx: &Context<'_>,
    table: ObservationTable,
    filter: Option<ObservationFilterInput>,
    group_by: Option<Vec<ObservationGroup>>,
    period: Option<PeriodUnit>,
) -> Result<Vec<AggregateOut>> {
    let analytics = ctx.data::<Analytics>()?;
    let mut by: Vec<ObservationKey> = Vec::new();
    for g in group_by.unwrap_or_default() {
        let k = ObservationKey::from(g);
        if !by.contains(&k) {
            by.push(k);
        }
    }
    let q = AggregateQuery { table, filter: filter.unwrap_or_default().into(), by, period: period.map(Into::into) };
    Ok(super::memo::once(ctx, "aggregate", &q, || analytics.aggregate(&q))
        .await
        .map(std::sync::Arc::unwrap_or_clone)
        .map_err(gql_error)?
        .into_iter()
        .map(Into::into)
        .collect())
}

#[Object]
impl TelemetryQuery {
    /// Telemetry (A-11 280.7) per metric and group: count of observations, sum, mean, median,
    /// min and max of their values (daily counts summed by month, for instance).
    async fn telemetry(
        &self,
        ctx: &Context<'_>,
        filter: Option<ObservationFilterInput>,
        group_by: Option<Vec<ObservationGroup>>,
        period: Option<PeriodUnit>,
    ) -> Result<Vec<AggregateOut>> {
        aggregate(ctx, ObservationTable::Telemetry, filter, group_by, period).await
    }

    /// Service-level indicators (A-11 280.12) per indicator and group, aggregated like
    /// `telemetry`.
    async fn indicators(
        &self,
        ctx: &Context<'_>,
        filter: Option<ObservationFilterInput>,
        group_by: Option<Vec<ObservationGroup>>,
        period: Option<PeriodUnit>,
    ) -> Result<Vec<AggregateOut>> {
        aggregate(ctx, ObservationTable::Indicators, filter, group_by, period).await
    }

    /// Telemetry series whose last `windowDays` fell sharply against the `baselineDays` before
    /// them: the window total is at most (1 - minDrop) of the baseline's daily mean x
    /// windowDays and its Poisson lower-tail p-value is below `alpha`. `rule` states it.
    #[allow(clippy::too_many_arguments)]
    async fn telemetry_alarms(
        &self,
        ctx: &Context<'_>,
        filter: Option<ObservationFilterInput>,
        #[graphql(desc = "Last day of the window (default: the last day with telemetry).")] as_of: Option<Date>,
        #[graphql(desc = "Default 7.")] window_days: Option<u32>,
        #[graphql(desc = "Default 28.")] baseline_days: Option<u32>,
        #[graphql(desc = "Default 0.3 (a fall of 30% or more).")] min_drop: Option<f64>,
        #[graphql(desc = "Default 0.001.")] alpha: Option<f64>,
        #[graphql(desc = "List every evaluated series, not only alarms (default false).")] all: Option<bool>,
    ) -> Result<AlarmReportOut> {
        let analytics = ctx.data::<Analytics>()?;
        let d = AlarmQuery::default();
        let q = AlarmQuery {
            filter: filter.unwrap_or_default().into(),
            as_of: as_of.map(|d| d.0),
            window_days: window_days.unwrap_or(d.window_days),
            baseline_days: baseline_days.unwrap_or(d.baseline_days),
            min_drop: min_drop.unwrap_or(d.min_drop),
            alpha: alpha.unwrap_or(d.alpha),
            all: all.unwrap_or(false),
        };
        let r = super::memo::once(ctx, "alarms", &q, || analytics.alarms(&q)).await.map(std::sync::Arc::unwrap_or_clone).map_err(gql_error)?;
        Ok(AlarmReportOut {
            rule: r.rule,
            as_of: r.as_of.map(Date),
            window_start: r.window.map(|w| Date(w.0)),
            window_end: r.window.map(|w| Date(w.1)),
            baseline_start: r.baseline.map(|w| Date(w.0)),
            baseline_end: r.baseline.map(|w| Date(w.1)),
            series_evaluated: r.series_evaluated as u64,
            alarms: r
                .rows
                .into_iter()
                .map(|a| AlarmOut {
                    agency: a.agency,
                    service: a.service_id,
                    metric: a.metric,
                    channel: a.channel,
                    page: a.page,
                    window_total: a.window_total,
                    baseline_daily_mean: a.baseline_daily_mean,
                    expected: a.expected,
                    ratio: a.ratio,
                    p_value: a.p_value,
                    dispersion: a.dispersion,
                    alarm: a.alarm,
                })
                .collect(),
        })
    }

    /// Service-level indicators beside the CX scores of the same service (or office, with
    /// `byOffice`) and period; with `correlate`, each indicator's correlation with each
    /// measure's agree share across those cells.
    #[allow(clippy::too_many_arguments)]
    async fn service_levels(
        &self,
        ctx: &Context<'_>,
        filter: Option<ObservationFilterInput>,
        #[graphql(desc = "Default FISCAL_QUARTER.")] period: Option<PeriodUnit>,
        #[graphql(desc = "Default false: one row per service.")] by_office: Option<bool>,
        #[graphql(desc = "Default: trust and satisfaction.")] measures: Option<Vec<MeasureName>>,
        #[graphql(desc = "Default false.")] correlate: Option<bool>,
    ) -> Result<ServiceLevelsOut> {
        let analytics = super::query::analytics_for(ctx).await?;
        let f: ObservationFilter = filter.unwrap_or_default().into();
        if f.pages.is_some() {
            return Err(gql_error(AnalyticsError::invalid("filter.page", "indicators have no pages".into())));
        }
        let q = ServiceLevelQuery {
            filter: f.filter,
            indicators: f.metrics,
            by_office: by_office.unwrap_or(false),
            period: period.map(Into::into).unwrap_or(domain::PeriodUnit::FiscalQuarter),
            measures: match measures {
                Some(m) => m.into_iter().map(Into::into).collect(),
                None => vec![domain::Measure::Trust, domain::Measure::Satisfaction],
            },
            correlate: correlate.unwrap_or(false),
        };
        let r = super::memo::once(ctx, "service_levels", &q, || analytics.service_levels(&q)).await.map(std::sync::Arc::unwrap_or_clone).map_err(gql_error)?;
        Ok(ServiceLevelsOut {
            rows: r
                .rows
                .into_iter()
                .map(|row| ServiceLevelRowOut {
                    period_start: Date(row.period.start),
                    period_end: Date(row.period.end),
                    period: row.period.label.clone(),
                    service: row.service_id,
                    office: row.office_id,
                    indicators: row.indicators.into_iter().map(Into::into).collect(),
                    scores: row.scores.iter().map(|s| MeasureScoreOut { measure: s.measure.into(), score: ScoreOut::from(s) }).collect(),
                })
                .collect(),
            correlations: r
                .correlations
                .into_iter()
                .map(|c| IndicatorCorrelationOut {
                    metric: c.metric,
                    measure: c.measure.into(),
                    n: c.n as u64,
                    r: c.r,
                    low: c.ci.map(|i| i.low),
                    high: c.ci.map(|i| i.high),
                    p_value: c.p_value,
                })
                .collect(),
        })
    }

    /// The quarterly HISP report of a fiscal quarter (A-11 280.14-16): each designated
    /// service, channel and scale with the counts of answers 1-5 to q1-q8, volumes and
    /// indicators; the due date (and whether OMB published it or the rule gave it); the
    /// designated services without data. Download it as CSV or XLSX from
    /// `GET /v1/reports/hisp?fiscalYear=Y&quarter=Q&format=csv|xlsx`.
    async fn hisp_report(&self, ctx: &Context<'_>, fiscal_year: i32, quarter: u32, agency: Option<Vec<String>>) -> Result<HispReportOut> {
        let analytics = super::query::analytics_for(ctx).await?;
        let q = HispQuery { quarter: fiscal_quarter(fiscal_year, quarter).map_err(gql_error)?, agencies: agency };
        Ok(HispReportOut::from(&*super::memo::once(ctx, "hisp_report", &q, || analytics.hisp_report(&q)).await.map_err(gql_error)?))
    }
}
