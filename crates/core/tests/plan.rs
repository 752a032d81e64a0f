//! The scaling plan (seed 000) and a Blocked review's list of what must be fixed, on the
//! worked example's card: properties that hold whatever the numbers are.

use jiff::civil::date;
use stagegate_core::card::AgentCard;
use stagegate_core::decision::{Outcome, Status};
use stagegate_core::digest::{InputDigest, InputRole};
use stagegate_core::evidence::Evidence;
use stagegate_core::gates::GateTemplate;
use stagegate_core::person::{check_named_person, same_person};
use stagegate_core::plan::{self, Category, watchable};
use stagegate_core::review::{self, Measurement, ReviewInput};
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

/// Every criterion measured exactly at a value that meets it (no telemetry, no evidence).
fn met_measurements(c: &AgentCard) -> BTreeMap<String, Measurement> {
    c.success_criteria
        .iter()
        .map(|cr| {
            let v = match cr.comparator {
                stagegate_core::card::Comparator::Ge | stagegate_core::card::Comparator::Eq => {
                    cr.threshold
                }
                _ => cr.threshold - 1.0,
            };
            (
                cr.id.clone(),
                Measurement {
                    value: Some(v),
                    rows: 10,
                    ..Measurement::default()
                },
            )
        })
        .collect()
}

fn run(c: &AgentCard, evidence: &[Evidence]) -> review::Review {
    let t = template();
    let m = met_measurements(c);
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
        criteria_lock: None,
        allowed_signers: None,
        allowed_signers_file: None,
        inputs: vec![InputDigest {
            role: InputRole::Card,
            path: "agent.yaml".into(),
            sha256: "sha256:00".into(),
        }],
        as_of: date(2026, 6, 12),
    })
}

/// Names in a chain written `Name (roles) → Name (roles)` or `Name (roles), Name (roles)`.
fn names(chain: &str) -> Vec<String> {
    chain
        .split(['→', ','])
        .filter_map(|p| p.split('(').next())
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty() && !n.contains(')'))
        .collect()
}

fn assert_no_repeats(what: &str, chain: &str) {
    let ns = names(chain);
    for (i, a) in ns.iter().enumerate() {
        for b in &ns[i + 1..] {
            assert!(!same_person(a, b), "{what} repeats {a}: {chain}");
        }
    }
}

#[test]
fn each_phase_has_its_own_criteria() {
    let c = card();
    let p = plan::build(&c, &run(&c, &[])).scaling_plan;
    let phases = &p.scaling_plan.phases;
    assert_eq!(phases.len(), c.scale.as_ref().unwrap().phases.len());
    let pilot: Vec<String> = c
        .success_criteria
        .iter()
        .map(|k| format!("{} {}", k.description, plan::target_phrase(k, None)))
        .collect();
    for (i, a) in phases.iter().enumerate() {
        assert!(
            !a.success_criteria.is_empty(),
            "phase {} has criteria",
            a.phase
        );
        assert_ne!(
            a.success_criteria, pilot,
            "phase {} copies the pilot's",
            a.phase
        );
        for b in &phases[i + 1..] {
            assert_ne!(
                a.success_criteria, b.success_criteria,
                "phases {} and {} share their criteria",
                a.phase, b.phase
            );
        }
    }
    // Lagging and evidence-sourced criteria are re-measured once, in the last phase.
    let last = phases.last().unwrap();
    for k in c
        .success_criteria
        .iter()
        .filter(|k| !watchable(k) && k.compare.is_some())
    {
        let id = format!("{}:", k.id);
        assert!(last.success_criteria.iter().any(|s| s.starts_with(&id)));
        assert!(
            phases[0]
                .success_criteria
                .iter()
                .all(|s| !s.starts_with(&id)),
            "{id} is not a first-phase gate"
        );
    }
}

#[test]
fn rollback_plan_and_scale_metrics_follow_seed_000() {
    let c = card();
    let p = plan::build(&c, &run(&c, &[])).scaling_plan;
    let rb = &p.rollback_plan;
    assert_eq!(rb.decision_authority, c.rollback.decision_authority);
    for t in &c.rollback.triggers {
        assert!(rb.triggers.contains(t), "card trigger {t} kept");
    }
    for k in c.success_criteria.iter().filter(|k| watchable(k)) {
        assert!(
            rb.triggers
                .iter()
                .any(|t| t.contains(&format!("`{}`", k.id))),
            "criterion {} becomes a trigger",
            k.id
        );
    }
    let mut seen = rb.triggers.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), rb.triggers.len(), "no duplicate trigger");
    assert!(!rb.procedure.immediate.is_empty());
    for step in &c.rollback.procedure {
        assert!(rb.procedure.if_needed.contains(step));
    }
    // Every criterion lands in exactly the seed-000 group its category names.
    let m = &p.scale_metrics;
    let econ = c
        .economics
        .as_ref()
        .and_then(|e| e.improvement_criterion.as_deref());
    for k in &c.success_criteria {
        let group = match Category::of(k, econ) {
            Category::Adoption => &m.adoption,
            Category::Performance => &m.performance,
            Category::Quality => &m.quality,
            Category::Value => &m.value,
        };
        let n = [&m.adoption, &m.performance, &m.quality, &m.value]
            .iter()
            .map(|g| g.iter().filter(|x| x.metric == k.description).count())
            .sum::<usize>();
        assert_eq!(n, 1, "{} appears once", k.id);
        assert!(group.iter().any(|x| x.metric == k.description));
    }
}

#[test]
fn no_person_repeats_in_a_chain() {
    let c = card();
    // The example's builder is also CoE lead, on-call backup and rollback authority.
    assert!(same_person(
        &c.people.builder.name,
        &c.people.on_call.backup.name
    ));
    let p = plan::build(&c, &run(&c, &[])).scaling_plan;
    let s = &p.scaling_plan.support;
    assert_no_repeats("escalation", &s.escalation);
    assert_no_repeats("resources", &s.resources);
    let notify = p
        .rollback_plan
        .procedure
        .immediate
        .iter()
        .find_map(|x| x.strip_prefix("Notify "))
        .expect("a notify step");
    assert_no_repeats("notify", notify);
    assert!(
        names(&s.escalation)
            .iter()
            .any(|n| same_person(n, &c.people.sponsor.name))
    );
}

#[test]
fn money_to_cents_and_months_to_one_decimal() {
    let c = card();
    let r = run(&c, &[]);
    let e = plan::build(&c, &r)
        .scaling_plan
        .economics
        .expect("economics");
    let cents = |s: &str| {
        let digits = s
            .trim_start_matches('-')
            .trim_start_matches('$')
            .replace(',', "");
        let (_, frac) = digits.split_once('.').expect("a decimal point");
        assert_eq!(frac.len(), 2, "{s} to cents");
        assert!(digits.parse::<f64>().is_ok(), "{s}");
    };
    cents(&e.annual_run_cost);
    cents(&e.one_off_costs);
    for r in [&e.annual_value, &e.net_annual].into_iter().flatten() {
        cents(&r.point);
        if let Some(c) = &r.conservative {
            cents(c);
        }
    }
    let months = e.payback_months.expect("payback");
    for m in std::iter::once(&months.point).chain(months.conservative.as_ref()) {
        let n = m.strip_suffix(" months").expect("in months");
        let (_, frac) = n.split_once('.').expect("one decimal");
        assert_eq!(frac.len(), 1, "{m}");
    }
}

#[test]
fn a_blocked_review_lists_what_must_be_fixed_with_named_owners() {
    let mut c = card();
    c.people.on_call.primary.name = "the finance team".into();
    let r = run(&c, &[]);
    assert_eq!(r.decision.outcome, Outcome::Blocked);
    let failing: Vec<u8> = r
        .items
        .iter()
        .filter(|i| i.status != Status::Pass)
        .map(|i| i.number)
        .collect();
    let listed: Vec<u8> = r.must_fix.iter().map(|f| f.item).collect();
    assert_eq!(listed, failing, "every item not ✅, in order");
    for f in &r.must_fix {
        let owner = f.owner.as_deref().expect("the card names someone for each");
        assert!(check_named_person(owner).is_ok(), "{owner} is a person");
        assert!(!f.what.is_empty() && !f.owner_basis.is_empty());
    }
    let item3 = r
        .must_fix
        .iter()
        .find(|f| f.item == 3)
        .expect("item 3 fails");
    assert!(
        same_person(item3.owner.as_deref().unwrap(), &c.people.builder.name),
        "a team on call: the builder must name a person"
    );
    let item10 = r
        .must_fix
        .iter()
        .find(|f| f.item == 10)
        .expect("item 10 fails");
    assert!(same_person(
        item10.owner.as_deref().unwrap(),
        &c.people.coe_lead.name
    ));
}
