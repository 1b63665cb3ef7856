//! Cell-key perturbation of counts: the Australian Bureau of Statistics' method for tables a
//! user builds with filters of their choice (TableBuilder), which protects small cells against
//! recovery by differencing two published tables.
//!
//! Sources: Fraser, B. and Wooton, J. (2005), "A proposed method for confidentialising tabular
//! output to protect against differencing", UNECE/Eurostat Work Session on Statistical Data
//! Confidentiality, Geneva; Thompson, G., Broadfoot, S. and Elazar, D. (2013), "Methodology for
//! the Automatic Confidentialisation of Statistical Outputs from Remote Servers at the
//! Australian Bureau of Statistics", UNECE Work Session, Ottawa; Meindl, B. and Enderle, T.
//! (2019), "cellKey – consistent perturbation of statistical tables", UNECE Work Session, The
//! Hague (the R package `cellKey`, whose ptables are the same kind of lookup).
//!
//! Every record has a key, a pseudo-random number uniform on `[0, 2^32)` fixed for the record
//! (a keyed hash of its id: `analytics::cellkey`). The key of a cell is the sum of its records'
//! keys modulo 2^32, again uniform; a published count `n` is `n + p`, where `p` is looked up in
//! the perturbation table (ptable) by `(min(n, CAP), cell key)`. The same records always give
//! the same key and the same `p` (a repeated query, or the same cell reached by another path,
//! shows the same number), while two cells with different records have independent keys, so a
//! difference of two published counts is the true difference plus `p₁ − p₂`: it does not
//! cancel.
//!
//! The ptable here: `p` in −2..=2, mean exactly 0 for every `n` (as integers over 2^32), variance
//! 1 (to 1e-9), and `n + p ≥ 0`, so `n = 0` stays 0 (the key of no records is 0 and its row is
//! all zero). For `n ≥ 2` the distribution is the maximum-entropy one on −2..=2 with mean 0 and
//! variance 1, `P(p = k) ∝ x^(k²)` with `x = 6^(−1/4)`: P(0) = 0.383, P(±1) = 0.245, P(±2) =
//! 0.064. For `n = 1` (where −2 would be negative) it is the maximum-entropy distribution on
//! −1..=2 with mean 0 and variance 1: P(−1) = 0.398, P(0) = 0.306, P(1) = 0.194, P(2) = 0.102.

use super::descriptive::Bin;

/// Rows of the ptable: counts from `CAP` up share the last row.
pub const CAP: u64 = 2;

/// Largest absolute perturbation.
pub const MAX_PERTURBATION: i64 = 2;

/// The number of cell keys, 2^32: the ptable's probabilities are integers over it.
pub const KEY_SPACE: u64 = 1 << 32;

/// One row of the ptable: `(p, how many of the 2^32 cell keys give p)`, in key order.
type Row = [(i64, u64); 5];

/// The ptable (see the module documentation), by `min(n, CAP)`; row 0 is never used (a count
/// of 0 is not perturbed).
const PTABLE: [Row; 3] = [
    [(0, KEY_SPACE), (0, 0), (0, 0), (0, 0), (0, 0)],
    // n = 1: P(−1) = q1, P(0) = q0, P(1) = r1, P(2) = r2, q1 = r1 + 2·r2 (mean exactly 0).
    [(-1, 1_709_675_508), (0, 1_313_424_420), (1, 834_059_228), (2, 437_808_140), (0, 0)],
    // n ≥ 2: symmetric (mean exactly 0).
    [(-2, 274_135_465), (-1, 1_050_941_789), (0, 1_644_812_788), (1, 1_050_941_789), (2, 274_135_465)],
];

/// The ptable row of a count: `(p, probability)` for each possible perturbation of a count
/// of `n` (for tests and documentation).
pub fn ptable_row(n: u64) -> Vec<(i64, f64)> {
    PTABLE[n.min(CAP) as usize].iter().filter(|(_, w)| *w > 0).map(|(p, w)| (*p, *w as f64 / KEY_SPACE as f64)).collect()
}

/// The cell key of a cell whose records' keys sum to `key_sum` (a sum of unsigned 32-bit keys
/// taken in 64 bits, which cannot overflow below 2^32 records): the sum modulo 2^32.
pub fn cell_key(key_sum: u64) -> u32 {
    key_sum as u32
}

/// The perturbation of a count `n` whose cell key is `key`: 0 when `n` is 0.
pub fn perturbation(n: u64, key: u32) -> i64 {
    if n == 0 {
        return 0;
    }
    let mut below = key as u64;
    for (p, width) in PTABLE[n.min(CAP) as usize] {
        if below < width {
            return p;
        }
        below -= width;
    }
    unreachable!("a ptable row covers every key")
}

/// The published count of a cell of `n` records with cell key `key`: `n + p`, never negative.
pub fn perturb(n: u64, key: u32) -> u64 {
    (n as i64 + perturbation(n, key)) as u64
}

/// A bin with its count perturbed by its cell key (`Bin::key`), and its sums of weights and of
/// squared weights scaled by the same factor `n'/n` (the ABS rule for weighted tables: the
/// perturbed count times the cell's mean weight), so unweighted bins stay unweighted. A bin
/// perturbed to 0 has no weight.
pub fn perturb_bin(b: &Bin) -> Bin {
    let count = perturb(b.count, b.key);
    let factor = if b.count > 0 { count as f64 / b.count as f64 } else { 0.0 };
    Bin { count, weight: b.weight * factor, weight_sq: b.weight_sq * factor, ..*b }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact moments of a row, as integers over 2^32.
    fn moments(n: u64) -> (i128, i128, u64) {
        let row = PTABLE[n.min(CAP) as usize];
        let total: u64 = row.iter().map(|r| r.1).sum();
        let sum: i128 = row.iter().map(|(p, w)| *p as i128 * *w as i128).sum();
        let sq: i128 = row.iter().map(|(p, w)| (*p * *p) as i128 * *w as i128).sum();
        (sum, sq, total)
    }

    #[test]
    fn every_row_has_mean_zero_variance_one_and_never_goes_negative() {
        for n in 1..=50u64 {
            let (sum, sq, total) = moments(n);
            assert_eq!(total, KEY_SPACE, "row of n = {n} covers every key once");
            assert_eq!(sum, 0, "mean of the perturbation of n = {n} is exactly 0");
            let variance = sq as f64 / KEY_SPACE as f64;
            assert!((variance - 1.0).abs() < 1e-8, "variance {variance} at n = {n}");
            for (p, w) in ptable_row(n) {
                assert!(p.abs() <= MAX_PERTURBATION && w > 0.0);
                assert!(n as i64 + p >= 0, "n = {n} could become negative");
            }
        }
        // A count of 0 is never changed, whatever the key.
        for key in [0u32, 1, 1 << 31, u32::MAX] {
            assert_eq!(perturb(0, key), 0);
        }
    }

    #[test]
    fn lookup_matches_the_table_over_a_sweep_of_keys() {
        // Keys from a fixed-seed sequence, as uniform as cell keys are: the empirical
        // distribution of p matches the row (and the empirical moments are 0 and 1).
        for n in [1u64, 2, 3, 10, 1000] {
            let mut counts = std::collections::BTreeMap::<i64, u64>::new();
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ n;
            let draws = 400_000;
            let (mut s, mut s2) = (0i64, 0i64);
            for _ in 0..draws {
                // splitmix64
                x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                let p = perturbation(n, (z >> 32) as u32);
                *counts.entry(p).or_default() += 1;
                s += p;
                s2 += p * p;
            }
            let mean = s as f64 / draws as f64;
            let var = s2 as f64 / draws as f64 - mean * mean;
            assert!(mean.abs() < 0.01, "n = {n}: empirical mean {mean}");
            assert!((var - 1.0).abs() < 0.01, "n = {n}: empirical variance {var}");
            for (p, prob) in ptable_row(n) {
                let got = *counts.get(&p).unwrap_or(&0) as f64 / draws as f64;
                assert!((got - prob).abs() < 0.004, "n = {n}, p = {p}: {got} vs {prob}");
            }
        }
    }

    #[test]
    fn the_same_key_always_gives_the_same_count_and_keys_add_modulo_2_32() {
        for (n, key) in [(1u64, 12345u32), (7, 3_000_000_000), (500, 77)] {
            assert_eq!(perturb(n, key), perturb(n, key));
        }
        // The row boundaries: the first key of each interval.
        assert_eq!(perturbation(5, 0), -2);
        assert_eq!(perturbation(5, 274_135_464), -2);
        assert_eq!(perturbation(5, 274_135_465), -1);
        assert_eq!(perturbation(5, u32::MAX), 2);
        assert_eq!(perturbation(1, 0), -1);
        assert_eq!(perturbation(1, u32::MAX), 2);
        assert_eq!(cell_key(u32::MAX as u64 + 5), 4);
        // A weighted bin keeps its mean weight; an unweighted one stays unweighted.
        let b = Bin { value: 4.0, count: 10, weight: 25.0, weight_sq: 70.0, key: 0 };
        let p = perturb_bin(&b);
        assert_eq!(p.count, 8);
        assert!((p.weight / p.count as f64 - 2.5).abs() < 1e-12 && (p.weight_sq - 56.0).abs() < 1e-12);
        let u = perturb_bin(&Bin { key: u32::MAX, ..Bin::unweighted(1.0, 3) });
        assert_eq!((u.count, u.weight, u.weight_sq), (5, 5.0, 5.0));
        assert_eq!(perturb_bin(&Bin::unweighted(2.0, 0)), Bin::unweighted(2.0, 0));
    }
}
