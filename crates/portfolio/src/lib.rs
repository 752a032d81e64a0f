//! stagegate's portfolio: one view of every agent in the registry, for the CoE lead's weekly
//! rhythm. No IO: the caller reads (and verifies) the registry, turns its log into
//! [`AgentSnapshot`]s and injects the as-of date; this crate only computes and renders.
//!
//! - [`scorecard::scorecard`] judges, as of [`Options::as_of`]: every agent with stage, days
//!   in stage and last decision; **pilot purgatory** (seed 004: "Do not let a pilot become
//!   production just because no one made a formal decision to stop it" — a pilot ended
//!   `purgatory_days` (14) or more days ago with no review since its last day); pilots never
//!   reviewed; open items past due (seed 001 open items: owner and due date); 30-day
//!   post-launch reviews owed (seed 001: "The 30-day post-launch review … is
//!   non-negotiable"); kill-switch drills lapsed or about to lapse (seed 001 item 9, "Within
//!   the past 30 days"). Each rule is documented on its entry type
//!   ([`scorecard::PurgatoryEntry`], [`scorecard::OpenItemDue`],
//!   [`scorecard::PostLaunchReview`], [`scorecard::StaleDrill`]).
//! - [`Scorecard`] serialises to the scorecard JSON (seed 003: "Scorecard payload emitted
//!   with schema_version and required totals", a window start and end): [`to_json`].
//! - [`markdown::weekly`] is the weekly executive report (seed 003's weekly cadence).
//! - [`ical::feed`] is an iCalendar (RFC 5545) feed of the due dates.
//!
//! Not derived: a credential rotation's next due date. Rotation records carry a date but no
//! interval, and neither the card nor the review states one, so "rotation past due" would be
//! invented; it is left out.
//!
//! Determinism: the as-of date is an input, days are whole calendar days, every list is
//! sorted by a total order, and the feed's `DTSTAMP` is the as-of date — the same registry and
//! date give the same bytes in every format.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ical;
pub mod markdown;
pub mod scorecard;
pub mod snapshot;

#[cfg(test)]
mod rules_tests;

pub use scorecard::{Options, Scorecard, Source, scorecard};
pub use snapshot::{AgentSnapshot, OpenItemSnapshot, ReviewSnapshot, SnapshotError, StageChange};

/// The scorecard as pretty JSON with a final newline (field order as declared, lists as
/// sorted by [`scorecard::scorecard`]).
///
/// # Errors
/// Only if serialisation fails, which these types do not.
pub fn to_json(s: &Scorecard) -> Result<String, serde_json::Error> {
    Ok(format!("{}\n", serde_json::to_string_pretty(s)?))
}
