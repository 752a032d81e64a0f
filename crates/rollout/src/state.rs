//! A rollout's state and the transitions between states. Every transition is one event of the
//! signed registry log ([`Transition`] is its body's rollout part); replaying the events with
//! [`Rollout::apply`] gives the state back, and the same rules refuse an impossible event at
//! write time and at replay.
//!
//! ```text
//!   start ─▶ Running(phase 0) ─advance─▶ Running(phase 1) … ─advance (last)─▶ Completed
//!               │   ▲                         │
//!         pause │   │ resume                  │ rollback (trigger Failed)
//!               ▼   │                         ▼
//!             Paused(reason) ◀────────── Paused at the previous phase or at 0%
//!   abort (any state but Completed/Aborted) ─▶ Aborted at 0%
//! ```
//!
//! The kill switch is not part of the rollout: it disables the agent's flag whatever the
//! rollout says (see the registry's kill-switch events).

use crate::judge::{Judgement, Verdict};
use crate::plan::{RolloutPhase, RolloutPlan};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Where a rollout is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Serving the current phase and watching its triggers.
    Running,
    /// Holding the current exposure until a person resumes, advances or aborts.
    Paused {
        /// Why (a person's words, or the controller's: a failed trigger, an inconclusive or
        /// empty window).
        reason: String,
    },
    /// Every phase done: the agent serves everyone the last phase covers.
    Completed,
    /// Stopped for good at 0%.
    Aborted {
        /// Why.
        reason: String,
    },
}

/// One change to a rollout (the rollout part of a registry event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Transition {
    /// Start at the first phase.
    Start {
        /// The plan.
        plan: RolloutPlan,
        /// Its digest.
        plan_digest: String,
    },
    /// To the next phase (or Completed after the last): the controller's own at the end of an
    /// `auto` phase's window, or a person's go. Either way only once the phase's window has
    /// ended, with its minimum sample, and with no trigger Failed (seed 000 "Phased Rollout":
    /// go/no-go at each checkpoint; a signature does not make a failed phase pass).
    Advance {
        /// The judgements the go/no-go was taken on.
        #[serde(default)]
        judgements: Vec<Judgement>,
        /// Treatment and control events of the phase at the go/no-go. `None` only in advances
        /// recorded before the go/no-go rule (they replay as they were accepted then); every
        /// advance written now carries them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        events: Option<[u64; 2]>,
    },
    /// Hold.
    Pause {
        /// Why.
        reason: String,
        /// The judgements behind a controller's pause.
        #[serde(default)]
        judgements: Vec<Judgement>,
    },
    /// Continue the current phase (its window starts again; its telemetry is kept), or enter
    /// the first phase after a rollback to 0%.
    Resume {
        /// Why.
        reason: String,
    },
    /// A trigger failed: back to `to_phase` (None: 0%) and paused.
    Rollback {
        /// The failed trigger.
        trigger: String,
        /// The phase rolled back to; None is 0%.
        to_phase: Option<usize>,
        /// Every trigger's judgement at that moment.
        judgements: Vec<Judgement>,
    },
    /// Stop for good at 0%.
    Abort {
        /// Why.
        reason: String,
    },
}

impl Transition {
    /// The action's name (`start`, `advance`, …).
    pub fn action(&self) -> &'static str {
        match self {
            Transition::Start { .. } => "start",
            Transition::Advance { .. } => "advance",
            Transition::Pause { .. } => "pause",
            Transition::Resume { .. } => "resume",
            Transition::Rollback { .. } => "rollback",
            Transition::Abort { .. } => "abort",
        }
    }
}

/// A rollout, as replayed from its events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rollout {
    /// The plan it runs.
    pub plan: RolloutPlan,
    /// The plan's digest.
    pub plan_digest: String,
    /// The phase being served (index into `plan.phases`); None is 0% (after a rollback to
    /// zero or an abort).
    pub phase: Option<usize>,
    /// Status.
    pub status: Status,
    /// When the current phase's window started (entering it, or resuming it).
    pub window_start: Timestamp,
    /// Increments whenever the phase changes: telemetry is counted per epoch, so a new phase
    /// is judged on its own events.
    pub epoch: u32,
    /// Event sequence of the latest transition.
    pub last_seq: i64,
    /// Event sequence of the start: the rollout's identity (telemetry is stored under it).
    pub started_seq: i64,
}

/// A transition that is not allowed from the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransitionError(pub String);

impl Rollout {
    /// A new rollout from its start transition.
    ///
    /// # Errors
    /// The plan breaks a rule, or its digest does not match.
    pub fn start(t: &Transition, at: Timestamp, seq: i64) -> Result<Rollout, TransitionError> {
        let Transition::Start { plan, plan_digest } = t else {
            return Err(TransitionError(format!(
                "a rollout starts with start, not {}",
                t.action()
            )));
        };
        plan.validate()
            .map_err(|e| TransitionError(format!("the plan: {e}")))?;
        if plan.digest() != *plan_digest {
            return Err(TransitionError(
                "the plan's digest does not match the plan".into(),
            ));
        }
        Ok(Rollout {
            plan: plan.clone(),
            plan_digest: plan_digest.clone(),
            phase: Some(0),
            status: Status::Running,
            window_start: at,
            epoch: 0,
            last_seq: seq,
            started_seq: seq,
        })
    }

    /// Whether the rollout can still change (not Completed or Aborted).
    pub fn is_active(&self) -> bool {
        matches!(self.status, Status::Running | Status::Paused { .. })
    }

    /// When the current phase's window ends (its start plus the phase's `min_duration`); `None`
    /// at 0%.
    pub fn window_ends(&self) -> Option<Timestamp> {
        let p = self.current()?;
        Some(
            self.window_start
                .checked_add(jiff::SignedDuration::from_secs(p.min_duration.seconds))
                .unwrap_or(Timestamp::MAX),
        )
    }

    /// The current phase, if any.
    pub fn current(&self) -> Option<&RolloutPhase> {
        self.phase.and_then(|i| self.plan.phases.get(i))
    }

    /// Applies `t`, recorded at `at` as event `seq`.
    ///
    /// # Errors
    /// Starting twice; changing a Completed or Aborted rollout; advancing before the phase's
    /// window has ended, below its minimum sample, or with a trigger Failed; resuming a
    /// running rollout; pausing a paused one; rolling back to a phase at or after the current
    /// one.
    pub fn apply(
        &mut self,
        t: &Transition,
        at: Timestamp,
        seq: i64,
    ) -> Result<(), TransitionError> {
        let fail = |m: String| Err(TransitionError(m));
        if !self.is_active() {
            return fail(format!(
                "the rollout is {}; it cannot {}",
                self.status_name(),
                t.action()
            ));
        }
        let last = self.plan.phases.len() - 1;
        match t {
            Transition::Start { .. } => return fail("the rollout has already started".into()),
            Transition::Advance { judgements, events } => match self.phase {
                Some(i) if i == last => {
                    if let Some(events) = events {
                        self.go_no_go(i, judgements, *events, at)?;
                    }
                    self.status = Status::Completed;
                }
                Some(i) => {
                    if let Some(events) = events {
                        self.go_no_go(i, judgements, *events, at)?;
                    }
                    self.enter(Some(i + 1), at);
                    self.status = Status::Running;
                }
                None => {
                    self.enter(Some(0), at);
                    self.status = Status::Running;
                }
            },
            Transition::Pause { reason, .. } => {
                if matches!(self.status, Status::Paused { .. }) {
                    return fail("the rollout is already paused".into());
                }
                self.status = Status::Paused {
                    reason: reason.clone(),
                };
            }
            Transition::Resume { .. } => {
                if self.status == Status::Running {
                    return fail("the rollout is running; there is nothing to resume".into());
                }
                if self.phase.is_none() {
                    self.enter(Some(0), at);
                } else {
                    self.window_start = at;
                }
                self.status = Status::Running;
            }
            Transition::Rollback {
                trigger, to_phase, ..
            } => {
                let ok = match (self.phase, to_phase) {
                    (Some(cur), Some(to)) => *to < cur,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if !ok {
                    return fail(format!(
                        "cannot roll back from {} to {}",
                        phase_name(self.phase),
                        phase_name(*to_phase)
                    ));
                }
                self.enter(*to_phase, at);
                self.status = Status::Paused {
                    reason: format!("rolled back: trigger {trigger} failed"),
                };
            }
            Transition::Abort { reason } => {
                self.enter(None, at);
                self.status = Status::Aborted {
                    reason: reason.clone(),
                };
            }
        }
        self.last_seq = seq;
        Ok(())
    }

    /// Whether phase `i` may be left for the next at `at`: its window has ended, its
    /// minimum sample is reached, no trigger Failed.
    fn go_no_go(
        &self,
        i: usize,
        judgements: &[Judgement],
        events: [u64; 2],
        at: Timestamp,
    ) -> Result<(), TransitionError> {
        let p = &self.plan.phases[i];
        let ends = self.window_ends().unwrap_or(Timestamp::MAX);
        if at < ends {
            return Err(TransitionError(format!(
                "phase {:?}'s window ends at {ends} ({} from its start at {}): the go/no-go comes after it",
                p.name, p.min_duration.text, self.window_start
            )));
        }
        if events[0] < p.min_sample {
            return Err(TransitionError(format!(
                "phase {:?} has {} treatment events of its minimum sample of {}",
                p.name, events[0], p.min_sample
            )));
        }
        if let Some(j) = judgements.iter().find(|j| j.verdict == Verdict::Failed) {
            return Err(TransitionError(format!(
                "trigger {} failed in phase {:?} ({}): roll back and fix it; a go does not make it pass",
                j.trigger, p.name, j.reason
            )));
        }
        Ok(())
    }

    fn enter(&mut self, phase: Option<usize>, at: Timestamp) {
        self.phase = phase;
        self.window_start = at;
        self.epoch += 1;
    }

    /// `running`, `paused`, `completed` or `aborted`.
    pub fn status_name(&self) -> &'static str {
        match self.status {
            Status::Running => "running",
            Status::Paused { .. } => "paused",
            Status::Completed => "completed",
            Status::Aborted { .. } => "aborted",
        }
    }

    /// Who gets the agent now.
    pub fn exposure(&self) -> Exposure {
        match (&self.status, self.current()) {
            (Status::Aborted { .. }, _) | (_, None) => Exposure::Nobody,
            (_, Some(p)) => match p.traffic_pct {
                Some(pct) if pct >= 100.0 => Exposure::Everyone,
                Some(pct) => Exposure::Percent { pct },
                None => Exposure::Cohorts {
                    cohorts: p
                        .cohorts
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                },
            },
        }
    }
}

fn phase_name(p: Option<usize>) -> String {
    p.map_or_else(|| "0%".to_owned(), |i| format!("phase {}", i + 1))
}

/// Who gets the agent: the flag's targeting.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Exposure {
    /// Nobody (0%).
    Nobody,
    /// A share of targeting keys, by flagd fractional bucketing.
    Percent {
        /// In %.
        pct: f64,
    },
    /// Named cohorts.
    Cohorts {
        /// Context attribute → values.
        cohorts: Vec<(String, Vec<String>)>,
    },
    /// Everyone.
    Everyone,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> RolloutPlan {
        serde_saphyr::from_str(
            "flag: f\nphases:\n  - { name: a, traffic_pct: 25, min_duration: 1h }\n  - { name: b, cohorts: { department: [x] }, min_duration: 1h }\n  - { name: c, traffic_pct: 100, min_duration: 1h }\n",
        )
        .unwrap()
    }

    fn started() -> Rollout {
        let p = plan();
        let d = p.digest();
        Rollout::start(
            &Transition::Start {
                plan: p,
                plan_digest: d,
            },
            Timestamp::UNIX_EPOCH,
            1,
        )
        .unwrap()
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn advance_through_every_phase_to_completed() {
        let mut r = started();
        assert_eq!(r.exposure(), Exposure::Percent { pct: 25.0 });
        let adv = Transition::Advance {
            judgements: vec![],
            events: Some([0, 0]),
        };
        r.apply(&adv, at(3600), 2).unwrap();
        assert_eq!(
            r.exposure(),
            Exposure::Cohorts {
                cohorts: vec![("department".into(), vec!["x".into()])]
            }
        );
        assert_eq!((r.epoch, r.window_start), (1, at(3600)));
        r.apply(&adv, at(7200), 3).unwrap();
        assert_eq!(r.exposure(), Exposure::Everyone);
        r.apply(&adv, at(10_800), 4).unwrap();
        assert_eq!(r.status, Status::Completed);
        assert_eq!(r.exposure(), Exposure::Everyone);
        assert!(r.apply(&adv, at(20_000), 5).is_err());
        assert_eq!(r.last_seq, 4);
    }

    #[test]
    fn no_go_before_the_window_ends_below_the_sample_or_past_a_failed_trigger() {
        let mut p = plan();
        p.phases[0].min_sample = 100;
        let d = p.digest();
        let start = Transition::Start {
            plan: p,
            plan_digest: d,
        };
        let mut r = Rollout::start(&start, Timestamp::UNIX_EPOCH, 1).unwrap();
        let adv = |n, verdict| Transition::Advance {
            judgements: vec![Judgement {
                trigger: "cost".into(),
                verdict,
                n_treatment: n,
                n_control: n,
                treatment_mean: None,
                control_mean: None,
                estimate: None,
                sequence: None,
                alpha: 0.05,
                reason: "why".into(),
            }],
            events: Some([n, n]),
        };
        let before = r.clone();
        let e = r
            .apply(&adv(500, Verdict::Passed), at(3599), 2)
            .unwrap_err();
        assert!(e.0.contains("window ends at 1970-01-01T01:00:00Z"), "{e}");
        let e = r.apply(&adv(99, Verdict::Passed), at(3600), 2).unwrap_err();
        assert!(
            e.0.contains("99 treatment events of its minimum sample of 100"),
            "{e}"
        );
        let e = r
            .apply(&adv(500, Verdict::Failed), at(9000), 2)
            .unwrap_err();
        assert!(e.0.contains("trigger cost failed"), "{e}");
        assert_eq!(r, before, "a refused go changes nothing");
        // Inconclusive at the window's end: a person's go is a decision, not a silent advance.
        r.apply(&adv(100, Verdict::Inconclusive), at(3600), 2)
            .unwrap();
        assert_eq!(r.phase, Some(1));
        // A resume restarts the window: the go waits for its end again.
        r.apply(
            &Transition::Pause {
                reason: "hold".into(),
                judgements: vec![],
            },
            at(4000),
            3,
        )
        .unwrap();
        r.apply(
            &Transition::Resume {
                reason: "go".into(),
            },
            at(5000),
            4,
        )
        .unwrap();
        assert!(r.apply(&adv(0, Verdict::Passed), at(8000), 5).is_err());
        r.apply(&adv(0, Verdict::Passed), at(8600), 5).unwrap();
        assert_eq!(r.phase, Some(2));
    }

    #[test]
    fn advances_recorded_before_the_rule_replay_as_accepted_then() {
        // An advance as the previous version wrote it: no `events`.
        let legacy: Transition =
            serde_json::from_str(r#"{"action": "advance", "judgements": []}"#).unwrap();
        assert_eq!(
            legacy,
            Transition::Advance {
                judgements: vec![],
                events: None
            }
        );
        let mut r = started();
        r.apply(&legacy, at(10), 2).unwrap();
        assert_eq!(r.phase, Some(1));
        // What is written now always carries them, and is judged.
        let now = Transition::Advance {
            judgements: vec![],
            events: Some([0, 0]),
        };
        assert!(
            serde_json::to_string(&now)
                .unwrap()
                .contains("\"events\":[0,0]")
        );
        assert!(r.apply(&now, at(20), 3).is_err());
    }

    #[test]
    fn rollback_pauses_at_the_previous_phase_or_zero_and_resume_restarts_the_window() {
        let mut r = started();
        r.apply(
            &Transition::Advance {
                judgements: vec![],
                events: Some([0, 0]),
            },
            at(3600),
            2,
        )
        .unwrap();
        let back = |to| Transition::Rollback {
            trigger: "t".into(),
            to_phase: to,
            judgements: vec![],
        };
        assert!(
            r.apply(&back(Some(1)), at(3611), 3).is_err(),
            "not forward or in place"
        );
        r.apply(&back(Some(0)), at(3612), 3).unwrap();
        assert_eq!(r.exposure(), Exposure::Percent { pct: 25.0 });
        assert_eq!(r.status_name(), "paused");
        r.apply(&back(None), at(3613), 4).unwrap();
        assert_eq!(r.exposure(), Exposure::Nobody);
        assert!(r.apply(&back(None), at(3614), 5).is_err(), "already at 0%");
        r.apply(
            &Transition::Resume {
                reason: "fixed".into(),
            },
            at(3615),
            5,
        )
        .unwrap();
        assert_eq!(
            (r.phase, r.status_name(), r.window_start),
            (Some(0), "running", at(3615))
        );
        let resume = Transition::Resume {
            reason: "again".into(),
        };
        assert!(r.apply(&resume, at(3616), 6).is_err());
    }

    #[test]
    fn abort_is_final_and_a_changed_plan_does_not_start() {
        let mut r = started();
        r.apply(
            &Transition::Abort {
                reason: "no".into(),
            },
            at(5),
            2,
        )
        .unwrap();
        assert_eq!(r.exposure(), Exposure::Nobody);
        let resume = Transition::Resume { reason: "x".into() };
        assert!(
            r.apply(&resume, at(6), 3)
                .unwrap_err()
                .0
                .contains("aborted")
        );
        let mut p = plan();
        let d = p.digest();
        p.alpha = 0.1;
        let e = Rollout::start(
            &Transition::Start {
                plan: p,
                plan_digest: d,
            },
            at(0),
            1,
        );
        assert!(e.unwrap_err().0.contains("digest"));
    }
}
