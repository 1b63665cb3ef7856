//! Driver importance: which experience drivers move trust or satisfaction, per group (service
//! type, office, period, ...).
//!
//! One pass: polars reduces the lake per group to sums (count, Σw, Σw², Σw·x, Σw·xᵢxⱼ of the
//! outcome and the drivers over the complete Likert responses, filtered in the scan; per pair
//! of variables under pairwise deletion), plus the drivers' agree counts. Every aggregate is a
//! sum, so with `bootstrap` the same pass also groups rows into [`BOOTSTRAP_BUCKETS`] random
//! buckets (by row position) and a replicate is the Poisson(1)-weighted sum of its buckets: B
//! replicates cost no extra pass over the data (a random-groups bootstrap; with fewer rows than
//! buckets it is exactly the per-row Poisson bootstrap). Only when asked for, two narrow scans
//! add the responses dropped for a missing driver and the tapped indicators of thumbs
//! responses. `cx_stats` computes every estimate.
//!
//! The same sums come from the moments rollup where it covers the query (`drivers_via`,
//! `rollup_plans`): its rows hold per answer pattern the counts, weight sums and cross-products,
//! so listwise sums are the sums over the patterns holding every variable and pairwise ones over
//! those holding both of a pair. A bootstrap, tap shares and the public role's perturbed counts
//! read raw rows (buckets of rows, tap columns and record keys are not in the rollup).

use super::cellkey::{key_sum, CellKeySecret, RECORD_KEY};
use super::grouping::{key_exprs, key_names, GroupKey, KeyReader};
use super::rollups::rollup_rows;
use super::suppression::Suppression;
use super::{gated, Weight};
use super::{Analytics, AnalyticsError, Filter};
use cx_domain::survey::{tap_column, tap_columns, TAP_TOPICS};
use cx_domain::{Dimension, Driver, Measure, PeriodUnit};
use cx_lake::rollup::{moment_agree, moment_index, moment_x, moment_xx, Part, Rollup, RollupFiles, PATTERN, ROWS, SHIFT, SUM_W, SUM_W2};
use cx_stats::cellkey::{cell_key, perturb as perturb_count};
use cx_stats::correlation::pairwise_correlation;
use cx_stats::{importance, wilson, CrossProducts, Importance, Interval, PairSums, StatsError};
use nalgebra::DMatrix;
use polars::prelude::*;
use rand::SeedableRng;
use rand_distr::{Distribution as _, Poisson};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Rows are spread over this many buckets for the bootstrap.
pub const BOOTSTRAP_BUCKETS: u32 = 256;
/// The most bootstrap replicates a query may ask for.
pub const MAX_BOOTSTRAP: u32 = 2000;
/// A VIF above this draws a warning.
pub const VIF_WARNING: f64 = 10.0;

/// How missing driver answers are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Only responses answering the outcome and every driver (the default).
    Listwise,
    /// Each correlation from the responses answering both of its variables.
    Pairwise,
}

/// A driver-importance query.
#[derive(Debug, Clone)]
pub struct DriverQuery {
    pub filter: Filter,
    pub group_by: Vec<Dimension>,
    pub period: Option<PeriodUnit>,
    /// Trust or satisfaction.
    pub outcome: Measure,
    pub drivers: Vec<Driver>,
    pub weighted: bool,
    pub missing: Missing,
    /// Number of bootstrap replicates for intervals of Johnson and Shapley.
    pub bootstrap: Option<u32>,
    pub seed: u64,
    /// Also compute the tapped-indicator shares (a scan of thumbs responses).
    pub taps: bool,
    /// Also count the responses dropped for a missing driver (a narrow scan of Likert
    /// responses answering the outcome; listwise only).
    pub count_dropped: bool,
    pub confidence: f64,
}

impl Default for DriverQuery {
    fn default() -> Self {
        DriverQuery {
            filter: Filter::default(),
            group_by: Vec::new(),
            period: None,
            outcome: Measure::Trust,
            drivers: Driver::ALL.to_vec(),
            weighted: false,
            missing: Missing::Listwise,
            bootstrap: None,
            seed: 2025,
            taps: false,
            count_dropped: true,
            confidence: 0.95,
        }
    }
}

/// Importance-performance quadrant of a driver, relative to the group's average importance
/// (Shapley share) and average performance (agree share) over its drivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quadrant {
    /// Important and performing well.
    MaintainStrength,
    /// Important and performing below average.
    FixFirst,
    /// Less important and performing below average.
    Secondary,
    /// Less important yet performing well.
    PossibleOverinvestment,
}

/// One driver in one group.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverStat {
    pub driver: Driver,
    pub r: Option<f64>,
    pub beta: Option<f64>,
    pub first: Option<f64>,
    pub last: Option<f64>,
    pub pratt: Option<f64>,
    pub johnson: Option<f64>,
    pub johnson_share: Option<f64>,
    pub shapley: Option<f64>,
    pub shapley_share: Option<f64>,
    /// 1 = largest Shapley value.
    pub rank: Option<u32>,
    pub vif: Option<f64>,
    /// Agree share (4-5) of the driver among the responses used for its importance.
    pub performance: Option<f64>,
    pub quadrant: Option<Quadrant>,
    /// Bootstrap percentile intervals.
    pub johnson_ci: Option<Interval>,
    pub johnson_share_ci: Option<Interval>,
    pub shapley_ci: Option<Interval>,
    pub shapley_share_ci: Option<Interval>,
}

/// The share of thumbs respondents shown the tap list who tapped a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct TapStat {
    /// A driver or `other`.
    pub topic: String,
    /// Respondents shown the tap list.
    pub shown: u64,
    pub positive_share: Option<f64>,
    pub positive_ci: Option<Interval>,
    pub negative_share: Option<f64>,
    pub negative_ci: Option<Interval>,
    /// Why the shares are withheld (too few respondents shown the list), if they are.
    pub suppressed: Option<String>,
}

/// The result for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverGroup {
    pub key: GroupKey,
    /// Responses used (listwise) or the smallest pair count (pairwise).
    pub n: u64,
    /// Likert responses answering the outcome but left out for a missing driver (listwise, when
    /// asked for with `count_dropped`).
    pub n_dropped: Option<u64>,
    /// Kish's effective n of the responses used (n unweighted).
    pub n_effective: f64,
    pub r2: Option<f64>,
    pub adj_r2: Option<f64>,
    /// Why no estimates could be computed for this group, if so.
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub drivers: Vec<DriverStat>,
    pub taps: Vec<TapStat>,
    /// Bootstrap replicates that gave estimates (some may be degenerate in small groups).
    pub bootstrap_replicates: u32,
    /// Why the estimates are withheld (small cell), if they are.
    pub suppressed: Option<String>,
    /// The counts are perturbed (a perturbed view).
    pub perturbed: bool,
}

impl TapStat {
    /// Withholds the shares and intervals (the count shown stays), giving the reason.
    fn suppress(&mut self, reason: String) {
        self.positive_share = None;
        self.positive_ci = None;
        self.negative_share = None;
        self.negative_ci = None;
        self.suppressed = Some(reason);
    }
}

impl DriverGroup {
    /// Withholds every estimate (n stays), giving the reason. The error is withheld too: it can
    /// say that every respondent gave one answer.
    fn suppress(&mut self, reason: String) {
        self.r2 = None;
        self.adj_r2 = None;
        self.error = None;
        self.warnings.clear();
        self.drivers = self.drivers.iter().map(|d| empty_stat(d.driver)).collect();
        self.suppressed = Some(reason);
    }
}

/// The positions of the aggregates in a collected row of the main plan: every aggregate is a
/// sum.
struct Layout {
    /// Variables: the outcome, then the drivers.
    p: usize,
    missing: Missing,
}

/// Sums per tap topic: [shown, Σw, Σw², Σw positive, Σw negative].
const TAP_SUMS: usize = 5;

impl Layout {
    fn pairs(&self) -> Vec<(usize, usize)> {
        (0..self.p).flat_map(|i| (i..self.p).map(move |j| (i, j))).collect()
    }
    /// Listwise: [count, Σw, Σw², Σwxᵢ.., Σwxᵢxⱼ (i ≤ j)..]; pairwise: per pair i < j
    /// [count, Σw, Σw², Σwxᵢ, Σwxⱼ, Σwxᵢ², Σwxⱼ², Σwxᵢxⱼ]; then per driver [Σw of the rows
    /// used, Σw of those agreeing (4-5)].
    fn moments_len(&self) -> usize {
        match self.missing {
            Missing::Listwise => 3 + self.p + self.p * (self.p + 1) / 2,
            Missing::Pairwise => 8 * self.p * (self.p - 1) / 2,
        }
    }
    fn perf_start(&self) -> usize {
        self.moments_len()
    }
    fn len(&self) -> usize {
        self.perf_start() + 2 * (self.p - 1)
    }

    /// The main plan's rows and per-row columns. Listwise, only complete Likert cases are kept,
    /// by a predicate pushed into the scan, so every sum is a plain sum (masking incomplete rows
    /// instead measured 1.6x slower); pairwise, Likert rows with masks per pair.
    fn prepare(&self, lf: LazyFrame, vars: &[&str], weighted: bool) -> LazyFrame {
        let likert = col("scale").eq(lit("likert5"));
        let present = |i: usize| col(vars[i]).is_not_null();
        let (lf, fill) = match self.missing {
            Missing::Listwise => (lf.filter((0..self.p).fold(likert, |acc, i| acc.and(present(i)))), false),
            Missing::Pairwise => (lf.filter(likert), true),
        };
        let x = |i: usize| {
            let e = col(vars[i]).cast(DataType::Float64) - lit(SHIFT);
            if fill {
                e.fill_null(lit(0.0))
            } else {
                e
            }
        };
        let mut cols: Vec<Expr> = (0..self.p).map(|i| x(i).alias(format!("__x{i}"))).collect();
        if weighted {
            cols.push(col("weight").alias("__w"));
        }
        let lf = lf.with_columns(cols);
        if weighted && self.missing == Missing::Listwise {
            lf.with_columns((0..self.p).map(|i| (col("__w") * col(format!("__x{i}"))).alias(format!("__wx{i}"))).collect::<Vec<_>>())
        } else {
            lf
        }
    }

    /// The main plan's aggregates over [`Layout::prepare`]'s columns, in layout order.
    fn aggregates(&self, vars: &[&str], weighted: bool) -> Vec<Expr> {
        let x = |i: usize| col(format!("__x{i}"));
        let present = |i: usize| col(vars[i]).is_not_null();
        let f = |e: Expr| e.cast(DataType::Float64);
        let agree = |i: usize| x(i).gt_eq(lit(1.0));
        let mut out = Vec::new();
        match self.missing {
            Missing::Listwise => {
                let count = f(len());
                let wx = |i: usize| if weighted { col(format!("__wx{i}")) } else { x(i) };
                let (sw, sw2) = if weighted { (col("__w").sum(), (col("__w") * col("__w")).sum()) } else { (count.clone(), count.clone()) };
                out.extend([count, sw.clone(), sw2]);
                out.extend((0..self.p).map(|i| wx(i).sum()));
                out.extend(self.pairs().into_iter().map(|(i, j)| (wx(i) * x(j)).sum()));
                for i in 1..self.p {
                    out.push(sw.clone());
                    out.push(if weighted { when(agree(i)).then(col("__w")).otherwise(lit(0.0)).sum() } else { f(agree(i).sum()) });
                }
            }
            Missing::Pairwise => {
                let w = if weighted { col("__w") } else { lit(1.0) };
                for i in 0..self.p {
                    for j in (i + 1)..self.p {
                        let pc = present(i).and(present(j));
                        let u = when(pc.clone()).then(w.clone()).otherwise(lit(0.0));
                        out.push(f(pc.sum()));
                        out.push(u.clone().sum());
                        out.push((u.clone() * u.clone()).sum());
                        out.push((u.clone() * x(i)).sum());
                        out.push((u.clone() * x(j)).sum());
                        out.push((u.clone() * x(i) * x(i)).sum());
                        out.push((u.clone() * x(j) * x(j)).sum());
                        out.push((u * x(i) * x(j)).sum());
                    }
                }
                // Performance: agree share of each driver among the rows answering it and the outcome.
                for i in 1..self.p {
                    let used = present(0).and(present(i));
                    out.push(when(used.clone()).then(w.clone()).otherwise(lit(0.0)).sum());
                    out.push(when(used.and(agree(i))).then(w.clone()).otherwise(lit(0.0)).sum());
                }
            }
        }
        out.into_iter().enumerate().map(|(k, e)| e.alias(format!("__a{k}"))).collect()
    }
}

/// What a perturbed view needs beyond [`Layout`]'s sums, summed in the same pass (all
/// `UInt64`, `__k{j}`; record keys summed unsigned, so they cannot overflow): listwise,
/// [key of the rows used]; pairwise, [key of the rows of each pair i < j]; then per driver
/// [count of the rows used agreeing (4-5), their key].
struct KeyLayout {
    p: usize,
    missing: Missing,
}

impl KeyLayout {
    fn used_len(&self) -> usize {
        match self.missing {
            Missing::Listwise => 1,
            Missing::Pairwise => self.p * (self.p - 1) / 2,
        }
    }
    fn len(&self) -> usize {
        self.used_len() + 2 * (self.p - 1)
    }
    fn aggregates(&self, vars: &[&str]) -> Vec<Expr> {
        let present = |i: usize| col(vars[i]).is_not_null();
        let agree = |i: usize| col(format!("__x{i}")).gt_eq(lit(1.0));
        let mut out = Vec::new();
        let used = |i: usize| match self.missing {
            Missing::Listwise => lit(true),
            Missing::Pairwise => present(0).and(present(i)),
        };
        match self.missing {
            Missing::Listwise => out.push(col(RECORD_KEY).sum()),
            Missing::Pairwise => {
                for i in 0..self.p {
                    for j in (i + 1)..self.p {
                        out.push(key_sum(present(i).and(present(j))));
                    }
                }
            }
        }
        for i in 1..self.p {
            let hit = used(i).and(agree(i));
            out.push(hit.clone().sum().cast(DataType::UInt64));
            out.push(key_sum(hit));
        }
        out.into_iter().enumerate().map(|(k, e)| e.cast(DataType::UInt64).alias(format!("__k{k}"))).collect()
    }
}

/// Reads the `UInt64` sums `__k0..__k{n}` of a collected plan per group, summed over buckets
/// (wrapping: keys count modulo 2^32).
fn read_keys(df: &DataFrame, q: &DriverQuery, n: usize) -> PolarsResult<BTreeMap<GroupKey, Vec<u64>>> {
    let reader = KeyReader::new(df, &q.group_by, q.period)?;
    let cols: Vec<&UInt64Chunked> = (0..n).map(|k| df.column(&format!("__k{k}")).and_then(|c| c.u64())).collect::<PolarsResult<_>>()?;
    let mut groups: BTreeMap<GroupKey, Vec<u64>> = BTreeMap::new();
    for i in 0..df.height() {
        let sums = groups.entry(reader.key(i)).or_insert_with(|| vec![0; n]);
        for (t, c) in sums.iter_mut().zip(&cols) {
            *t = t.wrapping_add(c.get(i).unwrap_or(0));
        }
    }
    Ok(groups)
}

/// Responses answering the outcome per group: [on Likert (listwise: those not used were
/// dropped for a missing driver), on any scale]. A narrow scan of the scale, the outcome and the
/// keys; it also finds the groups that have answers but no Likert driver answers, so they are
/// reported with a warning instead of silently missing.
fn candidates_plan(lf: LazyFrame, outcome: &str, keys: Vec<Expr>, record_keys: Option<&CellKeySecret>) -> LazyFrame {
    let likert = col("scale").eq(lit("likert5"));
    let mut aggs = vec![likert.clone().cast(DataType::Float64).sum().alias("__a0"), len().cast(DataType::Float64).alias("__a1")];
    let lf = lf.filter(col(outcome).is_not_null());
    let lf = match record_keys {
        Some(secret) => {
            // Their record keys: [on Likert, on any scale].
            aggs.push(key_sum(likert).alias("__k0"));
            aggs.push(col(RECORD_KEY).sum().alias("__k1"));
            lf.with_column(secret.record_key_expr())
        }
        None => lf,
    };
    lf.group_by(keys).agg(aggs)
}

/// The warning of a group whose responses have no Likert driver answers.
pub const NO_LIKERT: &str = "no Likert answers to the drivers in this group: for tapped-indicator surveys (Touchpoints A-11 v2: thumbs or 1-5 trust with what went well / what didn't go so well) use tappedDriverImportance";

/// Sums of [`candidates_plan`].
const CANDIDATE_SUMS: usize = 2;

/// Tapped-indicator sums per group over every response shown the tap list, whatever the scale
/// of its trust question (Touchpoints A-11 v2 asks it on thumbs or, in its `a11_v2_radio`
/// variant, 1-5): a tap column that is not null was shown.
fn taps_plan(lf: LazyFrame, weighted: bool, keys: Vec<Expr>, record_keys: Option<&CellKeySecret>) -> LazyFrame {
    let w = if weighted { col("weight") } else { lit(1.0) };
    let mut aggs = Vec::new();
    // A perturbed view: per topic [shown, positive, negative] counts and record keys.
    let mut key_aggs = Vec::new();
    if record_keys.is_some() {
        for t in TAP_TOPICS {
            let (pos, neg) = (tap_column(t, true), tap_column(t, false));
            let shown = col(pos.as_str()).is_not_null();
            let (p, n) = (col(pos.as_str()).eq(lit(true)), col(neg.as_str()).eq(lit(true)));
            key_aggs.push(key_sum(shown));
            key_aggs.push(p.clone().sum().cast(DataType::UInt64));
            key_aggs.push(key_sum(p));
            key_aggs.push(n.clone().sum().cast(DataType::UInt64));
            key_aggs.push(key_sum(n));
        }
    }
    for t in TAP_TOPICS {
        let (pos, neg) = (tap_column(t, true), tap_column(t, false));
        let shown = col(pos.as_str()).is_not_null();
        let u = when(shown.clone()).then(w.clone()).otherwise(lit(0.0));
        aggs.push(shown.sum().cast(DataType::Float64));
        aggs.push(u.clone().sum());
        aggs.push((u.clone() * u).sum());
        aggs.push(when(col(pos.as_str()).eq(lit(true))).then(w.clone()).otherwise(lit(0.0)).sum());
        aggs.push(when(col(neg.as_str()).eq(lit(true))).then(w.clone()).otherwise(lit(0.0)).sum());
    }
    let mut aggs: Vec<Expr> = aggs.into_iter().enumerate().map(|(k, e)| e.alias(format!("__a{k}"))).collect();
    aggs.extend(key_aggs.into_iter().enumerate().map(|(k, e)| e.cast(DataType::UInt64).alias(format!("__k{k}"))));
    let shown_any = tap_columns().map(|c| col(c.as_str()).is_not_null()).reduce(|a, b| a.or(b)).expect("tap topics");
    let lf = lf.filter(shown_any);
    let lf = match record_keys {
        Some(secret) => lf.with_column(secret.record_key_expr()),
        None => lf,
    };
    lf.group_by(keys).agg(aggs)
}

/// Per tap topic in [`taps_plan`]'s key sums: [key shown, positive count, key, negative count,
/// key].
const TAP_KEYS: usize = 5;

/// Reads a collected plan into sums per group (and per bucket, in bucket order: polars returns
/// groups in no fixed order, and neither the Poisson draws nor the floating-point sums may
/// depend on it).
fn read_sums(df: &DataFrame, q: &DriverQuery, n: usize, bucketed: bool) -> PolarsResult<BTreeMap<GroupKey, Vec<Vec<f64>>>> {
    let reader = KeyReader::new(df, &q.group_by, q.period)?;
    let cols: Vec<&Float64Chunked> = (0..n).map(|k| df.column(&format!("__a{k}")).and_then(|c| c.f64())).collect::<PolarsResult<_>>()?;
    let bucket = if bucketed { Some(df.column("__bucket")?.cast(&DataType::UInt32)?) } else { None };
    let bucket = bucket.as_ref().map(|c| c.u32()).transpose()?;
    let mut groups: BTreeMap<GroupKey, Vec<(u32, Vec<f64>)>> = BTreeMap::new();
    for i in 0..df.height() {
        let b = bucket.and_then(|c| c.get(i)).unwrap_or(0);
        groups.entry(reader.key(i)).or_default().push((b, cols.iter().map(|c| c.get(i).unwrap_or(0.0)).collect()));
    }
    Ok(groups
        .into_iter()
        .map(|(k, mut rows)| {
            rows.sort_by_key(|r| r.0);
            (k, rows.into_iter().map(|r| r.1).collect())
        })
        .collect())
}

impl Analytics {
    /// Runs a driver-importance query.
    pub async fn driver_importance(&self, q: &DriverQuery) -> Result<Vec<DriverGroup>, AnalyticsError> {
        self.catalog().check(&q.filter)?;
        self.check_published(&q.filter, &q.group_by, q.period)?;
        if !matches!(q.outcome, Measure::Trust | Measure::Satisfaction) {
            return Err(AnalyticsError::invalid("outcome", format!("{} is a driver; the outcome is trust or satisfaction", q.outcome)));
        }
        if q.drivers.is_empty() {
            return Err(AnalyticsError::invalid("drivers", "name at least one driver".into()));
        }
        if let Some(b) = q.bootstrap {
            if b == 0 || b > MAX_BOOTSTRAP {
                return Err(AnalyticsError::invalid("bootstrap", format!("{b} replicates: ask for 1 to {MAX_BOOTSTRAP}")));
            }
        }
        self.rollups_or_raw(|use_rollups| self.drivers_via(q, use_rollups)).await
    }

    /// `driver_importance`, from the moments rollups where `use_rollups` and they cover the
    /// query (`route_among`). A bootstrap (it draws buckets of rows), tapped indicators (the
    /// rollups hold no tap columns) and a perturbed view (record keys belong to rows) read raw
    /// rows. An error says whether rollups were read.
    async fn drivers_via(&self, q: &DriverQuery, use_rollups: bool) -> Result<Vec<DriverGroup>, (AnalyticsError, bool)> {
        let allowed = use_rollups && q.bootstrap.is_none() && !q.taps;
        let pieces = self.pieces(allowed, &Rollup::MOMENTS, &q.filter, &q.group_by, q.period);
        let (inputs, served) = self.inputs(pieces).await?;
        let raw: Vec<cx_lake::DataFile> = inputs.iter().flat_map(|i| i.raw.iter().cloned()).collect();
        if served.rollup_files == 0 && served.raw_files == 0 {
            self.log_served(&served);
            return Ok(Vec::new());
        }
        let mut sources = Vec::new();
        for input in inputs {
            if !input.raw.is_empty() {
                let lf = self.lake.scan_responses(&input.raw).map_err(|e| (e.into(), false))?;
                sources.push(Source::Raw { lf: Box::new(lf), filter: input.filter.clone() });
            }
            if let Some((kind, files)) = input.rollup {
                sources.push(Source::Rollup { kind, files, wanted: input.wanted, filter: input.filter });
            }
        }
        let (lake, q2) = (self.lake.clone(), q.clone());
        let suppression = self.suppression;
        let perturb = self.perturb.clone();
        let max_groups = self.max_groups;
        let groups = self
            .blocking(Weight::Heavy, move |cancel| run(&lake, sources, &q2, suppression, max_groups, perturb.as_ref(), cancel))
            .await
            .map_err(|e| (self.explain_failure(&raw, e), served.rollup_files > 0))?;
        self.log_served(&served);
        tracing::debug!(
            path = served.path(),
            rollup_files = served.rollup_files,
            rollup_rows = served.rollup_rows,
            raw_files = served.raw_files,
            "driver importance served"
        );
        Ok(groups)
    }
}

/// Where a part of a driver-importance query's sums comes from.
enum Source {
    /// Raw rows (a scan) within `filter`.
    Raw { lf: Box<LazyFrame>, filter: Filter },
    /// Rollup `kind`'s files `wanted` (indices in `files`) within `filter`.
    Rollup { kind: Rollup, files: RollupFiles, wanted: Vec<u32>, filter: Filter },
}

/// Patterns of a moments rollup (`PATTERN`) in which every question of `bits` was answered.
fn containing(bits: i32) -> Expr {
    let n = Measure::all().len();
    let all: Vec<i32> = (0..1i32 << n).filter(|p| p & bits == bits).collect();
    col(PATTERN).is_in(lit(Series::new("patterns".into(), all)).implode(false), false)
}

/// The main plan's sums (`Layout`) and the candidates' (`candidates_plan`) per group from the
/// rows of a moments rollup: sums of moments over the patterns that answer what each sum needs.
fn rollup_plans(
    lake: &cx_lake::Lake,
    source: (Rollup, &RollupFiles, &[u32], &Filter),
    q: &DriverQuery,
    layout: &Layout,
) -> Result<(LazyFrame, LazyFrame), AnalyticsError> {
    let (kind, files, wanted, filter) = source;
    let rows = rollup_rows(lake, kind, files, wanted, filter, &[Part::Sums])?;
    let keys = key_exprs(&q.group_by, q.period);
    let idx: Vec<usize> = std::iter::once(q.outcome).chain(q.drivers.iter().map(|d| Measure::Driver(*d))).map(moment_index).collect();
    let bit = |i: usize| 1i32 << idx[i];
    let weighted = q.weighted;
    let sum = |c: &str| col(c).cast(DataType::Float64).sum();
    let sum_where = |set: Expr, c: &str| when(set).then(col(c).cast(DataType::Float64)).otherwise(lit(0.0)).sum();
    let (w, w2) = if weighted { (SUM_W, SUM_W2) } else { (ROWS, ROWS) };
    let mut out: Vec<Expr> = Vec::new();
    let likert = rows.clone().filter(col("scale").eq(lit("likert5")));
    let main = match layout.missing {
        Missing::Listwise => {
            let all = (0..layout.p).fold(0, |acc, i| acc | bit(i));
            out.extend([sum(ROWS), sum(w), sum(w2)]);
            out.extend((0..layout.p).map(|i| sum(&moment_x(idx[i], weighted))));
            out.extend(layout.pairs().into_iter().map(|(i, j)| sum(&moment_xx(idx[i], idx[j], weighted))));
            for &d in &idx[1..] {
                out.push(sum(w));
                out.push(sum(&moment_agree(d, weighted)));
            }
            likert.filter(containing(all))
        }
        Missing::Pairwise => {
            for i in 0..layout.p {
                for j in (i + 1)..layout.p {
                    let both = || containing(bit(i) | bit(j));
                    for c in [ROWS, w, w2] {
                        out.push(sum_where(both(), c));
                    }
                    for c in [moment_x(idx[i], weighted), moment_x(idx[j], weighted), moment_xx(idx[i], idx[i], weighted), moment_xx(idx[j], idx[j], weighted)]
                    {
                        out.push(sum_where(both(), &c));
                    }
                    out.push(sum_where(both(), &moment_xx(idx[i], idx[j], weighted)));
                }
            }
            for (i, &d) in idx.iter().enumerate().skip(1) {
                let used = || containing(bit(0) | bit(i));
                out.push(sum_where(used(), w));
                out.push(sum_where(used(), &moment_agree(d, weighted)));
            }
            likert
        }
    };
    let aggs: Vec<Expr> = out.into_iter().enumerate().map(|(k, e)| e.alias(format!("__a{k}"))).collect();
    let main = main.group_by(keys.clone()).agg(aggs);
    let is_likert = col("scale").eq(lit("likert5"));
    let candidates = rows
        .filter(containing(bit(0)))
        .group_by(keys)
        .agg([when(is_likert).then(col(ROWS).cast(DataType::Float64)).otherwise(lit(0.0)).sum().alias("__a0"), sum(ROWS).alias("__a1")]);
    Ok((main, candidates))
}

/// Plans from several sources summed per group (the sums of `n` columns `__a{k}`).
fn summed_plans(plans: Vec<LazyFrame>, q: &DriverQuery, n: usize) -> PolarsResult<LazyFrame> {
    if plans.len() == 1 {
        return Ok(plans.into_iter().next().expect("one plan"));
    }
    let keys: Vec<Expr> = key_names(&q.group_by, q.period).iter().map(|c| col(c.as_str())).collect();
    let sums: Vec<Expr> = (0..n).map(|k| col(format!("__a{k}")).sum()).collect();
    Ok(concat(plans, UnionArgs { rechunk: false, ..Default::default() })?.group_by(keys).agg(sums))
}

fn run(
    lake: &cx_lake::Lake,
    sources: Vec<Source>,
    q: &DriverQuery,
    suppression: Suppression,
    max_groups: usize,
    perturb: Option<&CellKeySecret>,
    cancel: &super::Cancel,
) -> Result<Vec<DriverGroup>, AnalyticsError> {
    let vars: Vec<&str> = std::iter::once(q.outcome.column()).chain(q.drivers.iter().map(|d| d.as_str())).collect();
    let layout = Layout { p: vars.len(), missing: q.missing };
    let key_layout = KeyLayout { p: vars.len(), missing: q.missing };
    // A perturbed view adds the record keys to the rows used and sums them beside the moments.
    let with_keys = |lf: LazyFrame| match perturb {
        Some(secret) => lf.with_column(secret.record_key_expr()),
        None => lf,
    };
    let mut aggregates = layout.aggregates(&vars, q.weighted);
    if perturb.is_some() {
        aggregates.extend(key_layout.aggregates(&vars));
    }
    let keys = key_exprs(&q.group_by, q.period);
    let collect = |lf: LazyFrame| {
        let start = std::time::Instant::now();
        let df = lf.collect_with_engine(Engine::Streaming).map(|r| r.unwrap_single());
        tracing::debug!(elapsed = ?start.elapsed(), "driver importance plan collected");
        df
    };
    // Bootstrap buckets, record keys and tapped indicators come from one source of raw rows
    // (`drivers_via` reads nothing else for them).
    let single_raw = matches!(sources.as_slice(), [Source::Raw { .. }]);
    if (q.bootstrap.is_some() || perturb.is_some() || q.taps) && !single_raw {
        return Err(AnalyticsError::Task("bootstrap, taps and perturbed views read one source of raw rows".into()));
    }
    let (mut mains, mut candidate_plans, mut filtered_raw) = (Vec::new(), Vec::new(), None);
    for source in sources {
        match source {
            Source::Raw { lf, filter } => {
                let lf = gated(*lf, cancel);
                let filtered = match filter.predicate() {
                    Some(p) => lf.clone().filter(p),
                    None => lf.clone(),
                };
                // The main pass; with a bootstrap, rows also fall into buckets by their position in the scan.
                let main = match q.bootstrap {
                    Some(_) => {
                        let lf = lf.with_row_index("__row", None);
                        let lf = match filter.predicate() {
                            Some(p) => lf.filter(p),
                            None => lf,
                        };
                        let mut bucketed = keys.clone();
                        bucketed.push((col("__row") % lit(BOOTSTRAP_BUCKETS)).alias("__bucket"));
                        with_keys(layout.prepare(lf, &vars, q.weighted)).group_by(bucketed)
                    }
                    None => with_keys(layout.prepare(filtered.clone(), &vars, q.weighted)).group_by(keys.clone()),
                }
                .agg(aggregates.clone());
                mains.push(main);
                candidate_plans.push(candidates_plan(filtered.clone(), vars[0], keys.clone(), perturb));
                filtered_raw = Some(filtered);
            }
            Source::Rollup { kind, files, wanted, filter } => {
                let (main, candidates) = rollup_plans(lake, (kind, &files, &wanted, &filter), q, &layout)?;
                mains.push(main);
                candidate_plans.push(candidates);
            }
        }
    }
    let main = collect(summed_plans(mains, q, layout.len())?)?;
    let main_keys = if perturb.is_some() { read_keys(&main, q, key_layout.len())? } else { BTreeMap::new() };
    let main = read_sums(&main, q, layout.len(), q.bootstrap.is_some())?;
    cancel.check()?;
    let candidates = collect(summed_plans(candidate_plans, q, CANDIDATE_SUMS)?)?;
    let candidate_keys = if perturb.is_some() { read_keys(&candidates, q, CANDIDATE_SUMS)? } else { BTreeMap::new() };
    let candidates = read_sums(&candidates, q, CANDIDATE_SUMS, false)?;
    let (taps, tap_keys) = match (q.taps, filtered_raw) {
        (true, Some(filtered)) => {
            let df = collect(taps_plan(filtered, q.weighted, keys, perturb))?;
            let tap_keys = if perturb.is_some() { read_keys(&df, q, TAP_KEYS * TAP_TOPICS.len())? } else { BTreeMap::new() };
            (read_sums(&df, q, TAP_SUMS * TAP_TOPICS.len(), false)?, tap_keys)
        }
        _ => (BTreeMap::new(), BTreeMap::new()),
    };

    cancel.check()?;
    // A group appears when it has a response used for importance, a response answering the
    // outcome (with a warning when none is on the Likert scale) or, with taps, a response shown
    // the tap list.
    let mut all: BTreeMap<GroupKey, Vec<Vec<f64>>> = main;
    for key in taps.keys().chain(candidates.keys()) {
        all.entry(key.clone()).or_default();
    }
    if all.len() > max_groups {
        return Err(AnalyticsError::TooManyGroups { groups: all.len(), max: max_groups });
    }
    let groups: Vec<DriverGroup> = all
        .into_par_iter()
        .map(|(key, buckets)| {
            let total = sum_rows(buckets.iter().map(|b| (b.as_slice(), 1.0)), layout.len());
            let first = |m: &BTreeMap<GroupKey, Vec<Vec<f64>>>| m.get(&key).and_then(|v| v.first().cloned());
            let answered = first(&candidates).unwrap_or_else(|| vec![0.0; CANDIDATE_SUMS]);
            let likert = (q.count_dropped && q.missing == Missing::Listwise).then_some(answered[0].round() as u64);
            // A perturbed view: the counts shown, each perturbed by the cell key of its records.
            let published = perturb.map(|_| {
                let k = main_keys.get(&key).cloned().unwrap_or_else(|| vec![0; key_layout.len()]);
                let c = candidate_keys.get(&key).cloned().unwrap_or_else(|| vec![0; CANDIDATE_SUMS]);
                let mut p = Published::of(&layout, &key_layout, &total, &k, &c, &answered);
                // Moved to the side of the minimum the true n is on (`Suppression::clip`).
                p.n = Suppression::clip(p.n, p.true_n < suppression.min_cell_drivers, suppression.min_cell_drivers);
                p
            });
            let mut group = assess(key.clone(), &layout, &total, likert, q, published.as_ref());
            let true_n = group.n;
            // Said even when the group is suppressed: it holds no estimate, only counts.
            let no_likert = (true_n == 0 && answered[0] == 0.0).then(|| {
                let (all, on_likert) = match &published {
                    Some(p) => p.answering,
                    None => (answered[1].round() as u64, answered[0].round() as u64),
                };
                format!("{NO_LIKERT} ({all} responses answer {}, {on_likert} of them on the Likert scale)", q.outcome)
            });
            if q.taps {
                let sums = first(&taps).unwrap_or_else(|| vec![0.0; TAP_SUMS * TAP_TOPICS.len()]);
                let shown: Vec<u64> = (0..TAP_TOPICS.len()).map(|t| sums[TAP_SUMS * t].round() as u64).collect();
                group.taps = match &published {
                    None => tap_stats(&sums, q.confidence),
                    Some(_) => {
                        let k = tap_keys.get(&key).cloned().unwrap_or_else(|| vec![0; TAP_KEYS * TAP_TOPICS.len()]);
                        tap_stats(&perturbed_tap_sums(&sums, &k), q.confidence)
                    }
                };
                for (t, true_shown) in group.taps.iter_mut().zip(shown) {
                    let reason = Suppression::check_shown(true_shown, suppression.min_cell, published.is_some());
                    if published.is_some() {
                        t.shown = Suppression::clip(t.shown, reason.is_some(), suppression.min_cell);
                    }
                    if let Some(reason) = reason {
                        t.suppress(reason);
                    }
                }
            }
            if let Some(p) = &published {
                group.n = p.n;
                group.n_dropped = group.n_dropped.and(p.dropped);
            }
            if let Some(reason) = Suppression::check_shown(true_n, suppression.min_cell_drivers, published.is_some()) {
                group.suppress(reason);
                // Without the counts: a suppressed group says nothing of its responses but n.
                if no_likert.is_some() {
                    group.warnings.push(NO_LIKERT.to_string());
                }
                return group;
            }
            group.warnings.splice(0..0, no_likert);
            if let (Some(b), None) = (q.bootstrap, &group.error) {
                bootstrap(&mut group, &layout, &buckets, &q.drivers, b, q.seed ^ key.stable_hash(), q.confidence, cancel);
            }
            group
        })
        .collect();
    // A bootstrap cut short by a cancellation is not a result.
    cancel.check()?;
    Ok(groups)
}

fn sum_rows<'a>(rows: impl Iterator<Item = (&'a [f64], f64)>, len: usize) -> Vec<f64> {
    let mut total = vec![0.0; len];
    for (row, factor) in rows {
        for (t, v) in total.iter_mut().zip(row) {
            *t += factor * v;
        }
    }
    total
}

/// The correlation matrix, the n used and Kish's effective n from a group's sums.
fn correlations(layout: &Layout, s: &[f64]) -> (Result<DMatrix<f64>, StatsError>, u64, f64) {
    let p = layout.p;
    match layout.missing {
        Missing::Listwise => {
            let m = s;
            let mut cp = CrossProducts::new(p);
            cp.count = m[0].round() as u64;
            cp.sum_w = m[1];
            cp.sum_w2 = m[2];
            cp.sum.copy_from_slice(&m[3..3 + p]);
            for (k, (i, j)) in layout.pairs().into_iter().enumerate() {
                cp.cross[i * p + j] = m[3 + p + k];
                cp.cross[j * p + i] = m[3 + p + k];
            }
            (cp.correlation(), cp.count, cp.n_effective())
        }
        Missing::Pairwise => {
            let mut index = BTreeMap::new();
            let mut k = 0;
            for i in 0..p {
                for j in (i + 1)..p {
                    let v = &s[k..k + 8];
                    index.insert(
                        (i, j),
                        PairSums { count: v[0].round() as u64, sum_w: v[1], sum_w2: v[2], sum_i: v[3], sum_j: v[4], sum_ii: v[5], sum_jj: v[6], sum_ij: v[7] },
                    );
                    k += 8;
                }
            }
            let n = index.values().map(|s| s.count).min().unwrap_or(0);
            let n_eff = index.values().map(|s| cx_stats::descriptive::kish_n_effective(s.sum_w, s.sum_w2)).fold(f64::INFINITY, f64::min);
            (pairwise_correlation(p, |i, j| index[&(i, j)].clone()), n, if n_eff.is_finite() { n_eff } else { 0.0 })
        }
    }
}

/// Names a statistics error in the terms of the query (variable names, not indices).
fn explain(e: &StatsError, vars: &[String]) -> String {
    match e {
        StatsError::ConstantVariable { index } => {
            format!("'{}' has the same answer in every response used, so its importance is undefined", vars[*index])
        }
        other => other.to_string(),
    }
}

/// The counts a perturbed view shows of one group, each perturbed by the cell key of its own
/// records (`stats::cellkey`), with the true counts they stand for.
struct Published {
    /// The n shown (listwise: the rows used; pairwise: the smallest pair's rows), and the true n.
    n: u64,
    true_n: u64,
    /// Likert responses answering the outcome but not used (listwise).
    dropped: Option<u64>,
    /// Per driver: (rows used answering it: true, shown; of them agreeing: true, shown).
    performance: Vec<(u64, u64, u64, u64)>,
    /// Responses answering the outcome: (on any scale, on Likert), shown.
    answering: (u64, u64),
}

impl Published {
    /// From a group's moments (`total`), its key sums (`keys`, [`KeyLayout`]), its candidates'
    /// key sums (`candidate_keys`: [Likert, any]) and counts (`answered`: [Likert, any]).
    fn of(layout: &Layout, key_layout: &KeyLayout, total: &[f64], keys: &[u64], candidate_keys: &[u64], answered: &[f64]) -> Published {
        let shown = |n: u64, key: u64| perturb_count(n, cell_key(key));
        // The rows used by each driver's performance (and their key), and the n of the group.
        let (n, key, per_driver): (u64, u64, Vec<(u64, u64)>) = match layout.missing {
            Missing::Listwise => {
                let n = total[0].round() as u64;
                (n, keys[0], vec![(n, keys[0]); layout.p - 1])
            }
            Missing::Pairwise => {
                let pairs = layout.p * (layout.p - 1) / 2;
                let counts: Vec<u64> = (0..pairs).map(|k| total[8 * k].round() as u64).collect();
                // The smallest pair, the first of equals (pairs in (i, j) order).
                let (min, _) = counts.iter().enumerate().fold((0, u64::MAX), |(bi, bn), (i, &c)| if c < bn { (i, c) } else { (bi, bn) });
                // Pairs (0, d) come first, in driver order.
                (counts[min], keys[min], (0..layout.p - 1).map(|d| (counts[d], keys[d])).collect())
            }
        };
        let start = key_layout.used_len();
        let performance = per_driver
            .iter()
            .enumerate()
            .map(|(d, &(m, mk))| {
                let (a, ak) = (keys[start + 2 * d], keys[start + 2 * d + 1]);
                (m, shown(m, mk), a, shown(a, ak))
            })
            .collect();
        let likert = answered[0].round() as u64;
        Published {
            n: shown(n, key),
            true_n: n,
            dropped: (layout.missing == Missing::Listwise).then(|| shown(likert.saturating_sub(n), candidate_keys[0].wrapping_sub(key))),
            performance,
            answering: (shown(answered[1].round() as u64, candidate_keys[1]), shown(likert, candidate_keys[0])),
        }
    }
}

/// The tapped-indicator sums of a perturbed view: per topic the count shown the list and the
/// positive and negative taps perturbed by their cell keys ([`taps_plan`]'s key sums), the
/// sums of weights scaled alike (the cell's mean weight kept), a share at most 1.
fn perturbed_tap_sums(sums: &[f64], keys: &[u64]) -> Vec<f64> {
    let mut out = sums.to_vec();
    for t in 0..TAP_TOPICS.len() {
        let (v, k) = (&sums[TAP_SUMS * t..TAP_SUMS * (t + 1)], &keys[TAP_KEYS * t..TAP_KEYS * (t + 1)]);
        let factor = |n: u64, key: u64| if n > 0 { perturb_count(n, cell_key(key)) as f64 / n as f64 } else { 0.0 };
        let shown = v[0].round() as u64;
        let f = factor(shown, k[0]);
        let sw = v[1] * f;
        out[TAP_SUMS * t..TAP_SUMS * (t + 1)].copy_from_slice(&[
            perturb_count(shown, cell_key(k[0])) as f64,
            sw,
            v[2] * f,
            (v[3] * factor(k[1], k[2])).min(sw),
            (v[4] * factor(k[3], k[4])).min(sw),
        ]);
    }
    out
}

/// Every estimate of one group from its summed aggregates. With `published` (a perturbed
/// view), the effective n, the adjusted R², the small-n warning and each driver's performance
/// come from the perturbed counts; the model's estimates from the exact sums (see
/// `analytics::suppression` on why differencing them gives no cell's counts). `n` and
/// `n_dropped` stay true here (the caller decides suppression on them, then shows the
/// perturbed ones).
fn assess(key: GroupKey, layout: &Layout, s: &[f64], candidates: Option<u64>, q: &DriverQuery, published: Option<&Published>) -> DriverGroup {
    let (drivers, weighted) = (&q.drivers, q.weighted);
    let k = drivers.len();
    let (corr, n, n_eff) = correlations(layout, s);
    let n_eff = if weighted { n_eff } else { n as f64 };
    // The n the view shows: the effective n scaled to it.
    let (n_shown, n_eff) = match published {
        Some(p) => (p.n, if n > 0 { n_eff * p.n as f64 / n as f64 } else { 0.0 }),
        None => (n, n_eff),
    };
    let perf: Vec<Option<f64>> = (0..k)
        .map(|d| {
            let (answered, agree) = (s[layout.perf_start() + 2 * d], s[layout.perf_start() + 2 * d + 1]);
            match published.map(|p| p.performance[d]) {
                None => (answered > 0.0).then(|| agree / answered),
                // Sums of weights scaled by the perturbed counts (unweighted: a′ / m′).
                Some((m, m_shown, a, a_shown)) => {
                    let answered = if m > 0 { answered * m_shown as f64 / m as f64 } else { 0.0 };
                    let agree = if a > 0 { agree * a_shown as f64 / a as f64 } else { 0.0 };
                    (answered > 0.0).then(|| (agree / answered).min(1.0))
                }
            }
        })
        .collect();
    let names: Vec<String> = std::iter::once(q.outcome.to_string()).chain(drivers.iter().map(|d| d.to_string())).collect();
    let result = corr.and_then(|r| importance(&r, n_eff));
    let mut group = DriverGroup {
        key,
        n,
        n_dropped: candidates.map(|c| c.saturating_sub(n)),
        n_effective: n_eff,
        r2: None,
        adj_r2: None,
        error: None,
        warnings: Vec::new(),
        drivers: Vec::new(),
        taps: Vec::new(),
        bootstrap_replicates: 0,
        suppressed: None,
        perturbed: published.is_some(),
    };
    let minimum = (10 * k).max(30);
    if (n_shown as usize) < minimum {
        group.warnings.push(format!("n = {n_shown} is below max(30, 10 x {k} drivers) = {minimum}: estimates are unstable"));
    }
    match result {
        Err(e) => {
            group.error = Some(explain(&e, &names));
            group.drivers = drivers.iter().zip(&perf).map(|(d, p)| DriverStat { driver: *d, performance: *p, ..empty_stat(*d) }).collect();
        }
        Ok(imp) => {
            group.r2 = Some(imp.ols.r2);
            group.adj_r2 = imp.ols.adj_r2;
            let js = Importance::shares(&imp.johnson);
            let ss = Importance::shares(&imp.shapley);
            let mut order: Vec<usize> = (0..k).collect();
            order.sort_by(|&a, &b| imp.shapley[b].total_cmp(&imp.shapley[a]));
            for (d, vif) in drivers.iter().zip(&imp.ols.vif) {
                if *vif > VIF_WARNING {
                    group.warnings.push(format!("VIF of {d} is {vif:.1} (> {VIF_WARNING}): drivers overlap strongly"));
                }
            }
            group.drivers = (0..k)
                .map(|j| DriverStat {
                    driver: drivers[j],
                    r: Some(imp.ols.r[j]),
                    beta: Some(imp.ols.beta[j]),
                    first: Some(imp.first[j]),
                    last: Some(imp.last[j]),
                    pratt: Some(imp.pratt[j]),
                    johnson: Some(imp.johnson[j]),
                    johnson_share: js.as_ref().map(|v| v[j]),
                    shapley: Some(imp.shapley[j]),
                    shapley_share: ss.as_ref().map(|v| v[j]),
                    rank: Some(order.iter().position(|&o| o == j).expect("in order") as u32 + 1),
                    vif: Some(imp.ols.vif[j]),
                    performance: perf[j],
                    ..empty_stat(drivers[j])
                })
                .collect();
            assign_quadrants(&mut group.drivers);
        }
    }
    group
}

fn empty_stat(driver: Driver) -> DriverStat {
    DriverStat {
        driver,
        r: None,
        beta: None,
        first: None,
        last: None,
        pratt: None,
        johnson: None,
        johnson_share: None,
        shapley: None,
        shapley_share: None,
        rank: None,
        vif: None,
        performance: None,
        quadrant: None,
        johnson_ci: None,
        johnson_share_ci: None,
        shapley_ci: None,
        shapley_share_ci: None,
    }
}

/// Quadrants relative to the averages of importance (Shapley share) and performance over the
/// group's drivers; a value at the average counts as high.
fn assign_quadrants(stats: &mut [DriverStat]) {
    let points: Vec<(f64, f64)> = stats.iter().filter_map(|s| s.shapley_share.zip(s.performance)).collect();
    if points.is_empty() {
        return;
    }
    let mean_i = points.iter().map(|p| p.0).sum::<f64>() / points.len() as f64;
    let mean_p = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
    for s in stats {
        s.quadrant = s.shapley_share.zip(s.performance).map(|(i, p)| match (i >= mean_i, p >= mean_p) {
            (true, true) => Quadrant::MaintainStrength,
            (true, false) => Quadrant::FixFirst,
            (false, false) => Quadrant::Secondary,
            (false, true) => Quadrant::PossibleOverinvestment,
        });
    }
}

fn tap_stats(s: &[f64], confidence: f64) -> Vec<TapStat> {
    TAP_TOPICS
        .iter()
        .enumerate()
        .map(|(t, topic)| {
            let v = &s[TAP_SUMS * t..TAP_SUMS * (t + 1)];
            let (shown, sw, sw2, pos, neg) = (v[0].round() as u64, v[1], v[2], v[3], v[4]);
            let n_eff = cx_stats::descriptive::kish_n_effective(sw, sw2);
            let share = |x: f64| (sw > 0.0).then(|| x / sw);
            let (ps, ns) = (share(pos), share(neg));
            TapStat {
                topic: topic.to_string(),
                shown,
                positive_share: ps,
                positive_ci: ps.and_then(|p| wilson(p, n_eff, confidence)),
                negative_share: ns,
                negative_ci: ns.and_then(|p| wilson(p, n_eff, confidence)),
                suppressed: None,
            }
        })
        .collect()
}

/// Percentile bootstrap intervals of Johnson and Shapley (raw and share) from `b` replicates,
/// each the Poisson(1)-weighted sum of the group's buckets.
#[allow(clippy::too_many_arguments)]
fn bootstrap(group: &mut DriverGroup, layout: &Layout, buckets: &[Vec<f64>], drivers: &[Driver], b: u32, seed: u64, confidence: f64, cancel: &super::Cancel) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let poisson = Poisson::new(1.0).expect("valid rate");
    let k = drivers.len();
    let mut draws: [Vec<Vec<f64>>; 4] = std::array::from_fn(|_| vec![Vec::with_capacity(b as usize); k]);
    let mut ok = 0;
    for _ in 0..b {
        if cancel.is_cancelled() {
            return;
        }
        let factors: Vec<f64> = buckets.iter().map(|_| poisson.sample(&mut rng)).collect();
        let sums = sum_rows(buckets.iter().map(|r| r.as_slice()).zip(factors), layout.len());
        let (corr, n, n_eff) = correlations(layout, &sums);
        let n = if n_eff > 0.0 && n_eff < n as f64 { n_eff } else { n as f64 };
        let Ok(imp) = corr.and_then(|r| importance(&r, n)) else { continue };
        let (Some(js), Some(ss)) = (Importance::shares(&imp.johnson), Importance::shares(&imp.shapley)) else { continue };
        ok += 1;
        for j in 0..k {
            draws[0][j].push(imp.johnson[j]);
            draws[1][j].push(js[j]);
            draws[2][j].push(imp.shapley[j]);
            draws[3][j].push(ss[j]);
        }
    }
    group.bootstrap_replicates = ok;
    if ok < 2 {
        group.warnings.push(format!("only {ok} of {b} bootstrap replicates gave estimates: no intervals"));
        return;
    }
    if ok < b {
        group.warnings.push(format!("{} of {b} bootstrap replicates were degenerate and left out", b - ok));
    }
    let alpha = (1.0 - confidence) / 2.0;
    for (j, stat) in group.drivers.iter_mut().enumerate() {
        let ci = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            Some(Interval { low: quantile(v, alpha), high: quantile(v, 1.0 - alpha) })
        };
        stat.johnson_ci = ci(&mut draws[0][j]);
        stat.johnson_share_ci = ci(&mut draws[1][j]);
        stat.shapley_ci = ci(&mut draws[2][j]);
        stat.shapley_share_ci = ci(&mut draws[3][j]);
    }
}

use cx_stats::descriptive::quantile_sorted as quantile;

/// Driver importance of an outcome for plain numeric rows (the `kda` command): the same
/// estimates as for a lake group, from sums accumulated by the caller. `names[0]` is the
/// outcome.
pub fn assess_cross_products(cp: &CrossProducts, names: &[String]) -> Result<(Importance, f64), String> {
    let r = cp.correlation().map_err(|e| explain(&e, names))?;
    let n = cp.count as f64;
    importance(&r, n).map(|imp| (imp, n)).map_err(|e| explain(&e, names))
}

/// Key driver analysis of a numeric CSV file (`cxlake kda`).
#[derive(Debug, Clone)]
pub struct KdaReport {
    pub outcome: String,
    pub drivers: Vec<String>,
    /// Data rows read and rows used (complete on the outcome and every driver).
    pub rows_read: u64,
    pub n: u64,
    pub importance: Importance,
}

/// Key driver analysis of rows of numbers (`cxlake kda` feeds it the complete rows of a CSV
/// file, read by `cx_ingest::numeric_csv`): the outcome first, then the drivers, in one pass.
pub struct Kda {
    outcome: String,
    drivers: Vec<String>,
    cp: CrossProducts,
    /// The first row: sums of products of rows shifted by it stay well conditioned.
    shift: Option<Vec<f64>>,
}

impl Kda {
    pub fn new(outcome: &str, drivers: &[String]) -> Result<Kda, AnalyticsError> {
        if drivers.is_empty() {
            return Err(AnalyticsError::invalid("drivers", "name at least one driver column".into()));
        }
        Ok(Kda { outcome: outcome.to_string(), drivers: drivers.to_vec(), cp: CrossProducts::new(drivers.len() + 1), shift: None })
    }

    /// The columns a row holds, in order: the outcome, then the drivers.
    pub fn columns(&self) -> Vec<String> {
        std::iter::once(self.outcome.clone()).chain(self.drivers.iter().cloned()).collect()
    }

    /// Adds one complete row (`columns` order).
    pub fn add(&mut self, row: &[f64]) {
        let s = self.shift.get_or_insert_with(|| row.to_vec());
        let centred: Vec<f64> = row.iter().zip(s.iter()).map(|(x, c)| x - c).collect();
        self.cp.add_row(&centred, 1.0);
    }

    /// The analysis of the rows added; `source` names them in errors, `rows_read` counts the
    /// rows seen (complete or not).
    pub fn finish(self, source: &str, rows_read: u64) -> Result<KdaReport, AnalyticsError> {
        let names = std::iter::once(self.outcome.clone()).chain(self.drivers.iter().cloned()).collect::<Vec<_>>();
        let (importance, _) = assess_cross_products(&self.cp, &names).map_err(|m| AnalyticsError::invalid("csv", format!("{source}: {m}")))?;
        Ok(KdaReport { outcome: self.outcome, drivers: self.drivers, rows_read, n: self.cp.count, importance })
    }
}
