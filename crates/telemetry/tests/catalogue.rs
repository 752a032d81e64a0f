//! The metric catalogue on a small hand-checked data set, read both as CSV and as JSON Lines.

use stagegate_core::card::AgentCard;
use stagegate_telemetry::{TelemetryError, measure};
use std::path::Path;

const CSV: &str = "\
when,who,ms,ok,sev,cost
2026-05-31T23:59:59Z,u0,999,true,,9.0
2026-06-01T09:00:00Z,u1,100,true,,0.5
2026-06-01T10:00:00Z,u2,200,false,sev2,1.5
2026-06-02T09:30:00Z,u1,300,true,,
2026-06-08T09:00:00Z,u3,400,true,sev1,2.0
2026-06-14 12:00:00,u4,1000,,,1.0
2026-06-15T00:00:00Z,u9,5,true,,1.0
";

/// The same rows as JSON Lines (missing values as null or absent keys).
const JSONL: &str = r#"{"when":"2026-05-31T23:59:59Z","who":"u0","ms":999,"ok":true,"cost":9.0}
{"when":"2026-06-01T09:00:00Z","who":"u1","ms":100,"ok":true,"sev":null,"cost":0.5}
{"when":"2026-06-01T10:00:00Z","who":"u2","ms":200,"ok":false,"sev":"sev2","cost":1.5}
{"when":"2026-06-02T09:30:00Z","who":"u1","ms":300,"ok":true}

{"when":"2026-06-08T09:00:00Z","who":"u3","ms":400,"ok":true,"sev":"sev1","cost":2.0}
{"when":"2026-06-14 12:00:00","who":"u4","ms":1000,"cost":1.0}
{"when":"2026-06-15T00:00:00Z","who":"u9","ms":5,"ok":true,"cost":1.0}
"#;

const CRITERIA: &str = r#"  - { id: n, description: d, metric: { kind: count }, comparator: ">=", threshold: 0 }
  - { id: sev1, description: d, metric: { kind: count, where: { field: severity, op: eq, value: sev1 } }, comparator: "==", threshold: 0 }
  - { id: total_cost, description: d, metric: { kind: sum, field: cost_usd }, comparator: ">=", threshold: 0 }
  - { id: mean_ms, description: d, metric: { kind: mean, field: latency_ms }, comparator: ">=", threshold: 0 }
  - { id: ok_rate, description: d, metric: { kind: rate, of: { field: accepted, op: is_true } }, comparator: ">=", threshold: 0 }
  - { id: slow_rate, description: d, metric: { kind: rate, of: { field: latency_ms, op: gt, value: 250 } }, comparator: ">=", threshold: 0 }
  - { id: cost_per_ms, description: d, metric: { kind: ratio, numerator: cost_usd, denominator: latency_ms }, comparator: ">=", threshold: 0 }
  - { id: p50, description: d, metric: { kind: quantile, field: latency_ms, q: 0.5 }, comparator: ">=", threshold: 0 }
  - { id: p95, description: d, metric: { kind: quantile, field: latency_ms, q: 0.95 }, comparator: ">=", threshold: 0 }
  - { id: users, description: d, metric: { kind: distinct, field: user }, comparator: ">=", threshold: 0 }
  - { id: adoption, description: d, metric: { kind: adoption }, comparator: ">=", threshold: 0 }
  - { id: busiest_day, description: d, metric: { kind: count, per: day, reduce: max }, comparator: ">=", threshold: 0 }
  - { id: weekly_cost, description: d, metric: { kind: sum, field: cost_usd, per: week }, comparator: ">=", threshold: 0 }
  - { id: double_ms, description: d, metric: { kind: mean, field: ms2 }, comparator: ">=", threshold: 0 }"#;

const TELEMETRY: &str = r#"  files: [FILE]
  columns: { timestamp: when, user: who, latency_ms: ms, accepted: ok, severity: sev, cost_usd: cost }
  derived:
    ms2: { sum_of: [{ field: latency_ms, weight: 2 }] }"#;

fn card(file: &str) -> AgentCard {
    stagegate_testkit::card(
        "ops",
        "start: 2026-06-01, end: 2026-06-14, cohort_size: 8",
        CRITERIA,
        &TELEMETRY.replace("FILE", file),
    )
}

fn value(out: &stagegate_telemetry::TelemetryOutcome, id: &str) -> f64 {
    out.measurements[id].value.unwrap_or(f64::NAN)
}

fn check(dir: &Path, file: &str) {
    let out = measure(dir, &card(file)).unwrap();
    // Window 2026-06-01 00:00Z ..< 2026-06-15 00:00Z keeps rows 2–6 (5 rows).
    assert_eq!(out.rows_read, 7);
    assert_eq!(out.rows_in_window, 5);
    assert_eq!(value(&out, "n"), 5.0);
    assert_eq!(value(&out, "sev1"), 1.0);
    assert_eq!(value(&out, "total_cost"), 0.5 + 1.5 + 2.0 + 1.0);
    assert_eq!(
        value(&out, "mean_ms"),
        (100.0 + 200.0 + 300.0 + 400.0 + 1000.0) / 5.0
    );
    // accepted is missing on one row: the rate is over the 4 rows that have it.
    assert_eq!(value(&out, "ok_rate"), 3.0 / 4.0);
    assert_eq!(value(&out, "slow_rate"), 3.0 / 5.0);
    // Ratio of sums over rows with both values: (0.5+1.5+2+1)/(100+200+400+1000).
    assert!((value(&out, "cost_per_ms") - 5.0 / 1700.0).abs() < 1e-15);
    // numpy.quantile([100,200,300,400,1000], [0.5, 0.95]) = [300, 880]
    assert_eq!(value(&out, "p50"), 300.0);
    assert!((value(&out, "p95") - 880.0).abs() < 1e-9);
    assert_eq!(value(&out, "users"), 4.0);
    assert_eq!(value(&out, "adoption"), 4.0 / 8.0);
    assert_eq!(value(&out, "busiest_day"), 2.0);
    // Week 1 (06-01..06-07): 0.5+1.5 = 2.0; week 2 (06-08..06-14): 2.0+1.0 = 3.0; mean 2.5.
    assert_eq!(value(&out, "weekly_cost"), 2.5);
    let weeks: Vec<(String, f64)> = out.measurements["weekly_cost"]
        .series
        .iter()
        .map(|p| (p.bucket.clone(), p.value))
        .collect();
    assert_eq!(
        weeks,
        vec![("week 1".to_owned(), 2.0), ("week 2".to_owned(), 3.0)]
    );
    assert_eq!(value(&out, "double_ms"), 2.0 * 400.0);
}

#[test]
fn csv_and_jsonl_give_the_same_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.csv"), CSV).unwrap();
    std::fs::write(tmp.path().join("t.jsonl"), JSONL).unwrap();
    check(tmp.path(), "t.csv");
    check(tmp.path(), "t.jsonl");
}

#[test]
fn bad_jsonl_names_the_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = JSONL.replace(r#""ms":400"#, r#""ms":"fast""#);
    std::fs::write(tmp.path().join("t.jsonl"), bad).unwrap();
    let e = measure(tmp.path(), &card("t.jsonl")).unwrap_err();
    assert!(matches!(e, TelemetryError::Invalid { .. }));
    let s = e.to_string();
    assert!(s.contains("t.jsonl:6: field `ms (latency_ms)`"), "{s}");
    assert!(s.contains("expected a number"), "{s}");

    let broken = JSONL.replace(r#"{"when":"2026-06-14"#, r#"{"when" "2026-06-14"#);
    std::fs::write(tmp.path().join("t.jsonl"), broken).unwrap();
    let s = measure(tmp.path(), &card("t.jsonl"))
        .unwrap_err()
        .to_string();
    assert!(s.contains("t.jsonl:7: not a JSON object"), "{s}");
}

#[test]
fn empty_window_gives_no_value_not_zero() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("t.csv"),
        "when,who,ms,ok,sev,cost\n2026-07-01T00:00:00Z,u1,5,true,,1\n",
    )
    .unwrap();
    let out = measure(tmp.path(), &card("t.csv")).unwrap();
    assert_eq!(out.rows_in_window, 0);
    assert_eq!(out.measurements["mean_ms"].value, None);
    assert_eq!(out.measurements["p95"].value, None);
    assert!(
        out.measurements["p95"]
            .note
            .as_deref()
            .unwrap()
            .contains("no telemetry rows")
    );
    assert_eq!(out.measurements["n"].value, Some(0.0));
}

#[test]
fn drift_and_missing_values_are_flagged_per_week() {
    // Week 1: latency 100–199, cost present. Week 2: latency 1000–1099 (shifted), cost
    // missing on half the rows.
    let mut csv = String::from("when,who,ms,ok,sev,cost\n");
    for i in 0..100 {
        csv.push_str(&format!(
            "2026-06-02T10:00:00Z,u{},{},true,,1.0\n",
            i % 5,
            100 + i
        ));
    }
    for i in 0..100 {
        let cost = if i % 2 == 0 { "" } else { "1.0" };
        csv.push_str(&format!(
            "2026-06-09T10:00:00Z,u{},{},true,,{cost}\n",
            i % 5,
            1000 + i
        ));
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.csv"), csv).unwrap();
    let out = measure(tmp.path(), &card("t.csv")).unwrap();
    let q = &out.data_quality;
    let ms = q.columns.iter().find(|c| c.role == "latency_ms").unwrap();
    assert_eq!(ms.weeks.len(), 2);
    assert_eq!(ms.weeks[0].psi, None, "week 1 is the reference");
    assert!(ms.weeks[1].psi.unwrap() > 0.25);
    let cost = q.columns.iter().find(|c| c.role == "cost_usd").unwrap();
    assert_eq!(cost.weeks[1].missing_rate, 0.5);
    assert!(
        q.flags
            .iter()
            .any(|f| f.contains("`latency_ms` shifted in week 2")),
        "{:?}",
        q.flags
    );
    assert!(
        q.flags
            .iter()
            .any(|f| f.contains("`cost_usd` missing in 50.0% of week 2")),
        "{:?}",
        q.flags
    );
    assert!(
        !q.flags.iter().any(|f| f.contains("`user`")),
        "{:?}",
        q.flags
    );
}

fn big_csv(rows: usize, quoted: bool) -> String {
    let mut csv = String::from("when,who,ms,ok,sev,cost\n");
    for i in 0..rows {
        let day = 1 + (i * 13 / rows.max(1));
        let who = if quoted {
            format!("\"u{}, team {}\"", i % 17, i % 3)
        } else {
            format!("u{}", i % 17)
        };
        csv.push_str(&format!(
            "2026-06-{day:02}T{:02}:{:02}:00Z,{who},{},{},{},{}\n",
            i % 24,
            i % 60,
            (i * 7919) % 1000 + 50,
            i % 5 != 0,
            if i % 97 == 0 { "sev1" } else { "" },
            (i % 13) as f64 * 0.25
        ));
    }
    csv
}

fn all_values(out: &stagegate_telemetry::TelemetryOutcome) -> Vec<(String, String)> {
    out.measurements
        .iter()
        .map(|(k, m)| {
            (
                k.clone(),
                format!("{:?} {:?} {} {:?}", m.value, m.interval, m.rows, m.series),
            )
        })
        .collect()
}

#[test]
fn chunked_parallel_reads_equal_one_pass() {
    use stagegate_telemetry::{NoProgress, Options, measure_with};
    for quoted in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let csv = big_csv(5000, quoted);
        std::fs::write(tmp.path().join("t.csv"), &csv).unwrap();
        let whole = Options {
            threads: 1,
            chunk_bytes: 1 << 30,
            ..Options::default()
        };
        let chunked = Options {
            threads: 3,
            chunk_bytes: 4096,
            ..Options::default()
        };
        let a = measure_with(tmp.path(), &card("t.csv"), &NoProgress, whole).unwrap();
        let b = measure_with(tmp.path(), &card("t.csv"), &NoProgress, chunked).unwrap();
        assert_eq!(a.rows_read, 5000);
        assert_eq!(
            (a.rows_read, a.rows_in_window),
            (b.rows_read, b.rows_in_window),
            "quoted={quoted}"
        );
        // Exact tallies and order statistics match exactly; sums may differ in the last bits.
        for id in [
            "n",
            "sev1",
            "ok_rate",
            "slow_rate",
            "p50",
            "p95",
            "users",
            "adoption",
            "busiest_day",
        ] {
            assert_eq!(
                a.measurements[id], b.measurements[id],
                "{id} quoted={quoted}"
            );
        }
        for id in ["total_cost", "mean_ms", "cost_per_ms", "weekly_cost"] {
            let (x, y) = (
                a.measurements[id].value.unwrap(),
                b.measurements[id].value.unwrap(),
            );
            assert!(
                (x - y).abs() <= 1e-12 * x.abs().max(1.0),
                "{id}: {x} vs {y}"
            );
        }
        assert_eq!(a.inputs, b.inputs, "same digest however the file is read");
        // The same chunking twice gives identical bytes.
        let c = measure_with(tmp.path(), &card("t.csv"), &NoProgress, chunked).unwrap();
        assert_eq!(all_values(&b), all_values(&c));
    }
}

#[test]
fn an_error_in_a_later_chunk_names_the_files_line() {
    use stagegate_telemetry::{NoProgress, Options, measure_with};
    let tmp = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = big_csv(3000, false).lines().map(str::to_owned).collect();
    lines[2500] =
        lines[2500]
            .replacen(",true,", ",perhaps,", 1)
            .replacen(",false,", ",perhaps,", 1);
    std::fs::write(tmp.path().join("t.csv"), lines.join("\n") + "\n").unwrap();
    let chunked = Options {
        threads: 2,
        chunk_bytes: 4096,
        ..Options::default()
    };
    let e = measure_with(tmp.path(), &card("t.csv"), &NoProgress, chunked)
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.csv:2501: field `ok (accepted)`"), "{e}");
}

#[test]
fn beyond_the_exact_limit_quantiles_are_approximate_and_say_so() {
    use stagegate_telemetry::{NoProgress, Options, SKETCH_RELATIVE_ERROR, measure_with};
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.csv"), big_csv(5000, false)).unwrap();
    let exact = measure(tmp.path(), &card("t.csv")).unwrap();
    let small = Options {
        quantile_limit: 1000,
        ..Options::default()
    };
    let approx = measure_with(tmp.path(), &card("t.csv"), &NoProgress, small).unwrap();
    let (e, a) = (&exact.measurements["p95"], &approx.measurements["p95"]);
    assert!(
        a.note.as_deref().unwrap().contains("approximate quantile"),
        "{:?}",
        a.note
    );
    assert!(a.interval.is_none(), "no exact interval for a sketch");
    let (ev, av) = (e.value.unwrap(), a.value.unwrap());
    assert!(
        (av - ev).abs() <= ev * (SKETCH_RELATIVE_ERROR + 0.005),
        "{av} vs {ev}"
    );
}
