//! Impossible values in a card: thresholds outside what their metric kind and unit allow
//! (plain values, absolute and relative effects), a cohort of 0, a launch before the pilot
//! ends. Each case names the field the error must carry.

use stagegate_core::card::AgentCard;
use stagegate_testkit::card_yaml;

const TELEMETRY: &str = "  files: [t.csv]\n  columns: { timestamp: ts, ok: ok, latency_ms: latency_ms, cohort: cohort, delta: delta }";

fn validate(criterion: &str) -> Result<(), String> {
    validate_card(
        "start: 2026-06-01, end: 2026-06-14, cohort_size: 8",
        criterion,
    )
}

fn validate_card(pilot: &str, criterion: &str) -> Result<(), String> {
    let yaml = card_yaml("ops", pilot, criterion, TELEMETRY);
    let c: AgentCard = serde_saphyr::from_str(&yaml).map_err(|e| format!("parse: {e}"))?;
    c.validate().map_err(|e| e.to_string())
}

fn criterion(metric: &str, rest: &str) -> String {
    format!("  - {{ id: c, description: d, metric: {metric}, {rest} }}")
}

const RATE: &str = "{ kind: rate, of: { field: ok, op: is_true } }";
const P95: &str = "{ kind: quantile, field: latency_ms, q: 0.95 }";
const MEAN: &str = "{ kind: mean, field: delta }";
const COUNT: &str = "{ kind: count }";
const ADOPTION: &str = "{ kind: adoption }";
const BASELINE: &str = "against: baseline, baseline: { start: 2026-05-01, end: 2026-05-20 }";

#[test]
fn thresholds_inside_their_range_pass_and_outside_fail_on_the_threshold() {
    // (metric, rest of the criterion, accepted?)
    let cases: &[(&str, String, bool)] = &[
        // A rate is a share of rows: 0..=1, whatever the unit says.
        (RATE, r#"comparator: ">=", threshold: 0.9"#.into(), true),
        (RATE, r#"comparator: ">=", threshold: 0"#.into(), true),
        (RATE, r#"comparator: "<=", threshold: 1"#.into(), true),
        (RATE, r#"comparator: ">=", threshold: -0.5"#.into(), false),
        (
            RATE,
            r#"comparator: ">=", threshold: 90, unit: ratio"#.into(),
            false,
        ),
        (
            RATE,
            r#"comparator: ">=", threshold: 90, unit: "%""#.into(),
            false,
        ),
        (
            ADOPTION,
            r#"comparator: ">=", threshold: 1.2"#.into(),
            false,
        ),
        // Counts are never negative.
        (
            COUNT,
            r#"comparator: "==", threshold: 0, unit: count"#.into(),
            true,
        ),
        (COUNT, r#"comparator: "<=", threshold: -1"#.into(), false),
        // A quantile of a duration is never negative; of an unlabelled field it may be.
        (
            P95,
            r#"comparator: "<", threshold: 2000, unit: ms"#.into(),
            true,
        ),
        (
            P95,
            r#"comparator: "<", threshold: -5, unit: ms"#.into(),
            false,
        ),
        (P95, r#"comparator: "<", threshold: -5"#.into(), true),
        // A mean in points (signed) is unbounded; in `ratio` it is a fraction.
        (
            MEAN,
            r#"comparator: ">=", threshold: -3, unit: points"#.into(),
            true,
        ),
        (
            MEAN,
            r#"comparator: ">=", threshold: 1.5, unit: ratio"#.into(),
            false,
        ),
        // A difference of two rates lies in -1..=1.
        (
            RATE,
            format!(
                r#"compare: {{ {BASELINE} }}, comparator: "<=", threshold: -0.05, unit: ratio"#
            ),
            true,
        ),
        (
            RATE,
            format!(r#"compare: {{ {BASELINE} }}, comparator: "<=", threshold: -1.5"#),
            false,
        ),
        // A relative change of a rate is at least -1 (-100%), unbounded above.
        (
            RATE,
            format!(
                r#"compare: {{ {BASELINE}, effect: relative }}, comparator: ">=", threshold: 2.5"#
            ),
            true,
        ),
        (
            RATE,
            format!(
                r#"compare: {{ {BASELINE}, effect: relative }}, comparator: "<=", threshold: -1.2"#
            ),
            false,
        ),
        // `unit: ratio` on a relative effect names the effect's unit: -10% of a mean is fine,
        // and so is -150% of a signed mean.
        (
            MEAN,
            format!(
                r#"compare: {{ {BASELINE}, effect: relative }}, comparator: "<=", threshold: -0.10, unit: ratio"#
            ),
            true,
        ),
        (
            MEAN,
            format!(
                r#"compare: {{ {BASELINE}, effect: relative }}, comparator: "<=", threshold: -1.5, unit: ratio"#
            ),
            true,
        ),
        // A latency difference in ms may be negative (faster).
        (
            P95,
            format!(r#"compare: {{ {BASELINE} }}, comparator: "<=", threshold: -200, unit: ms"#),
            true,
        ),
        // Baselines and targets at scale are held to the same range as the value.
        (
            RATE,
            r#"comparator: ">=", threshold: 0.9, target_at_scale: 95"#.into(),
            false,
        ),
        (
            RATE,
            r#"comparator: ">=", threshold: 0.9, baseline: -0.1"#.into(),
            false,
        ),
    ];
    for (metric, rest, ok) in cases {
        let r = validate(&criterion(metric, rest));
        match (ok, &r) {
            (true, Ok(())) => {}
            (false, Err(e)) => {
                let field = if rest.contains("target_at_scale: 95") {
                    "target_at_scale"
                } else if rest.contains("baseline: -0.1") {
                    "baseline"
                } else {
                    "threshold"
                };
                assert!(
                    e.contains(&format!("field `success_criteria[0].{field}`"))
                        && e.contains("out of range"),
                    "{metric} {rest}: {e}"
                );
            }
            _ => panic!(
                "{metric} {rest}: expected {}, got {r:?}",
                if *ok { "ok" } else { "an error" }
            ),
        }
    }
}

#[test]
fn an_evidence_criterion_is_bounded_by_its_unit() {
    let ev = |rest: &str| format!("  - {{ id: c, description: d, source: evidence, {rest} }}");
    assert!(validate(&ev(r#"comparator: ">=", threshold: 4, unit: h/week"#)).is_ok());
    let e = validate(&ev(r#"comparator: ">=", threshold: 4, unit: ratio"#)).unwrap_err();
    assert!(
        e.contains("success_criteria[0].threshold") && e.contains("between 0 and 1"),
        "{e}"
    );
}

#[test]
fn a_cohort_of_zero_and_a_launch_before_the_pilot_ends_are_refused() {
    let c = criterion(COUNT, r#"comparator: "==", threshold: 0"#);
    let e = validate_card("start: 2026-06-01, end: 2026-06-14, cohort_size: 0", &c).unwrap_err();
    assert!(e.contains("field `pilot.cohort_size`"), "{e}");
    // The fixture launches on 2026-12-31: a pilot ending the day before is fine, the day
    // after is not.
    assert!(validate_card("start: 2026-06-01, end: 2026-12-30, cohort_size: 1", &c).is_ok());
    assert!(validate_card("start: 2026-06-01, end: 2026-12-31, cohort_size: 1", &c).is_ok());
    let e = validate_card("start: 2026-06-01, end: 2027-01-01, cohort_size: 1", &c).unwrap_err();
    assert!(
        e.contains("field `launch.target_date`")
            && e.contains("before the pilot ends (2027-01-01)"),
        "{e}"
    );
}
