//! Comparisons of two groups: Newcombe's hybrid score interval for a difference of proportions,
//! the two-proportion z-test, and Welch's unequal-variance t-test and interval.

use super::interval::{wilson, Interval};
use statrs::distribution::{ContinuousCDF, Normal};

/// A difference between two groups with its interval and two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Group 1 minus group 2.
    pub difference: f64,
    pub interval: Interval,
    /// Test statistic (z or t).
    pub statistic: f64,
    pub p_value: f64,
    /// Degrees of freedom of a t statistic (Welch–Satterthwaite); `None` for z.
    pub df: Option<f64>,
}

/// Newcombe's hybrid score interval for p1 − p2, method 10 of R. G. Newcombe, "Interval
/// estimation for the difference between independent proportions: comparison of eleven
/// methods", Statistics in Medicine 17 (1998) 873-890: from the Wilson intervals (l1, u1) and
/// (l2, u2), `δ − √((p1−l1)² + (u2−p2)²)` to `δ + √((u1−p1)² + (p2−l2)²)`.
/// With survey weights pass weighted proportions and Kish effective sizes. `None` when either
/// group is empty.
pub fn newcombe_difference(p1: f64, n1: f64, p2: f64, n2: f64, confidence: f64) -> Option<Interval> {
    let a = wilson(p1, n1, confidence)?;
    let b = wilson(p2, n2, confidence)?;
    let d = p1 - p2;
    Some(Interval { low: d - ((p1 - a.low).powi(2) + (b.high - p2).powi(2)).sqrt(), high: d + ((a.high - p1).powi(2) + (p2 - b.low).powi(2)).sqrt() })
}

/// Two-sided p-value of a standard normal statistic.
pub fn normal_p_value(z: f64) -> f64 {
    2.0 * Normal::new(0.0, 1.0).expect("standard normal").sf(z.abs())
}

/// The difference a − b of two independent estimates with standard errors `se_a`, `se_b`, by
/// the normal approximation: se = √(se_a² + se_b²), the z statistic, its two-sided p-value and
/// the interval d ± z₁₋α/₂·se (e.g. Agresti, Categorical Data Analysis, 3rd ed., sec. 1.4).
/// `None` when the combined standard error is not positive (or NaN).
#[allow(clippy::neg_cmp_op_on_partial_ord)] // also rejects a NaN standard error
pub fn normal_difference(a: f64, se_a: f64, b: f64, se_b: f64, confidence: f64) -> Option<Comparison> {
    let se = (se_a * se_a + se_b * se_b).sqrt();
    if !(se > 0.0) {
        return None;
    }
    let d = a - b;
    let half = crate::z_quantile(confidence) * se;
    Some(Comparison { difference: d, interval: Interval { low: d - half, high: d + half }, statistic: d / se, p_value: normal_p_value(d / se), df: None })
}

/// The unweighted mean of independent estimates given as (estimate, sampling variance), and
/// its standard error √(Σ vᵢ) / m (the variance of a mean of m independent estimates).
/// `None` for no estimates.
pub fn mean_of_estimates(estimates: &[(f64, f64)]) -> Option<(f64, f64)> {
    let m = estimates.len() as f64;
    (!estimates.is_empty()).then(|| (estimates.iter().map(|e| e.0).sum::<f64>() / m, estimates.iter().map(|e| e.1).sum::<f64>().sqrt() / m))
}

/// The two-proportion z-test with pooled variance, and Newcombe's interval for the difference.
/// `None` when a group is empty or the pooled proportion is 0 or 1 (no variance to test).
pub fn two_proportions(p1: f64, n1: f64, p2: f64, n2: f64, confidence: f64) -> Option<Comparison> {
    if !(n1 > 0.0 && n2 > 0.0) {
        return None;
    }
    let pooled = (p1 * n1 + p2 * n2) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if !(se > 0.0) {
        return None;
    }
    let z = (p1 - p2) / se;
    Some(Comparison { difference: p1 - p2, interval: newcombe_difference(p1, n1, p2, n2, confidence)?, statistic: z, p_value: normal_p_value(z), df: None })
}

/// Welch's t-test and interval for mean1 − mean2 from each group's mean, sample variance and
/// size (B. L. Welch, Biometrika 34, 1947; Satterthwaite degrees of freedom). `None` when a
/// group has fewer than 2 observations or both variances are 0.
pub fn welch(m1: f64, v1: f64, n1: f64, m2: f64, v2: f64, n2: f64, confidence: f64) -> Option<Comparison> {
    if !(n1 >= 2.0 && n2 >= 2.0 && v1 >= 0.0 && v2 >= 0.0) {
        return None;
    }
    let (a, b) = (v1 / n1, v2 / n2);
    let se2 = a + b;
    if !(se2 > 0.0) {
        return None;
    }
    let df = se2 * se2 / (a * a / (n1 - 1.0) + b * b / (n2 - 1.0));
    let t = (m1 - m2) / se2.sqrt();
    let half = super::distribution::t_quantile(0.5 + confidence / 2.0, df)? * se2.sqrt();
    Some(Comparison {
        difference: m1 - m2,
        interval: Interval { low: m1 - m2 - half, high: m1 - m2 + half },
        statistic: t,
        p_value: 2.0 * super::distribution::t_sf(t.abs(), df)?,
        df: Some(df),
    })
}

/// One-sided p-value that a standard normal statistic is this low or lower (a drop).
pub fn normal_p_lower(z: f64) -> f64 {
    Normal::new(0.0, 1.0).expect("standard normal").cdf(z)
}

/// Benjamini-Hochberg adjusted p-values (q-values) in the input order: for the i-th smallest of
/// m p-values, min over j >= i of m·p(j)/j, capped at 1 (Benjamini & Hochberg, JRSS B 57, 1995;
/// R's `p.adjust(method = "BH")`).
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut q = vec![0.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m as f64 / (rank + 1) as f64);
        q[i] = running.min(1.0);
    }
    q
}

/// Cohen's h, the effect size of a difference of proportions: 2·asin(√p1) − 2·asin(√p2).
pub fn cohens_h(p1: f64, p2: f64) -> f64 {
    2.0 * p1.sqrt().asin() - 2.0 * p2.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn a_normal_difference_matches_scipy() {
        // 0.7 (se 0.05) - 0.6 (se 0.05): se = 0.0707107, z = 1.4142136,
        // scipy 2 * norm.sf(z) = 0.1572992, half width norm.ppf(0.975) * se = 0.1385904.
        let c = normal_difference(0.7, 0.05, 0.6, 0.05, 0.95).unwrap();
        assert!(close(c.difference, 0.1, 1e-12) && close(c.statistic, std::f64::consts::SQRT_2, 1e-6));
        assert!(close(c.p_value, 0.157_299_2, 1e-6), "{}", c.p_value);
        assert!(close(c.interval.low, 0.1 - 0.138_590_4, 1e-6) && close(c.interval.high, 0.1 + 0.138_590_4, 1e-6));
        assert!(normal_difference(1.0, 0.0, 0.5, 0.0, 0.95).is_none() && normal_difference(1.0, f64::NAN, 0.5, 0.1, 0.95).is_none());
        // Mean of two independent estimates: (0.5 + 0.7) / 2, se sqrt(0.01 + 0.03) / 2.
        let (m, se) = mean_of_estimates(&[(0.5, 0.01), (0.7, 0.03)]).unwrap();
        assert!(close(m, 0.6, 1e-12) && close(se, 0.1, 1e-12));
        assert!(mean_of_estimates(&[]).is_none());
    }

    /// Newcombe (1998b), Table II, method 10.
    #[test]
    fn newcombe_matches_table_ii() {
        for (x1, n1, x2, n2, lo, hi) in [(56.0, 70.0, 48.0, 80.0, 0.0524, 0.3339), (9.0, 10.0, 3.0, 10.0, 0.1705, 0.8090)] {
            let ci = newcombe_difference(x1 / n1, n1, x2 / n2, n2, 0.95).unwrap();
            assert!(close(ci.low, lo, 5e-5) && close(ci.high, hi, 5e-5), "{x1}/{n1} vs {x2}/{n2}: {ci:?}");
        }
    }

    /// scipy.stats.ttest_ind(a, b, equal_var=False) on
    /// a = [4,5,3,5,4,4,5,2,5,4,3,5], b = [3,4,2,3,5,3,2,3,4,2,3,3,2,4,1]:
    /// t = 2.9322509358533204, df = 24.068037755672098, p = 0.007272296478441471,
    /// 95% interval 0.340680339316324 to 1.9593196606836758.
    #[test]
    fn welch_matches_scipy() {
        let c = welch(49.0 / 12.0, 0.9924242424242425, 12.0, 44.0 / 15.0, 1.0666666666666667, 15.0, 0.95).unwrap();
        assert!(close(c.statistic, 2.9322509358533204, 1e-10));
        assert!(close(c.df.unwrap(), 24.068037755672098, 1e-8));
        assert!(close(c.p_value, 0.007272296478441471, 1e-9));
        assert!(close(c.interval.low, 0.340680339316324, 1e-8) && close(c.interval.high, 1.9593196606836758, 1e-8));
        assert!(welch(4.0, 0.0, 10.0, 4.0, 0.0, 10.0, 0.95).is_none());
    }

    /// 56/70 vs 48/80, pooled z (statsmodels proportions_ztest gives the same):
    /// z = 2.6501719512585336, p = 0.00804508136819656.
    #[test]
    fn two_proportion_z_test() {
        let c = two_proportions(0.8, 70.0, 0.6, 80.0, 0.95).unwrap();
        assert!(close(c.statistic, 2.6501719512585336, 1e-10));
        assert!(close(c.p_value, 0.00804508136819656, 1e-10));
        assert!(two_proportions(1.0, 10.0, 1.0, 10.0, 0.95).is_none());
    }

    /// scipy.stats.false_discovery_control (and R's p.adjust "BH") on the same inputs.
    #[test]
    fn benjamini_hochberg_matches_scipy() {
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.005]);
        for (a, b) in q.iter().zip([0.02, 0.04, 0.04, 0.02]) {
            assert!(close(*a, b, 1e-12), "{q:?}");
        }
        let q = benjamini_hochberg(&[0.2, 0.001, 0.9, 0.04, 0.04, 0.5]);
        for (a, b) in q.iter().zip([0.3, 0.006, 0.9, 0.08, 0.08, 0.6]) {
            assert!(close(*a, b, 1e-12), "{q:?}");
        }
        assert!(benjamini_hochberg(&[]).is_empty());
    }

    #[test]
    fn cohens_h_and_one_sided_p() {
        assert!(close(cohens_h(0.5, 0.5), 0.0, 1e-15));
        assert!(close(cohens_h(1.0, 0.0), std::f64::consts::PI, 1e-12));
        assert!(close(normal_p_lower(-1.959963984540054), 0.025, 1e-9));
    }
}

/// P(X ≤ `observed`) for X ~ Poisson(`expected`): the one-sided p-value of a count that fell
/// below what was expected, extended continuously to a non-whole `observed` (a count scaled
/// by a dispersion) as the regularized upper incomplete gamma Q(observed + 1, expected), which
/// equals the Poisson distribution function at whole counts. `None` when `expected` is not
/// positive and finite or `observed` is negative.
pub fn poisson_lower_p(observed: f64, expected: f64) -> Option<f64> {
    if !(expected > 0.0 && expected.is_finite() && observed >= 0.0 && observed.is_finite()) {
        return None;
    }
    Some(statrs::function::gamma::gamma_ur(observed + 1.0, expected))
}

#[cfg(test)]
mod poisson_tests {
    use super::*;

    /// R: ppois(2, 5) = 0.124652, ppois(80, 100) = 0.02264918; between whole counts,
    /// pgamma(5, 3.5, lower.tail = FALSE) = 0.1885735 (scipy gammaincc(3.5, 5) agrees).
    #[test]
    fn poisson_lower_tail_matches_r() {
        assert!((poisson_lower_p(2.0, 5.0).unwrap() - 0.124652).abs() < 1e-6);
        assert!((poisson_lower_p(80.0, 100.0).unwrap() - 0.02264918).abs() < 1e-7);
        assert!((poisson_lower_p(2.5, 5.0).unwrap() - 0.1885735).abs() < 1e-6);
        assert_eq!(poisson_lower_p(3.0, 0.0), None);
        assert_eq!(poisson_lower_p(-1.0, 2.0), None);
    }
}
