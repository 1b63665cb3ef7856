//! Confidence intervals: Wilson's score interval for a proportion and the Student-t interval
//! for a mean.

use super::distribution::{normal_quantile, t_quantile};

/// A two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// The standard normal quantile z with P(|Z| <= z) = `confidence` (1.959964 for 0.95).
pub fn z_quantile(confidence: f64) -> f64 {
    normal_quantile(0.5 + confidence / 2.0).unwrap_or(f64::NAN)
}

/// Wilson score interval for a proportion, without continuity correction.
///
/// Source: E. B. Wilson (1927); method 3 of R. G. Newcombe, "Two-sided confidence intervals for
/// the single proportion: comparison of seven methods", Statistics in Medicine 17 (1998) 857-872.
/// `p` is the observed proportion and `n` the sample size; with survey weights pass the weighted
/// proportion and Kish's effective sample size. `None` when `n <= 0` or `p` is not in [0, 1].
pub fn wilson(p: f64, n: f64, confidence: f64) -> Option<Interval> {
    if !(n > 0.0) || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let z = z_quantile(confidence);
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    // The interval always contains p; clamping to p absorbs rounding at p = 0 or 1.
    Some(Interval { low: (centre - half).min(p).max(0.0), high: (centre + half).max(p).min(1.0) })
}

/// Student-t interval for a mean: `mean ± t(df = n - 1) · sd / sqrt(n)`.
///
/// With survey weights pass Kish's effective sample size as `n`. `None` when `n < 2` or `sd`
/// is not finite (a single answer has no spread).
pub fn mean_interval(mean: f64, sd: f64, n: f64, confidence: f64) -> Option<Interval> {
    if !(n >= 2.0) || !sd.is_finite() || !mean.is_finite() {
        return None;
    }
    let t = t_quantile(0.5 + confidence / 2.0, n - 1.0)?;
    let half = t * sd / n.sqrt();
    Some(Interval { low: mean - half, high: mean + half })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Newcombe (1998), Table I, method 3 (Wilson score, no continuity correction).
    #[test]
    fn wilson_matches_newcombe_1998_table_1() {
        for (x, n, lo, hi) in [(81.0, 263.0, 0.2553, 0.3662), (15.0, 148.0, 0.0624, 0.1605), (0.0, 20.0, 0.0, 0.1611), (1.0, 29.0, 0.0061, 0.1718)] {
            let ci = wilson(x / n, n, 0.95).unwrap();
            assert!(close(ci.low, lo, 5e-5) && close(ci.high, hi, 5e-5), "{x}/{n}: {ci:?}");
        }
    }

    #[test]
    fn wilson_contains_the_estimate_at_the_edges() {
        for n in [1.0, 3.0, 7.3, 29.0, 1e6] {
            let all = wilson(1.0, n, 0.95).unwrap();
            let none = wilson(0.0, n, 0.95).unwrap();
            assert!(all.high == 1.0 && all.low < 1.0, "{n}: {all:?}");
            assert!(none.low == 0.0 && none.high > 0.0, "{n}: {none:?}");
        }
    }

    #[test]
    fn wilson_is_none_without_data() {
        assert!(wilson(0.5, 0.0, 0.95).is_none());
        assert!(wilson(f64::NAN, 10.0, 0.95).is_none());
    }

    #[test]
    fn z_is_the_familiar_1_96() {
        assert!(close(z_quantile(0.95), 1.959963985, 1e-8));
    }

    #[test]
    fn t_interval_matches_tables() {
        // t(0.975, 9) = 2.262157 (any t table); mean 10, sd 3, n 10.
        let ci = mean_interval(10.0, 3.0, 10.0, 0.95).unwrap();
        assert!(close(ci.high - 10.0, 2.262157 * 3.0 / 10f64.sqrt(), 1e-5), "{ci:?}");
        assert!(mean_interval(4.0, f64::NAN, 1.0, 0.95).is_none());
    }
}
