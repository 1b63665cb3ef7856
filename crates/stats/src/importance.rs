//! Relative importance of correlated predictors, all from the correlation matrix (outcome at
//! index 0):
//!
//! - first: r² of the predictor alone; last: the drop in R² when it is removed from the full
//!   model; Pratt: βⱼ·rⱼ (sums to R²). (Johnson & LeBreton, "History and use of relative
//!   importance indices in organizational research", Organizational Research Methods 7, 2004.)
//! - Johnson's relative weights: the regression on the best-fitting orthogonal counterparts of
//!   the predictors, apportioned back (J. W. Johnson, Multivariate Behavioral Research 35, 2000);
//!   raw weights sum to R².
//! - Shapley value / LMG: each predictor's R² gain averaged over all orders of entry (Lindeman,
//!   Merenda & Gold 1980; Grömping, J. Statistical Software 17, 2006, R package relaimpo),
//!   computed exactly over all 2^k subsets; raw values sum to R².

use super::regression::{ols, r2_subset, split, Ols};
use super::StatsError;
use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Exact Shapley decomposition is offered up to this many predictors (2^15 subset fits).
pub const MAX_SHAPLEY_PREDICTORS: usize = 15;

/// All importance measures of one regression.
#[derive(Debug, Clone, PartialEq)]
pub struct Importance {
    pub ols: Ols,
    pub first: Vec<f64>,
    /// R² minus R² without the predictor, computed as that difference (as relaimpo's `last`):
    /// its absolute error is that of R² (about 1e-16), so a value below about 1e-7 has lost
    /// relative precision (fewer than 9 significant digits left). Known and left as is: the
    /// identity last = β² / [R_xx⁻¹]_jj would give it to full relative precision.
    pub last: Vec<f64>,
    pub pratt: Vec<f64>,
    /// Johnson's raw relative weights (sum to R²).
    pub johnson: Vec<f64>,
    /// Shapley / LMG values (sum to R²).
    pub shapley: Vec<f64>,
}

impl Importance {
    /// Each value divided by their sum (R²): shares summing to 1. `None` when R² is 0.
    pub fn shares(values: &[f64]) -> Option<Vec<f64>> {
        let total: f64 = values.iter().sum();
        (total > 0.0).then(|| values.iter().map(|v| v / total).collect())
    }
}

/// Computes every measure for the correlation matrix `r` (outcome first) of `n` observations.
pub fn importance(r: &DMatrix<f64>, n: f64) -> Result<Importance, StatsError> {
    let fit = ols(r, n)?;
    let (rxx, rxy) = split(r);
    let k = rxx.nrows();
    let full = (1u32 << k) - 1;
    let last = (0..k).map(|j| r2_subset(&rxx, &rxy, full & !(1 << j)).map(|without| fit.r2 - without)).collect::<Result<Vec<_>, _>>()?;
    Ok(Importance {
        first: fit.r.iter().map(|r| r * r).collect(),
        last,
        pratt: fit.beta.iter().zip(&fit.r).map(|(b, r)| b * r).collect(),
        johnson: johnson(&rxx, &rxy)?,
        shapley: shapley(&rxx, &rxy)?,
        ols: fit,
    })
}

/// Johnson's relative weights: with Rxx = VΛVᵀ and Λ½ = VΛ^½Vᵀ (the correlations of the
/// predictors with their orthogonal counterparts Z), β_Z = Λ^-½ rxy and
/// εⱼ = Σₖ (Λ½)ⱼₖ² β_Zₖ².
pub fn johnson(rxx: &DMatrix<f64>, rxy: &DVector<f64>) -> Result<Vec<f64>, StatsError> {
    let eig = SymmetricEigen::new(rxx.clone());
    if eig.eigenvalues.iter().any(|l| !(*l > 1e-10)) {
        return Err(StatsError::Collinear);
    }
    let v = &eig.eigenvectors;
    let sqrt_l = DMatrix::from_diagonal(&eig.eigenvalues.map(f64::sqrt));
    let inv_sqrt_l = DMatrix::from_diagonal(&eig.eigenvalues.map(|l| 1.0 / l.sqrt()));
    let lambda = v * sqrt_l * v.transpose();
    let beta_z = v * inv_sqrt_l * v.transpose() * rxy;
    let k = rxx.nrows();
    Ok((0..k).map(|j| (0..k).map(|m| lambda[(j, m)].powi(2) * beta_z[m].powi(2)).sum()).collect())
}

/// Shapley values of R² over all 2^k subsets: φⱼ = Σ_{S∌j} |S|!(k−|S|−1)!/k! · (R²(S∪j) − R²(S)).
pub fn shapley(rxx: &DMatrix<f64>, rxy: &DVector<f64>) -> Result<Vec<f64>, StatsError> {
    let k = rxx.nrows();
    if k > MAX_SHAPLEY_PREDICTORS {
        return Err(StatsError::TooManyPredictors { k, max: MAX_SHAPLEY_PREDICTORS });
    }
    let r2: Vec<f64> = (0..1u32 << k).map(|s| r2_subset(rxx, rxy, s)).collect::<Result<_, _>>()?;
    Ok(shapley_values(k, &r2))
}

/// The Shapley value of each of `k` players for a game given by `value[mask]` over all 2^k
/// coalitions (bit j = player j): Σ_S |S|!(k−|S|−1)!/k! · (v(S ∪ j) − v(S)) over the S without j
/// (Shapley 1953). Sums to v(all) − v(∅). The linear LMG and the logistic dominance use it.
pub fn shapley_values(k: usize, value: &[f64]) -> Vec<f64> {
    debug_assert_eq!(value.len(), 1 << k);
    // weight[s] = s!(k−s−1)!/k!
    let fact = |m: usize| (1..=m).map(|x| x as f64).product::<f64>();
    let weight: Vec<f64> = (0..k).map(|s| fact(s) * fact(k - s - 1) / fact(k)).collect();
    let mut phi = vec![0.0; k];
    for s in 0..(1u32 << k) {
        let size = s.count_ones() as usize;
        for (j, p) in phi.iter_mut().enumerate() {
            if s & (1 << j) == 0 {
                *p += weight[size] * (value[(s | (1 << j)) as usize] - value[s as usize]);
            }
        }
    }
    phi
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CrossProducts;

    /// mtcars (R datasets, public domain), columns by name from the fixture.
    fn mtcars(columns: &[&str]) -> CrossProducts {
        let text = include_str!("../../../tests/fixtures/mtcars.csv");
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let idx: Vec<usize> = columns.iter().map(|c| header.iter().position(|h| h == c).unwrap()).collect();
        let mut cp = CrossProducts::new(columns.len());
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            cp.add_row(&idx.iter().map(|&i| f[i].parse::<f64>().unwrap()).collect::<Vec<_>>(), 1.0);
        }
        assert_eq!(cp.count, 32);
        cp
    }

    /// relaimpo / domir: LMG of mpg ~ am + vs + cyl on mtcars.
    #[test]
    fn lmg_matches_relaimpo_on_mtcars() {
        let cp = mtcars(&["mpg", "am", "vs", "cyl"]);
        let imp = importance(&cp.correlation().unwrap(), 32.0).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 5e-8;
        assert!(close(imp.ols.r2, 0.7619773), "{}", imp.ols.r2);
        for (got, want) in imp.shapley.iter().zip([0.1774892, 0.2027032, 0.3817849]) {
            assert!(close(*got, want), "{got} vs {want}");
        }
    }

    #[test]
    fn decompositions_sum_to_r2() {
        let cp = mtcars(&["mpg", "cyl", "disp", "hp", "wt", "qsec"]);
        let imp = importance(&cp.correlation().unwrap(), 32.0).unwrap();
        let sum = |v: &[f64]| v.iter().sum::<f64>();
        for (name, v) in [("shapley", &imp.shapley), ("johnson", &imp.johnson), ("pratt", &imp.pratt)] {
            assert!((sum(v) - imp.ols.r2).abs() < 1e-10, "{name}");
        }
        let shares = Importance::shares(&imp.shapley).unwrap();
        assert!((sum(&shares) - 1.0).abs() < 1e-12);
        // first >= shapley >= last is typical but not guaranteed; last is never negative.
        assert!(imp.last.iter().all(|l| *l >= -1e-12));
    }

    /// With uncorrelated predictors every measure equals r².
    #[test]
    fn orthogonal_predictors_have_equal_measures() {
        let r = DMatrix::from_row_slice(3, 3, &[1.0, 0.3, 0.4, 0.3, 1.0, 0.0, 0.4, 0.0, 1.0]);
        let imp = importance(&r, 100.0).unwrap();
        for v in [&imp.first, &imp.last, &imp.pratt, &imp.johnson, &imp.shapley] {
            assert!((v[0] - 0.09).abs() < 1e-12 && (v[1] - 0.16).abs() < 1e-12, "{v:?}");
        }
    }

    #[test]
    fn shapley_is_exact_for_fifteen_predictors() {
        // An equicorrelated design: by symmetry the Shapley values of equal-r predictors are equal.
        let k = 15;
        let r = DMatrix::from_fn(k + 1, k + 1, |i, j| {
            if i == j {
                1.0
            } else if i == 0 || j == 0 {
                0.3
            } else {
                0.2
            }
        });
        let imp = importance(&r, 1000.0).unwrap();
        let first = imp.shapley[0];
        assert!(imp.shapley.iter().all(|v| (v - first).abs() < 1e-12));
        assert!((first * k as f64 - imp.ols.r2).abs() < 1e-10);
        assert!(matches!(shapley(&DMatrix::identity(16, 16), &DVector::zeros(16)), Err(StatsError::TooManyPredictors { .. })));
    }
}
