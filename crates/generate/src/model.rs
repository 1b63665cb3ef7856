//! The generative model: every answer comes from latent perceptions, never from a copy of the
//! truth. A respondent's perception of each driver is a general impression (halo) shared by all
//! drivers, shifted alike by the agency, the office and the service's trend, plus the service's
//! own mean for the driver and the driver's own part; trust and satisfaction are latent linear
//! functions of the driver perceptions with weights that depend on the service type, plus noise
//! (and a planted drop); answers are those latents cut at fixed thresholds (ordered-probit
//! style), which skews Likert answers positive as real federal CX data is.
//!
//! From FY2024 Q2 most collections of designated services switch to GSA Touchpoints' A-11 v2
//! form (trust on thumbs, or 1-5 in the `a11_v2_radio` variant, and "what went well" / "what
//! didn't go so well" taps over the drivers and "other"). There the taps come from the same
//! latent perceptions and the outcome ("agrees") from a logistic model of the taps alone, with
//! log-odds per indicator that depend on the service type ([`tap_log_odds`]). The planted
//! structure is written to `truth.json` for later recovery.

use super::universe::{normal, Universe};
use cx_domain::survey::{tap_column, TAP_TOPICS};
use cx_domain::{Channel, Driver, FiscalQuarter, ServiceType};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::ser::SerializeMap;
use serde::Serialize;
use std::collections::BTreeMap;

/// Latent driver weights on trust, by service type, in `Driver::ALL` order (effectiveness, ease,
/// efficiency, transparency, humanity, employee). Each type's weights are a permutation of
/// [`WEIGHT_LEVELS`], so every type has a strict order of drivers for analyses to recover.
pub fn trust_weights(t: ServiceType) -> [f64; 6] {
    match t {
        ServiceType::Administrative => [0.11, 0.32, 0.24, 0.06, 0.02, 0.17],
        ServiceType::Benefits => [0.32, 0.06, 0.11, 0.17, 0.02, 0.24],
        ServiceType::Compliance => [0.11, 0.17, 0.02, 0.32, 0.24, 0.06],
        ServiceType::Recreation => [0.06, 0.24, 0.02, 0.11, 0.32, 0.17],
        ServiceType::Informational => [0.17, 0.24, 0.32, 0.11, 0.06, 0.02],
        ServiceType::DataResearch => [0.32, 0.11, 0.24, 0.17, 0.02, 0.06],
        ServiceType::Regulatory => [0.06, 0.02, 0.11, 0.24, 0.17, 0.32],
    }
}

/// Latent driver weights on satisfaction, by service type, in `Driver::ALL` order.
pub fn satisfaction_weights(t: ServiceType) -> [f64; 6] {
    match t {
        ServiceType::Administrative => [0.17, 0.32, 0.24, 0.02, 0.06, 0.11],
        ServiceType::Benefits => [0.24, 0.17, 0.32, 0.06, 0.02, 0.11],
        ServiceType::Compliance => [0.11, 0.32, 0.24, 0.17, 0.02, 0.06],
        ServiceType::Recreation => [0.17, 0.24, 0.06, 0.02, 0.11, 0.32],
        ServiceType::Informational => [0.32, 0.24, 0.17, 0.06, 0.02, 0.11],
        ServiceType::DataResearch => [0.24, 0.11, 0.32, 0.06, 0.02, 0.17],
        ServiceType::Regulatory => [0.11, 0.17, 0.24, 0.32, 0.06, 0.02],
    }
}

/// The weight levels every service type's weights are a permutation of.
pub const WEIGHT_LEVELS: [f64; 6] = [0.02, 0.06, 0.11, 0.17, 0.24, 0.32];

/// Standard deviation of the general impression shared by all drivers of one respondent.
pub const HALO_SD: f64 = 0.75;
/// Standard deviation of a driver perception's own part.
pub const DRIVER_SD: f64 = 0.65;
/// Mean perception of each driver (`Driver::ALL` order): efficiency and ease are the weakest,
/// employee interaction and humanity the strongest, as in published federal CX results.
pub const DRIVER_MEANS: [f64; 6] = [0.04, -0.04, -0.1, 0.0, 0.04, 0.08];
/// Spread of a service's own mean perception of each driver around [`DRIVER_MEANS`].
pub const SERVICE_DRIVER_SD: f64 = 0.08;
/// Standard deviation of the noise on the trust and satisfaction latents.
pub const OUTCOME_NOISE_SD: f64 = 0.70;
/// Added to every latent before cutting: moves answers up the scale.
pub const POSITIVE_SHIFT: f64 = 0.30;
/// Cut points: a latent above the k-th cut is at least answer k + 2 on the 1-5 scale.
pub const LIKERT_CUTS: [f64; 4] = [-1.9, -1.3, -0.6, 0.35];
/// A latent above this cut agrees (the same place as "agree" on Likert, roughly): the tone of a
/// Likert-design free-text comment.
pub const THUMBS_CUT: f64 = -0.6;
/// Probability that a Likert driver question is left unanswered.
pub const DRIVER_MISSING: f64 = 0.12;
/// Probability that the employee question does not apply on a digital or chat response.
pub const EMPLOYEE_NOT_APPLICABLE_DIGITAL: f64 = 0.4;
/// Probability that trust or satisfaction is left unanswered.
pub const OUTCOME_MISSING: f64 = 0.03;

/// The first fiscal quarter of the Touchpoints A-11 v2 form (most HISP data since FY2024 Q2).
pub fn v2_from() -> FiscalQuarter {
    FiscalQuarter::new(2024, 2)
}
/// A collection that switches does so in one of this many quarters from [`v2_from`]
/// (FY2024 Q2 to FY2025 Q1), drawn per collection.
pub const V2_STAGGER_QUARTERS: usize = 4;
/// Target share of v2 responses asked trust on 1-5 (`a11_v2_radio`) rather than thumbs.
pub const RADIO_SHARE: f64 = 0.2;

/// Probability that a designated service's collection on this channel switches to the v2 form
/// (a web form: paper surveys by mail mostly stay as they were).
pub fn v2_switch_probability(channel: Channel) -> f64 {
    match channel {
        Channel::Digital | Channel::Chat | Channel::Kiosk | Channel::Email => 0.92,
        Channel::InPerson | Channel::Phone => 0.85,
        _ => 0.3,
    }
}

/// Importance levels of the drivers on the tapped form: per service type each driver's log-odds
/// magnitude `c_d` is the level of the same rank as its trust weight in [`WEIGHT_LEVELS`], so
/// the Likert and the tapped truth tell one story. Spaced so that 20k v2 responses of a type
/// recover the order.
pub const TAP_LEVELS: [f64; 6] = [0.15, 0.40, 0.65, 0.90, 1.15, 1.40];
/// A driver's didn't-go-well log-odds is minus this times its went-well log-odds: bad
/// experiences weigh more than good ones.
pub const NEGATIVE_RATIO: f64 = 1.2;
/// Log-odds of the "other" taps (went well, didn't go well).
pub const OTHER_LOG_ODDS: (f64, f64) = (0.1, -0.2);
/// Tap model of a driver d with centred perception u_d (the respondent's perception less the
/// service's mean for the driver, plus the service's mean deviation over all six): went well, didn't go well or neither with probabilities
/// proportional to exp(TAP_POSITIVE_BASE + TAP_SLOPE u_d), exp(TAP_NEGATIVE_BASE - TAP_SLOPE u_d)
/// and 1 (about 20% and 12% of respondents a driver). Centring makes the tap rates of the six
/// drivers equal in expectation, so their importance order is that of `c_d`.
pub const TAP_POSITIVE_BASE: f64 = -1.7;
pub const TAP_NEGATIVE_BASE: f64 = -2.4;
pub const TAP_SLOPE: f64 = 1.3;
/// Probabilities of tapping "other" under went well and under didn't go well (independent).
pub const OTHER_TAP: (f64, f64) = (0.04, 0.05);
/// On the radio variant: P(5 | agrees) (else 4), and P(1), P(2) given disagrees (else 3).
pub const RADIO_AGREE_5: f64 = 0.55;
pub const RADIO_DISAGREE_1_2: (f64, f64) = (0.2, 0.3);
/// Probability of the one free-text comment on the v2 form.
pub const V2_COMMENT: f64 = 0.15;

/// Log-odds of "agrees" with no tap, by service type: agree shares of about 73-82% with the
/// taps, a little below the Likert design's top-2-box shares.
pub fn tap_intercept(t: ServiceType) -> f64 {
    match t {
        ServiceType::Administrative => 1.6,
        ServiceType::Benefits => 1.5,
        ServiceType::Compliance => 1.4,
        ServiceType::Recreation => 1.8,
        ServiceType::Informational => 1.6,
        ServiceType::DataResearch => 1.7,
        ServiceType::Regulatory => 1.4,
    }
}

/// Planted log-odds of each tap on "agrees", in [`TAP_TOPICS`] order: (went well, didn't go
/// well).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TapLogOdds {
    pub positive: [f64; 7],
    pub negative: [f64; 7],
}

/// The tap log-odds of a service type: driver d gets `c_d` = the [`TAP_LEVELS`] entry of the
/// rank of its trust weight; went well `+c_d`, didn't go well `-NEGATIVE_RATIO c_d`.
pub fn tap_log_odds(t: ServiceType) -> TapLogOdds {
    let w = trust_weights(t);
    let mut positive = [OTHER_LOG_ODDS.0; 7];
    let mut negative = [OTHER_LOG_ODDS.1; 7];
    for d in 0..6 {
        let rank = WEIGHT_LEVELS.iter().position(|l| *l == w[d]).expect("trust weights are a permutation of the levels");
        positive[d] = TAP_LEVELS[rank];
        negative[d] = -NEGATIVE_RATIO * TAP_LEVELS[rank];
    }
    TapLogOdds { positive, negative }
}

/// The form a collection asks from some quarter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2Form {
    /// First quarter on the v2 form.
    pub from: FiscalQuarter,
    /// Trust on 1-5 (`a11_v2_radio`) instead of thumbs.
    pub radio: bool,
}

/// Which collections switch to the v2 form, when and on which trust scale: most collections of
/// designated services, at a quarter drawn per collection, never those of a planted drop (a
/// drop is an effect outside the taps: on the v2 form the outcome depends on the taps alone).
/// Radio collections are drawn in a shuffled order until about [`RADIO_SHARE`] of the switching
/// volume. Its own random stream: the rest of the model does not move.
fn draw_forms(seed: u64, u: &Universe, drops: &[Drop]) -> Vec<Option<V2Form>> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0x5eed_0004);
    let dropped = |ci: usize| {
        let c = &u.collections[ci];
        let s = &u.services[c.service];
        let at_office = matches!(c.channel, Channel::InPerson | Channel::Phone | Channel::Kiosk);
        drops.iter().any(|d| match d.level.as_str() {
            "service" => d.id == s.id,
            _ => at_office && s.offices.iter().any(|o| u.offices[*o].id == d.id),
        })
    };
    let mut forms: Vec<Option<V2Form>> = u
        .collections
        .iter()
        .enumerate()
        .map(|(ci, c)| {
            // Draw for every collection, so that one's draws do not depend on another's fate.
            let switch = rng.random::<f64>() < v2_switch_probability(c.channel);
            let lag = rng.random_range(0..V2_STAGGER_QUARTERS);
            let from = (0..lag).fold(v2_from(), |q, _| q.next());
            (switch && u.services[c.service].designated && !dropped(ci)).then_some(V2Form { from, radio: false })
        })
        .collect();
    let mut order: Vec<usize> = (0..forms.len()).filter(|&c| forms[c].is_some()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let volume = |c: usize| u.collections[c].share * u.services[u.collections[c].service].volume;
    let total: f64 = order.iter().map(|&c| volume(c)).sum();
    let mut radio = 0.0;
    for c in order {
        if radio + volume(c) <= RADIO_SHARE * total * 1.05 {
            forms[c].as_mut().expect("a switching collection").radio = true;
            radio += volume(c);
        }
    }
    forms
}

/// A planted sudden drop: the trust and satisfaction latents of one service or office fall in one
/// fiscal quarter (an incident outside the surveyed drivers: the driver perceptions do not move,
/// so the drop does not distort driver importance).
#[derive(Debug, Clone, Serialize)]
pub struct Drop {
    /// `service` or `office`.
    pub level: String,
    pub id: String,
    pub fiscal_quarter: String,
    #[serde(skip)]
    pub quarter: FiscalQuarter,
    /// Shift of the trust and satisfaction latents (latent standard-deviation units).
    pub outcome_shift: f64,
}

/// Random effects drawn once per universe.
#[derive(Debug, Clone)]
pub struct Effects {
    /// Per agency: shift of every driver perception (trust and satisfaction move by the sum of
    /// the driver weights times this).
    pub agency: Vec<f64>,
    /// Per office.
    pub office: Vec<f64>,
    /// Per service: mean perception of each driver ([`DRIVER_MEANS`] plus the service's own).
    pub service_driver: Vec<[f64; 6]>,
    /// Per service: drift of its perceptions per quarter (services improve or decline slowly).
    pub service_trend: Vec<f64>,
    pub drops: Vec<Drop>,
    /// Per collection: the v2 form it switches to, if any.
    pub forms: Vec<Option<V2Form>>,
}

impl Effects {
    pub fn draw(seed: u64, u: &Universe, quarters: &[FiscalQuarter]) -> Effects {
        let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0x5eed_0002);
        let agency = (0..u.agencies.len()).map(|_| normal(&mut rng, 0.20)).collect();
        let office = (0..u.offices.len()).map(|_| normal(&mut rng, 0.20)).collect();
        let service_driver = (0..u.services.len()).map(|_| std::array::from_fn(|d| DRIVER_MEANS[d] + normal(&mut rng, SERVICE_DRIVER_SD))).collect();
        let service_trend = (0..u.services.len()).map(|_| normal(&mut rng, 0.01)).collect();

        // The service drop: the third-largest service, in the last quarter (so that the latest
        // complete period shows it). The office drop: the busiest office of another agency,
        // two quarters earlier.
        let mut by_volume: Vec<usize> = (0..u.services.len()).collect();
        by_volume.sort_by(|&a, &b| u.services[b].volume.total_cmp(&u.services[a].volume));
        let service = by_volume[2.min(by_volume.len() - 1)];
        let last = *quarters.last().expect("at least one quarter");
        let mut drops =
            vec![Drop { level: "service".into(), id: u.services[service].id.clone(), fiscal_quarter: last.to_string(), quarter: last, outcome_shift: -0.9 }];
        let office_service = by_volume.iter().copied().find(|&s| u.services[s].agency != u.services[service].agency && !u.services[s].offices.is_empty());
        if let (Some(s), Some(q)) = (office_service, quarters.len().checked_sub(3).map(|i| quarters[i])) {
            let office = u.services[s].offices[0];
            drops.push(Drop { level: "office".into(), id: u.offices[office].id.clone(), fiscal_quarter: q.to_string(), quarter: q, outcome_shift: -1.0 });
        }
        let forms = draw_forms(seed, u, &drops);
        Effects { agency, office, service_driver, service_trend, drops, forms }
    }

    /// The v2 form collection `c` asks in quarter `q`; `None` for the Likert design.
    pub fn form(&self, c: usize, q: FiscalQuarter) -> Option<V2Form> {
        self.forms[c].filter(|f| q >= f.from)
    }
}

/// `truth.json`: what the generator planted, for tests and notebooks to recover.
#[derive(Debug, Serialize)]
pub struct Truth {
    pub seed: u64,
    pub rows: u64,
    pub fiscal_quarters: Vec<String>,
    pub drivers: Vec<&'static str>,
    /// Latent weights of the drivers on trust, by service type.
    pub trust_weights: BTreeMap<&'static str, BTreeMap<&'static str, f64>>,
    pub satisfaction_weights: BTreeMap<&'static str, BTreeMap<&'static str, f64>>,
    /// Shift of every driver perception by agency code (the trust latent moves by the sum of the
    /// service type's driver weights times this).
    pub agency_effects: BTreeMap<String, f64>,
    /// Shift of every driver perception by office id (in-person, phone and kiosk responses).
    pub office_effects: BTreeMap<String, f64>,
    pub drops: Vec<Drop>,
    /// Realised share of responses on the thumbs scale.
    pub thumbs_share: f64,
    /// The tapped-indicator (A-11 v2) part of the model.
    pub tapped: TappedTruth,
    /// The telemetry and indicators planted beside the responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetryTruth>,
    pub model: ModelConstants,
}

/// The planted telemetry drop.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TelemetryDrop {
    pub service_id: String,
    pub metric: String,
    pub channel: String,
    pub page: String,
    /// First day at the lower level (UTC).
    pub from: chrono::NaiveDate,
    /// Level after the drop, as a share of before.
    pub factor: f64,
}

/// What the telemetry planted, for `truth.json`.
#[derive(Debug, Clone, Serialize)]
pub struct TelemetryTruth {
    pub drops: Vec<TelemetryDrop>,
    /// wait_time_minutes = 20 · exp(wait_quality_slope · quality + noise), quality in latent units.
    pub wait_quality_slope: f64,
    pub description: &'static str,
}

/// `truth.json`'s `tapped`: the A-11 v2 form's share and its planted logistic model.
#[derive(Debug, Serialize)]
pub struct TappedTruth {
    /// First fiscal quarter with v2 responses (collections switch from here to about a year on).
    pub form_from: String,
    /// Realised share of all responses on the v2 form.
    pub v2_share: f64,
    /// Realised share of v2 responses asked trust on 1-5 (`a11_v2_radio`).
    pub radio_share: f64,
    pub description: String,
    pub by_service_type: BTreeMap<&'static str, TappedType>,
}

/// The planted logistic model of one service type.
#[derive(Debug, Serialize)]
pub struct TappedType {
    /// Log-odds of "agrees" with no tap.
    pub intercept: f64,
    /// Log-odds of each of the 14 indicators, by lake column name (went well first).
    pub log_odds: ColumnValues,
    /// The six drivers by planted importance, largest first, then `other`.
    pub driver_order: Vec<&'static str>,
}

/// Named values serialized as a JSON object in their given order.
#[derive(Debug)]
pub struct ColumnValues(pub Vec<(String, f64)>);

impl Serialize for ColumnValues {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl TappedTruth {
    pub fn new(v2_share: f64, radio_share: f64) -> TappedTruth {
        let by_service_type = ServiceType::ALL
            .iter()
            .map(|t| {
                let lo = tap_log_odds(*t);
                let log_odds = [(true, lo.positive), (false, lo.negative)]
                    .iter()
                    .flat_map(|(positive, v)| TAP_TOPICS.iter().zip(v).map(|(topic, x)| (tap_column(topic, *positive), *x)))
                    .collect();
                let mut order: Vec<usize> = (0..6).collect();
                order.sort_by(|&a, &b| lo.positive[b].total_cmp(&lo.positive[a]));
                let driver_order = order.into_iter().map(|d| TAP_TOPICS[d]).chain([TAP_TOPICS[6]]).collect();
                (t.as_str(), TappedType { intercept: tap_intercept(*t), log_odds: ColumnValues(log_odds), driver_order })
            })
            .collect();
        TappedTruth {
            form_from: v2_from().to_string(),
            v2_share,
            radio_share,
            description: format!(
                "From form_from, most collections of designated services (never those of a planted drop) switch, each at a quarter \
                 drawn from form_from to {V2_STAGGER_QUARTERS} quarters on, to the Touchpoints A-11 v2 form: trust only (thumbs 0/1, or \
                 1-5 on the a11_v2_radio variant), satisfaction and the six driver items null, all 14 went-well/didn't-go-well \
                 indicators offered (false when not tapped), one free-text comment sometimes; all other rows keep the Likert design \
                 with every tap column null. Taps of a v2 response: per driver d, with u_d the respondent's perception z_d less the \
                 service's mean for d plus the service's mean deviation over the six drivers (halo + agency + office + trend + \
                 service level + own part), went well / didn't go well / neither with probabilities proportional to \
                 exp({TAP_POSITIVE_BASE} + {TAP_SLOPE} u_d) / exp({TAP_NEGATIVE_BASE} - {TAP_SLOPE} u_d) / 1 (equal rates for the six \
                 drivers in expectation, correlated through the halo); other: went well {} and didn't go well {}, independent. Then \
                 agrees ~ Bernoulli(sigmoid(intercept[type] + sum_j log_odds[type][j] * tap_j)) and nothing else (agency, office and \
                 period act only through the taps; no drop). log_odds: went well +c_d, didn't go well -{NEGATIVE_RATIO} c_d, c_d in \
                 {TAP_LEVELS:?} ranked as the type's trust_weights; other {} / {}. Agrees is thumbs up (1), or on the radio variant \
                 trust 4-5 (5 with probability {RADIO_AGREE_5}, else 4; a disagreeing answer is 1 with probability {}, 2 with {}, \
                 else 3). Trust is left unanswered at random ({OUTCOME_MISSING}) when some indicator was tapped.",
                OTHER_TAP.0, OTHER_TAP.1, OTHER_LOG_ODDS.0, OTHER_LOG_ODDS.1, RADIO_DISAGREE_1_2.0, RADIO_DISAGREE_1_2.1
            ),
            by_service_type,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ModelConstants {
    pub halo_sd: f64,
    pub driver_sd: f64,
    pub outcome_noise_sd: f64,
    pub positive_shift: f64,
    pub likert_cuts: [f64; 4],
    pub thumbs_cut: f64,
    pub driver_missing: f64,
    pub outcome_missing: f64,
    pub description: &'static str,
}

impl Truth {
    pub fn new(seed: u64, rows: u64, quarters: &[FiscalQuarter], u: &Universe, e: &Effects, thumbs_share: f64, tapped: TappedTruth) -> Truth {
        let weights = |f: fn(ServiceType) -> [f64; 6]| {
            ServiceType::ALL.iter().map(|t| (t.as_str(), Driver::ALL.iter().zip(f(*t)).map(|(d, w)| (d.as_str(), w)).collect())).collect()
        };
        Truth {
            seed,
            rows,
            fiscal_quarters: quarters.iter().map(|q| q.to_string()).collect(),
            drivers: Driver::ALL.iter().map(|d| d.as_str()).collect(),
            trust_weights: weights(trust_weights),
            satisfaction_weights: weights(satisfaction_weights),
            agency_effects: u.agencies.iter().zip(&e.agency).map(|(a, x)| (a.code.clone(), *x)).collect(),
            office_effects: u.offices.iter().zip(&e.office).map(|(o, x)| (o.id.clone(), *x)).collect(),
            drops: e.drops.clone(),
            thumbs_share,
            tapped,
            telemetry: None,
            model: ModelConstants {
                halo_sd: HALO_SD,
                driver_sd: DRIVER_SD,
                outcome_noise_sd: OUTCOME_NOISE_SD,
                positive_shift: POSITIVE_SHIFT,
                likert_cuts: LIKERT_CUTS,
                thumbs_cut: THUMBS_CUT,
                driver_missing: DRIVER_MISSING,
                outcome_missing: OUTCOME_MISSING,
                description: "driver perception z_d = halo + agency + office + service trend + service mean (driver mean + service deviation) + own; \
                    outcome latent = sum_d weight[type][d] * z_d + noise (+ drop); \
                    answer = 1 + #(latent + positive_shift > cut) on the Likert design (the A-11 v2 form: see tapped)",
            },
        }
    }
}

/// The Likert answer (1-5) of a latent.
pub fn likert(latent: f64) -> i8 {
    let x = latent + POSITIVE_SHIFT;
    1 + LIKERT_CUTS.iter().filter(|c| x > **c).count() as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_map_latents_to_the_scale() {
        assert_eq!(likert(-10.0), 1);
        assert_eq!(likert(10.0), 5);
        assert_eq!(likert(0.0), 4); // 0.3 lies between the cuts -0.6 and 0.35
    }

    #[test]
    fn every_type_orders_its_drivers_strictly() {
        for t in ServiceType::ALL {
            for w in [trust_weights(*t), satisfaction_weights(*t)] {
                let mut sorted = w;
                sorted.sort_by(f64::total_cmp);
                assert_eq!(sorted, WEIGHT_LEVELS, "{t}");
            }
        }
    }

    #[test]
    fn weights_differ_by_service_type() {
        let top = |t| {
            let w = trust_weights(t);
            (0..6).max_by(|&a, &b| w[a].total_cmp(&w[b])).unwrap()
        };
        assert_ne!(top(ServiceType::Benefits), top(ServiceType::Compliance));
        assert_ne!(top(ServiceType::Compliance), top(ServiceType::Recreation));
    }
}
