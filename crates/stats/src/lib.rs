//! Honest statistics for pilot decisions.
//!
//! - [`dist`]: normal, Student t, chi-square and binomial tails and quantiles that are accurate
//!   and bounded in time at every size (CDFLIB's TOMS 708/654 special functions; quantiles
//!   polished by a bounded, safeguarded Newton iteration).
//! - [`interval`]: Wilson score intervals for rates, Student t intervals for means and (with
//!   the delta method) ratios, distribution-free order-statistic intervals for quantiles, the
//!   coverage each achieves, and the events still needed to decide a criterion
//!   ([`interval::MoreEvents`]).
//! - [`compare`]: pilot vs baseline or control — two-proportion z test with Newcombe's
//!   interval, Miettinen-Nurminen's score interval for a risk ratio, Welch's t test and the
//!   ratio of means, the difference of a quantile from two order-statistic intervals,
//!   Mann-Whitney U with the Hodges-Lehmann shift and its exact-coverage interval, and the
//!   chi-square sample-ratio-mismatch check.
//! - [`hodges_lehmann`]: exact selection among the n₁·n₂ pairwise differences without
//!   materialising them.
//! - [`units`]: comparisons over per-unit aggregates (delta method for ratio metrics, t on the
//!   units' degrees of freedom) with an optional CUPED covariate.
//! - [`sequential`]: the mixture sequential probability ratio test (mSPRT) with always-valid
//!   p-values, for metrics watched continuously.
//! - [`drift`]: population stability index and missing rates.
//!
//! Every function is pure, deterministic and bounded in time: no search runs unbounded, and a
//! search that stops at its limit says so. Formulas cite their source in their doc comments.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod compare;
pub mod dist;
pub mod drift;
pub mod hodges_lehmann;
pub mod interval;
pub mod sequential;
pub mod units;

pub use dist::{normal_p_two_sided, z_two_sided};
use serde::{Serialize, Serializer};

/// A two-sided confidence interval and the coverage it achieves.
///
/// `low` may be −∞ and `high` +∞ (an interval unbounded on that side, e.g. a risk ratio whose
/// reference count is zero); JSON shows an unbounded side as `null`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Lower bound, in the statistic's unit.
    #[serde(serialize_with = "bound")]
    pub low: f64,
    /// Upper bound, in the statistic's unit.
    #[serde(serialize_with = "bound")]
    pub high: f64,
    /// The two-sided level asked for, in (0, 1), e.g. 0.95.
    pub confidence: f64,
    /// The level the interval achieves: the exact coverage for distribution-free methods
    /// (order statistics, the exact Mann-Whitney distribution), the nominal level for
    /// asymptotic ones, and less than `confidence` when the data cannot reach it (a p99 over
    /// 20 values, a rank interval over 3 + 3 values). A verdict needs `coverage ≥ confidence`.
    pub coverage: f64,
    /// Whether `coverage` is exact (`true`) or the asymptotic method's nominal level.
    pub coverage_exact: bool,
}

fn bound<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_finite() {
        s.serialize_f64(*x)
    } else {
        s.serialize_none()
    }
}

/// Coverage shortfalls smaller than this are rounding, not a shortfall.
pub(crate) const COVERAGE_TOLERANCE: f64 = 1e-12;

impl Interval {
    /// An asymptotic interval: its coverage is the nominal `confidence`.
    pub fn nominal(low: f64, high: f64, confidence: f64) -> Interval {
        Interval {
            low,
            high,
            confidence,
            coverage: confidence,
            coverage_exact: false,
        }
    }

    /// An interval whose exact coverage is known.
    pub fn exact(low: f64, high: f64, confidence: f64, coverage: f64) -> Interval {
        Interval {
            low,
            high,
            confidence,
            coverage,
            coverage_exact: true,
        }
    }

    /// Whether `x` lies inside, bounds included.
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }

    /// Whether the interval reaches the level asked for (`coverage ≥ confidence`); an interval
    /// that does not cannot decide a verdict.
    pub fn reaches_confidence(&self) -> bool {
        self.coverage >= self.confidence - COVERAGE_TOLERANCE
    }
}

/// The two-sided level whose bounds are one-sided bounds at `confidence`: 1 − 2·(1 −
/// confidence), e.g. 0.90 for one-sided 95% bounds (non-inferiority, and each of the two
/// one-sided tests of equivalence; Schuirmann 1987). Rounded to 12 decimals, so 0.95 gives
/// 0.9 and not 0.8999999999999999.
pub fn one_sided_level(confidence: f64) -> f64 {
    ((1.0 - 2.0 * (1.0 - confidence)) * 1e12).round() / 1e12
}

/// Welch–Satterthwaite degrees of freedom of a sum of two independent variance estimates `a`
/// (on `da` degrees of freedom) and `b` (on `db`): (a + b)² ÷ (a²/da + b²/db) (Satterthwaite
/// 1946). Computed on a / max(a, b) and b / max(a, b), so that neither squares overflow nor
/// underflow at extreme magnitudes (values near 10¹⁶⁰ or 10⁻¹⁶⁰). NaN when both are 0.
pub fn satterthwaite(a: f64, da: u64, b: f64, db: u64) -> f64 {
    let m = a.max(b);
    let (a, b) = (a / m, b / m);
    let term = |v: f64, d: u64| if d == 0 { 0.0 } else { v * v / d as f64 };
    (a + b).powi(2) / (term(a, da) + term(b, db))
}
