//! Pilot against baseline or control. Every comparison reports the effect (pilot − reference,
//! or pilot ÷ reference − 1) with its confidence interval and the coverage that interval
//! achieves, not only a p-value. "Reference" is the baseline period or the control cohort;
//! "pilot" is the treated cohort or period.

use crate::Interval;
use crate::dist::{chi2_sf, normal_p_two_sided, normal_sf, t_sf, t_two_sided, z_two_sided};
use crate::hodges_lehmann;
use crate::interval::wilson;
use serde::Serialize;

/// An effect with its interval and test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Name of the test, e.g. "two-proportion z", "Welch t", "Mann-Whitney U".
    pub test: &'static str,
    /// The effect: pilot − reference (difference of rates or means; Hodges-Lehmann shift for
    /// Mann-Whitney), or pilot ÷ reference − 1 for the relative comparisons. `None` when it is
    /// undefined (a relative effect over a zero reference) though its interval exists.
    pub effect: Option<f64>,
    /// Confidence interval of the effect, with its coverage.
    pub interval: Interval,
    /// The test statistic (z, t, or U of the pilot sample).
    pub statistic: f64,
    /// Two-sided p-value of the test of no difference; `None` for the quantile difference, whose
    /// interval is not the inversion of a test.
    pub p_value: Option<f64>,
    /// Degrees of freedom (Welch only).
    pub df: Option<f64>,
}

/// The pooled two-proportion z test of equal rates (two-sided): z and p. z = 0, p = 1 when
/// the pooled rate is 0 or 1 (no variation to test).
fn pooled_z(k_ref: u64, n_ref: u64, k_pilot: u64, n_pilot: u64) -> (f64, f64) {
    let (p1, p2) = (k_ref as f64 / n_ref as f64, k_pilot as f64 / n_pilot as f64);
    let pooled = (k_ref + k_pilot) as f64 / (n_ref + n_pilot) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n_ref as f64 + 1.0 / n_pilot as f64)).sqrt();
    if se > 0.0 {
        let z = (p2 - p1) / se;
        (z, normal_p_two_sided(z))
    } else {
        (0.0, 1.0)
    }
}

/// Both samples non-empty, neither count above its sample.
fn counts_fit(k_ref: u64, n_ref: u64, k_pilot: u64, n_pilot: u64) -> bool {
    n_ref > 0 && n_pilot > 0 && k_ref <= n_ref && k_pilot <= n_pilot
}

/// Two-proportion comparison of `k_pilot/n_pilot` against `k_ref/n_ref`: pooled z test
/// (two-sided) and Newcombe's hybrid score interval for the difference, built from Wilson
/// intervals (Newcombe 1998, method 10) — sound at 0 and at all successes. `None` when either
/// sample is empty or a count exceeds its sample.
pub fn two_proportions(
    k_ref: u64,
    n_ref: u64,
    k_pilot: u64,
    n_pilot: u64,
    confidence: f64,
) -> Option<Comparison> {
    if !counts_fit(k_ref, n_ref, k_pilot, n_pilot) {
        return None;
    }
    let (p1, p2) = (k_ref as f64 / n_ref as f64, k_pilot as f64 / n_pilot as f64);
    let diff = p2 - p1;
    let (z, p) = pooled_z(k_ref, n_ref, k_pilot, n_pilot);
    let w1 = wilson(k_ref, n_ref, confidence)?;
    let w2 = wilson(k_pilot, n_pilot, confidence)?;
    let low = diff - ((p2 - w2.low).powi(2) + (w1.high - p1).powi(2)).sqrt();
    let high = diff + ((w2.high - p2).powi(2) + (p1 - w1.low).powi(2)).sqrt();
    Some(Comparison {
        test: "two-proportion z",
        effect: Some(diff),
        interval: Interval::nominal(low, high, confidence),
        statistic: z,
        p_value: Some(p),
        df: None,
    })
}

/// Bisection steps for a score-interval bound (on ln θ; far more than the ~60 needed).
const SCORE_STEPS: u32 = 200;

/// Relative comparison of two rates: the risk ratio θ = p_pilot ÷ p_ref as the effect θ − 1,
/// with the Miettinen-Nurminen score interval (Miettinen & Nurminen 1985; Koopman 1984's
/// score interval with the N/(N−1) variance correction; recommended by Fagerland, Lydersen
/// & Laake 2015) and the pooled z test of equal rates.
///
/// The interval inverts the score statistic S(θ) = (p̂₁ − θp̂₀) ÷ √V(θ), where V uses the
/// rates' maximum-likelihood estimates restricted to p₁ = θp₀: it is found by bisection on
/// ln θ over θ ∈ [10⁻²⁶, 10²⁶] (at most 200 steps a bound). Unlike Katz's log interval it
/// stays honest at zero cells: no pilot successes → lower bound −1 (θ = 0); no reference
/// successes → unbounded above (and the point effect undefined); all successes on both sides
/// → a proper interval around 0.
/// `None` when a sample is empty or a count exceeds its sample.
pub fn risk_ratio(
    k_ref: u64,
    n_ref: u64,
    k_pilot: u64,
    n_pilot: u64,
    confidence: f64,
) -> Option<Comparison> {
    if !counts_fit(k_ref, n_ref, k_pilot, n_pilot) {
        return None;
    }
    let (x1, n1, x0, n0) = (k_pilot as f64, n_pilot as f64, k_ref as f64, n_ref as f64);
    let (p1, p0) = (x1 / n1, x0 / n0);
    let n = n0 + n1;
    let z = z_two_sided(confidence);
    // Score statistic at θ; decreasing in θ.
    let score = |theta: f64| -> f64 {
        // Restricted MLE of p₀: the smaller root of Nθ·p² − (θ(n₁+x₀) + n₀+x₁)·p + (x₀+x₁).
        // Its discriminant, rewritten as (θ(n₁+x₀) − (n₀+x₁))² + 4θ(n₁−x₁)(n₀−x₀), is a sum
        // of non-negative terms: no cancellation, even for a near-double root (θ ≈ 1 with
        // every trial a success), where b² − 4ac loses half the digits. The difference is
        // formed as (θ−1)(n₁+x₀) + ((n₁+x₀) − (n₀+x₁)), with θ−1 exact near 1 (Sterbenz).
        let (u0, v) = (n1 + x0, n0 + x1);
        let d = (theta - 1.0) * u0 + (u0 - v);
        let disc = d * d + 4.0 * theta * (n1 - x1) * (n0 - x0);
        let minus_b = theta * u0 + v;
        let c = x1 + x0;
        // The smaller root, in the form without cancellation: 2c ÷ (−b + √disc).
        let q0 = if c == 0.0 {
            0.0
        } else {
            (2.0 * c / (minus_b + disc.sqrt())).min(1.0)
        };
        let q1 = (theta * q0).min(1.0);
        let var = (q1 * (1.0 - q1) / n1 + theta * theta * q0 * (1.0 - q0) / n0) * n / (n - 1.0);
        let num = p1 - theta * p0;
        if num == 0.0 {
            0.0
        } else if var <= 0.0 {
            num.signum() * f64::INFINITY
        } else {
            num / var.sqrt()
        }
    };
    // The θ where score(θ) crosses `target`, by bisection on ln θ over [e⁻⁶⁰, e⁶⁰] (ratios
    // of 10⁻²⁶ to 10²⁶; wider, θ·(n₁+x₀) squared would overflow for large samples).
    let root = |target: f64| -> f64 {
        let (mut lo, mut hi) = (-60.0f64, 60.0f64);
        for _ in 0..SCORE_STEPS {
            let mid = 0.5 * (lo + hi);
            if score(mid.exp()) > target {
                lo = mid;
            } else {
                hi = mid;
            }
            if hi - lo <= 1e-15 * mid.abs().max(1.0) {
                break;
            }
        }
        (0.5 * (lo + hi)).exp()
    };
    let theta_low = if x1 == 0.0 { 0.0 } else { root(z) };
    let theta_high = if x0 == 0.0 { f64::INFINITY } else { root(-z) };
    let (stat, p) = pooled_z(k_ref, n_ref, k_pilot, n_pilot);
    Some(Comparison {
        test: "two-proportion z",
        effect: (x0 > 0.0).then(|| p1 / p0 - 1.0),
        interval: Interval::nominal(theta_low - 1.0, theta_high - 1.0, confidence),
        statistic: stat,
        p_value: Some(p),
        df: None,
    })
}

/// Summary of one sample: count, mean and sample variance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Count.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    /// Sample variance (n − 1 denominator); NaN for n < 2.
    pub var: f64,
}

impl Summary {
    /// Summarises values (Welford's algorithm).
    pub fn of(values: &[f64]) -> Summary {
        let (mut n, mut mean, mut m2) = (0u64, 0.0, 0.0);
        for &x in values {
            n += 1;
            let d = x - mean;
            mean += d / n as f64;
            m2 += d * (x - mean);
        }
        Summary {
            n,
            mean,
            var: if n > 1 { m2 / (n - 1) as f64 } else { f64::NAN },
        }
    }
}

/// Welch's unequal-variance t test of pilot − reference means, with the Welch–Satterthwaite
/// degrees of freedom and the matching interval (Welch 1947); t tail and quantile from
/// [`crate::dist`], accurate at any df. `None` with fewer than 2 values on a side or zero
/// variance on both.
pub fn welch(reference: Summary, pilot: Summary, confidence: f64) -> Option<Comparison> {
    if reference.n < 2 || pilot.n < 2 {
        return None;
    }
    let a = reference.var / reference.n as f64;
    let b = pilot.var / pilot.n as f64;
    let se = (a + b).sqrt();
    if !(se > 0.0 && se.is_finite()) {
        return None;
    }
    let df = crate::satterthwaite(a, reference.n - 1, b, pilot.n - 1);
    if df.is_nan() || df <= 0.0 {
        return None;
    }
    let diff = pilot.mean - reference.mean;
    let t = diff / se;
    let p = (2.0 * t_sf(t.abs(), df)).min(1.0);
    let crit = t_two_sided(confidence, df);
    Some(Comparison {
        test: "Welch t",
        effect: Some(diff),
        interval: Interval::nominal(diff - crit * se, diff + crit * se, confidence),
        statistic: t,
        p_value: Some(p),
        df: Some(df),
    })
}

/// Relative comparison of means: R − 1 for R = x̄_pilot ÷ x̄_ref, with the delta-method
/// standard error se = |R|·√(s²_p/(n_p x̄²_p) + s²_r/(n_r x̄²_r)) (e.g. Casella & Berger 2002,
/// §5.5.4) and a t interval on the Welch–Satterthwaite degrees of freedom; the p-value is
/// Welch's test of equal means. A relative change needs a positive reference: `None` when the
/// reference mean is not positive, a side has fewer than 2 values, or neither side varies.
pub fn ratio_of_means(reference: Summary, pilot: Summary, confidence: f64) -> Option<Comparison> {
    let w = welch(reference, pilot, confidence)?;
    if reference.mean.is_nan() || reference.mean <= 0.0 {
        return None;
    }
    let r = pilot.mean / reference.mean;
    let se = r.abs()
        * (pilot.var / (pilot.n as f64 * pilot.mean * pilot.mean)
            + reference.var / (reference.n as f64 * reference.mean * reference.mean))
            .sqrt();
    let se = if pilot.mean == 0.0 {
        // R = 0: the pilot term's relative form is undefined; its absolute form is s²_p/(n_p x̄²_r).
        (pilot.var / (pilot.n as f64 * reference.mean * reference.mean)).sqrt()
    } else {
        se
    };
    let interval = crate::interval::t_interval(r - 1.0, se, w.df?, confidence)?;
    Some(Comparison {
        effect: Some(r - 1.0),
        interval,
        ..w
    })
}

/// Largest sample size (each side, exclusive) for which Moses' interval uses the exact null
/// distribution of U when there are no ties (R's `wilcox.test` rule).
pub const EXACT_U_BELOW: usize = 50;

/// P(U ≤ u) for u = 0…n₁n₂ under the null hypothesis (no ties, continuous data), from the
/// recurrence p(u; m, n) = m/(m+n)·p(u−n; m−1, n) + n/(m+n)·p(u; m, n−1) (Mann & Whitney
/// 1947), kept as probabilities so every term is non-negative.
pub fn mann_whitney_null_cdf(n1: usize, n2: usize) -> Vec<f64> {
    // row[n][u] = P(U = u) for samples of m (the current outer size) and n.
    let width = n1 * n2 + 1;
    let mut prev: Vec<Vec<f64>> = (0..=n2)
        .map(|_| {
            let mut v = vec![0.0; width];
            v[0] = 1.0; // m = 0: U = 0 surely
            v
        })
        .collect();
    for m in 1..=n1 {
        let mut cur: Vec<Vec<f64>> = Vec::with_capacity(n2 + 1);
        let mut first = vec![0.0; width];
        first[0] = 1.0; // n = 0: U = 0 surely
        cur.push(first);
        for n in 1..=n2 {
            let (wm, wn) = (m as f64 / (m + n) as f64, n as f64 / (m + n) as f64);
            let mut v = vec![0.0; width];
            for (u, slot) in v.iter_mut().enumerate().take(m * n + 1) {
                let a = if u >= n { prev[n][u - n] } else { 0.0 };
                *slot = wm * a + wn * cur[n - 1][u];
            }
            cur.push(v);
        }
        prev = cur;
    }
    let mut acc = 0.0;
    prev[n2]
        .iter()
        .map(|p| {
            acc += p;
            acc.min(1.0)
        })
        .collect()
}

/// How many differences Moses' interval cuts from each end, and the coverage that achieves.
///
/// The interval is \[d₍c₊₁₎, d₍m₋c₎\] of the m = n₁n₂ sorted pairwise differences; its
/// coverage under continuous data is 1 − 2·P(U ≤ c). With both samples under
/// [`EXACT_U_BELOW`], c is the largest cut keeping that exact coverage ≥ `confidence`
/// (R's `qwilcox(α/2) − 1`), and the coverage reported is exact for continuous data — ties
/// included, since the normal approximation R falls back to with ties can under-cover small
/// samples (4 + 4 values with one tie: 0.943 for a claimed 0.95). Otherwise c = ⌊m/2 −
/// z·√(n₁n₂(n₁+n₂+1)/12)⌋ (the normal approximation; Hollander & Wolfe 1999, §4.3) with the
/// nominal coverage. `None` for c when even the widest interval, \[d₍₁₎, d₍m₎\], cannot
/// reach `confidence`: its coverage, 1 − 2/C(n₁+n₂, n₁), is then returned (1 + 1 values: 0;
/// 3 + 3: 0.9).
pub fn moses_cut(n1: usize, n2: usize, confidence: f64) -> (Option<u64>, f64, bool) {
    let m = (n1 as u64) * (n2 as u64);
    // log C(N, n1) by summing logs: n1 ≤ N/2 terms at most, exact enough for this bound.
    let k = n1.min(n2);
    let ln_choose: f64 = (1..=k)
        .map(|i| (((n1 + n2 - k + i) as f64) / i as f64).ln())
        .sum();
    let widest = 1.0 - 2.0 * (-ln_choose).exp();
    if widest < confidence - crate::COVERAGE_TOLERANCE {
        return (None, widest.max(0.0), true);
    }
    let alpha = 1.0 - confidence;
    if n1 < EXACT_U_BELOW && n2 < EXACT_U_BELOW {
        let cdf = mann_whitney_null_cdf(n1, n2);
        // R's qwilcox(α/2) − 1: the largest cut c with P(U ≤ c) < α/2.
        let below = cdf.iter().take_while(|&&p| p < alpha / 2.0).count() as u64;
        let c = below.saturating_sub(1).min(m.saturating_sub(1) / 2);
        let coverage = 1.0 - 2.0 * cdf[c as usize];
        return (Some(c), coverage.clamp(0.0, 1.0), true);
    }
    let (a, b) = (n1 as f64, n2 as f64);
    let z = z_two_sided(confidence);
    let c = (a * b / 2.0 - z * (a * b * (a + b + 1.0) / 12.0).sqrt()).floor();
    if c < 0.0 {
        return (None, widest.max(0.0), true);
    }
    (
        Some((c as u64).min(m.saturating_sub(1) / 2)),
        confidence,
        false,
    )
}

/// Mann-Whitney U test of pilot against reference (two-sided, normal approximation with tie
/// correction and continuity correction — scipy's `method="asymptotic"`), with the
/// Hodges-Lehmann shift (median of all pilot − reference differences) and Moses'
/// distribution-free interval ([`moses_cut`]), both selected exactly among the n₁n₂
/// differences without materialising them ([`hodges_lehmann::select`]). The statistic is U of
/// the pilot sample. `None` when a side is empty or holds a non-finite value, when every
/// value is the same (no spread, no interval), or when ties collapse the interval onto a single
/// difference (discrete data a shift does not describe).
pub fn mann_whitney(reference: &[f64], pilot: &[f64], confidence: f64) -> Option<Comparison> {
    let (n1, n2) = (reference.len(), pilot.len());
    if n1 == 0 || n2 == 0 || reference.iter().chain(pilot).any(|x| !x.is_finite()) {
        return None;
    }
    let mut x = reference.to_vec();
    let mut y = pilot.to_vec();
    x.sort_by(f64::total_cmp);
    y.sort_by(f64::total_cmp);
    // Rank sums by merging the sorted samples, average ranks for ties.
    let (mut i, mut j) = (0usize, 0usize);
    let (mut rank_sum_pilot, mut tie_term) = (0.0f64, 0.0f64);
    let mut next_rank = 1usize;
    while i < n1 || j < n2 {
        let v = match (x.get(i), y.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        let (mut ci, mut cj) = (0usize, 0usize);
        while i < n1 && x[i] == v {
            i += 1;
            ci += 1;
        }
        while j < n2 && y[j] == v {
            j += 1;
            cj += 1;
        }
        let t = (ci + cj) as f64;
        let avg = next_rank as f64 + (t - 1.0) / 2.0;
        rank_sum_pilot += avg * cj as f64;
        tie_term += t * t * t - t;
        next_rank += ci + cj;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let nf = n1f + n2f;
    let u_pilot = rank_sum_pilot - n2f * (n2f + 1.0) / 2.0;
    let mu = n1f * n2f / 2.0;
    let sigma = if nf > 1.0 {
        (n1f * n2f / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)))).sqrt()
    } else {
        0.0
    };
    let p = if sigma > 0.0 {
        // The continuity correction can push z below 0 (U within ½ of its mean): then
        // 2·P(Z > z) exceeds 1 and the p-value is 1, as in scipy.
        let u_max = u_pilot.max(n1f * n2f - u_pilot);
        let z = (u_max - mu - 0.5) / sigma;
        (2.0 * normal_sf(z)).min(1.0)
    } else {
        1.0
    };
    if sigma == 0.0 && nf > 1.0 {
        // Every value equal: nothing shows how uncertain a shift of 0 is.
        return None;
    }
    let m = (n1 as u64) * (n2 as u64);
    let shift = hodges_lehmann::shift(&x, &y)?;
    let (cut, coverage, exact) = moses_cut(n1, n2, confidence);
    let c = cut.unwrap_or(0);
    let low = hodges_lehmann::select(&x, &y, c)?;
    let high = hodges_lehmann::select(&x, &y, m - 1 - c)?;
    if low == high && n1 + n2 > 2 && tie_term > 0.0 {
        // Heavily tied data (values of 1 and 2): the differences pile up on one value and the
        // interval collapses onto it, though the rank test may see the distributions differ.
        // A shift model does not describe such data; there is no honest interval.
        return None;
    }
    let interval = if exact {
        Interval::exact(low, high, confidence, coverage)
    } else {
        Interval::nominal(low, high, confidence)
    };
    Some(Comparison {
        test: "Mann-Whitney U",
        effect: Some(shift),
        interval,
        statistic: u_pilot,
        p_value: Some(p),
        df: None,
    })
}

/// Comparison of the `q` quantile of pilot against reference (e.g. p95 latency), as a
/// difference or, with `relative`, as pilot ÷ reference − 1.
///
/// Each side gets the distribution-free order-statistic interval of [`crate::interval`] at
/// level √`confidence`; the samples are independent, so both cover their quantile at once with
/// probability at least the product of their exact coverages, and then \[L_p − U_r, U_p − L_r\]
/// covers the difference (relative: the extreme corners of L_p, U_p over L_r, U_r, minus 1,
/// with L_r > 0). The coverage reported is
/// that product — exact as a lower bound for continuous data, and below `confidence` when a
/// side has too few values for its quantile (then no verdict). This compares the quantile the
/// criterion names; a Mann-Whitney shift compares whole distributions and can miss a tail that
/// moved (15% of calls four times slower moves a p95 far more than the median shift). No test
/// is implied, so there is no p-value. `None` when a side is empty or holds a non-finite value,
/// `q` is outside (0, 1), or a relative change has a reference interval that reaches 0.
pub fn quantile_difference(
    reference: &[f64],
    pilot: &[f64],
    q: f64,
    relative: bool,
    confidence: f64,
) -> Option<Comparison> {
    if reference.is_empty()
        || pilot.is_empty()
        || !(q > 0.0 && q < 1.0)
        || reference.iter().chain(pilot).any(|x| !x.is_finite())
    {
        return None;
    }
    let level = confidence.sqrt();
    let side = |v: &[f64]| -> Option<(f64, f64, f64, f64)> {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let (l, u, cov) = crate::interval::quantile_ranks(s.len() as u64, q, level)?;
        // Hyndman & Fan definition 7, as the engine's quantiles.
        let h = (s.len() - 1) as f64 * q;
        let (i, frac) = (h.floor() as usize, h - h.floor());
        let point = if i + 1 < s.len() {
            s[i] + frac * (s[i + 1] - s[i])
        } else {
            s[i]
        };
        Some((point, s[(l - 1) as usize], s[(u - 1) as usize], cov))
    };
    let (qr, lr, ur, cr) = side(reference)?;
    let (qp, lp, up, cp) = side(pilot)?;
    let (effect, low, high) = if relative {
        // The reference's interval must stay above 0 (a relative change over a reference that
        // may be 0 or negative means nothing); the pilot's may be anywhere, so the ratio's
        // bounds are the extreme corners of the two intervals.
        if !(qr > 0.0 && lr > 0.0) {
            return None;
        }
        let corners = [lp / lr, lp / ur, up / lr, up / ur];
        let lo = corners.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = corners.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (qp / qr - 1.0, lo - 1.0, hi - 1.0)
    } else {
        (qp - qr, lp - ur, up - lr)
    };
    Some(Comparison {
        test: "quantile difference",
        effect: Some(effect),
        interval: Interval::exact(low, high, confidence, cr * cp),
        statistic: f64::NAN,
        p_value: None,
        df: None,
    })
}

/// Sample-ratio mismatch: Pearson's chi-square goodness-of-fit of cohort counts against the
/// assigned shares (shares need not sum to 1; they are normalised). Returns (χ², p). A p below
/// 0.001 is the usual SRM alarm (Fabijan et al. 2019). `None` with fewer than 2 cohorts, no
/// events, or a non-positive share.
pub fn sample_ratio_mismatch(observed: &[u64], shares: &[f64]) -> Option<(f64, f64)> {
    if observed.len() < 2
        || observed.len() != shares.len()
        || shares.iter().any(|s| s.is_nan() || *s <= 0.0)
    {
        return None;
    }
    let total: u64 = observed.iter().sum();
    if total == 0 {
        return None;
    }
    let share_sum: f64 = shares.iter().sum();
    let chi2: f64 = observed
        .iter()
        .zip(shares)
        .map(|(&o, &s)| {
            let e = total as f64 * s / share_sum;
            (o as f64 - e).powi(2) / e
        })
        .sum();
    let p = chi2_sf(chi2, (observed.len() - 1) as f64);
    Some((chi2, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_distribution_of_u_small_cases() {
        // n1 = n2 = 2: the 6 arrangements give U = 0,1,2,2,3,4.
        let cdf = mann_whitney_null_cdf(2, 2);
        let want = [1.0, 2.0, 4.0, 5.0, 6.0].map(|k| k / 6.0);
        for (g, w) in cdf.iter().zip(want) {
            assert!((g - w).abs() < 1e-15, "{cdf:?}");
        }
        assert_eq!(mann_whitney_null_cdf(1, 1), vec![0.5, 1.0]);
    }

    #[test]
    fn tiny_rank_samples_cannot_reach_95_percent() {
        // 1 + 1 values: the only interval [d, d] covers with probability 0.
        let (cut, coverage, _) = moses_cut(1, 1, 0.95);
        assert_eq!(cut, None);
        assert_eq!(coverage, 0.0);
        // 3 + 3: at best 1 − 2/20 = 0.9.
        let (cut, coverage, _) = moses_cut(3, 3, 0.95);
        assert_eq!(cut, None);
        assert!((coverage - 0.9).abs() < 1e-12);
        // 4 + 4: the widest reaches 1 − 2/70 ≈ 0.971.
        let (cut, coverage, exact) = moses_cut(4, 4, 0.95);
        assert_eq!(cut, Some(0));
        assert!(exact && coverage >= 0.95, "{coverage}");
    }

    #[test]
    fn zero_cells_do_not_collapse_the_risk_ratio() {
        let all = risk_ratio(50, 50, 50, 50, 0.95).unwrap();
        assert_eq!(all.effect, Some(0.0));
        assert!(
            all.interval.low < -0.05 && all.interval.high > 0.05,
            "{all:?}"
        );
        let none_pilot = risk_ratio(3, 50, 0, 50, 0.95).unwrap();
        assert_eq!(none_pilot.interval.low, -1.0);
        let none_ref = risk_ratio(0, 50, 3, 50, 0.95).unwrap();
        assert_eq!(none_ref.effect, None);
        assert_eq!(none_ref.interval.high, f64::INFINITY);
        let empty = risk_ratio(0, 50, 0, 50, 0.95).unwrap();
        assert_eq!(
            (empty.interval.low, empty.interval.high),
            (-1.0, f64::INFINITY)
        );
    }
}
