//! The ways around the gate an earlier stagegate left open, each shut: a pilot with no data,
//! a backdated lock, a lock taken after the pilot, telemetry after the review date, an output
//! that fails after the review was recorded, signatures that are not the named person's or are
//! over another review, many writers at once on one registry, STAGEGATE_NOW on a registry
//! kept on the machine clock, a risk acceptance outliving the open items it accepted, a
//! revoked key dating a signature back into its window, and two people sharing one e-mail.

mod common;
use common::*;
use std::path::Path;

fn item(v: &serde_json::Value, n: u64) -> &serde_json::Value {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["number"] == n)
        .unwrap()
}

fn review_with(reg: &Path, dir: &Path, as_of: &str) -> (Option<i32>, serde_json::Value) {
    let out = stagegate_on(as_of)
        .args([
            "review",
            "--format",
            "json",
            "--no-record",
            "--as-of",
            as_of,
            "--registry",
        ])
        .arg(reg)
        .arg(dir)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), v)
}

#[test]
fn a_pilot_with_no_data_cannot_clear() {
    let (_tmp, dir) = worked_example_copy();
    // Every telemetry row now falls outside the pilot window (moved after the data).
    edit(
        &dir.join("agent.yaml"),
        "start: 2026-05-13\n  end: 2026-06-12",
        "start: 2026-07-01\n  end: 2026-07-31",
    );
    edit(
        &dir.join("agent.yaml"),
        "target_date: 2026-06-13",
        "target_date: 2026-08-03",
    );
    let (code, v, _) = review_json(&dir, "2026-08-01");
    assert_eq!(v["pilot"]["telemetry_rows"], 0);
    let sev1 = criterion(&v, "sev1_incidents");
    assert_eq!(sev1["verdict"], "no_data", "{sev1}");
    assert_ne!(item(&v, 1)["status"], "pass", "{}", item(&v, 1));
    assert!(
        item(&v, 1)["reasons"]
            .to_string()
            .contains("holds no telemetry rows")
    );
    assert_ne!(code, Some(0));
}

#[test]
fn a_minimum_sample_turns_thin_data_into_no_data() {
    let (_tmp, dir) = worked_example_copy();
    edit(
        &dir.join("agent.yaml"),
        "  - id: sev1_incidents\n",
        "  - id: sev1_incidents\n    minimum_sample: 1000000\n",
    );
    let (_, v, _) = review_json(&dir, "2026-06-12");
    let sev1 = criterion(&v, "sev1_incidents");
    assert_eq!(sev1["verdict"], "no_data");
    assert!(
        sev1["note"]
            .as_str()
            .unwrap()
            .contains("fewer than the minimum sample of 1000000"),
        "{sev1}"
    );
}

#[test]
fn backdated_and_late_locks_are_flagged_on_item_1() {
    // Recorded on 2026-09-01 (the recording clock), dated 2026-05-12: backdated.
    let (tmp, dir) = worked_example_copy();
    let reg = tmp.path().join("r.db");
    let out = stagegate_on("2026-09-01")
        .args(["pilot", "start", "--as-of", "2026-05-12", "--registry"])
        .arg(&reg)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let (code, v) = review_with(&reg, &dir, "2026-06-12");
    assert_ne!(item(&v, 1)["status"], "pass");
    let r = item(&v, 1)["reasons"].to_string();
    assert!(
        r.contains("lock dated 2026-05-12 but recorded on 2026-09-01") && r.contains("backdated"),
        "{r}"
    );
    assert_ne!(code, Some(0));

    // Taken after the pilot ended.
    let (tmp, dir) = worked_example_copy();
    let reg = tmp.path().join("r.db");
    assert!(
        stagegate_on("2026-06-20")
            .args(["pilot", "start", "--as-of", "2026-06-20", "--registry"])
            .arg(&reg)
            .arg(&dir)
            .output()
            .unwrap()
            .status
            .success()
    );
    let (_, v) = review_with(&reg, &dir, "2026-06-20");
    let r = item(&v, 1)["reasons"].to_string();
    assert_ne!(item(&v, 1)["status"], "pass");
    assert!(
        r.contains("locked on 2026-06-20, after the pilot ended on 2026-06-12"),
        "{r}"
    );

    // Recorded the day it is dated: no flag, and the override is named.
    let (tmp, dir) = worked_example_copy();
    let reg = tmp.path().join("r.db");
    assert!(
        stagegate_on("2026-05-12")
            .args(["pilot", "start", "--as-of", "2026-05-12", "--registry"])
            .arg(&reg)
            .arg(&dir)
            .output()
            .unwrap()
            .status
            .success()
    );
    let (code, v) = review_with(&reg, &dir, "2026-06-12");
    assert_eq!(code, Some(0), "{}", item(&v, 1));
    assert!(item(&v, 1)["notes"].to_string().contains("STAGEGATE_NOW"));
}

#[test]
fn telemetry_after_the_review_date_is_not_counted() {
    let (_tmp, dir) = worked_example_copy();
    let csv = std::fs::read_to_string(dir.join("telemetry/invoices.csv")).unwrap();
    let expected = csv
        .lines()
        .skip(1)
        .filter(|l| l.as_str_between("2026-05-13", "2026-06-02"))
        .count();
    let (_, v, _) = review_json(&dir, "2026-06-01");
    assert_eq!(v["pilot"]["telemetry_rows"], expected as u64);
    assert!(
        item(&v, 1)["notes"]
            .to_string()
            .contains("telemetry after 2026-06-01 is not counted")
    );
    let (_, full, _) = review_json(&dir, "2026-06-12");
    assert!(full["pilot"]["telemetry_rows"].as_u64().unwrap() > expected as u64);
}

trait Between {
    fn as_str_between(&self, from: &str, to_exclusive: &str) -> bool;
}
impl Between for &str {
    fn as_str_between(&self, from: &str, to_exclusive: &str) -> bool {
        let ts = &self[..10];
        ts >= from && ts < to_exclusive
    }
}

#[test]
fn an_output_that_cannot_be_written_records_nothing() {
    let (tmp, dir) = worked_example_copy();
    let reg = tmp.path().join("r.db");
    let out = stagegate()
        .args([
            "review",
            "--as-of",
            "2026-06-12",
            "--format",
            "markdown",
            "--out",
            "/nonexistent/x.md",
            "--registry",
        ])
        .arg(&reg)
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(70),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.md"));
    assert!(
        !reg.exists(),
        "the review was recorded although its report was not written"
    );
}

#[test]
fn signatures_by_the_wrong_key_or_over_another_review_are_refused_with_the_rule() {
    let (tmp, dir) = worked_example_copy();
    let keys = tmp.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let allowed = tmp.path().join("allowed_signers");
    let morteza = ssh_keygen(&keys, "Morteza Moradi");
    allow(&allowed, "Morteza Moradi", &morteza);
    let elena = ssh_keygen(&keys, "Elena Petrova");
    allow(&allowed, "Elena Petrova", &elena);
    let stranger = ssh_keygen(&keys, "Stranger");
    let reg = tmp.path().join("r.db");
    let signoff = |role: &str, extra: &[&str]| {
        stagegate()
            .args([
                "signoff",
                "--as-of",
                "2026-06-12",
                "--role",
                role,
                "--registry",
            ])
            .arg(&reg)
            .args(extra)
            .arg(&dir)
            .output()
            .unwrap()
    };
    let refused = |out: std::process::Output, rule: &str| {
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(rule), "expected {rule:?} in {err}");
    };
    // A key in no line of the allowed-signers file.
    refused(
        signoff("builder", &["--key", stranger.to_str().unwrap()]),
        "is not in the allowed-signers file",
    );
    // The peer approver's key used for the builder's role.
    refused(
        signoff("builder", &["--key", elena.to_str().unwrap()]),
        "belongs to Elena Petrova, not to Morteza Moradi",
    );
    // A statement signed for this review, then the evidence changes: the old signature is over
    // another review.
    let statement = signoff("builder", &["--print-statement"]);
    assert!(statement.status.success());
    let sig = ssh_sign(&morteza, &statement.stdout, &keys, "builder-statement.txt");
    // OpenSSH itself agrees the signature is Morteza Moradi's under this allowed-signers file…
    let mut v = std::process::Command::new("ssh-keygen")
        .args([
            "-Y",
            "verify",
            "-n",
            "stagegate",
            "-I",
            "Morteza Moradi",
            "-f",
        ])
        .arg(&allowed)
        .arg("-s")
        .arg(&sig)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    v.stdin
        .take()
        .unwrap()
        .write_all(&statement.stdout)
        .unwrap();
    assert!(v.wait_with_output().unwrap().status.success());
    // …and so does stagegate, for this review.
    let out = signoff("builder", &["--signature", sig.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    edit(
        &dir.join("evidence/comms-slack.yaml"),
        "summary: ",
        "summary: (edited) ",
    );
    refused(
        signoff("builder", &["--signature", sig.to_str().unwrap()]),
        "does not match the statement",
    );
    // A sign-off record copied in by hand with that signature does not count either.
    let record = format!(
        "items: [10]\nkind: signoff\ndate: 2026-06-12\nrecorded_by: Morteza Moradi\nsummary: s\nsignoff:\n  role: builder\n  name: Morteza Moradi\n  digest: \"{}\"\nsignature: |\n{}",
        {
            let (_, v, _) = review_json(&dir, "2026-06-12");
            v["digest"].as_str().unwrap().to_owned()
        },
        std::fs::read_to_string(&sig)
            .unwrap()
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
    );
    std::fs::write(dir.join("evidence/signoff-builder.yaml"), record).unwrap();
    let (code, v, _) = review_json(&dir, "2026-06-12");
    assert_eq!(code, Some(20));
    assert!(
        item(&v, 10)["reasons"]
            .to_string()
            .contains("does not match the statement"),
        "{}",
        item(&v, 10)
    );

    // Risk acceptance by someone other than the sponsor.
    refused(
        stagegate()
            .args([
                "approve",
                "risk-acceptance",
                "--as",
                "coe-lead",
                "--items",
                "6",
                "--as-of",
                "2026-06-12",
                "--key",
            ])
            .arg(&morteza)
            .arg(&dir)
            .output()
            .unwrap(),
        "not the sponsor",
    );
}

#[test]
fn twenty_reviews_and_five_signoffs_at_once_all_succeed_and_the_chain_verifies() {
    let (tmp, dir) = worked_example_copy();
    let keys = tmp.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let allowed = tmp.path().join("allowed_signers");
    let morteza = ssh_keygen(&keys, "Morteza Moradi");
    allow(&allowed, "Morteza Moradi", &morteza);
    let elena = ssh_keygen(&keys, "Elena Petrova");
    allow(&allowed, "Elena Petrova", &elena);
    let reg = tmp.path().join("shared/registry.db");
    let mut children = Vec::new();
    for i in 0..25 {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("stagegate"));
        c.env_remove("STAGEGATE_REGISTRY")
            .env_remove("STAGEGATE_NOW")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if i < 20 {
            c.args(["review", "--as-of", "2026-06-12", "--registry"])
                .arg(&reg)
                .arg(&dir);
        } else {
            let (role, key) = [
                ("builder", &morteza),
                ("coe-lead", &morteza),
                ("peer-approver", &elena),
                ("builder", &morteza),
                ("coe-lead", &morteza),
            ][i - 20];
            c.args(["signoff", "--as-of", "2026-06-12", "--role", role, "--key"])
                .arg(key)
                .arg("--registry")
                .arg(&reg)
                .arg(&dir);
        }
        children.push(c.spawn().unwrap());
    }
    for (i, ch) in children.into_iter().enumerate() {
        let out = ch.wait_with_output().unwrap();
        assert!(
            matches!(out.status.code(), Some(0)),
            "process {i} exited {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = stagegate()
        .args(["verify", "--format", "json", "--registry"])
        .arg(&reg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // 1 registry + 1 agent + 20 reviews + 5 sign-offs.
    assert_eq!(v["events"], 27, "{v}");
    assert_eq!(review_count(&reg), 20);
}

#[test]
fn promotion_needs_a_lock_before_the_review_and_no_later_dated_review() {
    // Reviewed (and signed) before any lock, then locked: the review predates the lock.
    let (tmp, dir) = worked_example_copy();
    let reg = tmp.path().join("r.db");
    let allowed = tmp.path().join("allowed_signers");
    let step = |args: &[&str], day: &str| {
        stagegate_on(day)
            .args(args)
            .arg("--registry")
            .arg(&reg)
            .arg(&dir)
            .output()
            .unwrap()
    };
    let promote = |day: &str| {
        stagegate_on(day)
            .args([
                "promote",
                "agent-finance-invoice-recon",
                "--as-of",
                day,
                "--allowed-signers",
            ])
            .arg(&allowed)
            .arg("--registry")
            .arg(&reg)
            .output()
            .unwrap()
    };
    assert_eq!(
        step(&["review", "--as-of", "2026-06-12"], "2026-06-12")
            .status
            .code(),
        Some(0)
    );
    assert!(
        step(&["pilot", "start", "--as-of", "2026-05-12"], "2026-05-12")
            .status
            .success()
    );
    let out = promote("2026-06-13");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("recorded before its criteria were locked")
    );

    // A later-dated Blocked review is not overruled by re-recording an earlier-dated one.
    assert_eq!(
        step(&["review", "--as-of", "2026-07-20"], "2026-07-20")
            .status
            .code(),
        Some(20)
    );
    assert_eq!(
        step(&["review", "--as-of", "2026-06-12"], "2026-07-20")
            .status
            .code(),
        Some(0)
    );
    let out = promote("2026-07-21");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("an earlier-dated review cannot overrule a later one"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn one_key_cannot_sign_for_two_people() {
    // The builder's key also listed for the peer approver.
    let (tmp, dir) = worked_example_copy();
    let allowed = tmp.path().join("allowed_signers");
    let morteza = ssh_keygen(tmp.path(), "Morteza Moradi");
    allow(&allowed, "Morteza Moradi", &morteza);
    allow(&allowed, "Elena Petrova", &morteza);
    let out = stagegate()
        .args([
            "signoff",
            "--as-of",
            "2026-06-12",
            "--role",
            "peer-approver",
            "--key",
        ])
        .arg(&morteza)
        .arg("--registry")
        .arg(tmp.path().join("r.db"))
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one key stands for one person"));
    // The card gives the peer approver the builder's name as an e-mail: the same key then signs
    // both roles, and item 10 refuses it.
    let (tmp, dir) = worked_example_copy();
    let allowed = tmp.path().join("allowed_signers");
    let morteza = ssh_keygen(tmp.path(), "Morteza Moradi");
    std::fs::write(&allowed, "").unwrap();
    allow(&allowed, "Morteza Moradi", &morteza);
    edit(
        &dir.join("agent.yaml"),
        "peer_approver: { name: Elena Petrova }",
        "peer_approver: { name: Elena Petrova, email: Morteza Moradi }",
    );
    for role in ["builder", "coe-lead", "peer-approver"] {
        let out = stagegate()
            .args(["signoff", "--as-of", "2026-06-12", "--role", role, "--key"])
            .arg(&morteza)
            .arg("--registry")
            .arg(tmp.path().join("r.db"))
            .arg(&dir)
            .output()
            .unwrap();
        // Each sign-off verifies on its own (the key is "Morteza Moradi"'s, the card's e-mail
        // for Elena points at him); only together do they show one signer.
        assert!(
            out.status.success(),
            "{role}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (code, v, _) = review_json(&dir, "2026-06-12");
    assert_ne!(code, Some(0));
    assert!(
        item(&v, 10)["reasons"]
            .to_string()
            .contains("signed with the same key"),
        "{}",
        item(&v, 10)
    );
}

#[test]
fn a_registry_on_the_machine_clock_refuses_stagegate_now() {
    // The organisation's registry records the machine clock; someone sets STAGEGATE_NOW to
    // make a late lock or review look timely.
    let (tmp, dir) = worked_example_copy();
    let reg = tmp.path().join("r.db");
    let out = stagegate()
        .args(["pilot", "start", "--as-of", "2026-05-12", "--registry"])
        .arg(&reg)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = stagegate_on("2026-06-12")
        .args(["review", "--as-of", "2026-06-12", "--registry"])
        .arg(&reg)
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("STAGEGATE_NOW is refused"), "{err}");
    let out = stagegate()
        .args(["verify", "--format", "json", "--registry"])
        .arg(&reg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["events"].as_i64(), v["replay_clock"].as_bool()),
        (Some(4), Some(false))
    );
    // A registry created under STAGEGATE_NOW says it is a replay registry.
    let replay = tmp.path().join("replay.db");
    assert!(
        stagegate_on("2026-05-12")
            .args(["pilot", "start", "--as-of", "2026-05-12", "--registry"])
            .arg(&replay)
            .arg(&dir)
            .output()
            .unwrap()
            .status
            .success()
    );
    let out = stagegate()
        .args(["verify", "--registry"])
        .arg(&replay)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("a replay registry"));
}

/// The conditional example (and the worked example whose telemetry it reads) in a temporary
/// folder, with the examples' allowed signers.
fn conditional_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, _) = worked_example_copy();
    let dir = tmp.path().join("finance-invoice-recon-conditional");
    copy_dir(&examples().join("finance-invoice-recon-conditional"), &dir);
    (tmp, dir)
}

#[test]
fn a_risk_acceptance_covers_the_open_items_as_the_sponsor_saw_them() {
    let (_tmp, dir) = conditional_copy();
    let (code, v, _) = review_json(&dir, "2026-06-12");
    assert_eq!(code, Some(10), "{}", v["decision"]);
    let reasons = v["decision"]["reasons"].to_string();
    assert!(!reasons.contains("does not count"), "{reasons}");
    // The statement the sponsor signs names each accepted open item's owner and due date.
    let out = stagegate()
        .args([
            "approve",
            "risk-acceptance",
            "--as",
            "sponsor",
            "--items",
            "6,8",
            "--as-of",
            "2026-06-12",
            "--print-statement",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let statement = String::from_utf8_lossy(&out.stdout);
    assert!(
        statement.contains("open-item: 6 | owner: Priya Nair | due: 2026-06-24"),
        "{statement}"
    );
    // Moving the due date after the acceptance: it no longer counts.
    edit(
        &dir.join("evidence/open-item-retention.yaml"),
        "due: 2026-06-24",
        "due: 2026-12-24",
    );
    let (code, v, _) = review_json(&dir, "2026-06-12");
    assert_eq!(code, Some(20));
    let reasons = v["decision"]["reasons"].to_string();
    assert!(
        reasons.contains("risk acceptance evidence/approval-risk-acceptance-2026-06-12.yaml by Hannah Okafor does not count"),
        "{reasons}"
    );
    // Accepting an item nobody owns is refused before anything is signed.
    let out = stagegate()
        .args([
            "approve",
            "risk-acceptance",
            "--as",
            "sponsor",
            "--items",
            "3",
            "--as-of",
            "2026-06-12",
            "--print-statement",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("item 3 has no open-item record"));
}

#[test]
fn a_key_outside_its_validity_window_when_recorded_cannot_sign() {
    let (tmp, dir) = worked_example_copy();
    let allowed = tmp.path().join("allowed_signers");
    let morteza = ssh_keygen(tmp.path(), "Morteza Moradi");
    let public = std::fs::read_to_string(morteza.with_extension("pub")).unwrap();
    let mut p = public.split_whitespace();
    std::fs::write(
        &allowed,
        format!(
            "\"Morteza Moradi\" valid-before=\"20260601\" {} {}\n",
            p.next().unwrap(),
            p.next().unwrap()
        ),
    )
    .unwrap();
    let signoff = |day: &str| {
        stagegate_on(day)
            .args([
                "signoff",
                "--as-of",
                "2026-05-31",
                "--role",
                "builder",
                "--key",
            ])
            .arg(&morteza)
            .arg("--registry")
            .arg(tmp.path().join(format!("r-{day}.db")))
            .arg(&dir)
            .output()
            .unwrap()
    };
    // Signed on 2026-06-12 with a key that expired on 2026-06-01, dated back to 2026-05-31:
    // refused, and the example's sign-off record is left as it was.
    let record = dir.join("evidence/signoff-builder.yaml");
    let before = std::fs::read_to_string(&record).unwrap();
    let out = signoff("2026-06-12");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("on 2026-06-12, when it was recorded"), "{err}");
    assert_eq!(std::fs::read_to_string(&record).unwrap(), before);
    // Signed while the key was valid: counts.
    let out = signoff("2026-05-31");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn small_trust_edges() {
    let (tmp, dir) = conditional_copy();
    // A file that is not a signature says so, in our words.
    let bogus = tmp.path().join("not-a-signature.txt");
    std::fs::write(&bogus, "hello\n").unwrap();
    let out = stagegate()
        .args([
            "signoff",
            "--as-of",
            "2026-06-12",
            "--role",
            "builder",
            "--signature",
        ])
        .arg(&bogus)
        .arg("--registry")
        .arg(tmp.path().join("r.db"))
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not an SSH signature (expected the armored output of `ssh-keygen -Y sign`"),
        "{err}"
    );
    assert!(!err.contains("PEM"), "{err}");

    // A second approval the same day is kept beside the first, never over it.
    let hannah = ssh_keygen(tmp.path(), "Hannah Okafor");
    let allowed = tmp.path().join("allowed_signers");
    allow(&allowed, "Hannah Okafor", &hannah);
    let first =
        std::fs::read_to_string(dir.join("evidence/approval-risk-acceptance-2026-06-12.yaml"))
            .unwrap();
    let out = stagegate()
        .args([
            "approve",
            "risk-acceptance",
            "--as",
            "sponsor",
            "--items",
            "6,8",
            "--as-of",
            "2026-06-12",
            "--key",
        ])
        .arg(&hannah)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("evidence/approval-risk-acceptance-2026-06-12.yaml"))
            .unwrap(),
        first
    );
    assert!(
        dir.join("evidence/approval-risk-acceptance-2026-06-12-2.yaml")
            .exists()
    );

    // Verifying a registry that is not there: exit 74, named.
    let out = stagegate()
        .args(["verify", "--registry"])
        .arg(tmp.path().join("nowhere.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(74));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no registry at"));

    // Two people with one e-mail: the card is refused, naming the field.
    edit(
        &dir.join("agent.yaml"),
        "sponsor: { name: Hannah Okafor }",
        "sponsor: { name: Hannah Okafor, email: mike.chen@acme.example }",
    );
    let out = stagegate()
        .args(["review", "--no-record", "--as-of", "2026-06-12"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("people.on_call.primary.email") || err.contains("people.sponsor.email"),
        "{err}"
    );
    assert!(err.contains("one e-mail stands for one person"), "{err}");
}
