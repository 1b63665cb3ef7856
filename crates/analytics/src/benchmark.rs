//! Cross-agency benchmarks (A-11 280.8, 280.10): every entity at a level (agency, bureau,
//! service, office) against its peers (government-wide, same service type, same agency, same
//! channel), the peers computed without the entity itself.
//!
//! One scores pass gives the bins of each (entity, peer key, period) cell; a peer group's bins
//! are the cell total minus the entity's own (exact: bins are sums). Pooled peer scores are
//! respondent-weighted; equal-weighted peer scores are the mean of the other entities' scores.
//! In a perturbed view the peer group is a cell of its own: its bins' cell keys are the cell's
//! minus the entity's, and its published counts and scores are perturbed by them.

use super::scores::{perturbed_row, score_row, ScoreRow, ScoresQuery};
use super::{Analytics, AnalyticsError, Filter, GroupKey};
use cx_domain::{Dimension, Measure, Period, PeriodUnit, Scale};
use cx_stats::{Bin, Comparison};
use std::collections::BTreeMap;

/// The level entities are compared at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Agency,
    Bureau,
    Service,
    Office,
}

impl Level {
    pub fn dimension(self) -> Dimension {
        match self {
            Level::Agency => Dimension::Agency,
            Level::Bureau => Dimension::Bureau,
            Level::Service => Dimension::Service,
            Level::Office => Dimension::Office,
        }
    }
}

/// Who an entity is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peers {
    /// Every other entity at the level.
    GovernmentWide,
    /// Responses of the same service type at other entities (one row per entity and type).
    SameServiceType,
    /// Other entities of the same agency (levels below agency).
    SameAgency,
    /// Responses through the same channel at other entities (one row per entity and channel).
    SameChannel,
}

impl Peers {
    fn dimension(self) -> Option<Dimension> {
        match self {
            Peers::GovernmentWide => None,
            Peers::SameServiceType => Some(Dimension::ServiceType),
            Peers::SameAgency => Some(Dimension::Agency),
            Peers::SameChannel => Some(Dimension::Channel),
        }
    }
}

/// How peer scores are pooled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Respondent-weighted: all peer responses together.
    Pooled,
    /// The mean of the peer entities' scores.
    EqualWeighted,
}

#[derive(Debug, Clone)]
pub struct BenchmarkQuery {
    pub level: Level,
    pub measure: Measure,
    pub peers: Peers,
    pub filter: Filter,
    pub period: Option<PeriodUnit>,
    pub pooling: Pooling,
    pub weighted: bool,
    pub confidence: f64,
}

impl Default for BenchmarkQuery {
    fn default() -> Self {
        BenchmarkQuery {
            level: Level::Agency,
            measure: Measure::Trust,
            peers: Peers::GovernmentWide,
            filter: Filter::default(),
            period: None,
            pooling: Pooling::Pooled,
            weighted: false,
            confidence: 0.95,
        }
    }
}

/// One entity (in one peer cell and period) against its peers.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchmarkRow {
    pub entity: String,
    /// The peer group's key (service type, agency or channel), `None` government-wide.
    pub peer_key: Option<String>,
    pub period: Option<Period>,
    pub own: ScoreRow,
    /// Peer entities with answers (the entity excluded).
    pub peer_entities: u32,
    /// Peer responses (pooled) with answers.
    pub peer_n: u64,
    pub peer_mean: Option<f64>,
    pub peer_agree_share: Option<f64>,
    /// Entity minus peers: Welch (pooled) or normal (equal-weighted) for means.
    pub mean_difference: Option<Comparison>,
    /// Entity minus peers: Newcombe's interval and the two-proportion z-test (pooled), or
    /// normal (equal-weighted), for agree shares.
    pub agree_difference: Option<Comparison>,
    /// 1 = highest agree share among the cell's entities (the entity included).
    pub rank: Option<u32>,
    /// Share of the peer entities with a lower agree share (ties count half), in percent.
    pub percentile: Option<f64>,
    pub entities_ranked: u32,
    /// Why the entity's statistics are withheld, if they are.
    pub suppressed: Option<String>,
    /// Why the peer scores and the differences are withheld, if they are.
    pub peer_suppressed: Option<String>,
}

fn subtract(total: &[(Scale, Bin)], own: &[(Scale, Bin)]) -> Vec<(Scale, Bin)> {
    total
        .iter()
        .map(|(s, t)| {
            let o = own.iter().find(|(os, ob)| os == s && ob.value == t.value).map(|x| x.1).unwrap_or_default();
            (
                *s,
                Bin {
                    value: t.value,
                    count: t.count - o.count,
                    weight: t.weight - o.weight,
                    weight_sq: t.weight_sq - o.weight_sq,
                    // The key of the peers' records: the cell's minus the entity's (mod 2^32).
                    key: t.key.wrapping_sub(o.key),
                },
            )
        })
        .collect()
}

fn add(total: &mut Vec<(Scale, Bin)>, more: &[(Scale, Bin)]) {
    for (s, b) in more {
        match total.iter_mut().find(|(ts, tb)| ts == s && tb.value == b.value) {
            Some((_, t)) => {
                t.count += b.count;
                t.weight += b.weight;
                t.weight_sq += b.weight_sq;
                t.key = t.key.wrapping_add(b.key);
            }
            None => total.push((*s, *b)),
        }
    }
}

impl Analytics {
    pub async fn benchmark(&self, q: &BenchmarkQuery) -> Result<Vec<BenchmarkRow>, AnalyticsError> {
        if q.peers == Peers::SameAgency && q.level == Level::Agency {
            return Err(AnalyticsError::invalid("peers", "SAME_AGENCY peers need a level below agency".into()));
        }
        // For the public, no list of entities either: a peer group is then always a grid cell
        // minus one entity, never an ad hoc sum of listed ones (whose perturbed n, minus a
        // listed entity's, would be one more independent estimate of a suppressed cell).
        self.check_published(&q.filter, &[], q.period)?;
        let entity_dim = q.level.dimension();
        let mut group_by = vec![entity_dim];
        group_by.extend(q.peers.dimension());
        let scores = self
            .scores(&ScoresQuery {
                filter: q.filter.clone(),
                group_by,
                period: q.period,
                measures: vec![q.measure],
                weighted: q.weighted,
                confidence: q.confidence,
            })
            .await?;
        Ok(compare(scores.rows, q, self.suppression.min_cell, self.perturb.is_some()))
    }
}

/// Builds the comparison rows from per-(entity, peer key, period) score rows (already
/// suppressed below `min_cell`), applying the benchmark's suppression rules (see
/// `analytics::suppression`). With `perturb` (the rows are perturbed: a perturbed view), the
/// peers' scores are computed from their exact bins and then perturbed by their own cell keys
/// like any published cell; decisions (suppression, which entity is withheld next) use true
/// counts.
pub fn compare(rows: Vec<ScoreRow>, q: &BenchmarkQuery, min_cell: u64, perturb: bool) -> Vec<BenchmarkRow> {
    let entity_dim = q.level.dimension();
    let peer_dim = q.peers.dimension();
    // Cells: (peer key, period) -> entities' rows (entities without a value, such as digital
    // responses' office, are not entities).
    let mut cells: BTreeMap<(Option<String>, Option<Period>), Vec<ScoreRow>> = BTreeMap::new();
    for r in rows {
        if r.key.get(entity_dim).is_none() || r.true_n() == 0 {
            continue;
        }
        let peer = peer_dim.and_then(|d| r.key.get(d).map(str::to_string));
        cells.entry((peer, r.key.period.clone())).or_default().push(r);
    }
    let mut out = Vec::new();
    for ((peer_key, period), mut entities) in cells {
        // Complementary suppression: one suppressed entity among shown ones would be the cell
        // total (derivable from any shown row) minus the shown entities.
        let hidden = entities.iter().filter(|e| e.suppressed.is_some()).count();
        if hidden == 1 {
            if let Some(next) =
                entities.iter_mut().filter(|e| e.suppressed.is_none()).min_by(|a, b| a.true_n().cmp(&b.true_n()).then_with(|| a.key.cmp(&b.key)))
            {
                next.suppress("complementary suppression: withheld so that a small cell of the same peer group cannot be recovered by subtraction".into());
            }
        }
        let mut total = Vec::new();
        for e in &entities {
            add(&mut total, &e.bins);
        }
        let shares: Vec<f64> = entities.iter().filter_map(|e| e.agree_share).collect();
        for e in &entities {
            let peer_key_struct = GroupKey { values: Vec::new(), period: period.clone() };
            let peer = score_row(peer_key_struct, q.measure, &subtract(&total, &e.bins), q.confidence);
            let peer = if perturb {
                let mut p = perturbed_row(&peer, q.confidence);
                p.clip_counts(p.true_n() < min_cell, min_cell);
                p
            } else {
                peer
            };
            let others: Vec<&ScoreRow> = entities.iter().filter(|o| !std::ptr::eq(*o, e)).filter(|o| o.true_n() > 0).collect();
            let peer_suppressed = match (&e.suppressed, super::suppression::Suppression::check_shown(peer.true_n(), min_cell, perturb)) {
                (Some(_), _) => Some("the entity is suppressed; its peer scores would reveal it".to_string()),
                (None, reason) => reason.map(|r| format!("peers: {r}")),
            };
            let (peer_mean, peer_agree, mean_difference, agree_difference) = match q.pooling {
                Pooling::Pooled => (peer.mean, peer.agree_share, e.mean_difference(&peer, q.confidence), e.agree_difference(&peer, q.confidence)),
                Pooling::EqualWeighted => {
                    // Mean of the other entities' scores; its variance is the mean of their
                    // sampling variances divided by their number.
                    let means: Vec<(f64, f64)> =
                        others.iter().filter_map(|o| Some((o.mean?, o.sd? * o.sd? / o.n_effective_likert))).filter(|(_, v)| v.is_finite()).collect();
                    let props: Vec<(f64, f64)> = others.iter().filter_map(|o| o.agree_share.map(|p| (p, p * (1.0 - p) / o.n_effective))).collect();
                    let (pm, pp) = (cx_stats::hypothesis::mean_of_estimates(&means), cx_stats::hypothesis::mean_of_estimates(&props));
                    let own_mean_se = e.mean.zip(e.sd).map(|(m, s)| (m, s / e.n_effective_likert.sqrt()));
                    let own_p_se = e.agree_share.map(|p| (p, (p * (1.0 - p) / e.n_effective).sqrt()));
                    (
                        pm.map(|x| x.0),
                        pp.map(|x| x.0),
                        own_mean_se.zip(pm).and_then(|((a, sa), (b, sb))| cx_stats::hypothesis::normal_difference(a, sa, b, sb, q.confidence)),
                        own_p_se.zip(pp).and_then(|((a, sa), (b, sb))| cx_stats::hypothesis::normal_difference(a, sa, b, sb, q.confidence)),
                    )
                }
            };
            let (rank, percentile) = match e.agree_share {
                Some(p) => {
                    let (rank, percentile) = cx_stats::descriptive::rank_and_percentile(&shares, p);
                    (Some(rank), percentile)
                }
                None => (None, None),
            };
            let (peer_mean, peer_agree, mean_difference, agree_difference) =
                if peer_suppressed.is_some() { (None, None, None, None) } else { (peer_mean, peer_agree, mean_difference, agree_difference) };
            out.push(BenchmarkRow {
                entity: e.key.get(entity_dim).expect("entities have a value").to_string(),
                peer_key: peer_key.clone(),
                period: period.clone(),
                own: e.clone(),
                peer_entities: others.len() as u32,
                peer_n: peer.n,
                peer_mean,
                peer_agree_share: peer_agree,
                mean_difference,
                agree_difference,
                rank,
                percentile,
                entities_ranked: shares.len() as u32,
                suppressed: e.suppressed.clone(),
                peer_suppressed,
            });
        }
    }
    out
}
