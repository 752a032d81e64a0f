//! The `rollout:` section `stagegate plan` writes beside `scaling_plan:`: the plan's phases as
//! a rollout the server can run (`stagegate_rollout::RolloutPlan`), for people to edit before
//! `stagegate rollout start`.
//!
//! - **flag**: the card's kill-switch flag (`rollback.kill_switch.flag`).
//! - **phases**: the scaling plan's phases (the card's `scale.phases`, else seed 000's
//!   pattern), each for its weeks, at traffic shares that double up to 100% in the last phase
//!   (three phases: 25% → 50% → 100%, seed 002's rollout; four: 12.5% → 25% → 50% → 100%);
//!   each waits for a person's go (`advance: manual`) and for the card's
//!   `statistics.minimum_sample` treatment events (default 100).
//! - **triggers**: each success criterion that is a mean of a numeric role the live spans carry
//!   becomes a rollback trigger at its pilot threshold, turned around (seed 000 "Rollback
//!   Planning": "success criteria … turned around"; "cost per request ≤ USD 0.006" is rolled
//!   back "> USD 0.006"). Roles resolve to OTLP span fields: the card's own column when its
//!   telemetry is OTLP, else the GenAI semantic conventions (`input_tokens` →
//!   `gen_ai.usage.input_tokens`, `output_tokens` → `gen_ai.usage.output_tokens`,
//!   `latency_ms` → `span.duration_ms`); derived roles expand into their weighted terms.
//!   Rates, quantiles and criteria on roles without a span field are left for the editor (the
//!   card's `rollback.triggers` in words are in `rollback_plan`).

use crate::card::{AgentCard, Comparator, TelemetryFormat};
use crate::metric::MetricKind;
use stagegate_rollout::plan::{
    Advance, Comparator as TriggerComparator, Duration, OnFail, RollbackTrigger, RolloutPhase,
    RolloutPlan, TriggerMetric, WeightedField,
};

/// The rollout section for `card` over the plan's phases `(name, weeks)`.
pub fn rollout_section(card: &AgentCard, phases: &[(String, u32)]) -> RolloutPlan {
    let n = phases.len();
    let min_sample = card
        .statistics
        .as_ref()
        .and_then(|s| s.minimum_sample)
        .unwrap_or(100);
    let phases = phases
        .iter()
        .enumerate()
        .map(|(i, (name, weeks))| {
            let pct = 100.0 / f64::from(1u32 << (n - 1 - i).min(16));
            let text = format!("{weeks} weeks");
            RolloutPhase {
                name: name.clone(),
                traffic_pct: Some(pct),
                cohorts: Default::default(),
                min_duration: Duration {
                    text,
                    seconds: i64::from(*weeks) * 7 * 86_400,
                },
                min_sample,
                advance: Advance::Manual,
                go_no_go: Vec::new(),
            }
        })
        .collect();
    let triggers = card
        .success_criteria
        .iter()
        .filter_map(|c| {
            let m = c.metric.as_ref()?;
            if m.kind != MetricKind::Mean || m.per.is_some() || m.filter.is_some() {
                return None;
            }
            let of = otlp_terms(card, m.field.as_deref()?, 0)?;
            let comparator = match c.comparator {
                Comparator::Le | Comparator::Lt => TriggerComparator::Above,
                Comparator::Ge | Comparator::Gt => TriggerComparator::Below,
                _ => return None,
            };
            Some(RollbackTrigger {
                id: c.id.clone(),
                description: format!("{}: worse than the pilot threshold", c.description),
                metric: TriggerMetric::Mean { of },
                comparator,
                threshold: c.threshold,
                relative_to: None,
                baseline: None,
                on_fail: OnFail::PreviousPhase,
                burn_in: 100,
                detection_budget: None,
                phases: Vec::new(),
            })
        })
        .collect();
    RolloutPlan {
        flag: card.rollback.kill_switch.flag.clone(),
        alpha: 0.05,
        phases,
        triggers,
    }
}

/// The OTLP span fields (with weights) a role's value is, or `None`.
fn otlp_terms(card: &AgentCard, role: &str, depth: u8) -> Option<Vec<WeightedField>> {
    let t = card.telemetry.as_ref()?;
    if depth > 8 {
        return None;
    }
    if let Some(d) = t.derived.get(role) {
        let mut out = Vec::new();
        for term in &d.sum_of {
            for w in otlp_terms(card, &term.field, depth + 1)? {
                out.push(WeightedField {
                    field: w.field,
                    weight: w.weight * term.weight,
                });
            }
        }
        return Some(out);
    }
    let otlp = t.format == Some(TelemetryFormat::Otlp)
        || t.files.iter().any(|f| f.contains(".otlp.jsonl"));
    let field = if otlp {
        t.columns.get(role)?.clone()
    } else {
        match role {
            "input_tokens" => "gen_ai.usage.input_tokens",
            "output_tokens" => "gen_ai.usage.output_tokens",
            "latency_ms" => "span.duration_ms",
            _ => return None,
        }
        .to_owned()
    };
    Some(vec![WeightedField { field, weight: 1.0 }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(name: &str) -> AgentCard {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name)
            .join("agent.yaml");
        serde_saphyr::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    #[test]
    fn the_chat_assistant_rolls_out_25_50_100_watching_tokens_and_cost_turned_around() {
        let c = card("support-chat-assistant");
        let phases = [
            ("a".to_owned(), 2),
            ("b".to_owned(), 4),
            ("c".to_owned(), 6),
        ];
        let r = rollout_section(&c, &phases);
        r.validate().unwrap();
        assert_eq!(r.flag, "support-chat-assistant-enabled");
        let pct: Vec<f64> = r.phases.iter().map(|p| p.traffic_pct.unwrap()).collect();
        assert_eq!(pct, [25.0, 50.0, 100.0]);
        assert_eq!(r.phases[2].min_duration.seconds, 6 * 7 * 86_400);
        let ids: Vec<&str> = r.triggers.iter().map(|t| t.id.as_str()).collect();
        // Means only: the count, quantile, ratio and per-hour criteria are left to the editor.
        assert_eq!(ids, ["tokens_per_request", "cost_per_request"]);
        let cost = &r.triggers[1];
        assert_eq!(cost.comparator, TriggerComparator::Above);
        assert_eq!(cost.threshold, 0.006);
        let TriggerMetric::Mean { of } = &cost.metric else {
            panic!()
        };
        let terms: Vec<(&str, f64)> = of.iter().map(|w| (w.field.as_str(), w.weight)).collect();
        assert_eq!(
            terms,
            [
                ("gen_ai.usage.input_tokens", 2.5e-6),
                ("gen_ai.usage.output_tokens", 1e-5)
            ]
        );
    }

    #[test]
    fn one_phase_is_everyone_and_four_start_at_an_eighth() {
        let c = card("support-chat-assistant");
        let one = rollout_section(&c, &[("all".to_owned(), 1)]);
        assert_eq!(one.phases[0].traffic_pct, Some(100.0));
        let four: Vec<(String, u32)> = (0..4).map(|i| (format!("p{i}"), 1)).collect();
        let r = rollout_section(&c, &four);
        let pct: Vec<f64> = r.phases.iter().map(|p| p.traffic_pct.unwrap()).collect();
        assert_eq!(pct, [12.5, 25.0, 50.0, 100.0]);
    }
}
