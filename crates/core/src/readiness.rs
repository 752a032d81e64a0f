//! The readiness assessment of seed 000: Technical / Operational / Organizational checklists,
//! each item Pass / Needs work / Fail, rolled up to Green / Amber / Red per dimension and to
//! Ready / Ready with conditions / Not ready overall.
//!
//! Item status: an item tied to a checklist item (`from_item`) follows it (✅ → Pass, ⚠️ →
//! Needs work, ❌ → Fail). Any other item is Pass when a valid evidence record names its id in
//! `readiness`, else Needs work (with the open item that covers it, if any). Roll-up: any Fail →
//! Red, all Pass → Green, else Amber; overall any Red → Not ready, all Green → Ready, else
//! Ready with conditions.

use crate::decision::Status;
use crate::evidence::{Evidence, EvidenceKind};
use crate::gates::{Dimension, GateTemplate};
use crate::review::{ItemResult, OpenItem};
use serde::Serialize;

/// A readiness item's status (seed 000 `Pass | Needs work | Fail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ItemState {
    /// Evidence shows it.
    Pass,
    /// Not shown yet.
    #[serde(rename = "Needs work")]
    NeedsWork,
    /// Shown not to hold.
    Fail,
}

impl ItemState {
    /// As seed 000 writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pass => "Pass",
            ItemState::NeedsWork => "Needs work",
            ItemState::Fail => "Fail",
        }
    }
}

/// A dimension's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Rag {
    /// All items pass.
    Green,
    /// Some need work, none fail.
    Amber,
    /// Something fails.
    Red,
}

impl Rag {
    /// As seed 000 writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Rag::Green => "Green",
            Rag::Amber => "Amber",
            Rag::Red => "Red",
        }
    }
}

/// Overall readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Overall {
    /// Every dimension Green.
    Ready,
    /// Some Amber, none Red.
    #[serde(rename = "Ready with conditions")]
    ReadyWithConditions,
    /// Some Red.
    #[serde(rename = "Not ready")]
    NotReady,
}

impl Overall {
    /// As seed 000 writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Overall::Ready => "Ready",
            Overall::ReadyWithConditions => "Ready with conditions",
            Overall::NotReady => "Not ready",
        }
    }
}

/// One assessed readiness item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssessedItem {
    /// Id.
    pub id: String,
    /// Area.
    pub area: String,
    /// Text.
    pub item: String,
    /// Status.
    pub status: ItemState,
    /// Details: the checklist item it follows or the evidence that shows it.
    pub notes: String,
}

/// One dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssessedDimension {
    /// Dimension.
    pub dimension: Dimension,
    /// Colour.
    pub status: Rag,
    /// Items.
    pub items: Vec<AssessedItem>,
}

/// Something standing between the agent and scale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocker {
    /// What is blocking.
    pub blocker: String,
    /// How to resolve it.
    pub resolution: String,
    /// Who (from an open item), or "unassigned".
    pub owner: String,
    /// When (due date), or "unscheduled".
    pub timeline: String,
}

/// The assessment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Overall.
    pub overall: Overall,
    /// Per dimension.
    pub dimensions: Vec<AssessedDimension>,
    /// Blockers: every Fail and Needs work item.
    pub blockers: Vec<Blocker>,
}

/// Assesses readiness from checklist results and readiness evidence.
pub fn assess(
    template: &GateTemplate,
    checklist: &[ItemResult],
    evidence: &[Evidence],
    open_items: &[OpenItem],
) -> Readiness {
    let mut dimensions = Vec::new();
    let mut blockers = Vec::new();
    for dim in &template.readiness {
        let mut items = Vec::new();
        for it in &dim.items {
            let (status, notes) = match it.from_item {
                Some(n) => match checklist.iter().find(|r| r.number == n) {
                    Some(r) => (
                        match r.status {
                            Status::Pass => ItemState::Pass,
                            Status::Open => ItemState::NeedsWork,
                            Status::Fail => ItemState::Fail,
                        },
                        format!("follows checklist item {n} ({})", r.status.symbol()),
                    ),
                    None => (
                        ItemState::NeedsWork,
                        format!("checklist item {n} not assessed"),
                    ),
                },
                None => {
                    let mut recs: Vec<&Evidence> = evidence
                        .iter()
                        .filter(|e| e.is_valid() && e.record.readiness.iter().any(|r| r == &it.id))
                        .filter(|e| e.record.kind != EvidenceKind::OpenItem)
                        .collect();
                    recs.sort_by(|a, b| a.path.cmp(&b.path));
                    if recs.is_empty() {
                        (ItemState::NeedsWork, "no evidence recorded".to_owned())
                    } else {
                        (
                            ItemState::Pass,
                            recs.iter()
                                .map(|e| e.path.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                        )
                    }
                }
            };
            if status != ItemState::Pass {
                let open = evidence
                    .iter()
                    .filter(|e| e.is_valid() && e.record.readiness.iter().any(|r| r == &it.id))
                    .find_map(|e| e.record.open_item.as_ref());
                let from_checklist = it.from_item.and_then(|n| {
                    open_items
                        .iter()
                        .find(|o| o.item == n && o.problems.is_empty())
                });
                let (owner, timeline, resolution) = match (open, from_checklist) {
                    (Some(o), _) => (
                        o.owner.clone().unwrap_or_else(|| "unassigned".into()),
                        o.due
                            .map(|d| d.to_string())
                            .unwrap_or_else(|| "unscheduled".into()),
                        o.what.clone(),
                    ),
                    (None, Some(o)) => (
                        o.owner.clone().unwrap_or_else(|| "unassigned".into()),
                        o.due
                            .map(|d| d.to_string())
                            .unwrap_or_else(|| "unscheduled".into()),
                        o.what.clone(),
                    ),
                    (None, None) => (
                        "unassigned".into(),
                        "unscheduled".into(),
                        match it.from_item {
                            Some(n) => format!("close checklist item {n}"),
                            None => format!("record evidence for `{}`", it.id),
                        },
                    ),
                };
                blockers.push(Blocker {
                    blocker: format!(
                        "{}: {} ({})",
                        dim.dimension.as_str(),
                        it.text,
                        status.as_str()
                    ),
                    resolution,
                    owner,
                    timeline,
                });
            }
            items.push(AssessedItem {
                id: it.id.clone(),
                area: it.area.clone(),
                item: it.text.clone(),
                status,
                notes,
            });
        }
        let status = if items.iter().any(|i| i.status == ItemState::Fail) {
            Rag::Red
        } else if items.iter().all(|i| i.status == ItemState::Pass) {
            Rag::Green
        } else {
            Rag::Amber
        };
        dimensions.push(AssessedDimension {
            dimension: dim.dimension,
            status,
            items,
        });
    }
    let overall = if dimensions.iter().any(|d| d.status == Rag::Red) {
        Overall::NotReady
    } else if dimensions.iter().all(|d| d.status == Rag::Green) {
        Overall::Ready
    } else {
        Overall::ReadyWithConditions
    };
    Readiness {
        overall,
        dimensions,
        blockers,
    }
}
