//! Operational numbers beside the surveys: telemetry (A-11 280.7: page views, clicks,
//! transactions, surveys offered, each timestamped per service, optionally per channel and
//! page or flow) and service-level indicators (280.12: wait time, processing time,
//! first-contact resolution, per service and period, optionally per office). Both are one
//! shape, an `Observation`; the rules name the field at fault.

use super::codes::Channel;
use super::validate::Problem;
use chrono::{DateTime, Utc};

/// The two tables of observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObservationTable {
    Telemetry,
    Indicators,
}

impl ObservationTable {
    /// The table's name and its directory in the lake.
    pub fn as_str(self) -> &'static str {
        match self {
            ObservationTable::Telemetry => "telemetry",
            ObservationTable::Indicators => "indicators",
        }
    }

    /// The metrics this table knows the meaning (and so the range) of. Others are accepted
    /// when their name is well formed, checked only for being finite.
    pub fn known(self) -> &'static [KnownMetric] {
        match self {
            ObservationTable::Telemetry => TELEMETRY_METRICS,
            ObservationTable::Indicators => INDICATORS,
        }
    }

    pub fn known_metric(self, name: &str) -> Option<&'static KnownMetric> {
        self.known().iter().find(|m| m.name == name)
    }
}

impl std::str::FromStr for ObservationTable {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "telemetry" => Ok(ObservationTable::Telemetry),
            "indicators" => Ok(ObservationTable::Indicators),
            other => Err(format!("unknown table '{other}' (expected telemetry or indicators)")),
        }
    }
}

/// A metric with a known meaning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnownMetric {
    pub name: &'static str,
    pub unit: &'static str,
    /// Counts are whole and never negative.
    pub count: bool,
    /// Inclusive range of valid values.
    pub min: f64,
    pub max: f64,
    pub description: &'static str,
}

const fn count(name: &'static str, description: &'static str) -> KnownMetric {
    KnownMetric { name, unit: "count", count: true, min: 0.0, max: f64::MAX, description }
}

/// Telemetry metrics with a known meaning.
pub const TELEMETRY_METRICS: &[KnownMetric] = &[
    count("page_views", "views of a page or screen"),
    count("button_clicks", "clicks on a tracked button or link"),
    count("sessions", "visits or calls started"),
    count("transactions", "completed transactions: the volume of customers served"),
    count("surveys_offered", "customers offered the feedback survey"),
];

/// Service-level indicators with a known meaning.
pub const INDICATORS: &[KnownMetric] = &[
    KnownMetric { name: "wait_time_minutes", unit: "minutes", count: false, min: 0.0, max: 525_600.0, description: "average wait before service" },
    KnownMetric { name: "processing_time_days", unit: "days", count: false, min: 0.0, max: 36_500.0, description: "average time from request to decision" },
    KnownMetric {
        name: "first_contact_resolution",
        unit: "share",
        count: false,
        min: 0.0,
        max: 1.0,
        description: "share of contacts resolved at the first contact",
    },
    KnownMetric { name: "backlog", unit: "count", count: true, min: 0.0, max: f64::MAX, description: "open requests at the end of the period" },
];

/// Whether `name` may name a metric: lower-case snake case, a letter first, at most 64.
pub fn is_valid_metric_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && b.len() <= 64 && b[0].is_ascii_lowercase() && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// Longest page or flow name accepted.
pub const MAX_PAGE: usize = 200;

/// One timestamped number about a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The agency the service belongs to (its partition).
    pub agency: String,
    pub service_id: String,
    /// When it was observed; for a count over a period, the period's start.
    pub observed_at: DateTime<Utc>,
    pub metric: String,
    pub value: f64,
    pub channel: Option<Channel>,
    /// Page, screen or flow name (telemetry).
    pub page: Option<String>,
    /// Office the number describes (indicators by office).
    pub office_id: Option<String>,
}

fn problem(column: &str, reason: impl Into<String>) -> Problem {
    Problem { column: column.to_string(), reason: reason.into() }
}

impl Observation {
    /// The identity of the observation: a second one with the same key is the same fact.
    pub fn key(&self) -> String {
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.service_id,
            self.metric,
            self.observed_at.timestamp_micros(),
            self.channel.map(|c| c.as_str()).unwrap_or(""),
            self.page.as_deref().unwrap_or(""),
            self.office_id.as_deref().unwrap_or("")
        )
    }

    /// Every rule the observation breaks in `table`; `now` bounds timestamps (an hour of
    /// clock skew is allowed).
    pub fn problems(&self, table: ObservationTable, now: DateTime<Utc>) -> Vec<Problem> {
        let mut out = Vec::new();
        if !super::inventory::is_valid_service_id(&self.service_id) {
            out.push(problem("service_id", format!("'{}' is not a service id", self.service_id.escape_debug())));
        }
        if self.observed_at > now + chrono::Duration::hours(1) {
            out.push(problem("observed_at", format!("{} is in the future", self.observed_at.to_rfc3339())));
        }
        if self.observed_at.date_naive() < chrono::NaiveDate::from_ymd_opt(1990, 1, 1).expect("valid date") {
            out.push(problem("observed_at", format!("{} is before 1990", self.observed_at.to_rfc3339())));
        }
        if !is_valid_metric_name(&self.metric) {
            out.push(problem(
                "metric",
                format!("'{}' is not a metric name (lower-case letters, digits and '_', a letter first, at most 64)", self.metric.escape_debug()),
            ));
        }
        if !self.value.is_finite() {
            out.push(problem("value", format!("{} is not a finite number", self.value)));
        } else if let Some(m) = table.known_metric(&self.metric) {
            if m.count && (self.value < 0.0 || self.value.fract() != 0.0) {
                out.push(problem("value", format!("{} is not a count: {} counts {} and is a whole number from 0", self.value, m.name, m.description)));
            } else if self.value < m.min || self.value > m.max {
                out.push(problem("value", format!("{} is outside {}'s range {} to {} ({})", self.value, m.name, m.min, m.max, m.unit)));
            }
        }
        if let Some(p) = &self.page {
            if p.chars().count() > MAX_PAGE {
                out.push(problem("page", format!("is {} characters long; at most {MAX_PAGE} are allowed", p.chars().count())));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(metric: &str, value: f64) -> Observation {
        Observation {
            agency: "VA".into(),
            service_id: "VA-S001".into(),
            observed_at: "2025-03-01T00:00:00Z".parse().unwrap(),
            metric: metric.into(),
            value,
            channel: Some(Channel::Digital),
            page: Some("/apply".into()),
            office_id: None,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn known_counts_are_whole_and_not_negative() {
        let t = ObservationTable::Telemetry;
        assert!(obs("page_views", 120.0).problems(t, now()).is_empty());
        for bad in [-1.0, 2.5, f64::NAN, f64::INFINITY] {
            let p = obs("page_views", bad).problems(t, now());
            assert_eq!(p.len(), 1, "{bad}");
            assert_eq!(p[0].column, "value");
        }
        // An unknown metric only has to be finite.
        assert!(obs("average_session_seconds", -3.5).problems(t, now()).is_empty());
    }

    #[test]
    fn indicator_ranges_and_names() {
        let t = ObservationTable::Indicators;
        assert!(obs("first_contact_resolution", 0.8).problems(t, now()).is_empty());
        assert_eq!(obs("first_contact_resolution", 1.2).problems(t, now())[0].column, "value");
        assert_eq!(obs("wait_time_minutes", -5.0).problems(t, now())[0].column, "value");
        assert_eq!(obs("Wait Time", 5.0).problems(t, now())[0].column, "metric");
        let mut late = obs("wait_time_minutes", 5.0);
        late.observed_at = "2026-02-01T00:00:00Z".parse().unwrap();
        assert_eq!(late.problems(t, now())[0].column, "observed_at");
    }

    #[test]
    fn the_key_separates_channels_pages_and_offices() {
        let a = obs("page_views", 1.0);
        let mut b = a.clone();
        b.value = 2.0;
        assert_eq!(a.key(), b.key(), "the value is not part of the identity");
        b.page = Some("/status".into());
        assert_ne!(a.key(), b.key());
        let mut c = a.clone();
        c.channel = None;
        assert_ne!(a.key(), c.key());
    }
}
