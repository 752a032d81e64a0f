//! Always-valid inference for metrics watched continuously: the normal-mixture sequential
//! probability ratio test (mSPRT) of Robbins (1970), as used for A/B tests by Johari, Pekelis
//! & Walsh, "Always Valid Inference" (2017, Optimizely) and in guarded rollouts.
//!
//! For observations with mean θ and known per-event variance σ², after n events with mean x̄,
//! the mixture likelihood ratio of H0: θ = θ0 under a N(θ0, τ²) mixing prior is
//!
//! Λₙ = √(σ² / (σ² + nτ²)) · exp( n²τ²(x̄ − θ0)² / (2σ²(σ² + nτ²)) ).
//!
//! Rejecting the first time Λₙ ≥ 1/α keeps the false-alarm rate ≤ α however often one looks
//! (Ville's inequality); pₙ = min(1, 1 / maxₘ≤ₙ Λₘ) is an always-valid p-value, and
//! {θ : Λₙ(θ) < 1/α} is a confidence sequence.

use crate::Interval;
use serde::Serialize;

/// An mSPRT watching one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Msprt {
    theta0: f64,
    sigma2: f64,
    tau2: f64,
    alpha: f64,
    n: u64,
    sum: f64,
    max_lambda: f64,
    rejected_at: Option<u64>,
}

/// The test's state after the latest look.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Look {
    /// Events seen.
    pub n: u64,
    /// Their mean.
    pub mean: f64,
    /// Λₙ.
    pub lambda: f64,
    /// Always-valid p-value.
    pub p_value: f64,
    /// Event count at the first look that rejected H0, if any.
    pub rejected_at: Option<u64>,
    /// The confidence sequence for θ at this look (level 1 − α).
    pub interval: Option<Interval>,
}

impl Msprt {
    /// A test of θ = `theta0` with per-event variance `sigma2` (for a rate p0: p0(1 − p0)),
    /// mixing variance `tau2` (the square of the effect size one cares about is a sound
    /// choice) and level `alpha`.
    pub fn new(theta0: f64, sigma2: f64, tau2: f64, alpha: f64) -> Msprt {
        Msprt {
            theta0,
            sigma2,
            tau2,
            alpha,
            n: 0,
            sum: 0.0,
            max_lambda: 0.0,
            rejected_at: None,
        }
    }

    /// Adds a batch of `count` events summing to `sum`, then looks.
    pub fn observe_batch(&mut self, sum: f64, count: u64) -> Look {
        self.n += count;
        self.sum += sum;
        self.look()
    }

    fn log_lambda(&self, theta: f64) -> f64 {
        let n = self.n as f64;
        let mean = self.sum / n;
        let v = self.sigma2 + n * self.tau2;
        0.5 * (self.sigma2 / v).ln()
            + n * n * self.tau2 * (mean - theta).powi(2) / (2.0 * self.sigma2 * v)
    }

    /// The state now (Λ, p-value, confidence sequence), recording a rejection the first time
    /// Λ ≥ 1/α.
    pub fn look(&mut self) -> Look {
        if self.n == 0 {
            return Look {
                n: 0,
                mean: f64::NAN,
                lambda: 1.0,
                p_value: 1.0,
                rejected_at: None,
                interval: None,
            };
        }
        let lambda = self.log_lambda(self.theta0).exp();
        self.max_lambda = self.max_lambda.max(lambda);
        if self.rejected_at.is_none() && lambda >= 1.0 / self.alpha {
            self.rejected_at = Some(self.n);
        }
        let n = self.n as f64;
        let v = self.sigma2 + n * self.tau2;
        let radius2 = 2.0 * self.sigma2 * v / (n * n * self.tau2)
            * ((v / self.sigma2).sqrt() / self.alpha).ln();
        let mean = self.sum / n;
        Look {
            n: self.n,
            mean,
            lambda,
            p_value: (1.0 / self.max_lambda).min(1.0),
            rejected_at: self.rejected_at,
            interval: (radius2 >= 0.0).then(|| {
                Interval::nominal(
                    mean - radius2.sqrt(),
                    mean + radius2.sqrt(),
                    1.0 - self.alpha,
                )
            }),
        }
    }
}

/// Events a fixed-horizon one-sample test of a rate needs to detect a change from `p0` to
/// `p1` at two-sided level `alpha` with `power`:
/// n = ((z₁₋α/₂·√(p0(1−p0)) + z_power·√(p1(1−p1))) / (p1 − p0))² (Chow, Shao & Wang 2008, §4.1).
pub fn fixed_horizon_events(p0: f64, p1: f64, alpha: f64, power: f64) -> f64 {
    let za = crate::z_two_sided(1.0 - alpha);
    let zb = crate::dist::normal_quantile(power);
    ((za * (p0 * (1.0 - p0)).sqrt() + zb * (p1 * (1.0 - p1)).sqrt()) / (p1 - p0)).powi(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_data_no_rejection_and_big_shift_rejects() {
        let mut t = Msprt::new(0.02, 0.02 * 0.98, 0.01f64.powi(2), 0.05);
        assert_eq!(t.look().p_value, 1.0);
        // 10,000 events at 5% errors against a 2% baseline.
        let l = t.observe_batch(500.0, 10_000);
        assert!(l.rejected_at.is_some() && l.p_value < 0.05, "{l:?}");
        let ci = l.interval.unwrap();
        assert!(ci.contains(0.05) && !ci.contains(0.02), "{ci:?}");
    }

    #[test]
    fn fixed_horizon_matches_hand_computation() {
        // p0 = 0.5, p1 = 0.6, alpha 0.05, power 0.8:
        // (0.979982 + 0.412309)² / 0.01 = 1.392291² × 100 = 193.847…
        let n = fixed_horizon_events(0.5, 0.6, 0.05, 0.8);
        assert!((n - 193.847).abs() < 0.01, "{n}");
    }
}
