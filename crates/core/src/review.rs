//! A review: everything the checklist decides, from inputs already loaded and measured.
//!
//! [`review`] is a pure function: the same [`ReviewInput`] gives the same [`Review`] (and the
//! same digest). The shape of [`Review`] is the `--format json` output; fields are only ever
//! added within one `schema_version`.

use crate::card::{
    AgentCard, AuditLog, Dashboard, Guardrail, Identity, Lane, People, RollbackPlan, Tier,
};
use crate::decision::{self, MatrixInput, OpenItemFacts, Outcome, Status};
use crate::digest::InputDigest;
use crate::economics::{self, EconomicsResult};
use crate::evidence::{
    AcknowledgmentDetails, ApprovalDetails, ApprovalSubject, CommunicationDetails, DrillDetails,
    Evidence, EvidenceKind, GuardrailTestDetails, MetricDetails, OpenItemDetails, RotationDetails,
    SignoffRole, Validity,
};
use crate::gates::{GateTemplate, Rule};
use crate::items::{self, Findings};
use crate::person::check_named_person;
use crate::readiness::{self, Readiness};
use jiff::ToSpan;
use jiff::civil::Date;
use serde::Serialize;
pub use stagegate_stats::Interval;
pub use stagegate_stats::interval::{MoreEvents, Target};
use std::collections::{BTreeMap, BTreeSet};

/// Version of the JSON report shape.
pub const SCHEMA_VERSION: u32 = 2;

/// One point of a per-bucket series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// Bucket label: `week 1`, `2026-05-13`, `2023-11-16T18:00Z`.
    pub bucket: String,
    /// The metric's value in that bucket.
    pub value: f64,
    /// Rows in the bucket.
    pub rows: u64,
}

/// A criterion's measured value, as the telemetry engine computed it.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Measurement {
    /// The value in the criterion's unit; `None` when nothing could be measured.
    pub value: Option<f64>,
    /// Rows the metric read (after the pilot window and its `where` filter).
    pub rows: u64,
    /// Per-week series (or the metric's own `per` buckets).
    pub series: Vec<SeriesPoint>,
    /// Why there is no value, or how it was measured.
    pub note: Option<String>,
    /// Confidence interval of the value, for sample statistics (rate, mean, quantile, ratio);
    /// `None` for exact tallies (count, sum, distinct, adoption of a known cohort, per-period
    /// reductions) and evidence-sourced values.
    pub interval: Option<Interval>,
    /// How the interval was computed: "Wilson score", "Student t", "order statistics",
    /// "delta method", or the comparison's test and interval.
    pub interval_method: Option<String>,
    /// Whether the value is a sample statistic (rates, means, quantiles, ratios, every
    /// comparison): it can then only be judged through an interval that reaches the card's
    /// confidence, never on its point value. Exact tallies (counts, sums, distinct counts,
    /// adoption of a known cohort, per-period reductions) and evidence values are not.
    pub sampled: bool,
    /// How many more events would decide the criterion, when its interval does not.
    pub more_events: Option<MoreEvents>,
    /// For a relative criterion: the two sides and the test.
    pub comparison: Option<ComparisonSummary>,
}

/// A relative criterion's comparison: the value is the effect (pilot − reference, or relative).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonSummary {
    /// `baseline` or `control`.
    pub against: String,
    /// The test, e.g. "Welch t".
    pub test: String,
    /// `absolute` or `relative`.
    pub effect_scale: String,
    /// The metric on the reference side (baseline period or control cohort).
    pub reference_value: Option<f64>,
    /// The metric on the pilot side.
    pub pilot_value: Option<f64>,
    /// Reference rows.
    pub reference_rows: u64,
    /// Pilot rows.
    pub pilot_rows: u64,
    /// Two-sided p-value of the test of no difference.
    pub p_value: Option<f64>,
    /// Sample-ratio-mismatch check, when cohorts were assigned by percentage.
    pub srm: Option<Srm>,
    /// The unit of analysis, when the comparison ran over per-unit aggregates.
    pub unit: Option<UnitSummary>,
    /// The CUPED adjustment, when a covariate was used.
    pub cuped: Option<CupedSummary>,
}

/// The unit of analysis of a per-unit comparison (issue "verdicts that hold at any size" §5).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitSummary {
    /// The id role the units are, e.g. `user` or `agent_id`.
    pub role: String,
    /// Units on the reference side.
    pub reference_units: u64,
    /// Units on the pilot side.
    pub pilot_units: u64,
    /// Control comparisons: units seen in both cohorts, left out of both (a unit belongs to
    /// one arm); flagged on item 1 when non-zero.
    pub in_both_cohorts: u64,
}

/// A CUPED adjustment (Deng, Xu, Kohavi & Walker 2013).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CupedSummary {
    /// The covariate period, `start..end`.
    pub covariate_period: String,
    /// The coefficient θ.
    pub theta: f64,
    /// 1 − Var(adjusted) ÷ Var(unadjusted), 0–1: the share of variance removed.
    pub variance_reduction: f64,
    /// The effect before adjustment.
    pub unadjusted_effect: f64,
}

/// A non-inferiority or equivalence claim, as judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HypothesisSummary {
    /// `non_inferiority` or `equivalence`.
    pub kind: crate::card::Hypothesis,
    /// The margin, in the effect's unit.
    pub margin: f64,
    /// Level of each one-sided bound: the card's confidence (the interval shown is two-sided
    /// at 1 − 2α).
    pub one_sided_confidence: f64,
    /// Lowest acceptable effect (equivalence, and non-inferiority with `>=`/`>`).
    pub accept_from: Option<f64>,
    /// Highest acceptable effect (equivalence, and non-inferiority with `<=`/`<`).
    pub accept_to: Option<f64>,
}

/// A sample-ratio-mismatch check (chi-square goodness of fit of cohort sizes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Srm {
    /// Units seen in the pilot cohort.
    pub pilot_units: u64,
    /// Units seen in the control cohort.
    pub control_units: u64,
    /// Assigned pilot share.
    pub expected_pilot_share: f64,
    /// χ² statistic.
    pub chi2: f64,
    /// p-value.
    pub p_value: f64,
    /// Whether p < 0.001, the usual SRM alarm.
    pub flagged: bool,
}

/// Data quality of one telemetry role in one week.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeekQuality {
    /// `week 1`, `week 2`… counted from the pilot start.
    pub week: String,
    /// Rows in the week.
    pub rows: u64,
    /// Share (0–1) of rows without a value for the role.
    pub missing_rate: f64,
    /// Population stability index against week 1 (numeric roles only).
    pub psi: Option<f64>,
}

/// Weekly data quality of one role.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnQuality {
    /// The role.
    pub role: String,
    /// Per week.
    pub weeks: Vec<WeekQuality>,
}

/// Drift and data quality over the pilot window (issue "decision quality" §4): weekly missing
/// rate and PSI against the first pilot week. Flags name every week beyond the thresholds of
/// `stagegate_stats::drift` (PSI > 0.25; missing rate more than 5 points above week 1).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DataQuality {
    /// Per role, sorted by role.
    pub columns: Vec<ColumnQuality>,
    /// Human-readable flags.
    pub flags: Vec<String>,
}

/// The success criteria digest locked at pilot start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CriteriaLock {
    /// `sha256:<hex>` of the criteria.
    pub digest: String,
    /// The date the lock is given (`pilot start --as-of`).
    pub locked_at: Date,
    /// Who locked it.
    pub by: String,
    /// When the registry actually recorded it (the machine clock, UTC).
    pub recorded_at: Option<jiff::Timestamp>,
    /// Whether the recording time came from `STAGEGATE_NOW` rather than the machine clock.
    pub clock_overridden: bool,
}

/// Everything a review decides from.
#[derive(Debug, Clone)]
pub struct ReviewInput<'a> {
    /// The agent card (validated).
    pub card: &'a AgentCard,
    /// The gate template (validated).
    pub template: &'a GateTemplate,
    /// Where the template came from: `builtin` or a path.
    pub template_source: String,
    /// Every evidence record found, valid or not.
    pub evidence: &'a [Evidence],
    /// Measured criteria, by criterion id.
    pub measurements: &'a BTreeMap<String, Measurement>,
    /// Rows read per telemetry file, for the report.
    pub telemetry_rows: u64,
    /// Drift and data quality of the telemetry.
    pub data_quality: DataQuality,
    /// Telemetry file paths as the card names them.
    pub telemetry_files: Vec<String>,
    /// `sha256:` digest of the runbook, `None` when the file is missing.
    pub runbook_sha256: Option<String>,
    /// The criteria lock from the registry, if the pilot was started there.
    pub criteria_lock: Option<CriteriaLock>,
    /// The organisation's allowed-signers file; without it no signature can count.
    pub allowed_signers: Option<&'a crate::signing::AllowedSigners>,
    /// Where that file was found and its digest, for the report.
    pub allowed_signers_file: Option<crate::signing::SignersFile>,
    /// Every input file with its digest.
    pub inputs: Vec<InputDigest>,
    /// The review date (the `--as-of` day, UTC).
    pub as_of: Date,
}

/// The agent, as the report heads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentSummary {
    /// `agent-<dept>-<slug>`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Tier.
    pub tier: Tier,
    /// Lane.
    pub lane: Lane,
    /// Department.
    pub department: String,
}

/// The pilot window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PilotSummary {
    /// First day.
    pub start: Date,
    /// Last day.
    pub end: Date,
    /// Length in days, both ends included.
    pub days: i64,
    /// Telemetry rows inside the window.
    pub telemetry_rows: u64,
}

/// A criterion beside its actual.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CriterionResult {
    /// Criterion id.
    pub id: String,
    /// Description.
    pub description: String,
    /// How it is computed, e.g. `p95(latency_ms)`.
    pub metric: String,
    /// Comparator symbol.
    pub comparator: String,
    /// Threshold.
    pub threshold: f64,
    /// Unit.
    pub unit: Option<String>,
    /// Baseline, when the card gives one.
    pub baseline: Option<f64>,
    /// Measured value.
    pub actual: Option<f64>,
    /// Rows read.
    pub rows: u64,
    /// Whether the actual meets the threshold: `Some(true)` met, `Some(false)` not met, `None`
    /// inconclusive or not measured.
    pub met: Option<bool>,
    /// The verdict at the card's confidence level.
    pub verdict: Verdict,
    /// Confidence interval of the actual (sample statistics only).
    pub interval: Option<Interval>,
    /// How the interval was computed.
    pub interval_method: Option<String>,
    /// How many more events would decide an inconclusive criterion.
    pub more_events: Option<MoreEvents>,
    /// Non-inferiority or equivalence: the claim, its margin and acceptance region.
    pub hypothesis: Option<HypothesisSummary>,
    /// How it was measured, or why it has no value or interval (rows left out, no spread,
    /// CUPED not applied, an approximate quantile…).
    pub note: Option<String>,
    /// For a relative criterion: the two sides and the test.
    pub comparison: Option<ComparisonSummary>,
    /// Leading or lagging indicator, as the card tags it.
    pub indicator: Option<crate::card::Indicator>,
    /// Per-bucket series.
    pub series: Vec<SeriesPoint>,
    /// The metric record it came from, for evidence-sourced criteria.
    pub evidence: Option<String>,
}

/// A criterion's verdict at a confidence level (issue "decision quality" §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The whole interval (or the exact value) satisfies the threshold.
    Met,
    /// The whole interval (or the exact value) fails it.
    NotMet,
    /// The interval straddles the threshold: more data is needed.
    Inconclusive,
    /// Nothing was measured.
    NoData,
}

impl Verdict {
    /// Judges a criterion's value against `comparator` and `target` (from
    /// [`crate::card::Criterion::target`]).
    ///
    /// Exact values (not `sampled`) compare directly. A sample statistic is judged only
    /// through an interval that reaches the card's confidence: without one (a mean of one
    /// value) or with one that falls short (a p99 over 20 values, a 1-vs-1 rank test) it is
    /// inconclusive — coverage before verdict. Then, for a limit: met when the interval's
    /// worst end satisfies `comparator limit`, not met when its best end fails it; for a band
    /// (equivalence): met when the interval lies inside, not met when wholly outside;
    /// inconclusive otherwise. A comparison whose point effect is undefined (a relative change
    /// over a zero reference) is still judged by its interval.
    pub fn judge(
        comparator: crate::card::Comparator,
        target: Target,
        actual: Option<f64>,
        interval: Option<&Interval>,
        sampled: bool,
    ) -> Verdict {
        use crate::card::Comparator as C;
        let exact = |ok: bool| if ok { Verdict::Met } else { Verdict::NotMet };
        if !sampled {
            // A tally that overflowed (a sum past 10³⁰⁸) is no measurement.
            let Some(a) = actual.filter(|a| a.is_finite()) else {
                return Verdict::NoData;
            };
            let t = match target {
                Target::Limit(t) => t,
                Target::Band(lo, hi) => return exact(lo <= a && a <= hi),
            };
            return exact(comparator.holds(a, t));
        }
        let Some(i) = interval else {
            return if actual.is_some() {
                Verdict::Inconclusive
            } else {
                Verdict::NoData
            };
        };
        // An interval that reaches its confidence, with real bounds (never judge a NaN).
        if !i.reaches_confidence() || i.low.is_nan() || i.high.is_nan() || i.low > i.high {
            return Verdict::Inconclusive;
        }
        match (target, comparator) {
            (Target::Band(lo, hi), _) => {
                if i.low >= lo && i.high <= hi {
                    Verdict::Met
                } else if i.low > hi || i.high < lo {
                    Verdict::NotMet
                } else {
                    Verdict::Inconclusive
                }
            }
            (Target::Limit(t), C::Eq) => {
                // An estimate cannot equal a value with confidence; the card rejects this for
                // comparisons, and a plain sampled `==` (e.g. a rate of 0) is read exactly.
                actual.map_or(Verdict::NoData, |a| exact(a == t))
            }
            (Target::Limit(t), C::Ge | C::Gt) => {
                if comparator.holds(i.low, t) {
                    Verdict::Met
                } else if !comparator.holds(i.high, t) {
                    Verdict::NotMet
                } else {
                    Verdict::Inconclusive
                }
            }
            (Target::Limit(t), C::Le | C::Lt) => {
                if comparator.holds(i.high, t) {
                    Verdict::Met
                } else if !comparator.holds(i.low, t) {
                    Verdict::NotMet
                } else {
                    Verdict::Inconclusive
                }
            }
        }
    }

    /// Lower-case words for reports: met, not met, inconclusive, no data.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::NotMet => "not met",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NoData => "no data",
        }
    }
}

/// One checklist item's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemResult {
    /// 1–10.
    pub number: u8,
    /// Title.
    pub title: String,
    /// ✅ / ⚠️ / ❌.
    pub status: Status,
    /// Why: what holds for ✅, what fails or is missing otherwise.
    pub reasons: Vec<String>,
    /// Remarks that did not decide the status (records not counted, unlocked criteria…).
    pub notes: Vec<String>,
    /// Paths of the evidence that decided it.
    pub evidence: Vec<String>,
}

/// An open item, from an `open-item` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OpenItem {
    /// Checklist item it belongs to.
    pub item: u8,
    /// What is missing.
    pub what: String,
    /// Owner as written.
    pub owner: Option<String>,
    /// Due date.
    pub due: Option<Date>,
    /// The record.
    pub source: String,
    /// Why it does not count (no owner, several owners, no due date); empty when it counts.
    pub problems: Vec<String>,
}

/// One row of the sign-off table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SignoffRow {
    /// Role title.
    pub role: String,
    /// The role, as `signoff.role` writes it.
    pub role_key: SignoffRole,
    /// Name from the card.
    pub name: String,
    /// E-mail from the card, a second principal the person may sign as.
    #[serde(default)]
    pub email: Option<String>,
    /// Date signed.
    pub date: Option<Date>,
    /// Whether a valid sign-off over this digest exists.
    pub signed: bool,
    /// SHA256 fingerprint of the SSH key that signed, when the signature verified.
    #[serde(default)]
    pub key_fingerprint: Option<String>,
    /// The armored SSHSIG that verified (kept so `promote` can verify it again).
    #[serde(default)]
    pub signature: Option<String>,
    /// Why not.
    pub note: Option<String>,
}

/// The decision with its dates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionOut {
    /// Cleared / Conditional / Blocked.
    pub outcome: Outcome,
    /// Why.
    pub reasons: Vec<String>,
    /// Target launch date from the card.
    pub target_launch: Date,
    /// Post-launch review date: target launch + the template's days (30).
    pub post_launch_review: Date,
    /// Last day open items may close: target launch + 14 days.
    pub open_items_due_by: Date,
}

/// An evidence record as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceSummary {
    /// Path.
    pub path: String,
    /// Kind.
    pub kind: EvidenceKind,
    /// Date.
    pub date: Date,
    /// Items supported.
    pub items: Vec<u8>,
    /// Recorded by.
    pub recorded_by: String,
    /// Summary.
    pub summary: String,
    /// Valid or why not.
    pub validity: Validity,
    /// A `metric` record's value and method (seed 001 item 1: "Criteria + actuals").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricDetails>,
    /// A drill's procedure, timing, in-flight handling and result (seed 001 item 9: "Drill
    /// date + procedure + result").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillDetails>,
    /// A rotation's credential and outcome (seed 001 item 5: "rotation dates + result").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationDetails>,
    /// A guardrail test's scenario and result (seed 001 item 4: "Test date + scenarios +
    /// results").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardrail_test: Option<GuardrailTestDetails>,
    /// An on-call acknowledgment with its comprehension answers (seed 001 item 7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledgment: Option<AcknowledgmentDetails>,
    /// A communication's channel, audience and schedule (seed 001 item 8: "Channels + content
    /// + schedule").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub communication: Option<CommunicationDetails>,
    /// An approval (risk acceptance or criteria re-approval).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalDetails>,
    /// An open item's owner and due date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_item: Option<OpenItemDetails>,
}

/// The card's operating facts that the checklist's evidence column cites (seed 001 blank
/// template: "Dashboard link + who watches when", "Primary + backup + pager schedule",
/// "Identity name + rotation dates", "Retention period + storage location", "Runbook link",
/// "Drill date + procedure + result").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatingFacts {
    /// Builder, CoE lead, sponsor, peer approver and on-call.
    pub people: People,
    /// Dashboards with their URL, watcher and cadence (item 2).
    pub dashboards: Vec<Dashboard>,
    /// Runtime guardrails the card declares (Agent Card §6, item 4).
    pub guardrails: Vec<Guardrail>,
    /// The agent's identity and credentials (item 5).
    pub identity: Identity,
    /// Audit-log stores with their retention in days, and regimes (Agent Card §11, item 6).
    pub audit_log: AuditLog,
    /// The retention the tier and regimes require, in days (item 6).
    pub retention_required_days: u32,
    /// Which rule sets that minimum, e.g. "sox: SOX §802 / SEC Rule 2-06 …".
    pub retention_required_by: String,
    /// The runbook path, relative to the agent folder (item 7).
    pub runbook: String,
    /// `sha256:` of the runbook file; `None` when it is missing.
    pub runbook_sha256: Option<String>,
    /// Kill switch, procedure, in-flight handling, triggers and decision authority (item 9).
    pub rollback: RollbackPlan,
    /// Pilot cohort, e.g. "AP accountants, EMEA".
    pub pilot_cohort: String,
    /// Users (or units) in the pilot cohort.
    pub pilot_cohort_size: u64,
}

/// One failing item of a Blocked review as open work (seed 001 decision matrix: "Blocked.
/// Return to pilot or fix items"; blank template "Open items (only if conditional or
/// blocked)": item, what's missing, owner, due date).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MustFix {
    /// Checklist item, 1–10.
    pub item: u8,
    /// Its title.
    pub title: String,
    /// ❌ or ⚠️.
    pub status: Status,
    /// What is wrong or missing: the item's reasons.
    pub what: Vec<String>,
    /// One named person who owns the fix, when the card (or an open-item record) names one.
    pub owner: Option<String>,
    /// Why that person: their role on the card, or the open-item record naming them.
    pub owner_basis: String,
    /// Due date, from an open-item record for the item; `None` when none gives one.
    pub due: Option<Date>,
}

/// One item of the template, as reviewed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateItemSummary {
    /// 1–10.
    pub number: u8,
    /// The rule that decided it.
    pub rule: Rule,
}

/// The template used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateSummary {
    /// Name.
    pub name: String,
    /// Version.
    pub version: u32,
    /// `builtin` or the file.
    pub source: String,
    /// Who relaxed the ⚠️ block on items 4/9, if anyone.
    pub relaxed_by: Option<String>,
    /// Which rule decided each item (a template may assign rules to items 1–9 in any order).
    pub items: Vec<TemplateItemSummary>,
    /// Days within which the rollback drill must fall before the review (item 9).
    pub drill_window_days: u32,
}

/// A whole review.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The agent.
    pub agent: AgentSummary,
    /// Review date.
    pub review_date: Date,
    /// Pilot window.
    pub pilot: PilotSummary,
    /// The review digest every sign-off must name.
    pub digest: String,
    /// What sign-offs sign: digest, outcome once signed, item statuses
    /// ([`crate::signing::signoff_statement`]).
    pub signoff_subject: crate::signing::SignoffSubject,
    /// Digest of the success criteria.
    pub criteria_digest: String,
    /// Template used.
    pub template: TemplateSummary,
    /// Success criteria with actuals.
    pub criteria: Vec<CriterionResult>,
    /// Items 1–10.
    pub items: Vec<ItemResult>,
    /// Sign-off table.
    pub signoffs: Vec<SignoffRow>,
    /// The allowed-signers file the sign-offs and approvals were checked against; `None`
    /// when there was none (then no signature counts).
    pub allowed_signers: Option<crate::signing::SignersFile>,
    /// The decision.
    pub decision: DecisionOut,
    /// Open items.
    pub open_items: Vec<OpenItem>,
    /// A Blocked review: every item not ✅ as open work with its owner (empty otherwise).
    pub must_fix: Vec<MustFix>,
    /// The card's operating facts the evidence column cites.
    pub operations: OperatingFacts,
    /// Readiness assessment.
    pub readiness: Readiness,
    /// Economics, when the card gives inputs.
    pub economics: Option<EconomicsResult>,
    /// Drift and data quality of the telemetry.
    pub data_quality: DataQuality,
    /// Evidence records.
    pub evidence: Vec<EvidenceSummary>,
    /// Inputs with digests.
    pub inputs: Vec<InputDigest>,
}

impl Review {
    /// The item numbered `n`.
    pub fn item(&self, n: u8) -> Option<&ItemResult> {
        self.items.iter().find(|i| i.number == n)
    }
}

/// Reads the open-item records, checking each has one named owner and a due date.
pub fn open_items(evidence: &[Evidence]) -> Vec<OpenItem> {
    let mut out = Vec::new();
    for e in evidence.iter().filter(|e| e.is_valid()) {
        let Some(o) = &e.record.open_item else {
            continue;
        };
        let mut problems = Vec::new();
        match o.owner.as_deref() {
            None => problems.push("no owner".to_owned()),
            Some(w) => {
                if let Err(why) = check_named_person(w) {
                    problems.push(format!("owner \"{w}\" {why}"));
                }
            }
        }
        if o.due.is_none() {
            problems.push("no due date".into());
        }
        for &item in &e.record.items {
            out.push(OpenItem {
                item,
                what: o.what.clone(),
                owner: o.owner.clone(),
                due: o.due,
                source: e.path.clone(),
                problems: problems.clone(),
            });
        }
    }
    out.sort_by(|a, b| (a.item, &a.source).cmp(&(b.item, &b.source)));
    out
}

/// Runs the review.
pub fn review(input: &ReviewInput<'_>) -> Review {
    let card = input.card;
    let t = input.template;
    let as_of = input.as_of;
    let dated: Vec<Evidence> = input
        .evidence
        .iter()
        .cloned()
        .map(|mut e| {
            if e.is_valid() && e.record.date > as_of {
                e.validity = Validity::Invalid(format!(
                    "dated {}, after the review date {as_of}",
                    e.record.date
                ));
            }
            e
        })
        .collect();
    let ev: &[Evidence] = &dated;
    let digest = crate::digest::review_digest(&input.inputs);
    let criteria_digest = crate::digest::criteria_digest(&card.success_criteria);
    let opens = open_items(ev);
    let mut criteria = Vec::new();
    let mut results = Vec::new();
    let mut signoff_item: Option<(u8, String)> = None;
    for it in &t.items {
        let mine: Vec<OpenItem> = opens
            .iter()
            .filter(|o| o.item == it.number)
            .cloned()
            .collect();
        let findings: Findings = match it.rule {
            Rule::SuccessCriteria => {
                let (f, c) = items::item1_success_criteria(
                    card,
                    ev,
                    input.measurements,
                    &input.telemetry_files,
                    input.criteria_lock.as_ref(),
                    &criteria_digest,
                    input.allowed_signers,
                    input.telemetry_rows,
                );
                criteria = c;
                f
            }
            Rule::Dashboards => items::item2_dashboards(card, ev),
            Rule::OnCall => items::item3_on_call(card, ev),
            Rule::Guardrails => items::item4_guardrails(card, ev),
            Rule::IdentityRotation => items::item5_identity_rotation(card, ev),
            Rule::AuditRetention => items::item6_audit_retention(card, t, ev),
            Rule::Runbook => items::item7_runbook(card, ev, input.runbook_sha256.as_deref()),
            Rule::Communication => items::item8_communication(ev),
            Rule::RollbackDrill => items::item9_rollback_drill(card, t, ev, input.as_of),
            Rule::Signoff => {
                // Judged once the outcome it signs is known (below).
                signoff_item = Some((it.number, it.title.clone()));
                continue;
            }
        };
        let mut result = findings.finish(it.number, &it.title, &mine, true);
        if it.rule == Rule::SuccessCriteria {
            if as_of < card.pilot.end {
                result.notes.push(format!(
                    "reviewed on {as_of}, before the pilot ends on {}: telemetry after {as_of} is not counted",
                    card.pilot.end
                ));
            }
            for flag in &input.data_quality.flags {
                result.notes.push(format!("data quality: {flag}"));
            }
        }
        results.push(result);
    }
    let mut opens = opens;
    let has_owned_item1 = opens.iter().any(|o| o.item == 1 && o.problems.is_empty());
    if !has_owned_item1 {
        for c in criteria
            .iter()
            .filter(|c| c.verdict == Verdict::Inconclusive)
        {
            opens.push(OpenItem {
                item: 1,
                what: format!(
                    "Decide `{}`{}: {}",
                    c.id,
                    c.interval
                        .map(|i| format!(
                            " ({} interval {})",
                            c.interval_method.as_deref().unwrap_or("confidence"),
                            items::fmt_interval(&i)
                        ))
                        .unwrap_or_default(),
                    items::undecided_reason(
                        c.interval.as_ref(),
                        c.more_events,
                        c.note.as_deref(),
                        c.comparison
                            .as_ref()
                            .and_then(|k| k.unit.as_ref())
                            .map(|u| u.role.as_str())
                    )
                ),
                owner: None,
                due: None,
                source: "auto-drafted by stagegate".into(),
                problems: vec![
                    "owner still required: record an open-item for item 1 naming one owner and a due date".into(),
                ],
            });
        }
    }
    let mut statuses = [Status::Fail; 9];
    for r in &results {
        if (1..=9).contains(&r.number) {
            statuses[usize::from(r.number) - 1] = r.status;
        }
    }
    let facts: Vec<OpenItemFacts> = opens
        .iter()
        .filter(|o| o.item <= 9 && statuses[usize::from(o.item) - 1] == Status::Open)
        .map(|o| OpenItemFacts {
            item: o.item,
            owner: if o.problems.iter().any(|p| p.contains("owner")) {
                None
            } else {
                o.owner.clone()
            },
            due: o.due,
        })
        .collect();
    let (accepted, acceptance_notes) =
        sponsor_accepted(card, ev, input.as_of, input.allowed_signers);
    let matrix = |signed_off: bool| {
        decision::decide(&MatrixInput {
            statuses,
            open_items: &facts,
            sponsor_accepted: &accepted,
            target_launch: card.launch.target_date,
            signed_off,
            policy: &t.decision,
        })
    };
    let signoff_subject = crate::signing::SignoffSubject {
        agent: card.id.clone(),
        version: card.version.clone(),
        review_digest: digest.clone(),
        criteria_digest: criteria_digest.clone(),
        decision_when_signed: matrix(true).outcome,
        items: statuses.to_vec(),
    };
    let mut signoffs = Vec::new();
    if let Some((number, title)) = signoff_item {
        let (f, rows) = items::item10_signoff(
            card,
            ev,
            &signoff_subject,
            input.as_of,
            input.allowed_signers,
        );
        signoffs = rows;
        let mine: Vec<OpenItem> = opens.iter().filter(|o| o.item == number).cloned().collect();
        let result = f.finish(number, &title, &mine, false);
        let at = results
            .iter()
            .position(|r| r.number > number)
            .unwrap_or(results.len());
        results.insert(at, result);
    }
    let signed_off = results
        .iter()
        .any(|r| r.number == 10 && r.status == Status::Pass);
    let mut verdict = matrix(signed_off);
    verdict.reasons.extend(acceptance_notes);
    let target = card.launch.target_date;
    let decision = DecisionOut {
        outcome: verdict.outcome,
        reasons: verdict.reasons,
        target_launch: target,
        post_launch_review: target
            .checked_add(i64::from(t.post_launch_review_days).days())
            .unwrap_or(target),
        open_items_due_by: items::open_item_deadline(
            target,
            t.decision.open_item_due_days_after_launch,
        ),
    };
    let readiness = readiness::assess(t, &results, ev, &opens);
    let economics = card
        .economics
        .as_ref()
        .map(|e| economics::compute(e, &criteria));
    let mut decision = decision;
    if let Some(loss) = economics.as_ref().and_then(|e| e.loss.clone()) {
        decision.reasons.push(loss);
    }
    let must_fix = if decision.outcome == Outcome::Blocked {
        must_fix(
            card,
            t,
            &results,
            &opens,
            ev,
            input.runbook_sha256.is_some(),
        )
    } else {
        Vec::new()
    };
    let retention = t.retention_minimum(card.tier, &card.audit_log.regimes);
    let operations = OperatingFacts {
        people: card.people.clone(),
        dashboards: card.monitoring.dashboards.clone(),
        guardrails: card.guardrails.clone(),
        identity: card.identity.clone(),
        audit_log: card.audit_log.clone(),
        retention_required_days: retention.days,
        retention_required_by: retention.source,
        runbook: card.runbook.clone(),
        runbook_sha256: input.runbook_sha256.clone(),
        rollback: card.rollback.clone(),
        pilot_cohort: card.pilot.cohort.clone(),
        pilot_cohort_size: card.pilot.cohort_size,
    };
    let mut evidence: Vec<EvidenceSummary> = input
        .evidence
        .iter()
        .map(|e| EvidenceSummary {
            path: e.path.clone(),
            kind: e.record.kind,
            date: e.record.date,
            items: e.record.items.clone(),
            recorded_by: e.record.recorded_by.clone(),
            summary: e.record.summary.clone(),
            validity: e.validity.clone(),
            metric: e.record.metric.clone(),
            drill: e.record.drill.clone(),
            rotation: e.record.rotation.clone(),
            guardrail_test: e.record.guardrail_test.clone(),
            acknowledgment: e.record.acknowledgment.clone(),
            communication: e.record.communication.clone(),
            approval: e.record.approval.clone(),
            open_item: e.record.open_item.clone(),
        })
        .collect();
    evidence.sort_by(|a, b| a.path.cmp(&b.path));
    let mut inputs = input.inputs.clone();
    inputs.sort();
    inputs.dedup();
    Review {
        schema_version: SCHEMA_VERSION,
        agent: AgentSummary {
            id: card.id.clone(),
            name: card.name.clone(),
            version: card.version.clone(),
            tier: card.tier,
            lane: card.lane,
            department: card.department.clone(),
        },
        review_date: input.as_of,
        pilot: PilotSummary {
            start: card.pilot.start,
            end: card.pilot.end,
            days: i64::from((card.pilot.end - card.pilot.start).get_days()) + 1,
            telemetry_rows: input.telemetry_rows,
        },
        digest,
        signoff_subject,
        criteria_digest,
        template: TemplateSummary {
            name: t.name.clone(),
            version: t.version,
            source: input.template_source.clone(),
            relaxed_by: t.decision.relaxed_by.clone(),
            items: t
                .items
                .iter()
                .map(|i| TemplateItemSummary {
                    number: i.number,
                    rule: i.rule,
                })
                .collect(),
            drill_window_days: t.drill_window_days,
        },
        criteria,
        items: results,
        signoffs,
        allowed_signers: input.allowed_signers_file.clone(),
        decision,
        open_items: opens,
        must_fix,
        operations,
        readiness,
        economics,
        data_quality: input.data_quality.clone(),
        evidence,
        inputs,
    }
}

/// Items the sponsor's risk acceptance covers: valid `approval` records with subject
/// `risk_acceptance`, dated on or before the review, signed by the card's sponsor over
/// [`crate::signing::risk_acceptance_statement`] (with the open-item records of the review's
/// evidence for the accepted items). Returns the items and, for every record
/// that does not count, why (seed 001 decision matrix: "explicit risk acceptance from
/// sponsor").
fn sponsor_accepted(
    card: &AgentCard,
    evidence: &[Evidence],
    as_of: Date,
    allowed: Option<&crate::signing::AllowedSigners>,
) -> (BTreeSet<u8>, Vec<String>) {
    let mut items = BTreeSet::new();
    let mut notes = Vec::new();
    let recorded_opens = open_items(evidence);
    for e in evidence
        .iter()
        .filter(|e| e.is_valid() && e.record.date <= as_of)
    {
        let Some(a) = e.record.approval.as_ref() else {
            continue;
        };
        if a.subject != ApprovalSubject::RiskAcceptance {
            continue;
        }
        let checked = crate::signing::risk_acceptor(card, &a.by).and_then(|p| {
            let statement = crate::signing::risk_acceptance_statement(
                &card.id,
                &card.version,
                &a.items,
                &recorded_opens,
                &p.name,
                e.record.date,
            );
            crate::signing::check(
                allowed,
                p,
                &statement,
                e.record.signature.as_deref(),
                e.record.date,
            )
        });
        match checked {
            Ok(_) => items.extend(a.items.iter().copied()),
            Err(why) => notes.push(format!(
                "risk acceptance {} by {} does not count: {why}",
                e.path, a.by
            )),
        }
    }
    (items, notes)
}

/// The failing items of a Blocked review as open work, each with one owner where the card
/// names one (seed 001: "Agent Builder assembles evidence per item. CoE Lead reviews + signs";
/// decision matrix: "Blocked. Return to pilot or fix items"). Every item not ✅ is listed, in
/// item order. An open-item record for the item that names one owner and a due date wins;
/// otherwise the owner follows the item's rule (see [`fix_owner`]).
pub fn must_fix(
    card: &AgentCard,
    template: &GateTemplate,
    results: &[ItemResult],
    open_items: &[OpenItem],
    evidence: &[Evidence],
    runbook_found: bool,
) -> Vec<MustFix> {
    results
        .iter()
        .filter(|r| r.status != Status::Pass)
        .map(|r| {
            let recorded = open_items
                .iter()
                .find(|o| o.item == r.number && o.problems.is_empty());
            let (owner, owner_basis, due) = match recorded {
                Some(o) => (
                    o.owner.clone(),
                    format!("owner of the open item in {}", o.source),
                    o.due,
                ),
                None => {
                    let rule = template.item(r.number).map(|i| i.rule);
                    let (who, why) = fix_owner(card, rule, r.number, evidence, runbook_found);
                    (who, why, None)
                }
            };
            MustFix {
                item: r.number,
                title: r.title.clone(),
                status: r.status,
                what: r.reasons.clone(),
                owner,
                owner_basis,
                due,
            }
        })
        .collect()
}

/// Who should fix item `n` (decided by `rule`) when no open-item record names anyone, and
/// why: one named person from the card (or from the records for the item), never a team.
/// Returns `None` as owner when the candidate is not a named person.
fn fix_owner(
    card: &AgentCard,
    rule: Option<Rule>,
    n: u8,
    evidence: &[Evidence],
    runbook_found: bool,
) -> (Option<String>, String) {
    let people = &card.people;
    let named = |name: &str| check_named_person(name).is_ok();
    let builder = || {
        (
            named(&people.builder.name).then(|| people.builder.name.clone()),
            "agent builder: assembles the evidence for items 1–9 (seed 001 \"Who fills it\")"
                .to_owned(),
        )
    };
    // The latest record for the item (valid or not) shows who has done this work before.
    let last_recorder = || {
        evidence
            .iter()
            .filter(|e| e.supports(n))
            .filter(|e| {
                !matches!(
                    e.record.kind,
                    EvidenceKind::OpenItem | EvidenceKind::Approval | EvidenceKind::Signoff
                )
            })
            .max_by_key(|e| (e.record.date, e.path.clone()))
            .filter(|e| named(&e.record.recorded_by))
            .map(|e| (e.record.recorded_by.clone(), e.path.clone()))
    };
    let primary = &people.on_call.primary.name;
    match rule {
        // On-call (item 3): the named on-call primary keeps the schedule, pager and weekend
        // cover in order; when the primary is a team ("the team is on call, i.e. no one") the
        // builder must get a person named.
        Some(Rule::OnCall) if named(primary) => (
            Some(primary.clone()),
            "on-call primary: owns the pager schedule and weekend cover".into(),
        ),
        // Runbook (item 7): a missing runbook is the builder's to write; a missing or failed
        // comprehension check is the on-call primary's to pass (seed 001 "the named on-call
        // has read it").
        Some(Rule::Runbook) if runbook_found && named(primary) => (
            Some(primary.clone()),
            "on-call primary: must read the runbook and pass the comprehension check".into(),
        ),
        // Audit retention (item 6): whoever verified retention last (the platform team's named
        // person in the worked example) configures it; communication (item 8): whoever drafted
        // the messages (the finance champion in the worked example); else the builder.
        Some(r @ (Rule::AuditRetention | Rule::Communication)) => match last_recorder() {
            Some((who, path)) => (
                Some(who),
                format!(
                    "recorded the item's last evidence ({path}){}",
                    if r == Rule::AuditRetention {
                        ": configures and verifies retention"
                    } else {
                        ": drafts and schedules the communication"
                    }
                ),
            ),
            None => builder(),
        },
        // Rollback drill (item 9): the on-call primary runs the kill switch at 2 am, so the
        // drill proves they can; when the primary is not a person, the builder.
        Some(Rule::RollbackDrill) if named(primary) => (
            Some(primary.clone()),
            "on-call primary: executes the rollback, so runs the drill".into(),
        ),
        // Sign-off (item 10): the CoE lead signs (seed 001 "CoE Lead reviews + signs").
        Some(Rule::Signoff) => (
            named(&people.coe_lead.name).then(|| people.coe_lead.name.clone()),
            "AI CoE lead: reviews items 1–9 and signs".into(),
        ),
        // Success criteria, dashboards, guardrails, identity (items 1, 2, 4, 5) and every
        // fallback: the builder.
        _ => builder(),
    }
}
