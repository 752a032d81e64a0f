//! Malformed input of every kind: a clear error naming the file, line or row, and field; a
//! distinct exit code; no panic; and the registry unchanged.

mod common;
use common::*;
use std::path::Path;

type Mutation = fn(&Path);

struct Case {
    name: &'static str,
    mutate: Mutation,
    code: i32,
    /// Every one of these must appear in stderr.
    says: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "malformed card YAML",
        mutate: |d| edit(&d.join("agent.yaml"), "tier: medium", "tier: [medium"),
        code: 65,
        says: &["agent.yaml:6:7: field `tier`"],
    },
    Case {
        name: "unknown card field",
        mutate: |d| {
            edit(
                &d.join("agent.yaml"),
                "lane: regulated\n",
                "lane: regulated\ncolour: blue\n",
            )
        },
        code: 65,
        says: &["agent.yaml:8:", "unknown field `colour`"],
    },
    Case {
        name: "missing card field",
        mutate: |d| edit(&d.join("agent.yaml"), "lane: regulated\n", ""),
        code: 65,
        says: &["agent.yaml", "missing field `lane`"],
    },
    Case {
        name: "wrong type",
        mutate: |d| {
            edit(
                &d.join("agent.yaml"),
                "cohort_size: 12",
                "cohort_size: twelve",
            )
        },
        code: 65,
        says: &["agent.yaml:27:", "field `pilot.cohort_size`"],
    },
    Case {
        name: "bad date",
        mutate: |d| {
            edit(
                &d.join("agent.yaml"),
                "start: 2026-05-13",
                "start: 2026-05-32",
            )
        },
        code: 65,
        says: &["agent.yaml:23:", "field `pilot.start`"],
    },
    Case {
        name: "card rule serde cannot express",
        mutate: |d| {
            edit(
                &d.join("agent.yaml"),
                "department: finance",
                "department: legal",
            )
        },
        code: 65,
        says: &[
            "agent.yaml:8:13: field `department`",
            "does not match the id",
        ],
    },
    Case {
        name: "evidence wrong type in front matter",
        mutate: |d| {
            edit(
                &d.join("evidence/drill-2026-06-08.md"),
                "time_to_stop_seconds: 37",
                "time_to_stop_seconds: fast",
            )
        },
        code: 65,
        says: &[
            "evidence/drill-2026-06-08.md:13:",
            "field `drill.time_to_stop_seconds`",
        ],
    },
    Case {
        name: "evidence unknown kind",
        mutate: |d| {
            edit(
                &d.join("evidence/dashboards.yaml"),
                "kind: link",
                "kind: screenshot",
            )
        },
        code: 65,
        says: &["evidence/dashboards.yaml:2:", "field `kind`"],
    },
    Case {
        name: "evidence kind without its block",
        mutate: |d| {
            edit(
                &d.join("evidence/rotation-anthropic-key.yaml"),
                "rotation:\n",
                "rotashun:\n",
            )
        },
        code: 65,
        says: &["evidence/rotation-anthropic-key.yaml:6:1:", "rotashun"],
    },
    Case {
        name: "telemetry missing",
        mutate: |d| std::fs::remove_file(d.join("telemetry/invoices.csv")).unwrap(),
        code: 66,
        says: &["telemetry/invoices.csv", "cannot read telemetry"],
    },
    Case {
        name: "telemetry unreadable",
        mutate: |d| {
            std::fs::remove_file(d.join("telemetry/invoices.csv")).unwrap();
            std::fs::create_dir(d.join("telemetry/invoices.csv")).unwrap();
        },
        code: 66,
        says: &["telemetry/invoices.csv", "cannot read telemetry"],
    },
    Case {
        name: "telemetry row with a bad value",
        mutate: |d| set_csv_cell(&d.join("telemetry/invoices.csv"), 1500, 3, "3.7s"),
        code: 65,
        says: &[
            "telemetry/invoices.csv:1500:",
            "field `latency_ms (latency_ms)`",
            "expected a number, found \"3.7s\"",
        ],
    },
    Case {
        name: "telemetry bad timestamp",
        mutate: |d| {
            set_csv_cell(
                &d.join("telemetry/invoices.csv"),
                1501,
                0,
                "2026-05-13 07:96:24",
            )
        },
        code: 65,
        says: &["telemetry/invoices.csv:1501:", "field `ts (timestamp)`"],
    },
    Case {
        name: "telemetry column missing",
        mutate: |d| edit(&d.join("telemetry/invoices.csv"), "latency_ms,", "latency,"),
        code: 65,
        says: &["telemetry/invoices.csv:1:", "no column `latency_ms`"],
    },
    Case {
        name: "non-inferiority without a margin",
        mutate: |d| {
            edit(
                &d.join("agent.yaml"),
                "baseline: { start: 2026-04-13, end: 2026-05-08 }, effect: relative }",
                "baseline: { start: 2026-04-13, end: 2026-05-08 }, effect: relative, hypothesis: non_inferiority }",
            )
        },
        code: 65,
        says: &[
            "agent.yaml:67:14: field `success_criteria[5].compare.margin`",
            "needs a `margin`",
        ],
    },
    Case {
        name: "a unit of analysis that is not an id role",
        mutate: |d| {
            edit(
                &d.join("agent.yaml"),
                "baseline: { start: 2026-04-13, end: 2026-05-08 }, effect: relative }",
                "baseline: { start: 2026-04-13, end: 2026-05-08 }, effect: relative, unit: severity }",
            )
        },
        code: 65,
        says: &[
            "agent.yaml:67:109: field `success_criteria[5].compare.unit`",
            "not an id role",
        ],
    },
    Case {
        name: "an improvement criterion read against its direction",
        mutate: |d| {
            edit(
                &d.join("agent.yaml"),
                "improvement_criterion: handle_minutes",
                "improvement_criterion: latency_p95",
            )
        },
        code: 65,
        says: &[
            "agent.yaml:130:26: field `economics.improvement_criterion`",
            "lower-is-better with neither a `baseline` nor a comparison",
        ],
    },
    Case {
        name: "gate template override relaxes items 4 and 9 silently",
        mutate: |d| {
            let t = stagegate_core::gates::BUILTIN_TEMPLATE_YAML
                .replace("open_blocks_items: [4, 9]", "open_blocks_items: []");
            std::fs::write(d.join("gates.yaml"), t).unwrap();
        },
        code: 65,
        says: &["gates.yaml:", "field `decision.relaxed_by`"],
    },
    // Impossible values: exit 65 at the value's line, like a syntax error.
    Case {
        name: "a rate threshold below 0",
        mutate: |d| edit(&d.join("agent.yaml"), "threshold: 0.90", "threshold: -0.5"),
        code: 65,
        says: &[
            "agent.yaml:34:16: field `success_criteria[0].threshold`",
            "-0.5 is out of range",
            "between 0 and 1",
        ],
    },
    Case {
        name: "a rate threshold of 90 (unit: ratio)",
        mutate: |d| edit(&d.join("agent.yaml"), "threshold: 0.90", "threshold: 90"),
        code: 65,
        says: &[
            "agent.yaml:34:16: field `success_criteria[0].threshold`",
            "between 0 and 1",
        ],
    },
    Case {
        name: "a `unit: ratio` threshold above 1 on an evidence criterion",
        mutate: |d| edit(&d.join("agent.yaml"), "unit: h/week", "unit: ratio"),
        code: 65,
        says: &[
            "agent.yaml:54:16: field `success_criteria[3].threshold`",
            "a `ratio` is a fraction between 0 and 1",
        ],
    },
    Case {
        name: "a negative count threshold",
        mutate: |d| {
            edit(
                &d.join("agent.yaml"),
                "threshold: 0\n    unit: count",
                "threshold: -1\n    unit: count",
            )
        },
        code: 65,
        says: &[
            "agent.yaml:42:16: field `success_criteria[1].threshold`",
            "never negative",
        ],
    },
    Case {
        name: "a negative duration threshold",
        mutate: |d| {
            edit(
                &d.join("agent.yaml"),
                "threshold: 20000",
                "threshold: -20000",
            )
        },
        code: 65,
        says: &[
            "agent.yaml:48:16: field `success_criteria[2].threshold`",
            "a duration is never negative",
        ],
    },
    Case {
        name: "a metric record outside its criterion's unit",
        mutate: |d| {
            edit(&d.join("agent.yaml"), "threshold: 4\n", "threshold: 0.4\n");
            edit(&d.join("agent.yaml"), "unit: h/week", "unit: ratio");
        },
        code: 65,
        says: &[
            "evidence/hours-saved-time-study.yaml:8:10: field `metric.value`",
            "5 is outside what criterion `hours_saved` can measure",
        ],
    },
    Case {
        name: "a cohort of 0",
        mutate: |d| edit(&d.join("agent.yaml"), "cohort_size: 12", "cohort_size: 0"),
        code: 65,
        says: &[
            "agent.yaml:27:16: field `pilot.cohort_size`",
            "0 is not a cohort",
        ],
    },
    Case {
        name: "a negative cohort",
        mutate: |d| edit(&d.join("agent.yaml"), "cohort_size: 12", "cohort_size: -12"),
        code: 65,
        says: &[
            "agent.yaml:27:16: field `pilot.cohort_size`",
            "expected a whole number, 0 or more",
        ],
    },
    Case {
        name: "a target launch before the pilot ends",
        mutate: |d| {
            edit(
                &d.join("agent.yaml"),
                "target_date: 2026-06-13",
                "target_date: 2026-06-01",
            )
        },
        code: 65,
        says: &[
            "agent.yaml:115:16: field `launch.target_date`",
            "2026-06-01 is before the pilot ends (2026-06-12)",
        ],
    },
    Case {
        name: "a scale target before the launch",
        mutate: |d| {
            edit(
                &d.join("agent.yaml"),
                "target_date: 2026-09-30",
                "target_date: 2026-06-01",
            )
        },
        code: 65,
        says: &[
            "agent.yaml:136:16: field `scale.target_date`",
            "before the production launch",
        ],
    },
    Case {
        name: "negative economics input",
        mutate: |d| {
            edit(
                &d.join("agent.yaml"),
                "volume_per_month: 4000",
                "volume_per_month: -4000",
            )
        },
        code: 65,
        says: &[
            "agent.yaml:127:21: field `economics.volume_per_month`",
            "at least 0",
        ],
    },
    Case {
        name: "a negative drill timing",
        mutate: |d| {
            edit(
                &d.join("evidence/drill-2026-06-08.md"),
                "time_to_stop_seconds: 37",
                "time_to_stop_seconds: -37",
            )
        },
        code: 65,
        says: &[
            "evidence/drill-2026-06-08.md:13:25: field `drill.time_to_stop_seconds`",
            "never negative",
        ],
    },
    Case {
        name: "an evidence item number out of range",
        mutate: |d| {
            edit(
                &d.join("evidence/dashboards.yaml"),
                "items: [2]",
                "items: [2, 11]",
            )
        },
        code: 65,
        says: &[
            "evidence/dashboards.yaml:1:12: field `items[1]`",
            "11 is not a checklist item",
        ],
    },
    Case {
        name: "a duplicate key in the card",
        mutate: |d| {
            edit(
                &d.join("agent.yaml"),
                "tier: medium\n",
                "tier: medium\ntier: high\n",
            )
        },
        code: 65,
        says: &["agent.yaml:7:1: field `tier`", "duplicate key `tier`"],
    },
    Case {
        name: "a duplicate nested key in the card",
        mutate: |d| {
            edit(
                &d.join("agent.yaml"),
                "cohort_size: 12\n",
                "cohort_size: 12\n  cohort_size: 13\n",
            )
        },
        code: 65,
        says: &[
            "agent.yaml:28:3: field `pilot.cohort_size`",
            "duplicate key `cohort_size`",
        ],
    },
    Case {
        name: "a duplicate key in an evidence record",
        mutate: |d| {
            edit(
                &d.join("evidence/dashboards.yaml"),
                "kind: link\n",
                "kind: link\nkind: document\n",
            )
        },
        code: 65,
        says: &[
            "evidence/dashboards.yaml:3:1: field `kind`",
            "duplicate key `kind`",
        ],
    },
    Case {
        name: "a duplicate key in front matter",
        mutate: |d| {
            edit(
                &d.join("evidence/drill-2026-06-08.md"),
                "duration_minutes: 60\n",
                "duration_minutes: 60\n  duration_minutes: 5\n",
            )
        },
        code: 65,
        says: &[
            "evidence/drill-2026-06-08.md:15:3: field `drill.duration_minutes`",
            "duplicate key `duration_minutes`",
        ],
    },
    Case {
        name: "a second YAML document in a record",
        mutate: |d| {
            let p = d.join("evidence/dashboards.yaml");
            let s = std::fs::read_to_string(&p).unwrap();
            std::fs::write(&p, format!("{s}---\nitems: [2]\n")).unwrap();
        },
        code: 65,
        says: &["evidence/dashboards.yaml:", "a second YAML document"],
    },
    Case {
        name: "a record date in the wrong format",
        mutate: |d| {
            edit(
                &d.join("evidence/dashboards.yaml"),
                "date: 2026-06-11",
                "date: 12/06/2026",
            )
        },
        code: 65,
        says: &[
            "evidence/dashboards.yaml:3:7: field `date`",
            "`12/06/2026` is not a date in the form YYYY-MM-DD",
        ],
    },
    Case {
        name: "a card date in the wrong format",
        mutate: |d| edit(&d.join("agent.yaml"), "end: 2026-06-12", "end: 2026/06/12"),
        code: 65,
        says: &["agent.yaml:24:8: field `pilot.end`", "YYYY-MM-DD"],
    },
    Case {
        name: "an attachment outside the agent folder, with the right sha256",
        mutate: |d| attach_outside(d, "../../outside.log"),
        code: 65,
        says: &[
            "evidence/drill-2026-06-08.md:9:11: field `attachments[0].path`",
            "`../../outside.log` leaves the agent folder",
        ],
    },
    Case {
        name: "an absolute attachment path, with the right sha256",
        mutate: |d| {
            let abs = d.parent().unwrap().join("outside.log");
            attach_outside(d, abs.to_str().unwrap())
        },
        code: 65,
        says: &[
            "evidence/drill-2026-06-08.md:9:11: field `attachments[0].path`",
            "is absolute",
        ],
    },
    Case {
        name: "a runbook outside the agent folder",
        mutate: |d| {
            std::fs::copy(d.join("runbook.md"), d.parent().unwrap().join("runbook.md")).unwrap();
            edit(
                &d.join("agent.yaml"),
                "runbook: runbook.md",
                "runbook: ../runbook.md",
            );
        },
        code: 65,
        says: &[
            "agent.yaml:101:10: field `runbook`",
            "`../runbook.md` leaves the agent folder",
        ],
    },
    Case {
        name: "an absolute telemetry path",
        mutate: |d| {
            let abs = d.join("telemetry/invoices.csv");
            edit(
                &d.join("agent.yaml"),
                "files: [telemetry/invoices.csv]",
                &format!("files: [\"{}\"]", abs.display()),
            );
        },
        code: 65,
        says: &[
            "agent.yaml:117:11: field `telemetry.files[0]`",
            "is absolute",
        ],
    },
    Case {
        name: "a broken record in a subfolder of evidence/",
        mutate: |d| {
            std::fs::create_dir(d.join("evidence/links")).unwrap();
            std::fs::write(
                d.join("evidence/links/more.yaml"),
                "items: [2]\nkind: lnk\ndate: 2026-06-11\nrecorded_by: Mike Chen\nsummary: x\n",
            )
            .unwrap();
        },
        code: 65,
        says: &[
            "evidence/links/more.yaml:2:7: field `kind`",
            "read as a record unless a record attaches it",
        ],
    },
];

/// Points the drill record's attachment at `path` (relative to evidence/, or absolute), a copy
/// of the drill log beside the agent folder, with its correct sha256.
fn attach_outside(d: &Path, path: &str) {
    let log = d.join("evidence/attachments/drill-2026-06-08.log");
    let outside = d.parent().unwrap().join("outside.log");
    std::fs::copy(&log, &outside).unwrap();
    // The same bytes, so the recorded sha256 stays right.
    edit(
        &d.join("evidence/drill-2026-06-08.md"),
        "path: attachments/drill-2026-06-08.log",
        &format!("path: \"{path}\""),
    );
}

#[test]
fn malformed_input_is_named_and_nothing_is_written() {
    for c in CASES {
        let (tmp, dir) = worked_example_copy();
        let reg = tmp.path().join("registry.db");
        // One good review first, so "unchanged" is checked against a non-empty registry.
        let ok = stagegate()
            .args([
                "review",
                "--format",
                "json",
                "--as-of",
                "2026-06-12",
                "--registry",
            ])
            .arg(&reg)
            .arg(&dir)
            .output()
            .unwrap();
        assert!(ok.status.code().is_some(), "{}", c.name);
        assert_eq!(review_count(&reg), 1);

        (c.mutate)(&dir);
        let out = stagegate()
            .args(["review", "--as-of", "2026-06-12", "--registry"])
            .arg(&reg)
            .arg(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(c.code), "{}: {err}", c.name);
        for s in c.says {
            assert!(err.contains(s), "{}: stderr lacks {s:?}:\n{err}", c.name);
        }
        assert!(!err.contains("panicked"), "{}: {err}", c.name);
        for hint in ["DuplicateKeyPolicy", "from_str_multiple", "Options"] {
            assert!(!err.contains(hint), "{}: library hint in {err}", c.name);
        }
        assert!(out.stdout.is_empty(), "{}: no report on bad input", c.name);
        assert_eq!(review_count(&reg), 1, "{}: registry unchanged", c.name);
    }
}

#[test]
fn bad_input_on_a_fresh_machine_creates_no_registry() {
    let (tmp, dir) = worked_example_copy();
    edit(&dir.join("agent.yaml"), "tier: medium", "tier: extreme");
    let reg = tmp.path().join("nested/registry.db");
    let out = stagegate()
        .args(["review", "--as-of", "2026-06-12", "--registry"])
        .arg(&reg)
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("field `tier`"));
    assert!(!reg.exists() && !tmp.path().join("nested").exists());
}

#[test]
fn usage_errors_are_distinct() {
    for bad in ["next tuesday", "notadate", "2026/06/12", "12/06/2026"] {
        let out = stagegate()
            .args(["review", "--as-of", bad, "x"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(65), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--as-of") && err.contains("YYYY-MM-DD"),
            "{err}"
        );
    }
    let out = stagegate()
        .args(["review", "/no/such/agent", "--as-of", "2026-06-12"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(66));
    let out = stagegate().args(["reviewz"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn changed_attachment_invalidates_its_record() {
    let (_tmp, dir) = worked_example_copy();
    let log = dir.join("evidence/attachments/drill-2026-06-08.log");
    let mut s = std::fs::read_to_string(&log).unwrap();
    s.push_str("2026-06-08T11:05:00Z edited afterwards\n");
    std::fs::write(&log, s).unwrap();
    let (code, v, _) = review_json(&dir, "2026-06-12");
    assert_eq!(code, Some(20));
    let item9 = &v["items"][8];
    assert_eq!(item9["status"], "fail");
    let notes = item9["notes"].to_string();
    assert!(notes.contains("changed since it was recorded"), "{notes}");
}

#[test]
fn a_review_date_before_the_pilot_start_is_bad_input() {
    let (tmp, dir) = worked_example_copy();
    let reg = tmp.path().join("registry.db");
    let out = stagegate()
        .args(["review", "--as-of", "2026-05-12", "--registry"])
        .arg(&reg)
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(
        err.contains("agent.yaml:23:10: field `pilot.start`")
            && err.contains("--as-of 2026-05-12")
            && err.contains("before the pilot start 2026-05-13"),
        "{err}"
    );
    assert!(out.stdout.is_empty() && !reg.exists());
    // The first day of the pilot is a valid review date (the review itself is Blocked).
    let (code, v, _) = review_json(&dir, "2026-05-13");
    assert_eq!(code, Some(20));
    assert_eq!(v["review_date"], "2026-05-13");
}

#[test]
fn records_in_subfolders_of_evidence_are_read() {
    let (_tmp, dir) = worked_example_copy();
    // A rotation record moved into a subfolder still counts for item 5.
    std::fs::create_dir(dir.join("evidence/rotations")).unwrap();
    for f in [
        "rotation-anthropic-key.yaml",
        "rotation-netsuite-oauth.yaml",
    ] {
        std::fs::rename(
            dir.join("evidence").join(f),
            dir.join("evidence/rotations").join(f),
        )
        .unwrap();
    }
    // A Markdown file a record attaches is an attachment, not a record, wherever it is.
    let notes = "Notes from the drill, no front matter.\n";
    std::fs::write(dir.join("evidence/attachments/drill-notes.md"), notes).unwrap();
    edit(
        &dir.join("evidence/drill-2026-06-08.md"),
        "drill:\n",
        &format!(
            "  - path: attachments/drill-notes.md\n    sha256: {}\ndrill:\n",
            stagegate_core::digest::sha256_hex(notes.as_bytes())
        ),
    );
    let (code, v, _) = review_json(&dir, "2026-06-12");
    // Moving records changes the review digest, so only the sign-offs (item 10) stop counting.
    assert_eq!(code, Some(20), "{}", v["items"]);
    let failing: Vec<&serde_json::Value> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] != "pass")
        .map(|i| &i["number"])
        .collect();
    assert_eq!(failing, [10], "{}", v["items"]);
    let item5 = &v["items"][4];
    assert_eq!(item5["status"], "pass");
    assert!(
        item5["evidence"]
            .to_string()
            .contains("evidence/rotations/rotation-anthropic-key.yaml"),
        "{item5}"
    );
}
