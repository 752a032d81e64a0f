//! Each rule at its boundaries: exactly N days and N − 1, ties, no reviews, an agent in
//! production, and the as-of date cutting the history.

use crate::scorecard::{DrillStatus, DueStatus, Options, scorecard};
use crate::snapshot::{AgentSnapshot, OpenItemSnapshot, ReviewSnapshot, StageChange};
use jiff::civil::Date;
use stagegate_core::decision::Outcome;
use stagegate_core::stage::Stage;

fn d(s: &str) -> Date {
    s.parse().unwrap()
}

/// A review dated `date` of a pilot ending `pilot_end` (30 days long, launch the day after).
fn review(event: i64, date: &str, decision: Outcome, pilot_end: &str) -> ReviewSnapshot {
    let end = d(pilot_end);
    ReviewSnapshot {
        event,
        review_date: d(date),
        decision,
        pilot_start: end.checked_sub(jiff::Span::new().days(30)).unwrap(),
        pilot_end: end,
        target_launch: end.tomorrow().unwrap(),
        post_launch_review_days: 30,
        open_items: Vec::new(),
        last_drill: Some(d(date)),
        drill_window_days: 30,
    }
}

fn agent(id: &str, stages: &[(Stage, &str)], reviews: Vec<ReviewSnapshot>) -> AgentSnapshot {
    AgentSnapshot {
        id: id.into(),
        name: format!("Name of {id}"),
        stages: stages
            .iter()
            .enumerate()
            .map(|(i, (stage, at))| StageChange {
                event: i as i64 + 100,
                stage: *stage,
                at: d(at),
            })
            .collect(),
        reviews,
    }
}

fn opts(as_of: &str) -> Options {
    Options::new(d(as_of))
}

fn pilot_reviewed_early(id: &str) -> AgentSnapshot {
    // Pilot 2026-05-13 … 2026-06-12; an interim review on 2026-06-01, nothing since.
    agent(
        id,
        &[(Stage::Pilot, "2026-05-13")],
        vec![review(5, "2026-06-01", Outcome::Blocked, "2026-06-12")],
    )
}

#[test]
fn purgatory_from_exactly_n_days_after_the_pilot_end() {
    let a = [pilot_reviewed_early("agent-ops-a")];
    // 2026-06-26 is 14 days after 2026-06-12.
    let s = scorecard(&a, &opts("2026-06-26"));
    assert_eq!(s.pilot_purgatory.len(), 1);
    let p = &s.pilot_purgatory[0];
    assert_eq!(p.days_since_pilot_end, 14);
    assert_eq!(p.pilot_end, d("2026-06-12"));
    assert_eq!(p.last_review, d("2026-06-01"));
    assert_eq!(p.last_decision, Outcome::Blocked);
    assert_eq!(s.totals.pilot_purgatory, 1);
    // 13 days: not yet.
    let s = scorecard(&a, &opts("2026-06-25"));
    assert!(s.pilot_purgatory.is_empty());
    // N is configurable.
    let s = scorecard(
        &a,
        &Options {
            purgatory_days: 13,
            ..opts("2026-06-25")
        },
    );
    assert_eq!(s.pilot_purgatory.len(), 1);
}

#[test]
fn a_review_on_or_after_the_pilot_end_is_a_decision() {
    for date in ["2026-06-12", "2026-06-20"] {
        let a = [agent(
            "agent-ops-a",
            &[(Stage::Pilot, "2026-05-13")],
            vec![
                review(5, "2026-06-01", Outcome::Blocked, "2026-06-12"),
                review(6, date, Outcome::Blocked, "2026-06-12"),
            ],
        )];
        let s = scorecard(&a, &opts("2026-09-01"));
        assert!(s.pilot_purgatory.is_empty(), "review on {date}");
    }
}

#[test]
fn a_review_after_the_as_of_date_does_not_count_yet() {
    let a = [agent(
        "agent-ops-a",
        &[(Stage::Pilot, "2026-05-13")],
        vec![
            review(5, "2026-06-01", Outcome::Blocked, "2026-06-12"),
            review(6, "2026-07-01", Outcome::Cleared, "2026-06-12"),
        ],
    )];
    let s = scorecard(&a, &opts("2026-06-30"));
    assert_eq!(s.pilot_purgatory.len(), 1);
    assert_eq!(
        s.agents[0].last_review.as_ref().unwrap().date,
        d("2026-06-01")
    );
    assert_eq!(s.totals.by_decision.blocked, 1);
    let s = scorecard(&a, &opts("2026-07-01"));
    assert!(s.pilot_purgatory.is_empty());
    assert_eq!(s.totals.by_decision.cleared, 1);
}

#[test]
fn an_agent_in_production_is_never_in_purgatory() {
    let a = [agent(
        "agent-ops-a",
        &[
            (Stage::Pilot, "2026-05-13"),
            (Stage::Production, "2026-06-13"),
        ],
        vec![review(5, "2026-06-01", Outcome::Cleared, "2026-06-12")],
    )];
    let s = scorecard(&a, &opts("2026-12-01"));
    assert!(s.pilot_purgatory.is_empty());
    assert_eq!(s.agents[0].stage, Some(Stage::Production));
    assert_eq!(s.agents[0].launched, Some(d("2026-06-13")));
    // Before the launch date it was still a pilot (in purgatory from 2026-06-26 on).
    let s = scorecard(&a, &opts("2026-06-12"));
    assert_eq!(s.agents[0].stage, Some(Stage::Pilot));
    assert_eq!(s.agents[0].launched, None);
}

#[test]
fn purgatory_ties_sort_by_agent_and_longest_comes_first() {
    let later = agent(
        "agent-ops-0-later",
        &[(Stage::Pilot, "2026-05-20")],
        vec![review(9, "2026-06-01", Outcome::Blocked, "2026-06-19")],
    );
    let a = [
        pilot_reviewed_early("agent-ops-c"),
        later,
        pilot_reviewed_early("agent-ops-a"),
        pilot_reviewed_early("agent-ops-b"),
    ];
    let s = scorecard(&a, &opts("2026-07-10"));
    let order: Vec<(&str, i64)> = s
        .pilot_purgatory
        .iter()
        .map(|p| (p.agent.as_str(), p.days_since_pilot_end))
        .collect();
    assert_eq!(
        order,
        [
            ("agent-ops-a", 28),
            ("agent-ops-b", 28),
            ("agent-ops-c", 28),
            ("agent-ops-0-later", 21)
        ]
    );
    // Agents by id whatever the input order.
    let ids: Vec<&str> = s.agents.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "agent-ops-0-later",
            "agent-ops-a",
            "agent-ops-b",
            "agent-ops-c"
        ]
    );
}

#[test]
fn a_pilot_with_no_review_is_listed_apart() {
    let a = [
        agent("agent-ops-new", &[(Stage::Pilot, "2026-05-01")], Vec::new()),
        // Nothing dated on or before the as-of date: not in the portfolio yet.
        agent(
            "agent-ops-future",
            &[(Stage::Pilot, "2026-08-01")],
            Vec::new(),
        ),
    ];
    let s = scorecard(&a, &opts("2026-07-01"));
    assert!(s.pilot_purgatory.is_empty());
    assert_eq!(s.pilots_without_review.len(), 1);
    assert_eq!(s.pilots_without_review[0].days_in_pilot, 61);
    assert_eq!(s.totals.agents, 1);
    assert_eq!(s.totals.by_decision.none, 1);
    assert_eq!(s.totals.by_stage.pilot, 1);
    // No review: no drill evidence to judge, no open items.
    assert!(s.stale_drills.is_empty());
    assert!(s.open_items.is_empty());
    assert_eq!(s.agents[0].days_in_stage, Some(61));
    assert!(s.agents[0].last_review.is_none());
}

fn item(n: u8, owner: Option<&str>, due: Option<&str>, source: &str) -> OpenItemSnapshot {
    OpenItemSnapshot {
        item: n,
        what: format!("fix item {n}"),
        owner: owner.map(str::to_owned),
        due: due.map(d),
        source: source.into(),
    }
}

#[test]
fn open_items_are_overdue_the_day_after_they_are_due() {
    let mut r = review(5, "2026-06-12", Outcome::Conditional, "2026-06-12");
    r.open_items = vec![
        item(8, Some("Mike Chen"), Some("2026-06-19"), "evidence/b.yaml"),
        item(6, Some("Priya Nair"), Some("2026-06-18"), "evidence/a.yaml"),
        item(3, None, None, "evidence/c.yaml"),
    ];
    let a = [agent(
        "agent-ops-a",
        &[
            (Stage::Pilot, "2026-05-13"),
            (Stage::Production, "2026-06-13"),
        ],
        vec![r],
    )];
    // Due today: not overdue.
    let s = scorecard(&a, &opts("2026-06-18"));
    assert!(s.overdue_open_items.is_empty());
    assert_eq!(
        s.open_items.len(),
        2,
        "the item without a due date is not listed"
    );
    assert_eq!(s.open_items[0].days_until_due, 0);
    assert_eq!(s.open_items[0].status, DueStatus::DueSoon);
    // One day later: overdue by one day.
    let s = scorecard(&a, &opts("2026-06-19"));
    assert_eq!(s.overdue_open_items.len(), 1);
    let o = &s.overdue_open_items[0];
    assert_eq!((o.item, o.days_until_due), (6, -1));
    assert_eq!(o.owner.as_deref(), Some("Priya Nair"));
    assert_eq!(s.totals.overdue_open_items, 1);
    let s = scorecard(&a, &opts("2026-06-25"));
    let items: Vec<(u8, i64)> = s
        .overdue_open_items
        .iter()
        .map(|o| (o.item, o.days_until_due))
        .collect();
    assert_eq!(items, [(6, -7), (8, -6)]);
}

#[test]
fn overdue_ties_sort_by_agent_item_and_record() {
    let mk = |id: &str| {
        let mut r = review(5, "2026-06-12", Outcome::Conditional, "2026-06-12");
        r.open_items = vec![
            item(8, Some("X Y"), Some("2026-06-19"), "evidence/z.yaml"),
            item(8, Some("X Y"), Some("2026-06-19"), "evidence/a.yaml"),
            item(2, Some("X Y"), Some("2026-06-19"), "evidence/q.yaml"),
        ];
        agent(id, &[(Stage::Pilot, "2026-05-13")], vec![r])
    };
    let a = [mk("agent-ops-b"), mk("agent-ops-a")];
    let s = scorecard(&a, &opts("2026-07-01"));
    let keys: Vec<(&str, u8, &str)> = s
        .overdue_open_items
        .iter()
        .map(|o| (o.agent.as_str(), o.item, o.source.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("agent-ops-a", 2, "evidence/q.yaml"),
            ("agent-ops-a", 8, "evidence/a.yaml"),
            ("agent-ops-a", 8, "evidence/z.yaml"),
            ("agent-ops-b", 2, "evidence/q.yaml"),
            ("agent-ops-b", 8, "evidence/a.yaml"),
            ("agent-ops-b", 8, "evidence/z.yaml"),
        ]
    );
}

fn launched(id: &str) -> AgentSnapshot {
    agent(
        id,
        &[
            (Stage::Pilot, "2026-05-13"),
            (Stage::Production, "2026-06-13"),
        ],
        vec![review(5, "2026-06-12", Outcome::Cleared, "2026-06-12")],
    )
}

#[test]
fn post_launch_review_due_thirty_days_after_launch() {
    let a = [launched("agent-ops-a")];
    let at = |as_of: &str| {
        let s = scorecard(&a, &opts(as_of));
        assert_eq!(s.post_launch_reviews.len(), 1, "{as_of}");
        let p = s.post_launch_reviews[0].clone();
        assert_eq!(p.launched, d("2026-06-13"));
        assert_eq!(p.due, d("2026-07-13"), "seed 001's worked example");
        (
            p.days_until_due,
            p.status,
            s.totals.post_launch_reviews_overdue,
        )
    };
    assert_eq!(at("2026-07-05"), (8, DueStatus::Scheduled, 0));
    assert_eq!(at("2026-07-06"), (7, DueStatus::DueSoon, 0));
    assert_eq!(at("2026-07-13"), (0, DueStatus::DueSoon, 0));
    assert_eq!(at("2026-07-14"), (-1, DueStatus::Overdue, 1));
    // Not launched yet on 2026-06-12: nothing owed.
    assert!(
        scorecard(&a, &opts("2026-06-12"))
            .post_launch_reviews
            .is_empty()
    );
}

#[test]
fn a_review_after_launch_settles_the_post_launch_review() {
    let mut a = launched("agent-ops-a");
    // A review on the launch day is the launch's own, not the post-launch one.
    a.reviews
        .push(review(8, "2026-06-13", Outcome::Cleared, "2026-06-12"));
    assert_eq!(
        scorecard(std::slice::from_ref(&a), &opts("2026-08-01"))
            .post_launch_reviews
            .len(),
        1
    );
    a.reviews
        .push(review(9, "2026-07-14", Outcome::Cleared, "2026-06-12"));
    assert!(
        scorecard(std::slice::from_ref(&a), &opts("2026-08-01"))
            .post_launch_reviews
            .is_empty()
    );
    // … but not before it is dated.
    assert_eq!(
        scorecard(std::slice::from_ref(&a), &opts("2026-07-13"))
            .post_launch_reviews
            .len(),
        1
    );
}

#[test]
fn the_post_launch_period_comes_from_the_review() {
    let mut a = launched("agent-ops-a");
    a.reviews[0].post_launch_review_days = 45;
    let s = scorecard(&[a], &opts("2026-07-01"));
    assert_eq!(s.post_launch_reviews[0].due, d("2026-07-28"));
}

fn drilled(id: &str, drill: Option<&str>) -> AgentSnapshot {
    let mut r = review(5, "2026-06-12", Outcome::Cleared, "2026-06-12");
    r.last_drill = drill.map(d);
    agent(id, &[(Stage::Pilot, "2026-05-13")], vec![r])
}

#[test]
fn drills_go_stale_after_thirty_days_with_a_week_of_warning() {
    let a = [drilled("agent-ops-a", Some("2026-06-08"))];
    let at = |as_of: &str| {
        let s = scorecard(&a, &opts(as_of));
        assert_eq!(s.agents[0].drill_due, Some(d("2026-07-08")));
        s.stale_drills
            .first()
            .map(|x| (x.days_until_due, x.status, x.due))
    };
    // 22 days old: 8 days left, not listed.
    assert_eq!(at("2026-06-30"), None);
    // 23 days old: 7 days left.
    assert_eq!(
        at("2026-07-01"),
        Some((Some(7), DrillStatus::DueSoon, Some(d("2026-07-08"))))
    );
    // 30 days old: still counts today (item 9's window is inclusive).
    assert_eq!(
        at("2026-07-08"),
        Some((Some(0), DrillStatus::DueSoon, Some(d("2026-07-08"))))
    );
    // 31 days old: lapsed.
    assert_eq!(
        at("2026-07-09"),
        Some((Some(-1), DrillStatus::Overdue, Some(d("2026-07-08"))))
    );
}

#[test]
fn no_drill_on_record_comes_first_then_the_most_lapsed() {
    let a = [
        drilled("agent-ops-soon", Some("2026-06-10")),
        drilled("agent-ops-lapsed", Some("2026-05-20")),
        drilled("agent-ops-none", None),
        drilled("agent-ops-fresh", Some("2026-07-01")),
        drilled("agent-ops-lapsed-too", Some("2026-05-20")),
    ];
    let s = scorecard(&a, &opts("2026-07-05"));
    let order: Vec<(&str, DrillStatus)> = s
        .stale_drills
        .iter()
        .map(|x| (x.agent.as_str(), x.status))
        .collect();
    assert_eq!(
        order,
        [
            ("agent-ops-none", DrillStatus::NoneOnRecord),
            ("agent-ops-lapsed", DrillStatus::Overdue),
            ("agent-ops-lapsed-too", DrillStatus::Overdue),
            ("agent-ops-soon", DrillStatus::DueSoon),
        ]
    );
    assert_eq!(s.totals.stale_drills, 4);
}

#[test]
fn totals_window_and_days_in_stage() {
    let a = [
        launched("agent-ops-live"),
        pilot_reviewed_early("agent-ops-pilot"),
        // Registered by a review, never `pilot start`.
        agent(
            "agent-ops-loose",
            &[],
            vec![review(3, "2026-06-13", Outcome::Blocked, "2026-06-12")],
        ),
    ];
    let s = scorecard(&a, &opts("2026-06-19"));
    assert_eq!(s.window.start, d("2026-06-13"));
    assert_eq!(s.window.end, d("2026-06-19"));
    assert_eq!(s.schema_version, 1);
    assert_eq!(s.totals.agents, 3);
    assert_eq!(
        (
            s.totals.by_stage.pilot,
            s.totals.by_stage.production,
            s.totals.by_stage.none
        ),
        (1, 1, 1)
    );
    assert_eq!(
        (
            s.totals.by_decision.cleared,
            s.totals.by_decision.blocked,
            s.totals.by_decision.none
        ),
        (1, 2, 0)
    );
    // In the window: the loose agent's review (on its first day) and the launch on
    // 2026-06-13; the review of 2026-06-12 is a day before it.
    assert_eq!(s.activity.reviews.blocked, 1);
    assert_eq!(s.activity.reviews.cleared, 0);
    assert_eq!(s.activity.launches, 1);
    assert_eq!(s.activity.pilots_started, 0);
    let live = s.agents.iter().find(|r| r.id == "agent-ops-live").unwrap();
    assert_eq!(live.days_in_stage, Some(6));
    let loose = s.agents.iter().find(|r| r.id == "agent-ops-loose").unwrap();
    assert_eq!((loose.stage, loose.days_in_stage), (None, None));
}

#[test]
fn the_same_portfolio_in_any_order_gives_the_same_bytes() {
    let mut a = vec![
        launched("agent-ops-live"),
        pilot_reviewed_early("agent-ops-pilot"),
        drilled("agent-ops-none", None),
        agent("agent-ops-new", &[(Stage::Pilot, "2026-05-01")], Vec::new()),
    ];
    let o = opts("2026-07-20");
    let one = crate::to_json(&scorecard(&a, &o)).unwrap();
    a.reverse();
    let two = crate::to_json(&scorecard(&a, &o)).unwrap();
    assert_eq!(one, two);
    assert_eq!(
        crate::ical::feed(&scorecard(&a, &o)),
        crate::ical::feed(&scorecard(&a, &o))
    );
}
