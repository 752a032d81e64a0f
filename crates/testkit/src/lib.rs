//! Test support: a minimal, valid agent card around the parts a test is about.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use stagegate_core::card::AgentCard;

/// YAML of a minimal agent card `agent-<dept>-test` whose people, identity, rollback and launch
/// are placeholders. `pilot` is the inline pilot mapping's window and cohort (e.g.
/// `start: 2026-06-01, end: 2026-06-14, cohort_size: 8`), `criteria` the indented list items of
/// `success_criteria`, `telemetry` the indented body of `telemetry:`.
pub fn card_yaml(dept: &str, pilot: &str, criteria: &str, telemetry: &str) -> String {
    format!(
        r#"id: agent-{dept}-test
name: Test agent
version: "1"
tier: low
lane: startup
department: {dept}
people:
  builder: {{ name: Ann Lee }}
  coe_lead: {{ name: Bo Chan }}
  sponsor: {{ name: Cy Diaz }}
  on_call:
    primary: {{ name: Ann Lee }}
    backup: {{ name: Bo Chan }}
    pager: {{ system: PagerDuty, primary_schedule: a, backup_schedule: b }}
pilot: {{ {pilot}, scope: test, cohort: test }}
success_criteria:
{criteria}
guardrails: []
identity: {{ idp: Okta, principal: agent-{dept}-test }}
audit_log: {{ stores: [] }}
runbook: runbook.md
rollback:
  kill_switch: {{ provider: OFREP, flag: f }}
  procedure: ["off"]
  in_flight: drained
  decision_authority: Bo Chan
launch: {{ target_date: 2026-12-31 }}
telemetry:
{telemetry}
"#
    )
}

/// [`card_yaml`], parsed and validated.
///
/// # Panics
/// When the YAML does not parse or the card is invalid — a broken test fixture.
pub fn card(dept: &str, pilot: &str, criteria: &str, telemetry: &str) -> AgentCard {
    let yaml = card_yaml(dept, pilot, criteria, telemetry);
    let c: AgentCard =
        serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("fixture card: {e}\n{yaml}"));
    c.validate().unwrap_or_else(|e| panic!("fixture card: {e}"));
    c
}
