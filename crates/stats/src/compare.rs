//! Pilot against baseline or control. Every comparison reports the effect (pilot − reference)
//! with its confidence interval, not only a p-value. "Reference" is the baseline period or the
//! control cohort; "pilot" is the treated cohort or period.

use crate::interval::wilson;
use crate::{Interval, normal_p_two_sided, z_two_sided};
use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF, StudentsT};

/// An effect with its interval and test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Name of the test, e.g. "two-proportion z", "Welch t", "Mann-Whitney U".
    pub test: &'static str,
    /// Pilot − reference (difference of rates or means; Hodges-Lehmann shift for
    /// Mann-Whitney).
    pub effect: f64,
    /// Confidence interval of the effect.
    pub interval: Interval,
    /// The test statistic (z, t, or U of the pilot sample).
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Degrees of freedom (Welch only).
    pub df: Option<f64>,
    /// True when the effect was estimated on a thinned sample (Hodges-Lehmann on very large
    /// samples; see [`mann_whitney`]).
    pub approximate: bool,
}

/// Two-proportion comparison of `k_pilot/n_pilot` against `k_ref/n_ref`: pooled z test
/// (two-sided) and Newcombe's hybrid score interval for the difference, built from Wilson
/// intervals (Newcombe 1998, method 10) — sound at 0 and at all successes. `None` when either
/// sample is empty.
pub fn two_proportions(
    k_ref: u64,
    n_ref: u64,
    k_pilot: u64,
    n_pilot: u64,
    confidence: f64,
) -> Option<Comparison> {
    if n_ref == 0 || n_pilot == 0 {
        return None;
    }
    let (p1, p2) = (k_ref as f64 / n_ref as f64, k_pilot as f64 / n_pilot as f64);
    let diff = p2 - p1;
    let pooled = (k_ref + k_pilot) as f64 / (n_ref + n_pilot) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n_ref as f64 + 1.0 / n_pilot as f64)).sqrt();
    let (z, p) = if se > 0.0 {
        let z = diff / se;
        (z, normal_p_two_sided(z))
    } else {
        (0.0, 1.0)
    };
    let w1 = wilson(k_ref, n_ref, confidence)?;
    let w2 = wilson(k_pilot, n_pilot, confidence)?;
    let low = diff - ((p2 - w2.low).powi(2) + (w1.high - p1).powi(2)).sqrt();
    let high = diff + ((w2.high - p2).powi(2) + (p1 - w1.low).powi(2)).sqrt();
    Some(Comparison {
        test: "two-proportion z",
        effect: diff,
        interval: Interval {
            low,
            high,
            confidence,
        },
        statistic: z,
        p_value: p,
        df: None,
        approximate: false,
    })
}

/// Summary of one sample for Welch's test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Count.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    /// Sample variance (n − 1 denominator).
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
/// degrees of freedom and the matching interval (Welch 1947). `None` with fewer than 2 values
/// on a side or zero variance on both.
pub fn welch(reference: Summary, pilot: Summary, confidence: f64) -> Option<Comparison> {
    if reference.n < 2 || pilot.n < 2 {
        return None;
    }
    let a = reference.var / reference.n as f64;
    let b = pilot.var / pilot.n as f64;
    let se = (a + b).sqrt();
    if se.is_nan() || se <= 0.0 {
        return None;
    }
    let df = (a + b).powi(2) / (a * a / (reference.n - 1) as f64 + b * b / (pilot.n - 1) as f64);
    let diff = pilot.mean - reference.mean;
    let t = diff / se;
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p = 2.0 * dist.sf(t.abs());
    let crit = dist.inverse_cdf(1.0 - (1.0 - confidence) / 2.0);
    Some(Comparison {
        test: "Welch t",
        effect: diff,
        interval: Interval {
            low: diff - crit * se,
            high: diff + crit * se,
            confidence,
        },
        statistic: t,
        p_value: p.min(1.0),
        df: Some(df),
        approximate: false,
    })
}

/// Largest product of sample sizes for which the Hodges-Lehmann estimate uses every pairwise
/// difference; above it both samples are thinned to evenly spaced order statistics.
pub const HL_EXACT_PAIRS: u64 = 4_000_000;

/// Mann-Whitney U test of pilot against reference (two-sided, normal approximation with tie
/// correction and continuity correction — scipy's `method="asymptotic"`), with the
/// Hodges-Lehmann shift (median of all pilot − reference differences) and its
/// distribution-free interval from the ordered differences (Moses; Hollander & Wolfe 1999,
/// §4.3). The statistic is U of the pilot sample. `None` when a side is empty.
pub fn mann_whitney(reference: &[f64], pilot: &[f64], confidence: f64) -> Option<Comparison> {
    let (n1, n2) = (reference.len(), pilot.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    // Rank the pooled sample with average ranks for ties.
    let mut pooled: Vec<(f64, bool)> = reference
        .iter()
        .map(|&x| (x, false))
        .chain(pilot.iter().map(|&x| (x, true)))
        .collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = pooled.len();
    let (mut rank_sum_pilot, mut tie_term) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && pooled[j].0 == pooled[i].0 {
            j += 1;
        }
        let avg = (i + 1 + j) as f64 / 2.0;
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        for item in &pooled[i..j] {
            if item.1 {
                rank_sum_pilot += avg;
            }
        }
        i = j;
    }
    let (n1f, n2f, nf) = (n1 as f64, n2 as f64, n as f64);
    let u_pilot = rank_sum_pilot - n2f * (n2f + 1.0) / 2.0;
    let mu = n1f * n2f / 2.0;
    let sigma = (n1f * n2f / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)))).sqrt();
    let p = if sigma > 0.0 {
        let u_max = u_pilot.max(n1f * n2f - u_pilot);
        let z = (u_max - mu - 0.5) / sigma;
        normal_p_two_sided(z).min(1.0)
    } else {
        1.0
    };
    let (effect, interval, approximate) = hodges_lehmann(reference, pilot, confidence);
    Some(Comparison {
        test: "Mann-Whitney U",
        effect,
        interval,
        statistic: u_pilot,
        p_value: p,
        df: None,
        approximate,
    })
}

/// Evenly spaced order statistics of `sorted`, `k` of them.
fn thin(sorted: &[f64], k: usize) -> Vec<f64> {
    if sorted.len() <= k {
        return sorted.to_vec();
    }
    (0..k)
        .map(|i| sorted[((i as f64 + 0.5) * sorted.len() as f64 / k as f64) as usize])
        .collect()
}

fn hodges_lehmann(reference: &[f64], pilot: &[f64], confidence: f64) -> (f64, Interval, bool) {
    let mut x = reference.to_vec();
    let mut y = pilot.to_vec();
    x.sort_by(f64::total_cmp);
    y.sort_by(f64::total_cmp);
    let approximate = (x.len() as u64) * (y.len() as u64) > HL_EXACT_PAIRS;
    if approximate {
        x = thin(&x, 2000);
        y = thin(&y, 2000);
    }
    let mut d: Vec<f64> = Vec::with_capacity(x.len() * y.len());
    for &b in &y {
        for &a in &x {
            d.push(b - a);
        }
    }
    d.sort_by(f64::total_cmp);
    let m = d.len();
    let median = if m % 2 == 1 {
        d[m / 2]
    } else {
        (d[m / 2 - 1] + d[m / 2]) / 2.0
    };
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let z = z_two_sided(confidence);
    let c = (n1 * n2 / 2.0 - z * (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt()).floor();
    let (low, high) = if c < 0.0 {
        (d[0], d[m - 1])
    } else {
        let c = c as usize;
        let c = c.min(m - 1);
        (d[c], d[m - 1 - c])
    };
    (
        median,
        Interval {
            low,
            high,
            confidence,
        },
        approximate,
    )
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
    let p = ChiSquared::new((observed.len() - 1) as f64).ok()?.sf(chi2);
    Some((chi2, p))
}
