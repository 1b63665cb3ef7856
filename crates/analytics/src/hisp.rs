//! The quarterly HISP report (A-11 280.14-16) of a fiscal quarter: for each designated service,
//! channel and answer scale with responses, the counts of answers 1-5 to q1-q8 (one scores
//! pass over the quarter's partitions, the same bins `scores` reads), the respondents, the
//! volume of customers and of surveys offered (telemetry `transactions` and `surveys_offered`
//! summed over the quarter), the quarter's mean service-level indicators, and a summary; plus
//! the submission's due date and the designated services with no responses yet.
//!
//! Suppression: a question whose answers in the row number fewer than the minimum cell size
//! has its counts withheld (empty) and is listed in `suppressed_questions`; volumes are
//! operational counts and stay. In a perturbed view (the public's) every count of answers,
//! each question's n and the respondents are perturbed by their cell keys (decisions on the
//! true counts), and the summary's shares come from the perturbed counts. On the thumbs scale
//! (`point_scale` 2) down is counted in `qN_1` and up in `qN_2`; drivers are not asked on that
//! scale (they are tapped).

use super::observations::{AggregateQuery, ObservationFilter, ObservationKey};
use super::scores::{plan_with, ScoresQuery};
use super::{gated, Weight};
use super::{Analytics, AnalyticsError, Filter};
use cx_domain::due_dates::{hisp_due_date, DueDate};
use cx_domain::hisp::QUESTIONS;
use cx_domain::inventory::ServiceRecord;
use cx_domain::observations::ObservationTable;
use cx_domain::{Dimension, FiscalQuarter, Measure, Scale};
use cx_stats::cellkey::{cell_key, perturb};
use polars::prelude::*;
use std::collections::BTreeMap;

/// Answer counts of a row by (measure, answer value), with the sum of their record keys (0
/// unless perturbing).
type Bins = BTreeMap<(Measure, i64), (u64, u64)>;

/// Which quarter and services.
#[derive(Debug, Clone)]
pub struct HispQuery {
    pub quarter: FiscalQuarter,
    /// Restrict to these agencies (default: all).
    pub agencies: Option<Vec<String>>,
}

/// The answers of one question in one row.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionCounts {
    pub number: u8,
    pub text: &'static str,
    /// Counts of answers 1-5 (thumbs: down, up, then zeros); `None` when not asked on this
    /// scale or withheld.
    pub counts: Option<[u64; 5]>,
    /// Answers in the row (shown even when the counts are withheld).
    pub n: u64,
    pub suppressed: bool,
}

/// One designated service, channel and scale.
#[derive(Debug, Clone, PartialEq)]
pub struct HispRow {
    pub service: ServiceRecord,
    pub channel: String,
    pub point_scale: u8,
    pub volume_of_customers: Option<u64>,
    pub surveys_offered: Option<u64>,
    pub respondents: u64,
    pub questions: Vec<QuestionCounts>,
    /// Quarter means of the service's indicators, by name.
    pub indicators: Vec<super::observations::IndicatorValue>,
    pub summary: String,
}

/// The report.
#[derive(Debug, Clone)]
pub struct HispReport {
    pub quarter: FiscalQuarter,
    pub due: DueDate,
    pub rows: Vec<HispRow>,
    /// Designated services (in scope) with no responses in the quarter.
    pub services_without_data: Vec<ServiceRecord>,
    pub min_cell: u64,
    /// The counts are perturbed (a perturbed view: the public role's).
    pub perturbed: bool,
}

/// One cell of the report table.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportValue {
    Text(String),
    Int(u64),
    Empty,
}

impl HispRow {
    /// The row's cells in the order of `domain::hisp::columns()`.
    pub fn cells(&self, quarter: FiscalQuarter) -> Vec<ReportValue> {
        use ReportValue::*;
        let t = |s: &str| Text(s.to_string());
        let opt = |v: Option<u64>| v.map_or(Empty, Int);
        let mut out = vec![
            Int(quarter.year as u64),
            Int(quarter.quarter as u64),
            t(&self.service.agency_name),
            t(&self.service.agency),
            t(&self.service.bureau_name),
            t(&self.service.bureau),
            t(&self.service.name),
            t(&self.service.id),
            t(&self.channel),
            Int(self.point_scale as u64),
            opt(self.volume_of_customers),
            opt(self.surveys_offered),
            Int(self.respondents),
        ];
        for q in &self.questions {
            out.push(if q.text.is_empty() { Empty } else { t(q.text) });
            match q.counts {
                Some(c) => out.extend(c.iter().map(|v| Int(*v))),
                None => out.extend(std::iter::repeat_n(Empty, 5)),
            }
        }
        let indicators: Vec<String> = self.indicators.iter().map(|i| format!("{}={:.2}", i.metric, i.mean)).collect();
        out.push(if indicators.is_empty() { Empty } else { Text(indicators.join("; ")) });
        out.push(t(&self.summary));
        let suppressed: Vec<String> = self.questions.iter().filter(|q| q.suppressed).map(|q| format!("q{}", q.number)).collect();
        out.push(if suppressed.is_empty() { Empty } else { Text(suppressed.join(";")) });
        out
    }
}

impl HispReport {
    /// A statement of the due date and which rule gave it.
    pub fn due_statement(&self) -> String {
        let source = match self.due.source {
            cx_domain::due_dates::DueDateSource::Published => "the date OMB published",
            cx_domain::due_dates::DueDateSource::Rule => {
                "the rule of A-11 280.16: the last business day of the month after the quarter, federal holidays considered"
            }
        };
        format!("FY{} Q{} data are due {} ({source})", self.quarter.year, self.quarter.quarter, self.due.date)
    }
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

impl Analytics {
    /// Builds the HISP report of a quarter.
    pub async fn hisp_report(&self, q: &HispQuery) -> Result<HispReport, AnalyticsError> {
        let catalog = self.catalog();
        if let Some(a) = &q.agencies {
            catalog.check(&Filter::default().with(Dimension::Agency, a.clone()))?;
        }
        let designated: Vec<ServiceRecord> =
            catalog.services.iter().filter(|s| s.designated && q.agencies.as_ref().is_none_or(|a| a.contains(&s.agency))).cloned().collect();
        let due = hisp_due_date(q.quarter);
        let min_cell = self.suppression.min_cell;
        let mut report =
            HispReport { quarter: q.quarter, due, rows: Vec::new(), services_without_data: Vec::new(), min_cell, perturbed: self.perturb.is_some() };
        if designated.is_empty() {
            return Ok(report);
        }
        let mut filter = Filter::default().with(Dimension::Service, designated.iter().map(|s| s.id.clone()));
        if let Some(a) = &q.agencies {
            filter = filter.with(Dimension::Agency, a.clone());
        }
        filter.from = Some(q.quarter.start());
        filter.to = Some(q.quarter.end());
        let measures: Vec<Measure> = QUESTIONS.iter().filter_map(|q| q.measure).collect();
        let sq =
            ScoresQuery { filter: filter.clone(), group_by: vec![Dimension::Service, Dimension::Channel], measures: measures.clone(), ..Default::default() };

        // Answer counts and respondents per service, channel and scale: one pass.
        let files = self.lake.response_files(&filter.partitions()).await?;
        let mut cells: BTreeMap<(String, String, String), (u64, Bins)> = BTreeMap::new();
        if !files.is_empty() {
            let mut extra = vec![len().cast(DataType::UInt64).alias("respondents")];
            if self.perturb.is_some() {
                extra.push(col(super::cellkey::RECORD_KEY).sum().alias("respondents__k"));
            }
            let scan = self.lake.scan_responses(&files)?;
            let (sq2, secret) = (sq.clone(), self.perturb.clone());
            let df = self
                .blocking(Weight::Heavy, move |cancel| {
                    let lf = plan_with(gated(scan, cancel), &sq2, extra, secret.as_ref());
                    Ok(lf.collect_with_engine(Engine::Streaming)?.unwrap_single())
                })
                .await
                .map_err(|e| self.explain_failure(&files, e))?;
            let (service, channel, scale, respondents) =
                (df.column("service_id")?.str()?, df.column("channel")?.str()?, df.column("scale")?.str()?, df.column("respondents")?.u64()?);
            let respondent_keys = match df.column("respondents__k") {
                Ok(c) => Some(c.u64()?),
                Err(_) => None,
            };
            for i in 0..df.height() {
                let key = (
                    service.get(i).unwrap_or_default().to_string(),
                    channel.get(i).unwrap_or_default().to_string(),
                    scale.get(i).unwrap_or_default().to_string(),
                );
                let mut bins = BTreeMap::new();
                for &m in &measures {
                    for v in 0..=5i64 {
                        if let Ok(c) = df.column(&super::scores::bin_column(m, v)) {
                            let k = match df.column(&super::scores::key_column(m, v)) {
                                Ok(k) => k.u64()?.get(i).unwrap_or(0),
                                Err(_) => 0,
                            };
                            bins.insert((m, v), (c.u64()?.get(i).unwrap_or(0), k));
                        }
                    }
                }
                let n = respondents.get(i).unwrap_or(0);
                // A perturbed view shows the number of respondents perturbed by its cell key.
                let n = match respondent_keys {
                    Some(k) => perturb(n, cell_key(k.get(i).unwrap_or(0))),
                    None => n,
                };
                cells.insert(key, (n, bins));
            }
        }

        // Volumes from telemetry, indicators' quarter means.
        let telemetry = self
            .aggregate(&AggregateQuery {
                table: ObservationTable::Telemetry,
                filter: ObservationFilter { filter: filter.clone(), metrics: Some(vec!["transactions".into(), "surveys_offered".into()]), pages: None },
                by: vec![ObservationKey::Service, ObservationKey::Channel],
                period: None,
            })
            .await?;
        let mut volumes: BTreeMap<(String, String, String), u64> = BTreeMap::new();
        for a in telemetry {
            if let (Some(s), Some(c)) = (a.get(ObservationKey::Service), a.get(ObservationKey::Channel)) {
                volumes.insert((s.to_string(), c.to_string(), a.metric.clone()), a.sum.round() as u64);
            }
        }
        let indicators = self
            .aggregate(&AggregateQuery {
                table: ObservationTable::Indicators,
                filter: ObservationFilter { filter: filter.clone(), metrics: None, pages: None },
                by: vec![ObservationKey::Service],
                period: None,
            })
            .await?;
        // Aggregate rows come sorted by metric, so each service's list is too.
        let mut service_indicators: BTreeMap<String, Vec<super::observations::IndicatorValue>> = BTreeMap::new();
        for a in indicators {
            if let Some(s) = a.get(ObservationKey::Service) {
                let value = super::observations::IndicatorValue { metric: a.metric.clone(), mean: a.mean, count: a.count };
                service_indicators.entry(s.to_string()).or_default().push(value);
            }
        }

        let by_id: BTreeMap<&str, &ServiceRecord> = designated.iter().map(|s| (s.id.as_str(), s)).collect();
        for ((service_id, channel, scale), (respondents, bins)) in &cells {
            let Some(service) = by_id.get(service_id.as_str()) else { continue };
            let thumbs = scale == Scale::Thumbs.as_str();
            let questions: Vec<QuestionCounts> = QUESTIONS
                .iter()
                .map(|hq| {
                    let Some(m) = hq.measure else {
                        return QuestionCounts { number: hq.number, text: hq.text, counts: None, n: 0, suppressed: false };
                    };
                    let get = |v: i64| bins.get(&(m, v)).copied().unwrap_or((0, 0));
                    let cells = if thumbs {
                        if !m.has_thumbs() {
                            return QuestionCounts { number: hq.number, text: hq.text, counts: None, n: 0, suppressed: false };
                        }
                        [get(0), get(1), (0, 0), (0, 0), (0, 0)]
                    } else {
                        [get(1), get(2), get(3), get(4), get(5)]
                    };
                    let n: u64 = cells.iter().map(|c| c.0).sum();
                    // Decided on the true n.
                    let suppressed = n > 0 && super::suppression::Suppression::check(n, min_cell).is_some();
                    // A perturbed view: each count, and n, perturbed by its own cell key.
                    let (counts, n) = if self.perturb.is_some() {
                        let key = cell_key(cells.iter().map(|c| c.1).fold(0u64, u64::wrapping_add));
                        let shown = if n > 0 { super::suppression::Suppression::clip(perturb(n, key), suppressed, min_cell) } else { 0 };
                        (cells.map(|(c, k)| perturb(c, cell_key(k))), shown)
                    } else {
                        (cells.map(|c| c.0), n)
                    };
                    QuestionCounts { number: hq.number, text: hq.text, counts: (!suppressed).then_some(counts), n, suppressed }
                })
                .collect();
            let volume = |metric: &str| volumes.get(&(service_id.clone(), channel.clone(), metric.to_string())).copied();
            let (customers, offered) = (volume("transactions"), volume("surveys_offered"));
            let mut summary = format!("{respondents} respondents");
            if let Some(o) = offered.filter(|o| *o > 0) {
                summary.push_str(&format!(" of {o} customers offered the survey ({} response rate)", pct(*respondents as f64 / o as f64)));
            }
            for q in questions.iter().take(2) {
                if let (Some(c), false) = (q.counts, q.suppressed) {
                    let agree = if thumbs { c[1] } else { c[3] + c[4] };
                    let label = if q.number == 1 { "satisfaction" } else { "trust" };
                    // Of the counts shown (perturbed ones in a perturbed view).
                    let answered: u64 = c.iter().sum();
                    if answered > 0 {
                        summary.push_str(&format!("; {label} {} agree", pct(agree as f64 / answered as f64)));
                    }
                }
            }
            if questions.iter().any(|q| q.suppressed) {
                summary.push_str(&format!("; questions with fewer than {min_cell} answers withheld"));
            }
            report.rows.push(HispRow {
                service: (*service).clone(),
                channel: channel.clone(),
                point_scale: if thumbs { 2 } else { 5 },
                volume_of_customers: customers,
                surveys_offered: offered,
                respondents: *respondents,
                questions,
                indicators: service_indicators.get(service_id).cloned().unwrap_or_default(),
                summary,
            });
        }
        report.rows.sort_by(|a, b| {
            (&a.service.agency, &a.service.bureau, &a.service.id, &a.channel, a.point_scale).cmp(&(
                &b.service.agency,
                &b.service.bureau,
                &b.service.id,
                &b.channel,
                b.point_scale,
            ))
        });
        report.services_without_data = designated.iter().filter(|s| !report.rows.iter().any(|r| r.service.id == s.id)).cloned().collect();
        Ok(report)
    }
}
