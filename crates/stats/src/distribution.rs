//! Quantiles and tail probabilities of the normal and Student-t distributions, accurate to
//! double precision over the whole range of degrees of freedom.
//!
//! statrs' `StudentsT::inverse_cdf` inverts the regularized incomplete beta function and then
//! forms `t = sqrt(ν (1 − y) / y)` with `y ≈ 1 − t²/ν`: the subtraction loses digits as ν
//! grows (relative error 3e-7 at ν = 3·10⁴, 6e-2 at ν = 10⁷, where it falls below the normal
//! quantile, which a t quantile never does). Its `sf` loses fewer digits the same way, through
//! `ln(1 − h)` and `lnΓ(ν/2 + 1/2) − lnΓ(ν/2)`. Here:
//!
//! - For large ν the quantile is the Cornish-Fisher expansion of t in the normal quantile z to
//!   order ν⁻⁴ (Abramowitz & Stegun, *Handbook of Mathematical Functions*, 26.7.5, after
//!   Fisher 1925), whose remainder is of order (z²/ν)⁵: below 3e-14 relative at ν ≥ 1000 for
//!   z ≤ 3.3 (p ≤ 0.9995), below 2e-13 at the edge of its use, ν = `CF_FACTOR`·z², for any p.
//! - For smaller ν, Newton steps on statrs' tail probability (accurate there: its cancellations
//!   grow with ν) from statrs' inverse, in the upper tail on `sf(t) = 1 − p`, near the centre on
//!   `P(0 < T < t) = I_{t²/(ν+t²)}(1/2, ν/2) / 2 = p − 1/2` (A&S 26.7.1 with 26.5.27), whose small
//!   argument keeps full relative precision where `sf` is close to 1/2.
//! - The upper tail probability for large ν inverts the same expansion: the z with
//!   `t = CF(z, ν)`, then the normal tail of z.
//!
//! Checked against scipy's `t.ppf` and `t.sf` (tests below, values computed with scipy 1.17.1
//! and confirmed with mpmath at 40 digits).

use statrs::distribution::{Continuous, ContinuousCDF, Normal, StudentsT};

/// The expansion is used where ν ≥ this many times z² (and ν ≥ `CF_MIN_DF`).
const CF_FACTOR: f64 = 60.0;
/// Smallest ν for the expansion.
const CF_MIN_DF: f64 = 1000.0;

fn standard_normal() -> Normal {
    Normal::new(0.0, 1.0).expect("standard normal")
}

/// The standard normal quantile: Φ⁻¹(p). `None` unless 0 < p < 1.
pub fn normal_quantile(p: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0) {
        return None;
    }
    // Intervals ask for one confidence level's quantile over and over: the last one asked for
    // on this thread is kept.
    thread_local! {
        static LAST: std::cell::Cell<(u64, f64)> = const { std::cell::Cell::new((u64::MAX, f64::NAN)) };
    }
    let (bits, z) = LAST.get();
    if bits == p.to_bits() {
        return Some(z);
    }
    let z = standard_normal().inverse_cdf(p);
    LAST.set((p.to_bits(), z));
    Some(z)
}

/// Cornish-Fisher: t as a function of the normal quantile z (A&S 26.7.5).
fn cornish_fisher(z: f64, df: f64) -> f64 {
    let z2 = z * z;
    let g1 = z * (z2 + 1.0) / 4.0;
    let g2 = z * ((5.0 * z2 + 16.0) * z2 + 3.0) / 96.0;
    let g3 = z * (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) / 384.0;
    let g4 = z * ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) / 92160.0;
    z + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df
}

/// d/dz of `cornish_fisher`.
fn cornish_fisher_slope(z: f64, df: f64) -> f64 {
    let z2 = z * z;
    let d1 = (3.0 * z2 + 1.0) / 4.0;
    let d2 = ((25.0 * z2 + 48.0) * z2 + 3.0) / 96.0;
    let d3 = (((21.0 * z2 + 95.0) * z2 + 51.0) * z2 - 15.0) / 384.0;
    let d4 = ((((711.0 * z2 + 5432.0) * z2 + 7410.0) * z2 - 5760.0) * z2 - 945.0) / 92160.0;
    1.0 + (d1 + (d2 + (d3 + d4 / df) / df) / df) / df
}

fn expansion_holds(z: f64, df: f64) -> bool {
    df >= CF_MIN_DF && df >= CF_FACTOR * z * z
}

/// The Student-t quantile with `df` degrees of freedom: t with P(T ≤ t) = p. `None` unless
/// 0 < p < 1 and df > 0 (df may be fractional, as Welch's and Kish's are, or infinite). A lower
/// p goes through 1 − p, so p below about 1e-10 loses relative precision (intervals use the
/// upper quantile).
pub fn t_quantile(p: f64, df: f64) -> Option<f64> {
    if p.is_nan() || p <= 0.0 || p >= 1.0 || !(df > 0.0) {
        return None;
    }
    if p < 0.5 {
        return t_quantile(1.0 - p, df).map(|t| -t);
    }
    if p == 0.5 {
        return Some(0.0);
    }
    let z = normal_quantile(p)?;
    if df.is_infinite() || expansion_holds(z, df) {
        return Some(cornish_fisher(z, df));
    }
    // Intervals ask for the same few quantiles over and over (one confidence level; degrees of
    // freedom n - 1 of every group's n): each is solved once per thread.
    thread_local! {
        static SOLVED: std::cell::RefCell<std::collections::HashMap<(u64, u64), Option<f64>>> = Default::default();
    }
    let key = (p.to_bits(), df.to_bits());
    if let Some(t) = SOLVED.with(|m| m.borrow().get(&key).copied()) {
        return t;
    }
    let t = newton_quantile(p, z, df);
    SOLVED.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= 1 << 16 {
            m.clear();
        }
        m.insert(key, t);
    });
    t
}

/// `t_quantile` for p in (1/2, 1) where the expansion does not hold: Newton on the CDF.
fn newton_quantile(p: f64, z: f64, df: f64) -> Option<f64> {
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    // 1 - p and p - 1/2 are exact in floating point for p in [1/2, 1] (Sterbenz).
    let centre = p < 0.75;
    let (q, h) = (1.0 - p, p - 0.5);
    let residual = |t: f64| -> f64 {
        if centre {
            let x = t * t / (df + t * t);
            0.5 * statrs::function::beta::beta_reg(0.5, df / 2.0, x) - h
        } else {
            q - dist.sf(t)
        }
    };
    // The start: the Cornish-Fisher expansion (within about 1e-4 of t from 4 degrees of freedom
    // on, so Newton needs two or three steps), or statrs' own inversion below that (a search of
    // many CDF evaluations, which dominated the time of a scores query when used everywhere).
    let mut t = if df >= 4.0 { cornish_fisher(z, df) } else { dist.inverse_cdf(p) };
    if !(t.is_finite() && t > 0.0) {
        t = z;
    }
    // Newton converges quadratically: once a step moves t by at most 1e-11 of itself, the
    // point it lands on is off by about the square of that (times a factor near 1), far below
    // the rounding of the residual (about 1e-16), so that is the last step. Waiting for a step
    // of a few ulps instead took up to 100 steps where that rounding kept the steps from
    // shrinking (most of the time of a scores query).
    for _ in 0..100 {
        let density = dist.pdf(t);
        if !(density > 0.0) {
            break;
        }
        let step = residual(t) / density;
        let next = (t - step).max(t / 2.0);
        let done = (next - t).abs() <= 1e-11 * t.abs();
        t = next;
        if done {
            break;
        }
    }
    Some(t)
}

/// The upper tail probability P(T > t) with `df` degrees of freedom. `None` unless df > 0 and
/// t is not NaN.
pub fn t_sf(t: f64, df: f64) -> Option<f64> {
    if !(df > 0.0) || t.is_nan() {
        return None;
    }
    if t < 0.0 {
        return t_sf(-t, df).map(|s| 1.0 - s);
    }
    if df.is_infinite() || expansion_holds(t, df) {
        // Invert the expansion (monotone in z there; t itself is within 1% of z).
        let mut z = t;
        for _ in 0..50 {
            let step = (cornish_fisher(z, df) - t) / cornish_fisher_slope(z, df);
            z -= step;
            if step.abs() <= 4.0 * f64::EPSILON * z.abs().max(f64::MIN_POSITIVE) {
                break;
            }
        }
        return Some(standard_normal().sf(z));
    }
    Some(StudentsT::new(0.0, 1.0, df).ok()?.sf(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scipy.stats.t.ppf(p, df), scipy 1.17.1 (each also within 3e-16 of mpmath at 40 digits).
    const PPF: &[(f64, [f64; 3])] = &[
        (1.0, [12.706204736174694, 63.656741162871526, 636.6192487687897]),
        (2.0, [4.302652729749462, 9.924843200918287, 31.599054576445365]),
        (3.0, [3.1824463052837078, 5.840909309733355, 12.923978636687961]),
        (5.0, [2.5705818356363146, 4.032142983555228, 6.868826625881276]),
        (10.0, [2.228138851986274, 3.16927267261695, 4.586893858702708]),
        (30.0, [2.0422724563012378, 2.7499956535672254, 3.6459586350420627]),
        (100.0, [1.9839715185235518, 2.6258905214380173, 3.390491311164263]),
        (1e3, [1.9623390808264083, 2.580754698065951, 3.300282648423944]),
        (1e4, [1.960201239890626, 2.5763210466685282, 3.2914999659416355]),
        (3e4, [1.9600430633839347, 2.5759931982857065, 3.2908510848860266]),
        (1e5, [1.9599877075346095, 2.575878469908375, 3.2906240314119137]),
        (1e6, [1.959966356814107, 2.5758342201053344, 3.2905364612487222]),
        (1e7, [1.959964221767205, 2.5758297952037488, 3.2905277044652532]),
        (1e9, [1.959963986912325, 2.5758293084654484, 3.2905267412216563]),
    ];
    const PS: [f64; 3] = [0.975, 0.995, 0.9995];

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    #[test]
    fn t_quantile_matches_scipy_to_1e12_over_the_whole_range_of_df() {
        for &(df, expected) in PPF {
            for (p, want) in PS.iter().zip(expected) {
                let got = t_quantile(*p, df).unwrap();
                assert!(rel(got, want) <= 1e-12, "df {df}, p {p}: {got} vs scipy {want} ({:.1e})", rel(got, want));
                let low = t_quantile(1.0 - p, df).unwrap();
                assert!(rel(low, -want) <= 1e-12, "df {df}, p {}: {low}", 1.0 - p);
            }
        }
    }

    #[test]
    fn t_quantile_falls_monotonically_towards_the_normal_quantile() {
        for p in PS {
            let z = normal_quantile(p).unwrap();
            let mut previous = f64::INFINITY;
            for df in [1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0, 999.0, 1000.0, 1001.0, 1e4, 29_061.0, 3e4, 1e5, 782_232.0, 1e6, 1e7, 1e9, 1e12] {
                let t = t_quantile(p, df).unwrap();
                assert!(t < previous, "p {p}: t({df}) = {t} not below {previous}");
                assert!(t > z, "p {p}: t({df}) = {t} not above z = {z}");
                previous = t;
            }
            assert_eq!(t_quantile(p, f64::INFINITY), Some(z));
        }
    }

    /// The values the issue reported wrong: scipy's t.ppf(0.975, df) at the df of a digital-channel
    /// ease mean (29,061) and a large Welch comparison (782,232).
    #[test]
    fn t_quantile_at_the_reported_df() {
        assert!(rel(t_quantile(0.975, 29_061.0).unwrap(), 1.960045618632362) <= 1e-12);
        assert!(rel(t_quantile(0.975, 782_232.0).unwrap(), 1.9599670172398649) <= 1e-12);
    }

    #[test]
    fn t_quantile_near_the_centre_and_far_in_the_tail() {
        // mpmath at 40 digits (the root of the regularized incomplete beta); scipy's t.ppf agrees
        // but at p = 0.5000001, df = 10, where it is off by 1.2e-10.
        for (p, df, want) in [
            (0.5000001, 10.0, 2.5699780335778006e-07),
            (0.5000001, 1e3, 2.507255008614169e-07),
            (0.6, 2.5, 0.2814595127485476),
            (0.99999, 7.3, 9.687998805207199),
            (0.99999, 3e3, 4.271720441293199),
            (0.999999, 4.0, 41.5778541501515),
            (1.0 - 0.999999, 4.0, -41.5778541501515),
        ] {
            let got = t_quantile(p, df).unwrap();
            assert!(rel(got, want) <= 1e-12, "p {p}, df {df}: {got} vs {want} ({:.1e})", rel(got, want));
        }
        assert_eq!(t_quantile(0.5, 7.0), Some(0.0));
        assert_eq!(t_quantile(0.0, 7.0), None);
        assert_eq!(t_quantile(0.975, 0.0), None);
        assert_eq!(t_quantile(f64::NAN, 7.0), None);
    }

    #[test]
    fn t_sf_matches_scipy() {
        // scipy.stats.t.sf(t, df), equal to mpmath's to 1e-14.
        for (t, df, want) in [
            (2.0, 5.0, 0.050969739414929174),
            (1.96, 1e3, 0.025136592477874368),
            (1.96, 29_061.0, 0.02500266601608117),
            (3.3, 1e6, 0.00048344103967000256),
            (1.0, 1e9, 0.1586552540524424),
            (8.0, 2000.0, 1.0432182690804189e-15),
            (-1.5, 40.0, 0.9292666115604259),
        ] {
            let got = t_sf(t, df).unwrap();
            assert!(rel(got, want) <= 1e-10, "t {t}, df {df}: {got} vs {want} ({:.1e})", rel(got, want));
        }
        assert_eq!(t_sf(f64::NAN, 3.0), None);
    }
}
