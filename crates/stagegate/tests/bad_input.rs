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
        says: &["agent.yaml", "field `department`", "does not match the id"],
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
        says: &["evidence/rotation-anthropic-key.yaml", "rotashun"],
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
            "agent.yaml",
            "field `success_criteria[5].compare.margin`",
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
        says: &["field `success_criteria[5].compare.unit`", "not an id role"],
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
            "field `economics.improvement_criterion`",
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
        says: &["gates.yaml", "field `decision.relaxed_by`"],
    },
];

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
    let out = stagegate()
        .args(["review", "--as-of", "next tuesday", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
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
