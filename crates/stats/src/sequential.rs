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

/// Count, mean and sum of squared deviations of a stream, mergeable (Chan, Golub & LeVeque
/// 1979, "Updating formulae and a pairwise algorithm for computing sample variances"), so
/// batches summarised elsewhere (one telemetry batch, one arm) combine without cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, serde::Deserialize)]
pub struct Moments {
    /// Observations.
    pub n: u64,
    /// Their mean (0 when `n` is 0).
    pub mean: f64,
    /// Σ (x − mean)².
    pub m2: f64,
}

impl Moments {
    /// Adds one observation (Welford's update).
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    /// The moments of both streams together.
    pub fn merge(self, other: Moments) -> Moments {
        if self.n == 0 {
            return other;
        }
        if other.n == 0 {
            return self;
        }
        let n = self.n + other.n;
        let (na, nb) = (self.n as f64, other.n as f64);
        let d = other.mean - self.mean;
        Moments {
            n,
            mean: self.mean + d * nb / n as f64,
            m2: self.m2 + other.m2 + d * d * na * nb / n as f64,
        }
    }

    /// The moments of `n` observations known only by their sum and sum of squares (as a
    /// metrics system's counters give them): mean = sum / n, m2 = Σx² − sum² / n, floored at
    /// 0. Less exact than [`Moments::push`] when the mean is large against the spread
    /// (cancellation); `None` when `n` is 0 or a sum is not finite.
    pub fn from_power_sums(n: u64, sum: f64, sum_squares: f64) -> Option<Moments> {
        if n == 0 || !sum.is_finite() || !sum_squares.is_finite() {
            return None;
        }
        let mean = sum / n as f64;
        Some(Moments {
            n,
            mean,
            m2: (sum_squares - sum * mean).max(0.0),
        })
    }

    /// Every observation multiplied by `k` (mean × k, m2 × k²).
    pub fn scaled(self, k: f64) -> Moments {
        Moments {
            n: self.n,
            mean: self.mean * k,
            m2: self.m2 * k * k,
        }
    }

    /// Sample variance (n − 1 denominator); `None` below two observations.
    pub fn variance(&self) -> Option<f64> {
        (self.n >= 2).then(|| (self.m2 / (self.n - 1) as f64).max(0.0))
    }
}

/// The mixing parameter ρ² that makes the Gaussian-mixture confidence sequence narrowest at
/// `n_opt` observations: ρ² = (−2 ln α + ln(1 − 2 ln α)) / n_opt (Waudby-Smith, Arbour,
/// Sinha, Kennedy & Ramdas, "Time-uniform central limit theory and asymptotic confidence
/// sequences", Annals of Statistics 2024, §2.3; Howard et al. 2021, eq. (3.11)).
/// `n_opt` of 0 is taken as 1.
pub fn rho2_for(n_opt: u64, alpha: f64) -> f64 {
    let l = -2.0 * alpha.ln();
    (l + (1.0 + l).ln()) / n_opt.max(1) as f64
}

/// The two-sided asymptotic confidence sequence for the mean of a stream at `moments`, level
/// 1 − `alpha`, mixing parameter `rho2` ([`rho2_for`]):
///
/// C_n = x̄ₙ ± σ̂ₙ · √( 2(nρ² + 1) / (n²ρ²) · ln( √(nρ² + 1) / α ) )
///
/// (Waudby-Smith et al. 2024, Theorem 2.2 with the Robbins normal mixture; with σ̂ the known σ
/// and ρ²σ² = τ² it is [`Msprt`]'s confidence sequence). Its guarantee is time-uniform: the
/// chance that *any* Cₙ ever misses the mean is at most α asymptotically, so it may be looked
/// at after every batch. `None` below two observations and when the sample has no spread —
/// no interval is formed from data without spread.
pub fn asymptotic_cs(moments: Moments, rho2: f64, alpha: f64) -> Option<Interval> {
    let var = moments.variance()?;
    let usable = var > 0.0 && rho2 > 0.0 && alpha > 0.0 && alpha < 1.0;
    if !usable {
        return None;
    }
    let n = moments.n as f64;
    let a = n * rho2 + 1.0;
    let radius = var.sqrt() * (2.0 * a / (n * n * rho2) * (a.sqrt() / alpha).ln()).sqrt();
    Some(Interval::nominal(
        moments.mean - radius,
        moments.mean + radius,
        1.0 - alpha,
    ))
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
    fn moments_merge_equals_one_pass_and_scaling() {
        let xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let mut all = Moments::default();
        xs.iter().for_each(|&x| all.push(x));
        let (mut a, mut b) = (Moments::default(), Moments::default());
        xs[..3].iter().for_each(|&x| a.push(x));
        xs[3..].iter().for_each(|&x| b.push(x));
        let m = a.merge(b);
        assert_eq!(m.n, 8);
        assert!((m.mean - 3.875).abs() < 1e-12);
        // Sample variance by hand: Σx² = 173, n x̄² = 120.125, (173 − 120.125)/7.
        assert!((m.variance().unwrap() - 52.875 / 7.0).abs() < 1e-12);
        assert!((all.variance().unwrap() - m.variance().unwrap()).abs() < 1e-12);
        let s = m.scaled(-2.0);
        assert!((s.mean + 7.75).abs() < 1e-12);
        assert!((s.variance().unwrap() - 4.0 * m.variance().unwrap()).abs() < 1e-9);
        assert_eq!(Moments::default().merge(m), m);
        assert_eq!(m.merge(Moments::default()), m);
    }

    #[test]
    fn moments_from_power_sums_match_the_stream() {
        let xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let mut all = Moments::default();
        xs.iter().for_each(|&x| all.push(x));
        let (s, s2) = (
            xs.iter().sum::<f64>(),
            xs.iter().map(|x| x * x).sum::<f64>(),
        );
        let m = Moments::from_power_sums(8, s, s2).unwrap();
        assert_eq!(m.n, 8);
        assert!((m.mean - all.mean).abs() < 1e-12 && (m.m2 - all.m2).abs() < 1e-9);
        // One observation, ties (zero spread), a 0/1 rate (Σx² = Σx), and the impossible.
        let one = Moments::from_power_sums(1, 7.0, 49.0).unwrap();
        assert_eq!((one.mean, one.m2, one.variance()), (7.0, 0.0, None));
        assert_eq!(Moments::from_power_sums(5, 10.0, 20.0).unwrap().m2, 0.0);
        let rate = Moments::from_power_sums(10_000_000, 300_000.0, 300_000.0).unwrap();
        assert!((rate.variance().unwrap() - 0.03 * 0.97).abs() < 1e-6);
        // Rounding that would make m2 negative is floored.
        assert_eq!(Moments::from_power_sums(3, 3.0, 2.999_999).unwrap().m2, 0.0);
        assert_eq!(Moments::from_power_sums(0, 0.0, 0.0), None);
        assert_eq!(Moments::from_power_sums(2, f64::NAN, 1.0), None);
    }

    #[test]
    fn asymptotic_cs_is_the_msprt_sequence_with_the_variance_known() {
        // Same boundary, two codings: with σ̂² = σ² and τ² = ρ²σ² they must agree.
        let alpha = 0.05;
        for (n, mean, var) in [
            (2u64, 0.3, 0.21),
            (1_000, 0.02, 0.0196),
            (10_000_000, 1.5, 9.0),
        ] {
            let moments = Moments {
                n,
                mean,
                m2: var * (n - 1) as f64,
            };
            let rho2 = rho2_for(500, alpha);
            let cs = asymptotic_cs(moments, rho2, alpha).unwrap();
            let mut t = Msprt::new(0.0, var, rho2 * var, alpha);
            let look = t.observe_batch(mean * n as f64, n);
            let ms = look.interval.unwrap();
            assert!(
                (cs.low - ms.low).abs() < 1e-9 * (1.0 + ms.low.abs()),
                "{cs:?} {ms:?}"
            );
            assert!(
                (cs.high - ms.high).abs() < 1e-9 * (1.0 + ms.high.abs()),
                "{cs:?} {ms:?}"
            );
        }
    }

    #[test]
    fn asymptotic_cs_refuses_one_value_and_no_spread_and_stays_finite_at_1e10() {
        let one = Moments {
            n: 1,
            mean: 4.0,
            m2: 0.0,
        };
        assert!(asymptotic_cs(one, rho2_for(100, 0.05), 0.05).is_none());
        let ties = Moments {
            n: 1000,
            mean: 4.0,
            m2: 0.0,
        };
        assert!(asymptotic_cs(ties, rho2_for(100, 0.05), 0.05).is_none());
        let huge = Moments {
            n: 10_000_000_000,
            mean: 0.5,
            m2: 0.25 * 1e10,
        };
        let cs = asymptotic_cs(huge, rho2_for(100, 0.05), 0.05).unwrap();
        assert!(cs.low.is_finite() && cs.high.is_finite() && cs.low < 0.5 && cs.high > 0.5);
        assert!(cs.high - cs.low < 1e-3, "{cs:?}");
        // Wider than the fixed-horizon 95% interval at every n: the price of looking always.
        for n in [2u64, 10, 100, 10_000, 10_000_000] {
            let m = Moments {
                n,
                mean: 0.0,
                m2: (n - 1) as f64,
            };
            let cs = asymptotic_cs(m, rho2_for(100, 0.05), 0.05).unwrap();
            assert!(cs.high > 1.959964 / (n as f64).sqrt(), "n = {n}: {cs:?}");
        }
    }

    #[test]
    fn fixed_horizon_matches_hand_computation() {
        // p0 = 0.5, p1 = 0.6, alpha 0.05, power 0.8:
        // (0.979982 + 0.412309)² / 0.01 = 1.392291² × 100 = 193.847…
        let n = fixed_horizon_events(0.5, 0.6, 0.05, 0.8);
        assert!((n - 193.847).abs() < 0.01, "{n}");
    }
}
