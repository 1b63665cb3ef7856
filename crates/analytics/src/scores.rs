//! Scores: for each group and measure, n, mean, standard deviation, 95% interval of the mean,
//! agree share (top-2-box on Likert, thumbs-up on thumbs) with its Wilson interval, the
//! distribution of answers and n by scale; optionally with survey weights.
//!
//! One pass: the lake is reduced per (group, period, scale) to the count (and, weighted, the sum
//! of weights and of squared weights) of each answer value of each measure. `cx_stats`
//! computes every estimate from those bins.
//!
//! In a perturbed view (`Analytics::perturbed`, the public role's) the same pass also sums the
//! record keys of each bin (`analytics::cellkey`); every count shown is then perturbed by its
//! cell key (each bin of the distribution, n, n by scale: `cx_stats::cellkey`) and every
//! statistic is computed from the perturbed bins ([`perturbed_row`]). Suppression decisions
//! keep using the true n.

use super::cellkey::{key_sum, CellKeySecret};
use super::grouping::{key_exprs, GroupKey, KeyReader};
use super::Weight;
use super::{Analytics, AnalyticsError, Filter};
use cx_domain::{Dimension, Measure, PeriodUnit, Scale};
use cx_lake::rollup::{bin_aggregates, bin_values, Sum};
use cx_stats::cellkey::{cell_key, perturb, perturb_bin};
use cx_stats::{mean_interval, two_proportions, welch, wilson, Bin, Comparison, Distribution, Interval};
use polars::prelude::*;
use std::collections::HashMap;

/// A scores query.
#[derive(Debug, Clone)]
pub struct ScoresQuery {
    pub filter: Filter,
    pub group_by: Vec<Dimension>,
    pub period: Option<PeriodUnit>,
    pub measures: Vec<Measure>,
    pub weighted: bool,
    /// Confidence level of the intervals (0.95).
    pub confidence: f64,
}

impl Default for ScoresQuery {
    fn default() -> Self {
        ScoresQuery {
            filter: Filter::default(),
            group_by: Vec::new(),
            period: None,
            measures: vec![Measure::Trust, Measure::Satisfaction],
            weighted: false,
            confidence: 0.95,
        }
    }
}

/// The count of one answer value on one scale.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerCount {
    pub scale: Scale,
    pub value: i64,
    pub count: u64,
    /// Sum of weights (equal to `count` unweighted).
    pub weight: f64,
}

/// One group and measure.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    pub key: GroupKey,
    pub measure: Measure,
    /// Answers on both scales.
    pub n: u64,
    pub n_likert: u64,
    pub n_thumbs: u64,
    /// Mean and spread of the Likert answers only (a thumbs answer is not on that scale).
    pub mean: Option<f64>,
    pub sd: Option<f64>,
    pub mean_ci: Option<Interval>,
    /// Kish's effective n of the Likert answers (n unweighted).
    pub n_effective_likert: f64,
    /// Agree share over both scales.
    pub agree_share: Option<f64>,
    pub agree_ci: Option<Interval>,
    /// Kish's effective n of all answers (n unweighted).
    pub n_effective: f64,
    pub distribution: Vec<AnswerCount>,
    /// The sufficient statistics every figure above came from (per scale and answer value):
    /// additive, so comparisons can add and subtract groups exactly.
    pub bins: Vec<(Scale, Bin)>,
    /// Why the statistics are withheld (small cell), if they are.
    pub suppressed: Option<String>,
    /// True when the counts and statistics are perturbed (cell-key method); `bins` stay exact.
    pub perturbed: bool,
}

impl ScoreRow {
    /// This row's mean minus `other`'s: Welch's test and interval on the Likert answers (Kish
    /// effective sizes). `None` when either side has no mean or spread (or is suppressed).
    pub fn mean_difference(&self, other: &ScoreRow, confidence: f64) -> Option<Comparison> {
        let (m1, s1, m2, s2) = (self.mean?, self.sd?, other.mean?, other.sd?);
        welch(m1, s1 * s1, self.n_effective_likert, m2, s2 * s2, other.n_effective_likert, confidence)
    }

    /// This row's agree share minus `other`'s: Newcombe's interval and the two-proportion z-test
    /// (Kish effective sizes). `None` when either side has no share (or is suppressed).
    pub fn agree_difference(&self, other: &ScoreRow, confidence: f64) -> Option<Comparison> {
        two_proportions(self.agree_share?, self.n_effective, other.agree_share?, other.n_effective, confidence)
    }

    /// The true number of answers (from the exact bins), for decisions such as suppression:
    /// never shown where counts are perturbed.
    pub fn true_n(&self) -> u64 {
        self.bins.iter().map(|(_, b)| b.count).sum()
    }

    /// In a perturbed row, moves the counts shown to the side of the minimum cell size the
    /// true count is on (`Suppression::clip`): n, and for a suppressed cell n by scale and the
    /// effective sizes too.
    pub fn clip_counts(&mut self, suppressed: bool, minimum: u64) {
        use super::suppression::Suppression;
        self.n = Suppression::clip(self.n, suppressed, minimum);
        if suppressed {
            self.n_likert = Suppression::clip(self.n_likert, true, minimum);
            self.n_thumbs = Suppression::clip(self.n_thumbs, true, minimum);
            // A suppressed cell's effective sizes say no more than its n: the true ones scaled
            // to the n shown (not the sums of its perturbed, withheld bins).
            let scaled = |on: &dyn Fn(Scale) -> bool, shown: u64| {
                let d = Distribution::new(self.bins.iter().filter(|(s, _)| on(*s)).map(|(_, b)| *b).collect());
                if d.n() > 0 {
                    d.n_effective() * shown as f64 / d.n() as f64
                } else {
                    0.0
                }
            };
            self.n_effective = scaled(&|_| true, self.n);
            self.n_effective_likert = scaled(&|s| s == Scale::Likert5, self.n_likert);
        }
    }

    /// Withholds every statistic (n stays), giving the reason. The bins stay for exact
    /// arithmetic inside analytics; they are never shown.
    pub fn suppress(&mut self, reason: String) {
        self.mean = None;
        self.sd = None;
        self.mean_ci = None;
        self.agree_share = None;
        self.agree_ci = None;
        self.distribution.clear();
        self.suppressed = Some(reason);
    }
}

/// Rows, and what the query read.
#[derive(Debug, Clone)]
pub struct ScoresResult {
    pub rows: Vec<ScoreRow>,
    /// Data files whose rows the query scanned after partition pruning.
    pub files_scanned: usize,
    /// Rollups and raw files read.
    pub served: super::rollups::Served,
}

/// The answer values a measure may hold on a scale.
fn values(measure: Measure, scale: Scale) -> &'static [i64] {
    if scale == Scale::Thumbs && !measure.has_thumbs() {
        &[]
    } else {
        scale.values()
    }
}

impl Analytics {
    /// Runs a scores query.
    pub async fn scores(&self, q: &ScoresQuery) -> Result<ScoresResult, AnalyticsError> {
        self.catalog().check(&q.filter)?;
        self.check_published(&q.filter, &q.group_by, q.period)?;
        if q.measures.is_empty() {
            return Err(AnalyticsError::invalid("measures", "name at least one measure".into()));
        }
        if !(q.confidence > 0.0 && q.confidence < 1.0) {
            return Err(AnalyticsError::invalid("confidence", format!("{} is not in (0, 1)", q.confidence)));
        }
        let (df, served) = self.score_bins(q, weight(q)).await?;
        let files_scanned = served.raw_files;
        let Some(df) = df else { return Ok(ScoresResult { rows: Vec::new(), files_scanned, served }) };
        // A row per group and scale: only past the cap can the groups be too many.
        if df.height() > self.max_groups {
            let keys = super::grouping::KeyReader::new(&df, &q.group_by, q.period)?;
            self.check_groups((0..df.height()).map(|i| keys.key(i)).collect::<std::collections::BTreeSet<_>>().len())?;
        }
        let assembling = std::time::Instant::now();
        let mut rows = assemble(&df, q)?;
        tracing::debug!(rows = rows.len(), elapsed = ?assembling.elapsed(), "scores assembled");
        let perturb = self.perturb.is_some();
        for r in &mut rows {
            // Decided on the true n; a perturbed view shows the perturbed n with the reason.
            let reason = super::suppression::Suppression::check_shown(r.n, self.suppression.min_cell, perturb);
            if perturb {
                *r = perturbed_row(r, q.confidence);
                r.clip_counts(reason.is_some(), self.suppression.min_cell);
            }
            if let Some(reason) = reason {
                r.suppress(reason);
            }
        }
        Ok(ScoresResult { rows, files_scanned, served })
    }
}

/// How much a scores query weighs for admission: one scan, but grouping by many dimensions or
/// by day or week builds a large table (up to the group cap), so it waits with the heavy ones.
fn weight(q: &ScoresQuery) -> Weight {
    use cx_domain::PeriodUnit::{Day, Week};
    if q.group_by.len() >= 4 || (q.group_by.len() >= 2 && matches!(q.period, Some(Day | Week))) {
        Weight::Heavy
    } else {
        Weight::Light
    }
}

/// The plan's column holding the count of answers `v` to `m` in a group (`cx_lake::rollup`
/// names the sums of weights and squared weights alike; a rollup file holds the same columns).
pub(crate) fn bin_column(m: Measure, v: i64) -> String {
    cx_lake::rollup::bin_column(m, v, Sum::N)
}

/// The plan's column holding the sum of the record keys of the answers `v` to `m` in a group
/// (when planned with keys).
pub(crate) fn key_column(m: Measure, v: i64) -> String {
    format!("{}__{}__k", m.column(), v)
}

/// The one-pass plan: filter, then per (group, period, scale) the bins of every measure.
pub fn plan(lf: LazyFrame, q: &ScoresQuery) -> LazyFrame {
    plan_with(lf, q, Vec::new(), None)
}

/// `plan` with further aggregates per group (such as a row count), and with `record_keys` the sum of
/// the record keys of each bin (`…__k`; the further aggregates may use the record keys'
/// column, `cellkey::RECORD_KEY`).
pub fn plan_with(lf: LazyFrame, q: &ScoresQuery, extra: Vec<Expr>, record_keys: Option<&CellKeySecret>) -> LazyFrame {
    let lf = match q.filter.predicate() {
        Some(p) => lf.filter(p),
        None => lf,
    };
    let lf = match record_keys {
        Some(secret) => lf.with_column(secret.record_key_expr()),
        None => lf,
    };
    let mut keys = key_exprs(&q.group_by, q.period);
    keys.push(col("scale"));
    // Thumbs answers are 0/1 and Likert 1-5: one set of conditional sums serves both scales
    // because rows are grouped by scale; the assembly reads each scale's own values.
    let mut aggs = extra;
    aggs.extend(bin_aggregates(&q.measures, q.weighted, DataType::UInt64));
    if record_keys.is_some() {
        for &m in &q.measures {
            for v in bin_values(m) {
                aggs.push(key_sum(col(m.column()).eq(lit(v as i8))).alias(key_column(m, v)));
            }
        }
    }
    lf.group_by(keys).agg(aggs)
}

/// Reads the collected bins into rows, one per group and measure.
fn assemble(df: &DataFrame, q: &ScoresQuery) -> Result<Vec<ScoreRow>, AnalyticsError> {
    // One chunk per column, so reading a row's value is an index (not a search of chunks).
    let mut df = df.clone();
    df.rechunk_mut_par();
    let df = &df;
    let height = df.height();
    let keys = KeyReader::new(df, &q.group_by, q.period)?;
    let scale_col = df.column("scale")?.str()?;

    // The aggregate columns of each measure and value, resolved once.
    type Cols<'a> = (i64, &'a UInt64Chunked, Option<(&'a Float64Chunked, &'a Float64Chunked)>, Option<&'a UInt64Chunked>);
    let mut agg_cols: Vec<Vec<Cols>> = Vec::new();
    for &m in &q.measures {
        let mut per_value = Vec::new();
        for v in values(m, Scale::Likert5).iter().chain(values(m, Scale::Thumbs)) {
            if per_value.iter().any(|(pv, _, _, _): &Cols| pv == v) {
                continue;
            }
            let n = df.column(&bin_column(m, *v))?.u64()?;
            let w = if q.weighted {
                Some((df.column(&cx_lake::rollup::bin_column(m, *v, Sum::W))?.f64()?, df.column(&cx_lake::rollup::bin_column(m, *v, Sum::W2))?.f64()?))
            } else {
                None
            };
            let k = match df.column(&key_column(m, *v)) {
                Ok(c) => Some(c.u64()?),
                Err(_) => None,
            };
            per_value.push((*v, n, w, k));
        }
        agg_cols.push(per_value);
    }

    // (group, period) -> measure -> bins per scale; the groups found by their borrowed keys
    // (`KeyReader::raw`), each key made once, and ordered by key at the end.
    let mut index: HashMap<_, usize> = HashMap::with_capacity(height);
    // Per group: its key, and per measure its bins by scale.
    type Group = (GroupKey, Vec<Vec<(Scale, Bin)>>);
    let mut groups: Vec<Group> = Vec::with_capacity(height);
    for i in 0..height {
        let g = *index.entry(keys.raw(i)).or_insert_with(|| {
            groups.push((keys.key(i), vec![Vec::new(); q.measures.len()]));
            groups.len() - 1
        });
        let scale: Scale = scale_col
            .get(i)
            .ok_or_else(|| AnalyticsError::invalid("lake", "a response has no scale".into()))?
            .parse()
            .map_err(|e: String| AnalyticsError::invalid("lake", e))?;
        let entry = &mut groups[g].1;
        for (mi, &m) in q.measures.iter().enumerate() {
            let bins = &mut entry[mi];
            // A response's scale is that of trust and satisfaction; driver items are 1-5 on
            // every row (280.10), so a thumbs survey's driver answers count as Likert answers.
            let on = if m.has_thumbs() { scale } else { Scale::Likert5 };
            for (v, n, w, k) in &agg_cols[mi] {
                if !values(m, on).contains(v) {
                    continue;
                }
                let count = n.get(i).unwrap_or(0);
                let (weight, weight_sq) = match w {
                    Some((w, w2)) => (w.get(i).unwrap_or(0.0), w2.get(i).unwrap_or(0.0)),
                    None => (count as f64, count as f64),
                };
                let key = k.and_then(|k| k.get(i)).map_or(0, cell_key);
                match bins.iter_mut().find(|(sc, b)| *sc == on && b.value == *v as f64) {
                    Some((_, b)) => {
                        b.count += count;
                        b.weight += weight;
                        b.weight_sq += weight_sq;
                        b.key = b.key.wrapping_add(key);
                    }
                    None => bins.push((on, Bin { value: *v as f64, count, weight, weight_sq, key })),
                }
            }
        }
    }
    groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut rows = Vec::with_capacity(groups.len() * q.measures.len());
    for (key, measures) in groups {
        for (mi, bins) in measures.iter().enumerate() {
            rows.push(score_row(key.clone(), q.measures[mi], bins, q.confidence));
        }
    }
    Ok(rows)
}

/// The statistics of one group and measure from its bins.
pub fn score_row(key: GroupKey, measure: Measure, bins: &[(Scale, Bin)], confidence: f64) -> ScoreRow {
    // A fixed order, so sums do not depend on the order polars returned the groups in.
    let mut bins = bins.to_vec();
    bins.sort_by(|a, b| (a.0, a.1.value).partial_cmp(&(b.0, b.1.value)).expect("finite answer values"));
    let on = |s: Scale| Distribution::new(bins.iter().filter(|(sc, _)| *sc == s).map(|(_, b)| *b).collect());
    let likert = on(Scale::Likert5);
    let thumbs = on(Scale::Thumbs);
    // Agreement over both scales: a 0/1 distribution.
    let agreement = Distribution::new(bins.iter().map(|(s, b)| Bin { value: if s.agrees(b.value as i64) { 1.0 } else { 0.0 }, ..*b }).collect());
    let mean = likert.mean();
    let sd = likert.sd();
    let n_eff_likert = likert.n_effective();
    let agree_share = agreement.share(|v| v == 1.0);
    let n_effective = agreement.n_effective();
    let distribution: Vec<AnswerCount> = bins.iter().map(|(s, b)| AnswerCount { scale: *s, value: b.value as i64, count: b.count, weight: b.weight }).collect();
    ScoreRow {
        key,
        measure,
        n: agreement.n(),
        n_likert: likert.n(),
        n_thumbs: thumbs.n(),
        mean,
        sd,
        mean_ci: mean.zip(sd).and_then(|(m, s)| mean_interval(m, s, n_eff_likert, confidence)),
        n_effective_likert: n_eff_likert,
        agree_share,
        agree_ci: agree_share.and_then(|p| wilson(p, n_effective, confidence)),
        n_effective,
        distribution,
        bins,
        suppressed: None,
        perturbed: false,
    }
}

/// A row as a perturbed view publishes it: each bin's count perturbed by its cell key (its
/// weights scaled alike: `stats::cellkey::perturb_bin`), every statistic computed from those
/// bins, and n, n on Likert and n on thumbs each perturbed by the cell key of its own records
/// (the sum of its bins' keys). The counts are perturbed independently, so the distribution
/// need not add up to n, nor n_likert and n_thumbs to n; the effective sizes behind the
/// intervals are those of the perturbed bins. The exact bins stay in `bins` (never shown) so
/// comparisons (peers = cell − entity) can perturb the records they describe.
pub fn perturbed_row(r: &ScoreRow, confidence: f64) -> ScoreRow {
    let shown: Vec<(Scale, Bin)> = r.bins.iter().map(|(s, b)| (*s, perturb_bin(b))).collect();
    let mut out = score_row(r.key.clone(), r.measure, &shown, confidence);
    let count = |on: &dyn Fn(Scale) -> bool| {
        let (n, key) = r.bins.iter().filter(|(s, _)| on(*s)).fold((0u64, 0u32), |(n, k), (_, b)| (n + b.count, k.wrapping_add(b.key)));
        perturb(n, key)
    };
    out.n = count(&|_| true);
    out.n_likert = count(&|s| s == Scale::Likert5);
    out.n_thumbs = count(&|s| s == Scale::Thumbs);
    out.bins = r.bins.clone();
    out.perturbed = true;
    out
}
