//! The decision matrix of seed 001 (Template 07 "Decision matrix" and "Usage notes").
//!
//! | Items 1–9 | Decision |
//! |---|---|
//! | All ✅ | Cleared |
//! | 1–2 ⚠️, each with a documented open item, one named owner, due within 14 days after the target launch, and the sponsor's recorded risk acceptance | Conditional |
//! | 3+ ⚠️, or any ❌ | Blocked |
//!
//! plus: ⚠️ on item 4 (guardrails) or 9 (rollback) blocks unless the template relaxes it
//! explicitly, and without item 10's sign-off nothing launches ("without this signature,
//! production deployment is blocked").

use crate::gates::DecisionPolicy;
use jiff::civil::Date;
use serde::Serialize;
use std::collections::BTreeSet;

/// A checklist item's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// ✅ the evidence shows the item holds.
    Pass,
    /// ⚠️ not yet, with an open item naming one owner and a due date.
    Open,
    /// ❌ fails, or nothing shows it holds.
    Fail,
}

impl Status {
    /// The checklist's symbol: ✅, ⚠️ or ❌.
    pub fn symbol(self) -> &'static str {
        match self {
            Status::Pass => "✅",
            Status::Open => "⚠️",
            Status::Fail => "❌",
        }
    }
    /// A plain word for terminals without emoji: pass, open, fail.
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Open => "open",
            Status::Fail => "fail",
        }
    }
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Outcome {
    /// Launch on the target date.
    Cleared,
    /// Launch with named open items and the sponsor's risk acceptance.
    Conditional,
    /// Return to pilot or fix items.
    Blocked,
}

impl Outcome {
    /// Name as the checklist writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Cleared => "Cleared",
            Outcome::Conditional => "Conditional",
            Outcome::Blocked => "Blocked",
        }
    }
}

/// An open item as the decision sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenItemFacts {
    /// Checklist item it belongs to.
    pub item: u8,
    /// Owner, when one valid named person.
    pub owner: Option<String>,
    /// Due date.
    pub due: Option<Date>,
}

/// What the matrix decides from.
#[derive(Debug, Clone)]
pub struct MatrixInput<'a> {
    /// Status of items 1–9, index 0 = item 1.
    pub statuses: [Status; 9],
    /// Valid open items (owner and due present) per ⚠️ item.
    pub open_items: &'a [OpenItemFacts],
    /// Items the sponsor's recorded risk acceptance covers.
    pub sponsor_accepted: &'a BTreeSet<u8>,
    /// Target launch date.
    pub target_launch: Date,
    /// Whether item 10 (sign-off over this review's digest) holds.
    pub signed_off: bool,
    /// Policy from the gate template.
    pub policy: &'a DecisionPolicy,
}

/// The decision with every reason that led to it, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The outcome.
    pub outcome: Outcome,
    /// Why, one sentence each.
    pub reasons: Vec<String>,
}

/// Applies the decision matrix.
pub fn decide(input: &MatrixInput<'_>) -> Verdict {
    let failing: Vec<u8> = numbered(&input.statuses, Status::Fail);
    let open: Vec<u8> = numbered(&input.statuses, Status::Open);
    let mut reasons = Vec::new();
    if !failing.is_empty() {
        reasons.push(format!("❌ on item(s) {}", list(&failing)));
    }
    if open.len() > input.policy.max_open_items {
        reasons.push(format!(
            "{} items ⚠️ ({}); at most {} may be open for a conditional launch",
            open.len(),
            list(&open),
            input.policy.max_open_items
        ));
    }
    let hard: Vec<u8> = open
        .iter()
        .copied()
        .filter(|n| input.policy.open_blocks_items.contains(n))
        .collect();
    if !hard.is_empty() {
        reasons.push(format!(
            "⚠️ on item(s) {} blocks: guardrails and rollback are not conditional (seed 001 usage notes)",
            list(&hard)
        ));
    }
    let deadline = input
        .target_launch
        .checked_add(
            jiff::Span::new().days(i64::from(input.policy.open_item_due_days_after_launch)),
        )
        .unwrap_or(input.target_launch);
    for n in &open {
        let items: Vec<&OpenItemFacts> = input.open_items.iter().filter(|o| o.item == *n).collect();
        if items.is_empty() {
            reasons.push(format!("item {n} is ⚠️ without a documented open item"));
        }
        for o in items {
            match (&o.owner, o.due) {
                (None, _) => reasons.push(format!("open item on item {n} has no named owner")),
                (_, None) => reasons.push(format!("open item on item {n} has no due date")),
                (Some(_), Some(due)) if due > deadline => reasons.push(format!(
                    "open item on item {n} is due {due}, after {deadline} ({} days after the target launch {})",
                    input.policy.open_item_due_days_after_launch, input.target_launch
                )),
                _ => {}
            }
        }
        if !input.sponsor_accepted.contains(n) {
            reasons.push(format!(
                "no recorded risk acceptance from the sponsor for item {n}"
            ));
        }
    }
    if !reasons.is_empty() {
        return Verdict {
            outcome: Outcome::Blocked,
            reasons,
        };
    }
    if !input.signed_off {
        return Verdict {
            outcome: Outcome::Blocked,
            reasons: vec![format!(
                "items 1–9 {} but item 10 is not signed over this review's digest",
                if open.is_empty() {
                    "clear".to_owned()
                } else {
                    format!("allow a conditional launch ({} open)", list(&open))
                }
            )],
        };
    }
    if open.is_empty() {
        Verdict {
            outcome: Outcome::Cleared,
            reasons: vec!["all of items 1–9 ✅ and item 10 signed".into()],
        }
    } else {
        Verdict {
            outcome: Outcome::Conditional,
            reasons: vec![format!(
                "item(s) {} ⚠️ with owned open items due by {deadline} and the sponsor's risk acceptance",
                list(&open)
            )],
        }
    }
}

fn numbered(statuses: &[Status; 9], want: Status) -> Vec<u8> {
    (1u8..=9)
        .zip(statuses.iter())
        .filter(|(_, s)| **s == want)
        .map(|(n, _)| n)
        .collect()
}

fn list(ns: &[u8]) -> String {
    ns.iter().map(u8::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::{Fail as F, Open as O, Pass as P};

    fn policy() -> DecisionPolicy {
        DecisionPolicy {
            max_open_items: 2,
            open_item_due_days_after_launch: 14,
            open_blocks_items: vec![4, 9],
            relaxed_by: None,
        }
    }

    fn launch() -> Date {
        jiff::civil::date(2026, 6, 13)
    }

    fn owned(item: u8, due: Date) -> OpenItemFacts {
        OpenItemFacts {
            item,
            owner: Some("Mike Chen".into()),
            due: Some(due),
        }
    }

    /// One row of the matrix table.
    struct Row {
        name: &'static str,
        statuses: [Status; 9],
        open: Vec<OpenItemFacts>,
        accepted: &'static [u8],
        signed: bool,
        relax: bool,
        want: Outcome,
        reason_has: &'static str,
    }

    #[test]
    fn decision_matrix_table() {
        let ok_due = jiff::civil::date(2026, 6, 27); // launch + 14: the last allowed day
        let late = jiff::civil::date(2026, 6, 28);
        let rows = vec![
            Row {
                name: "all pass, signed",
                statuses: [P; 9],
                open: vec![],
                accepted: &[],
                signed: true,
                relax: false,
                want: Outcome::Cleared,
                reason_has: "all of items 1–9",
            },
            Row {
                name: "all pass, unsigned",
                statuses: [P; 9],
                open: vec![],
                accepted: &[],
                signed: false,
                relax: false,
                want: Outcome::Blocked,
                reason_has: "item 10 is not signed",
            },
            Row {
                name: "one open, owned, accepted",
                statuses: [P, P, P, P, P, P, P, O, P],
                open: vec![owned(8, ok_due)],
                accepted: &[8],
                signed: true,
                relax: false,
                want: Outcome::Conditional,
                reason_has: "item(s) 8",
            },
            Row {
                name: "two open, owned, accepted",
                statuses: [P, O, P, P, P, P, O, P, P],
                open: vec![owned(2, ok_due), owned(7, ok_due)],
                accepted: &[2, 7],
                signed: true,
                relax: false,
                want: Outcome::Conditional,
                reason_has: "2, 7",
            },
            Row {
                name: "two open but unsigned",
                statuses: [P, O, P, P, P, P, O, P, P],
                open: vec![owned(2, ok_due), owned(7, ok_due)],
                accepted: &[2, 7],
                signed: false,
                relax: false,
                want: Outcome::Blocked,
                reason_has: "conditional launch",
            },
            Row {
                name: "three open",
                statuses: [P, O, O, P, P, P, O, P, P],
                open: vec![owned(2, ok_due), owned(3, ok_due), owned(7, ok_due)],
                accepted: &[2, 3, 7],
                signed: true,
                relax: false,
                want: Outcome::Blocked,
                reason_has: "3 items ⚠️",
            },
            Row {
                name: "nine open",
                statuses: [O; 9],
                open: (1..=9).map(|n| owned(n, ok_due)).collect(),
                accepted: &[1, 2, 3, 4, 5, 6, 7, 8, 9],
                signed: true,
                relax: false,
                want: Outcome::Blocked,
                reason_has: "9 items ⚠️",
            },
            Row {
                name: "one fail",
                statuses: [P, P, P, P, P, F, P, P, P],
                open: vec![],
                accepted: &[],
                signed: true,
                relax: false,
                want: Outcome::Blocked,
                reason_has: "❌ on item(s) 6",
            },
            Row {
                name: "fail and open",
                statuses: [F, P, P, P, P, P, P, O, P],
                open: vec![owned(8, ok_due)],
                accepted: &[8],
                signed: true,
                relax: false,
                want: Outcome::Blocked,
                reason_has: "❌ on item(s) 1",
            },
            Row {
                name: "all fail",
                statuses: [F; 9],
                open: vec![],
                accepted: &[],
                signed: true,
                relax: false,
                want: Outcome::Blocked,
                reason_has: "1, 2, 3, 4, 5, 6, 7, 8, 9",
            },
            Row {
                name: "open on item 4",
                statuses: [P, P, P, O, P, P, P, P, P],
                open: vec![owned(4, ok_due)],
                accepted: &[4],
                signed: true,
                relax: false,
                want: Outcome::Blocked,
                reason_has: "item(s) 4 blocks",
            },
            Row {
                name: "open on item 9",
                statuses: [P, P, P, P, P, P, P, P, O],
                open: vec![owned(9, ok_due)],
                accepted: &[9],
                signed: true,
                relax: false,
                want: Outcome::Blocked,
                reason_has: "item(s) 9 blocks",
            },
            Row {
                name: "open on item 9, relaxed explicitly",
                statuses: [P, P, P, P, P, P, P, P, O],
                open: vec![owned(9, ok_due)],
                accepted: &[9],
                signed: true,
                relax: true,
                want: Outcome::Conditional,
                reason_has: "item(s) 9",
            },
            Row {
                name: "open item without owner",
                statuses: [P, P, P, P, P, P, P, O, P],
                open: vec![OpenItemFacts {
                    item: 8,
                    owner: None,
                    due: Some(ok_due),
                }],
                accepted: &[8],
                signed: true,
                relax: false,
                want: Outcome::Blocked,
                reason_has: "no named owner",
            },
            Row {
                name: "open item without due date",
                statuses: [P, P, P, P, P, P, P, O, P],
                open: vec![OpenItemFacts {
                    item: 8,
                    owner: Some("Mike Chen".into()),
                    due: None,
                }],
                accepted: &[8],
                signed: true,
                relax: false,
                want: Outcome::Blocked,
                reason_has: "no due date",
            },
            Row {
                name: "open item due too late",
                statuses: [P, P, P, P, P, P, P, O, P],
                open: vec![owned(8, late)],
                accepted: &[8],
                signed: true,
                relax: false,
                want: Outcome::Blocked,
                reason_has: "after 2026-06-27",
            },
            Row {
                name: "open without any record",
                statuses: [P, P, P, P, P, P, P, O, P],
                open: vec![],
                accepted: &[8],
                signed: true,
                relax: false,
                want: Outcome::Blocked,
                reason_has: "without a documented open item",
            },
            Row {
                name: "sponsor acceptance missing",
                statuses: [P, P, P, P, P, P, P, O, P],
                open: vec![owned(8, ok_due)],
                accepted: &[],
                signed: true,
                relax: false,
                want: Outcome::Blocked,
                reason_has: "risk acceptance",
            },
            Row {
                name: "sponsor accepted another item",
                statuses: [P, O, P, P, P, P, P, O, P],
                open: vec![owned(2, ok_due), owned(8, ok_due)],
                accepted: &[8],
                signed: true,
                relax: false,
                want: Outcome::Blocked,
                reason_has: "for item 2",
            },
        ];
        for r in rows {
            let mut policy = policy();
            if r.relax {
                policy.open_blocks_items = vec![4];
                policy.relaxed_by = Some("Org CoE board, 2026-05-01".into());
            }
            let accepted: BTreeSet<u8> = r.accepted.iter().copied().collect();
            let v = decide(&MatrixInput {
                statuses: r.statuses,
                open_items: &r.open,
                sponsor_accepted: &accepted,
                target_launch: launch(),
                signed_off: r.signed,
                policy: &policy,
            });
            assert_eq!(v.outcome, r.want, "{}: {:?}", r.name, v.reasons);
            assert!(
                v.reasons.iter().any(|s| s.contains(r.reason_has)),
                "{}: reasons {:?} lack {:?}",
                r.name,
                v.reasons,
                r.reason_has
            );
        }
    }

    #[test]
    fn every_count_of_open_and_fail() {
        // Exhaustive over how many of items 1,2,3,5,6,7,8 are ⚠️ (k) and ❌ (f), with
        // well-formed open items and acceptance: Cleared iff k=f=0, Conditional iff f=0 and
        // 1<=k<=2, Blocked otherwise.
        let soft = [1u8, 2, 3, 5, 6, 7, 8];
        for k in 0..=soft.len() {
            for f in 0..=(soft.len() - k) {
                let mut st = [P; 9];
                for &n in &soft[..k] {
                    st[usize::from(n) - 1] = O;
                }
                for &n in &soft[k..k + f] {
                    st[usize::from(n) - 1] = F;
                }
                let open: Vec<_> = soft[..k]
                    .iter()
                    .map(|&n| owned(n, jiff::civil::date(2026, 6, 20)))
                    .collect();
                let accepted: BTreeSet<u8> = soft[..k].iter().copied().collect();
                let p = policy();
                let v = decide(&MatrixInput {
                    statuses: st,
                    open_items: &open,
                    sponsor_accepted: &accepted,
                    target_launch: launch(),
                    signed_off: true,
                    policy: &p,
                });
                let want = match (k, f) {
                    (0, 0) => Outcome::Cleared,
                    (1..=2, 0) => Outcome::Conditional,
                    _ => Outcome::Blocked,
                };
                assert_eq!(v.outcome, want, "k={k} f={f}");
            }
        }
    }
}
