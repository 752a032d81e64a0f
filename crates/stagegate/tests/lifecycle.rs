//! The registry end to end: pilot start locks the criteria, reviews are recorded, a changed
//! criterion blocks until re-approved, and only a clearing review promotes to production.

mod common;
use common::*;

fn run(
    args: &[&str],
    reg: &std::path::Path,
    dir: Option<&std::path::Path>,
) -> std::process::Output {
    // The recording clock is pinned to the act's date (recorded as an override).
    let day = args
        .iter()
        .position(|a| *a == "--as-of")
        .map(|i| args[i + 1])
        .unwrap_or("2026-06-12");
    let mut c = stagegate_on(day);
    c.args(args).arg("--registry").arg(reg);
    if args[0] == "promote" {
        let org = reg
            .ancestors()
            .find(|p| p.join("allowed_signers").exists())
            .expect("an allowed-signers file above the registry");
        c.arg("--allowed-signers").arg(org.join("allowed_signers"));
    }
    if let Some(d) = dir {
        c.arg(d);
    }
    c.output().unwrap()
}

#[test]
fn pilot_to_production_through_the_registry() {
    let (tmp, dir) = worked_example_copy();
    let reg = tmp.path().join("reg/registry.db");
    assert!(
        reg.parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("allowed_signers")
            .exists()
    );

    // Promotion before any pilot is refused: there is no registry yet (exit 74).
    let out = run(
        &[
            "promote",
            "agent-finance-invoice-recon",
            "--as-of",
            "2026-06-13",
        ],
        &reg,
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(74),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no registry at"));

    let out = run(
        &["pilot", "start", "--as-of", "2026-05-12"],
        &reg,
        Some(&dir),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("success criteria locked as sha256:"));
    // Idempotent with the same criteria.
    assert!(
        run(
            &["pilot", "start", "--as-of", "2026-05-12"],
            &reg,
            Some(&dir)
        )
        .status
        .success()
    );

    // A blocked review (the sign-offs are dated after it) cannot promote.
    let out = run(
        &["review", "--as-of", "2026-06-11", "--format", "json"],
        &reg,
        Some(&dir),
    );
    assert_eq!(out.status.code(), Some(20));
    let out = run(
        &[
            "promote",
            "agent-finance-invoice-recon",
            "--as-of",
            "2026-06-11",
        ],
        &reg,
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is Blocked"));

    // The criteria now match the lock, and the review clears.
    let out = run(
        &["review", "--as-of", "2026-06-12", "--format", "json"],
        &reg,
        Some(&dir),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reasons = v["items"][0]["reasons"].to_string();
    assert!(
        reasons.contains("criteria match those locked on 2026-05-12"),
        "{reasons}"
    );

    let out = run(
        &[
            "promote",
            "agent-finance-invoice-recon",
            "--as-of",
            "2026-06-13",
            "--by",
            "Morteza Moradi",
        ],
        &reg,
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Pilot → Production"));
    let out = run(
        &[
            "promote",
            "agent-finance-invoice-recon",
            "--as-of",
            "2026-06-14",
        ],
        &reg,
        None,
    );
    assert_eq!(out.status.code(), Some(1), "already in production");

    let out = run(&["history", "agent-finance-invoice-recon"], &reg, None);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    // Events: 1 registry, 2 agent, 3 lock, 4 pilot, 5 blocked review, 6 cleared review, 7
    // production.
    assert!(
        s.contains("#5 agent-finance-invoice-recon") && s.contains("Blocked"),
        "{s}"
    );
    assert!(
        s.contains("#6 agent-finance-invoice-recon") && s.contains("Cleared"),
        "{s}"
    );
    assert!(
        s.contains("2026-06-13 production by Morteza Moradi (review: event #6)"),
        "{s}"
    );
    assert!(s.contains("Registry verified: 7 event(s)"), "{s}");
}

#[test]
fn moved_goalposts_block_until_reapproved() {
    let (tmp, dir) = worked_example_copy();
    let reg = tmp.path().join("registry.db");
    assert!(
        run(
            &["pilot", "start", "--as-of", "2026-05-12"],
            &reg,
            Some(&dir)
        )
        .status
        .success()
    );

    // After the pilot, someone lowers the acceptance threshold.
    edit(
        &dir.join("agent.yaml"),
        "threshold: 0.90\n    unit: ratio\n    target_at_scale",
        "threshold: 0.85\n    unit: ratio\n    target_at_scale",
    );
    let out = run(
        &["review", "--as-of", "2026-06-12", "--format", "json"],
        &reg,
        Some(&dir),
    );
    assert_eq!(out.status.code(), Some(20));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["items"][0]["status"], "fail");
    assert!(
        v["items"][0]["reasons"]
            .to_string()
            .contains("don't move goalposts")
    );
    let new_digest = v["criteria_digest"].as_str().unwrap().to_owned();

    // Locking again is refused: re-approval goes through a record.
    let out = run(
        &["pilot", "start", "--as-of", "2026-06-12"],
        &reg,
        Some(&dir),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be locked again"));

    // The builder cannot re-approve their own change, and a typed approval does not count.
    let keys = tmp.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let allowed = tmp.path().join("allowed_signers");
    let morteza = ssh_keygen(&keys, "Morteza Moradi");
    allow(&allowed, "Morteza Moradi", &morteza);
    let hannah = ssh_keygen(&keys, "Hannah Okafor");
    allow(&allowed, "Hannah Okafor", &hannah);
    let elena = ssh_keygen(&keys, "Elena Petrova");
    allow(&allowed, "Elena Petrova", &elena);
    let approve = |who: &str, key: &std::path::Path| {
        stagegate_on("2026-06-12")
            .args([
                "approve",
                "criteria-change",
                "--as",
                who,
                "--as-of",
                "2026-06-12",
                "--key",
            ])
            .arg(key)
            .arg("--registry")
            .arg(&reg)
            .arg(&dir)
            .output()
            .unwrap()
    };
    let out = approve("builder", &morteza);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("never by the builder alone (seed 001 item 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        dir.join("evidence/criteria-reapproval.yaml"),
        format!(
            "items: [1]\nkind: approval\ndate: 2026-06-12\nrecorded_by: Random Intern\n\
             summary: Re-approved the 85% acceptance threshold\n\
             approval:\n  subject: criteria_change\n  by: Hannah Okafor\n  criteria_digest: \"{new_digest}\"\n"
        ),
    )
    .unwrap();
    let out = run(
        &[
            "review",
            "--as-of",
            "2026-06-12",
            "--format",
            "json",
            "--no-record",
        ],
        &reg,
        Some(&dir),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(20));
    assert!(
        v["items"][0]["reasons"].to_string().contains("unsigned"),
        "{}",
        v["items"][0]
    );
    std::fs::remove_file(dir.join("evidence/criteria-reapproval.yaml")).unwrap();

    // The sponsor signs the re-approval with her own key (ssh-keygen, through stagegate).
    let out = approve("sponsor", &hannah);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &["review", "--as-of", "2026-06-12", "--format", "json"],
        &reg,
        Some(&dir),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["items"][0]["status"], "pass", "{}", v["items"][0]);
    assert!(
        v["items"][0]["reasons"]
            .to_string()
            .contains("re-approved by Hannah Okafor on 2026-06-12")
    );
    // The card changed, so the old sign-offs are over an older digest: still blocked on item 10.
    assert_eq!(v["items"][9]["status"], "fail");
    assert!(
        v["items"][9]["reasons"]
            .to_string()
            .contains("older digest")
    );
    assert_eq!(out.status.code(), Some(20));

    // Signing the new review clears it: the builder and the CoE lead through `--key`, the peer
    // approver by hand with `ssh-keygen -Y sign` over the printed statement.
    for role in ["builder", "coe-lead"] {
        let out = stagegate_on("2026-06-12")
            .args(["signoff", "--as-of", "2026-06-12", "--role", role, "--key"])
            .arg(&morteza)
            .arg("--registry")
            .arg(&reg)
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let statement = stagegate()
        .args([
            "signoff",
            "--as-of",
            "2026-06-12",
            "--role",
            "peer-approver",
            "--print-statement",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(statement.status.success());
    assert!(String::from_utf8_lossy(&statement.stdout).contains("decision-when-signed: Cleared"));
    let sig = ssh_sign(&elena, &statement.stdout, &keys, "peer-statement.txt");
    let out = stagegate_on("2026-06-12")
        .args([
            "signoff",
            "--as-of",
            "2026-06-12",
            "--role",
            "peer-approver",
            "--signature",
        ])
        .arg(&sig)
        .arg("--registry")
        .arg(&reg)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["review", "--as-of", "2026-06-12"], &reg, Some(&dir));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run(
        &[
            "promote",
            "agent-finance-invoice-recon",
            "--as-of",
            "2026-06-13",
        ],
        &reg,
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn signoff_refuses_a_key_that_is_not_the_named_persons() {
    let (tmp, dir) = worked_example_copy();
    let mike = ssh_keygen(tmp.path(), "Mike Chen");
    allow(&tmp.path().join("allowed_signers"), "Mike Chen", &mike);
    let out = stagegate()
        .args([
            "signoff",
            "--as-of",
            "2026-06-12",
            "--role",
            "coe-lead",
            "--key",
        ])
        .arg(&mike)
        .arg("--registry")
        .arg(tmp.path().join("r.db"))
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not count as AI CoE Lead Morteza Moradi's")
            && err.contains("belongs to Mike Chen"),
        "{err}"
    );
    // Nothing was written.
    assert!(!tmp.path().join("r.db").exists());
    let before = std::fs::read_to_string(
        examples().join("finance-invoice-recon/evidence/signoff-coe-lead.yaml"),
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("evidence/signoff-coe-lead.yaml")).unwrap(),
        before
    );
}

#[test]
fn inconclusive_criterion_drafts_an_open_item_that_needs_an_owner() {
    let (tmp, dir) = worked_example_copy();
    let reg = tmp.path().join("registry.db");
    // Keep the baseline and 300 pilot invoices, exactly 92% accepted: too uncertain against
    // ≥ 90% (Wilson's lower bound is about 0.885).
    let csv = dir.join("telemetry/invoices.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut pilot_rows = 0;
    let mut short = String::new();
    for line in text.lines() {
        let mut cells: Vec<String> = line.split(',').map(str::to_owned).collect();
        let is_pilot = cells[0].starts_with("20") && cells[0].as_str() >= "2026-05-13";
        if is_pilot {
            pilot_rows += 1;
            if pilot_rows > 300 {
                continue;
            }
            cells[4] = (pilot_rows % 25 > 1).to_string();
        }
        short.push_str(&cells.join(","));
        short.push('\n');
    }
    std::fs::write(&csv, short).unwrap();

    let review = |reg: &std::path::Path| {
        let out = run(
            &["review", "--as-of", "2026-06-12", "--format", "json"],
            reg,
            Some(&dir),
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), v)
    };
    let (code, v) = review(&reg);
    assert_eq!(code, Some(20));
    let acc = &v["criteria"][0];
    assert_eq!(acc["verdict"], "inconclusive", "{acc}");
    assert!(acc["interval"]["low"].as_f64().unwrap() < 0.90);
    assert_eq!(acc["more_events"]["status"], "needed", "{acc}");
    assert!(acc["more_events"]["events"].as_u64().unwrap() > 0);
    assert_eq!(v["items"][0]["status"], "open");
    let draft = &v["open_items"][0];
    assert_eq!(draft["item"], 1);
    assert_eq!(draft["source"], "auto-drafted by stagegate");
    assert!(draft["owner"].is_null());
    assert!(
        v["decision"]["reasons"]
            .to_string()
            .contains("open item on item 1 has no named owner")
    );

    // Naming an owner replaces the draft; the sponsor must still accept the risk.
    std::fs::write(
        dir.join("evidence/open-item-acceptance.yaml"),
        "items: [1]\nkind: open-item\ndate: 2026-06-12\nrecorded_by: Morteza Moradi\n\
         summary: Acceptance rate not yet decided\nopen_item:\n  what: Collect two more weeks of invoices\n  owner: Mike Chen\n  due: 2026-06-26\n",
    )
    .unwrap();
    let (_, v) = review(&reg);
    assert_eq!(v["open_items"].as_array().unwrap().len(), 1);
    assert_eq!(v["open_items"][0]["owner"], "Mike Chen");
    assert!(
        v["decision"]["reasons"]
            .to_string()
            .contains("risk acceptance from the sponsor for item 1")
    );
}
