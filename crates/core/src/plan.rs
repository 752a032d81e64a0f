//! The scaling plan, in seed 000's output format, filled from the card, the review and the
//! telemetry: `scaling_plan` (pilot summary, readiness, target state and phases,
//! infrastructure, support, risks, communication, success metrics), seed 000's
//! `rollback_plan` and `scale_metrics`, and an `economics` section.
//!
//! - **Phases** come from `scale.phases` in the card, or seed 000's "Phased Rollout" pattern
//!   (power users 2 weeks, department 4 weeks, enterprise 6 weeks). Each phase gets its own
//!   go/no-go criteria ([`phase_criteria`]): leading and untagged telemetry criteria measured on
//!   the phase's users (at the pilot threshold, and at `target_at_scale` in the last phase);
//!   lagging, evidence-sourced and baseline/control criteria re-measured once, in the last
//!   phase; and the phase's own purpose from seed 000's pattern (first: validate at small
//!   scale and close the open items; middle: validate the support model and stress the
//!   integrations; last: reach the target state).
//! - **`rollback_plan`** (seed 000 "Rollback Planning"): triggers are the card's rollback
//!   triggers, then each success criterion that can be watched live, turned around ("below
//!   90%"), then the guardrails, then open items not closed in time ([`rollback_triggers`]);
//!   the procedure's `immediate` steps stop the rollout and notify, `if_needed` runs the card's
//!   rollback procedure; the decision authority is the card's; communication names who is told
//!   and through which channel.
//! - **`scale_metrics`** (seed 000 "Success Metrics at Scale"): the criteria grouped as
//!   adoption, performance, quality and value ([`Category::of`]), with active users from the
//!   card's `scale` and the net annual value from the economics.
//! - Values carry their units ([`crate::units`]); money is rounded to cents and months to one
//!   decimal; no person appears twice in the support or escalation chain (one entry per person,
//!   with all their roles).

use crate::card::{AgentCard, Comparator, Criterion, CriterionSource, Indicator};
use crate::economics::{EconomicsResult, Estimate, ImprovementSource};
use crate::metric::MetricKind;
use crate::person::{check_named_person, same_person};
use crate::readiness::{ItemState, Readiness};
use crate::review::{Review, Verdict};
use crate::units::{self, Precision, Shown};
use serde::Serialize;
use stagegate_stats::interval::Target;

/// The document: `scaling_plan:` at the top.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanDocument {
    /// The plan.
    pub scaling_plan: ScalingPlan,
    /// The phases as a rollout `stagegate rollout start` runs
    /// ([`crate::rollout_plan::rollout_section`]), to edit first.
    pub rollout: stagegate_rollout::RolloutPlan,
}

/// Seed 000's `scaling_plan`, with its `rollback_plan` and `scale_metrics`.
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
    /// Seed 000 "Rollback Planning".
    pub rollback_plan: RollbackPlanOut,
    /// Seed 000 "Success Metrics at Scale".
    pub scale_metrics: ScaleMetrics,
    /// Economics, when the card gives inputs: money to cents, months to one decimal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub economics: Option<PlanEconomics>,
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
    /// Key outcomes: each criterion with its actual, in its unit.
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
    /// Duration, in weeks.
    pub duration: String,
    /// This phase's go/no-go criteria ([`phase_criteria`]).
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
    /// Team: each person once, with all their roles.
    pub resources: String,
    /// Escalation path: each person once, in order of escalation.
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
    /// Schedule: the drafted communications by date, then launch and post-launch review.
    pub timeline: String,
}

/// A success metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuccessMetric {
    /// Metric.
    pub metric: String,
    /// Pilot value, in its unit.
    pub pilot_value: String,
    /// Target at scale, in its unit.
    pub target_at_scale: String,
    /// How tracked.
    pub measurement: String,
}

/// Seed 000 `rollback_plan`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackPlanOut {
    /// Conditions that trigger a rollback ([`rollback_triggers`]).
    pub triggers: Vec<String>,
    /// What to do.
    pub procedure: RollbackProcedure,
    /// Who decides to roll back (the card's `rollback.decision_authority`).
    pub decision_authority: String,
    /// Who is told, through what.
    pub communication: RollbackCommunication,
}

/// Seed 000 `rollback_plan.procedure`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackProcedure {
    /// At once: stop the rollout, notify.
    pub immediate: Vec<String>,
    /// When stopping the rollout is not enough: the card's rollback procedure, in-flight
    /// handling, documentation and remediation.
    pub if_needed: Vec<String>,
}

/// Seed 000 `rollback_plan.communication`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackCommunication {
    /// Inside the organisation: who tells whom.
    pub internal: String,
    /// To the agent's users.
    pub users: String,
}

/// Seed 000 `scale_metrics`: four groups of metrics with targets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleMetrics {
    /// Active users and adoption rate.
    pub adoption: Vec<ScaleMetric>,
    /// Latency, throughput.
    pub performance: Vec<ScaleMetric>,
    /// Acceptance, errors, incidents.
    pub quality: Vec<ScaleMetric>,
    /// Time and money saved.
    pub value: Vec<ScaleMetric>,
}

/// One metric at scale.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleMetric {
    /// The metric.
    pub metric: String,
    /// Target at scale, in its unit.
    pub target: String,
    /// How it is tracked.
    pub measurement: String,
}

/// A money or months figure and its conservative counterpart (from the least favourable end
/// of the improvement's interval), as text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Range {
    /// At the point estimate.
    pub point: String,
    /// At the conservative bound, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conservative: Option<String>,
}

/// Economics for the plan: money in USD to cents, months to one decimal, the improvement as
/// a percentage (issue "main job" §10).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanEconomics {
    /// Share of baseline minutes saved, e.g. `28.37%`.
    pub improvement: Option<Range>,
    /// Where the improvement came from.
    pub improvement_source: String,
    /// Annual value, per year.
    pub annual_value: Option<Range>,
    /// Annual run cost.
    pub annual_run_cost: String,
    /// Net annual value (negative: a loss).
    pub net_annual: Option<Range>,
    /// One-off costs to reach production.
    pub one_off_costs: String,
    /// Months until the one-off costs are paid back; "never (net ≤ 0)" when they are not.
    pub payback_months: Option<Range>,
    /// The loss sentence, when the net is a loss at either estimate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<String>,
}

/// How a criterion's numbers are shown: a difference of two rates in percentage points,
/// otherwise its card unit ([`crate::units`]).
pub fn shown(c: &Criterion) -> Shown {
    let absolute_rate_difference = c.unit.as_deref() == Some("ratio")
        && c.compare
            .as_ref()
            .is_some_and(|k| k.effect == crate::card::EffectScale::Absolute);
    if absolute_rate_difference {
        Shown::PercentPoints
    } else {
        Shown::of(c.unit.as_deref(), c.threshold)
    }
}

/// What a criterion must show, in its unit: `≥ 90%`, `< 20 s`, `≤ 0.5 pp (non-inferiority,
/// margin included)`, `within [-0.1, 0.1] points (equivalence)`. `value` replaces the
/// threshold (a `target_at_scale`) when given.
pub fn target_phrase(c: &Criterion, value: Option<f64>) -> String {
    let u = shown(c);
    let q = |v: f64| u.fmt(v, Precision::Full);
    let sign = units::comparator_sign(c.comparator.symbol());
    if let Some(v) = value {
        return format!("{sign} {}", q(v));
    }
    match (c.target(), c.hypothesis()) {
        (Target::Band(lo, hi), _) => format!("within [{}, {}] (equivalence)", q(lo), q(hi)),
        (Target::Limit(t), crate::card::Hypothesis::NonInferiority) => {
            format!("{sign} {} (non-inferiority, margin included)", q(t))
        }
        (Target::Limit(t), _) => format!("{sign} {}", q(t)),
    }
}

/// A criterion's threshold turned around into a rollback trigger (seed 000's "Error rate
/// exceeds 5%"): `≥ 90%` becomes "below 90%", `< 20 s` "at or above 20 s", a count `== 0`
/// "1 or more".
pub fn breach_phrase(c: &Criterion, value: f64) -> String {
    let q = shown(c).fmt(value, Precision::Full);
    match c.comparator {
        Comparator::Ge => format!("below {q}"),
        Comparator::Gt => format!("at or below {q}"),
        Comparator::Le => format!("above {q}"),
        Comparator::Lt => format!("at or above {q}"),
        Comparator::Eq if value == 0.0 && c.unit.as_deref() == Some("count") => "1 or more".into(),
        Comparator::Eq => format!("other than {q}"),
    }
}

/// Whether a criterion can be watched live during the rollout: measured from telemetry, on
/// its own (not against a baseline period or control cohort, which needs a finished window),
/// not a lagging indicator (value and satisfaction move late) and not adoption (low adoption
/// calls for change management, not a rollback).
pub fn watchable(c: &Criterion) -> bool {
    c.source == CriterionSource::Telemetry
        && c.compare.is_none()
        && c.indicator != Some(Indicator::Lagging)
        && !c
            .metric
            .as_ref()
            .is_some_and(|m| matches!(m.kind, MetricKind::Adoption | MetricKind::Distinct))
}

/// Seed 000's groups of metrics at scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Adoption: distinct users, adoption rate.
    Adoption,
    /// Performance: latency (quantiles, time units), throughput (per-period counts).
    Performance,
    /// Quality: rates, incident counts, ratios — everything else.
    Quality,
    /// Value: evidence-sourced (time studies), baseline/control comparisons, the economics
    /// criterion, money.
    Value,
}

impl Category {
    /// The group of criterion `c`; `economics_criterion` is `economics.improvement_criterion`.
    /// Checked in this order: adoption (adoption or distinct metrics); value (evidence
    /// source, a comparison, the economics criterion, a currency unit); performance (a
    /// quantile, a time unit, a per-period metric); quality (the rest).
    pub fn of(c: &Criterion, economics_criterion: Option<&str>) -> Category {
        let kind = c.metric.as_ref().map(|m| m.kind);
        if matches!(kind, Some(MetricKind::Adoption | MetricKind::Distinct)) {
            return Category::Adoption;
        }
        if c.source == CriterionSource::Evidence
            || c.compare.is_some()
            || economics_criterion == Some(c.id.as_str())
            || matches!(shown(c), Shown::Money(_))
        {
            return Category::Value;
        }
        let time_unit = matches!(
            c.unit.as_deref(),
            Some("ms" | "s" | "sec" | "seconds" | "min" | "minutes")
        );
        if kind == Some(MetricKind::Quantile)
            || time_unit
            || c.metric.as_ref().is_some_and(|m| m.per.is_some())
        {
            return Category::Performance;
        }
        Category::Quality
    }
}

/// People in a chain, each once with all their roles, in order of first appearance:
/// `Mike Chen (on-call primary) → Morteza Moradi (on-call backup, CoE lead)`.
fn people_chain(entries: &[(&str, &str)]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (name, role) in entries {
        if name.trim().is_empty() {
            continue;
        }
        match out.iter_mut().find(|(n, _)| same_person(n, name)) {
            Some((_, roles)) => {
                if !roles.iter().any(|r| r == role) {
                    roles.push((*role).to_owned());
                }
            }
            None => out.push(((*name).to_owned(), vec![(*role).to_owned()])),
        }
    }
    out
}

fn chain_text(chain: &[(String, Vec<String>)], sep: &str) -> String {
    chain
        .iter()
        .map(|(n, roles)| format!("{n} ({})", roles.join(", ")))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The rollback triggers (seed 000 `rollback_plan.triggers`), in this order, without
/// duplicates: the card's `rollback.triggers` as written; each [`watchable`] criterion's
/// threshold (its `target_at_scale` when set) turned around ([`breach_phrase`]) in any week;
/// a security incident or a runtime guardrail that stops firing (Agent Card §6); each counted
/// open item not closed by its due date (seed 001: "Open items must close within 14 days
/// post-launch").
pub fn rollback_triggers(card: &AgentCard, review: &Review) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !out.iter().any(|t| t.eq_ignore_ascii_case(&s)) {
            out.push(s);
        }
    };
    for t in &card.rollback.triggers {
        push(t.clone());
    }
    for c in card.success_criteria.iter().filter(|c| watchable(c)) {
        push(format!(
            "{}: {} in any week (success criterion `{}`)",
            c.description,
            breach_phrase(c, c.target_at_scale.unwrap_or(c.threshold)),
            c.id
        ));
    }
    let guardrails: Vec<&str> = card.guardrails.iter().map(|g| g.id.as_str()).collect();
    if guardrails.is_empty() {
        push("Security incident".into());
    } else {
        push(format!(
            "Security incident, or a runtime guardrail ({}) not firing on a triggering input",
            guardrails.join(", ")
        ));
    }
    for o in review.open_items.iter().filter(|o| o.problems.is_empty()) {
        if let (Some(owner), Some(due)) = (&o.owner, o.due) {
            push(format!(
                "Open item on checklist item {} not closed by {due} ({owner}): {}",
                o.item, o.what
            ));
        }
    }
    out
}

/// Communication channels drafted and scheduled for the launch (valid `communication`
/// records), as `(date, channel, audience)`, sorted by date then channel.
fn launch_channels(review: &Review) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = review
        .evidence
        .iter()
        .filter(|e| e.validity == crate::evidence::Validity::Valid)
        .filter_map(|e| e.communication.as_ref())
        .filter(|c| c.drafted)
        .filter_map(|c| {
            c.scheduled_for
                .map(|d| (d.to_string(), c.channel.clone(), c.audience.clone()))
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

fn rollback_plan(card: &AgentCard, review: &Review) -> RollbackPlanOut {
    let p = &card.people;
    let oc = &p.on_call;
    let rb = &card.rollback;
    let notify = people_chain(&[
        (
            rb.decision_authority.as_str(),
            "rollback decision authority",
        ),
        (oc.primary.name.as_str(), "on-call primary"),
        (oc.backup.name.as_str(), "on-call backup"),
        (p.coe_lead.name.as_str(), "CoE lead"),
        (p.sponsor.name.as_str(), "sponsor"),
    ]);
    let mut immediate = vec![
        "Stop the rollout to new users: hold the current phase".to_owned(),
        format!("Notify {}", chain_text(&notify, ", ")),
    ];
    if rb.procedure.is_empty() {
        immediate.push(format!(
            "Flip the {} flag {} to off",
            rb.kill_switch.provider, rb.kill_switch.flag
        ));
    }
    let mut if_needed: Vec<String> = rb.procedure.clone();
    if_needed.push(format!("In-flight work: {}", rb.in_flight));
    if_needed.push("Document the issue and what triggered the rollback".into());
    if_needed.push(format!(
        "Plan remediation with the builder {} before resuming the rollout",
        p.builder.name
    ));
    let told = people_chain(&[
        (p.sponsor.name.as_str(), "sponsor"),
        (p.coe_lead.name.as_str(), "CoE lead"),
        (p.builder.name.as_str(), "builder"),
    ]);
    let told: Vec<(String, Vec<String>)> = told
        .into_iter()
        .filter(|(n, _)| !same_person(n, &rb.decision_authority))
        .collect();
    let escalation = people_chain(&[
        (oc.primary.name.as_str(), "on-call primary"),
        (oc.backup.name.as_str(), "on-call backup"),
        (
            rb.decision_authority.as_str(),
            "rollback decision authority",
        ),
    ]);
    let internal = format!(
        "{} through {} ({} / {}); the rollback decision authority tells {}",
        chain_text(&escalation, " → "),
        oc.pager.system,
        oc.pager.primary_schedule,
        oc.pager.backup_schedule,
        if told.is_empty() {
            "the stakeholders".to_owned()
        } else {
            chain_text(&told, ", ")
        }
    );
    let channels = launch_channels(review);
    let users = match channels.first() {
        Some((first, _, _)) => {
            let launch: Vec<String> = channels
                .iter()
                .filter(|(d, _, _)| d == first)
                .map(|(_, ch, aud)| format!("{ch} to {aud}"))
                .collect();
            format!(
                "Users in the current phase are told through {} — where the launch was announced — to return to the process they used before the agent; in-flight work: {}",
                launch.join(", "),
                rb.in_flight
            )
        }
        None => format!(
            "Users in the current phase are told to return to the process they used before the agent (no launch channel is recorded under item 8); in-flight work: {}",
            rb.in_flight
        ),
    };
    RollbackPlanOut {
        triggers: rollback_triggers(card, review),
        procedure: RollbackProcedure {
            immediate,
            if_needed,
        },
        decision_authority: rb.decision_authority.clone(),
        communication: RollbackCommunication { internal, users },
    }
}

/// How a criterion is tracked: its metric, or for an evidence-sourced one the method of the
/// record that measured it.
fn measurement(c: &Criterion, review: &Review) -> String {
    let r = review.criteria.iter().find(|r| r.id == c.id);
    match c.source {
        CriterionSource::Evidence => format!(
            "evidence record{}",
            r.and_then(|r| r.note.as_deref())
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        ),
        CriterionSource::Telemetry => r
            .map(|r| format!("{} from telemetry", r.metric))
            .unwrap_or_else(|| "telemetry".into()),
    }
}

fn scale_metrics(card: &AgentCard, review: &Review) -> ScaleMetrics {
    let econ = card
        .economics
        .as_ref()
        .and_then(|e| e.improvement_criterion.as_deref());
    let mut m = ScaleMetrics {
        adoption: Vec::new(),
        performance: Vec::new(),
        quality: Vec::new(),
        value: Vec::new(),
    };
    if let Some(s) = &card.scale {
        let tracked = card
            .telemetry
            .as_ref()
            .is_some_and(|t| t.columns.contains_key("user"));
        m.adoption.push(ScaleMetric {
            metric: "Active users".into(),
            target: format!("{} users by {}", s.target_users, s.target_date),
            measurement: if tracked {
                "distinct(user) from telemetry".into()
            } else {
                "not tracked: the card maps no `user` role".into()
            },
        });
    }
    for c in &card.success_criteria {
        let entry = ScaleMetric {
            metric: c.description.clone(),
            target: target_phrase(c, c.target_at_scale),
            measurement: measurement(c, review),
        };
        match Category::of(c, econ) {
            Category::Adoption => m.adoption.push(entry),
            Category::Performance => m.performance.push(entry),
            Category::Quality => m.quality.push(entry),
            Category::Value => m.value.push(entry),
        }
    }
    if let (Some(e), Some(inputs)) = (&review.economics, &card.economics)
        && let Some(net) = &e.net_annual_usd
    {
        m.value.push(ScaleMetric {
            metric: "Net annual value".into(),
            target: format!("{} per year (> $0.00)", range_usd(net).text()),
            measurement: format!(
                "{} units/month × 12 × {} baseline min × {} per min × improvement − {} run cost",
                units::compact(inputs.volume_per_month),
                units::compact(inputs.baseline_minutes_per_unit),
                units::usd(inputs.cost_per_minute_usd),
                units::usd(inputs.annual_run_cost_usd)
            ),
        });
    }
    m
}

impl Range {
    fn text(&self) -> String {
        match &self.conservative {
            Some(c) if c != &self.point => format!("{} (conservatively {c})", self.point),
            _ => self.point.clone(),
        }
    }
}

fn range_usd(e: &Estimate) -> Range {
    Range {
        point: units::usd(e.point),
        conservative: e.conservative.map(units::usd),
    }
}

fn plan_economics(e: &EconomicsResult) -> PlanEconomics {
    let pct = |x: f64| Shown::Percent.fmt(x, Precision::Full);
    let months = |m: Option<f64>| {
        m.map(units::months)
            .unwrap_or_else(|| "never (net ≤ 0)".into())
    };
    PlanEconomics {
        improvement: e.improvement.map(|i| Range {
            point: pct(i.point),
            conservative: i.conservative.map(pct),
        }),
        improvement_source: match &e.improvement_source {
            ImprovementSource::Measured { criterion, basis } => {
                format!("measured by `{criterion}`: {basis}")
            }
            ImprovementSource::Declared => "declared in the card (economics.improvement)".into(),
            ImprovementSource::Unmeasured { criterion } => {
                format!("`{criterion}` has no measured value; value not computed")
            }
            ImprovementSource::Implausible {
                criterion,
                improvement,
            } => format!(
                "`{criterion}` gives {} of the baseline minutes — more than all of them; value not computed",
                pct(*improvement)
            ),
        },
        annual_value: e.annual_value_usd.as_ref().map(range_usd),
        annual_run_cost: units::usd(e.annual_run_cost_usd),
        net_annual: e.net_annual_usd.as_ref().map(range_usd),
        one_off_costs: units::usd(e.one_off_costs_usd),
        payback_months: e.net_annual_usd.as_ref().map(|n| Range {
            point: months(e.payback_months),
            conservative: n
                .conservative
                .map(|_| months(e.payback_months_conservative)),
        }),
        loss: e.loss.clone(),
    }
}

/// A phase of the rollout as [`phase_criteria`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct PhaseSlot<'a> {
    /// 0-based position.
    pub index: usize,
    /// Number of phases.
    pub count: usize,
    /// Who is included.
    pub scope: &'a str,
    /// Weeks.
    pub weeks: u32,
}

/// One phase's go/no-go criteria (seed 000 "Phases defined with criteria"; "Each phase
/// success criteria met"), its own and not a copy of the pilot's:
///
/// - every phase: each leading or untagged telemetry criterion measured on the phase's users
///   over its weeks — at the pilot threshold, and at `target_at_scale` in the last phase;
///   adoption measured against the phase's scope;
/// - first phase (seed 000 "Validate at small scale; refine based on feedback"): feedback
///   reviewed by the builder; every counted open item closed by its owner and date; every
///   readiness item still needing work done;
/// - second phase, or the only one (seed 000 "Validate support model; stress test
///   integrations"): the infrastructure changes in place; the on-call handling the phase's
///   volume;
/// - last phase (seed 000 "Full production operation; steady state"): lagging,
///   evidence-sourced and baseline/control criteria re-measured on the scaled population;
///   the target state reached.
pub fn phase_criteria(card: &AgentCard, review: &Review, slot: PhaseSlot<'_>) -> Vec<String> {
    let last = slot.index + 1 == slot.count;
    let mut out = Vec::new();
    for c in &card.success_criteria {
        let every_phase = c.source == CriterionSource::Telemetry
            && c.compare.is_none()
            && c.indicator != Some(Indicator::Lagging);
        let at = if last { c.target_at_scale } else { None };
        let is_adoption = c
            .metric
            .as_ref()
            .is_some_and(|m| m.kind == MetricKind::Adoption);
        if every_phase && is_adoption {
            out.push(format!(
                "{}: {} of this phase's users ({}) active",
                c.id,
                target_phrase(c, at),
                slot.scope
            ));
        } else if every_phase {
            out.push(format!(
                "{}: {} {} over the phase's {} weeks",
                c.id,
                c.description,
                target_phrase(c, at),
                slot.weeks
            ));
        } else if last {
            let how = match (c.source, &c.compare) {
                (CriterionSource::Evidence, _) => {
                    "re-measured by a new study on the scaled population"
                }
                (_, Some(_)) => {
                    "re-measured on the scaled population against its own pre-rollout baseline"
                }
                _ => "re-measured at the end of the rollout (lagging indicator)",
            };
            out.push(format!(
                "{}: {} {} — {how}",
                c.id,
                c.description,
                target_phrase(c, c.target_at_scale)
            ));
        }
    }
    let oc = &card.people.on_call;
    if slot.index == 0 {
        if slot.count > 1 {
            out.push(format!(
                "Feedback from {} reviewed by {} and fixes shipped before phase 2",
                slot.scope, card.people.builder.name
            ));
        }
        for o in review.open_items.iter().filter(|o| o.problems.is_empty()) {
            out.push(format!(
                "Open item on checklist item {} closed by {} ({}): {}",
                o.item,
                o.due.map(|d| d.to_string()).unwrap_or_default(),
                o.owner.as_deref().unwrap_or_default(),
                o.what
            ));
        }
        for d in &review.readiness.dimensions {
            for i in d.items.iter().filter(|i| i.status != ItemState::Pass) {
                out.push(format!(
                    "{} readiness: {} ({})",
                    d.dimension.as_str(),
                    i.item,
                    i.status.as_str()
                ));
            }
        }
    }
    if slot.index == 1 || slot.count == 1 {
        if let Some(s) = &card.scale {
            for ch in &s.infrastructure_changes {
                out.push(format!("In place before this phase's users start: {ch}"));
            }
        }
        let chain = people_chain(&[
            (oc.primary.name.as_str(), "primary"),
            (oc.backup.name.as_str(), "backup"),
        ]);
        out.push(format!(
            "Support model holds at this phase's volume: every {} page answered by {}",
            oc.pager.system,
            chain_text(&chain, " or ")
        ));
    }
    if last && let Some(s) = &card.scale {
        out.push(format!(
            "Target state reached: {} users, {}, by {}",
            s.target_users, s.target_volume, s.target_date
        ));
    }
    out
}

/// Builds the plan from the card and its review.
pub fn build(card: &AgentCard, review: &Review) -> PlanDocument {
    let results = card
        .success_criteria
        .iter()
        .filter_map(|c| {
            review
                .criteria
                .iter()
                .find(|r| r.id == c.id)
                .map(|r| (c, r))
        })
        .map(|(c, r)| {
            format!(
                "{}: {} (target {}){}",
                c.id,
                r.actual
                    .map(|a| shown(c).fmt(a, Precision::Full))
                    .unwrap_or_else(|| "not measured".into()),
                target_phrase(c, None),
                match r.verdict {
                    Verdict::Met => "",
                    Verdict::NotMet => " — not met",
                    Verdict::Inconclusive => " — inconclusive",
                    Verdict::NoData => " — unmeasured",
                }
            )
        })
        .collect();
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
    let specs: Vec<(String, String, u32)> =
        match card.scale.as_ref().filter(|s| !s.phases.is_empty()) {
            Some(s) => s
                .phases
                .iter()
                .map(|p| (p.name.clone(), p.scope.clone(), p.duration_weeks))
                .collect(),
            None => default_phases
                .iter()
                .map(|(n, s, w)| ((*n).to_owned(), (*s).to_owned(), *w))
                .collect(),
        };
    let phases: Vec<Phase> = specs
        .iter()
        .enumerate()
        .map(|(i, (name, scope, weeks))| Phase {
            phase: u32::try_from(i + 1).unwrap_or(u32::MAX),
            name: name.clone(),
            scope: scope.clone(),
            duration: format!("{weeks} weeks"),
            success_criteria: phase_criteria(
                card,
                review,
                PhaseSlot {
                    index: i,
                    count: specs.len(),
                    scope,
                    weeks: *weeks,
                },
            ),
            rollback_trigger: format!(
                "any of rollback_plan.triggers during the phase ({} decides), or a criterion above missed at the end of week {weeks}",
                card.rollback.decision_authority
            ),
        })
        .collect();
    let scale = card.scale.as_ref();
    let p = &card.people;
    let oc = &p.on_call;
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
                    .map(|a| shown(c).fmt(a, Precision::Full))
                    .unwrap_or_else(|| "not measured".into()),
                target_at_scale: target_phrase(c, c.target_at_scale),
                measurement: measurement(c, review),
            }
        })
        .collect();
    let resources = people_chain(&[
        (p.builder.name.as_str(), "builder"),
        (p.coe_lead.name.as_str(), "CoE lead"),
        (oc.primary.name.as_str(), "on-call primary"),
        (oc.backup.name.as_str(), "on-call backup"),
    ]);
    // Escalation runs from whoever is paged to whoever can accept the risk; a person who
    // holds several of these roles appears once, at their first step, with every role.
    let mut escalation_steps = vec![
        (oc.primary.name.as_str(), "on-call primary"),
        (oc.backup.name.as_str(), "on-call backup"),
    ];
    if check_named_person(&card.rollback.decision_authority).is_ok() {
        escalation_steps.push((
            card.rollback.decision_authority.as_str(),
            "rollback authority",
        ));
    }
    escalation_steps.push((p.coe_lead.name.as_str(), "CoE lead"));
    escalation_steps.push((p.sponsor.name.as_str(), "sponsor"));
    let escalation = people_chain(&escalation_steps);
    let mut timeline: Vec<String> = launch_channels(review)
        .into_iter()
        .map(|(d, ch, _)| format!("{ch} {d}"))
        .collect();
    timeline.push(format!("launch {}", review.decision.target_launch));
    timeline.push(format!(
        "post-launch review {}",
        review.decision.post_launch_review
    ));
    let rollout = crate::rollout_plan::rollout_section(
        card,
        &specs
            .iter()
            .map(|(n, _, w)| (n.clone(), *w))
            .collect::<Vec<_>>(),
    );
    PlanDocument {
        rollout,
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
                        "{} on-call: primary {} ({}), backup {} ({}){}",
                        oc.pager.system,
                        oc.primary.name,
                        oc.pager.primary_schedule,
                        oc.backup.name,
                        oc.pager.backup_schedule,
                        oc.weekend_coverage
                            .as_deref()
                            .map(|w| format!("; weekend: {w}"))
                            .unwrap_or_default()
                    ),
                    resources: chain_text(&resources, ", "),
                    escalation: chain_text(&escalation, " → "),
                },
            },
            risk_mitigation: risks,
            communication: PlanCommunication {
                stakeholders: vec![
                    format!("Executive sponsor ({})", p.sponsor.name),
                    format!("{} department", card.department),
                    format!("Pilot cohort ({})", card.pilot.cohort),
                ],
                messaging: format!("{} moves from pilot to production", card.name),
                timeline: timeline.join("; "),
            },
            success_metrics,
            rollback_plan: rollback_plan(card, review),
            scale_metrics: scale_metrics(card, review),
            economics: review.economics.as_ref().map(plan_economics),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_appears_once_with_all_roles() {
        let chain = people_chain(&[
            ("Mike Chen", "on-call primary"),
            ("Morteza Moradi", "on-call backup"),
            ("morteza  moradi", "CoE lead"),
            ("Hannah Okafor", "sponsor"),
            ("Mike Chen", "on-call primary"),
        ]);
        let names: Vec<&str> = chain.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Mike Chen", "Morteza Moradi", "Hannah Okafor"]);
        assert_eq!(chain[1].1, ["on-call backup", "CoE lead"]);
        assert_eq!(chain[0].1.len(), 1, "a repeated role is not listed twice");
    }
}
