//! The verdict rule (coverage before verdict; superiority, non-inferiority and equivalence) and
//! the card rules for comparisons, on small hand-written cases.

use stagegate_core::card::{AgentCard, Comparator, Hypothesis};
use stagegate_core::review::{Interval, Target, Verdict};
use stagegate_testkit::card_yaml;

fn nominal(low: f64, high: f64) -> Interval {
    Interval::nominal(low, high, 0.95)
}

fn judge(c: Comparator, t: Target, actual: Option<f64>, i: Option<Interval>) -> Verdict {
    Verdict::judge(c, t, actual, i.as_ref(), true)
}

#[test]
fn a_sample_statistic_needs_an_interval_that_reaches_the_confidence() {
    use Comparator::*;
    // A mean of one value: no interval, never met or not met.
    assert_eq!(
        judge(Le, Target::Limit(5.0), Some(1.0), None),
        Verdict::Inconclusive
    );
    // A p99 over 20 values: the interval covers with probability 0.18 at best.
    let short = Interval::exact(10.0, 20.0, 0.95, 0.182);
    assert_eq!(
        judge(Le, Target::Limit(500.0), Some(15.0), Some(short)),
        Verdict::Inconclusive
    );
    assert_eq!(
        judge(Ge, Target::Limit(500.0), Some(15.0), Some(short)),
        Verdict::Inconclusive
    );
    // The same interval at full coverage decides.
    let full = Interval::exact(10.0, 20.0, 0.95, 0.96);
    assert_eq!(
        judge(Le, Target::Limit(500.0), Some(15.0), Some(full)),
        Verdict::Met
    );
    assert_eq!(
        judge(Ge, Target::Limit(500.0), Some(15.0), Some(full)),
        Verdict::NotMet
    );
    // Nothing measured.
    assert_eq!(judge(Le, Target::Limit(5.0), None, None), Verdict::NoData);
    // Exact tallies compare their value.
    let exact = |a| Verdict::judge(Eq, Target::Limit(0.0), Some(a), None, false);
    assert_eq!(exact(0.0), Verdict::Met);
    assert_eq!(exact(1.0), Verdict::NotMet);
}

#[test]
fn an_undefined_point_effect_is_judged_by_its_interval() {
    // Relative change over a zero reference: unbounded above, but clearly higher than +50%.
    let i = nominal(0.8, f64::INFINITY);
    assert_eq!(
        judge(Comparator::Le, Target::Limit(0.5), None, Some(i)),
        Verdict::NotMet
    );
    assert_eq!(
        judge(Comparator::Le, Target::Limit(1.0), None, Some(i)),
        Verdict::Inconclusive
    );
}

#[test]
fn limits_decide_at_either_end_of_the_interval() {
    use Comparator::*;
    let i = nominal(0.1, 0.3);
    for (c, t, want) in [
        (Le, 0.35, Verdict::Met),
        (Le, 0.2, Verdict::Inconclusive),
        (Le, 0.05, Verdict::NotMet),
        (Lt, 0.3, Verdict::Inconclusive),
        (Ge, 0.05, Verdict::Met),
        (Gt, 0.1, Verdict::Inconclusive),
        (Ge, 0.4, Verdict::NotMet),
    ] {
        assert_eq!(
            judge(c, Target::Limit(t), Some(0.2), Some(i)),
            want,
            "{c:?} {t}"
        );
    }
}

#[test]
fn equivalence_needs_the_interval_inside_the_band() {
    let band = Target::Band(-0.1, 0.1);
    let j = |lo, hi| {
        judge(
            Comparator::Eq,
            band,
            Some((lo + hi) / 2.0),
            Some(nominal(lo, hi)),
        )
    };
    assert_eq!(j(-0.05, 0.08), Verdict::Met);
    assert_eq!(j(-0.05, 0.12), Verdict::Inconclusive);
    assert_eq!(j(0.11, 0.3), Verdict::NotMet);
    assert_eq!(j(-0.3, -0.2), Verdict::NotMet);
    assert_eq!(j(-0.2, 0.2), Verdict::Inconclusive, "wider than the band");
}

fn criterion_yaml(compare: &str, comparator: &str, threshold: &str) -> String {
    format!(
        "  - id: errors\n    description: compliance errors\n    metric: {{ kind: rate, of: {{ field: error, op: is_true }} }}\n    comparator: \"{comparator}\"\n    threshold: {threshold}\n    compare: {{ against: baseline, baseline: {{ start: 2026-05-01, end: 2026-05-20 }}{compare} }}\n"
    )
}

fn parse(criteria: &str) -> Result<AgentCard, String> {
    let yaml = card_yaml(
        "ops",
        "start: 2026-06-01, end: 2026-06-14, cohort_size: 8",
        criteria,
        "  files: [t.csv]\n  columns: { timestamp: ts, user: user, agent_id: agent, cohort: arm, error: error, handle: handle }",
    );
    let c: AgentCard = serde_saphyr::from_str(&yaml).map_err(|e| e.to_string())?;
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

#[test]
fn non_inferiority_moves_the_threshold_by_the_margin_in_the_tolerated_direction() {
    let c = parse(&criterion_yaml(
        ", hypothesis: non_inferiority, margin: 0.002",
        "<=",
        "0",
    ))
    .unwrap();
    let crit = &c.success_criteria[0];
    assert_eq!(crit.hypothesis(), Hypothesis::NonInferiority);
    assert_eq!(crit.target(), Target::Limit(0.002));
    assert_eq!(
        crit.compare.as_ref().unwrap().interval_level(0.95),
        0.9,
        "one-sided 95% bounds are a two-sided 90% interval"
    );
    let c = parse(&criterion_yaml(
        ", hypothesis: non_inferiority, margin: 0.2",
        ">=",
        "0",
    ))
    .unwrap();
    assert_eq!(c.success_criteria[0].target(), Target::Limit(-0.2));
    let c = parse(&criterion_yaml(
        ", hypothesis: equivalence, margin: 0.05",
        "==",
        "0",
    ))
    .unwrap();
    assert_eq!(c.success_criteria[0].target(), Target::Band(-0.05, 0.05));
}

#[test]
fn comparison_settings_that_do_not_fit_are_refused_with_the_field() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            ", hypothesis: non_inferiority",
            "<=",
            "0",
            "needs a `margin`",
        ),
        (", margin: 0.1", "<=", "0", "a margin belongs to"),
        (
            ", hypothesis: equivalence, margin: 0.1",
            "<=",
            "0",
            "equivalence needs `comparator: \"==\"`",
        ),
        (
            ", hypothesis: non_inferiority, margin: 0.1",
            "==",
            "0",
            "non-inferiority needs a direction",
        ),
        ("", "==", "0", "state `hypothesis: equivalence`"),
        (
            ", hypothesis: non_inferiority, margin: -1",
            "<=",
            "0",
            "is not a positive margin",
        ),
        (", unit: arm", "<=", "0", "is not an id role"),
        (", unit: shop_id", "<=", "0", "is not mapped"),
        (
            ", cuped: true, unit: agent_id",
            "<=",
            "0",
            "CUPED adjusts a control-cohort comparison",
        ),
    ];
    for (extra, comparator, threshold, want) in cases {
        let e = parse(&criterion_yaml(extra, comparator, threshold)).unwrap_err();
        assert!(e.contains(want), "{extra}: {e}");
        assert!(
            e.contains("success_criteria[0]"),
            "{extra}: names the field: {e}"
        );
    }
    let control = |extra: &str| {
        format!(
            "  - id: handle\n    description: handle time\n    metric: {{ kind: mean, field: handle }}\n    comparator: \"<=\"\n    threshold: 0\n    compare: {{ against: control, control_cohort: manual{extra} }}\n"
        )
    };
    for (extra, want) in [
        (", cuped: true", "CUPED needs `unit`"),
        (", cuped: true, unit: agent_id", "CUPED needs `baseline"),
        (
            ", baseline: { start: 2026-05-01, end: 2026-05-20 }",
            "CUPED's covariate period",
        ),
        (
            ", cuped: true, unit: agent_id, baseline: { start: 2026-05-01, end: 2026-06-02 }",
            "must end before the pilot starts",
        ),
        (
            ", unit: agent_id, test: mann_whitney",
            "per-unit comparisons take rates and means",
        ),
    ] {
        let e = parse(&control(extra)).unwrap_err();
        assert!(e.contains(want), "{extra}: {e}");
    }
    assert!(
        parse(&control(
            ", cuped: true, unit: agent_id, baseline: { start: 2026-05-01, end: 2026-05-20 }"
        ))
        .is_ok()
    );
    let e = parse(&control(", pilot_cohort: manual")).unwrap_err();
    assert!(
        e.contains("compare.pilot_cohort") && e.contains("is the control cohort"),
        "{e}"
    );
}

#[test]
fn equality_is_for_exact_tallies_only() {
    let plain = |metric: &str| {
        format!(
            "  - id: c\n    description: d\n    metric: {metric}\n    comparator: \"==\"\n    threshold: 0\n"
        )
    };
    for metric in [
        "{ kind: rate, of: { field: error, op: is_true } }",
        "{ kind: mean, field: handle }",
        "{ kind: quantile, field: handle, q: 0.9 }",
    ] {
        let e = parse(&plain(metric)).unwrap_err();
        assert!(
            e.contains("success_criteria[0].comparator")
                && e.contains("no interval equals a value"),
            "{metric}: {e}"
        );
    }
    assert!(
        parse(&plain(
            "{ kind: count, where: { field: error, op: is_true } }"
        ))
        .is_ok()
    );
    assert!(
        parse(&plain(
            "{ kind: mean, field: handle, per: day, reduce: max }"
        ))
        .is_ok()
    );
}

#[test]
fn an_improvement_criterion_must_have_a_direction_of_benefit() {
    let with_econ = |criteria: &str, improvement_criterion: &str| {
        let yaml = card_yaml(
            "ops",
            "start: 2026-06-01, end: 2026-06-14, cohort_size: 8",
            criteria,
            "  files: [t.csv]\n  columns: { timestamp: ts, handle: handle }",
        ) + &format!(
            "economics: {{ volume_per_month: 100, baseline_minutes_per_unit: 6, cost_per_minute_usd: 1, improvement_criterion: {improvement_criterion}, annual_run_cost_usd: 10, one_off_costs_usd: 10 }}\n"
        );
        let c: AgentCard = serde_saphyr::from_str(&yaml).unwrap();
        c.validate().map_err(|e| e.to_string())
    };
    let lower_no_baseline = "  - id: aht\n    description: handle time\n    metric: { kind: mean, field: handle }\n    comparator: \"<=\"\n    threshold: 5\n";
    let e = with_econ(lower_no_baseline, "aht").unwrap_err();
    assert!(
        e.contains("economics.improvement_criterion") && e.contains("not a fraction saved"),
        "{e}"
    );
    let with_baseline = format!("{lower_no_baseline}    baseline: 6.6\n");
    assert!(with_econ(&with_baseline, "aht").is_ok());
    // A higher-is-better value is read as the fraction saved only when it is one.
    let count = "  - id: tickets\n    description: tickets closed\n    metric: { kind: count }\n    comparator: \">=\"\n    threshold: 10\n";
    let e = with_econ(count, "tickets").unwrap_err();
    assert!(e.contains("only with `unit: ratio`"), "{e}");
    // (As a `ratio` its threshold must be a fraction too.)
    let ratio = format!(
        "{}    unit: ratio\n",
        count.replace("threshold: 10", "threshold: 0.5")
    );
    assert!(with_econ(&ratio, "tickets").is_ok());
}
