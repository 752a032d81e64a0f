//! The scaling plan, in seed 000's `scaling_plan` output format, filled from the card, the
//! review and the telemetry, plus an `economics` section.
//!
//! Phases come from `scale.phases` in the card, or seed 000's "Phased Rollout" pattern (power
//! users 2 weeks, department 4 weeks, enterprise 6 weeks). Each phase's success criteria are
//! the card's success criteria at their thresholds; its rollback trigger is the card's
//! rollback triggers.

use crate::card::AgentCard;
use crate::economics::EconomicsResult;
use crate::items::fmt_value;
use crate::readiness::Readiness;
use crate::review::Review;
use serde::Serialize;

/// The document: `scaling_plan:` at the top.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanDocument {
    /// The plan.
    pub scaling_plan: ScalingPlan,
}

/// Seed 000's `scaling_plan`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingPlan {
    /// Initiative name.
    pub initiative: String,
    /// The review this plan was made from.
    pub review: PlanReview,
    /// Pilot summary.
    pub pilot_summary: PlanPilotSummary,
    /// Readiness assessment.
    pub readiness_assessment: Readiness,
    /// Target state and phases.
    pub scaling_plan: PlanBody,
    /// Risks.
    pub risk_mitigation: Vec<Risk>,
    /// Communication.
    pub communication: PlanCommunication,
    /// Success metrics.
    pub success_metrics: Vec<SuccessMetric>,
    /// Economics, when the card gives inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub economics: Option<EconomicsResult>,
}

/// Which review the plan rests on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanReview {
    /// Review date.
    pub date: String,
    /// Decision.
    pub decision: String,
    /// Review digest.
    pub digest: String,
}

/// `pilot_summary`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanPilotSummary {
    /// Start.
    pub start_date: String,
    /// End.
    pub end_date: String,
    /// Scope.
    pub scope: String,
    /// "N users/transactions".
    pub users: String,
    /// Key outcomes: each criterion with its actual.
    pub results: Vec<String>,
    /// Whether every criterion was met.
    pub success_criteria_met: bool,
}

/// `scaling_plan.scaling_plan`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanBody {
    /// Target state.
    pub target_state: TargetState,
    /// Phases.
    pub phases: Vec<Phase>,
    /// Infrastructure.
    pub infrastructure: Infrastructure,
    /// Support.
    pub support: Support,
}

/// `target_state`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetState {
    /// Users.
    pub users: String,
    /// Volume.
    pub volume: String,
    /// Target date.
    pub timeline: String,
}

/// One phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// 1-based.
    pub phase: u32,
    /// Name.
    pub name: String,
    /// Scope.
    pub scope: String,
    /// Duration.
    pub duration: String,
    /// Success criteria.
    pub success_criteria: Vec<String>,
    /// When to stop.
    pub rollback_trigger: String,
}

/// `infrastructure`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Infrastructure {
    /// Pilot infrastructure.
    pub current: String,
    /// Production infrastructure.
    pub target: String,
    /// Changes.
    pub changes_needed: Vec<String>,
}

/// `support`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Support {
    /// Support model.
    pub model: String,
    /// Team.
    pub resources: String,
    /// Escalation path.
    pub escalation: String,
}

/// A risk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Risk {
    /// The risk.
    pub risk: String,
    /// H/M/L.
    pub likelihood: String,
    /// H/M/L.
    pub impact: String,
    /// Plan.
    pub mitigation: String,
}

/// `communication`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanCommunication {
    /// Stakeholder groups.
    pub stakeholders: Vec<String>,
    /// Key messages.
    pub messaging: String,
    /// Schedule.
    pub timeline: String,
}

/// A success metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuccessMetric {
    /// Metric.
    pub metric: String,
    /// Pilot value.
    pub pilot_value: String,
    /// Target at scale.
    pub target_at_scale: String,
    /// How tracked.
    pub measurement: String,
}

fn with_unit(v: f64, unit: Option<&str>) -> String {
    match unit {
        Some(u) => format!("{} {u}", fmt_value(v)),
        None => fmt_value(v),
    }
}

/// Builds the plan from the card and its review.
pub fn build(card: &AgentCard, review: &Review) -> PlanDocument {
    let results = review
        .criteria
        .iter()
        .map(|c| {
            let target = card
                .success_criteria
                .iter()
                .find(|k| k.id == c.id && !k.hypothesis().is_superiority())
                .map(|k| crate::items::target_text(k.comparator, k.target(), k.hypothesis()))
                .unwrap_or_else(|| {
                    format!(
                        "{} {}",
                        c.comparator,
                        with_unit(c.threshold, c.unit.as_deref())
                    )
                });
            format!(
                "{}: {} (target {target}){}",
                c.id,
                c.actual
                    .map(|a| with_unit(a, c.unit.as_deref()))
                    .unwrap_or_else(|| "not measured".into()),
                match c.verdict {
                    crate::review::Verdict::Met => "",
                    crate::review::Verdict::NotMet => " — not met",
                    crate::review::Verdict::Inconclusive => " — inconclusive",
                    crate::review::Verdict::NoData => " — unmeasured",
                }
            )
        })
        .collect();
    let criteria_text: Vec<String> = card
        .success_criteria
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c.description,
                c.comparator.symbol(),
                with_unit(c.threshold, c.unit.as_deref())
            )
        })
        .collect();
    let triggers = if card.rollback.triggers.is_empty() {
        "any success criterion breached, a Sev-1 incident, or a security incident".to_owned()
    } else {
        card.rollback.triggers.join("; ")
    };
    let default_phases = [
        (
            "Power users",
            "50-100 users; validate at small scale, refine on feedback",
            2,
        ),
        (
            "Department",
            "500-1000 users; validate the support model, stress integrations",
            4,
        ),
        (
            "Enterprise",
            "all target users; full production operation",
            6,
        ),
    ];
    let phases: Vec<Phase> = match card.scale.as_ref().filter(|s| !s.phases.is_empty()) {
        Some(s) => s
            .phases
            .iter()
            .enumerate()
            .map(|(i, p)| Phase {
                phase: u32::try_from(i + 1).unwrap_or(u32::MAX),
                name: p.name.clone(),
                scope: p.scope.clone(),
                duration: format!("{} weeks", p.duration_weeks),
                success_criteria: criteria_text.clone(),
                rollback_trigger: triggers.clone(),
            })
            .collect(),
        None => default_phases
            .iter()
            .enumerate()
            .map(|(i, (n, s, w))| Phase {
                phase: u32::try_from(i + 1).unwrap_or(u32::MAX),
                name: (*n).to_owned(),
                scope: (*s).to_owned(),
                duration: format!("{w} weeks"),
                success_criteria: criteria_text.clone(),
                rollback_trigger: triggers.clone(),
            })
            .collect(),
    };
    let scale = card.scale.as_ref();
    let oc = &card.people.on_call;
    let mut risks = vec![
        Risk {
            risk: "Latency and error rates degrade under production volume".into(),
            likelihood: "M".into(),
            impact: "H".into(),
            mitigation: "Phase gates on the success criteria; rollback triggers watched live"
                .into(),
        },
        Risk {
            risk: "Adoption stalls beyond enthusiastic pilot users".into(),
            likelihood: "M".into(),
            impact: "M".into(),
            mitigation: "Communication plan (item 8), training and change champions per phase"
                .into(),
        },
    ];
    for o in &review.open_items {
        risks.push(Risk {
            risk: format!("Open item on checklist item {}: {}", o.item, o.what),
            likelihood: "M".into(),
            impact: if [4, 9].contains(&o.item) {
                "H".into()
            } else {
                "M".into()
            },
            mitigation: format!(
                "{} closes it by {}",
                o.owner.as_deref().unwrap_or("unassigned"),
                o.due
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "unscheduled".into())
            ),
        });
    }
    let success_metrics = card
        .success_criteria
        .iter()
        .map(|c| {
            let r = review.criteria.iter().find(|r| r.id == c.id);
            SuccessMetric {
                metric: c.description.clone(),
                pilot_value: r
                    .and_then(|r| r.actual)
                    .map(|a| with_unit(a, c.unit.as_deref()))
                    .unwrap_or_else(|| "not measured".into()),
                target_at_scale: format!(
                    "{} {}",
                    c.comparator.symbol(),
                    with_unit(c.target_at_scale.unwrap_or(c.threshold), c.unit.as_deref())
                ),
                measurement: r.map(|r| r.metric.clone()).unwrap_or_default(),
            }
        })
        .collect();
    PlanDocument {
        scaling_plan: ScalingPlan {
            initiative: format!("{} ({} v{})", card.name, card.id, card.version),
            review: PlanReview {
                date: review.review_date.to_string(),
                decision: review.decision.outcome.as_str().to_owned(),
                digest: review.digest.clone(),
            },
            pilot_summary: PlanPilotSummary {
                start_date: card.pilot.start.to_string(),
                end_date: card.pilot.end.to_string(),
                scope: card.pilot.scope.clone(),
                users: format!(
                    "{} users ({}); {} telemetry events in the pilot window",
                    card.pilot.cohort_size, card.pilot.cohort, review.pilot.telemetry_rows
                ),
                results,
                success_criteria_met: review.criteria.iter().all(|c| c.met == Some(true)),
            },
            readiness_assessment: review.readiness.clone(),
            scaling_plan: PlanBody {
                target_state: TargetState {
                    users: scale
                        .map(|s| s.target_users.to_string())
                        .unwrap_or_else(|| "not set (card `scale`)".into()),
                    volume: scale
                        .map(|s| s.target_volume.clone())
                        .unwrap_or_else(|| "not set (card `scale`)".into()),
                    timeline: scale
                        .map(|s| s.target_date.to_string())
                        .unwrap_or_else(|| "not set (card `scale`)".into()),
                },
                phases,
                infrastructure: Infrastructure {
                    current: scale
                        .and_then(|s| s.infrastructure_current.clone())
                        .unwrap_or_else(|| "not stated".into()),
                    target: scale
                        .and_then(|s| s.infrastructure_target.clone())
                        .unwrap_or_else(|| "not stated".into()),
                    changes_needed: scale
                        .map(|s| s.infrastructure_changes.clone())
                        .unwrap_or_default(),
                },
                support: Support {
                    model: format!(
                        "{} on-call: primary {}, backup {} via {}",
                        oc.pager.system, oc.primary.name, oc.backup.name, oc.pager.primary_schedule
                    ),
                    resources: format!(
                        "builder {}, CoE lead {}",
                        card.people.builder.name, card.people.coe_lead.name
                    ),
                    escalation: format!(
                        "{} → {} → {} (rollback authority: {})",
                        oc.primary.name,
                        oc.backup.name,
                        card.people.coe_lead.name,
                        card.rollback.decision_authority
                    ),
                },
            },
            risk_mitigation: risks,
            communication: PlanCommunication {
                stakeholders: vec![
                    format!("Executive sponsor ({})", card.people.sponsor.name),
                    format!("{} department", card.department),
                    format!("Pilot cohort ({})", card.pilot.cohort),
                ],
                messaging: format!("{} moves from pilot to production", card.name),
                timeline: format!(
                    "launch {}; post-launch review {}",
                    review.decision.target_launch, review.decision.post_launch_review
                ),
            },
            success_metrics,
            economics: review.economics.clone(),
        },
    }
}
