//! Moments of a weighted discrete distribution: the sufficient statistics of a Likert or thumbs
//! item are, for each answer value, the count, the sum of weights and the sum of squared
//! weights. Mean, variance, Kish's effective sample size and shares all follow from them, so a
//! query needs one pass over the rows and rollups can add bins across files.

/// Kish's effective sample size (Σw)² / Σw² from the sums of weights and squared weights
/// (L. Kish, Survey Sampling, 1965, sec. 11.7); 0 for no weight.
pub fn kish_n_effective(sum_w: f64, sum_w2: f64) -> f64 {
    if sum_w2 > 0.0 {
        sum_w * sum_w / sum_w2
    } else {
        0.0
    }
}

/// The q-quantile of sorted values with linear interpolation between order statistics
/// (Hyndman and Fan 1996, definition 7; numpy's and R's default). `sorted` must not be empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Rank (1 = highest) of `value` among `values` (which include it), and its percentile rank:
/// the percent of the others below it, ties counting half (the mid-rank convention).
/// `None` as percentile when `values` holds nothing else.
pub fn rank_and_percentile(values: &[f64], value: f64) -> (u32, Option<f64>) {
    let higher = values.iter().filter(|s| **s > value).count() as u32;
    let lower = values.iter().filter(|s| **s < value).count() as f64;
    let ties = values.iter().filter(|s| **s == value).count() as f64 - 1.0;
    let others = values.len() as f64 - 1.0;
    (higher + 1, (others > 0.0).then(|| 100.0 * (lower + 0.5 * ties) / others))
}

/// The answers equal to one value.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bin {
    pub value: f64,
    /// Number of answers.
    pub count: u64,
    /// Sum of the answers' weights (equal to `count` without weights).
    pub weight: f64,
    /// Sum of the squared weights (equal to `count` without weights).
    pub weight_sq: f64,
    /// The cell key of these answers for cell-key perturbation (`stats::cellkey`): the sum of
    /// their records' keys modulo 2^32, additive (wrapping) like the other fields; 0 when not
    /// computed.
    pub key: u32,
}

impl Bin {
    /// An unweighted bin: every answer has weight 1.
    pub fn unweighted(value: f64, count: u64) -> Self {
        Bin { value, count, weight: count as f64, weight_sq: count as f64, key: 0 }
    }
}

/// A weighted discrete distribution given by its bins.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Distribution {
    pub bins: Vec<Bin>,
}

impl Distribution {
    pub fn new(bins: Vec<Bin>) -> Self {
        Distribution { bins }
    }

    /// Number of answers.
    pub fn n(&self) -> u64 {
        self.bins.iter().map(|b| b.count).sum()
    }

    /// Sum of weights.
    pub fn total_weight(&self) -> f64 {
        self.bins.iter().map(|b| b.weight).sum()
    }

    /// Kish's effective sample size (Σw)² / Σw² (L. Kish, Survey Sampling, 1965, sec. 11.7);
    /// equal to n without weights. 0 for an empty distribution.
    pub fn n_effective(&self) -> f64 {
        let w2: f64 = self.bins.iter().map(|b| b.weight_sq).sum();
        if w2 > 0.0 {
            self.total_weight().powi(2) / w2
        } else {
            0.0
        }
    }

    /// Weighted mean Σ w·x / Σ w. `None` when there are no answers (or no weight).
    pub fn mean(&self) -> Option<f64> {
        let w = self.total_weight();
        (w > 0.0).then(|| self.bins.iter().map(|b| b.weight * b.value).sum::<f64>() / w)
    }

    /// Variance with the divisor n − 1 generalised to weights:
    /// `Σ w (x − mean)² / Σ w · n_eff / (n_eff − 1)`. Without weights this is the ordinary
    /// sample variance (what SQL's `var_samp` returns). Computed from centred values, so it
    /// stays exact-to-rounding for large n. `None` when `n_eff <= 1`.
    pub fn variance(&self) -> Option<f64> {
        let mean = self.mean()?;
        let n_eff = self.n_effective();
        if n_eff <= 1.0 {
            return None;
        }
        let ss: f64 = self.bins.iter().map(|b| b.weight * (b.value - mean).powi(2)).sum();
        Some(ss / self.total_weight() * n_eff / (n_eff - 1.0))
    }

    /// Standard deviation, the square root of [`variance`](Self::variance).
    pub fn sd(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }

    /// Weighted share of answers whose value satisfies `pred`. `None` when empty.
    pub fn share(&self, pred: impl Fn(f64) -> bool) -> Option<f64> {
        let w = self.total_weight();
        (w > 0.0).then(|| self.bins.iter().filter(|b| pred(b.value)).map(|b| b.weight).sum::<f64>() / w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_ranks_and_kish_n_match_numpy_and_hand_counts() {
        // numpy.quantile(x, q) (default method 'linear', Hyndman-Fan 7).
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.25), 1.75);
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!((quantile_sorted(&ten, 0.9) - 9.1).abs() < 1e-12);
        assert_eq!(quantile_sorted(&[5.0], 0.3), 5.0);
        // 0.6 among 0.5, 0.6, 0.6, 0.8: one higher (rank 2); of the 3 others one lower and one
        // tied (half): 50%.
        assert_eq!(rank_and_percentile(&[0.5, 0.6, 0.6, 0.8], 0.6), (2, Some(50.0)));
        assert_eq!(rank_and_percentile(&[0.7], 0.7), (1, None));
        // Weights 1, 2, 3: 36 / 14.
        assert!((kish_n_effective(6.0, 14.0) - 36.0 / 14.0).abs() < 1e-12);
        assert_eq!(kish_n_effective(0.0, 0.0), 0.0);
    }

    fn expand(d: &Distribution) -> Vec<f64> {
        d.bins.iter().flat_map(|b| std::iter::repeat_n(b.value, b.count as usize)).collect()
    }

    #[test]
    fn unweighted_moments_equal_the_textbook_sample_statistics() {
        let d = Distribution::new(vec![
            Bin::unweighted(1.0, 3),
            Bin::unweighted(2.0, 0),
            Bin::unweighted(3.0, 7),
            Bin::unweighted(4.0, 11),
            Bin::unweighted(5.0, 20),
        ]);
        let xs = expand(&d);
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert_eq!(d.n(), 41);
        assert!((d.mean().unwrap() - mean).abs() < 1e-12);
        assert!((d.variance().unwrap() - var).abs() < 1e-12);
        assert_eq!(d.n_effective(), 41.0);
        assert!((d.share(|v| v >= 4.0).unwrap() - 31.0 / 41.0).abs() < 1e-15);
    }

    #[test]
    fn weighted_mean_and_kish_effective_n() {
        // Two answers: 1 with weight 1, 5 with weight 3.
        let d = Distribution::new(vec![
            Bin { value: 1.0, count: 1, weight: 1.0, weight_sq: 1.0, key: 0 },
            Bin { value: 5.0, count: 1, weight: 3.0, weight_sq: 9.0, key: 0 },
        ]);
        assert_eq!(d.mean(), Some(4.0));
        assert!((d.n_effective() - 1.6).abs() < 1e-12); // 16 / 10
                                                        // Σw(x-m)²/Σw = (9 + 3)/4 = 3; times 1.6/0.6.
        assert!((d.variance().unwrap() - 3.0 * 1.6 / 0.6).abs() < 1e-12);
    }

    #[test]
    fn degenerate_inputs_give_none_not_nan() {
        let empty = Distribution::default();
        assert_eq!((empty.mean(), empty.variance(), empty.share(|_| true)), (None, None, None));
        let single = Distribution::new(vec![Bin::unweighted(4.0, 1)]);
        assert_eq!(single.mean(), Some(4.0));
        assert_eq!(single.variance(), None);
    }
}
