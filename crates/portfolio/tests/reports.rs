//! The three outputs of one portfolio that has something in every list: the scorecard JSON's
//! shape, the weekly Markdown (insta snapshot), and the iCalendar feed against RFC 5545's
//! rules (CRLF, 75-octet folding, TEXT escaping, all-day dates, DTSTAMP, stable UIDs).

use jiff::civil::Date;
use stagegate_core::decision::Outcome;
use stagegate_core::stage::Stage;
use stagegate_portfolio::{
    AgentSnapshot, OpenItemSnapshot, Options, ReviewSnapshot, Source, StageChange, ical, markdown,
    scorecard, to_json,
};

fn d(s: &str) -> Date {
    s.parse().unwrap()
}

fn review(
    event: i64,
    date: &str,
    decision: Outcome,
    end: &str,
    drill: Option<&str>,
) -> ReviewSnapshot {
    ReviewSnapshot {
        event,
        review_date: d(date),
        decision,
        pilot_start: d(end).checked_sub(jiff::Span::new().days(30)).unwrap(),
        pilot_end: d(end),
        target_launch: d(end).tomorrow().unwrap(),
        post_launch_review_days: 30,
        open_items: Vec::new(),
        last_drill: drill.map(d),
        drill_window_days: 30,
    }
}

fn stage(event: i64, s: Stage, at: &str) -> StageChange {
    StageChange {
        event,
        stage: s,
        at: d(at),
    }
}

/// As of 2026-07-20: one launched agent owing its post-launch review with an overdue open
/// item, one pilot in purgatory, one pilot never reviewed, one Cleared pilot not launched yet.
fn portfolio() -> Vec<AgentSnapshot> {
    let mut conditional = review(
        6,
        "2026-06-12",
        Outcome::Conditional,
        "2026-06-12",
        Some("2026-06-08"),
    );
    conditional.open_items = vec![
        OpenItemSnapshot {
            item: 6,
            what: "Verify the S3 Glacier lifecycle; record it, with the 7-year | SOX retention"
                .into(),
            owner: Some("Priya Nair".into()),
            due: Some(d("2026-06-24")),
            source: "evidence/open-item-retention.yaml".into(),
        },
        OpenItemSnapshot {
            item: 8,
            what: "Schedule the Slack post,\nthe digest entry and the exec 1-pager".into(),
            owner: Some("Mike Chen".into()),
            due: Some(d("2026-07-25")),
            source: "evidence/open-item-comms.yaml".into(),
        },
    ];
    vec![
        AgentSnapshot {
            id: "agent-finance-invoice-recon".into(),
            name: "Finance Invoice Reconciliation".into(),
            stages: vec![
                stage(4, Stage::Pilot, "2026-05-12"),
                stage(7, Stage::Production, "2026-06-13"),
            ],
            reviews: vec![conditional],
        },
        AgentSnapshot {
            id: "agent-hr-onboarding".into(),
            name: "HR Onboarding Helper".into(),
            stages: vec![stage(10, Stage::Pilot, "2026-05-01")],
            reviews: vec![review(
                12,
                "2026-05-25",
                Outcome::Blocked,
                "2026-06-05",
                None,
            )],
        },
        AgentSnapshot {
            id: "agent-legal-intake".into(),
            name: "Legal Intake Triage".into(),
            stages: vec![stage(20, Stage::Pilot, "2026-07-01")],
            reviews: Vec::new(),
        },
        AgentSnapshot {
            id: "agent-support-chat".into(),
            name: "Support Chat Assistant".into(),
            stages: vec![stage(30, Stage::Pilot, "2026-06-10")],
            reviews: vec![review(
                31,
                "2026-07-16",
                Outcome::Cleared,
                "2026-07-16",
                Some("2026-07-14"),
            )],
        },
    ]
}

fn card() -> stagegate_portfolio::Scorecard {
    let mut s = scorecard(&portfolio(), &Options::new(d("2026-07-20")));
    s.source = Some(Source {
        registry: ".stagegate/registry.db".into(),
        verified_events: 31,
        head: "sha256:0f1e".into(),
    });
    s
}

#[test]
fn scorecard_json_shape() {
    let v: serde_json::Value = serde_json::from_str(&to_json(&card()).unwrap()).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["as_of"], "2026-07-20");
    assert_eq!(
        v["window"],
        serde_json::json!({"start": "2026-07-14", "end": "2026-07-20"})
    );
    assert_eq!(v["options"]["purgatory_days"], 14);
    assert_eq!(v["totals"]["agents"], 4);
    assert_eq!(
        v["totals"]["by_stage"],
        serde_json::json!({"pilot": 3, "production": 1, "paused": 0, "retired": 0, "none": 0})
    );
    assert_eq!(
        v["totals"]["by_decision"],
        serde_json::json!({"cleared": 1, "conditional": 1, "blocked": 1, "none": 1})
    );
    assert_eq!(v["pilot_purgatory"][0]["agent"], "agent-hr-onboarding");
    assert_eq!(v["pilot_purgatory"][0]["days_since_pilot_end"], 45);
    assert_eq!(v["pilots_without_review"][0]["agent"], "agent-legal-intake");
    assert_eq!(v["overdue_open_items"][0]["item"], 6);
    assert_eq!(v["overdue_open_items"][0]["days_until_due"], -26);
    assert_eq!(v["overdue_open_items"][0]["status"], "overdue");
    assert_eq!(v["post_launch_reviews"][0]["due"], "2026-07-13");
    assert_eq!(v["post_launch_reviews"][0]["status"], "overdue");
    assert_eq!(v["stale_drills"][0]["agent"], "agent-hr-onboarding");
    assert_eq!(v["stale_drills"][0]["status"], "none_on_record");
    assert_eq!(v["stale_drills"][1]["status"], "overdue");
    assert_eq!(v["agents"][0]["stage"], "production");
    assert_eq!(v["agents"][0]["last_review"]["decision"], "Conditional");
    assert_eq!(v["source"]["verified_events"], 31);
}

#[test]
fn weekly_markdown() {
    insta::assert_snapshot!("weekly", markdown::weekly(&card()));
}

#[test]
fn markdown_with_nothing_to_report() {
    let s = scorecard(&[], &Options::new(d("2026-07-20")));
    let md = markdown::weekly(&s);
    assert!(
        md.starts_with("# Portfolio — week 2026-07-14 to 2026-07-20\n"),
        "{md}"
    );
    assert!(md.contains("**0 agents**"), "{md}");
    assert_eq!(md.matches("None.").count(), 5, "{md}");
    assert!(!md.ends_with("\n\n") && md.ends_with('\n'));
}

/// RFC 5545 §3.1: unfolds content lines (CRLF followed by one space or tab).
fn unfold(text: &str) -> Vec<String> {
    text.replace("\r\n ", "")
        .replace("\r\n\t", "")
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// RFC 5545 §3.3.11: the inverse of TEXT escaping.
fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(o) => out.push(o),
                None => panic!("a lone backslash ends {v:?}"),
            }
        } else {
            assert!(c != ',' && c != ';', "unescaped {c:?} in {v:?}");
            out.push(c);
        }
    }
    out
}

fn value<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(name))
        .filter_map(|l| l.strip_prefix(':'))
        .collect()
}

#[test]
fn ical_feed_follows_rfc_5545() {
    let text = ical::feed(&card());
    // §3.1: every line ends with CRLF, no bare CR or LF; at most 75 octets per line.
    assert!(text.ends_with("\r\n"));
    assert!(!text.replace("\r\n", "").contains(['\r', '\n']));
    for line in text.split("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
    }
    let lines = unfold(&text);
    assert_eq!(lines.first().map(String::as_str), Some("BEGIN:VCALENDAR"));
    assert_eq!(lines.last().map(String::as_str), Some("END:VCALENDAR"));
    assert_eq!(value(&lines, "VERSION"), ["2.0"]);
    assert_eq!(value(&lines, "PRODID"), [ical::PRODID]);
    let begins = lines.iter().filter(|l| *l == "BEGIN:VEVENT").count();
    assert_eq!(begins, lines.iter().filter(|l| *l == "END:VEVENT").count());
    // Open items 2; target launches 2 (the pilots with a review); drills due 2 (the agents
    // with a counted drill); post-launch review 1.
    assert_eq!(begins, 2 + 2 + 2 + 1);
    // §3.8.7.2: DTSTAMP in UTC, from the as-of date; §3.6.1: all-day events without DTEND.
    assert!(
        value(&lines, "DTSTAMP")
            .iter()
            .all(|v| *v == "20260720T000000Z")
    );
    assert_eq!(value(&lines, "DTSTART;VALUE=DATE").len(), begins);
    assert!(!text.contains("DTEND"));
    // UIDs: one per event, unique.
    let uids = value(&lines, "UID");
    let mut unique = uids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!((uids.len(), unique.len()), (begins, begins));
    assert!(uids.contains(&"post-launch-review/agent-finance-invoice-recon@stagegate"));
    // §3.3.11: commas, semicolons, backslashes and line breaks escaped, and back.
    let summaries: Vec<String> = value(&lines, "SUMMARY").into_iter().map(unescape).collect();
    assert!(summaries.contains(
        &"Open item due: Finance Invoice Reconciliation item 6: Verify the S3 Glacier lifecycle; record it, with the 7-year | SOX retention".to_owned()
    ), "{summaries:?}");
    assert!(summaries.contains(
        &"Open item due: Finance Invoice Reconciliation item 8: Schedule the Slack post,\nthe digest entry and the exec 1-pager".to_owned()
    ));
    // Sorted by date: first the onboarding pilot's missed target launch (2026-06-06).
    let dates = value(&lines, "DTSTART;VALUE=DATE");
    assert!(dates.is_sorted(), "{dates:?}");
    assert_eq!(dates[0], "20260606");
}

#[test]
fn ical_folds_multibyte_text_and_drops_control_characters() {
    let mut agents = portfolio();
    agents[0].name =
        "Réconciliation des factures fournisseurs — équipe comptable \\ Zürich; Genève, 東京"
            .into();
    agents[0].reviews[0].open_items[1].what = "one\r\ntwo\rthree\u{7}".into();
    let s = scorecard(&agents, &Options::new(d("2026-07-20")));
    let text = ical::feed(&s);
    for line in text.split("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
    }
    let lines = unfold(&text);
    let summaries: Vec<String> = value(&lines, "SUMMARY").into_iter().map(unescape).collect();
    assert!(
        summaries.contains(&format!("Post-launch review due: {}", agents[0].name)),
        "{summaries:?}"
    );
    assert!(
        summaries
            .iter()
            .any(|s| s.ends_with("item 8: one\ntwo\nthree")),
        "{summaries:?}"
    );
    assert!(!text.contains('\u{7}'));
}

#[test]
fn ical_uids_survive_a_moved_date() {
    let a = ical::due_events(&card());
    let mut agents = portfolio();
    agents[0].reviews[0].open_items[0].due = Some(d("2026-07-30"));
    let b = ical::due_events(&scorecard(&agents, &Options::new(d("2026-07-20"))));
    let uid = "open-item/agent-finance-invoice-recon/6/evidence/open-item-retention.yaml@stagegate";
    let date = |v: &[ical::DueEvent]| v.iter().find(|e| e.uid == uid).map(|e| e.date);
    assert_eq!(date(&a), Some(d("2026-06-24")));
    assert_eq!(date(&b), Some(d("2026-07-30")));
}
