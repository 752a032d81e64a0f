//! The controller: telemetry of the current phase in, at most one [`Transition`] out.
//!
//! - After every batch: a trigger that **Failed** rolls the rollout back at once (to the
//!   previous phase or to 0%, per the trigger's `on_fail`), skipping any remaining window —
//!   rollback is fast and needs no go/no-go.
//! - At the end of a phase's window (its `min_duration` since the window started, and
//!   `min_sample` treatment events): every applicable trigger **Passed** → advance when the
//!   phase says `advance: auto`, else wait for a person's go; any **Inconclusive** or
//!   **NoData** → pause with the reason, never a silent advance; too few events → pause with
//!   "minimum sample not reached".
//!
//! Telemetry is summarised per batch into a [`Tally`] (per trigger, per arm: count, mean and
//! squared deviations), which is what the server stores; the controller merges tallies of the
//! current epoch, so a restart rebuilds it exactly from the stored tallies.

use crate::judge::{ArmMoments, Judgement, Verdict, aipw_batch, judge, multiplier};
use crate::plan::{OnFail, RolloutPlan, TriggerMetric};
use crate::state::{Rollout, Status, Transition};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use stagegate_stats::sequential::Moments;

/// Which side of the flag an event was served on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// The agent (flag on).
    Treatment,
    /// Without it (flag off).
    Control,
}

/// What an event carries, field by field (an OTLP span's fields and attributes).
pub trait Fields {
    /// The field as a number (integers, doubles, numeric strings), if present.
    fn number(&self, field: &str) -> Option<f64>;
    /// Whether the field is "set" for a rate: true, non-zero, or a non-empty string other
    /// than `ok` / `unset`; `None` when absent. An absent field counts as not set (an error
    /// attribute is absent on success).
    fn is_set(&self, field: &str) -> Option<bool>;
}

/// One batch summarised: per trigger (in plan order), per arm.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Tally {
    /// Treatment and control events in the batch.
    pub events: [u64; 2],
    /// Per trigger.
    pub triggers: Vec<ArmMoments>,
}

impl Tally {
    /// An empty tally for `plan`.
    pub fn new(plan: &RolloutPlan) -> Tally {
        Tally {
            events: [0, 0],
            triggers: vec![ArmMoments::default(); plan.triggers.len()],
        }
    }

    /// Adds one event.
    pub fn add(&mut self, plan: &RolloutPlan, arm: Arm, event: &impl Fields) {
        let a = arm as usize;
        self.events[a] += 1;
        for (t, m) in plan.triggers.iter().zip(self.triggers.iter_mut()) {
            let value = match &t.metric {
                TriggerMetric::Mean { of } => {
                    let mut sum = 0.0;
                    let mut all = true;
                    for w in of {
                        match event.number(&w.field) {
                            Some(x) => sum += w.weight * x,
                            None => all = false,
                        }
                    }
                    all.then_some(sum)
                }
                TriggerMetric::Rate { field } => {
                    Some(f64::from(u8::from(event.is_set(field).unwrap_or(false))))
                }
            };
            if let Some(v) = value.filter(|v| v.is_finite()) {
                match arm {
                    Arm::Treatment => m.treatment.push(v),
                    Arm::Control => m.control.push(v),
                }
            }
        }
    }

    /// Both tallies together.
    pub fn merge(&mut self, other: &Tally) {
        self.events[0] += other.events[0];
        self.events[1] += other.events[1];
        if self.triggers.len() < other.triggers.len() {
            self.triggers
                .resize(other.triggers.len(), ArmMoments::default());
        }
        for (a, b) in self.triggers.iter_mut().zip(&other.triggers) {
            *a = a.merge(*b);
        }
    }
}

/// The controller of one rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    epoch: u32,
    tally: Tally,
    /// Per trigger: the AIPW stream of a control comparison (empty for the others).
    phi: Vec<Moments>,
}

/// What the controller sees now (for `rollout status` and the API).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outlook {
    /// Treatment and control events this phase.
    pub events: [u64; 2],
    /// Seconds left in the window (0 once it has ended).
    pub window_left_seconds: i64,
    /// Treatment events still needed for the window's minimum sample.
    pub sample_left: u64,
    /// Each trigger's judgement now.
    pub judgements: Vec<Judgement>,
}

impl Controller {
    /// A controller for `rollout`'s current epoch, with no telemetry.
    pub fn new(rollout: &Rollout) -> Controller {
        Controller {
            epoch: rollout.epoch,
            tally: Tally::new(&rollout.plan),
            phi: vec![Moments::default(); rollout.plan.triggers.len()],
        }
    }

    /// The epoch the tally belongs to.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The merged tally of the epoch.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Adds a batch's tally recorded in `epoch`, in arrival order (the control comparisons'
    /// plug-ins come from the batches before it); a tally of another epoch than the
    /// rollout's is ignored.
    pub fn add(&mut self, rollout: &Rollout, epoch: u32, tally: &Tally) {
        self.sync(rollout);
        if epoch != self.epoch {
            return;
        }
        let share = rollout.current().and_then(|p| p.share());
        for (i, t) in rollout.plan.triggers.iter().enumerate() {
            if t.relative_to != Some(crate::plan::Reference::Control) {
                continue;
            }
            let (Some(pi), Some(batch)) = (share, tally.triggers.get(i)) else {
                continue;
            };
            if let Some(p) = aipw_batch(self.tally.triggers[i], *batch, multiplier(t), pi) {
                self.phi[i] = self.phi[i].merge(p);
            }
        }
        self.tally.merge(tally);
    }

    /// Follows `rollout` into a new epoch (a phase change) with an empty tally.
    pub fn sync(&mut self, rollout: &Rollout) {
        if rollout.epoch != self.epoch {
            *self = Controller::new(rollout);
        }
    }

    /// Every trigger judged on the current tally.
    pub fn judgements(&self, rollout: &Rollout) -> Vec<Judgement> {
        let Some(phase) = rollout.current() else {
            return Vec::new();
        };
        let plan = &rollout.plan;
        let alpha = plan.alpha_per_judgement();
        plan.triggers
            .iter()
            .zip(self.tally.triggers.iter().zip(&self.phi))
            .map(|(t, (m, phi))| {
                if !t.applies_in(phase) {
                    return crate::judge::not_applicable(t, *m, alpha);
                }
                judge(
                    t,
                    *m,
                    *phi,
                    phase.share(),
                    alpha,
                    phase.min_sample.max(t.burn_in),
                )
            })
            .collect()
    }

    /// The outlook at `now`.
    pub fn outlook(&self, rollout: &Rollout, now: Timestamp) -> Outlook {
        let (window_left, sample_left) = match rollout.current() {
            Some(p) => (
                // Whole seconds, rounded up: 0 exactly when a go is allowed.
                rollout.window_ends().map_or(0, |ends| {
                    let left = ends.duration_since(now);
                    (left.as_secs() + i64::from(left.subsec_nanos() > 0)).max(0)
                }),
                p.min_sample.saturating_sub(self.tally.events[0]),
            ),
            None => (0, 0),
        };
        Outlook {
            events: self.tally.events,
            window_left_seconds: window_left,
            sample_left,
            judgements: self.judgements(rollout),
        }
    }

    /// The transition the controller makes now, if any: only a running rollout is driven.
    pub fn decide(&self, rollout: &Rollout, now: Timestamp) -> Option<Transition> {
        if rollout.status != Status::Running || rollout.epoch != self.epoch {
            return None;
        }
        let phase = rollout.current()?;
        let judgements = self.judgements(rollout);
        if let Some((i, j)) = judgements
            .iter()
            .enumerate()
            .find(|(_, j)| j.verdict == Verdict::Failed)
        {
            let to_phase = match rollout.plan.triggers[i].on_fail {
                OnFail::Zero => None,
                OnFail::PreviousPhase => rollout.phase.and_then(|p| p.checked_sub(1)),
            };
            return Some(Transition::Rollback {
                trigger: j.trigger.clone(),
                to_phase,
                judgements,
            });
        }
        let outlook = self.outlook(rollout, now);
        if outlook.window_left_seconds > 0 {
            return None;
        }
        if outlook.sample_left > 0 {
            return Some(Transition::Pause {
                reason: format!(
                    "go/no-go: minimum sample not reached ({} of {} treatment events)",
                    self.tally.events[0], phase.min_sample
                ),
                judgements,
            });
        }
        let open: Vec<String> = judgements
            .iter()
            .filter(|j| matches!(j.verdict, Verdict::Inconclusive | Verdict::NoData))
            .map(|j| {
                let v = if j.verdict == Verdict::NoData {
                    "no data"
                } else {
                    "inconclusive"
                };
                format!("{} {v} ({})", j.trigger, j.reason)
            })
            .collect();
        if !open.is_empty() {
            return Some(Transition::Pause {
                reason: format!("go/no-go: {}", open.join("; ")),
                judgements,
            });
        }
        (phase.advance == crate::plan::Advance::Auto).then_some(Transition::Advance {
            judgements,
            events: Some(self.tally.events),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Ev(BTreeMap<&'static str, f64>);
    impl Fields for Ev {
        fn number(&self, f: &str) -> Option<f64> {
            self.0.get(f).copied()
        }
        fn is_set(&self, f: &str) -> Option<bool> {
            self.0.get(f).map(|v| *v != 0.0)
        }
    }

    const PLAN: &str = "flag: f\nphases:\n  - { name: a, traffic_pct: 20, min_duration: 1h, min_sample: 200, advance: auto }\n  - { name: b, traffic_pct: 100, min_duration: 1h, advance: auto }\ntriggers:\n  - { id: cost, metric: { kind: mean, of: [{ field: x }] }, comparator: '>', threshold: 10, relative_to: control }\n  - { id: errors, metric: { kind: rate, field: err }, comparator: '>', threshold: 0.05 }\n";

    fn rollout() -> Rollout {
        let plan: RolloutPlan = serde_saphyr::from_str(PLAN).unwrap();
        let d = plan.digest();
        Rollout::start(
            &Transition::Start {
                plan,
                plan_digest: d,
            },
            Timestamp::UNIX_EPOCH,
            1,
        )
        .unwrap()
    }

    fn feed(c: &mut Controller, r: &Rollout, n: usize, shift: f64, err_every: usize) {
        for chunk in 0..n.div_ceil(250) {
            feed_batch(
                c,
                r,
                (chunk * 250)..n.min((chunk + 1) * 250),
                shift,
                err_every,
            );
        }
    }

    fn feed_batch(
        c: &mut Controller,
        r: &Rollout,
        range: std::ops::Range<usize>,
        shift: f64,
        err_every: usize,
    ) {
        let mut t = Tally::new(&r.plan);
        for i in range {
            let arm = if i % 5 == 0 {
                Arm::Treatment
            } else {
                Arm::Control
            };
            let base = 10.0 + (i % 7) as f64;
            let x = if arm == Arm::Treatment {
                base * shift
            } else {
                base
            };
            let err = if err_every > 0 && i % err_every == 0 {
                1.0
            } else {
                0.0
            };
            t.add(&r.plan, arm, &Ev(BTreeMap::from([("x", x), ("err", err)])));
        }
        c.add(r, r.epoch, &t);
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn a_regression_rolls_back_before_the_window_ends() {
        let r = rollout();
        let mut c = Controller::new(&r);
        feed(&mut c, &r, 5000, 1.5, 0);
        let Some(Transition::Rollback {
            trigger,
            to_phase,
            judgements,
        }) = c.decide(&r, at(60))
        else {
            panic!("{:?}", c.decide(&r, at(60)));
        };
        assert_eq!((trigger.as_str(), to_phase), ("cost", None));
        assert_eq!(judgements.len(), 2);
        assert_eq!(judgements[0].verdict, Verdict::Failed);
    }

    #[test]
    fn healthy_waits_for_the_window_then_advances_and_a_new_phase_starts_empty() {
        let mut r = rollout();
        let mut c = Controller::new(&r);
        feed(&mut c, &r, 5000, 1.0, 0);
        assert_eq!(c.decide(&r, at(60)), None, "window not over");
        let Some(adv @ Transition::Advance { .. }) = c.decide(&r, at(3600)) else {
            panic!("{:?}", c.decide(&r, at(3600)));
        };
        r.apply(&adv, at(3600), 2).unwrap();
        c.sync(&r);
        assert_eq!(c.tally().events, [0, 0]);
        // 100%: the control comparison does not apply; the error rate alone decides, and
        // with no events at all the window's end pauses (no data is not a pass).
        let Some(Transition::Pause { reason, .. }) = c.decide(&r, at(7200)) else {
            panic!()
        };
        assert!(reason.contains("errors no data"), "{reason}");
    }

    #[test]
    fn too_few_events_or_an_inconclusive_trigger_pause_at_the_window_end() {
        let r = rollout();
        let mut c = Controller::new(&r);
        feed(&mut c, &r, 500, 1.0, 0);
        let Some(Transition::Pause { reason, .. }) = c.decide(&r, at(3600)) else {
            panic!()
        };
        assert!(
            reason.contains("minimum sample not reached (100 of 200"),
            "{reason}"
        );
        let mut c = Controller::new(&r);
        // Treatment 9% higher against a 10% allowance, on few events: inconclusive.
        feed(&mut c, &r, 1500, 1.09, 0);
        let d = c.decide(&r, at(3600));
        let Some(Transition::Pause { reason, .. }) = d else {
            panic!("{d:?}")
        };
        assert!(reason.contains("cost inconclusive"), "{reason}");
    }

    #[test]
    fn tallies_of_an_old_epoch_are_ignored_and_merging_is_order_free() {
        let mut r = rollout();
        let mut c = Controller::new(&r);
        feed(&mut c, &r, 100, 1.0, 3);
        r.apply(
            &Transition::Advance {
                judgements: vec![],
                events: Some([200, 800]),
            },
            at(3600),
            2,
        )
        .unwrap();
        let stale = c.tally().clone();
        c.add(&r, 0, &stale);
        assert_eq!(c.tally().events, [0, 0]);
        c.add(&r, 1, &stale);
        assert_eq!(c.tally().events, [20, 80]);
        let (mut a, mut b) = (Tally::new(&r.plan), Tally::new(&r.plan));
        a.merge(&stale);
        a.merge(&stale);
        b.merge(&stale);
        b.merge(&stale);
        assert_eq!(a, b);
        assert_eq!(a.events, [40, 160]);
        assert_eq!(c.epoch(), 1);
    }
}
