//! Honest statistics for pilot decisions.
//!
//! - [`interval`]: Wilson score intervals for rates, Student t intervals for means,
//!   distribution-free order-statistic intervals for quantiles, and the events still needed
//!   to decide a criterion whose interval straddles its threshold.
//! - [`compare`]: pilot vs baseline or control — two-proportion z test, Welch's t test,
//!   Mann-Whitney U with the Hodges-Lehmann shift and its interval, and the chi-square
//!   sample-ratio-mismatch check.
//! - [`sequential`]: the mixture sequential probability ratio test (mSPRT) with always-valid
//!   p-values, for metrics watched continuously.
//! - [`drift`]: population stability index and missing rates.
//!
//! Distributions (normal, Student t, chi-square, binomial) come from `statrs`. Every function
//! is pure and deterministic. Formulas cite their source in their doc comments.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod compare;
pub mod drift;
pub mod interval;
pub mod sequential;

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

/// A two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Confidence level in (0, 1), e.g. 0.95.
    pub confidence: f64,
}

impl Interval {
    /// Whether `x` lies inside, bounds included.
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// The standard normal quantile `z` with `P(|Z| <= z) = confidence` (two-sided).
///
/// # Panics
/// Never for `confidence` in (0, 1); callers validate it (the card does).
pub fn z_two_sided(confidence: f64) -> f64 {
    std_normal().inverse_cdf(1.0 - (1.0 - confidence) / 2.0)
}

/// The standard normal distribution.
pub fn std_normal() -> Normal {
    Normal::standard()
}

/// Two-sided p-value of a standard normal statistic.
pub fn normal_p_two_sided(z: f64) -> f64 {
    2.0 * std_normal().sf(z.abs())
}
