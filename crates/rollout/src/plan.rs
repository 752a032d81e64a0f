//! The rollout plan as data: the `rollout:` section `stagegate plan` writes and people edit.
//!
//! ```yaml
//! rollout:
//!   flag: support-chat-assistant-enabled   # the OpenFeature flag the agent is behind
//!   alpha: 0.05                            # false-alarm budget of the whole rollout
//!   phases:
//!     - { name: Power users, traffic_pct: 25, min_duration: 2 weeks, min_sample: 1000 }
//!     - { name: Support department, cohorts: { department: [support] }, min_duration: 4 weeks }
//!     - { name: Everyone, traffic_pct: 100, min_duration: 6 weeks, advance: manual }
//!   triggers:
//!     - id: cost_vs_control
//!       description: Cost per request more than 10% above the control
//!       metric: { kind: mean, of: [{ field: gen_ai.usage.input_tokens, weight: 0.0000025 },
//!                                  { field: gen_ai.usage.output_tokens, weight: 0.00001 }] }
//!       comparator: ">"
//!       threshold: 10
//!       relative_to: control
//!       on_fail: previous_phase
//! ```
//!
//! Phases follow seed 000 "Phased Rollout" (a traffic percentage or named cohorts, a duration,
//! go/no-go criteria) and seed 004's rollout paths (limited groups, department by department);
//! triggers follow seed 000 "Rollback Planning" ("handle time +5% over baseline", "compliance
//! errors > 3%"), either absolute or relative to the baseline or to the control (the traffic
//! outside the phase). Fields are OTLP span fields and attributes as
//! `stagegate_telemetry::otlp` names them (`span.duration_ms`, `gen_ai.usage.output_tokens`,
//! `error.type`); `stagegate plan` resolves the card's roles to them.

use jiff::{Span, SpanRelativeTo, Unit};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `rollout:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutPlan {
    /// The OpenFeature flag key the agent is served behind (the card's
    /// `rollback.kill_switch.flag`).
    pub flag: String,
    /// The false-alarm budget of the whole rollout, in (0, 0.5]: the chance that a healthy
    /// agent is ever rolled back, or that a harmful one advances a phase. It is split evenly
    /// over the (phase, trigger) pairs that can be judged (Bonferroni;
    /// [`RolloutPlan::alpha_per_judgement`]). Default 0.05.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// The phases, in order (at least one).
    pub phases: Vec<RolloutPhase>,
    /// Rollback triggers, judged live in every phase they apply to.
    #[serde(default)]
    pub triggers: Vec<RollbackTrigger>,
}

fn default_alpha() -> f64 {
    0.05
}

/// One phase: who gets the agent, for how long at least, and on how many events at least.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutPhase {
    /// Name, e.g. "Power users".
    pub name: String,
    /// Share of targeting keys that get the agent, in % (0 < p ≤ 100), assigned by flagd's
    /// fractional bucketing so a user stays in as the share grows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_pct: Option<f64>,
    /// Named cohorts instead: evaluation-context attribute → the values that get the agent
    /// (e.g. `department: [support, sales]`). Cohorts carry over to later cohort phases only
    /// when listed again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cohorts: BTreeMap<String, Vec<String>>,
    /// Shortest time in the phase before go/no-go: a friendly or ISO 8601 span ("2 weeks",
    /// "15m", "P2W"); days are 24 hours.
    pub min_duration: Duration,
    /// Fewest treatment events before go/no-go (default 0: time alone).
    #[serde(default)]
    pub min_sample: u64,
    /// `auto`: advance when every trigger has passed at the end of the window; `manual`
    /// (default): wait for a person's go.
    #[serde(default)]
    pub advance: Advance,
    /// The phase's go/no-go criteria in words (from `stagegate plan`), for the people who
    /// decide; the machine judges the triggers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub go_no_go: Vec<String>,
}

/// Who advances a phase whose window ended with every trigger passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Advance {
    /// The controller.
    Auto,
    /// A person (`stagegate rollout advance`).
    #[default]
    Manual,
}

/// A rollback trigger (seed 000 "Rollback Planning").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackTrigger {
    /// Identifier, unique in the plan.
    pub id: String,
    /// What it watches, in words.
    #[serde(default)]
    pub description: String,
    /// The per-event value watched.
    pub metric: TriggerMetric,
    /// `>` or `>=`: bad when the metric is above the limit; `<` or `<=`: below.
    pub comparator: Comparator,
    /// The limit: in the metric's unit when absolute; in % of the reference when relative
    /// (`threshold: 5, relative_to: baseline` = "more than 5% over the baseline").
    pub threshold: f64,
    /// Absent: absolute. `control`: the traffic outside the phase, at the same time.
    /// `baseline`: the fixed value `baseline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_to: Option<Reference>,
    /// The baseline value (metric's unit) when `relative_to: baseline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// Where a Failed trigger sends the rollout: the previous phase (default; 0% from the
    /// first) or 0% at once.
    #[serde(default)]
    pub on_fail: OnFail,
    /// Treatment events before the trigger may fail (default 100): the asymptotic sequence is
    /// not trusted on fewer.
    #[serde(default = "default_burn_in")]
    pub burn_in: u64,
    /// How soon after a regression starts the plan expects the rollback ("15m"); reported
    /// beside each judgement, used by the simulation to check the plan's promise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_budget: Option<Duration>,
    /// The phases (by name) it is judged in; empty: every phase. A baseline comparison is
    /// typically kept for the phase without a control (100%): where a control runs beside the
    /// agent, it already absorbs the traffic's own drift, which a fixed baseline does not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<String>,
}

impl RollbackTrigger {
    /// Whether the trigger can be judged in `phase`: listed (or no list), and, against the
    /// control, a percentage strictly between 0 and 100.
    pub fn applies_in(&self, phase: &RolloutPhase) -> bool {
        let listed = self.phases.is_empty() || self.phases.contains(&phase.name);
        let control_ok = self.relative_to != Some(Reference::Control)
            || phase.share().is_some_and(|p| p > 0.0 && p < 1.0);
        listed && control_ok
    }
}

fn default_burn_in() -> u64 {
    100
}

/// The per-event value a trigger watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerMetric {
    /// The mean of Σ weight × field per event (one field with weight 1 for a plain mean; the
    /// Azure example's cost is 2.5e-6 × input tokens + 1e-5 × output tokens).
    Mean {
        /// The weighted fields; an event missing one is not counted.
        of: Vec<WeightedField>,
    },
    /// The share of events whose field is set: true, non-zero, a non-empty string other than
    /// `ok`/`unset` (so `error.type` and `span.status_code` = `error` count as errors).
    Rate {
        /// The field.
        field: String,
    },
}

/// One term of a [`TriggerMetric::Mean`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightedField {
    /// Span field or attribute.
    pub field: String,
    /// Its weight (default 1).
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

impl TriggerMetric {
    /// The fields the metric reads, sorted, without repeats.
    pub fn fields(&self) -> Vec<&str> {
        let mut v: Vec<&str> = match self {
            TriggerMetric::Mean { of } => of.iter().map(|w| w.field.as_str()).collect(),
            TriggerMetric::Rate { field } => vec![field.as_str()],
        };
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Direction of harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Comparator {
    /// Bad above.
    #[serde(rename = ">")]
    Above,
    /// Bad at or above (judged as above: a continuous limit).
    #[serde(rename = ">=")]
    AtOrAbove,
    /// Bad below.
    #[serde(rename = "<")]
    Below,
    /// Bad at or below.
    #[serde(rename = "<=")]
    AtOrBelow,
}

impl Comparator {
    /// +1 when bad is above, −1 when below.
    pub fn sign(self) -> f64 {
        match self {
            Comparator::Above | Comparator::AtOrAbove => 1.0,
            Comparator::Below | Comparator::AtOrBelow => -1.0,
        }
    }
}

/// What a relative threshold is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    /// Traffic outside the phase, randomised by the same bucketing (percentage phases only).
    Control,
    /// The trigger's fixed `baseline`.
    Baseline,
}

/// Where a failed trigger sends the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFail {
    /// One phase back (0% from the first phase).
    #[default]
    PreviousPhase,
    /// 0% at once.
    Zero,
}

/// A plan that breaks a rule; `field` is the path in the plan (`phases[1].traffic_pct`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PlanError {
    /// Field path.
    pub field: String,
    /// What is wrong, and what would be right.
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError {
        field: field.into(),
        message: message.into(),
    }
}

impl RolloutPhase {
    /// The shortest duration in seconds (days counted as 24 hours).
    ///
    /// # Errors
    /// A span with months or years, which have no fixed length.
    pub fn min_duration_seconds(&self) -> Result<i64, PlanError> {
        Ok(self.min_duration.seconds)
    }

    /// The share of targeting keys in the phase, in [0, 1], when it is a percentage phase.
    pub fn share(&self) -> Option<f64> {
        self.traffic_pct.map(|p| p / 100.0)
    }
}

/// A duration as written in the plan ("2 weeks", "15m", "P2W": jiff's friendly or ISO 8601
/// span format), kept as written and in whole seconds (days as 24 hours). Months and years,
/// which have no fixed length, are refused when the plan is read.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[schemars(with = "String")]
pub struct Duration {
    /// As written.
    pub text: String,
    /// In seconds.
    pub seconds: i64,
}

impl std::str::FromStr for Duration {
    type Err = String;
    fn from_str(text: &str) -> Result<Duration, String> {
        let span: Span = text.parse().map_err(|e| {
            format!("{text:?} is not a duration like \"2 weeks\", \"15m\" or \"P2W\": {e}")
        })?;
        let total = span
            .total((Unit::Second, SpanRelativeTo::days_are_24_hours()))
            .map_err(|_| {
                format!("{text:?}: give weeks, days, hours or minutes, not months or years")
            })?;
        if !total.is_finite() || total < 0.0 {
            return Err(format!("{text:?}: a duration is zero or more"));
        }
        Ok(Duration {
            text: text.to_owned(),
            seconds: total as i64,
        })
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl RolloutPlan {
    /// Checks the plan's rules.
    ///
    /// # Errors
    /// The first broken rule, naming its field: no phases; α outside (0, 0.5]; a phase with
    /// both or neither of `traffic_pct` and `cohorts`; a percentage outside (0, 100] or lower
    /// than the phase before; an empty cohort; a negative or month-long duration; a duplicate
    /// or empty trigger id; a mean with no field or a non-finite weight; a relative threshold
    /// that is not positive; a baseline missing or present where it does not belong; a trigger
    /// relative to the control judged in a cohort phase — every phase when it lists none
    /// (cohorts are not randomised: no control to compare with); an empty flag key.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.flag.trim().is_empty() {
            return Err(err("flag", "name the flag the agent is served behind"));
        }
        if !(self.alpha > 0.0 && self.alpha <= 0.5) {
            return Err(err("alpha", format!("{} is not in (0, 0.5]", self.alpha)));
        }
        if self.phases.is_empty() {
            return Err(err("phases", "give at least one phase"));
        }
        let mut last_pct = 0.0;
        let mut any_cohorts = false;
        for (i, p) in self.phases.iter().enumerate() {
            let f = |name: &str| format!("phases[{i}].{name}");
            if p.name.trim().is_empty() {
                return Err(err(f("name"), "give the phase a name"));
            }
            match (p.traffic_pct, p.cohorts.is_empty()) {
                (Some(_), false) => {
                    return Err(err(f("cohorts"), "give traffic_pct or cohorts, not both"));
                }
                (None, true) => {
                    return Err(err(f("traffic_pct"), "give traffic_pct or cohorts"));
                }
                (Some(pct), true) => {
                    if !(pct > 0.0 && pct <= 100.0) {
                        return Err(err(f("traffic_pct"), format!("{pct} is not in (0, 100]")));
                    }
                    if pct < last_pct {
                        return Err(err(
                            f("traffic_pct"),
                            format!("{pct}% is less than the phase before ({last_pct}%)"),
                        ));
                    }
                    last_pct = pct;
                }
                (None, false) => {
                    any_cohorts = true;
                    for (attr, values) in &p.cohorts {
                        if attr.trim().is_empty() || values.is_empty() {
                            return Err(err(
                                f("cohorts"),
                                "each cohort names an attribute and at least one value",
                            ));
                        }
                    }
                }
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, t) in self.triggers.iter().enumerate() {
            let f = |name: &str| format!("triggers[{i}].{name}");
            if t.id.trim().is_empty() {
                return Err(err(f("id"), "give the trigger an id"));
            }
            if !ids.insert(t.id.as_str()) {
                return Err(err(f("id"), format!("{} is used twice", t.id)));
            }
            match &t.metric {
                TriggerMetric::Mean { of } => {
                    if of.is_empty() {
                        return Err(err(f("metric.of"), "name at least one field"));
                    }
                    if let Some(w) = of.iter().find(|w| !w.weight.is_finite()) {
                        return Err(err(
                            f("metric.of"),
                            format!("{} has no finite weight", w.field),
                        ));
                    }
                }
                TriggerMetric::Rate { field } if field.trim().is_empty() => {
                    return Err(err(f("metric.field"), "name the field"));
                }
                TriggerMetric::Rate { .. } => {}
            }
            if let Some(n) = t
                .phases
                .iter()
                .find(|n| !self.phases.iter().any(|p| p.name == **n))
            {
                return Err(err(
                    f("phases"),
                    format!("{n:?} is not a phase of this plan"),
                ));
            }
            if !t.threshold.is_finite() {
                return Err(err(f("threshold"), "give a number"));
            }
            match t.relative_to {
                Some(_) if t.threshold <= 0.0 => {
                    return Err(err(
                        f("threshold"),
                        "a relative threshold is a positive % of the reference",
                    ));
                }
                Some(Reference::Baseline) if t.baseline.is_none_or(|b| !b.is_finite()) => {
                    return Err(err(f("baseline"), "give the baseline value"));
                }
                // A trigger judged in a cohort phase (all of them when it lists none).
                Some(Reference::Control)
                    if any_cohorts
                        && self.phases.iter().any(|p| {
                            !p.cohorts.is_empty()
                                && (t.phases.is_empty() || t.phases.contains(&p.name))
                        }) =>
                {
                    return Err(err(
                        f("relative_to"),
                        "cohort phases are not randomised, so there is no control to compare \
                         with: judge against a baseline or an absolute limit, or list the \
                         percentage phases it is judged in (phases:)",
                    ));
                }
                Some(Reference::Baseline) => {}
                Some(Reference::Control) | None if t.baseline.is_some() => {
                    return Err(err(
                        f("baseline"),
                        "a baseline goes with relative_to: baseline",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// α for one trigger in one phase: `alpha` over the number of (phase, trigger) pairs
    /// where the trigger applies ([`RollbackTrigger::applies_in`]), at least one.
    pub fn alpha_per_judgement(&self) -> f64 {
        let pairs = self
            .phases
            .iter()
            .map(|p| self.triggers.iter().filter(|t| t.applies_in(p)).count())
            .sum::<usize>()
            .max(1);
        self.alpha / pairs as f64
    }

    /// The plan's digest: `sha256:` over its canonical JSON (sorted keys). Events and signed
    /// acts name the plan by it.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        // serde_json::Value sorts object keys (no preserve_order feature).
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        let bytes = serde_json::to_vec(&value).unwrap_or_default();
        let hash = Sha256::digest(&bytes);
        let mut s = String::from("sha256:");
        for b in hash {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const PLAN: &str = r#"
flag: support-chat-assistant-enabled
phases:
  - { name: Power users, traffic_pct: 25, min_duration: 15m, min_sample: 500, advance: auto }
  - { name: Half, traffic_pct: 50, min_duration: "P1D" }
  - { name: Everyone, traffic_pct: 100, min_duration: 2 weeks }
triggers:
  - id: cost
    metric: { kind: mean, of: [{ field: gen_ai.usage.output_tokens, weight: 0.00001 }] }
    comparator: ">"
    threshold: 10
    relative_to: control
    detection_budget: 10m
"#;

    fn plan(yaml: &str) -> RolloutPlan {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn months_are_refused_when_read() {
        let e = serde_saphyr::from_str::<RolloutPlan>(
            &PLAN.replace("min_duration: 15m", "min_duration: 1 month"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not months or years"), "{e}");
    }

    #[test]
    fn the_example_plan_reads_and_validates() {
        let p = plan(PLAN);
        p.validate().unwrap();
        assert_eq!(p.alpha, 0.05);
        assert_eq!(p.phases[0].min_duration_seconds().unwrap(), 900);
        assert_eq!(p.phases[1].min_duration_seconds().unwrap(), 86_400);
        assert_eq!(p.phases[2].min_duration_seconds().unwrap(), 14 * 86_400);
        assert_eq!(p.phases[0].advance, Advance::Auto);
        assert_eq!(p.phases[1].advance, Advance::Manual);
        assert_eq!(p.triggers[0].burn_in, 100);
        assert_eq!(p.triggers[0].on_fail, OnFail::PreviousPhase);
        assert!(p.digest().starts_with("sha256:") && p.digest().len() == 71);
    }

    #[test]
    fn broken_rules_name_their_field() {
        let cases = [
            (
                "traffic_pct: 25,",
                "traffic_pct: 0,",
                "phases[0].traffic_pct",
            ),
            (
                "traffic_pct: 50,",
                "traffic_pct: 10,",
                "phases[1].traffic_pct",
            ),
            (
                "traffic_pct: 50,",
                "traffic_pct: 50, cohorts: { department: [a] },",
                "phases[1].cohorts",
            ),
            ("threshold: 10", "threshold: -1", "triggers[0].threshold"),
            (
                "relative_to: control",
                "relative_to: baseline",
                "triggers[0].baseline",
            ),
            (
                "detection_budget: 10m",
                "detection_budget: 10m\n    phases: [Nobody]",
                "triggers[0].phases",
            ),
        ];
        for (from, to, field) in cases {
            assert!(PLAN.contains(from), "{from}");
            let p = plan(&PLAN.replace(from, to));
            let e = p.validate().unwrap_err();
            assert_eq!(e.field, field, "{to}: {e}");
        }
        let cohorts = PLAN.replace("traffic_pct: 50,", "cohorts: { department: [support] },");
        let e = plan(&cohorts).validate().unwrap_err();
        assert_eq!(e.field, "triggers[0].relative_to", "{e}");
    }

    #[test]
    fn a_trigger_applies_in_its_phases_and_a_control_comparison_only_beside_a_control() {
        let p = plan(&PLAN.replace(
            "detection_budget: 10m",
            "detection_budget: 10m\n    phases: [Half, Everyone]",
        ));
        p.validate().unwrap();
        let t = &p.triggers[0];
        let applies: Vec<bool> = p.phases.iter().map(|ph| t.applies_in(ph)).collect();
        // Not listed for the first; listed but without a control at 100%.
        assert_eq!(applies, [false, true, false]);
        assert_eq!(p.alpha_per_judgement(), 0.05);
        assert_eq!(plan(PLAN).alpha_per_judgement(), 0.025);
    }

    #[test]
    fn digest_ignores_yaml_layout_but_not_content() {
        let a = plan(PLAN);
        let b = plan(&PLAN.replace(
            "{ name: Half, traffic_pct: 50, min_duration: \"P1D\" }",
            "\n    name: Half\n    min_duration: \"P1D\"\n    traffic_pct: 50",
        ));
        assert_eq!(a.digest(), b.digest());
        let c = plan(&PLAN.replace("threshold: 10", "threshold: 11"));
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn a_control_trigger_is_refused_only_where_a_cohort_phase_judges_it() {
        let plan = |phases: &str| -> RolloutPlan {
            serde_saphyr::from_str(&format!(
                "flag: f\nphases:\n  - {{ name: Some, traffic_pct: 25, min_duration: 1h }}\n  - {{ name: Support, cohorts: {{ department: [support] }}, min_duration: 1h }}\ntriggers:\n  - {{ id: cost, metric: {{ kind: mean, of: [{{ field: x }}] }}, comparator: '>', threshold: 5, relative_to: control{phases} }}\n"
            ))
            .unwrap()
        };
        let e = plan("").validate().unwrap_err();
        assert_eq!(e.field, "triggers[0].relative_to", "{e:?}");
        let e = plan(", phases: [Support]").validate().unwrap_err();
        assert_eq!(e.field, "triggers[0].relative_to", "{e:?}");
        plan(", phases: [Some]").validate().unwrap();
    }
}
