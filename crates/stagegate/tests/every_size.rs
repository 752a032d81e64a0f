//! Verdicts that hold at every size, through `stagegate review`: a mean that sits exactly on its
//! threshold used to hang `review` and `plan` for ever (statrs' t quantile does not return past
//! about 1.5·10⁷ degrees of freedom). Now it returns — inconclusive, "no number of events
//! decides it" — with the t interval (checked against scipy in stagegate-stats). Sizes past what
//! a test should write to disk (2·10⁷ rows) are covered where the statistics live, in
//! stagegate-telemetry's `every_size` test; `bench/` times them.

mod common;

use common::{criterion, review_json};
use std::path::Path;

/// An agent folder with one mean criterion ("satisfaction ≥ 4.2") over `scores`.
fn folder(dir: &Path, scores: &[f64], threshold: f64) {
    let card = stagegate_testkit::card_yaml(
        "support",
        "start: 2026-06-01, end: 2026-06-30, cohort_size: 20",
        &format!(
            "  - {{ id: csat, description: mean satisfaction, metric: {{ kind: mean, field: csat }}, comparator: \">=\", threshold: {threshold} }}\n  - {{ id: csat_p99, description: p99 satisfaction, metric: {{ kind: quantile, field: csat, q: 0.99 }}, comparator: \"<=\", threshold: 5 }}"
        ),
        "  files: [t.csv]\n  columns: { timestamp: ts, csat: csat }",
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("agent.yaml"), card).unwrap();
    std::fs::write(dir.join("runbook.md"), "# Runbook\n").unwrap();
    let mut csv = String::from("ts,csat\n");
    for (i, s) in scores.iter().enumerate() {
        csv.push_str(&format!("2026-06-{:02}T10:00:00Z,{s}\n", 1 + i % 30));
    }
    std::fs::write(dir.join("t.csv"), csv).unwrap();
}

#[test]
fn twenty_scores_averaging_exactly_the_threshold_return_inconclusive() {
    let tmp = tempfile::tempdir().unwrap();
    // 20 satisfaction scores averaging 4.2; the threshold is set to the mean exactly as the
    // engine computes it (to the last bit), which is the case that never returned.
    let scores: Vec<f64> = [5.0, 4.0, 4.0, 3.0, 5.0].repeat(4);
    folder(tmp.path(), &scores, 4.2);
    let (_, v, _) = review_json(tmp.path(), "2026-07-01");
    let mean = criterion(&v, "csat")["actual"].as_f64().unwrap();
    assert!((mean - 4.2).abs() < 1e-12);
    folder(tmp.path(), &scores, mean);
    let (code, v, _) = review_json(tmp.path(), "2026-07-01");
    assert_eq!(
        code,
        Some(20),
        "blocked: no evidence for items 2–10, and csat undecided"
    );
    let c = criterion(&v, "csat");
    assert_eq!(c["verdict"], "inconclusive", "{c}");
    assert_eq!(c["more_events"]["status"], "never", "{c}");
    let i = &c["interval"];
    let (low, high) = (i["low"].as_f64().unwrap(), i["high"].as_f64().unwrap());
    let s = stagegate_stats::compare::Summary::of(&scores);
    let want = stagegate_stats::interval::mean_t(20, s.mean, s.var.sqrt(), 0.95).unwrap();
    assert!((low - want.low).abs() < 1e-12 && (high - want.high).abs() < 1e-12);
    assert!(low < 4.2 && 4.2 < high);
    // The p99 of 20 scores: the interval cannot reach 95% (at best 0.18) — no verdict.
    let p99 = criterion(&v, "csat_p99");
    assert_eq!(p99["verdict"], "inconclusive", "{p99}");
    assert!(p99["interval"]["coverage"].as_f64().unwrap() < 0.19);
    assert_eq!(p99["more_events"]["status"], "for_coverage");
    assert_eq!(p99["more_events"]["events"], 279);
    let item1 = v["items"][0]["reasons"].to_string();
    assert!(item1.contains("no number of events decides it"), "{item1}");
    assert!(item1.contains("can only cover with probability"), "{item1}");
}

#[test]
fn one_score_is_never_met_or_not_met() {
    let tmp = tempfile::tempdir().unwrap();
    folder(tmp.path(), &[4.2], 4.2);
    let (_, v, _) = review_json(tmp.path(), "2026-07-01");
    let c = criterion(&v, "csat");
    assert_eq!(c["verdict"], "inconclusive", "{c}");
    assert!(c["interval"].is_null());
    assert_eq!(c["more_events"]["status"], "for_coverage");
    assert_eq!(c["more_events"]["events"], 1);
    // One score well above the threshold is still only one score.
    folder(tmp.path(), &[5.0], 1.0);
    let (_, v, _) = review_json(tmp.path(), "2026-07-01");
    assert_eq!(criterion(&v, "csat")["verdict"], "inconclusive");
}

#[test]
fn a_million_rows_on_the_threshold_return() {
    let tmp = tempfile::tempdir().unwrap();
    // 10⁶ handle times alternating 6.0 and 7.25; the threshold is the mean as the engine
    // computes it, read back from a first review.
    let scores: Vec<f64> = (0..1_000_000)
        .map(|i| if i % 2 == 0 { 6.0 } else { 7.25 })
        .collect();
    folder(tmp.path(), &scores, 6.625);
    let (_, v, _) = review_json(tmp.path(), "2026-07-01");
    let mean = criterion(&v, "csat")["actual"].as_f64().unwrap();
    assert!((mean - 6.625).abs() < 1e-12);
    folder(tmp.path(), &scores, mean);
    let (_, v, _) = review_json(tmp.path(), "2026-07-01");
    let c = criterion(&v, "csat");
    assert_eq!(c["rows"], 1_000_000);
    assert_eq!(c["verdict"], "inconclusive");
    assert_eq!(c["more_events"]["status"], "never");
    let s = stagegate_stats::compare::Summary {
        n: 1_000_000,
        mean,
        var: 0.625f64.powi(2) * 1_000_000.0 / 999_999.0,
    };
    let want = stagegate_stats::interval::mean_t(s.n, s.mean, s.var.sqrt(), 0.95).unwrap();
    let got = &c["interval"];
    assert!(
        (got["low"].as_f64().unwrap() - want.low).abs() < 1e-9,
        "{got} vs {want:?}"
    );
    assert!(
        (got["high"].as_f64().unwrap() - want.high).abs() < 1e-9,
        "{got} vs {want:?}"
    );
}
