//! Window rules, the goalpost lock and the sign-off rules, on the worked example's card with a
//! fixed review date. Evidence is written inline so each case shows exactly what it tests.

use jiff::civil::{Date, date};
use stagegate_core::card::AgentCard;
use stagegate_core::decision::{Outcome, Status};
use stagegate_core::digest::{InputDigest, InputRole, criteria_digest};
use stagegate_core::evidence::{Evidence, EvidenceRecord, Validity};
use stagegate_core::gates::GateTemplate;
use stagegate_core::items;
use stagegate_core::review::{self, CriteriaLock, Measurement, ReviewInput};
use std::collections::BTreeMap;

const CARD: &str = include_str!("../../../examples/finance-invoice-recon/agent.yaml");

fn card() -> AgentCard {
    let c: AgentCard = serde_saphyr::from_str(CARD).expect("example card parses");
    c.validate().expect("example card is valid");
    c
}

fn template() -> GateTemplate {
    let t: GateTemplate =
        serde_saphyr::from_str(stagegate_core::gates::BUILTIN_TEMPLATE_YAML).expect("builtin");
    t.validate().expect("builtin valid");
    t
}

fn ev(path: &str, yaml: &str) -> Evidence {
    let record: EvidenceRecord = serde_saphyr::from_str(yaml).expect("record parses");
    record.validate().expect("record valid");
    Evidence {
        path: path.into(),
        digest: String::new(),
        record,
        validity: Validity::Valid,
    }
}

/// A person's test key: an Ed25519 key from a seed derived from their name. (The CLI tests
/// sign with keys made by the real `ssh-keygen`.)
fn key(name: &str) -> stagegate_trust::RegistryKey {
    let mut seed = [0u8; 32];
    for (i, b) in name.bytes().enumerate() {
        seed[i % 32] ^= b;
    }
    stagegate_trust::RegistryKey::from_seed(&seed)
}

fn allowed() -> stagegate_trust::AllowedSigners {
    let text: String = [
        "Morteza Moradi",
        "Elena Petrova",
        "Hannah Okafor",
        "Mike Chen",
    ]
    .iter()
    .map(|n| format!("\"{n}\" {}\n", key(n).public_openssh()))
    .collect();
    stagegate_trust::AllowedSigners::parse(&text).unwrap()
}

fn sign(name: &str, statement: &str) -> String {
    key(name)
        .sign(stagegate_core::signing::ACT_NAMESPACE, statement.as_bytes())
        .unwrap()
}

/// `signature: |` block for a YAML record.
fn signature_yaml(sig: &str) -> String {
    let mut s = "signature: |\n".to_owned();
    for l in sig.trim_end().lines() {
        s.push_str(&format!("  {l}\n"));
    }
    s
}

fn drill(day: Date) -> Evidence {
    ev(
        "evidence/drill.yaml",
        &format!(
            "items: [9]\nkind: drill\ndate: {day}\nrecorded_by: Morteza Moradi\nsummary: drill\n\
             drill:\n  procedure: flag off\n  time_to_stop_seconds: 30\n  in_flight: none in flight\n  result: passed\n"
        ),
    )
}

fn status(f: items::Findings) -> Status {
    f.finish(9, "t", &[], true).status
}

#[test]
fn drill_window_is_thirty_days_inclusive() {
    let (c, t) = (card(), template());
    let review_day = date(2026, 6, 12);
    let cases = [
        (date(2026, 6, 12), Status::Pass), // same day
        (date(2026, 5, 13), Status::Pass), // exactly 30 days before
        (date(2026, 5, 12), Status::Fail), // 31 days before
        (date(2026, 4, 1), Status::Fail),
    ];
    for (day, want) in cases {
        let f = items::item9_rollback_drill(&c, &t, &[drill(day)], review_day);
        assert_eq!(status(f), want, "drill on {day}");
    }
    // A drill dated after the review does not count (the review marks it invalid).
    let r = run(&c, &[drill(date(2026, 6, 13))], review_day, None);
    assert_eq!(r.item(9).unwrap().status, Status::Fail);
}

#[test]
fn drill_without_timing_or_in_flight_is_not_enough() {
    let (c, t) = (card(), template());
    let d = ev(
        "evidence/drill.yaml",
        "items: [9]\nkind: drill\ndate: 2026-06-08\nrecorded_by: A B\nsummary: s\ndrill:\n  procedure: flag off\n  result: passed\n",
    );
    let f = items::item9_rollback_drill(&c, &t, &[d], date(2026, 6, 12));
    let r = f.finish(9, "t", &[], true);
    assert_eq!(r.status, Status::Fail);
    assert!(
        r.reasons.iter().any(|s| s.contains("no timing")),
        "{:?}",
        r.reasons
    );
    assert!(
        r.reasons.iter().any(|s| s.contains("in-flight")),
        "{:?}",
        r.reasons
    );
    let failed = ev(
        "evidence/drill.yaml",
        "items: [9]\nkind: drill\ndate: 2026-06-08\nrecorded_by: A B\nsummary: flag did not stop it\ndrill:\n  procedure: flag off\n  time_to_stop_seconds: 600\n  in_flight: lost\n  result: failed\n",
    );
    let f = items::item9_rollback_drill(&c, &t, &[failed], date(2026, 6, 12));
    assert_eq!(status(f), Status::Fail);
}

fn rotation(day: &str, kept: bool) -> Evidence {
    ev(
        "evidence/rotation.yaml",
        &format!(
            "items: [5]\nkind: rotation\ndate: {day}\nrecorded_by: A B\nsummary: s\n\
             rotation:\n  credential: NetSuite OAuth\n  agent_kept_operating: {kept}\n"
        ),
    )
}

#[test]
fn rotation_must_fall_inside_the_pilot_with_the_agent_running() {
    let c = card(); // pilot 2026-05-13 ..= 2026-06-12
    let cases = [
        ("2026-05-13", true, Status::Pass),
        ("2026-06-12", true, Status::Pass),
        ("2026-05-12", true, Status::Fail),
        ("2026-06-13", true, Status::Fail),
        ("2026-05-27", false, Status::Fail),
    ];
    for (day, kept, want) in cases {
        let f = items::item5_identity_rotation(&c, &[rotation(day, kept)]);
        assert_eq!(
            f.finish(5, "t", &[], true).status,
            want,
            "{day} kept={kept}"
        );
    }
    let f = items::item5_identity_rotation(&c, &[]);
    assert_eq!(f.finish(5, "t", &[], true).status, Status::Fail);
}

fn run(
    c: &AgentCard,
    evidence: &[Evidence],
    as_of: Date,
    lock: Option<CriteriaLock>,
) -> review::Review {
    let t = template();
    let m: BTreeMap<String, Measurement> = BTreeMap::new();
    review::review(&ReviewInput {
        card: c,
        template: &t,
        template_source: "builtin".into(),
        evidence,
        measurements: &m,
        telemetry_rows: 0,
        data_quality: Default::default(),
        telemetry_files: vec![],
        runbook_sha256: None,
        criteria_lock: lock,
        allowed_signers: None,
        allowed_signers_file: None,
        inputs: vec![InputDigest {
            role: InputRole::Card,
            path: "agent.yaml".into(),
            sha256: "sha256:00".into(),
        }],
        as_of,
    })
}

fn item1_status(
    c: &AgentCard,
    evidence: &[Evidence],
    lock: Option<&CriteriaLock>,
) -> (Status, Vec<String>) {
    // All criteria measured and met, so only the lock decides.
    let mut m = BTreeMap::new();
    for cr in &c.success_criteria {
        let v = match cr.comparator {
            stagegate_core::card::Comparator::Ge | stagegate_core::card::Comparator::Eq => {
                cr.threshold
            }
            _ => cr.threshold - 1.0,
        };
        m.insert(
            cr.id.clone(),
            Measurement {
                value: Some(v),
                rows: 10,
                ..Measurement::default()
            },
        );
    }
    let mut ev = evidence.to_vec();
    ev.push(self::ev(
        "evidence/time-study.yaml",
        "items: [1]\nkind: metric\ndate: 2026-06-11\nrecorded_by: A B\nsummary: s\nmetric:\n  criterion: hours_saved\n  value: 5\n  method: time study\n",
    ));
    let allowed = allowed();
    let (f, _) = items::item1_success_criteria(
        c,
        &ev,
        &m,
        &["telemetry/invoices.csv".into()],
        lock,
        &criteria_digest(&c.success_criteria),
        Some(&allowed),
        1000,
    );
    let r = f.finish(1, "t", &[], true);
    (r.status, r.reasons)
}

#[test]
fn goalpost_lock() {
    let c = card();
    let locked = CriteriaLock {
        digest: criteria_digest(&c.success_criteria),
        locked_at: date(2026, 5, 12),
        by: "Morteza Moradi".into(),
        recorded_at: None,
        clock_overridden: false,
    };
    assert_eq!(item1_status(&c, &[], Some(&locked)).0, Status::Pass);

    // Lower the acceptance threshold after the pilot: the digest no longer matches.
    let mut moved = c.clone();
    moved.success_criteria[0].threshold = 0.85;
    let (s, reasons) = item1_status(&moved, &[], Some(&locked));
    assert_eq!(s, Status::Fail);
    assert!(
        reasons.iter().any(|r| r.contains("don't move goalposts")),
        "{reasons:?}"
    );

    // A re-approval of the new digest signed by the sponsor lets it through.
    let new_digest = criteria_digest(&moved.success_criteria);
    let approval = |by: &str, signer: Option<&str>, digest: &str| {
        let statement = stagegate_core::signing::criteria_change_statement(
            &moved.id,
            digest,
            by,
            date(2026, 6, 1),
        );
        let sig = signer
            .map(|s| signature_yaml(&sign(s, &statement)))
            .unwrap_or_default();
        ev(
            "evidence/criteria-reapproval.yaml",
            &format!(
                "items: [1]\nkind: approval\ndate: 2026-06-01\nrecorded_by: {by}\nsummary: re-approved at M8\n\
                 approval:\n  subject: criteria_change\n  by: {by}\n  criteria_digest: \"{new_digest}\"\n{sig}"
            ),
        )
    };
    let (s, reasons) = item1_status(
        &moved,
        &[approval(
            "Hannah Okafor",
            Some("Hannah Okafor"),
            &new_digest,
        )],
        Some(&locked),
    );
    assert_eq!(s, Status::Pass, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("re-approved by Hannah Okafor on 2026-06-01")),
        "{reasons:?}"
    );

    // Refused, each with its rule: a typed name without a signature; the sponsor's name signed
    // with someone else's key; the builder approving their own change; a signature over
    // another digest; someone who is neither sponsor nor CoE lead.
    for (by, signer, digest, why) in [
        ("Hannah Okafor", None, new_digest.as_str(), "unsigned"),
        (
            "Hannah Okafor",
            Some("Mike Chen"),
            new_digest.as_str(),
            "belongs to Mike Chen",
        ),
        (
            "Morteza Moradi",
            Some("Morteza Moradi"),
            new_digest.as_str(),
            "never by the builder alone",
        ),
        (
            "Hannah Okafor",
            Some("Hannah Okafor"),
            "sha256:1234",
            "does not match the statement",
        ),
        (
            "Mike Chen",
            Some("Mike Chen"),
            new_digest.as_str(),
            "neither the sponsor",
        ),
    ] {
        let (s, reasons) = item1_status(&moved, &[approval(by, signer, digest)], Some(&locked));
        assert_eq!(s, Status::Fail, "{by} {signer:?}: {reasons:?}");
        assert!(
            reasons.iter().any(|r| r.contains(why)),
            "{by} {signer:?}: expected {why:?} in {reasons:?}"
        );
    }
}

#[test]
fn locks_that_cannot_show_the_criteria_came_first() {
    let c = card(); // pilot 2026-05-13 .. 2026-06-12
    let lock = |on: Date, recorded: &str, overridden: bool| CriteriaLock {
        digest: criteria_digest(&c.success_criteria),
        locked_at: on,
        by: "Morteza Moradi".into(),
        recorded_at: Some(recorded.parse().unwrap()),
        clock_overridden: overridden,
    };
    // Recorded the day it is dated, before the pilot: passes.
    let (s, r) = item1_status(
        &c,
        &[],
        Some(&lock(date(2026, 5, 12), "2026-05-12T08:00:00Z", false)),
    );
    assert_eq!(s, Status::Pass, "{r:?}");
    // Dated after the pilot ended.
    let (s, r) = item1_status(
        &c,
        &[],
        Some(&lock(date(2026, 6, 20), "2026-06-20T08:00:00Z", false)),
    );
    assert_ne!(s, Status::Pass);
    assert!(
        r.iter().any(|x| x.contains("after the pilot ended")),
        "{r:?}"
    );
    // Dated before the pilot but recorded months later: backdated.
    let (s, r) = item1_status(
        &c,
        &[],
        Some(&lock(date(2026, 4, 1), "2026-09-01T08:00:00Z", false)),
    );
    assert_ne!(s, Status::Pass);
    assert!(r.iter().any(|x| x.contains("backdated")), "{r:?}");
    // Recorded under STAGEGATE_NOW: passes, and says so.
    let f = {
        let allowed = allowed();
        let mut m = BTreeMap::new();
        for cr in &c.success_criteria {
            m.insert(
                cr.id.clone(),
                Measurement {
                    value: Some(cr.threshold),
                    rows: 10,
                    ..Measurement::default()
                },
            );
        }
        items::item1_success_criteria(
            &c,
            &[],
            &m,
            &[],
            Some(&lock(date(2026, 5, 12), "2026-05-12T08:00:00Z", true)),
            &criteria_digest(&c.success_criteria),
            Some(&allowed),
            1000,
        )
        .0
    };
    let r = f.finish(1, "t", &[], true);
    assert!(
        r.notes.iter().any(|n| n.contains("STAGEGATE_NOW")),
        "{:?}",
        r.notes
    );
}

fn subject(
    c: &AgentCard,
    digest: &str,
    outcome: Outcome,
) -> stagegate_core::signing::SignoffSubject {
    stagegate_core::signing::SignoffSubject {
        agent: c.id.clone(),
        version: c.version.clone(),
        review_digest: digest.into(),
        criteria_digest: "sha256:criteria".into(),
        decision_when_signed: outcome,
        items: vec![Status::Pass; 9],
    }
}

/// A sign-off record by `name` in `role` over `digest`, signed by `signer` over the statement
/// for `signed` (the subject it was really signed over).
fn signed_signoff(
    role: &str,
    name: &str,
    digest: &str,
    day: &str,
    signer: Option<&str>,
    signed: &stagegate_core::signing::SignoffSubject,
) -> Evidence {
    let r = match role {
        "builder" => stagegate_core::evidence::SignoffRole::Builder,
        "coe_lead" => stagegate_core::evidence::SignoffRole::CoeLead,
        _ => stagegate_core::evidence::SignoffRole::PeerApprover,
    };
    let statement =
        stagegate_core::signing::signoff_statement(signed, r, name, day.parse().unwrap());
    let sig = signer
        .map(|s| signature_yaml(&sign(s, &statement)))
        .unwrap_or_default();
    ev(
        &format!("evidence/signoff-{role}-{}.yaml", name.replace(' ', "-")),
        &format!(
            "items: [10]\nkind: signoff\ndate: {day}\nrecorded_by: {name}\nsummary: s\n\
             signoff:\n  role: {role}\n  name: {name}\n  digest: \"{digest}\"\n{sig}"
        ),
    )
}

#[test]
fn signoff_rules() {
    let c = card(); // builder == CoE lead == Morteza Moradi; peer approver Elena Petrova
    let d = "sha256:current";
    let day = date(2026, 6, 12);
    let subj = subject(&c, d, Outcome::Cleared);
    let allowed = allowed();
    let check = |ev: &[Evidence], c: &AgentCard| -> (Status, Vec<String>) {
        let s = subject(c, d, Outcome::Cleared);
        let (f, _) = items::item10_signoff(c, ev, &s, day, Some(&allowed));
        let r = f.finish(10, "t", &[], false);
        (r.status, r.reasons)
    };
    let signoff = |role: &str, name: &str, digest: &str, day: &str| {
        signed_signoff(role, name, digest, day, Some(name), &subj)
    };
    let builder = signoff("builder", "Morteza Moradi", d, "2026-06-12");
    let lead = signoff("coe_lead", "Morteza Moradi", d, "2026-06-12");
    let peer = signoff("peer_approver", "Elena Petrova", d, "2026-06-12");
    let (s, why) = check(&[builder.clone(), lead.clone(), peer.clone()], &c);
    assert_eq!(s, Status::Pass, "{why:?}");

    // Refused, each naming why: unsigned (a typed name); the right name signed with another
    // person's key; a signature over the same digest but another outcome (a review whose
    // decision was edited); no allowed-signers file.
    for (ev, why_expected) in [
        (
            signed_signoff("coe_lead", "Morteza Moradi", d, "2026-06-12", None, &subj),
            "unsigned",
        ),
        (
            signed_signoff(
                "coe_lead",
                "Morteza Moradi",
                d,
                "2026-06-12",
                Some("Mike Chen"),
                &subj,
            ),
            "belongs to Mike Chen",
        ),
        (
            signed_signoff(
                "coe_lead",
                "Morteza Moradi",
                d,
                "2026-06-12",
                Some("Morteza Moradi"),
                &subject(&c, d, Outcome::Blocked),
            ),
            "does not match the statement",
        ),
    ] {
        let (s, why) = check(&[builder.clone(), ev, peer.clone()], &c);
        assert_eq!(s, Status::Fail, "{why:?}");
        assert!(
            why.iter().any(|w| w.contains(why_expected)),
            "expected {why_expected:?} in {why:?}"
        );
    }
    let (f, _) = items::item10_signoff(
        &c,
        &[builder.clone(), lead.clone(), peer.clone()],
        &subj,
        day,
        None,
    );
    let r = f.finish(10, "t", &[], false);
    assert_eq!(r.status, Status::Fail);
    assert!(
        r.reasons
            .iter()
            .any(|w| w.contains("no allowed-signers file")),
        "{:?}",
        r.reasons
    );

    // CoE lead is also the builder: without the peer approver it fails.
    let (s, why) = check(&[builder.clone(), lead.clone()], &c);
    assert_eq!(s, Status::Fail);
    assert!(
        why.iter()
            .any(|w| w.contains("Peer Approver Elena Petrova")),
        "{why:?}"
    );

    // A sign-off over an older digest does not count, and says so.
    let old = signoff(
        "coe_lead",
        "Morteza Moradi",
        "sha256:olderdigest",
        "2026-06-11",
    );
    let (s, why) = check(&[builder.clone(), old, peer.clone()], &c);
    assert_eq!(s, Status::Fail);
    assert!(why.iter().any(|w| w.contains("older digest")), "{why:?}");

    // Someone else signing as CoE lead does not count.
    let imposter = signoff("coe_lead", "Mike Chen", d, "2026-06-12");
    let (s, why) = check(&[builder.clone(), imposter, peer.clone()], &c);
    assert_eq!(s, Status::Fail);
    assert!(
        why.iter()
            .any(|w| w.contains("the card names Morteza Moradi")),
        "{why:?}"
    );

    // Dated after the review: not counted.
    let late = signoff("coe_lead", "Morteza Moradi", d, "2026-06-13");
    assert_eq!(
        check(&[builder.clone(), late, peer.clone()], &c).0,
        Status::Fail
    );

    // Builder and CoE lead distinct: no peer approver needed.
    let mut distinct = c.clone();
    distinct.people.builder.name = "Mike Chen".into();
    let b2 = signoff("builder", "Mike Chen", d, "2026-06-12");
    assert_eq!(
        check(&[b2.clone(), lead.clone()], &distinct).0,
        Status::Pass
    );

    // CoE lead is builder and the card names no peer approver: cannot pass.
    let mut alone = c.clone();
    alone.people.peer_approver = None;
    let (s, why) = check(&[builder, lead], &alone);
    assert_eq!(s, Status::Fail);
    assert!(
        why.iter().any(|w| w.contains("no peer approver")),
        "{why:?}"
    );
}

#[test]
fn no_evidence_is_never_pass_and_teams_are_not_on_call() {
    let mut c = card();
    let r = run(&c, &[], date(2026, 6, 12), None);
    assert_eq!(r.decision.outcome, Outcome::Blocked);
    for it in &r.items {
        assert_ne!(
            it.status,
            Status::Pass,
            "item {} passed with no evidence",
            it.number
        );
    }
    c.people.on_call.primary.name = "#finance-ai".into();
    let f = items::item3_on_call(
        &c,
        &[ev(
            "evidence/pager.yaml",
            "items: [3]\nkind: link\ndate: 2026-06-11\nrecorded_by: A B\nsummary: s\n",
        )],
    );
    let r = f.finish(3, "t", &[], true);
    assert_eq!(r.status, Status::Fail);
    assert!(
        r.reasons.iter().any(|s| s.contains("channel")),
        "{:?}",
        r.reasons
    );
}

#[test]
fn retention_minimum_by_tier_and_regime() {
    let t = template();
    let proof = [ev(
        "evidence/ret.yaml",
        "items: [6]\nkind: document\ndate: 2026-06-11\nrecorded_by: A B\nsummary: s\n",
    )];
    let mut c = card();
    let check = |c: &AgentCard| {
        items::item6_audit_retention(c, &t, &proof)
            .finish(6, "t", &[], true)
            .status
    };
    assert_eq!(check(&c), Status::Pass); // 2555 days, SOX
    c.audit_log.stores.truncate(1); // 180 days only
    assert_eq!(check(&c), Status::Fail, "SOX needs 7 years");
    c.audit_log.regimes.clear();
    assert_eq!(check(&c), Status::Pass, "medium tier needs 180 days");
    c.audit_log.stores[0].retention_days = 30;
    assert_eq!(
        check(&c),
        Status::Fail,
        "30-day default is below the tier minimum"
    );
    c.tier = stagegate_core::card::Tier::Low;
    assert_eq!(check(&c), Status::Pass);
    c.audit_log.regimes.push("made-up-regime".into());
    assert_eq!(check(&c), Status::Fail, "unknown regimes cannot be checked");
}

#[test]
fn dashboards_need_a_named_watcher_and_cadence() {
    let t_ev = [ev(
        "evidence/dash.yaml",
        "items: [2]\nkind: link\ndate: 2026-06-11\nrecorded_by: A B\nsummary: s\n",
    )];
    let mut c = card();
    let check = |c: &AgentCard| {
        items::item2_dashboards(c, &t_ev)
            .finish(2, "t", &[], true)
            .status
    };
    assert_eq!(check(&c), Status::Pass);
    c.monitoring.dashboards[0].cadence = None;
    assert_eq!(check(&c), Status::Fail);
    c.monitoring.dashboards[0].cadence = Some("daily".into());
    c.monitoring.dashboards[0].watcher = Some("finance team".into());
    assert_eq!(check(&c), Status::Fail);
    // An open item cannot rescue a violation.
    let open = review::OpenItem {
        item: 2,
        what: "name a watcher".into(),
        owner: Some("Mike Chen".into()),
        due: Some(date(2026, 6, 20)),
        source: "evidence/oi.yaml".into(),
        problems: vec![],
    };
    let r = items::item2_dashboards(&c, &t_ev).finish(2, "t", &[open], true);
    assert_eq!(r.status, Status::Fail);
}

#[test]
fn missing_evidence_with_an_owned_open_item_is_open() {
    let oi = |owner: Option<&str>, due: Option<&str>| review::OpenItem {
        item: 8,
        what: "schedule comms".into(),
        owner: owner.map(str::to_owned),
        due: due.map(|d| d.parse().unwrap()),
        source: "evidence/oi.yaml".into(),
        problems: match (owner, due) {
            (Some(_), Some(_)) => vec![],
            (None, _) => vec!["no owner".into()],
            _ => vec!["no due date".into()],
        },
    };
    let st = |o: review::OpenItem| {
        items::item8_communication(&[])
            .finish(8, "t", &[o], true)
            .status
    };
    assert_eq!(st(oi(Some("Mike Chen"), Some("2026-06-19"))), Status::Open);
    assert_eq!(st(oi(None, Some("2026-06-19"))), Status::Fail);
    assert_eq!(st(oi(Some("Mike Chen"), None)), Status::Fail);
    // open_items() flags teams and several owners.
    let recs = [ev(
        "evidence/oi.yaml",
        "items: [8]\nkind: open-item\ndate: 2026-06-12\nrecorded_by: A B\nsummary: s\nopen_item:\n  what: w\n  owner: Mike Chen and Sarah Lee\n  due: 2026-06-19\n",
    )];
    let parsed = review::open_items(&recs);
    assert_eq!(parsed.len(), 1);
    assert!(
        parsed[0].problems[0].contains("several people"),
        "{:?}",
        parsed[0].problems
    );
}

#[test]
fn a_key_must_be_valid_on_the_day_its_signature_was_recorded() {
    use stagegate_core::card::Person;
    use stagegate_core::signing::check_recorded;
    // Mike Chen's key stopped being valid on 2026-06-01 (e.g. he left the team).
    let k = key("Mike Chen");
    let allowed = stagegate_trust::AllowedSigners::parse(&format!(
        "\"Mike Chen\" valid-before=\"20260601\" {}\n",
        k.public_openssh()
    ))
    .unwrap();
    let mike = Person {
        name: "Mike Chen".into(),
        email: None,
    };
    let statement = "stagegate test statement\n";
    let sig = sign("Mike Chen", statement);
    let (may31, jun12) = (date(2026, 5, 31), date(2026, 6, 12));
    // Dated and recorded inside the window: counts.
    assert!(check_recorded(Some(&allowed), &mike, statement, Some(&sig), may31, may31).is_ok());
    // Dated back into the window but recorded after it closed: refused, and it says when.
    let why =
        check_recorded(Some(&allowed), &mike, statement, Some(&sig), may31, jun12).unwrap_err();
    assert!(why.contains("on 2026-06-12, when it was recorded"), "{why}");
    // Dated after the window: refused on its own date.
    assert!(check_recorded(Some(&allowed), &mike, statement, Some(&sig), jun12, may31).is_err());
}
