//! Distribution functions that hold at every sample size.
//!
//! Tail probabilities come from `cdflib`, a port of CDFLIB (Brown, Lovato & Russell), whose
//! regularized incomplete beta and gamma functions are ACM TOMS Algorithms 708 (DiDonato &
//! Morris 1992) and 654 (DiDonato & Morris 1987): 13–15 correct digits deep in the tails and
//! for parameters up to 10¹⁵ and beyond, where continued-fraction implementations stall (statrs
//! 0.19's Student t quantile is wrong from about 3·10⁶ degrees of freedom and never returns
//! from about 1.5·10⁷).
//!
//! CDFLIB's own inverses stop at a relative tolerance of 10⁻⁸, so every continuous quantile
//! here is *polished*: starting from CDFLIB's answer, a safeguarded Newton iteration on the
//! accurate tail function, falling back to bisection of the bracket (on the ordered bit
//! patterns of `f64`, so at most 64 halvings reach adjacent floats), for at most
//! [`MAX_STEPS`] steps. Agreement with scipy 1.17 is better than 10⁻¹² relative on the test
//! grid (ν, n from 1 to 10¹⁰; `tests/dist.rs`).
//!
//! Conventions: quantile functions take the probability of the *tail they return*
//! (`*_upper(alpha)` gives x with P(X > x) = alpha), so small tail probabilities keep their
//! precision. Invalid arguments (a probability outside \[0, 1\], non-positive degrees of
//! freedom, NaN) give NaN, never a panic; callers validate their inputs first.

use cdflib::traits::{Continuous, ContinuousCdf, DiscreteCdf};

/// The most iterations any quantile search here takes before it returns its best bracket
/// end. Reaching it is not expected (Newton converges in 2–4 steps from CDFLIB's start, and
/// bisection needs at most 64); it bounds the time of every call.
pub const MAX_STEPS: u32 = 200;

/// Degrees of freedom past which Student's t is treated as the standard normal: the t tail
/// differs from the normal tail by a relative O(z⁴/ν), below 10⁻¹⁶ from here on (Abramowitz &
/// Stegun 26.7.5).
pub const T_NORMAL_DF: f64 = 1e18;

fn std_normal() -> cdflib::Normal {
    cdflib::Normal::new(0.0, 1.0)
}

fn is_prob(p: f64) -> bool {
    (0.0..=1.0).contains(&p)
}

/// P(Z ≤ x) for the standard normal Z.
pub fn normal_cdf(x: f64) -> f64 {
    std_normal().cdf(x)
}

/// P(Z > x) for the standard normal Z, computed directly (no cancellation in the upper tail).
pub fn normal_sf(x: f64) -> f64 {
    std_normal().ccdf(x)
}

/// The x with P(Z > x) = `alpha` (e.g. 1.959964 for 0.025). NaN outside \[0, 1\].
pub fn normal_upper(alpha: f64) -> f64 {
    if !is_prob(alpha) {
        return f64::NAN;
    }
    if alpha == 0.5 {
        return 0.0;
    }
    if alpha > 0.5 {
        return -normal_upper(1.0 - alpha);
    }
    let start = std_normal().inverse_ccdf(alpha).ok();
    solve_sf(alpha, start, normal_sf, |x| std_normal().pdf(x))
}

/// The x with P(Z ≤ x) = `p`. NaN outside \[0, 1\].
pub fn normal_quantile(p: f64) -> f64 {
    if !is_prob(p) {
        return f64::NAN;
    }
    -normal_upper(p)
}

/// The two-sided standard normal critical value z with P(|Z| ≤ z) = `confidence`.
pub fn z_two_sided(confidence: f64) -> f64 {
    normal_upper((1.0 - confidence) / 2.0)
}

/// Two-sided p-value of a standard normal statistic: 2·P(Z > |z|).
pub fn normal_p_two_sided(z: f64) -> f64 {
    (2.0 * normal_sf(z.abs())).min(1.0)
}

fn valid_df(df: f64) -> bool {
    df > 0.0 && !df.is_nan()
}

/// P(T > x) for Student's t with `df` > 0 degrees of freedom (any size; the normal past
/// [`T_NORMAL_DF`]). NaN for invalid `df`.
pub fn t_sf(x: f64, df: f64) -> f64 {
    if !valid_df(df) {
        return f64::NAN;
    }
    if df >= T_NORMAL_DF {
        return normal_sf(x);
    }
    cdflib::StudentsT::new(df).ccdf(x)
}

/// P(T ≤ x) for Student's t with `df` degrees of freedom.
pub fn t_cdf(x: f64, df: f64) -> f64 {
    t_sf(-x, df)
}

/// The x with P(T > x) = `alpha` for Student's t with `df` degrees of freedom: accurate to
/// about 10⁻¹³ relative for any `df` from 10⁻³ to 10¹⁸ and beyond, in at most [`MAX_STEPS`]
/// iterations. NaN for invalid arguments.
pub fn t_upper(alpha: f64, df: f64) -> f64 {
    if !is_prob(alpha) || !valid_df(df) {
        return f64::NAN;
    }
    if df >= T_NORMAL_DF {
        return normal_upper(alpha);
    }
    if alpha == 0.5 {
        return 0.0;
    }
    if alpha > 0.5 {
        return -t_upper(1.0 - alpha, df);
    }
    let d = cdflib::StudentsT::new(df);
    let start = d.inverse_ccdf(alpha).ok();
    solve_sf(alpha, start, |x| d.ccdf(x), |x| d.pdf(x))
}

/// The two-sided Student t critical value with P(|T| ≤ t) = `confidence`.
pub fn t_two_sided(confidence: f64, df: f64) -> f64 {
    t_upper((1.0 - confidence) / 2.0, df)
}

/// P(X > x) for the chi-square distribution with `df` degrees of freedom.
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    if !valid_df(df) {
        return f64::NAN;
    }
    cdflib::ChiSquared::new(df).ccdf(x)
}

/// The x with P(X > x) = `alpha` for the chi-square distribution with `df` degrees of
/// freedom. NaN for invalid arguments.
pub fn chi2_upper(alpha: f64, df: f64) -> f64 {
    if !is_prob(alpha) || !valid_df(df) {
        return f64::NAN;
    }
    let d = cdflib::ChiSquared::new(df);
    if alpha == 1.0 {
        return 0.0;
    }
    let start = d.inverse_ccdf(alpha).ok();
    if alpha > 0.5 {
        // Lower tail: solve P(X ≤ x) = 1 − alpha on the increasing cdf, as −x on a decreasing
        // function so that the same solver applies.
        let p = 1.0 - alpha;
        return -solve_sf(p, start.map(|x| -x), |y| d.cdf(-y), |y| d.pdf(-y));
    }
    solve_sf(alpha, start, |x| d.ccdf(x), |x| d.pdf(x))
}

/// P(X ≤ k) for X ~ Binomial(n, p). NaN for p outside \[0, 1\].
pub fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if !is_prob(p) {
        return f64::NAN;
    }
    if k >= n {
        return 1.0;
    }
    cdflib::Binomial::new(n, p).cdf(k)
}

/// The smallest k in 0..=n with P(X ≤ k) ≥ `prob` for X ~ Binomial(n, p) — scipy's
/// `binom.ppf`. Doubling then bisection over the accurate cdf: at most 2·log₂(n) + 2
/// evaluations. `None` for invalid arguments.
pub fn binomial_quantile(prob: f64, n: u64, p: f64) -> Option<u64> {
    if !is_prob(prob) || !is_prob(p) {
        return None;
    }
    cdflib::Binomial::new(n, p).inverse_cdf(prob).ok()
}

/// Maps an `f64` to an integer with the same total order (negative values below positive).
fn key(x: f64) -> i64 {
    let b = x.to_bits() as i64;
    if b < 0 { !(b & i64::MAX) } else { b }
}

fn unkey(k: i64) -> f64 {
    if k < 0 {
        f64::from_bits((!k | i64::MIN) as u64)
    } else {
        f64::from_bits(k as u64)
    }
}

/// Solves `sf(x) = alpha` for a decreasing tail function `sf` with density `pdf`, from an
/// optional starting point: bracket, then Newton steps kept inside the bracket, with a forced
/// bisection (on the ordered bit patterns) whenever a step does not halve the bracket. At most
/// [`MAX_STEPS`] iterations.
fn solve_sf(
    alpha: f64,
    start: Option<f64>,
    sf: impl Fn(f64) -> f64,
    pdf: impl Fn(f64) -> f64,
) -> f64 {
    if alpha == 0.0 {
        return f64::INFINITY;
    }
    let mut x = start.filter(|x| x.is_finite()).unwrap_or(0.0);
    // Bracket: lo with sf(lo) >= alpha, hi with sf(hi) <= alpha.
    let width = |x: f64| x.abs() * 1e-6 + 1e-6;
    let (mut lo, mut hi) = (x - width(x), x + width(x));
    let mut steps = 0;
    while sf(lo) < alpha && steps < MAX_STEPS {
        lo = if lo > 0.0 {
            lo / 2.0 - 1.0
        } else {
            lo * 2.0 - 1.0
        };
        steps += 1;
    }
    while sf(hi) > alpha && steps < MAX_STEPS {
        hi = if hi < 0.0 {
            hi / 2.0 + 1.0
        } else {
            hi * 2.0 + 1.0
        };
        steps += 1;
    }
    if !(lo <= x && x <= hi) {
        x = lo + (hi - lo) / 2.0;
    }
    let mut last_span = key(hi).abs_diff(key(lo));
    while steps < MAX_STEPS {
        steps += 1;
        let f = sf(x) - alpha;
        if f == 0.0 {
            return x;
        }
        if f > 0.0 {
            lo = x;
        } else {
            hi = x;
        }
        let span = key(hi).abs_diff(key(lo));
        if span <= 1 {
            break;
        }
        let d = pdf(x);
        let newton = x + f / d;
        let halved = span <= last_span / 2;
        x = if d > 0.0 && newton > lo && newton < hi && (halved || steps % 2 == 1) {
            newton
        } else {
            unkey(((i128::from(key(lo)) + i128::from(key(hi))) / 2) as i64)
        };
        last_span = span;
        if x <= lo || x >= hi {
            break;
        }
    }
    // Return whichever bracket end is closer in probability.
    if (sf(lo) - alpha).abs() <= (sf(hi) - alpha).abs() {
        lo
    } else {
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_preserves_order() {
        let xs = [
            -f64::MAX,
            -1.0,
            -1e-300,
            -0.0,
            0.0,
            1e-300,
            1.0,
            2.0,
            f64::MAX,
        ];
        for w in xs.windows(2) {
            assert!(key(w[0]) <= key(w[1]), "{w:?}");
            assert_eq!(unkey(key(w[0])), w[0]);
        }
    }

    #[test]
    fn invalid_arguments_are_nan_not_panics() {
        assert!(t_upper(1.5, 10.0).is_nan());
        assert!(t_upper(0.025, 0.0).is_nan());
        assert!(t_upper(0.025, f64::NAN).is_nan());
        assert!(chi2_upper(-0.1, 1.0).is_nan());
        assert!(normal_upper(f64::NAN).is_nan());
        assert_eq!(binomial_quantile(2.0, 10, 0.5), None);
        assert_eq!(t_upper(0.0, 5.0), f64::INFINITY);
        assert_eq!(t_upper(0.5, 5.0), 0.0);
    }
}
