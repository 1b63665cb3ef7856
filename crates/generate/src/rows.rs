//! Drawing response rows: one task writes one data file of one partition, drawing its rows in
//! time order from its own seeded generator, so the result does not depend on thread scheduling.

use super::model::{self, satisfaction_weights, trust_weights, Effects};
use super::universe::{std_normal, Universe};
use arrow::array::RecordBatch;
use cx_domain::{Channel, FiscalQuarter, Scale};
use cx_lake::batch::ResponseBatchBuilder;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::fmt::Write as _;

const POSITIVE_TEXT: &[&str] = &[
    "Quick and easy, thank you.",
    "The representative was very helpful and explained everything.",
    "Found what I needed on the website right away.",
    "Much better than last year.",
    "Clear instructions and fast processing.",
];
const NEGATIVE_TEXT: &[&str] = &[
    "I waited on hold for over an hour.",
    "The form kept timing out and I had to start over.",
    "Nobody could tell me the status of my application.",
    "Instructions were confusing and contradictory.",
    "I was transferred four times.",
];
const SECOND_TEXT: &[&str] = &["Please add more appointment times.", "Make the website work on phones.", "Send status updates by email."];

/// One file's worth of rows: `counts[i]` rows of collection `collections[i]` in quarter `quarter`.
pub struct Task {
    pub partition: usize,
    pub file: usize,
    pub quarter: FiscalQuarter,
    pub quarter_index: usize,
    pub collections: Vec<usize>,
    pub counts: Vec<u64>,
    pub seed: u64,
}

impl Task {
    pub fn rows(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// 1.0 for a tapped indicator, else 0.0.
fn tap(t: Option<bool>) -> f64 {
    f64::from(u8::from(t == Some(true)))
}

fn sigmoid(eta: f64) -> f64 {
    1.0 / (1.0 + (-eta).exp())
}

/// Draws a task's rows in time order and hands them over in batches of at most `batch_rows`.
pub struct RowDrawer<'a> {
    u: &'a Universe,
    e: &'a Effects,
    task: &'a Task,
    rng: Pcg64Mcg,
    remaining: Vec<u64>,
    left: u64,
    /// The largest uniform not yet used, for drawing sorted times from the top.
    top: f64,
    start_us: i64,
    span_us: f64,
    row: u64,
    id: String,
    seed: u64,
}

impl<'a> RowDrawer<'a> {
    pub fn new(u: &'a Universe, e: &'a Effects, task: &'a Task, seed: u64) -> Self {
        let start = task.quarter.start().and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_micros();
        let end = task.quarter.next().start().and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_micros();
        RowDrawer {
            u,
            e,
            task,
            rng: Pcg64Mcg::seed_from_u64(task.seed),
            remaining: task.counts.clone(),
            left: task.rows(),
            top: 1.0,
            start_us: start,
            span_us: (end - start - 1) as f64,
            row: 0,
            id: String::with_capacity(32),
            seed,
        }
    }

    /// The next batch, or `None` when the task is done.
    pub fn next_batch(&mut self, batch_rows: usize) -> Option<RecordBatch> {
        if self.left == 0 {
            return None;
        }
        let n = (self.left as usize).min(batch_rows);
        let mut b = ResponseBatchBuilder::new(n);
        for _ in 0..n {
            self.draw_row(&mut b);
        }
        Some(b.finish())
    }

    fn draw_row(&mut self, b: &mut ResponseBatchBuilder) {
        let rng = &mut self.rng;
        // Time: the order statistics of `left` uniforms drawn from the largest down (then
        // mirrored), so rows come out in increasing time without sorting.
        self.top *= rng.random::<f64>().powf(1.0 / self.left as f64);
        let t = self.start_us + ((1.0 - self.top) * self.span_us) as i64;
        // Collection: drawn without replacement in proportion to what is left of each.
        let mut pick = rng.random_range(0..self.left);
        let mut k = 0;
        while pick >= self.remaining[k] {
            pick -= self.remaining[k];
            k += 1;
        }
        self.remaining[k] -= 1;
        self.left -= 1;
        let c = &self.u.collections[self.task.collections[k]];
        let si = c.service;
        let s = &self.u.services[si];
        let agency = &self.u.agencies[s.agency];

        self.id.clear();
        write!(self.id, "g{:x}-{}-{}-{}", self.seed, self.task.partition, self.task.file, self.row).expect("write to string");
        self.row += 1;
        b.response_id.append_value(&self.id);
        b.submitted_at.append_value(t);
        b.collection_id.append_value(&c.id);
        b.bureau.append_value(&agency.bureaus[s.bureau].0);
        b.service_id.append_value(&s.id);
        b.service_type.append_value(s.service_type.as_str());
        b.channel.append_value(c.channel.as_str());
        let stage = match rng.random::<f64>() {
            x if x < 0.82 => "transaction",
            x if x < 0.95 => "journey",
            _ => "relationship",
        };

        // Office: in-person, phone and kiosk responses are tied to an office, the first ones busier.
        let office = if matches!(c.channel, Channel::InPerson | Channel::Phone | Channel::Kiosk) && !s.offices.is_empty() {
            let i = ((rng.random::<f64>().powi(2)) * s.offices.len() as f64) as usize;
            Some(s.offices[i.min(s.offices.len() - 1)])
        } else {
            None
        };
        match office {
            Some(o) => b.office_id.append_value(&self.u.offices[o].id),
            None => b.office_id.append_null(),
        }
        match office {
            Some(o) if c.channel != Channel::Phone => b.region.append_value(&self.u.offices[o].state),
            _ if rng.random::<f64>() < 0.08 => b.region.append_null(),
            _ => b.region.append_value(Universe::random_region(rng)),
        }
        b.stage.append_value(stage);
        let form = self.e.form(self.task.collections[k], self.task.quarter);
        let scale = match form {
            Some(f) if !f.radio => Scale::Thumbs,
            _ => Scale::Likert5,
        };
        b.scale.append_value(scale.as_str());

        // Latent perceptions. Agencies, offices and a service's trend shift every perception of
        // the respondent alike; on the Likert design trust and satisfaction follow through the
        // driver weights, on the v2 form the taps follow them and the outcome the taps alone.
        // Only the planted drop (an incident outside the drivers) moves the Likert outcomes
        // directly. So no direct outcome effect can line up by chance with a service's driver
        // profile and bias driver analyses.
        let shared = model::HALO_SD * std_normal(rng)
            + self.e.agency[s.agency]
            + office.map_or(0.0, |o| self.e.office[o])
            + self.e.service_trend[si] * self.task.quarter_index as f64;
        let mut z = [0.0; 6];
        for (d, zd) in z.iter_mut().enumerate() {
            *zd = shared + model::DRIVER_SD * std_normal(rng) + self.e.service_driver[si][d];
        }

        let mut drivers = [None; 6];
        let (mut positive, mut negative) = ([None; 7], [None; 7]);
        let (trust, satisfaction, comment, agrees) = match form {
            None => {
                let dropped = |level: &str, id: &str| self.e.drops.iter().find(|d| d.level == level && d.id == id && d.quarter == self.task.quarter);
                let drop = dropped("service", &s.id).or_else(|| office.and_then(|o| dropped("office", &self.u.offices[o].id)));
                let base = drop.map_or(0.0, |d| d.outcome_shift);
                let (wt, ws) = (trust_weights(s.service_type), satisfaction_weights(s.service_type));
                let dot = |w: [f64; 6]| w.iter().zip(&z).map(|(a, b)| a * b).sum::<f64>();
                let y_trust = base + dot(wt) + model::OUTCOME_NOISE_SD * std_normal(rng);
                let y_sat = base + dot(ws) + model::OUTCOME_NOISE_SD * std_normal(rng);
                let [mut trust, satisfaction] = [y_trust, y_sat].map(|y| (rng.random::<f64>() >= model::OUTCOME_MISSING).then(|| model::likert(y)));
                let digital = matches!(c.channel, Channel::Digital | Channel::Chat);
                for (d, v) in drivers.iter_mut().enumerate() {
                    let missing =
                        rng.random::<f64>() < model::DRIVER_MISSING || (d == 5 && digital && rng.random::<f64>() < model::EMPLOYEE_NOT_APPLICABLE_DIGITAL);
                    *v = (!missing).then(|| model::likert(z[d]));
                }
                // A respondent always answers something.
                if trust.is_none() && satisfaction.is_none() && drivers.iter().all(Option::is_none) {
                    trust = Some(model::likert(y_trust));
                }
                (trust, satisfaction, 0.12, y_trust + model::POSITIVE_SHIFT > model::THUMBS_CUT)
            }
            Some(f) => {
                // Touchpoints A-11 v2: every indicator offered, tapped from the perceptions...
                // A driver's centred perception keeps the service's overall level (its mean
                // deviation over the drivers, shared by all six): equal rates in expectation.
                let level = self.e.service_driver[si].iter().zip(model::DRIVER_MEANS).map(|(m, base)| m - base).sum::<f64>() / 6.0;
                for (d, zd) in z.iter().enumerate() {
                    let u = zd - self.e.service_driver[si][d] + level;
                    let up = (model::TAP_POSITIVE_BASE + model::TAP_SLOPE * u).exp();
                    let down = (model::TAP_NEGATIVE_BASE - model::TAP_SLOPE * u).exp();
                    let x = rng.random::<f64>() * (1.0 + up + down);
                    positive[d] = Some(x < up);
                    negative[d] = Some(up <= x && x < up + down);
                }
                positive[6] = Some(rng.random::<f64>() < model::OTHER_TAP.0);
                negative[6] = Some(rng.random::<f64>() < model::OTHER_TAP.1);
                // ...then the outcome from the taps alone.
                let lo = model::tap_log_odds(s.service_type);
                let eta =
                    model::tap_intercept(s.service_type) + (0..7).map(|j| lo.positive[j] * tap(positive[j]) + lo.negative[j] * tap(negative[j])).sum::<f64>();
                let agrees = rng.random::<f64>() < sigmoid(eta);
                let x = rng.random::<f64>();
                let value = match (f.radio, agrees) {
                    (false, a) => a as i8,
                    (true, true) => 4 + (x < model::RADIO_AGREE_5) as i8,
                    (true, false) => {
                        let (one, two) = model::RADIO_DISAGREE_1_2;
                        1 + (x >= one) as i8 + (x >= one + two) as i8
                    }
                };
                let tapped = positive.iter().chain(&negative).any(|t| *t == Some(true));
                let trust = (!tapped || rng.random::<f64>() >= model::OUTCOME_MISSING).then_some(value);
                (trust, None, model::V2_COMMENT, agrees)
            }
        };
        b.trust.append_option(trust);
        b.satisfaction.append_option(satisfaction);
        for (builder, v) in b.drivers.iter_mut().zip(drivers) {
            builder.append_option(v);
        }
        for (builder, v) in b.positive.iter_mut().zip(positive).chain(b.negative.iter_mut().zip(negative)) {
            builder.append_option(v);
        }
        if rng.random::<f64>() < comment {
            let bank = if agrees { POSITIVE_TEXT } else { NEGATIVE_TEXT };
            b.free_text_1.append_value(bank[rng.random_range(0..bank.len())]);
        } else {
            b.free_text_1.append_null();
        }
        // The v2 form has one comment box.
        if form.is_none() && rng.random::<f64>() < 0.04 {
            b.free_text_2.append_value(SECOND_TEXT[rng.random_range(0..SECOND_TEXT.len())]);
        } else {
            b.free_text_2.append_null();
        }
        b.weight.append_value(if c.weighted { (0.35 * std_normal(rng) - 0.06).exp() } else { 1.0 });
    }
}
