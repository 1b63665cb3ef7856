//! GraphQL input and output types and their conversion to and from the domain and analytics
//! types. Nothing is computed here.

use async_graphql::{Enum, InputObject, InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value};
use chrono::NaiveDate;
use cx_analytics::catalog::{OfficeInfo, ServiceInfo};
use cx_analytics::drivers::{DriverGroup, DriverStat, Quadrant, TapStat};
use cx_analytics::{scores::ScoreRow, Filter, GroupKey};
use cx_domain::{self as domain, Dimension, Driver, Measure};

/// A calendar day, `YYYY-MM-DD` (ISO 8601). Days are UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => {
                NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Date).map_err(|e| InputValueError::custom(format!("'{s}' is not a date YYYY-MM-DD ({e})")))
            }
            other => Err(InputValueError::custom(format!("{other} is not a date string YYYY-MM-DD"))),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// Declares a GraphQL enum mirroring a domain enum, with conversions both ways.
macro_rules! mirror_enum {
    ($(#[$doc:meta])* $name:ident => $domain:ty { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }
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
    PeriodUnit => domain::PeriodUnit { Day, Week, Month, Quarter, Year, FiscalQuarter, FiscalYear }
}

mirror_enum! {
    /// A driver question of A-11 280.
    DriverName => Driver { Effectiveness, Ease, Efficiency, Transparency, Humanity, Employee }
}
mirror_enum! {
    /// How the outcome of a tapped-indicator analysis is modelled.
    TappedModelName => cx_analytics::tapped::TappedModel {
        /// Logistic regression of "agrees" (thumbs up; 4-5 on Likert), pooled over both scales.
        Logistic,
        /// Least squares of the 1-5 answer, Likert responses only.
        Linear,
    }
}
mirror_enum! {
    /// A topic of the tap lists: the six drivers and OTHER.
    TapTopicName => domain::TapTopic { Effectiveness, Ease, Efficiency, Transparency, Humanity, Employee, Other }
}
mirror_enum! {
    /// Importance-performance quadrant, relative to the group's average Shapley share and
    /// average agree share over its drivers.
    QuadrantName => Quadrant { MaintainStrength, FixFirst, Secondary, PossibleOverinvestment }
}

/// The outcome of a driver analysis.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum OutcomeName {
    Trust,
    Satisfaction,
}

impl From<OutcomeName> for Measure {
    fn from(o: OutcomeName) -> Measure {
        match o {
            OutcomeName::Trust => Measure::Trust,
            OutcomeName::Satisfaction => Measure::Satisfaction,
        }
    }
}

/// How missing driver answers are handled.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MissingPolicy {
    /// Only responses answering the outcome and every driver.
    Listwise,
    /// Each correlation from the responses answering both of its variables.
    Pairwise,
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
    /// Read the lake as it was at a version or instant instead of now (time travel, for
    /// reproducible research; `lakeVersions` tells which table versions that is).
    pub as_of: Option<AsOf>,
}

/// A past state of the lake: exactly one of a table version (of the table the query reads:
/// responses, or telemetry and indicators for observation queries) or an instant (the last
/// version of each table committed by then).
#[derive(async_graphql::OneofObject, Debug, Clone, Copy)]
pub enum AsOf {
    Version(u64),
    Time(chrono::DateTime<chrono::Utc>),
}

/// The lake version and the versions of its tables.
#[derive(SimpleObject, Debug, Clone)]
pub struct LakeVersions {
    /// The number of commits of all tables together: it moves with every change of the lake.
    pub lake_version: u64,
    pub tables: Vec<TableVersion>,
}

/// One Delta table's version.
#[derive(SimpleObject, Debug, Clone)]
pub struct TableVersion {
    /// responses, telemetry, indicators, services or offices.
    pub table: String,
    pub version: u64,
}

impl From<&cx_lake::delta::Versions> for LakeVersions {
    fn from(v: &cx_lake::delta::Versions) -> Self {
        LakeVersions { lake_version: v.lake(), tables: v.0.iter().map(|(t, v)| TableVersion { table: t.to_string(), version: *v }).collect() }
    }
}

impl From<AsOf> for cx_lake::delta::AsOf {
    fn from(a: AsOf) -> Self {
        match a {
            AsOf::Version(v) => cx_lake::delta::AsOf::Version(v),
            AsOf::Time(t) => cx_lake::delta::AsOf::Time(t),
        }
    }
}

impl From<ResponseFilter> for Filter {
    fn from(f: ResponseFilter) -> Filter {
        let mut out = Filter {
            from: f.from.map(|d| d.0),
            to: f.to.map(|d| d.0),
            scales: f.scale.map(|v| v.into_iter().map(Into::into).collect()),
            as_of: f.as_of.map(Into::into).unwrap_or_default(),
            values: Default::default(),
        };
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

/// The group a result row describes. Grouping fields are null when not grouped by, or when the
/// responses have no value (digital responses have no office).
#[derive(SimpleObject, Debug, Clone)]
pub struct GroupOut {
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
}

impl From<&GroupKey> for GroupOut {
    fn from(k: &GroupKey) -> GroupOut {
        let get = |d: Dimension| k.get(d).map(str::to_string);
        GroupOut {
            agency: get(Dimension::Agency),
            bureau: get(Dimension::Bureau),
            service: get(Dimension::Service),
            service_type: get(Dimension::ServiceType),
            channel: get(Dimension::Channel),
            office: get(Dimension::Office),
            region: get(Dimension::Region),
            stage: get(Dimension::Stage),
            period: k.period.as_ref().map(|p| p.label.clone()),
            period_start: k.period.as_ref().map(|p| Date(p.start)),
            period_end: k.period.as_ref().map(|p| Date(p.end)),
        }
    }
}

/// The statistics of one measure in one cell: n, mean and spread of the Likert answers with a
/// 95% interval, the agree share with its Wilson interval, and whether they are withheld.
#[derive(SimpleObject, Debug, Clone)]
pub struct ScoreOut {
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
    /// True when the statistics are withheld: fewer respondents than the deployment's minimum
    /// cell size (or complementary suppression in a benchmark).
    pub suppressed: bool,
    pub suppressed_reason: Option<String>,
    /// True when the counts (n, n by scale, the distribution) are perturbed by the cell-key
    /// method and the statistics computed from the perturbed distribution (the public role);
    /// each count is perturbed on its own, so the distribution need not add up to n. Other
    /// roles get exact numbers (false).
    pub perturbed: bool,
}

impl From<&ScoreRow> for ScoreOut {
    fn from(r: &ScoreRow) -> ScoreOut {
        ScoreOut {
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
            suppressed: r.suppressed.is_some(),
            suppressed_reason: r.suppressed.clone(),
            perturbed: r.perturbed,
        }
    }
}

/// The scores of one measure in one group (a tidy row: one per group and measure).
#[derive(SimpleObject, Debug, Clone)]
pub struct ScoreRowOut {
    #[graphql(flatten)]
    pub group: GroupOut,
    pub measure: MeasureName,
    #[graphql(flatten)]
    pub score: ScoreOut,
    pub distribution: Vec<AnswerCount>,
}

impl From<&ScoreRow> for ScoreRowOut {
    fn from(r: &ScoreRow) -> ScoreRowOut {
        ScoreRowOut {
            group: GroupOut::from(&r.key),
            measure: r.measure.into(),
            score: ScoreOut::from(r),
            distribution: r
                .distribution
                .iter()
                .map(|a| AnswerCount { scale: a.scale.into(), value: a.value as i32, count: a.count, weighted_count: a.weight })
                .collect(),
        }
    }
}

/// A service of the lake's service inventory (A-11 280.5).
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct ServiceOut {
    pub id: String,
    pub name: String,
    pub agency: String,
    pub agency_name: String,
    pub bureau: String,
    pub bureau_name: String,
    pub service_type: String,
    pub channels: Vec<String>,
    /// Short description of what the service provides.
    pub description: String,
    /// The organizational unit responsible for it.
    pub org_unit: String,
    /// A designated service of a High Impact Service Provider (reported quarterly).
    pub designated: bool,
    /// Whether customers can receive it through a digital channel (digital, chat, email).
    pub has_digital_channel: bool,
    /// Why it has no digital channel.
    pub non_digital_reason: Option<String>,
    /// Ways it could be made digital.
    pub digitization_options: Vec<String>,
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
            service_type: s.service_type.as_str().to_string(),
            channels: s.channels.iter().map(|c| c.as_str().to_string()).collect(),
            description: s.description.clone(),
            org_unit: s.org_unit.clone(),
            designated: s.designated,
            has_digital_channel: s.has_digital_channel(),
            non_digital_reason: s.non_digital_reason.clone(),
            digitization_options: s.digitization_options.clone(),
        }
    }
}

impl From<&OfficeInfo> for OfficeOut {
    fn from(o: &OfficeInfo) -> OfficeOut {
        OfficeOut { id: o.id.clone(), name: o.name.clone(), city: o.city.clone(), state: o.state.clone(), agency: o.agency.clone() }
    }
}

/// One driver's importance in one group.
#[derive(SimpleObject, Debug, Clone)]
pub struct DriverStatOut {
    pub driver: DriverName,
    /// Correlation with the outcome.
    pub r: Option<f64>,
    /// Standardized regression coefficient.
    pub beta: Option<f64>,
    /// r squared.
    pub first: Option<f64>,
    /// Drop in R squared when the driver is removed.
    pub last: Option<f64>,
    /// beta x r.
    pub pratt: Option<f64>,
    /// Johnson's raw relative weight (the drivers' weights sum to R squared).
    pub johnson: Option<f64>,
    pub johnson_share: Option<f64>,
    /// Shapley value / LMG (the drivers' values sum to R squared).
    pub shapley: Option<f64>,
    pub shapley_share: Option<f64>,
    /// 1 = largest Shapley value.
    pub rank: Option<u32>,
    /// Variance inflation factor.
    pub vif: Option<f64>,
    /// Agree share (4-5) of the driver among the responses used for its importance.
    pub performance: Option<f64>,
    pub quadrant: Option<QuadrantName>,
    /// Bootstrap percentile 95% intervals (with `bootstrap`).
    pub johnson_low: Option<f64>,
    pub johnson_high: Option<f64>,
    pub johnson_share_low: Option<f64>,
    pub johnson_share_high: Option<f64>,
    pub shapley_low: Option<f64>,
    pub shapley_high: Option<f64>,
    pub shapley_share_low: Option<f64>,
    pub shapley_share_high: Option<f64>,
}

impl From<DriverStat> for DriverStatOut {
    fn from(d: DriverStat) -> DriverStatOut {
        DriverStatOut {
            driver: d.driver.into(),
            r: d.r,
            beta: d.beta,
            first: d.first,
            last: d.last,
            pratt: d.pratt,
            johnson: d.johnson,
            johnson_share: d.johnson_share,
            shapley: d.shapley,
            shapley_share: d.shapley_share,
            rank: d.rank,
            vif: d.vif,
            performance: d.performance,
            quadrant: d.quadrant.map(Into::into),
            johnson_low: d.johnson_ci.map(|c| c.low),
            johnson_high: d.johnson_ci.map(|c| c.high),
            johnson_share_low: d.johnson_share_ci.map(|c| c.low),
            johnson_share_high: d.johnson_share_ci.map(|c| c.high),
            shapley_low: d.shapley_ci.map(|c| c.low),
            shapley_high: d.shapley_ci.map(|c| c.high),
            shapley_share_low: d.shapley_share_ci.map(|c| c.low),
            shapley_share_high: d.shapley_share_ci.map(|c| c.high),
        }
    }
}

/// Tapped indicators (Touchpoints A-11 v2): shares of the respondents shown the tap list who
/// tapped a topic as positive or negative, with Wilson 95% intervals.
#[derive(SimpleObject, Debug, Clone)]
pub struct TapOut {
    /// A driver or "other".
    pub topic: String,
    pub shown: u64,
    pub positive_share: Option<f64>,
    pub positive_low: Option<f64>,
    pub positive_high: Option<f64>,
    pub negative_share: Option<f64>,
    pub negative_low: Option<f64>,
    pub negative_high: Option<f64>,
    pub suppressed: bool,
    pub suppressed_reason: Option<String>,
}

impl From<TapStat> for TapOut {
    fn from(t: TapStat) -> TapOut {
        TapOut {
            topic: t.topic,
            shown: t.shown,
            positive_share: t.positive_share,
            positive_low: t.positive_ci.map(|c| c.low),
            positive_high: t.positive_ci.map(|c| c.high),
            negative_share: t.negative_share,
            negative_low: t.negative_ci.map(|c| c.low),
            negative_high: t.negative_ci.map(|c| c.high),
            suppressed: t.suppressed.is_some(),
            suppressed_reason: t.suppressed,
        }
    }
}

/// Driver importance in one group.
#[derive(SimpleObject, Debug, Clone)]
pub struct DriverGroupOut {
    #[graphql(flatten)]
    pub group: GroupOut,
    pub outcome: OutcomeName,
    /// Responses used (listwise), or the smallest pairwise count.
    pub n: u64,
    /// Likert responses answering the outcome but left out for a missing driver (listwise;
    /// null under pairwise deletion).
    pub n_dropped: Option<u64>,
    /// Kish's effective n of the responses used (n unless weighted).
    pub n_effective: f64,
    pub r2: Option<f64>,
    pub adj_r2: Option<f64>,
    /// Why this group has no estimates (constant driver, collinear drivers, too few responses).
    pub error: Option<String>,
    /// Small n (below max(30, 10 x drivers)), VIF above 10, degenerate bootstrap replicates.
    pub warnings: Vec<String>,
    pub bootstrap_replicates: u32,
    pub drivers: Vec<DriverStatOut>,
    /// Tapped-indicator shares among thumbs respondents shown the tap list.
    pub taps: Vec<TapOut>,
    /// True when the estimates are withheld: fewer respondents used than the deployment's
    /// minimum cell size for driver importance.
    pub suppressed: bool,
    pub suppressed_reason: Option<String>,
    /// True when the counts (n, nDropped, nEffective, the tap counts) are perturbed by the
    /// cell-key method and performance and tap shares computed from perturbed counts (the
    /// public role); the model's estimates come from the exact data.
    pub perturbed: bool,
}

impl DriverGroupOut {
    pub fn new(g: DriverGroup, outcome: OutcomeName) -> DriverGroupOut {
        DriverGroupOut {
            group: GroupOut::from(&g.key),
            outcome,
            n: g.n,
            n_dropped: g.n_dropped,
            n_effective: g.n_effective,
            r2: g.r2,
            adj_r2: g.adj_r2,
            error: g.error,
            warnings: g.warnings,
            bootstrap_replicates: g.bootstrap_replicates,
            drivers: g.drivers.into_iter().map(Into::into).collect(),
            taps: g.taps.into_iter().map(Into::into).collect(),
            suppressed: g.suppressed.is_some(),
            suppressed_reason: g.suppressed,
            perturbed: g.perturbed,
        }
    }
}

mirror_enum! {
    /// The level entities are benchmarked at.
    BenchmarkLevel => cx_analytics::benchmark::Level { Agency, Bureau, Service, Office }
}
mirror_enum! {
    /// Peers of a benchmark: every other entity, or those sharing the service type, agency or
    /// channel (one row per entity and peer key).
    PeerGroup => cx_analytics::benchmark::Peers { GovernmentWide, SameServiceType, SameAgency, SameChannel }
}
mirror_enum! {
    /// POOLED: peer scores over all peer responses (respondent-weighted); EQUAL_WEIGHTED: the mean
    /// of the peer entities' scores.
    PeerPooling => cx_analytics::benchmark::Pooling { Pooled, EqualWeighted }
}

/// One entity against its peers (the entity excluded from them).
#[derive(SimpleObject, Debug, Clone)]
pub struct BenchmarkRowOut {
    pub entity: String,
    /// Service type, agency or channel of the peer group; null government-wide.
    pub peer_key: Option<String>,
    pub period: Option<String>,
    pub period_start: Option<Date>,
    pub period_end: Option<Date>,
    #[graphql(flatten)]
    pub score: ScoreOut,
    pub peer_entities: u32,
    pub peer_n: u64,
    pub peer_mean: Option<f64>,
    pub peer_agree_share: Option<f64>,
    /// Entity minus peers, with a 95% interval (Welch when pooled) and two-sided p-value.
    pub mean_difference: Option<f64>,
    pub mean_difference_low: Option<f64>,
    pub mean_difference_high: Option<f64>,
    pub mean_difference_p: Option<f64>,
    /// Entity minus peers, with Newcombe's 95% interval (method 10) and the two-proportion
    /// z-test's p-value when pooled.
    pub agree_difference: Option<f64>,
    pub agree_difference_low: Option<f64>,
    pub agree_difference_high: Option<f64>,
    pub agree_difference_p: Option<f64>,
    /// 1 = highest agree share among the peer group's entities (the entity included).
    pub rank: Option<u32>,
    /// Percent of peer entities with a lower agree share (ties count half).
    pub percentile: Option<f64>,
    pub entities_ranked: u32,
    /// Why the peer scores and differences are withheld, if they are.
    pub peer_suppressed_reason: Option<String>,
}

impl From<cx_analytics::benchmark::BenchmarkRow> for BenchmarkRowOut {
    fn from(r: cx_analytics::benchmark::BenchmarkRow) -> BenchmarkRowOut {
        let (md, ad) = (r.mean_difference, r.agree_difference);
        BenchmarkRowOut {
            entity: r.entity,
            peer_key: r.peer_key,
            period: r.period.as_ref().map(|p| p.label.clone()),
            period_start: r.period.as_ref().map(|p| Date(p.start)),
            period_end: r.period.as_ref().map(|p| Date(p.end)),
            score: ScoreOut::from(&r.own),
            peer_entities: r.peer_entities,
            peer_n: r.peer_n,
            peer_mean: r.peer_mean,
            peer_agree_share: r.peer_agree_share,
            mean_difference: md.map(|c| c.difference),
            mean_difference_low: md.map(|c| c.interval.low),
            mean_difference_high: md.map(|c| c.interval.high),
            mean_difference_p: md.map(|c| c.p_value),
            agree_difference: ad.map(|c| c.difference),
            agree_difference_low: ad.map(|c| c.interval.low),
            agree_difference_high: ad.map(|c| c.interval.high),
            agree_difference_p: ad.map(|c| c.p_value),
            rank: r.rank,
            percentile: r.percentile,
            entities_ranked: r.entities_ranked,
            peer_suppressed_reason: r.peer_suppressed,
        }
    }
}

/// A change of a score from an earlier period: now minus before, with 95% intervals and
/// two-sided p-values (Welch for means; Newcombe and the two-proportion z-test for shares).
#[derive(SimpleObject, Debug, Clone)]
pub struct ChangeOut {
    pub period: String,
    pub n: u64,
    pub mean: Option<f64>,
    pub agree_share: Option<f64>,
    pub mean_change: Option<f64>,
    pub mean_change_low: Option<f64>,
    pub mean_change_high: Option<f64>,
    pub mean_change_p: Option<f64>,
    pub agree_change: Option<f64>,
    pub agree_change_low: Option<f64>,
    pub agree_change_high: Option<f64>,
    pub agree_change_p: Option<f64>,
    /// True when the earlier period is suppressed (and so the change).
    pub suppressed: bool,
}

impl From<cx_analytics::trends::Change> for ChangeOut {
    fn from(c: cx_analytics::trends::Change) -> ChangeOut {
        ChangeOut {
            period: c.against.label.clone(),
            n: c.before.n,
            mean: c.before.mean,
            agree_share: c.before.agree_share,
            mean_change: c.mean.map(|x| x.difference),
            mean_change_low: c.mean.map(|x| x.interval.low),
            mean_change_high: c.mean.map(|x| x.interval.high),
            mean_change_p: c.mean.map(|x| x.p_value),
            agree_change: c.agree.map(|x| x.difference),
            agree_change_low: c.agree.map(|x| x.interval.low),
            agree_change_high: c.agree.map(|x| x.interval.high),
            agree_change_p: c.agree.map(|x| x.p_value),
            suppressed: c.before.suppressed.is_some(),
        }
    }
}

/// One group's score in one period, with the change from the previous period and from the same
/// period a year earlier (null where that period has no answers).
#[derive(SimpleObject, Debug, Clone)]
pub struct TrendRowOut {
    #[graphql(flatten)]
    pub group: GroupOut,
    pub measure: MeasureName,
    #[graphql(flatten)]
    pub score: ScoreOut,
    pub previous: Option<ChangeOut>,
    pub year_ago: Option<ChangeOut>,
}

impl From<cx_analytics::trends::TrendRow> for TrendRowOut {
    fn from(t: cx_analytics::trends::TrendRow) -> TrendRowOut {
        let r = t.row;
        TrendRowOut {
            group: GroupOut::from(&r.key),
            measure: r.measure.into(),
            score: ScoreOut::from(&r),
            previous: t.previous.map(Into::into),
            year_ago: t.year_ago.map(Into::into),
        }
    }
}

/// Which earlier period an alert compares with.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AlertComparison {
    Previous,
    YearAgo,
}

/// A significant drop of the agree share.
#[derive(SimpleObject, Debug, Clone)]
pub struct AlertOut {
    pub level: GroupDimension,
    pub entity: String,
    pub measure: MeasureName,
    pub period: String,
    pub comparison: AlertComparison,
    pub change: ChangeOut,
    pub n: u64,
    pub agree_share: Option<f64>,
    pub mean: Option<f64>,
    /// One-sided p-value of the drop (two-proportion z-test).
    pub p_value: f64,
    /// Benjamini-Hochberg q-value over every test the query made.
    pub q_value: f64,
    /// Cohen's h of the agree shares (negative: a drop).
    pub effect_size: f64,
    /// True when the counts and the statistics computed from them are perturbed (the public
    /// role; see `ScoreOut.perturbed`).
    pub perturbed: bool,
}

impl From<cx_analytics::trends::Alert> for AlertOut {
    fn from(a: cx_analytics::trends::Alert) -> AlertOut {
        AlertOut {
            level: a.level.into(),
            entity: a.entity,
            measure: a.measure.into(),
            period: a.period.label.clone(),
            comparison: if a.comparison == "previous" { AlertComparison::Previous } else { AlertComparison::YearAgo },
            change: a.change.into(),
            n: a.now.n,
            agree_share: a.now.agree_share,
            mean: a.now.mean,
            p_value: a.p_value,
            q_value: a.q_value,
            effect_size: a.effect_size,
            perturbed: a.now.perturbed,
        }
    }
}

/// The rules of the survey design check.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SurveyEdition {
    /// The 2022 text of A-11 280.10: required trust and satisfaction, drivers mapped.
    #[graphql(name = "A11_2022")]
    A11Of2022,
    /// GSA Touchpoints' A-11 v2 form: trust on thumbs or 1-5, went-well and didn't-go-well
    /// lists, one comment.
    #[graphql(name = "TOUCHPOINTS_A11_V2")]
    TouchpointsA11V2,
}

impl From<SurveyEdition> for cx_domain::survey_design::Edition {
    fn from(e: SurveyEdition) -> Self {
        match e {
            SurveyEdition::A11Of2022 => Self::A11Of2022,
            SurveyEdition::TouchpointsA11V2 => Self::TouchpointsA11V2,
        }
    }
}

/// A finding of the survey design check (A-11 280.10, by edition).
#[derive(SimpleObject, Debug, Clone)]
pub struct SurveyFindingOut {
    /// VIOLATION (breaks a rule) or REVIEW (allowed only with OMB's agreement, or discouraged).
    pub severity: String,
    /// The rule, citing 280.10 or the Touchpoints A-11 v2 form.
    pub rule: String,
    /// The question's id, when the finding is about one.
    pub question: Option<String>,
    pub message: String,
}

impl From<cx_domain::survey_design::Finding> for SurveyFindingOut {
    fn from(f: cx_domain::survey_design::Finding) -> Self {
        let severity = match f.severity {
            cx_domain::survey_design::Severity::Violation => "VIOLATION",
            cx_domain::survey_design::Severity::Review => "REVIEW",
        };
        SurveyFindingOut { severity: severity.into(), rule: f.rule.into(), question: f.question, message: f.message }
    }
}

/// When a quarter's HISP feedback data is due (A-11 280.16).
#[derive(SimpleObject, Debug, Clone)]
pub struct DueDateOut {
    /// FY2026Q1, ...
    pub fiscal_quarter: String,
    pub due_date: chrono::NaiveDate,
    /// PUBLISHED (a date OMB published) or RULE (last business day of the month after the
    /// quarter, weekends and federal holidays excluded).
    pub source: String,
}

impl From<cx_domain::due_dates::DueDate> for DueDateOut {
    fn from(d: cx_domain::due_dates::DueDate) -> Self {
        DueDateOut { fiscal_quarter: d.quarter.to_string(), due_date: d.date, source: d.source.as_str().into() }
    }
}
