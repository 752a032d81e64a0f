//! Uncertainty on one number, the coverage it achieves, and how many more events would decide
//! a criterion.

use crate::Interval;
use crate::dist::{binomial_cdf, binomial_quantile, t_two_sided, z_two_sided};
use serde::Serialize;

/// Wilson score interval for a proportion `successes / n` (Wilson 1927; Agresti & Coull 1998).
///
/// center = (p̂ + z²/2n) / (1 + z²/n), half-width = z·√(p̂(1−p̂)/n + z²/4n²) / (1 + z²/n).
/// Well behaved at 0 and n successes (unlike the Wald interval); asymptotic, so its coverage is
/// the nominal level. `None` when `n` is 0 or `successes > n`.
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
    Some(Interval::nominal(
        if successes == 0 {
            0.0
        } else {
            (center - half).max(0.0)
        },
        if successes == n {
            1.0
        } else {
            (center + half).min(1.0)
        },
        confidence,
    ))
}

/// Student t interval for a mean: x̄ ± t(1−α/2; n−1)·s/√n, with `sd` the sample standard
/// deviation (n−1 denominator) and the t quantile of [`crate::dist::t_upper`], accurate at
/// any n. `None` when n < 2 (one value has no spread, so no interval: a verdict must wait) or
/// `sd` is 0 or not finite (identical values cannot show how uncertain their mean is).
pub fn mean_t(n: u64, mean: f64, sd: f64, confidence: f64) -> Option<Interval> {
    if n < 2 {
        return None;
    }
    t_interval(mean, sd / (n as f64).sqrt(), (n - 1) as f64, confidence)
}

/// Student t interval `estimate ± t(1−α/2; df)·se` — delta-method ratios of sums (df = n − 1),
/// ratios of means (Welch–Satterthwaite df) and per-unit comparisons (df from the number of
/// units): the t quantile keeps the coverage honest when the standard error comes from few
/// values or units, where a z interval would under-cover (70% instead of 95% at 2 units).
/// `None` when `se` is not positive and finite — no spread, no interval — or `df` ≤ 0.
pub fn t_interval(estimate: f64, se: f64, df: f64, confidence: f64) -> Option<Interval> {
    if !(se > 0.0 && se.is_finite() && estimate.is_finite() && df > 0.0) {
        return None;
    }
    let half = t_two_sided(confidence, df) * se;
    Some(Interval::nominal(
        estimate - half,
        estimate + half,
        confidence,
    ))
}

/// Normal-approximation interval `estimate ± z·se`. `None` when `se` is not positive and
/// finite.
pub fn normal_interval(estimate: f64, se: f64, confidence: f64) -> Option<Interval> {
    if !(se > 0.0 && se.is_finite() && estimate.is_finite()) {
        return None;
    }
    let half = z_two_sided(confidence) * se;
    Some(Interval::nominal(
        estimate - half,
        estimate + half,
        confidence,
    ))
}

/// The 1-based order-statistic ranks `(l, u)` of a distribution-free confidence interval for
/// the `q` quantile of a sample of `n`, and the coverage they achieve.
///
/// Equal tails where the sample allows: `l = F⁻¹(α/2)`, `u = F⁻¹(1−α/2) + 1` for `F` the
/// Binomial(n, q) CDF, clamped to `1..=n`, with coverage `F(u−1) − F(l−1)` (Conover 1999,
/// §3.2; Hahn & Meeker 1991, §5.2). When a rank had to be clamped (a p99 over a few hundred
/// values has no order statistic above it to spare), the other rank moves outwards just enough
/// to keep the coverage at `confidence` if any interval can — still distribution-free, with
/// unequal tails. When even \[x₍₁₎, x₍ₙ₎\] cannot, its coverage `1 − qⁿ − (1−q)ⁿ` is
/// returned and falls short of `confidence`: no verdict can rest on it. Coverage is exact for
/// continuous data. `None` when `n` is 0 or `q` is outside \[0, 1\].
pub fn quantile_ranks(n: u64, q: f64, confidence: f64) -> Option<(u64, u64, f64)> {
    if n == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let alpha = 1.0 - confidence;
    // below(k) = P(fewer than k values ≤ the quantile) = F(k − 1).
    let below = |k: u64| {
        if k == 0 {
            0.0
        } else {
            binomial_cdf(k - 1, n, q)
        }
    };
    let coverage = |l: u64, u: u64| below(u) - below(l);
    let mut l = binomial_quantile(alpha / 2.0, n, q)?.clamp(1, n);
    let mut u = (binomial_quantile(1.0 - alpha / 2.0, n, q)? + 1).clamp(1, n);
    let reached = |l: u64, u: u64| coverage(l, u) >= confidence - crate::COVERAGE_TOLERANCE;
    if !reached(l, u) {
        if u == n && reached(1, n) {
            // Largest l keeping the coverage: bisection on the monotone below(l).
            let (mut good, mut bad) = (1u64, l + 1);
            while bad - good > 1 {
                let mid = good + (bad - good) / 2;
                if reached(mid, n) {
                    good = mid;
                } else {
                    bad = mid;
                }
            }
            l = good;
        } else if l == 1 && reached(1, n) {
            let (mut bad, mut good) = (u - 1, n);
            while good - bad > 1 {
                let mid = bad + (good - bad) / 2;
                if reached(1, mid) {
                    good = mid;
                } else {
                    bad = mid;
                }
            }
            u = good;
        } else if !reached(1, n) {
            (l, u) = (1, n);
        }
    }
    Some((l, u, coverage(l, u)))
}

/// Distribution-free confidence interval for the `q` quantile of `sorted` (ascending):
/// `[x(l), x(u)]` with the ranks and exact coverage of [`quantile_ranks`].
pub fn quantile_interval(sorted: &[f64], q: f64, confidence: f64) -> Option<Interval> {
    let n = sorted.len() as u64;
    let (l, u, coverage) = quantile_ranks(n, q, confidence)?;
    Some(Interval::exact(
        sorted[(l - 1) as usize],
        sorted[(u - 1) as usize],
        confidence,
        coverage,
    ))
}

/// The smallest sample size whose order-statistic interval for the `q` quantile reaches
/// `confidence` — e.g. 299 for a p99 at 95%, 59 for a p95. Below it the widest possible
/// interval, `[x(1), x(n)]`, covers with probability `1 − qⁿ − (1−q)ⁿ` only. Bounded: a
/// bisection on that monotone bound, then at most 64 steps up to where the chosen ranks reach
/// it. `None` for `q` outside (0, 1).
pub fn quantile_min_events(q: f64, confidence: f64) -> Option<u64> {
    if !(q > 0.0 && q < 1.0 && confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    let widest = |n: u64| 1.0 - q.powf(n as f64) - (1.0 - q).powf(n as f64);
    let (mut lo, mut hi) = (0u64, 1u64);
    while widest(hi) < confidence {
        lo = hi;
        hi = hi.saturating_mul(2);
        if hi >= MORE_EVENTS_LIMIT {
            return None;
        }
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if widest(mid) >= confidence {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    // The ranks of `quantile_ranks` reach the widest interval's coverage a few values later at
    // most (discreteness of the binomial); walk up, bounded.
    (hi..hi + 64).find(|&n| {
        quantile_ranks(n, q, confidence)
            .is_some_and(|(_, _, c)| c >= confidence - crate::COVERAGE_TOLERANCE)
    })
}

/// What an interval must do to decide a criterion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Decided once the interval excludes this limit (threshold; for non-inferiority the
    /// threshold moved by the margin).
    Limit(f64),
    /// Decided once the interval lies inside \[low, high\] (equivalence shown) or entirely
    /// outside it (non-equivalence shown).
    Band(f64, f64),
}

impl Target {
    /// Whether `i` decides: excludes the limit, or lies inside or entirely outside the band.
    pub fn decides(&self, i: &Interval) -> bool {
        match *self {
            Target::Limit(t) => !i.contains(t),
            Target::Band(lo, hi) => (i.low >= lo && i.high <= hi) || i.low > hi || i.high < lo,
        }
    }

    /// Distance from `estimate` to the nearest edge that must clear it; 0 when the estimate
    /// sits on an edge (then no number of events decides it).
    pub fn distance(&self, estimate: f64) -> f64 {
        match *self {
            Target::Limit(t) => (estimate - t).abs(),
            Target::Band(lo, hi) => (estimate - lo).abs().min((estimate - hi).abs()),
        }
    }
}

/// How many more events would decide a criterion whose interval does not decide yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MoreEvents {
    /// About `events` more events would decide it, if the estimate and its spread held.
    Needed {
        /// Events (rows, or units for per-unit comparisons) beyond those seen.
        events: u64,
    },
    /// No number of events decides it: the estimate sits exactly on the threshold.
    Never,
    /// Even `limit` more events would not decide it; the search stopped there.
    BeyondLimit {
        /// The search's limit ([`MORE_EVENTS_LIMIT`]).
        limit: u64,
    },
    /// The data cannot give an interval at the card's confidence yet: at least `events` more
    /// are needed before any verdict (a mean needs 2 values; a p99 at 95% needs 299).
    ForCoverage {
        /// Events beyond those seen.
        events: u64,
    },
}

/// The most events any "more events" search considers (10¹²).
pub const MORE_EVENTS_LIMIT: u64 = 1_000_000_000_000;

/// The smallest total sample size `m > n` for which `decides(m)` holds, minus `n`: how many
/// more events would decide a criterion if what has been seen so far held steady. `decides`
/// must be monotone (false then true). Doubling, then bisection: at most 2·log₂(10¹²) ≈ 80
/// evaluations; [`MoreEvents::BeyondLimit`] when even [`MORE_EVENTS_LIMIT`] events would not.
pub fn more_events_until(n: u64, decides: impl Fn(u64) -> bool) -> MoreEvents {
    let mut hi = n.max(1).saturating_mul(2);
    while !decides(hi) {
        if hi >= MORE_EVENTS_LIMIT {
            return MoreEvents::BeyondLimit {
                limit: MORE_EVENTS_LIMIT,
            };
        }
        hi = hi.saturating_mul(2).min(MORE_EVENTS_LIMIT);
    }
    let mut lo = n; // decides(lo) is false (the interval does not decide now)
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if decides(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    MoreEvents::Needed { events: hi - n }
}

/// More events for a rate `p_hat` (seen over `n`) to have its Wilson interval decide
/// `target`, assuming the rate holds. [`MoreEvents::Never`] when the rate sits on the target.
pub fn more_events_rate(n: u64, p_hat: f64, target: Target, confidence: f64) -> MoreEvents {
    if target.distance(p_hat) == 0.0 {
        return MoreEvents::Never;
    }
    more_events_until(n, |m| {
        let k = (p_hat * m as f64).round() as u64;
        wilson(k.min(m), m, confidence).is_some_and(|i| target.decides(&i))
    })
}

/// More events for a mean (seen over `n` with standard deviation `sd`) to have its t interval
/// decide `target`, assuming mean and spread hold. [`MoreEvents::Never`] when the mean sits on
/// the target (the case that made statrs' t quantile loop forever).
pub fn more_events_mean(n: u64, mean: f64, sd: f64, target: Target, confidence: f64) -> MoreEvents {
    if target.distance(mean) == 0.0 {
        return MoreEvents::Never;
    }
    more_events_until(n, |m| {
        mean_t(m, mean, sd, confidence).is_some_and(|i| target.decides(&i))
    })
}

/// More events for a normal-approximation interval `estimate ± z·sigma/√m` to decide
/// `target` (ratios of sums; comparisons, where `sigma/√n` is the current standard error):
/// the closed form m = ⌈(z·sigma ÷ distance)²⌉.
pub fn more_events_normal(
    n: u64,
    estimate: f64,
    sigma: f64,
    target: Target,
    confidence: f64,
) -> MoreEvents {
    let d = target.distance(estimate);
    if d == 0.0 {
        return MoreEvents::Never;
    }
    let m = (z_two_sided(confidence) * sigma / d).powi(2);
    if !m.is_finite() || m >= MORE_EVENTS_LIMIT as f64 {
        return MoreEvents::BeyondLimit {
            limit: MORE_EVENTS_LIMIT,
        };
    }
    let m = (m.floor() as u64 + 1).max(n + 1);
    MoreEvents::Needed { events: m - n }
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
        let MoreEvents::Needed { events } = more_events_rate(805, 0.92, Target::Limit(0.90), 0.95)
        else {
            panic!("decidable")
        };
        let total = 805 + events;
        let k = (0.92 * total as f64).round() as u64;
        assert!(!wilson(k, total, 0.95).unwrap().contains(0.90));
        let k = (0.92 * (total - 1) as f64).round() as u64;
        assert!(
            wilson(k, total - 1, 0.95).unwrap().contains(0.90),
            "smallest such total"
        );
        assert_eq!(
            more_events_rate(100, 0.9, Target::Limit(0.9), 0.95),
            MoreEvents::Never,
            "on the threshold: never"
        );
    }

    #[test]
    fn mean_on_its_threshold_returns_never_at_every_size() {
        for n in [1, 2, 20, 1_000_000, 20_000_000, 10_000_000_000] {
            assert_eq!(
                more_events_mean(n, 6.63, 1.2, Target::Limit(6.63), 0.95),
                MoreEvents::Never
            );
        }
        // A hair off the threshold: a finite answer or the stated limit, never a hang.
        let r = more_events_mean(20_000_000, 6.63, 1.2, Target::Limit(6.630_000_01), 0.95);
        assert!(matches!(r, MoreEvents::BeyondLimit { .. }), "{r:?}");
        let r = more_events_mean(20, 6.6, 1.2, Target::Limit(6.63), 0.95);
        assert!(
            matches!(r, MoreEvents::Needed { events } if events > 1000),
            "{r:?}"
        );
    }

    #[test]
    fn ranks_cover() {
        let (l, u, c) = quantile_ranks(1000, 0.95, 0.95).unwrap();
        assert!(l < 950 && u > 950 && c >= 0.95, "{l} {u} {c}");
        let (l, u, c) = quantile_ranks(1, 0.5, 0.95).unwrap();
        assert_eq!((l, u), (1, 1));
        assert_eq!(c, 0.0, "one value cannot bracket a median");
    }

    #[test]
    fn quantile_coverage_needs_enough_values() {
        // A p99 over 20 values covers with probability 1 − 0.99²⁰ − 0.01²⁰ ≈ 0.182 at best.
        let (_, _, c) = quantile_ranks(20, 0.99, 0.95).unwrap();
        assert!(c < 0.19, "{c}");
        let need = quantile_min_events(0.99, 0.95).unwrap();
        assert_eq!(need, 299, "1 − 0.99ⁿ ≥ 0.95 first at n = 299");
        assert!(quantile_ranks(need, 0.99, 0.95).unwrap().2 >= 0.95);
        assert!(quantile_ranks(need - 1, 0.99, 0.95).unwrap().2 < 0.95);
        assert_eq!(quantile_min_events(0.5, 0.95), Some(6));
        assert_eq!(quantile_min_events(1.0, 0.95), None);
    }

    #[test]
    fn targets_decide_and_measure_distance() {
        let i = Interval::nominal(0.1, 0.2, 0.95);
        assert!(Target::Limit(0.3).decides(&i));
        assert!(!Target::Limit(0.15).decides(&i));
        assert!(Target::Band(0.0, 0.25).decides(&i), "inside");
        assert!(Target::Band(0.3, 0.5).decides(&i), "entirely outside");
        assert!(!Target::Band(0.15, 0.5).decides(&i), "straddles an edge");
        assert_eq!(Target::Band(-0.1, 0.1).distance(0.1), 0.0);
        assert!((Target::Band(-0.1, 0.1).distance(0.02) - 0.08).abs() < 1e-15);
    }

    #[test]
    fn normal_closed_form() {
        // z·σ/√m < d  ⇔  m > (1.96·1/0.1)² = 384.1…
        let r = more_events_normal(100, 0.1, 1.0, Target::Limit(0.0), 0.95);
        assert_eq!(r, MoreEvents::Needed { events: 385 - 100 });
        assert_eq!(
            more_events_normal(100, 0.0, 1.0, Target::Limit(0.0), 0.95),
            MoreEvents::Never
        );
        assert!(matches!(
            more_events_normal(100, 1e-9, 1.0, Target::Limit(0.0), 0.95),
            MoreEvents::BeyondLimit { .. }
        ));
    }
}
