//! One rollback trigger judged on one phase's telemetry.
//!
//! The trigger is written so that harm is θ > 0:
//! - absolute limit c: θ = s·(μₜ − c);
//! - relative to the baseline b by r%: θ = s·(μₜ − m·b), m = 1 + s·r/100;
//! - relative to the control by r%: θ = s·(μₜ − m·μ꜀),
//!
//! with s = +1 when bad is above and −1 when below, μₜ the treatment mean and μ꜀ the control
//! mean. Against the control, θ is estimated from one stream of augmented inverse-probability-
//! weighted pseudo-outcomes over the phase's events (Waudby-Smith et al. 2024, §4
//! "randomized experiments", with predictable plug-ins):
//!
//! φ = (m̂ₜ − m·m̂꜀) + A·(y − m̂ₜ)/π − m·(1 − A)·(y − m̂꜀)/(1 − π),
//!
//! A = 1 for a treatment event, π the phase's traffic share, m̂ₜ and m̂꜀ the arm means of the
//! batches *before* the event's batch (predictable, so E[φ] = μₜ − m·μ꜀ still holds). Without
//! the plug-ins (plain IPW) the variance grows with the mean², and a 10% effect on a metric
//! with little spread would take a hundred times more events. Within a batch φ is an affine
//! map of y, so the controller builds the stream's moments from per-arm batch moments
//! ([`aipw_batch`]) and keeps three numbers per arm, not events.
//!
//! θ's asymptotic confidence sequence (`stagegate_stats::sequential::asymptotic_cs`) at level
//! 1 − α′, α′ = α over the (phase, trigger) pairs judged, decides:
//! - **Failed**: the whole sequence is above 0 (and the treatment arm has its burn-in);
//! - **Passed**: the whole sequence is at or below 0;
//! - **Inconclusive**: it straddles 0;
//! - **NoData**: too few events or no spread to form a sequence (never Failed: seed 000
//!   "Rollback Planning" triggers on evidence of harm, and an empty feed is a broken feed,
//!   which pauses);
//! - **NotApplicable**: a control comparison in a phase with no control (100%, cohorts).
//!
//! Because the sequence is time-uniform, judging after every telemetry batch keeps the chance
//! of ever failing a healthy agent at most α′ per trigger and phase, and by the union bound at
//! most α over the rollout.

use crate::plan::{Comparator, Reference, RollbackTrigger, TriggerMetric};
use serde::{Deserialize, Serialize};
use stagegate_stats::Interval;
use stagegate_stats::sequential::{Moments, asymptotic_cs, rho2_for};

/// Per-arm moments of one trigger's per-event value in the current phase.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ArmMoments {
    /// Events served by the agent (flag on).
    pub treatment: Moments,
    /// Events outside the phase (flag off).
    pub control: Moments,
}

impl ArmMoments {
    /// Both arms merged with `other`'s.
    pub fn merge(self, other: ArmMoments) -> ArmMoments {
        ArmMoments {
            treatment: self.treatment.merge(other.treatment),
            control: self.control.merge(other.control),
        }
    }
}

/// A trigger's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Evidence of harm: roll back.
    Failed,
    /// Evidence of no harm.
    Passed,
    /// Neither yet.
    Inconclusive,
    /// Too little data to judge.
    NoData,
    /// Cannot be judged in this phase.
    NotApplicable,
}

/// A trigger's judgement with the statistics behind it (recorded in the log's events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// Trigger id.
    pub trigger: String,
    /// Verdict.
    pub verdict: Verdict,
    /// Treatment events.
    pub n_treatment: u64,
    /// Control events.
    pub n_control: u64,
    /// Treatment mean, in the metric's unit (`null` without events).
    pub treatment_mean: Option<f64>,
    /// Control mean (`null` without events).
    pub control_mean: Option<f64>,
    /// The harm estimate θ̂ (> 0 is harm), in the metric's unit.
    pub estimate: Option<f64>,
    /// θ's confidence sequence now: `[low, high]`.
    pub sequence: Option<[f64; 2]>,
    /// The level's α′ (α split over phases and triggers).
    pub alpha: f64,
    /// Why, in words.
    pub reason: String,
}

/// The AIPW pseudo-outcomes of one batch (per-arm moments `batch`) with the plug-ins from the
/// arms before it (`before`), for a control comparison with multiplier `m` at share `pi`.
/// `None` until both arms have earlier events (the first batches only fit the plug-ins).
pub fn aipw_batch(before: ArmMoments, batch: ArmMoments, m: f64, pi: f64) -> Option<Moments> {
    if before.treatment.n == 0 || before.control.n == 0 || !(pi > 0.0 && pi < 1.0) {
        return None;
    }
    let (mt, mc) = (before.treatment.mean, before.control.mean);
    let k = mt - m * mc;
    let t = batch.treatment;
    let c = batch.control;
    let tp = Moments {
        n: t.n,
        mean: if t.n == 0 {
            0.0
        } else {
            k + (t.mean - mt) / pi
        },
        m2: t.m2 / (pi * pi),
    };
    let cp = Moments {
        n: c.n,
        mean: if c.n == 0 {
            0.0
        } else {
            k - m * (c.mean - mc) / (1.0 - pi)
        },
        m2: m * m * c.m2 / ((1.0 - pi) * (1.0 - pi)),
    };
    Some(tp.merge(cp))
}

/// The multiplier m of a relative threshold: 1 + s·r/100.
pub fn multiplier(trigger: &RollbackTrigger) -> f64 {
    1.0 + trigger.comparator.sign() * trigger.threshold / 100.0
}

/// Judges `trigger` on `moments` (per arm) and, for a control comparison, `phi` (the AIPW
/// stream from [`aipw_batch`]), in a phase with traffic share `share` (None for a cohort
/// phase), at level 1 − `alpha` (already split), with the sequence tuned to be narrowest at
/// `n_opt` events.
pub fn judge(
    trigger: &RollbackTrigger,
    moments: ArmMoments,
    phi: Moments,
    share: Option<f64>,
    alpha: f64,
    n_opt: u64,
) -> Judgement {
    let s = trigger.comparator.sign();
    let mean = |m: Moments| (m.n > 0).then_some(m.mean);
    let mut j = Judgement {
        trigger: trigger.id.clone(),
        verdict: Verdict::NoData,
        n_treatment: moments.treatment.n,
        n_control: moments.control.n,
        treatment_mean: mean(moments.treatment),
        control_mean: mean(moments.control),
        estimate: None,
        sequence: None,
        alpha,
        reason: String::new(),
    };
    let rate = matches!(trigger.metric, TriggerMetric::Rate { .. });
    let m = multiplier(trigger);
    // θ's stream, as (moments of the pseudo-outcomes, offset): θ = s·(mean + offset).
    let stream = match trigger.relative_to {
        None => Some((floor_rate(moments.treatment, rate), -trigger.threshold)),
        Some(Reference::Baseline) => Some((
            floor_rate(moments.treatment, rate),
            -m * trigger.baseline.unwrap_or(f64::NAN),
        )),
        Some(Reference::Control) => match share {
            Some(pi) if pi > 0.0 && pi < 1.0 => {
                let mut phi = phi;
                if rate && phi.n >= 2 {
                    // A rate's spread is known from its mean: at least the Laplace-smoothed
                    // arms' variance, weighted as φ weights them.
                    let v = laplace_var(moments.treatment) / pi
                        + m * m * laplace_var(moments.control) / (1.0 - pi);
                    phi.m2 = phi.m2.max(v * (phi.n - 1) as f64);
                }
                Some((phi, 0.0))
            }
            _ => None,
        },
    };
    let Some((phi, offset)) = stream else {
        j.verdict = Verdict::NotApplicable;
        j.reason = "no control in this phase (100% or cohorts)".into();
        return j;
    };
    if moments.treatment.n == 0
        || (trigger.relative_to == Some(Reference::Control) && moments.control.n == 0)
    {
        j.reason = "no events in an arm yet".into();
        return j;
    }
    if phi.n == 0 {
        j.reason = "the first batches only fit the control comparison's plug-ins".into();
        return j;
    }
    let estimate = s * (phi.mean + offset);
    j.estimate = Some(estimate);
    let Some(cs) = asymptotic_cs(phi, rho2_for(n_opt, alpha), alpha) else {
        j.reason = "too few events, or no spread, to form a confidence sequence".into();
        return j;
    };
    let (low, high) = bounds(cs, s, offset);
    j.sequence = Some([low, high]);
    j.verdict = if low > 0.0 {
        if moments.treatment.n >= trigger.burn_in {
            Verdict::Failed
        } else {
            j.reason = format!(
                "above the limit, but {} of {} burn-in events",
                moments.treatment.n, trigger.burn_in
            );
            return Judgement {
                verdict: Verdict::Inconclusive,
                ..j
            };
        }
    } else if high <= 0.0 {
        Verdict::Passed
    } else {
        Verdict::Inconclusive
    };
    j.reason = match j.verdict {
        Verdict::Failed => format!("harm: the sequence [{low:.6}, {high:.6}] is above 0"),
        Verdict::Passed => format!("no harm: the sequence [{low:.6}, {high:.6}] is at or below 0"),
        _ => format!("the sequence [{low:.6}, {high:.6}] straddles 0"),
    };
    j
}

/// The judgement of a trigger not judged in this phase (not listed for it, or a control
/// comparison without a control).
pub fn not_applicable(trigger: &RollbackTrigger, moments: ArmMoments, alpha: f64) -> Judgement {
    let mean = |m: Moments| (m.n > 0).then_some(m.mean);
    Judgement {
        trigger: trigger.id.clone(),
        verdict: Verdict::NotApplicable,
        n_treatment: moments.treatment.n,
        n_control: moments.control.n,
        treatment_mean: mean(moments.treatment),
        control_mean: mean(moments.control),
        estimate: None,
        sequence: None,
        alpha,
        reason: "not judged in this phase".into(),
    }
}

/// θ's bounds from the stream's interval: θ = s·(x + offset).
fn bounds(cs: Interval, s: f64, offset: f64) -> (f64, f64) {
    let (a, b) = (s * (cs.low + offset), s * (cs.high + offset));
    (a.min(b), a.max(b))
}

/// For a rate, at least the spread of a Laplace-smoothed rate (k+1)/(n+2): a rate of 0 out of
/// 1,000 still has an interval, as a Wilson interval would (no sequence from no spread for
/// means; for a 0/1 variable the spread is known from its mean).
fn floor_rate(m: Moments, rate: bool) -> Moments {
    if !rate || m.n < 2 {
        return m;
    }
    Moments {
        m2: m.m2.max(laplace_var(m) * (m.n - 1) as f64),
        ..m
    }
}

/// p̃(1 − p̃) with p̃ = (k + 1)/(n + 2), for a 0/1 variable's moments.
fn laplace_var(m: Moments) -> f64 {
    let n = m.n as f64;
    let p = (m.mean * n + 1.0) / (n + 2.0);
    p * (1.0 - p)
}

impl Comparator {
    /// How the comparator reads, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparator::Above => ">",
            Comparator::AtOrAbove => ">=",
            Comparator::Below => "<",
            Comparator::AtOrBelow => "<=",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{OnFail, WeightedField};

    fn trigger(relative_to: Option<Reference>, threshold: f64) -> RollbackTrigger {
        RollbackTrigger {
            id: "t".into(),
            description: String::new(),
            metric: TriggerMetric::Mean {
                of: vec![WeightedField {
                    field: "x".into(),
                    weight: 1.0,
                }],
            },
            comparator: Comparator::Above,
            threshold,
            relative_to,
            baseline: (relative_to == Some(Reference::Baseline)).then_some(10.0),
            on_fail: OnFail::PreviousPhase,
            burn_in: 100,
            detection_budget: None,
            phases: Vec::new(),
        }
    }

    fn arm(n: u64, mean: f64, sd: f64) -> Moments {
        Moments {
            n,
            mean,
            m2: sd * sd * (n.saturating_sub(1)) as f64,
        }
    }

    #[test]
    fn absolute_limits_fail_pass_and_wait() {
        let t = trigger(None, 2.0);
        let j = |mean, n| {
            judge(
                &t,
                ArmMoments {
                    treatment: arm(n, mean, 1.0),
                    control: Moments::default(),
                },
                Moments::default(),
                Some(0.25),
                0.05,
                1000,
            )
        };
        assert_eq!(j(3.0, 10_000).verdict, Verdict::Failed);
        assert_eq!(j(1.0, 10_000).verdict, Verdict::Passed);
        assert_eq!(j(2.01, 100).verdict, Verdict::Inconclusive);
        // Above, but before the burn-in: never Failed.
        assert_eq!(j(3.0, 50).verdict, Verdict::Inconclusive);
        assert_eq!(j(3.0, 0).verdict, Verdict::NoData);
        assert_eq!(j(3.0, 1).verdict, Verdict::NoData);
        let ok = j(1.0, 10_000);
        let [lo, hi] = ok.sequence.unwrap();
        assert!(lo < -1.0 && hi < -0.9 && hi <= 0.0, "{ok:?}");
        assert!((ok.estimate.unwrap() + 1.0).abs() < 1e-12);
    }

    #[test]
    fn below_is_the_mirror_of_above() {
        let mut t = trigger(None, 0.9);
        t.comparator = Comparator::Below;
        let treatment = arm(5000, 0.8, 0.3);
        let am = ArmMoments {
            treatment,
            control: Moments::default(),
        };
        let j = judge(&t, am, Moments::default(), Some(0.5), 0.05, 1000);
        assert_eq!(j.verdict, Verdict::Failed, "{j:?}");
        assert!((j.estimate.unwrap() - 0.1).abs() < 1e-12);
    }

    #[test]
    fn relative_to_the_baseline_is_an_absolute_limit_moved() {
        // +5% over a baseline of 10 is 10.5.
        let t = trigger(Some(Reference::Baseline), 5.0);
        let am = |mean| ArmMoments {
            treatment: arm(20_000, mean, 1.0),
            control: Moments::default(),
        };
        assert_eq!(
            judge(&t, am(10.7), Moments::default(), Some(0.5), 0.05, 1000).verdict,
            Verdict::Failed
        );
        assert_eq!(
            judge(&t, am(10.3), Moments::default(), Some(0.5), 0.05, 1000).verdict,
            Verdict::Passed
        );
    }

    #[test]
    fn relative_to_the_control_uses_both_arms_and_needs_a_control() {
        let t = trigger(Some(Reference::Control), 10.0);
        let m = multiplier(&t);
        // Ten batches of 500 treatment and 1,500 control events each: sd 2 in both arms.
        let j = |tm: f64, share| {
            let mut arms = ArmMoments::default();
            let mut phi = Moments::default();
            for _ in 0..10 {
                let batch = ArmMoments {
                    treatment: arm(500, tm, 2.0),
                    control: arm(1_500, 10.0, 2.0),
                };
                if let Some(p) = aipw_batch(arms, batch, m, 0.25) {
                    phi = phi.merge(p);
                }
                arms = arms.merge(batch);
            }
            judge(&t, arms, phi, share, 0.05, 1000)
        };
        // 13 vs 1.1 × 10 = 11: harm; 10 vs 11: no harm; 11.05 vs 11 on 20,000 events: open.
        assert_eq!(j(13.0, Some(0.25)).verdict, Verdict::Failed);
        assert_eq!(j(10.0, Some(0.25)).verdict, Verdict::Passed);
        assert_eq!(j(11.05, Some(0.25)).verdict, Verdict::Inconclusive);
        // With the arms in the design's proportion, the AIPW estimate is μₜ − m·μ꜀ exactly.
        assert!((j(13.0, Some(0.25)).estimate.unwrap() - 2.0).abs() < 1e-9);
        // The stream's spread is the difference in means', not the means' size: the
        // sequence's half-width is well under the 1.0 margin.
        let [lo, hi] = j(10.0, Some(0.25)).sequence.unwrap();
        assert!(hi - lo < 1.0, "{lo} {hi}");
        assert_eq!(j(13.0, Some(1.0)).verdict, Verdict::NotApplicable);
        assert_eq!(j(13.0, None).verdict, Verdict::NotApplicable);
        let no_control = judge(
            &t,
            ArmMoments {
                treatment: arm(5_000, 13.0, 2.0),
                control: Moments::default(),
            },
            Moments::default(),
            Some(0.25),
            0.05,
            1000,
        );
        assert_eq!(no_control.verdict, Verdict::NoData);
        // The first batch only fits the plug-ins.
        assert_eq!(
            aipw_batch(ArmMoments::default(), ArmMoments::default(), m, 0.25),
            None
        );
    }

    #[test]
    fn a_rate_with_no_events_counted_still_gets_a_sequence() {
        let t = RollbackTrigger {
            metric: TriggerMetric::Rate {
                field: "error.type".into(),
            },
            ..trigger(None, 0.03)
        };
        // 0 errors in 2,000 events: no spread in the data, but a rate's spread is known.
        let am = ArmMoments {
            treatment: Moments {
                n: 2_000,
                mean: 0.0,
                m2: 0.0,
            },
            control: Moments::default(),
        };
        let j = judge(&t, am, Moments::default(), Some(0.5), 0.05, 1000);
        assert_eq!(j.verdict, Verdict::Passed, "{j:?}");
        // A mean with no spread is not judged.
        let m = judge(
            &trigger(None, 0.03),
            am,
            Moments::default(),
            Some(0.5),
            0.05,
            1000,
        );
        assert_eq!(m.verdict, Verdict::NoData, "{m:?}");
    }
}
