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

/// Least squares on the raw scale, from the sums of one pass: the outcome is variable 0 of
/// `cp`, the predictors 1..p. Weighted sums give weighted least squares with the weights as
/// precision weights (statsmodels' `WLS`): σ² = Σw·e² / (n − k − 1) with n the row count,
/// Cov(b) = σ² S⁻¹ where S is the centred weighted cross-product matrix of the predictors (the
/// slope block of (XᵀWX)⁻¹ with an intercept; Seber & Lee, *Linear Regression Analysis*, 3.11).
#[derive(Debug, Clone, PartialEq)]
pub struct LeastSquares {
    pub intercept: f64,
    /// Slopes, in the predictors' order.
    pub coefficients: Vec<f64>,
    pub std_errors: Vec<f64>,
    /// Residual degrees of freedom, n − k − 1.
    pub df: f64,
    pub r2: f64,
    pub adj_r2: Option<f64>,
}

impl LeastSquares {
    /// Student-t interval and two-sided p-value of slope `j`.
    pub fn t_test(&self, j: usize, confidence: f64) -> Option<(super::Interval, f64)> {
        let (b, se) = (self.coefficients[j], self.std_errors[j]);
        if !(se > 0.0) || !(self.df > 0.0) {
            return None;
        }
        let t = super::t_quantile(0.5 + confidence / 2.0, self.df)?;
        let p = 2.0 * super::t_sf((b / se).abs(), self.df)?;
        Some((super::Interval { low: b - t * se, high: b + t * se }, p.min(1.0)))
    }
}

/// Fits [`LeastSquares`] from the sums `cp` (outcome first). Errors for too few rows, a
/// constant outcome or collinear predictors.
pub fn least_squares(cp: &super::CrossProducts) -> Result<LeastSquares, StatsError> {
    let k = cp.p - 1;
    if k == 0 {
        return Err(StatsError::NoPredictors);
    }
    let n = cp.count as f64;
    if n < (k + 2) as f64 || !(cp.sum_w > 0.0) {
        return Err(StatsError::TooFewObservations { n, needed: (k + 2) as f64 });
    }
    let s = DMatrix::from_fn(k, k, |i, j| cp.centred(i + 1, j + 1));
    let sxy = DVector::from_fn(k, |i, _| cp.centred(i + 1, 0));
    let syy = cp.centred(0, 0);
    if !(syy > 1e-12 * cp.sum_w) {
        return Err(StatsError::ConstantVariable { index: 0 });
    }
    // Collinearity judged on the scale-free (correlation) form.
    let d = DVector::from_fn(k, |i, _| s[(i, i)].max(0.0).sqrt());
    if d.iter().any(|v| !(*v > 0.0)) {
        return Err(StatsError::Collinear);
    }
    let scaled = DMatrix::from_fn(k, k, |i, j| s[(i, j)] / (d[i] * d[j]));
    let chol = cholesky(&scaled)?;
    let scaled_inverse = chol.inverse();
    let inverse = DMatrix::from_fn(k, k, |i, j| scaled_inverse[(i, j)] / (d[i] * d[j]));
    let b = &inverse * &sxy;
    let rss = (syy - b.dot(&sxy)).max(0.0);
    let df = n - k as f64 - 1.0;
    let sigma2 = rss / df;
    let means: Vec<f64> = (0..=k).map(|i| cp.sum[i] / cp.sum_w).collect();
    let r2 = 1.0 - rss / syy;
    Ok(LeastSquares {
        intercept: means[0] - (0..k).map(|j| b[j] * means[j + 1]).sum::<f64>(),
        coefficients: b.iter().copied().collect(),
        std_errors: (0..k).map(|j| (sigma2 * inverse[(j, j)]).sqrt()).collect(),
        df,
        r2,
        adj_r2: (df > 0.0).then(|| 1.0 - (1.0 - r2) * (n - 1.0) / df),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CrossProducts;

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

    /// statsmodels 0.15 `OLS(y, add_constant(X)).fit()` and `WLS(..., weights=w)` on the cells
    /// below expanded to 119 rows (y, x1, x2, count, w).
    #[test]
    fn least_squares_matches_statsmodels_ols_and_wls() {
        let cells = [
            (5, 1, 0, 12, 1.0),
            (4, 1, 0, 20, 1.5),
            (3, 0, 0, 25, 1.0),
            (2, 0, 1, 14, 0.5),
            (1, 0, 1, 6, 2.0),
            (4, 1, 1, 9, 1.0),
            (5, 0, 0, 11, 0.8),
            (3, 1, 1, 7, 1.2),
            (2, 0, 0, 10, 1.0),
            (4, 0, 1, 5, 1.0),
        ];
        let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol * b.abs().max(1.0);
        let want = [
            (
                false,
                [3.2205522544564884, 1.2124038797623233, -0.9863684026564137],
                [0.11924162191052473, 0.1629728364104679, 0.1682386549289568],
                0.44080857501270476,
                0.4311673435474066,
                1.9101113689882383e-11,
                (0.8896156422732392, 1.5351921172514076),
            ),
            (
                true,
                [3.09702907914955, 1.2684501192611566, -1.040773815264144],
                [0.12240846657061764, 0.15710521826163906, 0.16728417749594174],
                0.4887517335543895,
                0.47993710827084457,
                7.10450046535435e-13,
                (0.9572834388501437, 1.5796167996721695),
            ),
        ];
        for (weighted, b, se, r2, adj, p1, ci1) in want {
            let mut cp = CrossProducts::new(3);
            for (y, x1, x2, c, w) in cells {
                let w = if weighted { w } else { 1.0 };
                cp.add_rows(&[y as f64 - 3.0, x1 as f64, x2 as f64], c, w * c as f64, w * w * c as f64);
            }
            let fit = least_squares(&cp).unwrap();
            assert!(close(fit.intercept + 3.0, b[0], 1e-10), "{weighted}: {fit:?}");
            for j in 0..2 {
                assert!(close(fit.coefficients[j], b[j + 1], 1e-10) && close(fit.std_errors[j], se[j + 1], 1e-10), "{weighted}: {fit:?}");
            }
            assert!(close(fit.r2, r2, 1e-10) && close(fit.adj_r2.unwrap(), adj, 1e-10) && fit.df == 116.0);
            let (ci, p) = fit.t_test(0, 0.95).unwrap();
            assert!(close(p, p1, 1e-6) && close(ci.low, ci1.0, 1e-10) && close(ci.high, ci1.1, 1e-10), "{ci:?} {p}");
        }
    }
}
