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

/// Roughly how many more events would make a normal-approximation interval of the estimate
/// exclude the threshold: n_total = (z·σ / (estimate − threshold))², minus the `n` already
/// seen. `sigma` is the per-event standard deviation (√(p(1−p)) for a rate, s for a mean,
/// √(q(1−q))/f for a quantile). `None` when the estimate sits exactly on the threshold.
pub fn more_events_needed(
    n: u64,
    estimate: f64,
    threshold: f64,
    sigma: f64,
    confidence: f64,
) -> Option<u64> {
    let gap = (estimate - threshold).abs();
    if gap == 0.0 || !sigma.is_finite() {
        return None;
    }
    let z = z_two_sided(confidence);
    let total = (z * sigma / gap).powi(2).ceil();
    if !total.is_finite() || total > 1e15 {
        return None;
    }
    Some((total as u64).saturating_sub(n).max(1))
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
    fn ranks_cover() {
        let (l, u, c) = quantile_ranks(1000, 0.95, 0.95).unwrap();
        assert!(l < 950 && u > 950 && c >= 0.95, "{l} {u} {c}");
        let (l, u, _) = quantile_ranks(1, 0.5, 0.95).unwrap();
        assert_eq!((l, u), (1, 1));
    }
}
