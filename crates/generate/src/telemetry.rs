//! Telemetry and service-level indicators consistent with the generated responses.
//!
//! Telemetry, per collection (service and channel) and day: `surveys_offered` ~ Poisson around
//! the collection's expected respondents divided by its response rate (4-25%), raised where
//! needed so that every quarter offered at least as many surveys as it has respondents;
//! `transactions` = offered + Poisson(offered rate × (1/offer rate − 1)), offer rate 30-90%;
//! digital collections also log `page_views` of the pages `start` and `status`. Weekends are
//! quieter; volume grows smoothly per service. One planted drop (unless drops are off): the
//! `start` page views of the largest digital service fall to 40% for the last 10 days.
//!
//! Indicators, per service and month (the first of the month): `processing_time_days` for
//! benefits, compliance, regulatory and administrative services; per office, for services
//! served at offices, `wait_time_minutes` and `first_contact_resolution`. They follow the same
//! latent quality as the survey answers (agency, office and service effects, trend), so a
//! worse experience comes with longer waits: the planted relation recorded in `truth.json`.

use super::model::{Effects, TelemetryDrop, DRIVER_MEANS};
use super::universe::{normal, Universe};
use chrono::{Datelike, NaiveDate, TimeZone, Utc, Weekday};
use cx_domain::observations::Observation;
use cx_domain::{Channel, FiscalQuarter, ServiceType};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Poisson};
use rand_pcg::Pcg64Mcg;

pub const WAIT_QUALITY_SLOPE: f64 = -1.5;

fn poisson(rng: &mut Pcg64Mcg, mean: f64) -> f64 {
    if mean <= 0.0 {
        return 0.0;
    }
    Poisson::new(mean).map(|p| p.sample(rng)).unwrap_or(mean.round())
}

fn day_factor(date: NaiveDate, channel: Channel) -> f64 {
    let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
    match (weekend, channel) {
        (false, _) => 1.0,
        (true, Channel::Digital | Channel::Chat | Channel::Email) => 0.75,
        (true, _) => 0.35,
    }
}

fn midnight(date: NaiveDate) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("valid time"))
}

/// Latent quality of a service (and office) in a quarter, in the units of the perceptions.
fn quality(u: &Universe, e: &Effects, service: usize, office: Option<usize>, quarter_index: usize) -> f64 {
    let own: f64 = e.service_driver[service].iter().zip(DRIVER_MEANS).map(|(m, base)| m - base).sum::<f64>() / 6.0;
    e.agency[u.services[service].agency] + office.map_or(0.0, |o| e.office[o]) + own + e.service_trend[service] * quarter_index as f64
}

/// All telemetry of the universe, one vector per agency (index into `u.agencies`), with the
/// planted drops. `respondents[c][q]` is what collection `c` collected in quarter `q`.
pub fn telemetry(
    seed: u64,
    u: &Universe,
    quarters: &[FiscalQuarter],
    respondents: &[Vec<u64>],
    rows_per_quarter: f64,
    plant_drop: bool,
) -> (Vec<Vec<Observation>>, Vec<TelemetryDrop>) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0x5eed_0004);
    let first = quarters[0].start();
    let last = quarters.last().expect("a quarter").end();
    let span_days = (last - first).num_days() as f64 + 1.0;
    let mut drops = Vec::new();
    if plant_drop {
        let largest_digital = (0..u.services.len())
            .filter(|&s| u.services[s].channels.contains(&Channel::Digital))
            .max_by(|&a, &b| u.services[a].volume.total_cmp(&u.services[b].volume));
        if let Some(s) = largest_digital {
            drops.push(TelemetryDrop {
                service_id: u.services[s].id.clone(),
                metric: "page_views".into(),
                channel: "digital".into(),
                page: "start".into(),
                from: last - chrono::Duration::days(9),
                factor: 0.4,
            });
        }
    }
    let mut out: Vec<Vec<Observation>> = vec![Vec::new(); u.agencies.len()];
    for (ci, c) in u.collections.iter().enumerate() {
        let s = &u.services[c.service];
        let agency = u.agencies[s.agency].code.clone();
        let response_rate = rng.random_range(0.04..0.25);
        let offer_rate = rng.random_range(0.3..0.9);
        let growth_per_day = normal(&mut rng, 0.04) / 91.0;
        let daily_respondents = rows_per_quarter * s.volume * c.share / 91.3;
        let offered_mean = daily_respondents / response_rate;
        let drop = drops.iter().find(|d| d.service_id == s.id && c.channel == Channel::Digital);
        let push = |out: &mut Vec<Vec<Observation>>, date: NaiveDate, metric: &str, value: f64, page: Option<&str>| {
            out[s.agency].push(Observation {
                agency: agency.clone(),
                service_id: s.id.clone(),
                observed_at: midnight(date),
                metric: metric.to_string(),
                value,
                channel: Some(c.channel),
                page: page.map(str::to_string),
                office_id: None,
            })
        };
        for (qi, q) in quarters.iter().enumerate() {
            let days: Vec<NaiveDate> = q.start().iter_days().take_while(|d| *d <= q.end()).collect();
            let mut offered: Vec<f64> = days
                .iter()
                .map(|d| {
                    let t = (*d - first).num_days() as f64 - span_days / 2.0;
                    poisson(&mut rng, offered_mean * (growth_per_day * t).exp() * day_factor(*d, c.channel))
                })
                .collect();
            // Every respondent was offered the survey.
            let deficit = respondents[ci][qi] as f64 - offered.iter().sum::<f64>();
            if deficit > 0.0 {
                *offered.last_mut().expect("a day") += deficit;
            }
            for (d, o) in days.iter().zip(&offered) {
                let tx = o + poisson(&mut rng, o * (1.0 / offer_rate - 1.0));
                push(&mut out, *d, "surveys_offered", *o, None);
                push(&mut out, *d, "transactions", tx, None);
                if c.channel == Channel::Digital {
                    let dropped = drop.filter(|p| *d >= p.from).map_or(1.0, |p| p.factor);
                    let start = poisson(&mut rng, (2.5 * tx + 1.0) * dropped);
                    let status = poisson(&mut rng, 1.2 * tx + 0.5);
                    push(&mut out, *d, "page_views", start, Some("start"));
                    push(&mut out, *d, "page_views", status, Some("status"));
                }
            }
        }
    }
    (out, drops)
}

/// Monthly service-level indicators, one vector per agency.
pub fn indicators(seed: u64, u: &Universe, e: &Effects, quarters: &[FiscalQuarter]) -> Vec<Vec<Observation>> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0x5eed_0005);
    let mut out: Vec<Vec<Observation>> = vec![Vec::new(); u.agencies.len()];
    for (qi, q) in quarters.iter().enumerate() {
        let months: Vec<NaiveDate> = q.start().iter_days().take_while(|d| *d <= q.end()).filter(|d| d.day() == 1).collect();
        for (si, s) in u.services.iter().enumerate() {
            let agency = u.agencies[s.agency].code.clone();
            let push = |out: &mut Vec<Vec<Observation>>, month: NaiveDate, metric: &str, value: f64, office: Option<usize>| {
                out[s.agency].push(Observation {
                    agency: agency.clone(),
                    service_id: s.id.clone(),
                    observed_at: midnight(month),
                    metric: metric.to_string(),
                    value: (value * 100.0).round() / 100.0,
                    channel: None,
                    page: None,
                    office_id: office.map(|o| u.offices[o].id.clone()),
                })
            };
            for &month in &months {
                if matches!(s.service_type, ServiceType::Benefits | ServiceType::Compliance | ServiceType::Regulatory | ServiceType::Administrative) {
                    let quality = quality(u, e, si, None, qi);
                    push(&mut out, month, "processing_time_days", 30.0 * (normal(&mut rng, 0.10) - quality).exp(), None);
                }
                for &o in &s.offices {
                    let quality = quality(u, e, si, Some(o), qi);
                    push(&mut out, month, "wait_time_minutes", 20.0 * (WAIT_QUALITY_SLOPE * quality + normal(&mut rng, 0.10)).exp(), Some(o));
                    let fcr = 1.0 / (1.0 + (-(1.0 + 2.0 * quality + normal(&mut rng, 0.10))).exp());
                    push(&mut out, month, "first_contact_resolution", fcr, Some(o));
                }
            }
        }
    }
    out
}
