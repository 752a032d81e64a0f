//! Relative criteria pick the right rows for each side and report the test's effect; a
//! skewed assignment is flagged as a sample-ratio mismatch.

use stagegate_core::card::AgentCard;
use stagegate_stats::compare::{Summary, two_proportions, welch};
use stagegate_telemetry::measure;

fn card(criteria: &str) -> AgentCard {
    stagegate_testkit::card(
        "ops",
        "start: 2026-06-01, end: 2026-06-14, cohort_size: 8",
        criteria.trim_matches('\n'),
        "  files: [t.csv]\n  columns: { timestamp: ts, user: user, cohort: arm, handle: handle, error: error }",
    )
}

/// Baseline rows in May (arm "baseline"), pilot rows in June split into "agent" and "manual".
/// Returns the CSV, the three handle-time samples and (agent errors, n, manual errors, n).
#[allow(clippy::type_complexity)]
fn telemetry() -> (String, Vec<f64>, Vec<f64>, Vec<f64>, (u64, u64, u64, u64)) {
    let mut csv = String::from("ts,user,arm,handle,error\n");
    let (mut base, mut agent, mut manual) = (vec![], vec![], vec![]);
    let (mut agent_err, mut manual_err) = (0u64, 0u64);
    for i in 0..40u32 {
        let h = 6.0 + f64::from(i % 5) * 0.25;
        base.push(h);
        csv.push_str(&format!(
            "2026-05-{:02}T10:00:00Z,b{},baseline,{h},\n",
            1 + i % 28,
            i % 6
        ));
    }
    for i in 0..60u32 {
        let day = 1 + i % 14;
        let (arm, h) = if i % 2 == 0 {
            ("agent", 4.5 + f64::from(i % 7) * 0.2)
        } else {
            ("manual", 5.8 + f64::from(i % 3) * 0.3)
        };
        let err = u32::from(i % 10 == 0 || (arm == "manual" && i % 5 == 1));
        if arm == "agent" {
            agent.push(h);
            agent_err += u64::from(err);
        } else {
            manual.push(h);
            manual_err += u64::from(err);
        }
        csv.push_str(&format!(
            "2026-06-{day:02}T09:00:00Z,u{},{arm},{h},{err}\n",
            i % 9
        ));
    }
    let n = 30;
    (csv, base, agent, manual, (agent_err, n, manual_err, n))
}

#[test]
fn baseline_and_control_comparisons() {
    let (csv, base, agent, manual, (ka, na, km, nm)) = telemetry();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.csv"), csv).unwrap();
    let c = card(
        r#"
  - id: vs_baseline
    description: handle time at least 10% lower than baseline
    metric: { kind: mean, field: handle }
    compare: { against: baseline, baseline: { start: 2026-05-01, end: 2026-05-31 }, pilot_cohort: agent, effect: relative }
    comparator: "<="
    threshold: -0.10
  - id: vs_control_abs
    description: handle time lower than control
    metric: { kind: mean, field: handle }
    compare: { against: control, control_cohort: manual, pilot_cohort: agent }
    comparator: "<"
    threshold: 0
  - id: errors_vs_control
    description: error rate not higher than control
    metric: { kind: rate, of: { field: error, op: eq, value: 1 } }
    compare: { against: control, control_cohort: manual, assigned_pilot_share: 0.5 }
    comparator: "<="
    threshold: 0.05
  - id: latency_like
    description: handle distribution shift versus control
    metric: { kind: quantile, field: handle, q: 0.5 }
    compare: { against: control, control_cohort: manual, pilot_cohort: agent, test: mann_whitney }
    comparator: "<"
    threshold: 0
  - id: median_difference
    description: median handle time versus control
    metric: { kind: quantile, field: handle, q: 0.5 }
    compare: { against: control, control_cohort: manual, pilot_cohort: agent }
    comparator: "<"
    threshold: 0
"#,
    );
    let out = measure(tmp.path(), &c).unwrap();

    let m = &out.measurements["vs_baseline"];
    let cmp = m.comparison.as_ref().unwrap();
    assert_eq!((cmp.reference_rows, cmp.pilot_rows), (40, 30));
    let (sb, sa) = (Summary::of(&base), Summary::of(&agent));
    assert!((m.value.unwrap() - (sa.mean / sb.mean - 1.0)).abs() < 1e-12);
    assert!(m.interval.unwrap().high < -0.10, "{:?}", m.interval);

    let m = &out.measurements["vs_control_abs"];
    let w = welch(Summary::of(&manual), Summary::of(&agent), 0.95).unwrap();
    assert!((m.value.unwrap() - w.effect.unwrap()).abs() < 1e-12);
    let i = m.interval.unwrap();
    assert!((i.low - w.interval.low).abs() < 1e-9 && (i.high - w.interval.high).abs() < 1e-9);
    assert!((m.comparison.as_ref().unwrap().p_value.unwrap() - w.p_value.unwrap()).abs() < 1e-12);

    let m = &out.measurements["errors_vs_control"];
    let t = two_proportions(km, nm, ka, na, 0.95).unwrap();
    assert!((m.value.unwrap() - t.effect.unwrap()).abs() < 1e-12);
    let srm = m.comparison.as_ref().unwrap().srm.as_ref().unwrap();
    assert!(
        !srm.flagged,
        "30 vs 30 rows, 9 users each side at most: no SRM"
    );

    let m = &out.measurements["latency_like"];
    assert_eq!(m.comparison.as_ref().unwrap().test, "Mann-Whitney U");
    assert!(m.value.unwrap() < 0.0 && m.interval.unwrap().high < 0.0);

    // Quantile metrics compare the quantile itself by default.
    let m = &out.measurements["median_difference"];
    let k = m.comparison.as_ref().unwrap();
    assert_eq!(k.test, "quantile difference");
    let want =
        stagegate_stats::compare::quantile_difference(&manual, &agent, 0.5, false, 0.95).unwrap();
    assert_eq!(m.value, want.effect);
    assert_eq!(m.interval, Some(want.interval));
    assert_eq!(k.p_value, None, "no test behind the quantile difference");
}

#[test]
fn a_heavier_tail_moves_the_p95_not_the_shift() {
    // 400 calls a side; in the pilot 15% of calls are four times slower. The p95 triples; the
    // distributions' Hodges-Lehmann shift barely moves.
    let mut csv = String::from("ts,user,arm,handle,error\n");
    for i in 0..800u32 {
        let base = 400.0 + f64::from((i * 7919) % 400);
        let (arm, h) = if i % 2 == 0 {
            ("manual", base)
        } else if i % 40 < 6 {
            ("agent", base * 4.0)
        } else {
            ("agent", base)
        };
        csv.push_str(&format!(
            "2026-06-{:02}T09:00:00Z,u{},{arm},{h},0\n",
            1 + i % 14,
            i % 9
        ));
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.csv"), csv).unwrap();
    let c = card(
        r#"
  - id: p95_vs_control
    description: p95 handle time no more than 100 above control
    metric: { kind: quantile, field: handle, q: 0.95 }
    compare: { against: control, control_cohort: manual, pilot_cohort: agent }
    comparator: "<="
    threshold: 100
  - id: shift_vs_control
    description: handle distribution shift no more than 100 above control
    metric: { kind: quantile, field: handle, q: 0.95 }
    compare: { against: control, control_cohort: manual, pilot_cohort: agent, test: mann_whitney }
    comparator: "<="
    threshold: 100
"#,
    );
    let out = measure(tmp.path(), &c).unwrap();
    let p95 = &out.measurements["p95_vs_control"];
    assert!(
        p95.interval.unwrap().low > 100.0,
        "the p95 rose: not met, {p95:?}"
    );
    let shift = &out.measurements["shift_vs_control"];
    assert!(
        shift.interval.unwrap().high < 100.0,
        "the shift is small: {shift:?}"
    );
}

#[test]
fn skewed_assignment_is_flagged() {
    // 900 agent rows from 900 users against 100 control rows from 100 users, assigned 50/50.
    let mut csv = String::from("ts,user,arm,handle,error\n");
    for i in 0..1000 {
        let arm = if i < 900 { "agent" } else { "manual" };
        csv.push_str(&format!("2026-06-02T09:00:00Z,u{i},{arm},5,0\n"));
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.csv"), csv).unwrap();
    let c = card(
        r#"
  - id: errors_vs_control
    description: error rate not higher than control
    metric: { kind: rate, of: { field: error, op: eq, value: 1 } }
    compare: { against: control, control_cohort: manual, assigned_pilot_share: 0.5 }
    comparator: "<="
    threshold: 0.01
"#,
    );
    let out = measure(tmp.path(), &c).unwrap();
    let srm = out.measurements["errors_vs_control"]
        .comparison
        .as_ref()
        .unwrap()
        .srm
        .clone()
        .unwrap();
    assert_eq!((srm.pilot_units, srm.control_units), (900, 100));
    assert!(srm.flagged && srm.p_value < 1e-100, "{srm:?}");
}
