//! Uncertainty on one number.

use crate::{Interval, z_two_sided};
use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, StudentsT};

/// Wilson score interval for a proportion `successes / n` (Wilson 1927; Agresti & Coull 1998).
///
/// center = (p̂ + z²/2n) / (1 + z²/n), half-width = z·√(p̂(1−p̂)/n + z²/4n²) / (1 + z²/n).
/// Well behaved at 0 and n successes (unlike the Wald interval). `None` when `n` is 0.
pub fn wilson(successes: u64, n: u64, confidence: f64) -> Option<Interval> {
    if n == 0 || successes > n {
        return None;
    }
    let n_f = n as f64;
    let p = successes as f64 / n_f;
    let z = z_two_sided(confidence);
    let z2 = z * z;
    let denom = 1.0 + z2 / n_f;
    let center = (p + z2 / (2.0 * n_f)) / denom;
    let half = z * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / denom;
    // At 0 and n successes the bound is exactly 0 or 1; avoid rounding residue.
    Some(Interval {
        low: if successes == 0 {
            0.0
        } else {
            (center - half).max(0.0)
        },
        high: if successes == n {
            1.0
        } else {
            (center + half).min(1.0)
        },
        confidence,
    })
}

/// Student t interval for a mean: x̄ ± t(1−α/2; n−1)·s/√n, with `sd` the sample standard
/// deviation (n−1 denominator). `None` when n < 2.
pub fn mean_t(n: u64, mean: f64, sd: f64, confidence: f64) -> Option<Interval> {
    if n < 2 || !sd.is_finite() {
        return None;
    }
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .ok()?
        .inverse_cdf(1.0 - (1.0 - confidence) / 2.0);
    let half = t * sd / (n as f64).sqrt();
    Some(Interval {
        low: mean - half,
        high: mean + half,
        confidence,
    })
}

/// The 1-based order-statistic ranks `(l, u)` of a distribution-free confidence interval for
/// the `q` quantile of a sample of `n`, and the coverage they achieve:
/// `l = F⁻¹(α/2)`, `u = F⁻¹(1−α/2) + 1` for `F` the Binomial(n, q) CDF, clamped to `1..=n`;
/// coverage `= F(u−1) − F(l−1)` (Conover 1999, §3.2; Hahn & Meeker 1991, §5.2).
/// `None` when `n` is 0.
pub fn quantile_ranks(n: u64, q: f64, confidence: f64) -> Option<(u64, u64, f64)> {
    if n == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let b = Binomial::new(q, n).ok()?;
    let alpha = 1.0 - confidence;
    let l = b.inverse_cdf(alpha / 2.0).clamp(1, n);
    let u = (b.inverse_cdf(1.0 - alpha / 2.0) + 1).clamp(1, n);
    let below = |k: u64| if k == 0 { 0.0 } else { b.cdf(k - 1) };
    let coverage = below(u) - below(l);
    Some((l, u, coverage))
}

/// Distribution-free confidence interval for the `q` quantile of `sorted` (ascending):
/// `[x(l), x(u)]` with the ranks of [`quantile_ranks`]. With few values the achievable
/// coverage can fall short of `confidence`; the interval then reports the coverage it has.
pub fn quantile_interval(sorted: &[f64], q: f64, confidence: f64) -> Option<Interval> {
    let n = sorted.len() as u64;
    let (l, u, coverage) = quantile_ranks(n, q, confidence)?;
    Some(Interval {
        low: sorted[(l - 1) as usize],
        high: sorted[(u - 1) as usize],
        confidence: coverage.min(confidence),
    })
}

/// The smallest total sample size `m > n` for which `decides(m)` holds, minus `n`: how many
/// more events would decide a criterion if what has been seen so far held steady. `decides`
/// must be monotone (false then true). Searches by doubling, then bisection; `None` if even
/// 10¹² events would not decide it (the estimate sits on the threshold).
pub fn more_events_until(n: u64, decides: impl Fn(u64) -> bool) -> Option<u64> {
    const LIMIT: u64 = 1_000_000_000_000;
    let mut hi = n.max(1).saturating_mul(2);
    while !decides(hi) {
        if hi >= LIMIT {
            return None;
        }
        hi = hi.saturating_mul(2).min(LIMIT);
    }
    let mut lo = n; // decides(lo) is false (the interval straddles now)
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if decides(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi - n)
}

/// More events for a rate `p_hat` (seen over `n`) to have its Wilson interval exclude
/// `threshold`, assuming the rate holds.
pub fn more_events_rate(n: u64, p_hat: f64, threshold: f64, confidence: f64) -> Option<u64> {
    more_events_until(n, |m| {
        let k = (p_hat * m as f64).round() as u64;
        wilson(k.min(m), m, confidence).is_some_and(|i| !i.contains(threshold))
    })
}

/// More events for a mean (seen over `n` with standard deviation `sd`) to have its t interval
/// exclude `threshold`, assuming mean and spread hold.
pub fn more_events_mean(
    n: u64,
    mean: f64,
    sd: f64,
    threshold: f64,
    confidence: f64,
) -> Option<u64> {
    more_events_until(n, |m| {
        mean_t(m, mean, sd, confidence).is_some_and(|i| !i.contains(threshold))
    })
}

/// More events for a normal-approximation interval `estimate ± z·sigma/√m` to exclude
/// `threshold` (used for ratios of sums).
pub fn more_events_normal(
    n: u64,
    estimate: f64,
    sigma: f64,
    threshold: f64,
    confidence: f64,
) -> Option<u64> {
    let z = z_two_sided(confidence);
    more_events_until(n, |m| {
        z * sigma / (m as f64).sqrt() < (estimate - threshold).abs()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_edges() {
        assert!(wilson(0, 0, 0.95).is_none());
        let all = wilson(10, 10, 0.95).unwrap();
        assert_eq!(all.high, 1.0);
        assert!(all.low > 0.69 && all.low < 0.73, "{all:?}");
        let none = wilson(0, 10, 0.95).unwrap();
        assert_eq!(none.low, 0.0);
    }

    #[test]
    fn more_events_search() {
        // 92% of 805 against 90%: Wilson's lower bound is just under 0.90 now.
        let more = more_events_rate(805, 0.92, 0.90, 0.95).unwrap();
        let total = 805 + more;
        let k = (0.92 * total as f64).round() as u64;
        assert!(!wilson(k, total, 0.95).unwrap().contains(0.90));
        let k = (0.92 * (total - 1) as f64).round() as u64;
        assert!(
            wilson(k, total - 1, 0.95).unwrap().contains(0.90),
            "smallest such total"
        );
        assert_eq!(
            more_events_rate(100, 0.9, 0.9, 0.95),
            None,
            "on the threshold: never"
        );
    }

    #[test]
    fn ranks_cover() {
        let (l, u, c) = quantile_ranks(1000, 0.95, 0.95).unwrap();
        assert!(l < 950 && u > 950 && c >= 0.95, "{l} {u} {c}");
        let (l, u, _) = quantile_ranks(1, 0.5, 0.95).unwrap();
        assert_eq!((l, u), (1, 1));
    }
}
