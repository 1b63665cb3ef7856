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
}

impl Dropped {
    pub fn reason(self) -> &'static str {
        match self {
            Dropped::NeverSet => "no response has this indicator",
            Dropped::AlwaysSet => "every response has this indicator (not distinguishable from the intercept)",
            Dropped::Separation => "(quasi-)complete separation: the outcome is determined by this indicator in the data, the estimate is infinite",
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

/// Log-likelihood of coefficients `beta` (intercept first) over `columns` of the patterns.
fn log_likelihood(patterns: &[Pattern], columns: &[usize], beta: &DVector<f64>) -> f64 {
    patterns
        .iter()
        .map(|p| {
            let eta = linear(p.bits, columns, beta);
            // events · ln σ(η) + non-events · ln(1 − σ(η)) = −events·softplus(−η) − non·softplus(η)
            -(if p.events > 0.0 { p.events * softplus(-eta) } else { 0.0 }) - if p.non_events > 0.0 { p.non_events * softplus(eta) } else { 0.0 }
        })
        .sum()
}

fn linear(bits: u32, columns: &[usize], beta: &DVector<f64>) -> f64 {
    beta[0] + columns.iter().enumerate().filter(|(_, c)| bits & (1 << **c) != 0).map(|(i, _)| beta[i + 1]).sum::<f64>()
}

/// Fits the outcome on predictors `0..k` (bits of the patterns), each kept or dropped as the
/// data allow. `Err` only for no data or an outcome without both values.
pub fn logit(patterns: &[Pattern], k: usize) -> Result<Logit, StatsError> {
    fit(patterns, k, &(0..k).collect::<Vec<_>>())
}

/// Fits on the predictors of `subset` only (others ignored): the model behind one term of the
/// dominance sums.
fn fit(patterns: &[Pattern], k: usize, subset: &[usize]) -> Result<Logit, StatsError> {
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
    for &j in subset {
        let set: f64 = patterns.iter().filter(|p| p.bits & (1 << j) != 0).map(|p| p.events + p.non_events).sum();
        if !(set > 0.0) {
            dropped[j] = Some(Dropped::NeverSet);
        } else if !(set < n) {
            dropped[j] = Some(Dropped::AlwaysSet);
        }
    }
    loop {
        let columns: Vec<usize> = subset.iter().copied().filter(|j| dropped[*j].is_none()).collect();
        let (beta, info, ll, iterations) = newton(patterns, &columns, share);
        // Separation: a coefficient past any finite odds ratio the data could support. Drop
        // the largest and refit, so the others (and the likelihood) stay finite.
        let worst = columns.iter().enumerate().map(|(i, c)| (beta[i + 1].abs(), *c)).filter(|(b, _)| *b > SEPARATED).max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, c)) = worst {
            dropped[c] = Some(Dropped::Separation);
            continue;
        }
        let cov = info.clone().cholesky().map(|c| c.inverse());
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

/// Newton-Raphson from the intercept-only fit: coefficients, information matrix, log-likelihood
/// and the iterations taken.
fn newton(patterns: &[Pattern], columns: &[usize], share: f64) -> (DVector<f64>, DMatrix<f64>, f64, usize) {
    let p = columns.len() + 1;
    let mut beta = DVector::zeros(p);
    beta[0] = (share / (1.0 - share)).ln();
    let mut ll = log_likelihood(patterns, columns, &beta);
    let design = |bits: u32| -> DVector<f64> {
        DVector::from_iterator(p, std::iter::once(1.0).chain(columns.iter().map(|c| if bits & (1 << c) != 0 { 1.0 } else { 0.0 })))
    };
    let mut info = DMatrix::zeros(p, p);
    let mut iterations = 0;
    for it in 1..=MAX_ITERATIONS {
        iterations = it;
        let mut gradient = DVector::zeros(p);
        info.fill(0.0);
        for pat in patterns {
            let total = pat.events + pat.non_events;
            if !(total > 0.0) {
                continue;
            }
            let x = design(pat.bits);
            let mu = sigmoid(x.dot(&beta));
            gradient.axpy(pat.events - total * mu, &x, 1.0);
            info.ger(total * mu * (1.0 - mu), &x, &x, 1.0);
        }
        let Some(step) = info.clone().cholesky().map(|c| c.solve(&gradient)) else { break };
        // Step halving keeps every iteration an ascent (the likelihood is concave).
        let mut t = 1.0;
        let mut next = &beta + &step * t;
        let mut next_ll = log_likelihood(patterns, columns, &next);
        while next_ll < ll - 1e-12 * ll.abs() && t > 1e-6 {
            t /= 2.0;
            next = &beta + &step * t;
            next_ll = log_likelihood(patterns, columns, &next);
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
    info.fill(0.0);
    for pat in patterns {
        let total = pat.events + pat.non_events;
        if total > 0.0 {
            let x = design(pat.bits);
            let mu = sigmoid(x.dot(&beta));
            info.ger(total * mu * (1.0 - mu), &x, &x, 1.0);
        }
    }
    (beta, info, ll, iterations)
}

/// General dominance (the Shapley value) of McFadden's R² over predictor sets: `sets[s]` lists
/// the predictors of set s (a driver's went-well and didn't-go-well taps). Sums to the full
/// model's R². At most `MAX_SETS` sets (2^sets fits).
pub fn dominance(patterns: &[Pattern], k: usize, sets: &[Vec<usize>]) -> Result<Vec<f64>, StatsError> {
    let m = sets.len();
    if m > MAX_SETS {
        return Err(StatsError::TooManyPredictors { k: m, max: MAX_SETS });
    }
    let values: Vec<f64> = (0..1u32 << m)
        .map(|mask| {
            let subset: Vec<usize> = (0..m).filter(|s| mask & (1 << s) != 0).flat_map(|s| sets[s].iter().copied()).collect();
            fit(patterns, k, &subset).map(|f| f.mcfadden())
        })
        .collect::<Result<_, _>>()?;
    Ok(super::importance::shapley_values(m, &values))
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
        let p = [
            Pattern { bits: 0b101, events: 20.0, non_events: 0.0 },
            Pattern { bits: 0b100, events: 15.0, non_events: 25.0 },
        ];
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
