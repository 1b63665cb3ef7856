//! GraphQL input and output types and their conversion to and from the domain and analytics
//! types. Nothing is computed here.

use crate::analytics::catalog::{OfficeInfo, ServiceInfo};
use crate::analytics::{scores::ScoreRow, Filter};
use crate::domain::{self, Dimension, Driver, Measure};
use async_graphql::{Enum, InputObject, InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value};
use chrono::NaiveDate;

/// A calendar day, `YYYY-MM-DD` (ISO 8601). Days are UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|e| InputValueError::custom(format!("'{s}' is not a date YYYY-MM-DD ({e})"))),
            other => Err(InputValueError::custom(format!("{other} is not a date string YYYY-MM-DD"))),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// Declares a GraphQL enum mirroring a domain enum, with conversions both ways.
macro_rules! mirror_enum {
    ($(#[$doc:meta])* $name:ident => $domain:ty { $($variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
        pub enum $name { $($variant),+ }
        impl From<$name> for $domain {
            fn from(v: $name) -> $domain { match v { $($name::$variant => <$domain>::$variant),+ } }
        }
        impl From<$domain> for $name {
            fn from(v: $domain) -> $name { match v { $(<$domain>::$variant => $name::$variant),+ } }
        }
    };
}

mirror_enum! {
    /// Service types of OMB A-11 280.4.
    ServiceType => domain::ServiceType { Administrative, Benefits, Compliance, Recreation, Informational, DataResearch, Regulatory }
}
mirror_enum! {
    /// Channel of the interaction.
    Channel => domain::Channel { Digital, InPerson, Phone, Email, Mail, Kiosk, Chat }
}
mirror_enum! {
    /// Point in time of the survey (A-11 280.10).
    Stage => domain::Stage { Transaction, Journey, Relationship }
}
mirror_enum! {
    /// Answer scale: 5-point Likert or thumbs up/down.
    Scale => domain::Scale { Likert5, Thumbs }
}
mirror_enum! {
    /// Dimensions results can be grouped by.
    GroupDimension => Dimension { Agency, Bureau, Service, ServiceType, Channel, Office, Region, Stage }
}
mirror_enum! {
    /// Period results can be grouped by. The federal fiscal year starts 1 October
    /// (FY2025 Q1 = October-December 2024); weeks are ISO weeks (Monday-Sunday); all in UTC.
    PeriodUnit => domain::PeriodUnit { Week, Month, Quarter, Year, FiscalQuarter, FiscalYear }
}

/// A scored question: trust, satisfaction or one of the six drivers.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MeasureName {
    Trust,
    Satisfaction,
    Effectiveness,
    Ease,
    Efficiency,
    Transparency,
    Humanity,
    Employee,
}

impl From<MeasureName> for Measure {
    fn from(m: MeasureName) -> Measure {
        match m {
            MeasureName::Trust => Measure::Trust,
            MeasureName::Satisfaction => Measure::Satisfaction,
            MeasureName::Effectiveness => Measure::Driver(Driver::Effectiveness),
            MeasureName::Ease => Measure::Driver(Driver::Ease),
            MeasureName::Efficiency => Measure::Driver(Driver::Efficiency),
            MeasureName::Transparency => Measure::Driver(Driver::Transparency),
            MeasureName::Humanity => Measure::Driver(Driver::Humanity),
            MeasureName::Employee => Measure::Driver(Driver::Employee),
        }
    }
}

impl From<Measure> for MeasureName {
    fn from(m: Measure) -> MeasureName {
        match m {
            Measure::Trust => MeasureName::Trust,
            Measure::Satisfaction => MeasureName::Satisfaction,
            Measure::Driver(Driver::Effectiveness) => MeasureName::Effectiveness,
            Measure::Driver(Driver::Ease) => MeasureName::Ease,
            Measure::Driver(Driver::Efficiency) => MeasureName::Efficiency,
            Measure::Driver(Driver::Transparency) => MeasureName::Transparency,
            Measure::Driver(Driver::Humanity) => MeasureName::Humanity,
            Measure::Driver(Driver::Employee) => MeasureName::Employee,
        }
    }
}

/// Which responses to include. Each list keeps responses whose value is one of its entries;
/// a field left out does not restrict. `from` and `to` are UTC days, both included.
#[derive(InputObject, Default, Debug, Clone)]
pub struct ResponseFilter {
    /// Agency codes, such as "VA".
    pub agency: Option<Vec<String>>,
    /// Bureau codes, such as "VA-VBA".
    pub bureau: Option<Vec<String>>,
    /// Service ids.
    pub service: Option<Vec<String>>,
    pub service_type: Option<Vec<ServiceType>>,
    pub channel: Option<Vec<Channel>>,
    /// Office ids.
    pub office: Option<Vec<String>>,
    /// US state or territory codes (USPS).
    pub region: Option<Vec<String>>,
    pub stage: Option<Vec<Stage>>,
    pub scale: Option<Vec<Scale>>,
    /// First day included (UTC).
    pub from: Option<Date>,
    /// Last day included (UTC).
    pub to: Option<Date>,
}

impl From<ResponseFilter> for Filter {
    fn from(f: ResponseFilter) -> Filter {
        let mut out = Filter { from: f.from.map(|d| d.0), to: f.to.map(|d| d.0), scales: f.scale.map(|v| v.into_iter().map(Into::into).collect()), ..Default::default() };
        for (dim, values) in [
            (Dimension::Agency, f.agency),
            (Dimension::Bureau, f.bureau),
            (Dimension::Service, f.service),
            (Dimension::ServiceType, f.service_type.map(|v| v.into_iter().map(|x| domain::ServiceType::from(x).to_string()).collect())),
            (Dimension::Channel, f.channel.map(|v| v.into_iter().map(|x| domain::Channel::from(x).to_string()).collect())),
            (Dimension::Office, f.office),
            (Dimension::Region, f.region),
            (Dimension::Stage, f.stage.map(|v| v.into_iter().map(|x| domain::Stage::from(x).to_string()).collect())),
        ] {
            if let Some(values) = values {
                out.values.insert(dim, values);
            }
        }
        out
    }
}

/// How many answers had one value on one scale.
#[derive(SimpleObject, Debug, Clone)]
pub struct AnswerCount {
    pub scale: Scale,
    pub value: i32,
    pub count: u64,
    /// Sum of the survey weights of these answers (equal to `count` unless `weighted`).
    pub weighted_count: f64,
}

/// The scores of one measure in one group (a tidy row: one per group and measure). Grouping
/// fields are null when not grouped by, or when the responses have no value (digital
/// responses have no office).
#[derive(SimpleObject, Debug, Clone)]
pub struct ScoreRowOut {
    pub agency: Option<String>,
    pub bureau: Option<String>,
    pub service: Option<String>,
    pub service_type: Option<String>,
    pub channel: Option<String>,
    pub office: Option<String>,
    pub region: Option<String>,
    pub stage: Option<String>,
    /// Period label (FY2025Q1, 2024-11, 2024-W46, 2024Q4, 2024, FY2025) when grouped by period.
    pub period: Option<String>,
    pub period_start: Option<Date>,
    pub period_end: Option<Date>,
    pub measure: MeasureName,
    /// Answers on both scales.
    pub n: u64,
    pub n_likert: u64,
    pub n_thumbs: u64,
    /// Mean of the Likert (1-5) answers; thumbs answers are not on that scale.
    pub mean: Option<f64>,
    /// Sample standard deviation of the Likert answers.
    pub sd: Option<f64>,
    /// 95% Student-t interval of the mean (Kish effective n when weighted).
    pub mean_low: Option<f64>,
    pub mean_high: Option<f64>,
    /// Kish's effective sample size of the Likert answers (n_likert unless weighted).
    pub n_effective_likert: f64,
    /// Share agreeing: 4-5 on Likert, thumbs up on thumbs; both scales pooled.
    pub agree_share: Option<f64>,
    /// 95% Wilson score interval of the agree share.
    pub agree_low: Option<f64>,
    pub agree_high: Option<f64>,
    /// Kish's effective sample size of all answers (n unless weighted).
    pub n_effective: f64,
    pub distribution: Vec<AnswerCount>,
}

impl From<ScoreRow> for ScoreRowOut {
    fn from(r: ScoreRow) -> ScoreRowOut {
        let get = |d: Dimension| r.key.values.iter().find(|(k, _)| *k == d).and_then(|(_, v)| v.clone());
        ScoreRowOut {
            agency: get(Dimension::Agency),
            bureau: get(Dimension::Bureau),
            service: get(Dimension::Service),
            service_type: get(Dimension::ServiceType),
            channel: get(Dimension::Channel),
            office: get(Dimension::Office),
            region: get(Dimension::Region),
            stage: get(Dimension::Stage),
            period: r.key.period.as_ref().map(|p| p.label.clone()),
            period_start: r.key.period.as_ref().map(|p| Date(p.start)),
            period_end: r.key.period.as_ref().map(|p| Date(p.end)),
            measure: r.measure.into(),
            n: r.n,
            n_likert: r.n_likert,
            n_thumbs: r.n_thumbs,
            mean: r.mean,
            sd: r.sd,
            mean_low: r.mean_ci.map(|c| c.low),
            mean_high: r.mean_ci.map(|c| c.high),
            n_effective_likert: r.n_effective_likert,
            agree_share: r.agree_share,
            agree_low: r.agree_ci.map(|c| c.low),
            agree_high: r.agree_ci.map(|c| c.high),
            n_effective: r.n_effective,
            distribution: r
                .distribution
                .into_iter()
                .map(|a| AnswerCount { scale: a.scale.into(), value: a.value as i32, count: a.count, weighted_count: a.weight })
                .collect(),
        }
    }
}

/// A service of the lake's services dimension.
#[derive(SimpleObject, Debug, Clone)]
pub struct ServiceOut {
    pub id: String,
    pub name: String,
    pub agency: String,
    pub agency_name: String,
    pub bureau: String,
    pub bureau_name: String,
    pub service_type: String,
    pub channels: Vec<String>,
}

/// An office of the lake's offices dimension.
#[derive(SimpleObject, Debug, Clone)]
pub struct OfficeOut {
    pub id: String,
    pub name: String,
    pub city: String,
    pub state: String,
    pub agency: String,
}

impl From<&ServiceInfo> for ServiceOut {
    fn from(s: &ServiceInfo) -> ServiceOut {
        ServiceOut {
            id: s.id.clone(),
            name: s.name.clone(),
            agency: s.agency.clone(),
            agency_name: s.agency_name.clone(),
            bureau: s.bureau.clone(),
            bureau_name: s.bureau_name.clone(),
            service_type: s.service_type.clone(),
            channels: s.channels.clone(),
        }
    }
}

impl From<&OfficeInfo> for OfficeOut {
    fn from(o: &OfficeInfo) -> OfficeOut {
        OfficeOut { id: o.id.clone(), name: o.name.clone(), city: o.city.clone(), state: o.state.clone(), agency: o.agency.clone() }
    }
}
