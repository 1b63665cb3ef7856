//! What drives trust on tapped-indicator surveys (A-11 280.10 design 1, the Touchpoints A-11 v2
//! form): trust (thumbs or 1-5) with "What went well?" / "What didn't go so well?" checkboxes
//! over the drivers.
//!
//! Every indicator is binary, so per group the distinct (scale, outcome value, indicators
//! offered, indicators tapped) cells with their counts and weight sums are sufficient statistics
//! of everything computed here: the logistic likelihood of "agrees" on the taps, the least
//! squares of the 1-5 value on the taps, the lift of each indicator, and the bootstrap. One
//! polars pass builds that table (at most 2^k offered × 2^k tapped cells per group and outcome
//! value, in practice a few hundred), or the taps rollups do where they cover the query
//! (`tapped_via`, `rollup_plan`); `cx_stats` fits on it, never on raw rows.
//!
//! The bootstrap draws each cell's count as Poisson(count): the sum of `count` independent
//! Poisson(1) row weights, so a replicate is exactly the row-level Poisson bootstrap (Hanley &
//! MacGibbon 2006) without reading rows again. With survey weights a cell's weight sum is drawn
//! as a·Poisson(λ) with λ = (Σw)²/Σw² and a = Σw²/Σw, which has the mean and variance of the
//! row-level Σ wᵢ·Poisson(1) (exact when the weights in a cell are equal).

use super::grouping::{key_exprs, key_names, GroupKey, KeyReader};
use super::rollups::rollup_rows;
use super::suppression::Suppression;
use super::{gated, Weight};
use super::{Analytics, AnalyticsError, Cancel, Filter};
use cx_domain::{Dimension, Measure, PeriodUnit, Scale, TapIndicator, TapTopic};
use cx_lake::rollup::{Part, Rollup, RollupFiles, ROWS, SHOWN, SUM_W, SUM_W2, TAPPED};
use cx_stats::logistic::{self, Dropped, Pattern};
use cx_stats::regression::{least_squares, r2_subset, split};
use cx_stats::{newcombe_difference, CrossProducts, Importance, Interval, StatsError};
use polars::prelude::*;
use rand::SeedableRng;
use rand_distr::{Distribution as _, Poisson};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use std::collections::BTreeMap;

/// How the outcome is modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TappedModel {
    /// Logistic regression of "agrees" (thumbs up, 4-5 on Likert), pooled over scales.
    Logistic,
    /// Least squares of the 1-5 value, Likert responses only.
    Linear,
}

/// A tapped-indicator importance query.
#[derive(Debug, Clone)]
pub struct TappedQuery {
    pub filter: Filter,
    pub group_by: Vec<Dimension>,
    pub period: Option<PeriodUnit>,
    /// Trust or satisfaction.
    pub outcome: Measure,
    pub model: TappedModel,
    /// The indicators of the model (default all fourteen); a topic's indicators form its set.
    pub indicators: Vec<TapIndicator>,
    pub weighted: bool,
    /// Bootstrap replicates for intervals of the importance values and shares.
    pub bootstrap: Option<u32>,
    pub seed: u64,
    pub confidence: f64,
}

impl Default for TappedQuery {
    fn default() -> Self {
        TappedQuery {
            filter: Filter::default(),
            group_by: Vec::new(),
            period: None,
            outcome: Measure::Trust,
            model: TappedModel::Logistic,
            indicators: TapIndicator::all(),
            weighted: false,
            bootstrap: None,
            seed: 2025,
            confidence: 0.95,
        }
    }
}

/// One indicator's coefficient.
#[derive(Debug, Clone, PartialEq)]
pub struct TapCoefficient {
    pub indicator: TapIndicator,
    /// Log-odds (logistic) or answer points (linear); `None` when dropped.
    pub estimate: Option<f64>,
    pub std_error: Option<f64>,
    /// Wald interval (normal for the logistic model, Student t for least squares).
    pub interval: Option<Interval>,
    pub p_value: Option<f64>,
    /// Why there is no estimate.
    pub dropped: Option<String>,
}

/// One topic (driver set: its went-well and didn't-go-well indicators together).
#[derive(Debug, Clone, PartialEq)]
pub struct TappedDriver {
    pub topic: TapTopic,
    /// General dominance: the Shapley value of McFadden's R² (logistic) or R² (linear) over the
    /// topic sets; the values sum to the full model's.
    pub importance: Option<f64>,
    pub share: Option<f64>,
    /// 1 = most important.
    pub rank: Option<u32>,
    /// Linear only: the sum of the set's Johnson relative weights, and its share.
    pub johnson: Option<f64>,
    pub johnson_share: Option<f64>,
    /// Bootstrap percentile intervals.
    pub importance_ci: Option<Interval>,
    pub share_ci: Option<Interval>,
}

/// The agree share of those who tapped an indicator against those shown it who did not.
#[derive(Debug, Clone, PartialEq)]
pub struct TapLift {
    pub indicator: TapIndicator,
    /// Responses shown the indicator that answered the outcome.
    pub shown: u64,
    pub tapped: u64,
    pub agree_tapped: Option<f64>,
    pub agree_not_tapped: Option<f64>,
    /// agree_tapped − agree_not_tapped, with Newcombe's hybrid score interval.
    pub difference: Option<f64>,
    pub interval: Option<Interval>,
    pub suppressed: Option<String>,
}

/// The result for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct TappedGroup {
    pub key: GroupKey,
    pub model: TappedModel,
    /// Responses used.
    pub n: u64,
    /// Responses answering the outcome shown some but not all of the model's indicators.
    pub n_dropped: u64,
    /// Responses answering the outcome shown none of the asked indicators.
    pub n_not_shown: u64,
    /// Responses shown an asked indicator that did not answer the outcome (left out).
    pub n_outcome_missing: u64,
    pub n_effective: f64,
    /// Logistic: (weighted) responses agreeing, log-likelihoods and pseudo-R²s.
    pub events: Option<f64>,
    pub log_likelihood: Option<f64>,
    pub null_log_likelihood: Option<f64>,
    pub mcfadden: Option<f64>,
    pub nagelkerke: Option<f64>,
    pub estrella: Option<f64>,
    /// Linear: R² and adjusted R².
    pub r2: Option<f64>,
    pub adj_r2: Option<f64>,
    pub intercept: Option<f64>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub bootstrap_replicates: u32,
    pub coefficients: Vec<TapCoefficient>,
    pub drivers: Vec<TappedDriver>,
    pub lift: Vec<TapLift>,
    pub suppressed: Option<String>,
}

/// One cell of the pattern table of a group.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cell {
    likert: bool,
    /// Whether the outcome was answered (`value` is 0 otherwise).
    answered: bool,
    value: i8,
    /// Bit j: asked indicator j was offered (its column not null).
    shown: u32,
    /// Bit j: asked indicator j was tapped.
    tapped: u32,
    count: u64,
    sum_w: f64,
    sum_w2: f64,
}

impl Cell {
    /// Whether the answer agrees (the domain's rule for its scale).
    fn agrees(&self) -> bool {
        let scale = if self.likert { Scale::Likert5 } else { Scale::Thumbs };
        scale.agrees(self.value.into())
    }
}

impl Analytics {
    /// Runs a tapped-indicator importance query.
    pub async fn tapped_importance(&self, q: &TappedQuery) -> Result<Vec<TappedGroup>, AnalyticsError> {
        self.catalog().check(&q.filter)?;
        if !matches!(q.outcome, Measure::Trust | Measure::Satisfaction) {
            return Err(AnalyticsError::invalid("outcome", format!("{} is a driver; the outcome is trust or satisfaction", q.outcome)));
        }
        if q.indicators.is_empty() {
            return Err(AnalyticsError::invalid("indicators", "name at least one indicator".into()));
        }
        if let Some(i) = q.indicators.iter().enumerate().find_map(|(i, x)| q.indicators[..i].contains(x).then_some(x)) {
            return Err(AnalyticsError::invalid("indicators", format!("{i} is named twice")));
        }
        if let Some(b) = q.bootstrap {
            if b == 0 || b > super::drivers::MAX_BOOTSTRAP {
                return Err(AnalyticsError::invalid("bootstrap", format!("{b} replicates: ask for 1 to {}", super::drivers::MAX_BOOTSTRAP)));
            }
        }
        self.rollups_or_raw(|use_rollups| self.tapped_via(q, use_rollups)).await
    }

    /// `tapped_importance`, its pattern table from the taps rollups where `use_rollups` and
    /// they cover the query (`route_among`; the bootstrap draws from the table's cells, so it
    /// is served by rollups too). An error says whether rollups were read.
    async fn tapped_via(&self, q: &TappedQuery, use_rollups: bool) -> Result<Vec<TappedGroup>, (AnalyticsError, bool)> {
        let pieces = self.pieces(use_rollups, &Rollup::TAPS, &q.filter, &q.group_by, q.period);
        let (inputs, served) = self.inputs(pieces).await?;
        let raw: Vec<cx_lake::DataFile> = inputs.iter().flat_map(|i| i.raw.iter().cloned()).collect();
        if served.rollup_files == 0 && served.raw_files == 0 {
            self.log_served(&served);
            return Ok(Vec::new());
        }
        let mut scans = Vec::new();
        for input in &inputs {
            scans.push(if input.raw.is_empty() { None } else { Some(self.lake.scan_responses(&input.raw).map_err(|e| (e.into(), false))?) });
        }
        let (lake, q2) = (self.lake.clone(), q.clone());
        let suppression = self.suppression;
        let max_groups = self.max_groups;
        let groups = self
            .blocking(Weight::Heavy, move |cancel| {
                let mut tables = Vec::new();
                for (input, scan) in inputs.into_iter().zip(scans) {
                    let piece = TappedQuery { filter: input.filter.clone(), ..q2.clone() };
                    if let Some(lf) = scan {
                        tables.push(plan(gated(lf, cancel), &piece));
                    }
                    if let Some((kind, files)) = &input.rollup {
                        tables.push(rollup_plan(&lake, *kind, files, &input.wanted, &piece)?);
                    }
                }
                let table = match tables.len() {
                    1 => tables.pop().expect("one table"),
                    _ => {
                        let mut keys: Vec<Expr> = key_names(&q2.group_by, q2.period).iter().map(|c| col(c.as_str())).collect();
                        keys.extend(["__likert", "__value", "__shown", "__tapped"].map(col));
                        concat(tables, UnionArgs { rechunk: false, ..Default::default() })?.group_by(keys).agg([
                            col("__n").sum(),
                            col("__w").sum(),
                            col("__w2").sum(),
                        ])
                    }
                };
                run(table, &q2, suppression, max_groups, cancel)
            })
            .await
            .map_err(|e| (self.explain_failure(&raw, e), served.rollup_files > 0))?;
        self.log_served(&served);
        tracing::debug!(
            path = served.path(),
            rollup_files = served.rollup_files,
            rollup_rows = served.rollup_rows,
            raw_files = served.raw_files,
            "tapped importance served"
        );
        Ok(groups)
    }
}

/// The pattern table (`plan`) from the rows of a taps rollup: the query's indicators' bits
/// taken out of the rollup's patterns of all fourteen, and the cells that then coincide summed.
fn rollup_plan(lake: &cx_lake::Lake, kind: Rollup, files: &RollupFiles, wanted: &[u32], q: &TappedQuery) -> Result<LazyFrame, AnalyticsError> {
    let rows = rollup_rows(lake, kind, files, wanted, &q.filter, &[Part::Sums])?;
    let all = TapIndicator::all();
    let bits = |column: &str| {
        q.indicators
            .iter()
            .enumerate()
            .map(|(j, ind)| {
                let at = all.iter().position(|x| x == ind).expect("every indicator is in all()");
                // Bit `at` of the pattern: its remainder modulo 2^(at+1) reaches 2^at.
                (col(column) % lit(2i32 << at)).gt_eq(lit(1i32 << at)).cast(DataType::UInt32) * lit(1u32 << j)
            })
            .reduce(|a, b| a + b)
            .expect("at least one indicator")
    };
    let outcome = col(q.outcome.column());
    let keep = outcome.clone().is_not_null().or(bits(SHOWN).neq(lit(0u32)));
    let mut keys = key_exprs(&q.group_by, q.period);
    keys.extend([
        col("scale").eq(lit("likert5")).alias("__likert"),
        outcome.cast(DataType::Int8).alias("__value"),
        bits(SHOWN).alias("__shown"),
        bits(TAPPED).alias("__tapped"),
    ]);
    let count = || col(ROWS).cast(DataType::Float64).sum();
    let (sum_w, sum_w2) = if q.weighted { (col(SUM_W).sum(), col(SUM_W2).sum()) } else { (count(), count()) };
    Ok(rows.filter(keep).group_by(keys).agg([col(ROWS).sum().cast(DataType::UInt64).alias("__n"), sum_w.alias("__w"), sum_w2.alias("__w2")]))
}

/// The pattern table: per group, (likert, value, shown, tapped) → count, Σw, Σw² over the
/// responses answering the outcome or shown an asked indicator (value null: not answered).
fn plan(lf: LazyFrame, q: &TappedQuery) -> LazyFrame {
    let outcome = col(q.outcome.column());
    // Responses answering the outcome, and those shown an asked indicator without answering it
    // (counted as such, then left out).
    let shown_any = q.indicators.iter().map(|i| col(i.column().as_str()).is_not_null()).reduce(|a, b| a.or(b)).expect("at least one indicator");
    let mut keep = outcome.clone().is_not_null().or(shown_any);
    if let Some(p) = q.filter.predicate() {
        keep = p.and(keep);
    }
    let bits = |f: &dyn Fn(Expr) -> Expr| {
        q.indicators
            .iter()
            .enumerate()
            .map(|(j, ind)| f(col(ind.column().as_str())).cast(DataType::UInt32) * lit(1u32 << j))
            .reduce(|a, b| a + b)
            .expect("at least one indicator")
    };
    let mut keys = key_exprs(&q.group_by, q.period);
    keys.extend([
        col("scale").eq(lit("likert5")).alias("__likert"),
        outcome.cast(DataType::Int8).alias("__value"),
        bits(&|c: Expr| c.is_not_null()).alias("__shown"),
        bits(&|c: Expr| c.fill_null(lit(false))).alias("__tapped"),
    ]);
    let (sum_w, sum_w2) =
        if q.weighted { (col("weight").sum(), (col("weight") * col("weight")).sum()) } else { (len().cast(DataType::Float64), len().cast(DataType::Float64)) };
    lf.filter(keep).group_by(keys).agg([len().cast(DataType::UInt64).alias("__n"), sum_w.alias("__w"), sum_w2.alias("__w2")])
}

fn read_cells(df: &DataFrame, q: &TappedQuery) -> PolarsResult<BTreeMap<GroupKey, Vec<Cell>>> {
    let reader = KeyReader::new(df, &q.group_by, q.period)?;
    let likert = df.column("__likert")?.bool()?;
    let value = df.column("__value")?.i8()?;
    let shown = df.column("__shown")?.u32()?;
    let tapped = df.column("__tapped")?.u32()?;
    let n = df.column("__n")?.u64()?;
    let w = df.column("__w")?.f64()?;
    let w2 = df.column("__w2")?.f64()?;
    let mut groups: BTreeMap<GroupKey, Vec<Cell>> = BTreeMap::new();
    for i in 0..df.height() {
        let cell = Cell {
            likert: likert.get(i).unwrap_or(false),
            answered: value.get(i).is_some(),
            value: value.get(i).unwrap_or(0),
            shown: shown.get(i).unwrap_or(0),
            tapped: tapped.get(i).unwrap_or(0),
            count: n.get(i).unwrap_or(0),
            sum_w: w.get(i).unwrap_or(0.0),
            sum_w2: w2.get(i).unwrap_or(0.0),
        };
        groups.entry(reader.key(i)).or_default().push(cell);
    }
    // Polars returns groups in no fixed order; sums (and the bootstrap's draws) may not depend on it.
    for cells in groups.values_mut() {
        cells.sort_by_key(|c| (c.likert, c.answered, c.value, c.shown, c.tapped));
    }
    Ok(groups)
}

/// Fits every group of the pattern `table` (`plan`'s columns).
fn run(table: LazyFrame, q: &TappedQuery, suppression: Suppression, max_groups: usize, cancel: &Cancel) -> Result<Vec<TappedGroup>, AnalyticsError> {
    let start = std::time::Instant::now();
    let df = table.collect_with_engine(Engine::Streaming)?.unwrap_single();
    tracing::debug!(elapsed = ?start.elapsed(), cells = df.height(), "tapped pattern table collected");
    let groups = read_cells(&df, q)?;
    if groups.len() > max_groups {
        return Err(AnalyticsError::TooManyGroups { groups: groups.len(), max: max_groups });
    }
    cancel.check()?;
    let out: Option<Vec<TappedGroup>> = groups
        .into_par_iter()
        .map(|(key, all)| {
            if cancel.is_cancelled() {
                return None; // abandoned
            }
            // The model's responses; the others are only counted.
            let in_model = |c: &Cell| c.answered && (q.model == TappedModel::Logistic || c.likert);
            let cells: Vec<Cell> = all.iter().copied().filter(in_model).collect();
            let outside = |f: &dyn Fn(&Cell) -> bool| all.iter().filter(|c| c.shown != 0 && !in_model(c) && f(c)).map(|c| c.count).sum::<u64>();
            let (mut group, prepared) = assess(key.clone(), &cells, q, suppression);
            group.n_outcome_missing = outside(&|c| !c.answered && (q.model == TappedModel::Logistic || c.likert));
            let thumbs = outside(&|c| c.answered);
            if thumbs > 0 && group.suppressed.is_none() {
                group.warnings.push(format!(
                    "{thumbs} thumbs responses shown the tap list are not in the LINEAR model (its outcome is the 1-5 answer); LOGISTIC pools both scales"
                ));
            }
            if let (Some(b), None, None) = (q.bootstrap, &group.error, &group.suppressed) {
                bootstrap(&mut group, &cells, q, &prepared, b, q.seed ^ key.stable_hash(), cancel);
            }
            Some(group)
        })
        .collect();
    cancel.check()?;
    Ok(out.unwrap_or_default())
}

/// Which asked indicators a group's model holds and which cells it uses.
struct Design {
    /// Asked indicators offered to some response of the group (bits of `shown`).
    model: Vec<usize>,
    mask: u32,
    /// Topic sets over `model` (asked-indicator indices), in topic order, and their topics.
    sets: Vec<(TapTopic, Vec<usize>)>,
}

impl Design {
    /// The model holds the indicators of the group's most common form (the set of asked
    /// indicators offered, by responses; ties to the larger set): forms that offer more are used
    /// too (their extra indicators ignored), forms that offer less are left out and counted in
    /// n dropped. One response on an odd form can neither shrink the model nor drop the rest.
    fn new(cells: &[Cell], indicators: &[TapIndicator]) -> Design {
        let mut forms: BTreeMap<u32, u64> = BTreeMap::new();
        for c in cells.iter().filter(|c| c.shown != 0 && c.count > 0) {
            *forms.entry(c.shown).or_default() += c.count;
        }
        let mask = forms.iter().max_by_key(|(m, n)| (**n, m.count_ones(), std::cmp::Reverse(**m))).map_or(0, |(m, _)| *m);
        let model: Vec<usize> = (0..indicators.len()).filter(|j| mask & (1 << j) != 0).collect();
        let sets = TapTopic::ALL
            .iter()
            .map(|t| (*t, model.iter().copied().filter(|&j| indicators[j].topic == *t).collect::<Vec<_>>()))
            .filter(|(_, s)| !s.is_empty())
            .collect();
        Design { model, mask, sets }
    }

    /// Whether a cell's response is used: shown every indicator of the model.
    fn uses(&self, c: &Cell) -> bool {
        c.shown != 0 && c.shown & self.mask == self.mask
    }
}

/// The logistic patterns (tapped bits over the model, agree or not) of the used cells, each
/// cell's weight (Σw; its count unweighted, as the plan sums it) multiplied by
/// `factor(cell index)`.
fn patterns(cells: &[Cell], design: &Design, factor: impl Fn(usize) -> f64) -> Vec<Pattern> {
    let mut by_bits: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    for (i, c) in cells.iter().enumerate() {
        if !design.uses(c) {
            continue;
        }
        let w = factor(i) * c.sum_w;
        let e = by_bits.entry(c.tapped & design.mask).or_default();
        if c.agrees() {
            e.0 += w;
        } else {
            e.1 += w;
        }
    }
    by_bits.into_iter().map(|(bits, (events, non_events))| Pattern { bits, events, non_events }).collect()
}

/// Least-squares sums of the used cells over (value − 3, the tapped bits of `columns`).
fn cross_products(cells: &[Cell], design: &Design, columns: &[usize], factor: impl Fn(usize) -> f64) -> CrossProducts {
    let mut cp = CrossProducts::new(columns.len() + 1);
    let mut x = vec![0.0; columns.len() + 1];
    for (i, c) in cells.iter().enumerate() {
        if !design.uses(c) || !c.likert {
            continue;
        }
        let f = factor(i);
        if f <= 0.0 {
            continue;
        }
        x[0] = c.value as f64 - 3.0;
        for (k, j) in columns.iter().enumerate() {
            x[k + 1] = if c.tapped & (1 << j) != 0 { 1.0 } else { 0.0 };
        }
        cp.add_rows(&x, (f * c.count as f64).round() as u64, f * c.sum_w, f * f * c.sum_w2);
    }
    cp
}

/// Names a statistics error of a tapped model in the query's terms.
fn explain(e: &StatsError, q: &TappedQuery) -> String {
    match (e, q.model) {
        (StatsError::ConstantVariable { index: 0 }, TappedModel::Logistic) => {
            format!("every response used gives the same answer to {} (all agree or none does): the model is undefined", q.outcome)
        }
        (StatsError::ConstantVariable { index: 0 }, TappedModel::Linear) => {
            format!("every Likert response used gives the same {} answer: the model is undefined", q.outcome)
        }
        (StatsError::TooFewObservations { n, .. }, _) if *n == 0.0 => match q.model {
            TappedModel::Logistic => "no response in this group answered the outcome and was shown the tap list".into(),
            TappedModel::Linear => "no Likert response in this group answered the outcome and was shown the tap list".into(),
        },
        _ => e.to_string(),
    }
}

fn assess(key: GroupKey, cells: &[Cell], q: &TappedQuery, suppression: Suppression) -> (TappedGroup, Prepared) {
    let design = Design::new(cells, &q.indicators);
    let used: Vec<&Cell> = cells.iter().filter(|c| design.uses(c)).collect();
    let n: u64 = used.iter().map(|c| c.count).sum();
    let (sw, sw2) = used.iter().fold((0.0, 0.0), |(a, b), c| (a + c.sum_w, b + c.sum_w2));
    let mut group = TappedGroup {
        key,
        model: q.model,
        n,
        n_dropped: cells.iter().filter(|c| c.shown != 0 && !design.uses(c)).map(|c| c.count).sum(),
        n_not_shown: cells.iter().filter(|c| c.shown == 0).map(|c| c.count).sum(),
        n_outcome_missing: 0,
        n_effective: if q.weighted && sw2 > 0.0 { cx_stats::descriptive::kish_n_effective(sw, sw2) } else { n as f64 },
        events: None,
        log_likelihood: None,
        null_log_likelihood: None,
        mcfadden: None,
        nagelkerke: None,
        estrella: None,
        r2: None,
        adj_r2: None,
        intercept: None,
        error: None,
        warnings: Vec::new(),
        bootstrap_replicates: 0,
        coefficients: q
            .indicators
            .iter()
            .map(|&indicator| TapCoefficient { indicator, estimate: None, std_error: None, interval: None, p_value: None, dropped: None })
            .collect(),
        drivers: Vec::new(),
        lift: lift(cells, q, suppression),
        suppressed: None,
    };
    let offered = cells.iter().filter(|c| c.count > 0).fold(0u32, |m, c| m | c.shown);
    for (j, c) in group.coefficients.iter_mut().enumerate() {
        // With no response in the model, the error below says it once.
        if !design.model.contains(&j) && !design.model.is_empty() {
            let reason = if offered & (1 << j) == 0 {
                "not offered to any response in this group"
            } else {
                "not on the group's most common form (offered to some responses only)"
            };
            c.dropped = Some(reason.into());
            group.warnings.push(format!("{}: {reason}; left out of the model", q.indicators[j]));
        }
    }
    if group.n_dropped > 0 {
        group.warnings.push(format!(
            "{} responses were on forms without some of the model's indicators and are left out (ask for fewer indicators to keep them)",
            group.n_dropped
        ));
    }
    let parameters = design.model.len() + 1;
    let minimum = (10 * parameters).max(30);
    if n > 0 && (n as usize) < minimum {
        group.warnings.push(format!("n = {n} is below max(30, 10 x {parameters} parameters) = {minimum}: estimates are unstable"));
    }
    let topics: Vec<TapTopic> = q.indicators.iter().map(|i| i.topic).fold(Vec::new(), |mut v, t| {
        if !v.contains(&t) {
            v.push(t);
        }
        v
    });
    group.drivers = topics
        .iter()
        .map(|&topic| TappedDriver {
            topic,
            importance: None,
            share: None,
            rank: None,
            johnson: None,
            johnson_share: None,
            importance_ci: None,
            share_ci: None,
        })
        .collect();
    let (mut columns, mut fits) = (Vec::new(), None);
    let estimates = match q.model {
        _ if design.model.is_empty() => Err(StatsError::TooFewObservations { n: 0.0, needed: 1.0 }),
        TappedModel::Logistic => logistic_estimates(&mut group, cells, &design, q).map(|(values, f)| {
            fits = Some(f);
            values
        }),
        TappedModel::Linear => {
            let dropped;
            (columns, dropped) = varying(cells, &design);
            linear_estimates(&mut group, cells, &design, &columns, dropped, q)
        }
    };
    match estimates {
        Err(e) => group.error = Some(explain(&e, q)),
        Ok(importance) => set_importance(&mut group.drivers, &design, &importance),
    }
    // A group without a response used has no estimate to withhold: it keeps its error and
    // warnings, which say why.
    if let Some(reason) = Suppression::check(n, suppression.min_cell_drivers).filter(|_| n > 0) {
        group.suppress(reason);
    }
    (group, Prepared { design, columns, logistic: fits })
}

/// Importance values per set (in `design.sets` order) into the drivers, with shares and ranks;
/// a topic whose indicators are all out of the model keeps `None`.
fn set_importance(drivers: &mut [TappedDriver], design: &Design, values: &SetValues) {
    let shares = Importance::shares(&values.importance);
    let johnson_shares = values.johnson.as_deref().and_then(Importance::shares);
    let mut order: Vec<usize> = (0..values.importance.len()).collect();
    order.sort_by(|&a, &b| values.importance[b].total_cmp(&values.importance[a]));
    for (s, (topic, _)) in design.sets.iter().enumerate() {
        let Some(d) = drivers.iter_mut().find(|d| d.topic == *topic) else { continue };
        d.importance = Some(values.importance[s]);
        d.share = shares.as_ref().map(|v| v[s]);
        d.rank = Some(order.iter().position(|&o| o == s).expect("in order") as u32 + 1);
        d.johnson = values.johnson.as_ref().map(|v| v[s]);
        d.johnson_share = johnson_shares.as_ref().map(|v| v[s]);
    }
}

/// Importance per set (and Johnson's per set for the linear model).
struct SetValues {
    importance: Vec<f64>,
    johnson: Option<Vec<f64>>,
}

/// What the estimates of a group leave for its bootstrap, so it fits nothing twice.
struct Prepared {
    design: Design,
    /// Linear: the model's indicators that vary among the used responses.
    columns: Vec<usize>,
    logistic: Option<LogisticFits>,
}

/// The full sample's logistic fits: its patterns, the live sets (positions in `design.sets`),
/// their lattice and each model's coefficients.
struct LogisticFits {
    base: Vec<Pattern>,
    live: Vec<usize>,
    lattice: logistic::Lattice,
    starts: Vec<Vec<f64>>,
}

/// Shapley values of the live sets in `design.sets` order; dead sets are 0.
fn place(live: &[usize], phi: &[f64], sets: usize) -> Vec<f64> {
    let mut importance = vec![0.0; sets];
    for (&s, v) in live.iter().zip(phi) {
        importance[s] = *v;
    }
    importance
}

fn logistic_estimates(group: &mut TappedGroup, cells: &[Cell], design: &Design, q: &TappedQuery) -> Result<(SetValues, LogisticFits), StatsError> {
    let k = q.indicators.len();
    let patterns = patterns(cells, design, |_| 1.0);
    let fit = logistic::fit(&patterns, k, &design.model, None)?;
    group.events = Some(fit.events);
    group.log_likelihood = Some(fit.log_likelihood);
    group.null_log_likelihood = Some(fit.null_log_likelihood);
    group.mcfadden = Some(fit.mcfadden());
    group.nagelkerke = fit.nagelkerke();
    group.estrella = fit.estrella();
    group.intercept = Some(fit.intercept);
    for (j, c) in fit.coefficients.iter().enumerate() {
        if !design.model.contains(&j) {
            continue;
        }
        let out = &mut group.coefficients[j];
        out.estimate = c.estimate;
        out.std_error = c.std_error;
        if let Some(w) = c.wald(q.confidence) {
            out.interval = Some(w.interval);
            out.p_value = Some(w.p_value);
        }
        if let Some(d) = c.dropped {
            out.dropped = Some(d.reason().to_string());
            group.warnings.push(format!("{}: {}; no coefficient", q.indicators[j], d.reason()));
        }
    }
    let (live, live_sets) = live_sets(design, &fit);
    let bits: Vec<u32> = patterns.iter().map(|p| p.bits).collect();
    let lattice = logistic::Lattice::new(&bits, k, &live_sets)?;
    let (values, starts): (Vec<f64>, Vec<Vec<f64>>) = lattice.fits(&patterns, None)?.into_iter().unzip();
    let phi = cx_stats::importance::shapley_values(live.len(), &values);
    let importance = place(&live, &phi, design.sets.len());
    Ok((SetValues { importance, johnson: None }, LogisticFits { base: patterns, live, lattice, starts }))
}

/// The topic sets that can enter a logistic model (positions in `design.sets`, and their
/// indicators): a set whose indicators are all never or always tapped adds nothing to any
/// model, so its value is 0 without fitting (halving the fits per such set).
fn live_sets(design: &Design, fit: &logistic::Logit) -> (Vec<usize>, Vec<Vec<usize>>) {
    let live: Vec<usize> = (0..design.sets.len())
        .filter(|&s| design.sets[s].1.iter().any(|&j| !matches!(fit.coefficients[j].dropped, Some(Dropped::NeverSet | Dropped::AlwaysSet))))
        .collect();
    let sets = live.iter().map(|&s| design.sets[s].1.clone()).collect();
    (live, sets)
}

/// The model's indicators that vary among the used Likert responses (the others are never or
/// always tapped: no slope).
fn varying(cells: &[Cell], design: &Design) -> (Vec<usize>, Vec<(usize, Dropped)>) {
    let mut keep = Vec::new();
    let mut dropped = Vec::new();
    let used: Vec<&Cell> = cells.iter().filter(|c| design.uses(c) && c.likert).collect();
    let total: u64 = used.iter().map(|c| c.count).sum();
    for &j in &design.model {
        let set: u64 = used.iter().filter(|c| c.tapped & (1 << j) != 0).map(|c| c.count).sum();
        match set {
            0 => dropped.push((j, Dropped::NeverSet)),
            s if s == total => dropped.push((j, Dropped::AlwaysSet)),
            _ => keep.push(j),
        }
    }
    (keep, dropped)
}

fn linear_estimates(
    group: &mut TappedGroup,
    cells: &[Cell],
    design: &Design,
    columns: &[usize],
    dropped: Vec<(usize, Dropped)>,
    q: &TappedQuery,
) -> Result<SetValues, StatsError> {
    for (j, d) in dropped {
        group.coefficients[j].dropped = Some(d.reason().to_string());
        group.warnings.push(format!("{}: {}; no coefficient", q.indicators[j], d.reason()));
    }
    let cp = cross_products(cells, design, columns, |_| 1.0);
    let fit = least_squares(&cp)?;
    group.r2 = Some(fit.r2);
    group.adj_r2 = fit.adj_r2;
    group.intercept = Some(fit.intercept + 3.0);
    for (k, &j) in columns.iter().enumerate() {
        let out = &mut group.coefficients[j];
        out.estimate = Some(fit.coefficients[k]);
        out.std_error = Some(fit.std_errors[k]);
        if let Some((interval, p)) = fit.t_test(k, q.confidence) {
            out.interval = Some(interval);
            out.p_value = Some(p);
        }
    }
    linear_set_values(&cp, design, columns, true)
}

/// Linear dominance of R² over the topic sets (and Johnson's weights summed per set) from the
/// sums of `columns`.
fn linear_set_values(cp: &CrossProducts, design: &Design, columns: &[usize], with_johnson: bool) -> Result<SetValues, StatsError> {
    let (rxx, rxy) = split(&cp.correlation()?);
    let set_masks: Vec<u32> =
        design.sets.iter().map(|(_, s)| columns.iter().enumerate().filter(|(_, j)| s.contains(j)).fold(0u32, |m, (k, _)| m | (1 << k))).collect();
    let m = set_masks.len();
    let values: Vec<f64> = (0..1u32 << m)
        .map(|mask| r2_subset(&rxx, &rxy, (0..m).filter(|s| mask & (1 << s) != 0).fold(0, |acc, s| acc | set_masks[s])))
        .collect::<Result<_, _>>()?;
    let importance = cx_stats::importance::shapley_values(m, &values);
    let johnson = if with_johnson {
        let weights = cx_stats::importance::johnson(&rxx, &rxy)?;
        Some(set_masks.iter().map(|mask| (0..columns.len()).filter(|k| mask & (1 << k) != 0).map(|k| weights[k]).sum()).collect())
    } else {
        None
    };
    Ok(SetValues { importance, johnson })
}

/// Lift of each asked indicator over every response shown it (whatever else it was shown).
fn lift(cells: &[Cell], q: &TappedQuery, suppression: Suppression) -> Vec<TapLift> {
    q.indicators
        .iter()
        .enumerate()
        .map(|(j, &indicator)| {
            let bit = 1u32 << j;
            // [count, Σw, Σw², Σw agreeing] of tapped (0) and not tapped (1).
            let mut sides = [[0.0f64; 4]; 2];
            for c in cells.iter().filter(|c| c.shown & bit != 0) {
                let s = &mut sides[usize::from(c.tapped & bit == 0)];
                s[0] += c.count as f64;
                s[1] += c.sum_w;
                s[2] += c.sum_w2;
                if c.agrees() {
                    s[3] += c.sum_w;
                }
            }
            let share = |s: &[f64; 4]| (s[1] > 0.0).then(|| s[3] / s[1]);
            let n_eff = |s: &[f64; 4]| if s[2] > 0.0 { s[1] * s[1] / s[2] } else { 0.0 };
            let (pt, pn) = (share(&sides[0]), share(&sides[1]));
            let mut out = TapLift {
                indicator,
                shown: (sides[0][0] + sides[1][0]) as u64,
                tapped: sides[0][0] as u64,
                agree_tapped: pt,
                agree_not_tapped: pn,
                difference: pt.zip(pn).map(|(a, b)| a - b),
                interval: pt.zip(pn).and_then(|(a, b)| newcombe_difference(a, n_eff(&sides[0]), b, n_eff(&sides[1]), q.confidence)),
                suppressed: None,
            };
            // A comparison is withheld when either side is a small cell (suppression rule 2).
            let smaller = sides[0][0].min(sides[1][0]) as u64;
            if let Some(reason) = Suppression::check(smaller, suppression.min_cell) {
                out.agree_tapped = None;
                out.agree_not_tapped = None;
                out.difference = None;
                out.interval = None;
                out.suppressed = Some(format!("{reason} (tapped or not tapped)"));
            }
            out
        })
        .collect()
}

impl TappedGroup {
    /// Withholds every estimate (the counts stay), giving the reason.
    fn suppress(&mut self, reason: String) {
        self.events = None;
        self.log_likelihood = None;
        self.null_log_likelihood = None;
        self.mcfadden = None;
        self.nagelkerke = None;
        self.estrella = None;
        self.r2 = None;
        self.adj_r2 = None;
        self.intercept = None;
        self.error = None;
        self.warnings.clear();
        for c in &mut self.coefficients {
            *c = TapCoefficient { indicator: c.indicator, estimate: None, std_error: None, interval: None, p_value: None, dropped: None };
        }
        for d in &mut self.drivers {
            *d = TappedDriver {
                topic: d.topic,
                importance: None,
                share: None,
                rank: None,
                johnson: None,
                johnson_share: None,
                importance_ci: None,
                share_ci: None,
            };
        }
        // The lift's shares would give back the group's agree count (the events withheld above).
        for l in &mut self.lift {
            l.agree_tapped = None;
            l.agree_not_tapped = None;
            l.difference = None;
            l.interval = None;
            l.suppressed.get_or_insert_with(|| reason.clone());
        }
        self.suppressed = Some(reason);
    }
}

/// Percentile intervals of each set's importance and share from `b` Poisson bootstrap
/// replicates of the cells (see the module comment); each logistic replicate's 2^sets models
/// take one Newton step from the full sample's fits (`prepared`, from [`assess`]).
fn bootstrap(group: &mut TappedGroup, cells: &[Cell], q: &TappedQuery, prepared: &Prepared, b: u32, seed: u64, cancel: &Cancel) {
    let design = &prepared.design;
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let m = design.sets.len();
    let mut draws: [Vec<Vec<f64>>; 2] = std::array::from_fn(|_| vec![Vec::with_capacity(b as usize); m]);
    let logistic = prepared.logistic.as_ref().map(|f| (f, f.lattice.steps(&f.starts)));
    // Where each used cell's weight goes in the logistic patterns (the base order), and each
    // cell's distribution of replicate weights, both fixed over the replicates.
    let slot: Vec<Option<(usize, bool)>> = match &logistic {
        Some((f, _)) => cells
            .iter()
            .map(|c| design.uses(c).then(|| (f.base.binary_search_by_key(&(c.tapped & design.mask), |p| p.bits).expect("a used cell's pattern"), c.agrees())))
            .collect(),
        None => Vec::new(),
    };
    let draws_of: Vec<Option<(Poisson<f64>, f64)>> = cells.iter().map(replicate_weight).collect();
    let mut ok = 0;
    for _ in 0..b {
        if cancel.is_cancelled() {
            return;
        }
        let factors: Vec<f64> = draws_of.iter().map(|d| d.as_ref().map_or(0.0, |(p, scale)| scale * p.sample(&mut rng))).collect();
        let values = match &logistic {
            Some((f, steps)) => {
                let mut pats = f.base.clone();
                for p in &mut pats {
                    p.events = 0.0;
                    p.non_events = 0.0;
                }
                for ((c, x), s) in cells.iter().zip(&factors).zip(&slot) {
                    if let Some((i, agrees)) = *s {
                        let w = x * c.sum_w;
                        if agrees {
                            pats[i].events += w;
                        } else {
                            pats[i].non_events += w;
                        }
                    }
                }
                let Ok(values) = f.lattice.replicate_fits(&pats, steps) else { continue };
                place(&f.live, &cx_stats::importance::shapley_values(f.live.len(), &values), m)
            }
            None => {
                let cp = cross_products(cells, design, &prepared.columns, |i| factors[i]);
                let Ok(v) = linear_set_values(&cp, design, &prepared.columns, false) else { continue };
                v.importance
            }
        };
        let Some(shares) = Importance::shares(&values) else { continue };
        ok += 1;
        for s in 0..m {
            draws[0][s].push(values[s]);
            draws[1][s].push(shares[s]);
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
    let alpha = (1.0 - q.confidence) / 2.0;
    for (s, (topic, _)) in design.sets.iter().enumerate() {
        let Some(d) = group.drivers.iter_mut().find(|d| d.topic == *topic) else { continue };
        let ci = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            Some(Interval { low: cx_stats::descriptive::quantile_sorted(v, alpha), high: cx_stats::descriptive::quantile_sorted(v, 1.0 - alpha) })
        };
        d.importance_ci = ci(&mut draws[0][s]);
        d.share_ci = ci(&mut draws[1][s]);
    }
}

/// The distribution of a replicate's weight for a cell, as a multiple of the cell's own
/// weight: a·Poisson(λ)/Σw with λ = (Σw)²/Σw² and a = Σw²/Σw (see the module comment), which
/// unweighted (Σw = Σw² = count) is Poisson(count)/count. `None` for an empty cell.
fn replicate_weight(c: &Cell) -> Option<(Poisson<f64>, f64)> {
    if !(c.sum_w > 0.0 && c.sum_w2 > 0.0) {
        return None;
    }
    Poisson::new(c.sum_w * c.sum_w / c.sum_w2).ok().map(|p| (p, c.sum_w2 / c.sum_w / c.sum_w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_domain::TapTopic as T;

    fn ind(topic: T, positive: bool) -> TapIndicator {
        TapIndicator { topic, positive }
    }

    fn cell(likert: bool, value: i8, shown: u32, tapped: u32, count: u64) -> Cell {
        Cell { likert, answered: true, value, shown, tapped, count, sum_w: count as f64, sum_w2: count as f64 }
    }

    fn query(indicators: Vec<TapIndicator>) -> TappedQuery {
        TappedQuery { indicators, ..TappedQuery::default() }
    }

    fn key() -> GroupKey {
        GroupKey { values: Vec::new(), period: None }
    }

    fn finite(g: &TappedGroup) -> bool {
        let vals = [g.mcfadden, g.nagelkerke, g.estrella, g.log_likelihood, g.intercept];
        vals.iter().flatten().all(|v| v.is_finite())
            && g.drivers.iter().all(|d| d.importance.is_none_or(f64::is_finite) && d.share.is_none_or(f64::is_finite))
            && g.coefficients.iter().all(|c| c.estimate.is_none_or(f64::is_finite) && c.std_error.is_none_or(f64::is_finite))
    }

    /// Two indicators (positive ease, negative ease) and one never tapped (positive other).
    fn three() -> Vec<TapIndicator> {
        vec![ind(T::Ease, true), ind(T::Ease, false), ind(T::Other, true)]
    }

    #[test]
    fn an_indicator_nobody_tapped_is_dropped_with_a_warning_and_importance_stays_finite() {
        let cells = vec![
            cell(false, 1, 0b111, 0b001, 60),
            cell(false, 0, 0b111, 0b001, 15),
            cell(false, 1, 0b111, 0b010, 10),
            cell(false, 0, 0b111, 0b010, 40),
            cell(false, 1, 0b111, 0b000, 30),
            cell(false, 0, 0b111, 0b000, 25),
        ];
        let g = assess(key(), &cells, &query(three()), Suppression::none()).0;
        assert_eq!(g.error, None);
        assert_eq!(g.coefficients[2].dropped.as_deref(), Some(Dropped::NeverSet.reason()));
        assert!(g.warnings.iter().any(|w| w.starts_with("positive_other: never tapped")), "{:?}", g.warnings);
        assert!(g.coefficients[0].estimate.unwrap() > 0.0 && g.coefficients[1].estimate.unwrap() < 0.0);
        assert!(finite(&g));
        let other = g.drivers.iter().find(|d| d.topic == T::Other).unwrap();
        assert_eq!(other.importance, Some(0.0));
        let ease = g.drivers.iter().find(|d| d.topic == T::Ease).unwrap();
        assert!((ease.importance.unwrap() - g.mcfadden.unwrap()).abs() < 1e-12 && ease.rank == Some(1));
        assert_eq!((g.n, g.events), (180, Some(100.0)));
    }

    #[test]
    fn separation_leaves_the_coefficient_null_with_the_reason() {
        // Everyone who tapped negative ease disagrees: complete separation for that indicator.
        let cells = vec![
            cell(false, 1, 0b111, 0b001, 50),
            cell(false, 0, 0b111, 0b001, 20),
            cell(false, 0, 0b111, 0b010, 30),
            cell(false, 1, 0b111, 0b100, 12),
            cell(false, 0, 0b111, 0b100, 9),
            cell(false, 1, 0b111, 0b000, 30),
            cell(false, 0, 0b111, 0b000, 25),
        ];
        let g = assess(key(), &cells, &query(three()), Suppression::none()).0;
        assert_eq!(g.coefficients[1].estimate, None);
        assert_eq!(g.coefficients[1].dropped.as_deref(), Some(Dropped::Separation.reason()));
        assert!(g.warnings.iter().any(|w| w.starts_with("negative_ease: (quasi-)complete separation")), "{:?}", g.warnings);
        assert!(g.coefficients[0].estimate.is_some() && g.coefficients[2].estimate.is_some());
        assert!(finite(&g), "{g:?}");
    }

    #[test]
    fn partly_offered_indicators_drop_responses_and_unoffered_ones_leave_the_model() {
        let cells = vec![
            // Offered both ease indicators but never "other" (bit 2): other is left out.
            cell(false, 1, 0b011, 0b001, 40),
            cell(false, 0, 0b011, 0b010, 30),
            cell(false, 1, 0b011, 0b000, 20),
            cell(false, 0, 0b011, 0b000, 20),
            // Offered only positive ease: dropped from the model.
            cell(false, 1, 0b001, 0b001, 7),
            // Not shown the tap list at all.
            cell(true, 5, 0, 0, 11),
        ];
        let g = assess(key(), &cells, &query(three()), Suppression::none()).0;
        assert_eq!((g.n, g.n_dropped, g.n_not_shown), (110, 7, 11));
        assert_eq!(g.coefficients[2].dropped.as_deref(), Some("not offered to any response in this group"));
        assert!(g.warnings.iter().any(|w| w.contains("7 responses were on forms without some of the model's indicators")), "{:?}", g.warnings);
        assert_eq!(g.drivers.iter().find(|d| d.topic == T::Other).unwrap().importance, None);
        // Lift of positive ease over everyone shown it: 47 tapped (47 agree), 70 not (20 agree).
        let l = &g.lift[0];
        assert_eq!((l.shown, l.tapped), (117, 47));
        assert!((l.agree_tapped.unwrap() - 1.0).abs() < 1e-15 && (l.agree_not_tapped.unwrap() - 20.0 / 70.0).abs() < 1e-15);
        let want = newcombe_difference(1.0, 47.0, 20.0 / 70.0, 70.0, 0.95).unwrap();
        assert_eq!(l.interval, Some(want));
        assert_eq!(g.lift[2].shown, 0);
        assert!(g.lift[2].difference.is_none());
    }

    #[test]
    fn a_few_responses_on_a_longer_form_neither_shrink_the_model_nor_drop_the_rest() {
        let mut cells = vec![
            cell(false, 1, 0b011, 0b001, 400),
            cell(false, 0, 0b011, 0b001, 60),
            cell(false, 1, 0b011, 0b010, 40),
            cell(false, 0, 0b011, 0b010, 300),
            cell(false, 1, 0b011, 0b000, 200),
            cell(false, 0, 0b011, 0b000, 150),
        ];
        // Five responses were also offered "other" (bit 2).
        cells.push(cell(false, 1, 0b111, 0b100, 5));
        let g = assess(key(), &cells, &query(three()), Suppression::none()).0;
        assert_eq!((g.n, g.n_dropped), (1155, 0));
        assert_eq!(g.coefficients[2].dropped.as_deref(), Some("not on the group's most common form (offered to some responses only)"));
        assert!(g.coefficients[0].estimate.is_some() && g.coefficients[1].estimate.is_some());
    }

    #[test]
    fn small_groups_warn_and_suppression_withholds_estimates_but_not_counts() {
        let cells = vec![cell(false, 1, 0b11, 0b01, 9), cell(false, 0, 0b11, 0b10, 8), cell(false, 1, 0b11, 0b00, 5), cell(false, 0, 0b11, 0b00, 6)];
        let q = query(vec![ind(T::Ease, true), ind(T::Ease, false)]);
        let g = assess(key(), &cells, &q, Suppression::none()).0;
        assert!(g.warnings.iter().any(|w| w.starts_with("n = 28 is below max(30, 10 x 3 parameters) = 30")), "{:?}", g.warnings);
        let s = assess(key(), &cells, &q, Suppression::default()).0;
        assert_eq!(s.n, 28);
        assert!(s.suppressed.is_some() && s.mcfadden.is_none() && s.coefficients.iter().all(|c| c.estimate.is_none()));
        assert!(s.lift.iter().all(|l| l.difference.is_none() && l.agree_tapped.is_none() && l.agree_not_tapped.is_none() && l.suppressed.is_some()));
        // Lift sides of at least the minimum are shown in a shown group, withheld in a suppressed one.
        let lift = Suppression { min_cell: 5, min_cell_drivers: 0 };
        assert!(assess(key(), &cells, &q, lift).0.lift[0].difference.is_some());
    }

    #[test]
    fn an_outcome_without_both_answers_is_an_error_not_a_nan() {
        let cells = vec![cell(false, 1, 0b11, 0b01, 40), cell(false, 1, 0b11, 0b00, 40)];
        let g = assess(key(), &cells, &query(vec![ind(T::Ease, true), ind(T::Ease, false)]), Suppression::none()).0;
        assert!(g.error.as_deref().unwrap().contains("all agree or none does"), "{:?}", g.error);
        assert!(finite(&g));
    }

    #[test]
    fn the_bootstrap_is_reproducible_and_its_intervals_hold_the_estimates() {
        let mut cells = Vec::new();
        for (tapped, agree, not) in [(0b0001u32, 80u64, 20u64), (0b0010, 20, 50), (0b0100, 45, 30), (0b1000, 15, 40), (0b0000, 60, 60), (0b0101, 30, 5)] {
            cells.push(cell(false, 1, 0b1111, tapped, agree));
            cells.push(cell(false, 0, 0b1111, tapped, not));
        }
        let q = TappedQuery { bootstrap: Some(200), ..query(vec![ind(T::Ease, true), ind(T::Ease, false), ind(T::Humanity, true), ind(T::Humanity, false)]) };
        let run = || {
            let (mut g, prepared) = assess(key(), &cells, &q, Suppression::none());
            bootstrap(&mut g, &cells, &q, &prepared, 200, 7, &Cancel::default());
            g
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b);
        assert_eq!(a.bootstrap_replicates, 200);
        for d in &a.drivers {
            let (ci, v) = (d.share_ci.unwrap(), d.share.unwrap());
            assert!(ci.low <= v && v <= ci.high, "{d:?}");
        }
    }
}
