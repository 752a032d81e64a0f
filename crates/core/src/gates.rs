//! Gate templates as data: the 10-item Pilot-to-Prod checklist with the parameters of its
//! rules, the decision-matrix policy, retention minimums per tier and regime, and the three
//! readiness checklists.
//!
//! The built-in template is [`BUILTIN_TEMPLATE_YAML`] (seed 001 Template 07 v1, seed 000
//! readiness checklists). An organisation or an agent can replace it with a complete file of
//! the same shape (`gates.yaml`); the loader parses it and [`GateTemplate::validate`] checks it.

use crate::card::Tier;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The built-in template, YAML. Parsed by `stagegate-load`.
pub const BUILTIN_TEMPLATE_YAML: &str = include_str!("../gates/default.yaml");

/// Which rule evaluates a checklist item. Each rule cites its seed section in
/// [`crate::items`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Item 1: pilot success criteria met.
    SuccessCriteria,
    /// Item 2: dashboards live and watched.
    Dashboards,
    /// Item 3: on-call named, with pager.
    OnCall,
    /// Item 4: each guardrail fired on a real trigger.
    Guardrails,
    /// Item 5: identity in the IdP, credentials rotated during the pilot.
    IdentityRotation,
    /// Item 6: audit-log retention per tier.
    AuditRetention,
    /// Item 7: runbook read by the named on-call.
    Runbook,
    /// Item 8: communication drafted and scheduled.
    Communication,
    /// Item 9: rollback / kill drill within the window.
    RollbackDrill,
    /// Item 10: CoE lead (and builder, and peer when needed) sign the review digest.
    Signoff,
}

/// One checklist item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemTemplate {
    /// Item number, 1–10.
    pub number: u8,
    /// Title as the checklist prints it.
    pub title: String,
    /// The rule that decides it.
    pub rule: Rule,
    /// What passing looks like (seed 001 per-item guidance).
    pub pass: String,
    /// What failing looks like.
    pub fail: String,
}

/// Decision-matrix policy (seed 001 "Decision matrix" and "Usage notes").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionPolicy {
    /// Most ⚠️ items a Conditional decision allows (seed: "1–2 items ⚠️").
    pub max_open_items: usize,
    /// Open items must be due within this many days after the target launch (seed: "must
    /// close within 14 days post-launch").
    pub open_item_due_days_after_launch: u32,
    /// Items on which ⚠️ blocks (seed usage note: "If item 4 (guardrails) or item 9
    /// (rollback) is ⚠️ … block").
    pub open_blocks_items: Vec<u8>,
    /// Who relaxed `open_blocks_items`, and why. Required whenever item 4 or 9 is left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relaxed_by: Option<String>,
}

/// Audit-log retention minimums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Minimum days per tier.
    pub minimum_days: BTreeMap<Tier, u32>,
    /// Minimum days per named regime (e.g. `sox: 2555`).
    pub regimes: BTreeMap<String, RegimeMinimum>,
}

/// One regime's retention minimum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegimeMinimum {
    /// Minimum days.
    pub days: u32,
    /// The rule it comes from.
    pub source: String,
}

/// A readiness dimension (seed 000).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Dimension {
    /// Technical readiness.
    Technical,
    /// Operational readiness.
    Operational,
    /// Organizational readiness.
    Organizational,
}

impl Dimension {
    /// Name as seed 000 writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Technical => "Technical",
            Dimension::Operational => "Operational",
            Dimension::Organizational => "Organizational",
        }
    }
}

/// One readiness checklist item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadinessItemTemplate {
    /// Stable id that evidence names, e.g. `technical.load_tested`.
    pub id: String,
    /// Area within the dimension, e.g. "performance".
    pub area: String,
    /// Text as seed 000 writes it.
    pub text: String,
    /// When set, the status follows this checklist item instead of readiness evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_item: Option<u8>,
}

/// One readiness dimension's checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadinessDimensionTemplate {
    /// The dimension.
    pub dimension: Dimension,
    /// Its items.
    pub items: Vec<ReadinessItemTemplate>,
}

/// A gate template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GateTemplate {
    /// Template name, e.g. "07-pilot-to-prod-checklist".
    pub name: String,
    /// Template version.
    pub version: u32,
    /// The checklist items, numbered 1–10.
    pub items: Vec<ItemTemplate>,
    /// The rollback drill must fall within this many days before the review (seed 001 item 9:
    /// "Within the past 30 days").
    pub drill_window_days: u32,
    /// The post-launch review is this many days after launch (seed 001 usage notes: "The
    /// 30-day post-launch review … is non-negotiable").
    pub post_launch_review_days: u32,
    /// Decision-matrix policy.
    pub decision: DecisionPolicy,
    /// Retention minimums.
    pub retention: RetentionPolicy,
    /// Readiness checklists.
    pub readiness: Vec<ReadinessDimensionTemplate>,
}

/// A template that parses but is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct TemplateError {
    /// Dotted path of the offending field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl GateTemplate {
    /// Checks the template: items numbered 1–10 in order with one rule each, every tier has a
    /// retention minimum (medium and high at least 180 days — EU AI Act Art. 19(1)/26(6)),
    /// relaxing the ⚠️ block on items 4 or 9 is explicit, readiness ids unique and `from_item`
    /// in 1–10.
    ///
    /// # Errors
    /// The first [`TemplateError`] found.
    pub fn validate(&self) -> Result<(), TemplateError> {
        let err = |field: &str, message: String| TemplateError {
            field: field.to_owned(),
            message,
        };
        if self.items.len() != 10 {
            return Err(err(
                "items",
                format!("has {} items; the checklist has 10", self.items.len()),
            ));
        }
        let mut rules = std::collections::BTreeSet::new();
        for (i, it) in self.items.iter().enumerate() {
            if usize::from(it.number) != i + 1 {
                return Err(err(
                    &format!("items[{i}].number"),
                    format!("is {}; items must be numbered 1–10 in order", it.number),
                ));
            }
            if !rules.insert(it.rule) {
                return Err(err(
                    &format!("items[{i}].rule"),
                    "is used by two items".to_owned(),
                ));
            }
        }
        if self.items[9].rule != Rule::Signoff {
            return Err(err(
                "items[9].rule",
                "item 10 must be the sign-off".to_owned(),
            ));
        }
        for tier in [Tier::Low, Tier::Medium, Tier::High] {
            match self.retention.minimum_days.get(&tier) {
                None => {
                    return Err(err(
                        "retention.minimum_days",
                        format!("has no minimum for tier {}", tier.as_str()),
                    ));
                }
                Some(d) if tier != Tier::Low && *d < 180 => {
                    return Err(err(
                        &format!("retention.minimum_days.{}", tier.as_str()),
                        format!(
                            "is {d} days; medium and high tiers keep logs at least 180 days (EU AI Act Art. 19(1), 26(6))"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        for n in &self.decision.open_blocks_items {
            if !(1..=9).contains(n) {
                return Err(err(
                    "decision.open_blocks_items",
                    format!("{n} is not one of items 1–9"),
                ));
            }
        }
        let relaxed = [4u8, 9]
            .iter()
            .any(|n| !self.decision.open_blocks_items.contains(n));
        if relaxed
            && self
                .decision
                .relaxed_by
                .as_deref()
                .is_none_or(|s| s.trim().is_empty())
        {
            return Err(err(
                "decision.relaxed_by",
                "leaving item 4 or 9 out of open_blocks_items relaxes seed 001's rule; say who relaxed it and why".to_owned(),
            ));
        }
        if self.decision.max_open_items == 0 {
            return Err(err(
                "decision.max_open_items",
                "0 would make Conditional impossible; the seed allows 1–2".to_owned(),
            ));
        }
        let mut ids = std::collections::BTreeSet::new();
        for (d, dim) in self.readiness.iter().enumerate() {
            for (i, it) in dim.items.iter().enumerate() {
                if !ids.insert(it.id.as_str()) {
                    return Err(err(
                        &format!("readiness[{d}].items[{i}].id"),
                        format!("duplicate readiness id `{}`", it.id),
                    ));
                }
                if let Some(n) = it.from_item
                    && !(1..=10).contains(&n)
                {
                    return Err(err(
                        &format!("readiness[{d}].items[{i}].from_item"),
                        format!("{n} is not a checklist item"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The item template numbered `n` (1–10).
    pub fn item(&self, n: u8) -> Option<&ItemTemplate> {
        self.items.iter().find(|i| i.number == n)
    }

    /// Whether `id` names a readiness item.
    pub fn has_readiness_item(&self, id: &str) -> bool {
        self.readiness
            .iter()
            .flat_map(|d| &d.items)
            .any(|i| i.id == id)
    }

    /// The audit-log retention minimum for a tier and the regimes a card names, in days, with
    /// where it comes from. Unknown regimes are returned separately.
    pub fn retention_minimum(&self, tier: Tier, regimes: &[String]) -> RetentionMinimum {
        let mut days = self.retention.minimum_days.get(&tier).copied().unwrap_or(0);
        let mut source = format!("tier {} minimum", tier.as_str());
        let mut unknown = Vec::new();
        for r in regimes {
            match self.retention.regimes.get(&r.to_lowercase()) {
                Some(m) if m.days > days => {
                    days = m.days;
                    source = format!("{r}: {}", m.source);
                }
                Some(_) => {}
                None => unknown.push(r.clone()),
            }
        }
        RetentionMinimum {
            days,
            source,
            unknown_regimes: unknown,
        }
    }
}

/// The retention a card must meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionMinimum {
    /// Minimum days.
    pub days: u32,
    /// Which rule set it.
    pub source: String,
    /// Regimes the card names that the template does not know.
    pub unknown_regimes: Vec<String>,
}
