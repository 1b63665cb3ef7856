//! The generative model: every answer comes from latent perceptions, never from a copy of the
//! truth. A respondent's perception of each driver is a general impression (halo) shared by all
//! drivers, shifted alike by the agency, the office and the service's trend, plus the service's
//! own mean for the driver and the driver's own part; trust and satisfaction are latent linear
//! functions of the driver perceptions with weights that depend on the service type, plus noise
//! (and a planted drop); answers are those latents cut at fixed thresholds (ordered-probit
//! style), which skews Likert answers positive as real federal CX data is. The planted structure
//! is written to `truth.json` for later recovery.

use super::universe::{normal, Universe};
use crate::domain::{Driver, FiscalQuarter, ServiceType};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
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
/// A thumbs-up is a latent above this cut (the same place as "agree" on Likert, roughly).
pub const THUMBS_CUT: f64 = -0.6;
/// Probability that a Likert driver question is left unanswered.
pub const DRIVER_MISSING: f64 = 0.12;
/// Probability that the employee question does not apply on a digital or chat response.
pub const EMPLOYEE_NOT_APPLICABLE_DIGITAL: f64 = 0.4;
/// Probability that trust or satisfaction is left unanswered.
pub const OUTCOME_MISSING: f64 = 0.03;

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
}

impl Effects {
    pub fn draw(seed: u64, u: &Universe, quarters: &[FiscalQuarter]) -> Effects {
        let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0x5eed_0002);
        let agency = (0..u.agencies.len()).map(|_| normal(&mut rng, 0.20)).collect();
        let office = (0..u.offices.len()).map(|_| normal(&mut rng, 0.20)).collect();
        let service_driver = (0..u.services.len())
            .map(|_| std::array::from_fn(|d| DRIVER_MEANS[d] + normal(&mut rng, SERVICE_DRIVER_SD)))
            .collect();
        let service_trend = (0..u.services.len()).map(|_| normal(&mut rng, 0.01)).collect();

        // The service drop: the third-largest service, in the last quarter (so that the latest
        // complete period shows it). The office drop: the busiest office of another agency,
        // two quarters earlier.
        let mut by_volume: Vec<usize> = (0..u.services.len()).collect();
        by_volume.sort_by(|&a, &b| u.services[b].volume.total_cmp(&u.services[a].volume));
        let service = by_volume[2.min(by_volume.len() - 1)];
        let last = *quarters.last().expect("at least one quarter");
        let mut drops = vec![Drop {
            level: "service".into(),
            id: u.services[service].id.clone(),
            fiscal_quarter: last.to_string(),
            quarter: last,
            outcome_shift: -0.9,
        }];
        let office_service = by_volume
            .iter()
            .copied()
            .find(|&s| u.services[s].agency != u.services[service].agency && !u.services[s].offices.is_empty());
        if let (Some(s), Some(q)) = (office_service, quarters.len().checked_sub(3).map(|i| quarters[i])) {
            let office = u.services[s].offices[0];
            drops.push(Drop {
                level: "office".into(),
                id: u.offices[office].id.clone(),
                fiscal_quarter: q.to_string(),
                quarter: q,
                outcome_shift: -1.0,
                });
        }
        Effects { agency, office, service_driver, service_trend, drops }
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
    /// The telemetry and indicators planted beside the responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<super::telemetry::TelemetryTruth>,
    pub model: ModelConstants,
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
    pub fn new(seed: u64, rows: u64, quarters: &[FiscalQuarter], u: &Universe, e: &Effects, thumbs_share: f64) -> Truth {
        let weights = |f: fn(ServiceType) -> [f64; 6]| {
            ServiceType::ALL
                .iter()
                .map(|t| (t.as_str(), Driver::ALL.iter().zip(f(*t)).map(|(d, w)| (d.as_str(), w)).collect()))
                .collect()
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
                    answer = 1 + #(latent + positive_shift > cut) on Likert, latent + positive_shift > thumbs_cut on thumbs",
            },
        }
    }
}

/// The Likert answer (1-5) of a latent.
pub fn likert(latent: f64) -> i8 {
    let x = latent + POSITIVE_SHIFT;
    1 + LIKERT_CUTS.iter().filter(|c| x > **c).count() as i8
}

/// The thumbs answer (1 up, 0 down) of a latent.
pub fn thumbs(latent: f64) -> i8 {
    (latent + POSITIVE_SHIFT > THUMBS_CUT) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_map_latents_to_the_scale() {
        assert_eq!(likert(-10.0), 1);
        assert_eq!(likert(10.0), 5);
        assert_eq!(likert(0.0), 4); // 0.3 lies between the cuts -0.6 and 0.35
        assert_eq!((thumbs(-2.0), thumbs(0.0)), (0, 1));
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
