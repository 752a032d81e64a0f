//! End to end: every example reviews to its documented decision and exit code, and its
//! Markdown report matches the reviewed snapshot; the contact-center examples' comparisons
//! (non-inferiority, equivalence, per-unit paired, per-unit with CUPED) match reference values
//! computed independently with scipy/statsmodels (`tools/crosscheck/example_reference.py`).

mod common;
use common::*;

struct Case {
    folder: &'static str,
    as_of: &'static str,
    decision: &'static str,
    code: i32,
    failing: &'static [u64],
    open: &'static [u64],
}

const CASES: &[Case] = &[
    Case {
        folder: "finance-invoice-recon",
        as_of: "2026-06-12",
        decision: "Cleared",
        code: 0,
        failing: &[],
        open: &[],
    },
    Case {
        folder: "finance-invoice-recon-no-drill",
        as_of: "2026-06-12",
        decision: "Blocked",
        code: 20,
        failing: &[9, 10],
        open: &[],
    },
    Case {
        folder: "finance-invoice-recon-team-oncall",
        as_of: "2026-06-12",
        decision: "Blocked",
        code: 20,
        failing: &[3, 7, 10],
        open: &[],
    },
    Case {
        folder: "finance-invoice-recon-conditional",
        as_of: "2026-06-12",
        decision: "Conditional",
        code: 10,
        failing: &[],
        open: &[6, 8],
    },
    Case {
        folder: "contact-center-assist",
        as_of: "2026-10-06",
        decision: "Cleared",
        code: 0,
        failing: &[],
        open: &[],
    },
    Case {
        folder: "contact-center-assist-ab",
        as_of: "2026-10-06",
        decision: "Cleared",
        code: 0,
        failing: &[],
        open: &[],
    },
    Case {
        folder: "support-chat-assistant",
        as_of: "2023-11-17",
        decision: "Cleared",
        code: 0,
        failing: &[],
        open: &[],
    },
];

#[test]
fn every_example_reviews_to_its_decision() {
    for c in CASES {
        let tmp = tempfile::tempdir().unwrap();
        let reg = tmp.path().join("registry.db");
        let dir = examples().join(c.folder);
        let json = stagegate()
            .args([
                "review",
                "--format",
                "json",
                "--as-of",
                c.as_of,
                "--registry",
            ])
            .arg(&reg)
            .arg(&dir)
            .output()
            .unwrap();
        assert_eq!(
            json.status.code(),
            Some(c.code),
            "{}: {}",
            c.folder,
            String::from_utf8_lossy(&json.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(v["schema_version"], 2);
        assert_eq!(v["decision"]["outcome"], c.decision, "{}", c.folder);
        let with = |status: &str| -> Vec<u64> {
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["status"] == status)
                .map(|i| i["number"].as_u64().unwrap())
                .collect()
        };
        assert_eq!(with("fail"), c.failing, "{} failing items", c.folder);
        assert_eq!(with("open"), c.open, "{} open items", c.folder);
        assert_eq!(
            review_count(&reg),
            1,
            "{}: the review is recorded",
            c.folder
        );

        let md = stagegate()
            .args([
                "review",
                "--format",
                "markdown",
                "--no-record",
                "--as-of",
                c.as_of,
                "--registry",
            ])
            .arg(&reg)
            .arg(&dir)
            .output()
            .unwrap();
        assert_eq!(md.status.code(), Some(c.code));
        insta::assert_snapshot!(c.folder, String::from_utf8(md.stdout).unwrap());
        assert_eq!(review_count(&reg), 1, "--no-record writes nothing");
    }
}

#[test]
fn same_inputs_same_digest_and_decision() {
    let dir = examples().join("finance-invoice-recon");
    let run = || {
        let (_, v, bytes) = review_json(&dir, "2026-06-12");
        (v["digest"].clone(), v["decision"].clone(), bytes)
    };
    let (d1, dec1, bytes1) = run();
    let (d2, dec2, bytes2) = run();
    assert_eq!(d1, d2);
    assert_eq!(dec1, dec2);
    assert_eq!(bytes1, bytes2, "JSON output is byte-for-byte stable");
}

#[test]
fn table_output_names_decision_and_items() {
    let out = stagegate()
        .args(["review", "--no-record", "--as-of", "2026-06-12"])
        .arg(examples().join("finance-invoice-recon-no-drill"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(20));
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("Decision: BLOCKED"), "{s}");
    assert!(s.contains("  - ❌ on item(s) 9"), "{s}");
    assert!(!s.contains("\u{1b}["), "no colour codes off a TTY");
}

#[test]
fn plan_is_seed_000_yaml_with_economics() {
    let out = stagegate()
        .args(["plan", "--as-of", "2026-06-12"])
        .arg(examples().join("finance-invoice-recon"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    for key in [
        "scaling_plan:",
        "pilot_summary:",
        "success_criteria_met: true",
        "readiness_assessment:",
        "overall: Ready",
        "phases:",
        "rollback_trigger:",
        "risk_mitigation:",
        "success_metrics:",
        "pilot_value:",
        "target_at_scale:",
        "economics:",
        "payback_months:",
        "rollback_plan:",
        "triggers:",
        "immediate:",
        "if_needed:",
        "decision_authority:",
        "scale_metrics:",
        "adoption:",
        "performance:",
        "quality:",
        "value:",
    ] {
        assert!(s.contains(key), "plan lacks {key}:\n{s}");
    }
}

/// The Markdown report follows Template 07 (seed 001) section by section: header fields, the
/// 10-item table with every item of the template in full, sign-off, decision, open items — and
/// a Blocked report says what must be fixed, with owners.
#[test]
fn markdown_follows_template_07_section_by_section() {
    let template = stagegate_load::builtin_template().unwrap();
    for (folder, blocked) in [
        ("finance-invoice-recon", false),
        ("finance-invoice-recon-no-drill", true),
    ] {
        let out = stagegate()
            .args([
                "review",
                "--format",
                "markdown",
                "--no-record",
                "--as-of",
                "2026-06-12",
            ])
            .arg(examples().join(folder))
            .output()
            .unwrap();
        let md = String::from_utf8(out.stdout).unwrap();
        let mut at = 0;
        for part in [
            "# Pilot-to-Prod Checklist — ",
            "**Agent ID:** ",
            "**Agent version:** ",
            "**Tier:** ",
            "**Pilot ran:** ",
            "**Review date:** ",
            "| # | Item | Status | Evidence |",
            "\n## Sign-off\n",
            "| Role | Name | Date | Signature |",
            "\n## Decision\n",
            "Target launch date: ",
            "30-day post-launch review: ",
            "\n## Open items\n",
        ] {
            let found = md[at..]
                .find(part)
                .unwrap_or_else(|| panic!("{folder}: `{part}` missing or out of order:\n{md}"));
            at += found + part.len();
        }
        for it in &template.items {
            assert!(
                md.contains(&format!("| {} | {} |", it.number, it.title)),
                "{folder}: item {} titled as the template writes it",
                it.number
            );
        }
        assert_eq!(
            md.contains("\n## What must be fixed\n"),
            blocked,
            "{folder}"
        );
    }
}

#[test]
fn schema_is_generated_and_strict() {
    let out = stagegate().args(["schema", "card"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["additionalProperties"], false,
        "unknown fields are errors"
    );
    let req: Vec<&str> = v["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    for f in [
        "id",
        "tier",
        "lane",
        "people",
        "pilot",
        "success_criteria",
        "audit_log",
        "runbook",
        "rollback",
    ] {
        assert!(req.contains(&f), "{f} required");
    }
    for what in ["evidence", "gates"] {
        assert!(
            stagegate()
                .args(["schema", what])
                .output()
                .unwrap()
                .status
                .success()
        );
    }
}

#[test]
fn organisation_template_overrides_builtin_and_agent_template_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let org = tmp.path().join("org");
    std::fs::create_dir(&org).unwrap();
    let relaxed = stagegate_core::gates::BUILTIN_TEMPLATE_YAML
        .replace("drill_window_days: 30", "drill_window_days: 60");
    std::fs::write(org.join("gates.yaml"), relaxed).unwrap();
    let item9 = |dir: &std::path::Path, org: Option<&std::path::Path>| {
        let mut c = stagegate();
        c.args([
            "review",
            "--format",
            "json",
            "--no-record",
            "--as-of",
            "2026-06-12",
        ]);
        if let Some(o) = org {
            c.arg("--org").arg(o);
        }
        let out = c.arg(dir).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v["items"][8]["status"].clone(),
            v["template"]["source"].clone(),
        )
    };
    let no_drill = examples().join("finance-invoice-recon-no-drill");
    assert_eq!(item9(&no_drill, None).0, "fail");
    let (status, source) = item9(&no_drill, Some(&org));
    assert_eq!(
        status, "pass",
        "a 60-day window admits the 42-day-old drill"
    );
    assert!(
        source.as_str().unwrap().ends_with("org/gates.yaml"),
        "{source}"
    );

    // An agent's own gates.yaml wins over the organisation's.
    let agent = tmp.path().join("agent");
    copy_dir(&no_drill, &agent);
    // The copy's relative paths point at ../finance-invoice-recon: give it one beside it.
    copy_dir(
        &examples().join("finance-invoice-recon"),
        &tmp.path().join("finance-invoice-recon"),
    );
    std::fs::write(
        agent.join("gates.yaml"),
        stagegate_core::gates::BUILTIN_TEMPLATE_YAML,
    )
    .unwrap();
    let (status, source) = item9(&agent, Some(&org));
    assert_eq!(status, "fail");
    assert!(
        source.as_str().unwrap().ends_with("agent/gates.yaml"),
        "{source}"
    );
}

#[test]
fn contact_center_comparisons_match_the_reference() {
    let want: serde_json::Value =
        serde_json::from_str(include_str!("reference/examples.json")).unwrap();
    for (folder, criteria) in want.as_object().unwrap() {
        let (code, v, _) = review_json(&examples().join(folder), "2026-10-06");
        assert_eq!(code, Some(0), "{folder}");
        for (id, w) in criteria.as_object().unwrap() {
            let g = criterion(&v, id);
            let close = |what: &str, got: &serde_json::Value, want: &serde_json::Value| {
                let (g, w) = (got.as_f64().unwrap(), want.as_f64().unwrap());
                assert!(
                    (g - w).abs() <= 1e-9 * w.abs() + 1e-12,
                    "{folder} {id} {what}: {g} vs reference {w}"
                );
            };
            close("value", &g["actual"], &w["value"]);
            close("low", &g["interval"]["low"], &w["low"]);
            close("high", &g["interval"]["high"], &w["high"]);
            close("coverage", &g["interval"]["coverage"], &w["coverage"]);
            assert_eq!(g["verdict"], w["verdict"], "{folder} {id}");
            if w.get("p_value").is_some() {
                close("p", &g["comparison"]["p_value"], &w["p_value"]);
            }
            if w.get("theta").is_some() {
                let cu = &g["comparison"]["cuped"];
                close("θ", &cu["theta"], &w["theta"]);
                close(
                    "variance reduction",
                    &cu["variance_reduction"],
                    &w["variance_reduction"],
                );
            }
            if let Some(n) = w.get("pilot_units") {
                assert_eq!(&g["comparison"]["unit"]["pilot_units"], n, "{folder} {id}");
            }
        }
    }
}
