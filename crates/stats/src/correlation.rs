//! Sufficient statistics of several variables (count, Σw, Σw², Σw·x, Σw·x·xᵀ) and the Pearson
//! correlation matrix they give. The sums are additive, so they can be accumulated per file, per
//! group or per bootstrap bucket and merged; one pass over the rows is enough.
//!
//! Values should be shifted by a constant near their centre before summing (the lake's
//! queries subtract 3 from 1-5 answers): the centred cross-products `Σw·xᵢxⱼ − Σw·xᵢ·Σw·xⱼ/Σw`
//! are shift-invariant, and the shift keeps the subtraction well conditioned.

use super::StatsError;
use nalgebra::DMatrix;

/// Weighted sums over the complete cases of `p` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossProducts {
    pub p: usize,
    /// Number of rows.
    pub count: u64,
    pub sum_w: f64,
    pub sum_w2: f64,
    /// Σ w·xᵢ.
    pub sum: Vec<f64>,
    /// Σ w·xᵢ·xⱼ, row-major p×p (symmetric).
    pub cross: Vec<f64>,
}

impl CrossProducts {
    pub fn new(p: usize) -> Self {
        CrossProducts { p, count: 0, sum_w: 0.0, sum_w2: 0.0, sum: vec![0.0; p], cross: vec![0.0; p * p] }
    }

    /// Adds one row with weight `w`.
    pub fn add_row(&mut self, x: &[f64], w: f64) {
        self.add_rows(x, 1, w, w * w);
    }

    /// Adds `count` rows that all have the values `x`, with weights summing to `sum_w` and
    /// squared weights to `sum_w2` (a cell of a pattern table: `count, count, count` unweighted).
    pub fn add_rows(&mut self, x: &[f64], count: u64, sum_w: f64, sum_w2: f64) {
        debug_assert_eq!(x.len(), self.p);
        self.count += count;
        self.sum_w += sum_w;
        self.sum_w2 += sum_w2;
        for i in 0..self.p {
            self.sum[i] += sum_w * x[i];
            for j in 0..self.p {
                self.cross[i * self.p + j] += sum_w * x[i] * x[j];
            }
        }
    }

    /// Adds `factor` times `other` (factor 1 merges; a Poisson count makes a bootstrap replicate).
    pub fn add_scaled(&mut self, other: &CrossProducts, factor: f64) {
        debug_assert_eq!(self.p, other.p);
        self.count += (other.count as f64 * factor).round() as u64;
        self.sum_w += factor * other.sum_w;
        self.sum_w2 += factor * other.sum_w2;
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += factor * b;
        }
        for (a, b) in self.cross.iter_mut().zip(&other.cross) {
            *a += factor * b;
        }
    }

    /// Kish's effective sample size (Σw)²/Σw² (the row count without weights).
    pub fn n_effective(&self) -> f64 {
        if self.sum_w2 > 0.0 {
            self.sum_w * self.sum_w / self.sum_w2
        } else {
            0.0
        }
    }

    /// Centred sum of cross-products Σw(xᵢ−x̄ᵢ)(xⱼ−x̄ⱼ).
    pub fn centred(&self, i: usize, j: usize) -> f64 {
        self.cross[i * self.p + j] - self.sum[i] * self.sum[j] / self.sum_w
    }

    /// Weighted mean of variable `i`.
    pub fn mean(&self, i: usize) -> Option<f64> {
        (self.sum_w > 0.0).then(|| self.sum[i] / self.sum_w)
    }

    /// The Pearson correlation matrix. Errors when there are fewer than two rows or a variable
    /// is constant (its index is named).
    pub fn correlation(&self) -> Result<DMatrix<f64>, StatsError> {
        if self.count < 2 || self.sum_w <= 0.0 {
            return Err(StatsError::TooFewObservations { n: self.count as f64, needed: 2.0 });
        }
        let sd: Vec<f64> = (0..self.p).map(|i| self.centred(i, i).max(0.0).sqrt()).collect();
        for (i, s) in sd.iter().enumerate() {
            // Relative to the scale of the raw second moment: rounding noise is not variance.
            let scale = (self.cross[i * self.p + i] / self.sum_w).abs().max(1.0);
            if !(s * s / self.sum_w > 1e-12 * scale) {
                return Err(StatsError::ConstantVariable { index: i });
            }
        }
        Ok(DMatrix::from_fn(self.p, self.p, |i, j| if i == j { 1.0 } else { (self.centred(i, j) / (sd[i] * sd[j])).clamp(-1.0, 1.0) }))
    }
}

/// Per-pair sums for pairwise deletion: for the pair (i, j), sums over the rows where both are
/// present.
#[derive(Debug, Clone, PartialEq)]
pub struct PairSums {
    pub count: u64,
    pub sum_w: f64,
    pub sum_w2: f64,
    pub sum_i: f64,
    pub sum_j: f64,
    pub sum_ii: f64,
    pub sum_jj: f64,
    pub sum_ij: f64,
}

impl PairSums {
    /// The correlation of the pair, `None` when either is constant or there are < 2 rows.
    pub fn correlation(&self) -> Option<f64> {
        if self.count < 2 || self.sum_w <= 0.0 {
            return None;
        }
        let sii = self.sum_ii - self.sum_i * self.sum_i / self.sum_w;
        let sjj = self.sum_jj - self.sum_j * self.sum_j / self.sum_w;
        let sij = self.sum_ij - self.sum_i * self.sum_j / self.sum_w;
        let tiny = 1e-12 * self.sum_w;
        (sii > tiny && sjj > tiny).then(|| (sij / (sii * sjj).sqrt()).clamp(-1.0, 1.0))
    }
}

/// The correlation matrix from pairwise-complete sums (`pairs[i][j]`, i < j used). The result
/// need not be positive definite; regression on it reports that as collinearity.
pub fn pairwise_correlation(p: usize, pair: impl Fn(usize, usize) -> PairSums) -> Result<DMatrix<f64>, StatsError> {
    let mut r = DMatrix::identity(p, p);
    for i in 0..p {
        for j in (i + 1)..p {
            let s = pair(i, j);
            let v = s.correlation().ok_or(if s.count < 2 {
                StatsError::TooFewObservations { n: s.count as f64, needed: 2.0 }
            } else {
                StatsError::ConstantVariable { index: i }
            })?;
            r[(i, j)] = v;
            r[(j, i)] = v;
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_is_shift_invariant_and_matches_the_textbook_formula() {
        let rows = [[1.0, 2.0, 5.0], [2.0, 1.0, 4.0], [3.0, 4.0, 2.0], [4.0, 3.0, 1.0], [5.0, 5.0, 3.0]];
        let mut a = CrossProducts::new(3);
        let mut b = CrossProducts::new(3);
        for r in &rows {
            a.add_row(r, 1.0);
            b.add_row(&[r[0] - 3.0, r[1] + 1e6, r[2] * 1.0 - 3.0], 1.0);
        }
        // r(x0, x1): x0 = 1..5 (mean 3), x1 = 2,1,4,3,5 (mean 3): Σdxdy = 8, Σdx² = Σdy² = 10.
        let ra = a.correlation().unwrap();
        assert!((ra[(0, 1)] - 0.8).abs() < 1e-12);
        let rb = b.correlation().unwrap();
        assert!((ra - rb).abs().max() < 1e-9);
    }

    #[test]
    fn merging_equals_one_pass() {
        let mut all = CrossProducts::new(2);
        let mut parts = [CrossProducts::new(2), CrossProducts::new(2)];
        for i in 0..10 {
            let x = [i as f64, (i * i % 7) as f64];
            let w = 1.0 + (i % 3) as f64;
            all.add_row(&x, w);
            parts[i % 2].add_row(&x, w);
        }
        let mut merged = CrossProducts::new(2);
        merged.add_scaled(&parts[0], 1.0);
        merged.add_scaled(&parts[1], 1.0);
        assert_eq!(merged.count, all.count);
        assert!((merged.correlation().unwrap() - all.correlation().unwrap()).abs().max() < 1e-12);
    }

    #[test]
    fn constant_variable_is_named() {
        let mut a = CrossProducts::new(2);
        for i in 0..5 {
            a.add_row(&[i as f64, 4.0], 1.0);
        }
        assert_eq!(a.correlation().unwrap_err(), StatsError::ConstantVariable { index: 1 });
        assert!(matches!(CrossProducts::new(2).correlation(), Err(StatsError::TooFewObservations { .. })));
    }
}

/// Pearson's correlation of paired values with its test and interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pearson {
    pub n: usize,
    pub r: f64,
    /// Interval by Fisher's z transformation (needs n > 3).
    pub ci: Option<super::Interval>,
    /// Two-sided p-value of r = 0 (Student t with n − 2 degrees of freedom).
    pub p_value: Option<f64>,
}

/// Pearson's r of `x` and `y` (equal lengths), the t-test of r = 0 and Fisher's z interval, as
/// R's `cor.test` reports them. `None` with fewer than 3 pairs or a constant variable.
pub fn pearson(x: &[f64], y: &[f64], confidence: f64) -> Option<Pearson> {
    let n = x.len().min(y.len());
    if n < 3 {
        return None;
    }
    let (mx, my) = (x[..n].iter().sum::<f64>() / n as f64, y[..n].iter().sum::<f64>() / n as f64);
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dx, dy) = (x[i] - mx, y[i] - my);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    let r = (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0);
    let df = (n - 2) as f64;
    let p_value = if r.abs() >= 1.0 {
        Some(0.0)
    } else {
        let t = r * (df / (1.0 - r * r)).sqrt();
        super::distribution::t_sf(t.abs(), df).map(|s| 2.0 * s)
    };
    let ci = (n > 3 && r.abs() < 1.0).then(|| {
        let z = r.atanh();
        let half = super::z_quantile(confidence) / ((n - 3) as f64).sqrt();
        super::Interval { low: (z - half).tanh(), high: (z + half).tanh() }
    });
    Some(Pearson { n, r, ci, p_value })
}

#[cfg(test)]
mod pearson_tests {
    use super::*;

    fn mtcars(column: &str) -> Vec<f64> {
        let text = include_str!("../../../tests/fixtures/mtcars.csv");
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').map(|h| h.trim_matches('"')).collect();
        let j = header.iter().position(|h| *h == column).unwrap();
        lines.filter(|l| !l.is_empty()).map(|l| l.split(',').nth(j).unwrap().parse().unwrap()).collect()
    }

    /// R: cor.test(mtcars$mpg, mtcars$wt) gives r = -0.8676594, t = -9.559, df = 30,
    /// p-value = 1.294e-10, 95 percent interval -0.9338264 to -0.7440872.
    #[test]
    fn matches_r_cor_test_on_mtcars() {
        let p = pearson(&mtcars("mpg"), &mtcars("wt"), 0.95).unwrap();
        assert_eq!(p.n, 32);
        assert!((p.r + 0.8676594).abs() < 1e-7, "{}", p.r);
        let ci = p.ci.unwrap();
        assert!((ci.low + 0.9338264).abs() < 1e-6 && (ci.high + 0.7440872).abs() < 1e-6, "{ci:?}");
        assert!((p.p_value.unwrap() / 1.294e-10 - 1.0).abs() < 1e-3, "{:?}", p.p_value);
    }

    #[test]
    fn degenerate_input_gives_none() {
        assert!(pearson(&[1.0, 2.0], &[1.0, 2.0], 0.95).is_none());
        assert!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0], 0.95).is_none());
    }
}
