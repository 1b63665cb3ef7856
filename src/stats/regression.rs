//! Least squares from a correlation matrix: standardized coefficients, R², adjusted R² and
//! variance inflation factors, for the outcome at index 0 and predictors 1..=k. Working from the
//! matrix (not the rows) is what lets one pass of sums serve any number of regressions.

use super::StatsError;
use nalgebra::{DMatrix, DVector};

/// Predictor correlation matrices whose Cholesky pivots fall below this (relative) are treated
/// as collinear: a VIF above 1e10 carries no information.
const PIVOT_TOLERANCE: f64 = 1e-10;

/// An OLS fit on standardized variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Ols {
    /// Correlation of each predictor with the outcome.
    pub r: Vec<f64>,
    /// Standardized coefficients (betas).
    pub beta: Vec<f64>,
    pub r2: f64,
    /// `1 − (1 − R²)(n − 1)/(n − k − 1)`; `None` when n ≤ k + 1.
    pub adj_r2: Option<f64>,
    /// Variance inflation factor of each predictor: the diagonal of the inverse predictor
    /// correlation matrix.
    pub vif: Vec<f64>,
}

/// Splits a full correlation matrix (outcome first) into Rxx and rxy.
pub fn split(r: &DMatrix<f64>) -> (DMatrix<f64>, DVector<f64>) {
    let k = r.nrows() - 1;
    (r.view((1, 1), (k, k)).into_owned(), r.view((1, 0), (k, 1)).column(0).into_owned())
}

/// Cholesky factor of a predictor correlation matrix, or a collinearity error.
fn cholesky(rxx: &DMatrix<f64>) -> Result<nalgebra::Cholesky<f64, nalgebra::Dyn>, StatsError> {
    let chol = rxx.clone().cholesky().ok_or(StatsError::Collinear)?;
    let l = chol.l_dirty();
    if (0..rxx.nrows()).any(|i| !(l[(i, i)] * l[(i, i)] > PIVOT_TOLERANCE)) {
        return Err(StatsError::Collinear);
    }
    Ok(chol)
}

/// R² of the regression of the outcome on the predictors in `subset` (a bit mask over 0..k).
pub fn r2_subset(rxx: &DMatrix<f64>, rxy: &DVector<f64>, subset: u32) -> Result<f64, StatsError> {
    let idx: Vec<usize> = (0..rxx.nrows()).filter(|i| subset & (1 << i) != 0).collect();
    if idx.is_empty() {
        return Ok(0.0);
    }
    let sub = rxx.select_rows(&idx).select_columns(&idx);
    let r = rxy.select_rows(&idx);
    let beta = cholesky(&sub)?.solve(&r);
    Ok(r.dot(&beta))
}

/// OLS of the outcome (index 0 of `r`) on the other variables, for `n` observations
/// (Kish's effective n with weights).
pub fn ols(r: &DMatrix<f64>, n: f64) -> Result<Ols, StatsError> {
    let k = r.nrows() - 1;
    if k == 0 {
        return Err(StatsError::NoPredictors);
    }
    if n < (k + 1) as f64 {
        return Err(StatsError::TooFewObservations { n, needed: (k + 1) as f64 });
    }
    let (rxx, rxy) = split(r);
    let chol = cholesky(&rxx)?;
    let beta = chol.solve(&rxy);
    let r2 = rxy.dot(&beta);
    let inv = chol.inverse();
    let df = n - k as f64 - 1.0;
    Ok(Ols {
        r: rxy.iter().copied().collect(),
        beta: beta.iter().copied().collect(),
        r2,
        adj_r2: (df > 0.0).then(|| 1.0 - (1.0 - r2) * (n - 1.0) / df),
        vif: (0..k).map(|i| inv[(i, i)]).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::CrossProducts;

    /// y = 2 x1 − x2 + noise-free: R² = 1 would be degenerate, so add a third, orthogonal part.
    #[test]
    fn ols_from_correlations_equals_normal_equations() {
        let xs = [[1.0, 2.0], [2.0, 1.0], [3.0, 5.0], [4.0, 2.0], [5.0, 4.0], [6.0, 7.0], [7.0, 3.0]];
        let e = [0.5, -0.3, 0.2, -0.6, 0.1, 0.4, -0.3];
        let mut cp = CrossProducts::new(3);
        for (x, e) in xs.iter().zip(e) {
            cp.add_row(&[2.0 * x[0] - x[1] + e, x[0], x[1]], 1.0);
        }
        let fit = ols(&cp.correlation().unwrap(), 7.0).unwrap();
        // Raw-scale slopes from standardized betas: b_j = beta_j * sd_y / sd_j.
        let sd = |i| cp.centred(i, i).sqrt();
        let b1 = fit.beta[0] * sd(0) / sd(1);
        let b2 = fit.beta[1] * sd(0) / sd(2);
        // Normal equations on centred data, solved directly.
        let (s11, s22, s12) = (cp.centred(1, 1), cp.centred(2, 2), cp.centred(1, 2));
        let (s1y, s2y) = (cp.centred(1, 0), cp.centred(2, 0));
        let det = s11 * s22 - s12 * s12;
        assert!((b1 - (s22 * s1y - s12 * s2y) / det).abs() < 1e-10);
        assert!((b2 - (s11 * s2y - s12 * s1y) / det).abs() < 1e-10);
        assert!(fit.r2 > 0.9 && fit.r2 < 1.0);
        assert!((fit.vif[0] - 1.0 / (1.0 - (s12 * s12) / (s11 * s22))).abs() < 1e-10);
    }

    #[test]
    fn collinear_and_too_small_inputs_are_errors() {
        let r = DMatrix::from_row_slice(3, 3, &[1.0, 0.5, 0.5, 0.5, 1.0, 1.0, 0.5, 1.0, 1.0]);
        assert_eq!(ols(&r, 100.0).unwrap_err(), StatsError::Collinear);
        let ok = DMatrix::from_row_slice(3, 3, &[1.0, 0.5, 0.3, 0.5, 1.0, 0.2, 0.3, 0.2, 1.0]);
        assert!(matches!(ols(&ok, 2.0), Err(StatsError::TooFewObservations { .. })));
        let fit = ols(&ok, 3.0).unwrap();
        assert_eq!(fit.adj_r2, None, "n = k + 1 leaves no residual degrees of freedom");
    }
}
