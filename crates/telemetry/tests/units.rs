//! Per-unit comparisons through the engine: rows become per-unit sums on the right side (and in
//! the covariate period for CUPED), units seen in both cohorts are left out and counted, and the
//! numbers equal `stagegate_stats::units` on the same sums. Plus the coverage rules through
//! `measure`: a one-row mean and a p99 over 20 values have no verdict-worthy interval.

use stagegate_core::card::AgentCard;
use stagegate_core::review::MoreEvents;
use stagegate_stats::units::{self, ArmUnit, Sums};
use stagegate_telemetry::measure;

fn card(criteria: &str) -> AgentCard {
    stagegate_testkit::card(
        "ops",
        "start: 2026-06-01, end: 2026-06-14, cohort_size: 8",
        criteria.trim_matches('\n'),
        "  files: [t.csv]\n  columns: { timestamp: ts, user: user, agent_id: agent, cohort: arm, handle: handle, error: error, latency: latency }",
    )
}

/// 24 human agents: 12 in each arm, each with its own level; May is the covariate period.
/// Agent h99 appears in both arms (a broken assignment) and agent rows with no id are present.
fn csv() -> String {
    let mut s = String::from("ts,user,agent,arm,handle,error,latency\n");
    let level = |a: u32| 4.0 + f64::from(a % 7) * 0.9;
    for a in 0..24u32 {
        for k in 0..(3 + a % 5) {
            let h = level(a) + f64::from(k % 3) * 0.1;
            s.push_str(&format!(
                "2026-05-{:02}T10:00:00Z,u{a},h{a},pre,{h},0,100\n",
                2 + k
            ));
        }
        let arm = if a % 2 == 0 { "agent" } else { "manual" };
        let shift = if arm == "agent" { -0.5 } else { 0.0 };
        for k in 0..(4 + 2 * (a % 4)) {
            let h = level(a) + shift + f64::from(k % 4) * 0.1;
            let err = u32::from(k % 5 == 0);
            s.push_str(&format!(
                "2026-06-{:02}T10:00:00Z,u{a},h{a},{arm},{h},{err},100\n",
                1 + k % 14
            ));
        }
    }
    s.push_str("2026-06-03T10:00:00Z,u99,h99,agent,5.0,0,100\n");
    s.push_str("2026-06-04T10:00:00Z,u99,h99,manual,5.1,0,100\n");
    s.push_str("2026-06-05T10:00:00Z,u7,,agent,5.2,0,100\n");
    s
}

fn sums(rows: &[(f64, bool)]) -> Sums {
    Sums {
        y: rows.iter().map(|r| r.0).sum(),
        n: rows.len() as f64,
    }
}

/// The per-unit sums the engine should build, from the same CSV, by hand.
fn arms() -> (Vec<ArmUnit>, Vec<ArmUnit>) {
    let text = csv();
    let mut reference = vec![];
    let mut pilot = vec![];
    for a in 0..24u32 {
        let rows = |filter: &dyn Fn(&[&str]) -> bool| -> Vec<(f64, bool)> {
            text.lines()
                .skip(1)
                .map(|l| l.split(',').collect::<Vec<_>>())
                .filter(|c| c[2] == format!("h{a}") && filter(c))
                .map(|c| (c[4].parse().unwrap(), true))
                .collect()
        };
        let unit = ArmUnit {
            metric: sums(&rows(&|c| c[0].starts_with("2026-06"))),
            covariate: sums(&rows(&|c| c[0].starts_with("2026-05"))),
        };
        if a % 2 == 0 {
            pilot.push(unit);
        } else {
            reference.push(unit);
        }
    }
    (reference, pilot)
}

#[test]
fn control_comparison_over_units_with_cuped_matches_the_statistics() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.csv"), csv()).unwrap();
    let c = card(
        r#"
  - id: handle_units
    description: handle time, per agent, CUPED on May
    metric: { kind: mean, field: handle }
    compare: { against: control, control_cohort: manual, pilot_cohort: agent, unit: agent_id, cuped: true, baseline: { start: 2026-05-01, end: 2026-05-31 } }
    comparator: "<="
    threshold: 0
  - id: handle_units_raw
    description: handle time, per agent
    metric: { kind: mean, field: handle }
    compare: { against: control, control_cohort: manual, pilot_cohort: agent, unit: agent_id, effect: relative }
    comparator: "<="
    threshold: 0
"#,
    );
    let out = measure(tmp.path(), &c).unwrap();
    let (mut reference, mut pilot) = arms();
    // The engine orders units by fingerprint; the statistics do not depend on the order.
    let m = &out.measurements["handle_units"];
    let k = m.comparison.as_ref().unwrap();
    let u = k.unit.as_ref().unwrap();
    assert_eq!(
        (u.reference_units, u.pilot_units, u.in_both_cohorts),
        (12, 12, 1)
    );
    let want = units::independent(&reference, &pilot, false, true, 0.95).unwrap();
    assert!((m.value.unwrap() - want.comparison.effect.unwrap()).abs() < 1e-12);
    let (i, w) = (m.interval.unwrap(), want.comparison.interval);
    assert!((i.low - w.low).abs() < 1e-12 && (i.high - w.high).abs() < 1e-12);
    let cu = k.cuped.as_ref().unwrap();
    assert!((cu.theta - want.theta.unwrap()).abs() < 1e-12);
    assert!(
        cu.variance_reduction > 0.5,
        "each agent's May level explains most variance: {cu:?}"
    );
    assert!(
        m.note
            .as_deref()
            .unwrap_or("")
            .contains("1 rows without a `agent_id` value"),
        "{:?}",
        m.note
    );
    assert!(m.interval_method.as_deref().unwrap().contains("CUPED"));

    reference.reverse();
    pilot.reverse();
    let m = &out.measurements["handle_units_raw"];
    let want = units::independent(&reference, &pilot, true, false, 0.95).unwrap();
    assert!((m.value.unwrap() - want.comparison.effect.unwrap()).abs() < 1e-12);
    assert!(m.comparison.as_ref().unwrap().cuped.is_none());
}

#[test]
fn baseline_comparison_over_units_is_paired() {
    // Eight human agents at very different levels (4.0 to 10.3 min), five calls each before and
    // during the pilot; every agent is 0.5 min faster with the agent. Events treated as
    // independent see the spread between agents; pairing each agent with itself removes it.
    let mut s = String::from("ts,user,agent,arm,handle,error,latency\n");
    for a in 0..8u32 {
        let level = 4.0 + f64::from(a) * 0.9;
        for k in 0..5u32 {
            let noise = f64::from(k % 3) * 0.05;
            s.push_str(&format!(
                "2026-05-{:02}T10:00:00Z,u{a},h{a},pre,{},0,1\n",
                2 + k,
                level + noise
            ));
            s.push_str(&format!(
                "2026-06-{:02}T10:00:00Z,u{a},h{a},agent,{},0,1\n",
                2 + k,
                level - 0.5 + noise
            ));
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.csv"), s).unwrap();
    let criterion = |id: &str, unit: &str| {
        format!(
            "  - id: {id}\n    description: handle time before and during the pilot\n    metric: {{ kind: mean, field: handle }}\n    compare: {{ against: baseline, baseline: {{ start: 2026-05-01, end: 2026-05-31 }}{unit} }}\n    comparator: \"<=\"\n    threshold: -0.3\n"
        )
    };
    let c = card(&(criterion("paired", ", unit: agent_id") + &criterion("events", "")));
    let out = measure(tmp.path(), &c).unwrap();
    let paired = &out.measurements["paired"];
    let u = paired.comparison.as_ref().unwrap().unit.as_ref().unwrap();
    assert_eq!((u.reference_units, u.pilot_units), (8, 8));
    assert!((paired.value.unwrap() + 0.5).abs() < 1e-9);
    let (p, e) = (
        paired.interval.unwrap(),
        out.measurements["events"].interval.unwrap(),
    );
    assert!(p.high < -0.3, "paired: decided, {p:?}");
    assert!(
        e.high > -0.3,
        "event-level Welch: the agents' spread hides it, {e:?}"
    );
    assert!(
        paired
            .interval_method
            .as_deref()
            .unwrap()
            .contains("paired")
    );
}

#[test]
fn one_value_and_a_short_quantile_interval_are_inconclusive_with_the_events_needed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = String::from("ts,user,agent,arm,handle,error,latency\n");
    s.push_str("2026-06-02T10:00:00Z,u1,h1,agent,5.0,0,100\n");
    for k in 0..19 {
        s.push_str(&format!(
            "2026-06-03T10:00:00Z,u1,h1,agent,,0,{}\n",
            100 + k
        ));
    }
    std::fs::write(tmp.path().join("t.csv"), s).unwrap();
    let c = card(
        r#"
  - id: one_mean
    description: mean of one value
    metric: { kind: mean, field: handle }
    comparator: "<="
    threshold: 9
  - id: p99_of_20
    description: p99 over 20 values
    metric: { kind: quantile, field: latency, q: 0.99 }
    comparator: "<="
    threshold: 10000
"#,
    );
    let out = measure(tmp.path(), &c).unwrap();
    let m = &out.measurements["one_mean"];
    assert!(m.sampled && m.interval.is_none());
    assert_eq!(m.more_events, Some(MoreEvents::ForCoverage { events: 1 }));
    let m = &out.measurements["p99_of_20"];
    let i = m.interval.unwrap();
    assert!(!i.reaches_confidence() && i.coverage < 0.19, "{i:?}");
    assert_eq!(
        m.more_events,
        Some(MoreEvents::ForCoverage { events: 299 - 20 })
    );
}

#[test]
fn no_spread_means_no_interval_and_no_verdict() {
    // Five agents, ten calls each, no compliance error before or during the pilot; and a
    // handle time that is the same on every call.
    let mut s = String::from("ts,user,agent,arm,handle,error,latency\n");
    for a in 0..5u32 {
        for k in 0..10u32 {
            s.push_str(&format!(
                "2026-05-{:02}T10:00:00Z,u{a},h{a},pre,5,0,1\n",
                2 + k
            ));
            s.push_str(&format!(
                "2026-06-{:02}T10:00:00Z,u{a},h{a},agent,5,0,1\n",
                2 + k
            ));
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.csv"), s).unwrap();
    let c = card(
        r#"
  - id: errors_units
    description: errors not higher, per agent
    metric: { kind: rate, of: { field: error, op: eq, value: 1 } }
    compare: { against: baseline, baseline: { start: 2026-05-01, end: 2026-05-31 }, unit: agent_id, hypothesis: non_inferiority, margin: 0.005 }
    comparator: "<="
    threshold: 0
  - id: same_handle
    description: handle time
    metric: { kind: mean, field: handle }
    comparator: ">="
    threshold: 4
"#,
    );
    let out = measure(tmp.path(), &c).unwrap();
    let m = &out.measurements["errors_units"];
    assert_eq!(m.value, Some(0.0));
    assert!(m.sampled && m.interval.is_none(), "{m:?}");
    assert!(
        m.note.as_deref().unwrap().contains("no spread"),
        "{:?}",
        m.note
    );
    let m = &out.measurements["same_handle"];
    assert!(m.sampled && m.interval.is_none(), "{m:?}");
}
