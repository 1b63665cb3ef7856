//! Logistic regression on binary predictors from their pattern counts, and the dominance of
//! McFadden's pseudo-R² over predictor sets: the statistics of tapped-indicator surveys (A-11
//! 280.10 design 1, the Touchpoints A-11 v2 form), where every predictor is a 0/1 tap.
//!
//! With binary predictors the distinct (pattern, outcome) weight sums are sufficient statistics
//! of the likelihood, so a fit costs the number of patterns that occur (at most 2^k), not the
//! number of responses. The fit is Newton-Raphson (equal to IRLS for the canonical logit link;
//! McCullagh & Nelder, *Generalized Linear Models*, 2nd ed., 4.4) with step halving; standard
//! errors are the square roots of the diagonal of the inverse information, as statsmodels'
//! `Logit` and `GLM(Binomial, freq_weights)` report them. McFadden's R² is 1 − ℓ/ℓ₀ (McFadden
//! 1974) with ℓ₀ the intercept-only log-likelihood; dominance ("general dominance", Azen & Traxel
//! 2009) is the Shapley value of that R² over predictor sets.

use super::StatsError;
use nalgebra::{DMatrix, DVector};

/// One distinct pattern of the predictors: bit j is predictor j; the (weighted) count of
/// responses with the outcome and without it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pattern {
    pub bits: u32,
    pub events: f64,
    pub non_events: f64,
}

/// Why a coefficient has no estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// No response has the predictor (an indicator nobody tapped).
    NeverSet,
    /// Every response has it: indistinguishable from the intercept.
    AlwaysSet,
    /// Complete or quasi-complete separation: the estimate runs off to infinity.
    Separation,
    /// A linear combination of the intercept and earlier predictors (always set together with
    /// another, or its complement): not separately estimable (R's `glm` reports it as NA).
    Aliased,
}

impl Dropped {
    pub fn reason(self) -> &'static str {
        match self {
            Dropped::NeverSet => "never tapped by the responses used (offered, but nobody tapped it)",
            Dropped::AlwaysSet => "tapped by every response used (not distinguishable from the intercept)",
            Dropped::Separation => "(quasi-)complete separation: the outcome is determined by this indicator in the data, the estimate is infinite",
            Dropped::Aliased => "collinear with other indicators (tapped exactly together with them, or as their complement): not separately estimable",
        }
    }
}

/// One fitted predictor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coefficient {
    /// Log-odds ratio; `None` when dropped.
    pub estimate: Option<f64>,
    pub std_error: Option<f64>,
    pub dropped: Option<Dropped>,
}

/// A fitted logistic regression.
#[derive(Debug, Clone, PartialEq)]
pub struct Logit {
    pub intercept: f64,
    pub coefficients: Vec<Coefficient>,
    pub log_likelihood: f64,
    pub null_log_likelihood: f64,
    /// Sum of weights (responses, unweighted).
    pub n: f64,
    pub events: f64,
    pub iterations: usize,
}

impl Logit {
    /// McFadden's pseudo-R²: 1 − ℓ/ℓ₀ (0 when ℓ₀ is 0, which only an all-equal outcome gives).
    pub fn mcfadden(&self) -> f64 {
        if self.null_log_likelihood < 0.0 {
            1.0 - self.log_likelihood / self.null_log_likelihood
        } else {
            0.0
        }
    }

    /// Nagelkerke's R² (Nagelkerke 1991, Biometrika 78: 691-692): Cox & Snell's
    /// 1 − exp(2(ℓ₀ − ℓ)/n) divided by its maximum 1 − exp(2ℓ₀/n).
    pub fn nagelkerke(&self) -> Option<f64> {
        let cox_snell = -(2.0 * (self.null_log_likelihood - self.log_likelihood) / self.n).exp_m1();
        let max = -(2.0 * self.null_log_likelihood / self.n).exp_m1();
        (self.n > 0.0 && max > 0.0).then(|| cox_snell / max)
    }

    /// Estrella's R² (Estrella 1998, J. Business & Economic Statistics 16: 198-205):
    /// 1 − (ℓ/ℓ₀)^(−2ℓ₀/n).
    pub fn estrella(&self) -> Option<f64> {
        (self.n > 0.0 && self.null_log_likelihood < 0.0)
            .then(|| 1.0 - (self.log_likelihood / self.null_log_likelihood).powf(-2.0 * self.null_log_likelihood / self.n))
    }
}

/// A coefficient's Wald test: `estimate ± z·se` and the two-sided p-value of estimate/se under
/// the standard normal (as statsmodels' `Logit` and `GLM` report them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wald {
    pub interval: super::Interval,
    pub z: f64,
    pub p_value: f64,
}

impl Coefficient {
    /// The Wald interval and test of this coefficient; `None` when dropped or without a
    /// standard error.
    pub fn wald(&self, confidence: f64) -> Option<Wald> {
        let (b, se) = (self.estimate?, self.std_error?);
        if !(se > 0.0) || !se.is_finite() {
            return None;
        }
        let z = super::z_quantile(confidence);
        Some(Wald { interval: super::Interval { low: b - z * se, high: b + z * se }, z: b / se, p_value: super::hypothesis::normal_p_value(b / se) })
    }
}

/// Largest |log-odds| taken as finite: beyond it a coefficient is reported as separated.
const SEPARATED: f64 = 15.0;
const MAX_ITERATIONS: usize = 100;

fn sigmoid(eta: f64) -> f64 {
    if eta >= 0.0 {
        1.0 / (1.0 + (-eta).exp())
    } else {
        let e = eta.exp();
        e / (1.0 + e)
    }
}

/// ln(1 + e^x) without overflow.
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// Fits the outcome on predictors `0..k` (bits of the patterns), each kept or dropped as the
/// data allow. `Err` only for no data or an outcome without both values.
pub fn logit(patterns: &[Pattern], k: usize) -> Result<Logit, StatsError> {
    fit(patterns, k, &(0..k).collect::<Vec<_>>(), None)
}

/// Fits on the predictors of `subset` only (others ignored): the model behind one term of the
/// dominance sums. `start` (intercept first, then one value per predictor `0..k`) is where
/// Newton starts, for example the estimates of the full sample when fitting a bootstrap
/// replicate; without it, the intercept-only fit.
pub fn fit(patterns: &[Pattern], k: usize, subset: &[usize], start: Option<&[f64]>) -> Result<Logit, StatsError> {
    fit_compact(compact(patterns, subset), subset, k, start)
}

/// Fits compact patterns whose bit i is predictor `columns[i]` (of `0..k`).
fn fit_compact(mut patterns: Vec<Pattern>, columns: &[usize], k: usize, start: Option<&[f64]>) -> Result<Logit, StatsError> {
    let n: f64 = patterns.iter().map(|p| p.events + p.non_events).sum();
    let events: f64 = patterns.iter().map(|p| p.events).sum();
    if !(n > 0.0) {
        return Err(StatsError::TooFewObservations { n, needed: 1.0 });
    }
    if !(events > 0.0 && events < n) {
        return Err(StatsError::ConstantVariable { index: 0 });
    }
    let share = events / n;
    let null_ll = events * share.ln() + (n - events) * (1.0 - share).ln();
    let mut dropped: Vec<Option<Dropped>> = vec![None; k];
    for (i, &j) in columns.iter().enumerate() {
        let set: f64 = patterns.iter().filter(|p| p.bits & (1 << i) != 0).map(|p| p.events + p.non_events).sum();
        if !(set > 0.0) {
            dropped[j] = Some(Dropped::NeverSet);
        } else if !(set < n) {
            dropped[j] = Some(Dropped::AlwaysSet);
        }
    }
    let mut columns: Vec<usize> = columns.to_vec();
    let mut aliases_checked = false;
    loop {
        // Project out the dropped predictors (the usual case drops none: nothing to do).
        let keep: Vec<usize> = (0..columns.len()).filter(|&i| dropped[columns[i]].is_none()).collect();
        if keep.len() < columns.len() {
            patterns = compact(&patterns, &keep);
            columns = keep.iter().map(|&i| columns[i]).collect();
        }
        if !aliases_checked {
            aliases_checked = true;
            let aliased = aliased(&patterns, columns.len(), share);
            if !aliased.is_empty() {
                for i in aliased {
                    dropped[columns[i]] = Some(Dropped::Aliased);
                }
                continue;
            }
        }
        let mut beta = DVector::zeros(columns.len() + 1);
        beta[0] = (share / (1.0 - share)).ln();
        if let Some(s) = start {
            beta[0] = s[0];
            for (i, &c) in columns.iter().enumerate() {
                beta[i + 1] = s[c + 1];
            }
        }
        let (beta, info, ll, iterations) = newton(&patterns, beta, null_ll);
        // Separation: a coefficient past any finite odds ratio the data could support. Drop
        // the largest and refit, so the others (and the likelihood) stay finite.
        let worst = columns.iter().enumerate().map(|(i, c)| (beta[i + 1].abs(), *c)).filter(|(b, _)| *b > SEPARATED).max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, c)) = worst {
            dropped[c] = Some(Dropped::Separation);
            continue;
        }
        let cov = info.cholesky().map(|c| c.inverse());
        let mut coefficients = vec![Coefficient { estimate: None, std_error: None, dropped: None }; k];
        for (j, c) in coefficients.iter_mut().enumerate() {
            c.dropped = dropped[j];
        }
        for (i, &c) in columns.iter().enumerate() {
            coefficients[c].estimate = Some(beta[i + 1]);
            coefficients[c].std_error = cov.as_ref().map(|v| v[(i + 1, i + 1)].sqrt());
        }
        let log_likelihood = ll.min(0.0);
        return Ok(Logit { intercept: beta[0], coefficients, log_likelihood, null_log_likelihood: null_ll, n, events, iterations });
    }
}

/// The predictors (bit positions of the compact patterns) that are linear combinations of the
/// intercept and the predictors before them, in order: the information matrix at any finite
/// estimate has the rank of the weighted design, so a Cholesky pivot that vanishes (relative to
/// its diagonal) names an aliased column, as R's `glm` finds them by pivoted QR.
fn aliased(patterns: &[Pattern], k: usize, share: f64) -> Vec<usize> {
    let mut beta = DVector::zeros(k + 1);
    beta[0] = (share / (1.0 - share)).ln();
    let (_, info) = score_and_information(patterns, &beta);
    let mut kept = vec![0usize];
    let mut out = Vec::new();
    for i in 1..=k {
        kept.push(i);
        let sub = info.select_rows(&kept).select_columns(&kept);
        let ok = sub.clone().cholesky().is_some_and(|c| {
            let l = c.l_dirty();
            let last = kept.len() - 1;
            l[(last, last)] * l[(last, last)] > 1e-9 * sub[(last, last)]
        });
        if !ok {
            kept.pop();
            out.push(i - 1);
        }
    }
    out
}

/// The patterns projected on `columns` (bit i of a result is bit `columns[i]` of a pattern),
/// equal projections merged and empty ones left out: a model on few predictors sees few
/// patterns.
fn compact(patterns: &[Pattern], columns: &[usize]) -> Vec<Pattern> {
    let mut out: Vec<Pattern> = patterns.iter().filter(|p| p.events + p.non_events > 0.0).map(|p| Pattern { bits: project(p.bits, columns), ..*p }).collect();
    out.sort_unstable_by_key(|p| p.bits);
    out.dedup_by(|next, kept| {
        let same = next.bits == kept.bits;
        if same {
            kept.events += next.events;
            kept.non_events += next.non_events;
        }
        same
    });
    out
}

/// Bit i of the result is bit `columns[i]` of `bits`.
fn project(bits: u32, columns: &[usize]) -> u32 {
    columns.iter().enumerate().filter(|(_, c)| bits & (1 << **c) != 0).fold(0, |b, (i, _)| b | (1 << i))
}

/// The set bits of a compact pattern, as coefficient positions (1-based: 0 is the intercept).
fn positions(bits: u32) -> impl Iterator<Item = usize> {
    let mut rest = bits;
    std::iter::from_fn(move || {
        (rest != 0).then(|| {
            let i = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            i + 1
        })
    })
}

/// Log-likelihood of `beta` (intercept first) over compact patterns.
fn log_likelihood(patterns: &[Pattern], beta: &DVector<f64>) -> f64 {
    patterns
        .iter()
        .map(|p| {
            let eta = beta[0] + positions(p.bits).map(|i| beta[i]).sum::<f64>();
            // events · ln σ(η) + non-events · ln(1 − σ(η)) = −events·softplus(−η) − non·softplus(η),
            // and softplus(−η) = softplus(η) − η: one exponential and one logarithm a pattern.
            let sp = softplus(eta);
            -(if p.events > 0.0 { p.events * (sp - eta) } else { 0.0 }) - if p.non_events > 0.0 { p.non_events * sp } else { 0.0 }
        })
        .sum()
}

/// Gradient and information matrix of the log-likelihood at `beta` over compact patterns. The
/// design is binary, so each pattern touches only the rows and columns of its set bits.
fn score_and_information(patterns: &[Pattern], beta: &DVector<f64>) -> (DVector<f64>, DMatrix<f64>) {
    let p = beta.len();
    let mut gradient = DVector::zeros(p);
    let mut info = DMatrix::zeros(p, p);
    let mut set = Vec::with_capacity(p);
    for pat in patterns {
        let total = pat.events + pat.non_events;
        set.clear();
        set.push(0);
        set.extend(positions(pat.bits));
        let mu = sigmoid(set.iter().map(|&i| beta[i]).sum());
        let (g, h) = (pat.events - total * mu, total * mu * (1.0 - mu));
        for (a, &i) in set.iter().enumerate() {
            gradient[i] += g;
            for &j in &set[..=a] {
                info[(i, j)] += h;
            }
        }
    }
    info.fill_upper_triangle_with_lower_triangle();
    (gradient, info)
}

/// Newton-Raphson from `beta` over compact patterns: coefficients, the information matrix at
/// them, the log-likelihood and the iterations taken.
fn newton(patterns: &[Pattern], mut beta: DVector<f64>, null_ll: f64) -> (DVector<f64>, DMatrix<f64>, f64, usize) {
    let mut ll = log_likelihood(patterns, &beta);
    if !ll.is_finite() || ll < null_ll {
        // A start worse than the intercept-only model (a far-off warm start): start there.
        beta.fill(0.0);
        let events: f64 = patterns.iter().map(|p| p.events).sum();
        let n: f64 = patterns.iter().map(|p| p.events + p.non_events).sum();
        beta[0] = (events / (n - events)).ln();
        ll = log_likelihood(patterns, &beta);
    }
    let mut iterations = 0;
    for it in 1..=MAX_ITERATIONS {
        iterations = it;
        let (gradient, info) = score_and_information(patterns, &beta);
        let Some(step) = info.cholesky().map(|c| c.solve(&gradient)) else { break };
        // Step halving keeps every iteration an ascent (the likelihood is concave).
        let mut t = 1.0;
        let mut next = &beta + &step * t;
        let mut next_ll = log_likelihood(patterns, &next);
        while !(next_ll >= ll - 1e-12 * ll.abs()) && t > 1e-6 {
            t /= 2.0;
            next = &beta + &step * t;
            next_ll = log_likelihood(patterns, &next);
        }
        if !(next_ll >= ll - 1e-12 * ll.abs()) {
            // No ascent along the Newton direction: at the maximum to rounding.
            break;
        }
        let change = (next_ll - ll).abs();
        let moved = (&next - &beta).amax();
        beta = next;
        ll = next_ll;
        if moved < 1e-10 || change <= 1e-15 * ll.abs().max(1.0) {
            break;
        }
        if beta.iter().skip(1).any(|b| b.abs() > SEPARATED * 2.0) {
            break;
        }
    }
    // The information at the final estimate (for the standard errors).
    let (_, info) = score_and_information(patterns, &beta);
    (beta, info, ll, iterations)
}

/// The models of every union of predictor sets, over one table of patterns: `sets[s]` lists the
/// predictors of set s (a driver's went-well and didn't-go-well taps), model `mask` holds the
/// sets whose bit is in `mask`. Each model's patterns are the table projected on its predictors
/// (equal projections merged), computed once from the model with one more set, so the 2^sets
/// fits of a dominance analysis (and of each of its bootstrap replicates, which only change the
/// counts) cost about the number of distinct projections, not 2^sets times the table.
#[derive(Debug, Clone)]
pub struct Lattice {
    k: usize,
    /// The table's pattern bits, in order.
    bits: Vec<u32>,
    models: Vec<Model>,
    /// Models in an order where each comes after the model it is projected from.
    order: Vec<usize>,
    /// Where each model's counts start in a replicate's buffer (in `order`; the last entry is
    /// the buffer's length).
    offsets: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Model {
    /// Bit i of a projected pattern is predictor `columns[i]`.
    columns: Vec<usize>,
    /// The projected patterns' bits.
    bits: Vec<u32>,
    /// The model projected from (`None`: from the table itself), and where each of its patterns
    /// lands in this model's.
    from: Option<usize>,
    map: Vec<u32>,
}

impl Lattice {
    /// The lattice over patterns with these distinct `bits` (in the order the counts will come).
    pub fn new(bits: &[u32], k: usize, sets: &[Vec<usize>]) -> Result<Lattice, StatsError> {
        let m = sets.len();
        if m > MAX_SETS {
            return Err(StatsError::TooManyPredictors { k: m, max: MAX_SETS });
        }
        let full = (1usize << m) - 1;
        let columns_of = |mask: usize| -> Vec<usize> { (0..m).filter(|s| mask & (1 << s) != 0).flat_map(|s| sets[s].iter().copied()).collect() };
        let project_from = |source_bits: &[u32], source_columns: &[usize], columns: &[usize]| -> (Vec<u32>, Vec<u32>) {
            // Positions of this model's columns among the source's.
            let positions: Vec<usize> = columns.iter().map(|c| source_columns.iter().position(|s| s == c).expect("a sub-model")).collect();
            let projected: Vec<u32> = source_bits.iter().map(|&b| project(b, &positions)).collect();
            let mut distinct = projected.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let map = projected.iter().map(|b| distinct.binary_search(b).expect("present") as u32).collect();
            (distinct, map)
        };
        let mut order: Vec<usize> = (0..=full).collect();
        order.sort_by_key(|mask| std::cmp::Reverse(mask.count_ones()));
        let mut models: Vec<Option<Model>> = vec![None; full + 1];
        let all: Vec<usize> = (0..k).collect();
        for &mask in &order {
            let columns = columns_of(mask);
            let model = if mask == full {
                let (bits, map) = project_from(bits, &all, &columns);
                Model { columns, bits, from: None, map }
            } else {
                let parent = mask | (1 << (!mask).trailing_zeros());
                let p = models[parent].as_ref().expect("parents first");
                let (bits, map) = project_from(&p.bits, &p.columns, &columns);
                Model { columns, bits, from: Some(parent), map }
            };
            models[mask] = Some(model);
        }
        let models: Vec<Model> = models.into_iter().map(|m| m.expect("every mask")).collect();
        // Buffer offsets in `order`: a model's parent sits before it.
        let mut offsets = vec![0; models.len() + 1];
        let mut next = 0;
        for &mask in &order {
            offsets[mask] = next;
            next += models[mask].bits.len();
        }
        offsets[models.len()] = next;
        Ok(Lattice { k, bits: bits.to_vec(), models, order, offsets })
    }

    /// McFadden's R² of every model (index = mask) and its coefficients (intercept first, then
    /// one per predictor `0..k`, 0 where dropped) for the counts of the table's patterns.
    /// `starts[mask]` warm-starts each fit (a bootstrap replicate from the full sample's).
    pub fn fits(&self, patterns: &[Pattern], starts: Option<&[Vec<f64>]>) -> Result<Vec<(f64, Vec<f64>)>, StatsError> {
        let mut out = vec![(0.0, Vec::new()); self.models.len()];
        self.each_model(patterns, |mask, model, c| {
            let f = fit_compact(compact_counts(model, c), &model.columns, self.k, starts.map(|s| s[mask].as_slice()))?;
            out[mask] = (f.mcfadden(), std::iter::once(f.intercept).chain(f.coefficients.iter().map(|c| c.estimate.unwrap_or(0.0))).collect());
            Ok(())
        })?;
        Ok(out)
    }

    /// What the one-step replicate fits need of the full sample's fits (`starts[mask]`, as
    /// [`Lattice::fits`] returns them): each model's start and, at it, each projected pattern's
    /// fitted probability and its logarithms. Replicates only change the counts, so with these a
    /// replicate's fits need no exponential or logarithm.
    pub fn steps(&self, starts: &[Vec<f64>]) -> Steps {
        let at = self
            .models
            .iter()
            .zip(starts)
            .map(|(model, start)| {
                let beta: Vec<f64> = std::iter::once(start[0]).chain(model.columns.iter().map(|c| start[c + 1])).collect();
                model
                    .bits
                    .iter()
                    .map(|&bits| {
                        let eta = beta[0] + positions(bits).map(|i| beta[i]).sum::<f64>();
                        let sp = softplus(eta);
                        [sigmoid(eta), eta - sp, -sp]
                    })
                    .collect()
            })
            .collect();
        Steps { starts: starts.to_vec(), at }
    }

    /// McFadden's R² of every model for the counts of a bootstrap replicate, each from one
    /// Newton step from the full sample's estimates (the one-step bootstrap of GLMs: Moulton &
    /// Zeger 1991, *Computational Statistics & Data Analysis* 11: 53-63), with the
    /// log-likelihood at the step from its quadratic expansion at the start,
    /// ℓ(β₀) + ½ gᵀI⁻¹g. The start is within O(n^-1/2) of the replicate's estimates, so the
    /// expansion's error is O(n^-1/2) in ℓ and O(n^-3/2) in R², against a spread of the
    /// replicates' R² of O(n^-1/2) (checked against full fits in the tests). A model whose step
    /// cannot be taken (an indicator never or always tapped in the replicate) or is large (over
    /// 0.5 in log-odds) is fitted in full.
    pub fn replicate_fits(&self, patterns: &[Pattern], steps: &Steps) -> Result<Vec<f64>, StatsError> {
        let mut out = vec![0.0; self.models.len()];
        self.each_model(patterns, |mask, model, c| {
            out[mask] = match quadratic_step(c, &model.bits, &steps.at[mask], model.columns.len() + 1) {
                Some(r2) => r2,
                None => fit_compact(compact_counts(model, c), &model.columns, self.k, Some(&steps.starts[mask]))?.mcfadden(),
            };
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `visit(mask, model, counts per projected pattern)` for every model, parents first,
    /// each model's counts summed from its parent's (or the table's) in one buffer.
    fn each_model(&self, patterns: &[Pattern], mut visit: impl FnMut(usize, &Model, &[(f64, f64)]) -> Result<(), StatsError>) -> Result<(), StatsError> {
        debug_assert!(patterns.iter().map(|p| p.bits).eq(self.bits.iter().copied()));
        // Every model's counts in one buffer (model `mask` at `offsets[mask]`).
        let mut counts = vec![(0.0, 0.0); *self.offsets.last().expect("at least one model")];
        for &mask in &self.order {
            let model = &self.models[mask];
            let (done, rest) = counts.split_at_mut(self.offsets[mask]);
            let c = &mut rest[..model.bits.len()];
            match model.from {
                None => {
                    for (p, &to) in patterns.iter().zip(&model.map) {
                        c[to as usize].0 += p.events;
                        c[to as usize].1 += p.non_events;
                    }
                }
                Some(parent) => {
                    // Parents come first in `order` and sit at lower offsets.
                    let from = &done[self.offsets[parent]..self.offsets[parent] + self.models[parent].bits.len()];
                    for (&(e, n), &to) in from.iter().zip(&model.map) {
                        c[to as usize].0 += e;
                        c[to as usize].1 += n;
                    }
                }
            }
            visit(mask, model, c)?;
        }
        Ok(())
    }
}

/// A model's patterns with their counts, the empty ones left out.
fn compact_counts(model: &Model, c: &[(f64, f64)]) -> Vec<Pattern> {
    model.bits.iter().zip(c).filter(|(_, (e, n))| e + n > 0.0).map(|(&bits, &(events, non_events))| Pattern { bits, events, non_events }).collect()
}

/// The most coefficients (intercept included) a one-step replicate fit handles on the stack;
/// larger models are fitted in full.
const STEP_DIM: usize = 16;

/// See [`Lattice::steps`].
#[derive(Debug, Clone)]
pub struct Steps {
    starts: Vec<Vec<f64>>,
    /// Per model and projected pattern: [μ, ln μ, ln(1 − μ)] at the start.
    at: Vec<Vec<[f64; 3]>>,
}

/// McFadden's R² of one model after one Newton step (see [`Lattice::replicate_fits`]) from the
/// counts per projected pattern; `None` when the step cannot be taken or is large, or the
/// outcome has one value.
fn quadratic_step(counts: &[(f64, f64)], bits: &[u32], at: &[[f64; 3]], p: usize) -> Option<f64> {
    let (events, n) = counts.iter().fold((0.0, 0.0), |(e, t), c| (e + c.0, t + c.0 + c.1));
    if !(events > 0.0 && events < n) {
        return None;
    }
    if p == 1 {
        // The intercept-only model: its maximum is the null likelihood, R² = 0 exactly.
        return Some(0.0);
    }
    let share = events / n;
    let null_ll = events * share.ln() + (n - events) * (1.0 - share).ln();
    // Fixed-size and on the stack: this runs 2^sets times per replicate. Dimensions past p are
    // padded with the identity (and a zero gradient), which leaves the solution unchanged.
    if p > STEP_DIM {
        return None;
    }
    let mut gradient = nalgebra::SVector::<f64, STEP_DIM>::zeros();
    let mut info = nalgebra::SMatrix::<f64, STEP_DIM, STEP_DIM>::identity();
    for i in 0..p {
        info[(i, i)] = 0.0;
    }
    let mut ll = 0.0;
    let mut set = [0usize; STEP_DIM];
    for ((&(e, ne), &b), &[mu, ln_mu, ln_not]) in counts.iter().zip(bits).zip(at) {
        let total = e + ne;
        if total == 0.0 {
            continue;
        }
        ll += e * ln_mu + ne * ln_not;
        let (g, h) = (e - total * mu, total * mu * (1.0 - mu));
        let mut len = 1;
        for i in positions(b) {
            set[len] = i;
            len += 1;
        }
        for a in 0..len {
            let i = set[a];
            gradient[i] += g;
            for &j in &set[..=a] {
                info[(i, j)] += h;
            }
        }
    }
    info.fill_upper_triangle_with_lower_triangle();
    let chol = info.cholesky()?;
    // A pivot near zero: an indicator (almost) never or always tapped in this replicate.
    let l = chol.l_dirty();
    if (0..p).any(|i| !(l[(i, i)] * l[(i, i)] > 1e-8 * n)) {
        return None;
    }
    let step = chol.solve(&gradient);
    if !(step.amax() <= 0.5) {
        return None;
    }
    let ll = ll + 0.5 * gradient.dot(&step);
    (ll.is_finite() && null_ll < 0.0).then(|| 1.0 - ll.min(0.0) / null_ll)
}

/// The McFadden R² of the model on every union of predictor sets and its coefficients (see
/// [`Lattice`]), fitted from the intercept-only start.
pub fn subset_fits(patterns: &[Pattern], k: usize, sets: &[Vec<usize>]) -> Result<Vec<(f64, Vec<f64>)>, StatsError> {
    let bits: Vec<u32> = patterns.iter().map(|p| p.bits).collect();
    Lattice::new(&bits, k, sets)?.fits(patterns, None)
}

/// General dominance (the Shapley value) of McFadden's R² over predictor sets: `sets[s]` lists
/// the predictors of set s (a driver's went-well and didn't-go-well taps). Sums to the full
/// model's R². At most `MAX_SETS` sets (2^sets fits).
pub fn dominance(patterns: &[Pattern], k: usize, sets: &[Vec<usize>]) -> Result<Vec<f64>, StatsError> {
    let values: Vec<f64> = subset_fits(patterns, k, sets)?.into_iter().map(|v| v.0).collect();
    Ok(super::importance::shapley_values(sets.len(), &values))
}

/// Sets the dominance analysis takes at most.
pub const MAX_SETS: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;

    /// Three indicators, counts of (events, non-events) per pattern.
    fn table() -> Vec<Pattern> {
        [(0b000, 30, 50), (0b001, 40, 20), (0b010, 25, 25), (0b011, 45, 10), (0b100, 12, 30), (0b101, 20, 18), (0b110, 9, 15), (0b111, 33, 7)]
            .into_iter()
            .map(|(bits, e, n)| Pattern { bits, events: e as f64, non_events: n as f64 })
            .collect()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    /// statsmodels 0.14 `GLM(y, X, Binomial(), freq_weights=w).fit(tol=1e-14)` on the table
    /// expanded to rows (the same as `Logit` on the 389 responses).
    #[test]
    fn fit_matches_statsmodels() {
        let f = logit(&table(), 3).unwrap();
        assert!(close(f.intercept, -0.6277909843510106, 1e-9), "{f:?}");
        let want = [(1.370848695550885, 0.22246159943124988), (0.7530936688548544, 0.2235925373506466), (-0.3882555998053444, 0.2295160961379867)];
        for (c, (b, se)) in f.coefficients.iter().zip(want) {
            assert!(close(c.estimate.unwrap(), b, 1e-9) && close(c.std_error.unwrap(), se, 1e-9), "{c:?} vs {b} {se}");
        }
        assert!(close(f.log_likelihood, -239.06525787582513, 1e-12) && close(f.null_log_likelihood, -267.67595201628444, 1e-12));
        assert!(close(f.mcfadden(), 0.10688556041343134, 1e-10));
        assert_eq!((f.n, f.events), (389.0, 214.0));
    }

    /// statsmodels 0.15 `Logit(...).fit(tol=1e-14)`: Wald p-values and `conf_int()`; Nagelkerke
    /// and Estrella by their formulas from its `llf`, `llnull` and n in Python.
    #[test]
    fn wald_tests_and_pseudo_r2_match_statsmodels() {
        let f = logit(&table(), 3).unwrap();
        let p = [7.174965984385585e-10, 0.0007567384229077301, 0.09071713618606723];
        let ci = [(0.9348319727223885, 1.8068654183793806), (0.3148603484355932, 1.1913269892741167), (-0.8380988821080981, 0.06158768249740931)];
        for (j, c) in f.coefficients.iter().enumerate() {
            let w = c.wald(0.95).unwrap();
            assert!(close(w.p_value, p[j], 1e-8) && close(w.interval.low, ci[j].0, 1e-9) && close(w.interval.high, ci[j].1, 1e-9), "{j}: {w:?}");
        }
        assert!(close(f.nagelkerke().unwrap(), 0.18300557551152818, 1e-10));
        assert!(close(f.estrella().unwrap(), 0.1440722813543357, 1e-10));
        let dropped = Coefficient { estimate: None, std_error: None, dropped: Some(Dropped::NeverSet) };
        assert_eq!(dropped.wald(0.95), None);
    }

    /// A warm start (as the bootstrap uses) reaches the same fit as a cold one, and every
    /// subset fit equals a direct fit of that subset.
    #[test]
    fn warm_starts_and_subset_fits_agree_with_direct_fits() {
        let cold = logit(&table(), 3).unwrap();
        let start = [cold.intercept + 0.3, 1.0, 0.2, 0.1];
        let warm = fit(&table(), 3, &[0, 1, 2], Some(&start)).unwrap();
        for (a, b) in cold.coefficients.iter().zip(&warm.coefficients) {
            assert!(close(a.estimate.unwrap(), b.estimate.unwrap(), 1e-9));
        }
        let sets = [vec![0], vec![1, 2]];
        let fits = subset_fits(&table(), 3, &sets).unwrap();
        assert!(fits[0].0.abs() < 1e-14, "{}", fits[0].0);
        let direct = fit(&table(), 3, &[1, 2], None).unwrap();
        assert!(close(fits[2].0, direct.mcfadden(), 1e-12) && close(fits[3].0, cold.mcfadden(), 1e-12));
    }

    /// Two indicators always tapped together are aliased: the second is dropped with the reason,
    /// the first estimated as if it were alone (statsmodels on the same rows without it).
    #[test]
    fn collinear_indicators_are_dropped_as_aliased() {
        // Bits 0 and 1 always together; bit 2 the complement of bit 0 would alias with the
        // intercept too, so use an independent third indicator.
        let with_pair: Vec<Pattern> =
            table().iter().map(|p| Pattern { bits: if p.bits & 1 != 0 { p.bits | 0b1000 } else { p.bits & !0b1000 }, ..*p }).collect();
        let f = logit(&with_pair, 4).unwrap();
        assert_eq!(f.coefficients[3].dropped, Some(Dropped::Aliased));
        let alone = logit(&table(), 3).unwrap();
        for j in 0..3 {
            assert!(close(f.coefficients[j].estimate.unwrap(), alone.coefficients[j].estimate.unwrap(), 1e-9));
            assert!(close(f.coefficients[j].std_error.unwrap(), alone.coefficients[j].std_error.unwrap(), 1e-9));
        }
        // A complementary pair (every response taps exactly one of the two) with the intercept.
        let complement: Vec<Pattern> = table().iter().map(|p| Pattern { bits: if p.bits & 1 != 0 { p.bits } else { p.bits | 0b1000 }, ..*p }).collect();
        let g = logit(&complement, 4).unwrap();
        assert_eq!(g.coefficients[3].dropped, Some(Dropped::Aliased));
        assert!(close(g.log_likelihood, alone.log_likelihood, 1e-12));
    }

    /// One Newton step from the full sample's estimates gives each model's McFadden R² of a
    /// reweighted table to well within the spread of a bootstrap: on these 389 responses, within
    /// 0.1% of R², where replicates of this size spread by tens of percent of it (the error
    /// shrinks as 1/n relative to the spread).
    #[test]
    fn one_step_replicate_fits_are_close_to_full_fits() {
        let sets = [vec![0], vec![1], vec![2]];
        let bits: Vec<u32> = table().iter().map(|p| p.bits).collect();
        let lattice = Lattice::new(&bits, 3, &sets).unwrap();
        let starts: Vec<Vec<f64>> = lattice.fits(&table(), None).unwrap().into_iter().map(|v| v.1).collect();
        // A replicate: counts moved by about their Poisson spread.
        let factors = [1.1, 0.9, 1.05, 0.97, 1.12, 0.92, 1.0, 1.08];
        let replicate: Vec<Pattern> = table()
            .iter()
            .zip(factors)
            .map(|(p, f)| Pattern { events: (p.events * f).round(), non_events: (p.non_events * (2.0 - f)).round(), ..*p })
            .collect();
        let exact = lattice.fits(&replicate, None).unwrap();
        let quick = lattice.replicate_fits(&replicate, &lattice.steps(&starts)).unwrap();
        for (mask, (e, q)) in exact.iter().zip(&quick).enumerate() {
            assert!((e.0 - q).abs() < 1e-3 * e.0.max(1e-3), "model {mask}: exact {} one-step {q}", e.0);
        }
    }

    /// Brute force over the subset fits in Python (statsmodels fits, Shapley weights).
    #[test]
    fn dominance_matches_a_brute_force_loop() {
        let single = dominance(&table(), 3, &[vec![0], vec![1], vec![2]]).unwrap();
        for (got, want) in single.iter().zip([0.07778532108928068, 0.025262414625673336, 0.003837824698477302]) {
            assert!(close(*got, want, 1e-9), "{single:?}");
        }
        let sets = dominance(&table(), 3, &[vec![0, 1], vec![2]]).unwrap();
        for (got, want) in sets.iter().zip([0.10306248105936056, 0.0038230793540707797]) {
            assert!(close(*got, want, 1e-9), "{sets:?}");
        }
        assert!(close(sets.iter().sum::<f64>(), logit(&table(), 3).unwrap().mcfadden(), 1e-12));
    }

    #[test]
    fn never_set_always_set_and_separated_indicators_are_dropped_with_the_reason() {
        // Bit 1 never set; bit 2 set on every row; bit 0 separates (all its rows are events).
        let p = [Pattern { bits: 0b101, events: 20.0, non_events: 0.0 }, Pattern { bits: 0b100, events: 15.0, non_events: 25.0 }];
        let f = logit(&p, 3).unwrap();
        assert_eq!(f.coefficients[1].dropped, Some(Dropped::NeverSet));
        assert_eq!(f.coefficients[2].dropped, Some(Dropped::AlwaysSet));
        assert_eq!(f.coefficients[0].dropped, Some(Dropped::Separation));
        assert!(f.coefficients.iter().all(|c| c.estimate.is_none()));
        assert!(f.log_likelihood.is_finite() && f.mcfadden().is_finite());
        let d = dominance(&p, 3, &[vec![0], vec![1], vec![2]]).unwrap();
        assert!(d.iter().all(|v| v.is_finite()), "{d:?}");
        assert!(matches!(logit(&[Pattern { bits: 1, events: 3.0, non_events: 0.0 }], 1), Err(StatsError::ConstantVariable { .. })));
        assert!(matches!(logit(&[], 1), Err(StatsError::TooFewObservations { .. })));
    }
}
