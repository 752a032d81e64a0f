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
    let (f, _) = items::item1_success_criteria(
        c,
        &ev,
        &m,
        &["telemetry/invoices.csv".into()],
        lock,
        &criteria_digest(&c.success_criteria),
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

    // A re-approval naming the new digest (who and when) lets it through.
    let new_digest = criteria_digest(&moved.success_criteria);
    let approval = ev(
        "evidence/criteria-reapproval.yaml",
        &format!(
            "items: [1]\nkind: approval\ndate: 2026-06-01\nrecorded_by: Hannah Okafor\nsummary: re-approved at M8\n\
             approval:\n  subject: criteria_change\n  by: Hannah Okafor\n  criteria_digest: \"{new_digest}\"\n"
        ),
    );
    let (s, reasons) = item1_status(&moved, std::slice::from_ref(&approval), Some(&locked));
    assert_eq!(s, Status::Pass, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("re-approved by Hannah Okafor on 2026-06-01"))
    );

    // An approval of some other digest does not.
    let stale = ev(
        "evidence/criteria-reapproval.yaml",
        "items: [1]\nkind: approval\ndate: 2026-06-01\nrecorded_by: H O\nsummary: s\napproval:\n  subject: criteria_change\n  by: Hannah Okafor\n  criteria_digest: \"sha256:1234\"\n",
    );
    assert_eq!(
        item1_status(&moved, &[stale], Some(&locked)).0,
        Status::Fail
    );
}

fn signoff(role: &str, name: &str, digest: &str, day: &str) -> Evidence {
    ev(
        &format!("evidence/signoff-{role}-{}.yaml", name.replace(' ', "-")),
        &format!(
            "items: [10]\nkind: signoff\ndate: {day}\nrecorded_by: {name}\nsummary: s\n\
             signoff:\n  role: {role}\n  name: {name}\n  digest: \"{digest}\"\n"
        ),
    )
}

#[test]
fn signoff_rules() {
    let c = card(); // builder == CoE lead == Morteza Moradi; peer approver Elena Petrova
    let d = "sha256:current";
    let day = date(2026, 6, 12);
    let check = |ev: &[Evidence], c: &AgentCard| -> (Status, Vec<String>) {
        let (f, _) = items::item10_signoff(c, ev, d, day);
        let r = f.finish(10, "t", &[], false);
        (r.status, r.reasons)
    };
    let builder = signoff("builder", "Morteza Moradi", d, "2026-06-12");
    let lead = signoff("coe_lead", "Morteza Moradi", d, "2026-06-12");
    let peer = signoff("peer_approver", "Elena Petrova", d, "2026-06-12");
    assert_eq!(
        check(&[builder.clone(), lead.clone(), peer.clone()], &c).0,
        Status::Pass
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
    assert_eq!(
        check(&[builder.clone(), imposter, peer.clone()], &c).0,
        Status::Fail
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
        why.iter().any(|w| w.contains("no other peer approver")),
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
