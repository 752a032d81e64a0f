//! An iCalendar feed (RFC 5545) of the portfolio's due dates: open items, target launches,
//! post-launch reviews and kill-switch drills due.
//!
//! The text is written by the `icalendar` crate (CRLF line endings, content lines folded at
//! 75 octets without splitting a UTF-8 character, TEXT values escaped: `\\`, `;`, `,` and
//! line breaks). What this module adds:
//!
//! - **All-day events**: `DTSTART;VALUE=DATE` and no `DTEND`, which RFC 5545 §3.6.1 reads
//!   as one day. (A `DTEND` equal to `DTSTART` would break §3.8.2.2: "MUST be later in time".)
//! - **Stable UIDs**: `<kind>/<agent>[/<item>/<record>]@stagegate`, the same for the same
//!   due thing across runs, so a subscribed calendar updates an event instead of duplicating
//!   it when its date moves.
//! - **`DTSTAMP` from the as-of date** (midnight UTC), never the clock: the same registry and
//!   date give the same bytes.
//! - **Text cleaned first**: `\r\n` and `\r` become `\n`, other control characters (which
//!   TEXT may not hold, §3.3.11) are dropped.
//! - **Order**: events sorted by date, then UID.

use crate::scorecard::Scorecard;
use icalendar::{Calendar, Component, Event, EventLike};
use jiff::civil::Date;
use stagegate_core::stage::Stage;

/// `PRODID` of the feed (RFC 5545 §3.7.3).
pub const PRODID: &str = "-//stagegate//portfolio//EN";

/// One all-day event of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEvent {
    /// The day.
    pub date: Date,
    /// Stable identifier (see the module's documentation).
    pub uid: String,
    /// `open-item`, `target-launch`, `post-launch-review` or `drill-due`.
    pub category: &'static str,
    /// One line.
    pub summary: String,
    /// Details, one fact a line.
    pub description: String,
}

/// Keeps only what a TEXT value may hold: line breaks as `\n`, no other control character
/// but tab.
pub fn clean_text(s: &str) -> String {
    s.replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// The due dates of a scorecard, sorted by date then UID.
pub fn due_events(s: &Scorecard) -> Vec<DueEvent> {
    let mut events = Vec::new();
    for o in &s.open_items {
        events.push(DueEvent {
            date: o.due,
            uid: format!("open-item/{}/{}/{}@stagegate", o.agent, o.item, o.source),
            category: "open-item",
            summary: format!("Open item due: {} item {}: {}", o.name, o.item, o.what),
            description: format!(
                "Agent: {}\nItem: {}\nWhat: {}\nOwner: {}\nRecord: {}",
                o.agent,
                o.item,
                o.what,
                o.owner.as_deref().unwrap_or("none named"),
                o.source
            ),
        });
    }
    for a in &s.agents {
        if a.stage == Some(Stage::Pilot)
            && let (Some(date), Some(r)) = (a.target_launch, &a.last_review)
        {
            events.push(DueEvent {
                date,
                uid: format!("target-launch/{}@stagegate", a.id),
                category: "target-launch",
                summary: format!("Target launch: {}", a.name),
                description: format!(
                    "Agent: {}\nLatest review: {} ({})",
                    a.id,
                    r.date,
                    r.decision.as_str()
                ),
            });
        }
        if let (Some(last), Some(due)) = (a.last_drill, a.drill_due) {
            events.push(DueEvent {
                date: due,
                uid: format!("drill-due/{}@stagegate", a.id),
                category: "drill-due",
                summary: format!("Kill-switch drill due: {}", a.name),
                description: format!(
                    "Agent: {}\nLast drill: {last}\nIt counts until this day (seed 001 item 9).",
                    a.id
                ),
            });
        }
    }
    for p in &s.post_launch_reviews {
        events.push(DueEvent {
            date: p.due,
            uid: format!("post-launch-review/{}@stagegate", p.agent),
            category: "post-launch-review",
            summary: format!("Post-launch review due: {}", p.name),
            description: format!(
                "Agent: {}\nLaunched: {}\nSeed 001: the post-launch review is non-negotiable.",
                p.agent, p.launched
            ),
        });
    }
    events.sort_by(|a, b| (a.date, &a.uid).cmp(&(b.date, &b.uid)));
    events
}

fn naive(d: Date) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(
        i32::from(d.year()),
        u32::from(d.month().unsigned_abs()),
        u32::from(d.day().unsigned_abs()),
    )
    .unwrap_or_default()
}

/// The feed: `VCALENDAR` with one all-day `VEVENT` per due date.
pub fn feed(s: &Scorecard) -> String {
    let mut cal = Calendar::empty();
    cal.append_property(("VERSION", "2.0"))
        .append_property(("PRODID", PRODID))
        .append_property(("CALSCALE", "GREGORIAN"))
        .append_property(("METHOD", "PUBLISH"))
        .append_property(("X-WR-CALNAME", "stagegate portfolio"));
    let stamp = naive(s.as_of)
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    for e in due_events(s) {
        cal.push(
            Event::new()
                .uid(&clean_text(&e.uid))
                .timestamp(stamp)
                .starts(naive(e.date))
                .summary(&clean_text(&e.summary))
                .description(&clean_text(&e.description))
                .add_property("CATEGORIES", e.category)
                .add_property("TRANSP", "TRANSPARENT")
                .done(),
        );
    }
    cal.done().to_string()
}
