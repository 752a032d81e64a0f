//! The weekly executive report in Markdown (seed 003: "Weekly operating rhythm … Weekly
//! executive reports"; "Weekly + monthly executive reports used in cadence").
//!
//! Short on purpose: one line of totals, what happened this week, then each list of the
//! scorecard as a table (or "None."), most urgent first, and every agent last. Every cell is
//! escaped for a Markdown table (`|` and line breaks).

use crate::scorecard::Scorecard;
use std::fmt::Write;

/// Escapes a value for a Markdown table cell: `|` as `\|`, backslashes doubled, line breaks
/// as spaces.
pub fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\\' => out.push_str("\\\\"),
            '\r' => {}
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        out.push_str("None.\n\n");
        return;
    }
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        header.iter().map(|_| "---|").collect::<String>()
    );
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn days(n: i64) -> String {
    plural(n.unsigned_abs(), "day", "days")
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| v.to_string())
}

/// Renders the weekly executive report of a scorecard.
pub fn weekly(s: &Scorecard) -> String {
    let t = &s.totals;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Portfolio — week {} to {}\n",
        s.window.start, s.window.end
    );
    let _ = write!(out, "As of {}", s.as_of);
    if let Some(src) = &s.source {
        let _ = write!(
            out,
            "; registry {} verified ({}, head `{}`)",
            src.registry,
            plural(src.verified_events as u64, "event", "events"),
            src.head
        );
    }
    out.push_str(
        ". The weekly executive report (seed 003: \"Weekly + monthly executive reports used in \
         cadence\").\n\n",
    );
    let _ = writeln!(
        out,
        "**{}**: {} in pilot, {} in production{}. Latest decisions: {} Cleared, {} Conditional, {} Blocked, {} not reviewed.\n",
        plural(t.agents, "agent", "agents"),
        t.by_stage.pilot,
        t.by_stage.production,
        if t.by_stage.none > 0 {
            format!(", {} with no stage", t.by_stage.none)
        } else {
            String::new()
        },
        t.by_decision.cleared,
        t.by_decision.conditional,
        t.by_decision.blocked,
        t.by_decision.none,
    );
    let a = &s.activity;
    let _ = writeln!(
        out,
        "**This week**: {} ({} Cleared, {} Conditional, {} Blocked), {} started, {}.\n",
        plural(
            a.reviews.cleared + a.reviews.conditional + a.reviews.blocked,
            "review",
            "reviews"
        ),
        a.reviews.cleared,
        a.reviews.conditional,
        a.reviews.blocked,
        plural(a.pilots_started, "pilot", "pilots"),
        plural(a.launches, "launch", "launches"),
    );
    let _ = writeln!(
        out,
        "**Needs attention**: {} in purgatory, {} without a review, {} overdue, {} overdue ({} pending), {}.\n",
        plural(t.pilot_purgatory, "pilot", "pilots"),
        plural(t.pilots_without_review, "pilot", "pilots"),
        plural(t.overdue_open_items, "open item", "open items"),
        plural(
            t.post_launch_reviews_overdue,
            "post-launch review",
            "post-launch reviews"
        ),
        t.post_launch_reviews_pending,
        plural(t.stale_drills, "stale drill", "stale drills"),
    );

    let _ = writeln!(
        out,
        "## Pilot purgatory\n\nPilots that ended {} or more days ago with no decision since (seed 004: \"Do not let a pilot become production just because no one made a formal decision to stop it\").\n",
        s.options.purgatory_days
    );
    table(
        &mut out,
        &[
            "Agent",
            "Pilot ended",
            "Days since",
            "Last review",
            "Decision",
        ],
        &s.pilot_purgatory
            .iter()
            .map(|p| {
                vec![
                    format!("{} ({})", p.name, p.agent),
                    p.pilot_end.to_string(),
                    p.days_since_pilot_end.to_string(),
                    p.last_review.to_string(),
                    p.last_decision.as_str().to_owned(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    if !s.pilots_without_review.is_empty() {
        out.push_str("Pilots with no review yet (their end date is not on record):\n\n");
        table(
            &mut out,
            &["Agent", "Pilot started", "Days in pilot"],
            &s.pilots_without_review
                .iter()
                .map(|p| {
                    vec![
                        format!("{} ({})", p.name, p.agent),
                        p.pilot_start.to_string(),
                        p.days_in_pilot.to_string(),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }

    out.push_str(
        "## Overdue open items\n\nOpen items of each agent's latest review past their due date (seed 001).\n\n",
    );
    table(
        &mut out,
        &["Agent", "Item", "What", "Owner", "Due", "Overdue by"],
        &s.overdue_open_items
            .iter()
            .map(|o| {
                vec![
                    format!("{} ({})", o.name, o.agent),
                    o.item.to_string(),
                    o.what.clone(),
                    opt(o.owner.as_deref()),
                    o.due.to_string(),
                    days(o.days_until_due),
                ]
            })
            .collect::<Vec<_>>(),
    );

    out.push_str(
        "## Post-launch reviews\n\nLaunched agents owing their post-launch review (seed 001: \"The 30-day post-launch review … is non-negotiable\").\n\n",
    );
    table(
        &mut out,
        &["Agent", "Launched", "Due", "Status"],
        &s.post_launch_reviews
            .iter()
            .map(|p| {
                vec![
                    format!("{} ({})", p.name, p.agent),
                    p.launched.to_string(),
                    p.due.to_string(),
                    match p.days_until_due {
                        0 => "due today".to_owned(),
                        n if n < 0 => format!("overdue by {}", days(n)),
                        n => format!("{} in {}", p.status.words(), days(n)),
                    },
                ]
            })
            .collect::<Vec<_>>(),
    );

    let _ = writeln!(
        out,
        "## Kill-switch drills going stale\n\nA drill counts for the template's drill window (seed 001 item 9: \"Within the past 30 days\"); listed when it has lapsed, lapses within {} days, or the latest review counted none.\n",
        s.options.warning_days
    );
    table(
        &mut out,
        &["Agent", "Last drill", "Counts until", "Status"],
        &s.stale_drills
            .iter()
            .map(|d| {
                vec![
                    format!("{} ({})", d.name, d.agent),
                    opt(d.last_drill),
                    opt(d.due),
                    match d.days_until_due {
                        Some(n) if n < 0 => format!("overdue by {}", days(n)),
                        Some(0) => "lapses after today".to_owned(),
                        Some(n) => format!("lapses in {}", days(n)),
                        None => d.status.words().to_owned(),
                    },
                ]
            })
            .collect::<Vec<_>>(),
    );

    out.push_str("## All agents\n\n");
    table(
        &mut out,
        &[
            "Agent",
            "Stage",
            "Since",
            "Days",
            "Last review",
            "Decision",
            "Open items",
        ],
        &s.agents
            .iter()
            .map(|a| {
                vec![
                    format!("{} ({})", a.name, a.id),
                    opt(a.stage.map(|s| s.as_str())),
                    opt(a.stage_since),
                    opt(a.days_in_stage),
                    opt(a.last_review.as_ref().map(|r| r.date)),
                    opt(a.last_review.as_ref().map(|r| r.decision.as_str())),
                    opt(a.last_review.as_ref().map(|r| r.open_items)),
                ]
            })
            .collect::<Vec<_>>(),
    );
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}
