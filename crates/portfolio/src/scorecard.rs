//! The rules and the scorecard they fill.
//!
//! Every rule is judged as of one injected date ([`Options::as_of`]): stage changes and
//! reviews dated after it are ignored, so a scorecard for a past date can be reproduced from a
//! registry that has grown since. All day counts are whole calendar days between dates
//! (`as_of − date`); every list is sorted by a total order (most urgent first, then agent id
//! and the entry's own keys), so the same registry and date give the same bytes.

use crate::snapshot::{AgentSnapshot, ReviewSnapshot};
use jiff::Span;
use jiff::civil::Date;
use serde::Serialize;
use stagegate_core::decision::Outcome;
use stagegate_core::stage::Stage;

/// Version of the scorecard JSON shape. Fields are only added within a version.
pub const SCHEMA_VERSION: u32 = 1;

/// Seed 004's pilot purgatory threshold: a pilot whose end passed this many days ago with no
/// decision since is flagged.
pub const DEFAULT_PURGATORY_DAYS: u32 = 14;

/// Days ahead in which a due date counts as "due soon" (a drill about to go stale, a
/// post-launch review coming up).
pub const DEFAULT_WARNING_DAYS: u32 = 7;

/// Seed 003's weekly cadence: the scorecard's window is this many days, ending on the as-of
/// date (both ends included).
pub const WINDOW_DAYS: u32 = 7;

/// How the portfolio is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Options {
    /// The date everything is judged on (injected; stagegate never reads the clock here).
    /// Serialised once, as [`Scorecard::as_of`].
    #[serde(skip)]
    pub as_of: Date,
    /// Pilot purgatory after this many days past the pilot's end with no decision
    /// ([`DEFAULT_PURGATORY_DAYS`]).
    pub purgatory_days: u32,
    /// "Due soon" horizon in days ([`DEFAULT_WARNING_DAYS`]).
    pub warning_days: u32,
}

impl Options {
    /// The defaults, as of `as_of`.
    pub fn new(as_of: Date) -> Options {
        Options {
            as_of,
            purgatory_days: DEFAULT_PURGATORY_DAYS,
            warning_days: DEFAULT_WARNING_DAYS,
        }
    }
}

/// The week the scorecard covers: [`WINDOW_DAYS`] days ending on the as-of date, both
/// included (seed 003: `--window-start`, `--window-end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// First day, `as_of − 6`.
    pub start: Date,
    /// Last day, the as-of date.
    pub end: Date,
}

/// The registry the scorecard was computed from, after verification (set by the caller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Where it is: an SQLite path, or a PostgreSQL URL with its password masked.
    pub registry: String,
    /// Events verified (hashes, chain, registry signatures, rules) before answering.
    pub verified_events: i64,
    /// Hash of the newest verified event.
    pub head: String,
}

/// Agents per stage, as of the date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ByStage {
    /// In Pilot.
    pub pilot: u64,
    /// In Production.
    pub production: u64,
    /// Paused (from Pilot or Production).
    pub paused: u64,
    /// Retired.
    pub retired: u64,
    /// Registered (by a review) without `pilot start`.
    pub none: u64,
}

/// Agents per latest decision, as of the date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ByDecision {
    /// Latest review Cleared.
    pub cleared: u64,
    /// Latest review Conditional.
    pub conditional: u64,
    /// Latest review Blocked.
    pub blocked: u64,
    /// No review yet.
    pub none: u64,
}

impl ByDecision {
    fn add(&mut self, d: Option<Outcome>) {
        match d {
            Some(Outcome::Cleared) => self.cleared += 1,
            Some(Outcome::Conditional) => self.conditional += 1,
            Some(Outcome::Blocked) => self.blocked += 1,
            None => self.none += 1,
        }
    }
}

/// The scorecard's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Agents known on the as-of date.
    pub agents: u64,
    /// Per stage.
    pub by_stage: ByStage,
    /// Per latest decision.
    pub by_decision: ByDecision,
    /// Entries of [`Scorecard::pilot_purgatory`].
    pub pilot_purgatory: u64,
    /// Entries of [`Scorecard::pilots_without_review`].
    pub pilots_without_review: u64,
    /// Entries of [`Scorecard::overdue_open_items`].
    pub overdue_open_items: u64,
    /// Entries of [`Scorecard::post_launch_reviews`] that are overdue.
    pub post_launch_reviews_overdue: u64,
    /// Entries of [`Scorecard::post_launch_reviews`] (all pending).
    pub post_launch_reviews_pending: u64,
    /// Entries of [`Scorecard::stale_drills`].
    pub stale_drills: u64,
}

/// What happened inside the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// Reviews dated in the window, per decision (`none` is always 0 here).
    pub reviews: ByDecision,
    /// Pilots started (stage changes to Pilot dated in the window).
    pub pilots_started: u64,
    /// Launches (stage changes to Production dated in the window).
    pub launches: u64,
}

/// The latest review on or before the as-of date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastReview {
    /// Its event number in the log.
    pub event: i64,
    /// Review date.
    pub date: Date,
    /// Cleared / Conditional / Blocked.
    pub decision: Outcome,
    /// Its open items.
    pub open_items: u64,
}

/// One agent as of the date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRow {
    /// Agent id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Current stage; `null` for an agent registered by a review without `pilot start`.
    pub stage: Option<Stage>,
    /// Effective date of the change into the current stage.
    pub stage_since: Option<Date>,
    /// `as_of − stage_since`, in days.
    pub days_in_stage: Option<i64>,
    /// Last day of the pilot, from the latest review's card.
    pub pilot_end: Option<Date>,
    /// Target launch, from the latest review's card.
    pub target_launch: Option<Date>,
    /// The launch: the date of the change to Production (Production only).
    pub launched: Option<Date>,
    /// The newest counted kill-switch drill of the latest review (see [`StaleDrill`]).
    pub last_drill: Option<Date>,
    /// The last day that drill counts: `last_drill + drill_window_days`.
    pub drill_due: Option<Date>,
    /// The latest review.
    pub last_review: Option<LastReview>,
}

/// A pilot stuck between pilot and production: seed 004, "Do not let a pilot become
/// production just because no one made a formal decision to stop it."
///
/// Rule: the agent is in Pilot, its pilot ended at least `purgatory_days` days before the
/// as-of date (`as_of − pilot_end ≥ N`), and no review is dated on or after the pilot's last
/// day. A review on the last day counts as the decision: seed 001's worked example reviews on
/// the day its pilot ends. The pilot's end is the latest review's `pilot.end` (the registry
/// records the window only with a review).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgatoryEntry {
    /// Agent id.
    pub agent: String,
    /// Display name.
    pub name: String,
    /// Last day of the pilot.
    pub pilot_end: Date,
    /// `as_of − pilot_end`, in days (≥ `purgatory_days`).
    pub days_since_pilot_end: i64,
    /// Date of the latest review, which is before the pilot's end.
    pub last_review: Date,
    /// Its decision.
    pub last_decision: Outcome,
}

/// An agent in Pilot with no review on record as of the date: its pilot's end is unknown to
/// the registry, so the purgatory rule cannot be applied; listed with how long it has been
/// piloting (seed 004).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreviewedPilot {
    /// Agent id.
    pub agent: String,
    /// Display name.
    pub name: String,
    /// `pilot start` date.
    pub pilot_start: Date,
    /// `as_of − pilot_start`, in days.
    pub days_in_pilot: i64,
}

/// An open item with a due date (seed 001: open items have a "named owner" and a "Due date";
/// a Conditional launch's "Open items must close within 14 days post-launch").
///
/// Rule: the open items of the agent's latest review. One is overdue when its due date is
/// before the as-of date (an item due today is not overdue yet). Items without a due date
/// cannot be overdue and are not listed (the review already refuses to count them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenItemDue {
    /// Agent id.
    pub agent: String,
    /// Display name.
    pub name: String,
    /// Checklist item, 1–10.
    pub item: u8,
    /// What is missing.
    pub what: String,
    /// Owner as written.
    pub owner: Option<String>,
    /// Due date.
    pub due: Date,
    /// `due − as_of`, in days (negative when overdue).
    pub days_until_due: i64,
    /// Overdue, due soon or scheduled.
    pub status: DueStatus,
    /// The open-item record.
    pub source: String,
}

/// Where a due date stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DueStatus {
    /// Past due: the due date is before the as-of date.
    Overdue,
    /// Due within `warning_days` days (the due date itself included).
    DueSoon,
    /// Due later.
    Scheduled,
}

impl DueStatus {
    fn of(days_until_due: i64, warning_days: u32) -> DueStatus {
        if days_until_due < 0 {
            DueStatus::Overdue
        } else if days_until_due <= i64::from(warning_days) {
            DueStatus::DueSoon
        } else {
            DueStatus::Scheduled
        }
    }

    /// `overdue`, `due soon`, `scheduled`.
    pub fn words(self) -> &'static str {
        match self {
            DueStatus::Overdue => "overdue",
            DueStatus::DueSoon => "due soon",
            DueStatus::Scheduled => "scheduled",
        }
    }
}

/// A post-launch review owed (seed 001 usage notes: "The 30-day post-launch review at item 10
/// is non-negotiable. Put it on the calendar BEFORE launch."; worked example: launch
/// 2026-06-13, review 2026-07-13).
///
/// Rule: an agent in Production, launched on the date of its change to Production, owes a
/// review at launch + the template's post-launch days (30; read from the review the launch
/// rests on). It is done once a review dated after the launch is recorded (stagegate has no
/// separate post-launch review record: any review of the agent after launch counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostLaunchReview {
    /// Agent id.
    pub agent: String,
    /// Display name.
    pub name: String,
    /// Launch date.
    pub launched: Date,
    /// Due date.
    pub due: Date,
    /// `due − as_of`, in days (negative when overdue).
    pub days_until_due: i64,
    /// Overdue, due soon or scheduled.
    pub status: DueStatus,
}

/// A kill-switch drill going stale (seed 001 item 9: "Within the past 30 days, the rollback
/// procedure has been executed end-to-end in a drill").
///
/// Rule: the newest valid, passed drill of the agent's latest review counts until
/// `drill + drill_window_days` (inclusive, as item 9 judges it). Listed when that day is past
/// (`overdue`: the drill is older than the window), within `warning_days` (`due_soon`), or when
/// the latest review counted no drill at all (`none_on_record`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleDrill {
    /// Agent id.
    pub agent: String,
    /// Display name.
    pub name: String,
    /// Date of the newest counted drill.
    pub last_drill: Option<Date>,
    /// Last day it counts (the next drill is due by then).
    pub due: Option<Date>,
    /// `due − as_of`, in days (negative when overdue).
    pub days_until_due: Option<i64>,
    /// The window, in days.
    pub window_days: i64,
    /// `overdue`, `due_soon` or `none_on_record`.
    pub status: DrillStatus,
}

/// Where an agent's drill evidence stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillStatus {
    /// The latest review counted no passed drill.
    NoneOnRecord,
    /// The newest drill is older than the window.
    Overdue,
    /// It stops counting within the warning days.
    DueSoon,
}

impl DrillStatus {
    /// `no drill on record`, `overdue`, `due soon`.
    pub fn words(self) -> &'static str {
        match self {
            DrillStatus::NoneOnRecord => "no drill on record",
            DrillStatus::Overdue => "overdue",
            DrillStatus::DueSoon => "due soon",
        }
    }
}

/// A page of the scorecard's lists: each list keeps `limit` entries from `offset`; `total`
/// says how many each has in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    /// First entry of each list, from 0.
    pub offset: usize,
    /// Entries per list at most.
    pub limit: usize,
    /// Entries in all, per list: `agents`, `pilot_purgatory`, `pilots_without_review`,
    /// `overdue_open_items`, `post_launch_reviews`, `stale_drills`, `open_items`.
    pub total: std::collections::BTreeMap<&'static str, usize>,
}

fn page_of<T: Clone>(v: &mut Vec<T>, offset: usize, limit: usize) -> usize {
    let total = v.len();
    let start = offset.min(total);
    let end = start.saturating_add(limit).min(total);
    *v = v[start..end].to_vec();
    total
}

impl Scorecard {
    /// Keeps `limit` entries from `offset` of every list (agents and the attention lists) and
    /// says so in [`Scorecard::page`]; [`Scorecard::totals`] still covers everything.
    pub fn paged(&mut self, offset: usize, limit: usize) {
        let mut total = std::collections::BTreeMap::new();
        total.insert("agents", page_of(&mut self.agents, offset, limit));
        total.insert(
            "pilot_purgatory",
            page_of(&mut self.pilot_purgatory, offset, limit),
        );
        total.insert(
            "pilots_without_review",
            page_of(&mut self.pilots_without_review, offset, limit),
        );
        total.insert(
            "overdue_open_items",
            page_of(&mut self.overdue_open_items, offset, limit),
        );
        total.insert(
            "post_launch_reviews",
            page_of(&mut self.post_launch_reviews, offset, limit),
        );
        total.insert(
            "stale_drills",
            page_of(&mut self.stale_drills, offset, limit),
        );
        total.insert("open_items", page_of(&mut self.open_items, offset, limit));
        self.page = Some(Page {
            offset,
            limit,
            total,
        });
    }
}

/// The portfolio scorecard (seed 003: "Scorecard payload emitted with schema_version and
/// required totals", for a window with start and end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scorecard {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The date judged on.
    pub as_of: Date,
    /// The week covered.
    pub window: Window,
    /// The thresholds used.
    pub options: Options,
    /// The registry it was computed from, when the caller says.
    pub source: Option<Source>,
    /// Totals.
    pub totals: Totals,
    /// Inside the window.
    pub activity: Activity,
    /// Every agent, by id (one page of them when [`Scorecard::page`] is set).
    pub agents: Vec<AgentRow>,
    /// Pilot purgatory, longest past its end first.
    pub pilot_purgatory: Vec<PurgatoryEntry>,
    /// Pilots never reviewed, longest piloting first.
    pub pilots_without_review: Vec<UnreviewedPilot>,
    /// Overdue open items, oldest due date first.
    pub overdue_open_items: Vec<OpenItemDue>,
    /// Post-launch reviews not yet done, earliest due first.
    pub post_launch_reviews: Vec<PostLaunchReview>,
    /// Stale or nearly stale drills: none on record first, then earliest due.
    pub stale_drills: Vec<StaleDrill>,
    /// Every open item with a due date of the agents' latest reviews, earliest first (for the
    /// calendar; [`Scorecard::overdue_open_items`] are those past due).
    pub open_items: Vec<OpenItemDue>,
    /// Which page of the lists this is, when paged (the server pages them; the CLI never
    /// does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
}

fn plus_days(d: Date, n: i64) -> Date {
    d.checked_add(Span::new().try_days(n).unwrap_or_default())
        .unwrap_or(if n < 0 { Date::MIN } else { Date::MAX })
}

fn days(from: Date, to: Date) -> i64 {
    i64::from((to - from).get_days())
}

/// One agent as of the date.
struct AsOf<'a> {
    a: &'a AgentSnapshot,
    stage: Option<Stage>,
    stage_since: Option<Date>,
    latest: Option<&'a ReviewSnapshot>,
}

impl<'a> AsOf<'a> {
    /// `None` when the agent has nothing dated on or before `as_of` (it did not exist yet).
    fn new(a: &'a AgentSnapshot, as_of: Date) -> Option<AsOf<'a>> {
        let current = a.stages.iter().rfind(|s| s.at <= as_of);
        let latest = a
            .reviews
            .iter()
            .filter(|r| r.review_date <= as_of)
            .max_by_key(|r| (r.review_date, r.event));
        if current.is_none() && latest.is_none() {
            return None;
        }
        Some(AsOf {
            a,
            stage: current.map(|s| s.stage),
            stage_since: current.map(|s| s.at),
            latest,
        })
    }
}

/// Computes the scorecard of `agents` as of `opts.as_of`.
pub fn scorecard(agents: &[AgentSnapshot], opts: &Options) -> Scorecard {
    let as_of = opts.as_of;
    let window = Window {
        start: plus_days(as_of, -(i64::from(WINDOW_DAYS) - 1)),
        end: as_of,
    };
    let in_window = |d: Date| window.start <= d && d <= window.end;
    let mut all: Vec<AsOf<'_>> = agents.iter().filter_map(|a| AsOf::new(a, as_of)).collect();
    all.sort_by(|x, y| x.a.id.cmp(&y.a.id));

    let mut totals = Totals::default();
    let mut activity = Activity::default();
    let mut rows = Vec::new();
    let mut purgatory = Vec::new();
    let mut unreviewed = Vec::new();
    let mut open_items_due = Vec::new();
    let mut post_launch = Vec::new();
    let mut drills = Vec::new();

    for x in &all {
        let (id, name) = (&x.a.id, &x.a.name);
        totals.agents += 1;
        match x.stage {
            Some(Stage::Pilot) => totals.by_stage.pilot += 1,
            Some(Stage::Production) => totals.by_stage.production += 1,
            Some(Stage::Paused) => totals.by_stage.paused += 1,
            Some(Stage::Retired) => totals.by_stage.retired += 1,
            None => totals.by_stage.none += 1,
        }
        totals.by_decision.add(x.latest.map(|r| r.decision));
        for r in x.a.reviews.iter().filter(|r| in_window(r.review_date)) {
            activity.reviews.add(Some(r.decision));
        }
        // A pilot starts once and an agent launches once: resuming after a pause is neither.
        let first = |stage: Stage| {
            x.a.stages
                .iter()
                .find(|t| t.stage == stage)
                .map(|t| t.event)
        };
        for s in x.a.stages.iter().filter(|s| in_window(s.at)) {
            match s.stage {
                Stage::Pilot if first(Stage::Pilot) == Some(s.event) => {
                    activity.pilots_started += 1;
                }
                Stage::Production if first(Stage::Production) == Some(s.event) => {
                    activity.launches += 1;
                }
                _ => {}
            }
        }
        let launched = (x.stage == Some(Stage::Production))
            .then_some(x.stage_since)
            .flatten();
        rows.push(AgentRow {
            id: id.clone(),
            name: name.clone(),
            stage: x.stage,
            stage_since: x.stage_since,
            days_in_stage: x.stage_since.map(|d| days(d, as_of)),
            pilot_end: x.latest.map(|r| r.pilot_end),
            target_launch: x.latest.map(|r| r.target_launch),
            launched,
            last_drill: x.latest.and_then(|r| r.last_drill),
            drill_due: x
                .latest
                .and_then(|r| Some(plus_days(r.last_drill?, r.drill_window_days))),
            last_review: x.latest.map(|r| LastReview {
                event: r.event,
                date: r.review_date,
                decision: r.decision,
                open_items: r.open_items.len() as u64,
            }),
        });

        // Pilot purgatory, and pilots that never had a review (seed 004).
        if x.stage == Some(Stage::Pilot) {
            match x.latest {
                Some(r) => {
                    let since = days(r.pilot_end, as_of);
                    if since >= i64::from(opts.purgatory_days) && r.review_date < r.pilot_end {
                        purgatory.push(PurgatoryEntry {
                            agent: id.clone(),
                            name: name.clone(),
                            pilot_end: r.pilot_end,
                            days_since_pilot_end: since,
                            last_review: r.review_date,
                            last_decision: r.decision,
                        });
                    }
                }
                None => {
                    if let Some(start) = x.stage_since {
                        unreviewed.push(UnreviewedPilot {
                            agent: id.clone(),
                            name: name.clone(),
                            pilot_start: start,
                            days_in_pilot: days(start, as_of),
                        });
                    }
                }
            }
        }

        // Open items of the latest review (seed 001).
        if let Some(r) = x.latest {
            for o in &r.open_items {
                if let Some(due) = o.due {
                    let until = days(as_of, due);
                    open_items_due.push(OpenItemDue {
                        agent: id.clone(),
                        name: name.clone(),
                        item: o.item,
                        what: o.what.clone(),
                        owner: o.owner.clone(),
                        due,
                        days_until_due: until,
                        status: DueStatus::of(until, opts.warning_days),
                        source: o.source.clone(),
                    });
                }
            }
        }

        // The post-launch review (seed 001).
        if let Some(launch) = launched {
            let reviews = || x.a.reviews.iter().filter(|r| r.review_date <= as_of);
            let done = reviews().any(|r| r.review_date > launch);
            if !done {
                let period = reviews()
                    .filter(|r| r.review_date <= launch)
                    .max_by_key(|r| (r.review_date, r.event))
                    .map_or(crate::snapshot::DEFAULT_POST_LAUNCH_REVIEW_DAYS, |r| {
                        r.post_launch_review_days
                    });
                let due = plus_days(launch, period);
                let until = days(as_of, due);
                post_launch.push(PostLaunchReview {
                    agent: id.clone(),
                    name: name.clone(),
                    launched: launch,
                    due,
                    days_until_due: until,
                    status: DueStatus::of(until, opts.warning_days),
                });
            }
        }

        // Kill-switch drills (seed 001 item 9).
        if let Some(r) = x.latest {
            let entry = match r.last_drill {
                None => Some((None, DrillStatus::NoneOnRecord)),
                Some(d) => {
                    let due = plus_days(d, r.drill_window_days);
                    let until = days(as_of, due);
                    match DueStatus::of(until, opts.warning_days) {
                        DueStatus::Overdue => Some((Some((d, due, until)), DrillStatus::Overdue)),
                        DueStatus::DueSoon => Some((Some((d, due, until)), DrillStatus::DueSoon)),
                        DueStatus::Scheduled => None,
                    }
                }
            };
            if let Some((dated, status)) = entry {
                drills.push(StaleDrill {
                    agent: id.clone(),
                    name: name.clone(),
                    last_drill: dated.map(|t| t.0),
                    due: dated.map(|t| t.1),
                    days_until_due: dated.map(|t| t.2),
                    window_days: r.drill_window_days,
                    status,
                });
            }
        }
    }

    purgatory.sort_by(|a, b| {
        (b.days_since_pilot_end, &a.agent).cmp(&(a.days_since_pilot_end, &b.agent))
    });
    unreviewed.sort_by(|a, b| (b.days_in_pilot, &a.agent).cmp(&(a.days_in_pilot, &b.agent)));
    open_items_due.sort_by(|a, b| {
        (a.due, &a.agent, a.item, &a.source, &a.what)
            .cmp(&(b.due, &b.agent, b.item, &b.source, &b.what))
    });
    let overdue: Vec<OpenItemDue> = open_items_due
        .iter()
        .filter(|o| o.status == DueStatus::Overdue)
        .cloned()
        .collect();
    post_launch.sort_by(|a, b| (a.due, &a.agent).cmp(&(b.due, &b.agent)));
    drills.sort_by(|a, b| (a.status, a.due, &a.agent).cmp(&(b.status, b.due, &b.agent)));

    totals.pilot_purgatory = purgatory.len() as u64;
    totals.pilots_without_review = unreviewed.len() as u64;
    totals.overdue_open_items = overdue.len() as u64;
    totals.post_launch_reviews_pending = post_launch.len() as u64;
    totals.post_launch_reviews_overdue = post_launch
        .iter()
        .filter(|p| p.status == DueStatus::Overdue)
        .count() as u64;
    totals.stale_drills = drills.len() as u64;

    Scorecard {
        schema_version: SCHEMA_VERSION,
        as_of,
        window,
        options: *opts,
        source: None,
        totals,
        activity,
        agents: rows,
        pilot_purgatory: purgatory,
        pilots_without_review: unreviewed,
        overdue_open_items: overdue,
        post_launch_reviews: post_launch,
        stale_drills: drills,
        open_items: open_items_due,
        page: None,
    }
}
