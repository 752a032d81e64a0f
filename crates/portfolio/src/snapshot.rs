//! The input: what the portfolio needs to know about each agent, as plain values.
//!
//! An [`AgentSnapshot`] is an agent's history as the registry's event log holds it — every
//! stage change with its effective date, and every recorded review reduced to the few facts
//! the portfolio rules read ([`ReviewSnapshot`]). The portfolio applies the as-of date itself
//! ([`crate::scorecard::scorecard`]), so a snapshot may hold events dated after it; they are ignored.
//!
//! [`ReviewSnapshot::from_review_json`] reads those facts from the review JSON a
//! `review-recorded` event carries (the `Review` shape of `stagegate review --format json`).
//! It reads only what that JSON really contains: the decision and its dates, the pilot
//! window, the open items, and the kill-switch drills among the evidence. Credential
//! rotations are recorded with their date but no interval or next due date (neither the card
//! nor the review has one), so no "rotation past due" can be derived and none is.

use jiff::civil::Date;
use serde_json::Value;
use stagegate_core::decision::Outcome;
use stagegate_core::stage::Stage;

/// Seed 001 usage notes: "The 30-day post-launch review at item 10 is non-negotiable." Used
/// when a review does not give its own post-launch review date.
pub const DEFAULT_POST_LAUNCH_REVIEW_DAYS: i64 = 30;

/// Seed 001 item 9: "Within the past 30 days, the rollback procedure has been executed
/// end-to-end in a drill." Used when a review does not give its template's
/// `drill_window_days`.
pub const DEFAULT_DRILL_WINDOW_DAYS: i64 = 30;

/// One stage change, as a `stage-changed` event records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageChange {
    /// Its event number in the log (orders changes with the same date).
    pub event: i64,
    /// The new stage.
    pub stage: Stage,
    /// Its effective date (the event's `--as-of`): the pilot's start, or the launch.
    pub at: Date,
}

/// An open item of a review (seed 001 blank template, "Open items": item #, what's missing,
/// owner, due date).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenItemSnapshot {
    /// Checklist item, 1–10.
    pub item: u8,
    /// What is missing.
    pub what: String,
    /// The owner as written, when the record names one.
    pub owner: Option<String>,
    /// Due date, when the record gives one.
    pub due: Option<Date>,
    /// The evidence record it comes from, e.g. `evidence/open-item-comms.yaml`.
    pub source: String,
}

/// What the portfolio reads from one recorded review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewSnapshot {
    /// Its event number in the log (orders reviews with the same date).
    pub event: i64,
    /// The review date (`review_date`).
    pub review_date: Date,
    /// The decision (`decision.outcome`).
    pub decision: Outcome,
    /// First day of the pilot (`pilot.start`).
    pub pilot_start: Date,
    /// Last day of the pilot (`pilot.end`).
    pub pilot_end: Date,
    /// The card's target launch (`decision.target_launch`).
    pub target_launch: Date,
    /// Days from launch to the post-launch review: `decision.post_launch_review` −
    /// `decision.target_launch` (the template's `post_launch_review_days`), else
    /// [`DEFAULT_POST_LAUNCH_REVIEW_DAYS`].
    pub post_launch_review_days: i64,
    /// The review's open items (`open_items`).
    pub open_items: Vec<OpenItemSnapshot>,
    /// Date of the newest kill-switch drill the review counted: an evidence record of kind
    /// `drill` for item 9, valid, with result `passed`. A failed drill proves nothing about
    /// the switch and does not count.
    pub last_drill: Option<Date>,
    /// Days a drill counts for (`template.drill_window_days`, else
    /// [`DEFAULT_DRILL_WINDOW_DAYS`]).
    pub drill_window_days: i64,
}

/// An agent's history in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSnapshot {
    /// Agent id, `agent-<dept>-<slug>`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Every stage change, in log order.
    pub stages: Vec<StageChange>,
    /// Every recorded review, in log order.
    pub reviews: Vec<ReviewSnapshot>,
}

/// A review JSON without a field the portfolio needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the review of event #{event} has no valid `{field}`")]
pub struct SnapshotError {
    /// The review's event number.
    pub event: i64,
    /// The JSON pointer of the missing or malformed field, e.g. `/pilot/end`.
    pub field: &'static str,
}

fn date_at(v: &Value, pointer: &str) -> Option<Date> {
    v.pointer(pointer)?.as_str()?.parse().ok()
}

impl ReviewSnapshot {
    /// Reads a review JSON (the `Review` shape, as `review-recorded` events carry it).
    ///
    /// Required: `review_date`, `decision.outcome`, `decision.target_launch`, `pilot.start`,
    /// `pilot.end`. Optional, with the defaults above: `decision.post_launch_review`,
    /// `template.drill_window_days`, `open_items`, `evidence`.
    ///
    /// # Errors
    /// [`SnapshotError`] naming the first required field that is missing or malformed.
    pub fn from_review_json(event: i64, v: &Value) -> Result<ReviewSnapshot, SnapshotError> {
        let need = |field: &'static str| date_at(v, field).ok_or(SnapshotError { event, field });
        let review_date = need("/review_date")?;
        let decision = match v.pointer("/decision/outcome").and_then(Value::as_str) {
            Some("Cleared") => Outcome::Cleared,
            Some("Conditional") => Outcome::Conditional,
            Some("Blocked") => Outcome::Blocked,
            _ => {
                return Err(SnapshotError {
                    event,
                    field: "/decision/outcome",
                });
            }
        };
        let target_launch = need("/decision/target_launch")?;
        let pilot_start = need("/pilot/start")?;
        let pilot_end = need("/pilot/end")?;
        let post_launch_review_days = date_at(v, "/decision/post_launch_review")
            .map(|d| (d - target_launch).get_days().into())
            .filter(|&d: &i64| d >= 0)
            .unwrap_or(DEFAULT_POST_LAUNCH_REVIEW_DAYS);
        let drill_window_days = v
            .pointer("/template/drill_window_days")
            .and_then(Value::as_i64)
            .filter(|&d| d >= 0)
            .unwrap_or(DEFAULT_DRILL_WINDOW_DAYS);
        let text = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
        let open_items = v
            .get("open_items")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|o| OpenItemSnapshot {
                        item: o
                            .get("item")
                            .and_then(Value::as_u64)
                            .and_then(|n| u8::try_from(n).ok())
                            .unwrap_or(0),
                        what: text(o, "what").unwrap_or_default(),
                        owner: text(o, "owner"),
                        due: date_at(o, "/due"),
                        source: text(o, "source").unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let last_drill = v
            .get("evidence")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|e| {
                e.get("kind").and_then(Value::as_str) == Some("drill")
                    && e.pointer("/validity/state").and_then(Value::as_str) == Some("valid")
                    && e.pointer("/drill/result").and_then(Value::as_str) == Some("passed")
                    && e.get("items")
                        .and_then(Value::as_array)
                        .is_some_and(|i| i.iter().any(|n| n.as_u64() == Some(9)))
            })
            .filter_map(|e| date_at(e, "/date"))
            .max();
        Ok(ReviewSnapshot {
            event,
            review_date,
            decision,
            pilot_start,
            pilot_end,
            target_launch,
            post_launch_review_days,
            open_items,
            last_drill,
            drill_window_days,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn review() -> Value {
        json!({
            "review_date": "2026-06-12",
            "decision": {"outcome": "Conditional", "target_launch": "2026-06-13",
                         "post_launch_review": "2026-07-13", "open_items_due_by": "2026-06-27"},
            "pilot": {"start": "2026-05-13", "end": "2026-06-12", "days": 31},
            "template": {"drill_window_days": 30},
            "open_items": [
                {"item": 6, "what": "Verify retention", "owner": "Priya Nair", "due": "2026-06-24",
                 "source": "evidence/open-item-retention.yaml", "problems": []},
                {"item": 8, "what": "Schedule comms", "owner": null, "due": null,
                 "source": "evidence/open-item-comms.yaml", "problems": ["no owner"]}
            ],
            "evidence": [
                {"kind": "drill", "date": "2026-06-08", "items": [9], "validity": {"state": "valid"},
                 "drill": {"result": "passed"}},
                {"kind": "drill", "date": "2026-06-10", "items": [9], "validity": {"state": "valid"},
                 "drill": {"result": "failed"}},
                {"kind": "drill", "date": "2026-06-11", "items": [9],
                 "validity": {"state": "invalid", "reason": "changed attachment"},
                 "drill": {"result": "passed"}},
                {"kind": "rotation", "date": "2026-06-09", "items": [5], "validity": {"state": "valid"}}
            ]
        })
    }

    #[test]
    fn reads_what_the_review_holds() {
        let s = ReviewSnapshot::from_review_json(6, &review()).unwrap();
        assert_eq!(s.review_date.to_string(), "2026-06-12");
        assert_eq!(s.decision, Outcome::Conditional);
        assert_eq!(s.pilot_end.to_string(), "2026-06-12");
        assert_eq!(s.target_launch.to_string(), "2026-06-13");
        assert_eq!(s.post_launch_review_days, 30);
        assert_eq!(s.drill_window_days, 30);
        assert_eq!(s.open_items.len(), 2);
        assert_eq!(s.open_items[0].owner.as_deref(), Some("Priya Nair"));
        assert_eq!(s.open_items[1].due, None);
        // The failed and the invalid drill do not count; the rotation is no drill.
        assert_eq!(
            s.last_drill.map(|d| d.to_string()).as_deref(),
            Some("2026-06-08")
        );
    }

    #[test]
    fn optional_fields_default_and_required_ones_are_named() {
        let mut v = review();
        v["decision"]
            .as_object_mut()
            .unwrap()
            .remove("post_launch_review");
        v.as_object_mut().unwrap().remove("template");
        v.as_object_mut().unwrap().remove("evidence");
        let s = ReviewSnapshot::from_review_json(1, &v).unwrap();
        assert_eq!(s.post_launch_review_days, DEFAULT_POST_LAUNCH_REVIEW_DAYS);
        assert_eq!(s.drill_window_days, DEFAULT_DRILL_WINDOW_DAYS);
        assert_eq!(s.last_drill, None);

        v["pilot"].as_object_mut().unwrap().remove("end");
        let e = ReviewSnapshot::from_review_json(7, &v).unwrap_err();
        assert_eq!(e.field, "/pilot/end");
        assert_eq!(
            e.to_string(),
            "the review of event #7 has no valid `/pilot/end`"
        );
        v["decision"]["outcome"] = json!("Maybe");
        assert_eq!(
            ReviewSnapshot::from_review_json(7, &v).unwrap_err().field,
            "/decision/outcome"
        );
    }
}
