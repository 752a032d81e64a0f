//! Telemetry from a metrics system's cumulative counters (a Prometheus query polled now and
//! then) turned into the same per-batch [`Tally`] the controller reads from spans.
//!
//! A metrics system keeps sums, not events: per trigger and arm the source reports the count
//! of events, the sum of the trigger's per-event value and the sum of its squares (for a rate
//! trigger, the count of events where it is set: for 0/1 values Σx² = Σx). The events between
//! two polls are the counters' increase; their moments follow from the power sums
//! ([`Moments::from_power_sums`]). A counter that went down was reset (a process restarted):
//! that trigger's interval is skipped, never read as a negative count.

use crate::controller::Tally;
use crate::judge::ArmMoments;
use crate::plan::{RolloutPlan, TriggerMetric};
use serde::{Deserialize, Serialize};
use stagegate_stats::sequential::Moments;
use std::collections::BTreeMap;

/// One trigger's cumulative counters for one arm at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Events so far.
    pub count: f64,
    /// Σ of the trigger's per-event value (for a rate trigger: events where it is set).
    pub sum: f64,
    /// Σ of its squares (for a rate trigger: the same as `sum`).
    pub sum_squares: f64,
}

/// Per trigger id, the counters of the treatment (flag on) and control (flag off) arms.
pub type CounterSnapshot = BTreeMap<String, [Counters; 2]>;

/// What happened between two snapshots: the tally of the events in between (per trigger in
/// plan order, as [`Tally::add`] would have built it event by event), and the triggers
/// skipped with the reason (a counter reset, a trigger the source does not report).
#[derive(Debug, Clone, PartialEq)]
pub struct Increase {
    /// The events between the two snapshots.
    pub tally: Tally,
    /// `(trigger id, why)` for triggers left out of this interval.
    pub skipped: Vec<(String, String)>,
}

/// The tally of the events between `before` and `after` for `plan`'s triggers. Events per arm
/// are the largest count increase over the triggers (each trigger counts the same events,
/// less those missing its fields).
pub fn increase(plan: &RolloutPlan, before: &CounterSnapshot, after: &CounterSnapshot) -> Increase {
    let mut tally = Tally::new(plan);
    let mut skipped = Vec::new();
    for (t, slot) in plan.triggers.iter().zip(tally.triggers.iter_mut()) {
        let (Some(b), Some(a)) = (before.get(&t.id), after.get(&t.id)) else {
            skipped.push((t.id.clone(), "the source does not report it".to_owned()));
            continue;
        };
        let mut arms = [Moments::default(); 2];
        let mut reset = false;
        for arm in 0..2 {
            let (x, y) = (b[arm], a[arm]);
            let d = Counters {
                count: y.count - x.count,
                sum: y.sum - x.sum,
                sum_squares: y.sum_squares - x.sum_squares,
            };
            // Σx² never decreases; the count never does; Σx may (negative values) but
            // not with a rate's 0/1 values.
            let rate = matches!(t.metric, TriggerMetric::Rate { .. });
            if d.count < 0.0 || d.sum_squares < 0.0 || (rate && d.sum < 0.0) {
                reset = true;
                break;
            }
            let n = d.count.round() as u64;
            if let Some(m) = Moments::from_power_sums(n, d.sum, d.sum_squares) {
                arms[arm] = m;
            }
        }
        if reset {
            skipped.push((t.id.clone(), "a counter went down (reset)".to_owned()));
            continue;
        }
        *slot = ArmMoments {
            treatment: arms[0],
            control: arms[1],
        };
        tally.events[0] = tally.events[0].max(arms[0].n);
        tally.events[1] = tally.events[1].max(arms[1].n);
    }
    Increase { tally, skipped }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Arm;
    use crate::controller::Fields;

    struct Ev(f64, bool);
    impl Fields for Ev {
        fn number(&self, _: &str) -> Option<f64> {
            Some(self.0)
        }
        fn is_set(&self, _: &str) -> Option<bool> {
            Some(self.1)
        }
    }

    fn plan() -> RolloutPlan {
        serde_json::from_value(serde_json::json!({
            "flag": "f",
            "phases": [{"name": "Half", "traffic_pct": 50, "min_duration": "1 day"}],
            "triggers": [
                {"id": "cost", "metric": {"kind": "mean", "of": [{"field": "x"}]},
                 "comparator": ">", "threshold": 10, "relative_to": "control"},
                {"id": "errors", "metric": {"kind": "rate", "field": "e"},
                 "comparator": ">", "threshold": 3}
            ]
        }))
        .unwrap()
    }

    /// The counters a metrics system would hold after these events.
    fn counters(events: &[(Arm, Ev)]) -> CounterSnapshot {
        let mut cost = [Counters::default(); 2];
        let mut errors = [Counters::default(); 2];
        for (arm, e) in events {
            let a = *arm as usize;
            cost[a].count += 1.0;
            cost[a].sum += e.0;
            cost[a].sum_squares += e.0 * e.0;
            errors[a].count += 1.0;
            let s = f64::from(u8::from(e.1));
            errors[a].sum += s;
            errors[a].sum_squares += s;
        }
        [("cost".to_owned(), cost), ("errors".to_owned(), errors)].into()
    }

    fn events(from: usize, to: usize) -> Vec<(Arm, Ev)> {
        (from..to)
            .map(|i| {
                let arm = if i % 3 == 0 {
                    Arm::Treatment
                } else {
                    Arm::Control
                };
                (arm, Ev(100.0 + (i * 37 % 91) as f64, i % 17 == 0))
            })
            .collect()
    }

    #[test]
    fn the_increase_is_the_tally_of_the_events_in_between() {
        let p = plan();
        let second = events(500, 1_300);
        let before = counters(&events(0, 500));
        let after = counters(&events(0, 1_300));
        let got = increase(&p, &before, &after);
        let mut want = Tally::new(&p);
        for (arm, e) in &second {
            want.add(&p, *arm, e);
        }
        assert!(got.skipped.is_empty(), "{:?}", got.skipped);
        assert_eq!(got.tally.events, want.events);
        for (g, w) in got.tally.triggers.iter().zip(&want.triggers) {
            for (g, w) in [(g.treatment, w.treatment), (g.control, w.control)] {
                assert_eq!(g.n, w.n);
                assert!((g.mean - w.mean).abs() < 1e-9, "{g:?} {w:?}");
                assert!((g.m2 - w.m2).abs() < 1e-6 * w.m2.max(1.0), "{g:?} {w:?}");
            }
        }
        // Nothing in between: an empty tally.
        let none = increase(&p, &after, &after);
        assert_eq!(none.tally, Tally::new(&p));
    }

    #[test]
    fn a_reset_or_a_missing_trigger_is_skipped_not_negative() {
        let p = plan();
        let before = counters(&events(0, 900));
        let mut after = counters(&events(0, 1_000));
        after.get_mut("cost").unwrap()[1] = Counters {
            count: 3.0,
            sum: 300.0,
            sum_squares: 30_000.0,
        };
        after.remove("errors");
        let got = increase(&p, &before, &after);
        let ids: Vec<&str> = got.skipped.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["cost", "errors"]);
        assert!(got.skipped[0].1.contains("reset"));
        assert_eq!(got.tally.events, [0, 0]);
    }
}
