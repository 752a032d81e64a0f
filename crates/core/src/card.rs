//! The agent card: one agent's identity, people, pilot, success criteria, guardrails and
//! operating facts, as written in `agent.yaml` in the agent's folder.
//!
//! Every struct denies unknown fields, so a typo is an error, not a silently ignored key.
//! `stagegate schema` prints the JSON Schema generated from these types.
//!
//! Sources: seed 001 (Template 07, the Pilot-to-Prod checklist; "Agent Card §6 guardrails,
//! §11 retention, §12 success criteria"), seed 000 (`scaling_plan` inputs), the issue "main
//! job" §2.

use crate::metric::MetricSpec;
use jiff::civil::Date;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Risk tier. Sets minimums such as audit-log retention (see [`crate::gates::GateTemplate`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Low risk.
    Low,
    /// Medium risk.
    Medium,
    /// High risk.
    High,
}

impl Tier {
    /// Lower-case name as written in the card.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Low => "low",
            Tier::Medium => "medium",
            Tier::High => "high",
        }
    }
}

/// Delivery lane (seed 003: "Target lane selected (Startup/Scale/Regulated)").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Startup lane: lightest process.
    Startup,
    /// Scale lane.
    Scale,
    /// Regulated lane: sector regulation applies.
    Regulated,
}

impl Lane {
    /// Lower-case name as written in the card.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Startup => "startup",
            Lane::Scale => "scale",
            Lane::Regulated => "regulated",
        }
    }
}

/// A named person. Teams, channels and aliases are not persons: see [`crate::person`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// Full name, e.g. "Mike Chen".
    pub name: String,
    /// Optional contact address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The paging system and schedules on-call is reached through (seed 001 item 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pager {
    /// The company's paging system, e.g. "PagerDuty", "Opsgenie".
    pub system: String,
    /// Schedule paging the primary, e.g. "finance-ai-primary".
    pub primary_schedule: String,
    /// Schedule paging the backup.
    pub backup_schedule: String,
}

/// On-call: primary and backup, both named persons, and the pager (seed 001 item 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OnCall {
    /// Primary on-call.
    pub primary: Person,
    /// Backup on-call.
    pub backup: Person,
    /// Pager system and schedules.
    pub pager: Pager,
    /// How weekends are covered ("Weekend coverage defined", seed 001 item 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekend_coverage: Option<String>,
}

/// The people around the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct People {
    /// Agent builder: assembles the evidence (seed 001).
    pub builder: Person,
    /// AI CoE lead: reviews and signs (seed 001 item 10).
    pub coe_lead: Person,
    /// Executive sponsor: accepts risk for a conditional launch (seed 001 decision matrix).
    pub sponsor: Person,
    /// Peer approver from the M8 approvers; must sign when the CoE lead is also the builder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_approver: Option<Person>,
    /// On-call primary, backup and pager.
    pub on_call: OnCall,
}

/// The pilot: window, scope and cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pilot {
    /// First day of the pilot (inclusive, UTC).
    #[serde(deserialize_with = "crate::ymd::date")]
    pub start: Date,
    /// Last day of the pilot (inclusive, UTC).
    #[serde(deserialize_with = "crate::ymd::date")]
    pub end: Date,
    /// What the pilot covered.
    pub scope: String,
    /// Who took part, e.g. "AP accountants, EMEA".
    pub cohort: String,
    /// Number of users (or units) in the cohort; the denominator of adoption.
    pub cohort_size: u64,
    /// Share of total volume the pilot handled, in % (0–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_of_volume_pct: Option<f64>,
}

/// How a measured value is compared to its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Comparator {
    /// Actual `>=` threshold.
    #[serde(rename = ">=")]
    Ge,
    /// Actual `>` threshold.
    #[serde(rename = ">")]
    Gt,
    /// Actual `<=` threshold.
    #[serde(rename = "<=")]
    Le,
    /// Actual `<` threshold.
    #[serde(rename = "<")]
    Lt,
    /// Actual `==` threshold (exact; use for counts such as "zero Sev-1").
    #[serde(rename = "==")]
    Eq,
}

impl Comparator {
    /// The operator as written, e.g. `>=`.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparator::Ge => ">=",
            Comparator::Gt => ">",
            Comparator::Le => "<=",
            Comparator::Lt => "<",
            Comparator::Eq => "==",
        }
    }

    /// The comparator written as `symbol`, e.g. `<=`.
    pub fn from_symbol(symbol: &str) -> Option<Comparator> {
        [
            Comparator::Ge,
            Comparator::Gt,
            Comparator::Le,
            Comparator::Lt,
            Comparator::Eq,
        ]
        .into_iter()
        .find(|c| c.symbol() == symbol)
    }

    /// Whether `actual` satisfies `actual <op> threshold`. NaN never satisfies.
    pub fn holds(self, actual: f64, threshold: f64) -> bool {
        match self {
            Comparator::Ge => actual >= threshold,
            Comparator::Gt => actual > threshold,
            Comparator::Le => actual <= threshold,
            Comparator::Lt => actual < threshold,
            Comparator::Eq => actual == threshold,
        }
    }
}

/// Where a criterion's actual value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CriterionSource {
    /// Computed from the pilot telemetry with `metric`.
    #[default]
    Telemetry,
    /// Taken from a `metric` evidence record naming this criterion (e.g. a time study).
    Evidence,
}

/// A success criterion set before the pilot (seed 001 item 1: "pre-set criteria from Agent
/// Card §12").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// Stable identifier, e.g. `acceptance_rate`.
    pub id: String,
    /// What it means in words.
    pub description: String,
    /// Telemetry (default) or an evidence record.
    #[serde(default)]
    pub source: CriterionSource,
    /// The metric, required when `source` is telemetry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricSpec>,
    /// How the actual is compared.
    pub comparator: Comparator,
    /// The threshold, in `unit`.
    pub threshold: f64,
    /// Unit of the value, e.g. "ratio", "ms", "count", "USD", "min/week".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The value before the agent, in `unit`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// Target once scaled, in `unit`, for the scaling plan's success metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_at_scale: Option<f64>,
    /// Leading (usage, adoption, confidence) or lagging (value, satisfaction) indicator; the
    /// report groups the weekly series by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator: Option<Indicator>,
    /// Judge the metric relative to a baseline period or a control cohort instead of on its
    /// own; the threshold then applies to the effect (pilot − reference, or its relative
    /// change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<Compare>,
    /// Fewest telemetry rows in the pilot window before this criterion is judged; fewer is
    /// "no data", never met (default: `statistics.minimum_sample`, else 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_sample: Option<u64>,
}

/// Leading or lagging indicator (seed 004 "Pilots need decision-quality results").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    /// Moves first: usage, adoption, confidence.
    Leading,
    /// Moves later: value, satisfaction.
    Lagging,
}

/// What a relative criterion compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Against {
    /// Rows of the same telemetry inside `baseline` (a period before the pilot).
    Baseline,
    /// Rows of the pilot window whose `cohort` is `control_cohort`.
    Control,
}

/// How the effect is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EffectScale {
    /// pilot − reference, in the metric's unit.
    #[default]
    Absolute,
    /// (pilot − reference) ÷ reference, a fraction (−0.10 = 10% lower).
    Relative,
}

/// The test behind a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestKind {
    /// Two-proportion z test (rates).
    TwoProportions,
    /// Welch's t test (means).
    Welch,
    /// Mann-Whitney U with the Hodges-Lehmann shift: a shift of the whole distribution
    /// (latency-like, skewed metrics), not of one quantile.
    MannWhitney,
    /// The difference (or ratio) of the criterion's quantile between the sides, with a
    /// distribution-free interval (default for quantile metrics).
    QuantileDifference,
}

/// A date window, both ends inclusive (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// First day.
    #[serde(deserialize_with = "crate::ymd::date")]
    pub start: Date,
    /// Last day.
    #[serde(deserialize_with = "crate::ymd::date")]
    pub end: Date,
}

/// A relative criterion's reference (issue "decision quality" §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Compare {
    /// Baseline period or control cohort.
    pub against: Against,
    /// The baseline period (against: baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Window>,
    /// The control cohort's value of the `cohort` role (against: control).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_cohort: Option<String>,
    /// The pilot cohort's value of `cohort`; every non-control row when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pilot_cohort: Option<String>,
    /// Share (0–1) of units assigned to the pilot cohort when cohorts were assigned by
    /// percentage; enables the sample-ratio-mismatch check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_pilot_share: Option<f64>,
    /// Absolute (default) or relative effect.
    #[serde(default)]
    pub effect: EffectScale,
    /// The test; by default two-proportion for rates, Welch for means, the quantile difference
    /// for quantiles (`mann_whitney` compares whole distributions by their shift instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestKind>,
    /// What the criterion claims: superiority (default; the whole two-sided interval at the
    /// card's confidence clears the threshold), non-inferiority or equivalence (one-sided at
    /// the card's confidence, with `margin`).
    #[serde(default, skip_serializing_if = "Hypothesis::is_superiority")]
    pub hypothesis: Hypothesis,
    /// The margin of a non-inferiority or equivalence claim, in the effect's unit (> 0):
    /// non-inferiority tolerates an effect up to `margin` on the wrong side of the threshold
    /// (the comparator gives the direction: `<=` "not higher than … by more than margin");
    /// equivalence needs the effect within `threshold ± margin` (comparator `==`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
    /// The unit of analysis: a text role (`user`, or another `*_id` role) naming the unit that
    /// was assigned or that produces many events (a human agent handling many calls). The
    /// metric is then compared over per-unit aggregates (delta method), not as if every event
    /// were independent. Rates and means only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// With `against: control` and `unit`: use each unit's value in the `baseline` window (a
    /// period before the pilot) as a covariate (CUPED; Deng, Xu, Kohavi & Walker 2013),
    /// narrowing the interval by what the units' earlier level explains.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cuped: bool,
}

/// What a compared criterion claims (issue "verdicts that hold at any size" §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Hypothesis {
    /// The effect clears the threshold: met when the whole two-sided interval at the card's
    /// confidence does.
    #[default]
    Superiority,
    /// The effect is not worse than the threshold by more than `margin`: met when the
    /// one-sided bound at the card's confidence (the two-sided interval at 1 − 2α) clears
    /// threshold ± margin; not met when the other bound is beyond it.
    NonInferiority,
    /// The effect lies within `threshold ± margin`: two one-sided tests at the card's
    /// confidence (Schuirmann 1987), i.e. the two-sided interval at 1 − 2α inside the band;
    /// not met when it lies entirely outside.
    Equivalence,
}

impl Hypothesis {
    /// Whether this is the default.
    pub fn is_superiority(&self) -> bool {
        *self == Hypothesis::Superiority
    }

    /// snake_case name, as written in the card.
    pub fn name(self) -> &'static str {
        match self {
            Hypothesis::Superiority => "superiority",
            Hypothesis::NonInferiority => "non_inferiority",
            Hypothesis::Equivalence => "equivalence",
        }
    }
}

/// The hypothesis, margin and comparator of one compared criterion fit together.
fn validate_hypothesis(c: &Criterion, cmp: &Compare, at: &str) -> Result<(), (String, String)> {
    let here = |f: &str| format!("{at}.{f}");
    match (cmp.hypothesis, cmp.margin) {
        (Hypothesis::Superiority, Some(_)) => {
            return Err((
                here("margin"),
                "a margin belongs to `hypothesis: non_inferiority` or `equivalence`".into(),
            ));
        }
        (Hypothesis::Superiority, None) if c.comparator == Comparator::Eq => {
            return Err((
                at.replace(".compare", ".comparator"),
                "`==` cannot be judged on an estimated effect; state `hypothesis: equivalence` with a `margin`".into(),
            ));
        }
        (Hypothesis::NonInferiority | Hypothesis::Equivalence, None) => {
            return Err((
                here("margin"),
                format!(
                    "`hypothesis: {}` needs a `margin` (> 0, in the effect's unit)",
                    cmp.hypothesis.name()
                ),
            ));
        }
        (_, Some(m)) if !(m.is_finite() && m > 0.0) => {
            return Err((here("margin"), format!("{m} is not a positive margin")));
        }
        _ => {}
    }
    match (cmp.hypothesis, c.comparator) {
        (Hypothesis::Equivalence, cmp_op) if cmp_op != Comparator::Eq => Err((
            at.replace(".compare", ".comparator"),
            format!(
                "equivalence needs `comparator: \"==\"` (the effect within threshold ± margin), not `{}`",
                cmp_op.symbol()
            ),
        )),
        (Hypothesis::NonInferiority, Comparator::Eq) => Err((
            at.replace(".compare", ".comparator"),
            "non-inferiority needs a direction: `<=` (not higher than the threshold by more than the margin) or `>=`".into(),
        )),
        _ => Ok(()),
    }
}

/// The unit of analysis and CUPED settings of one compared criterion fit the card.
fn validate_unit(
    m: &MetricSpec,
    cmp: &Compare,
    at: &str,
    roles: &[&str],
    pilot_start: Date,
) -> Result<(), (String, String)> {
    let here = |f: &str| format!("{at}.{f}");
    if let Some(u) = &cmp.unit {
        if !(u == "user" || u.ends_with("_id")) {
            return Err((
                here("unit"),
                format!("`{u}` is not an id role: use `user` or a role ending in `_id`"),
            ));
        }
        if !roles.contains(&u.as_str()) {
            return Err((
                here("unit"),
                format!("`{u}` is not mapped in telemetry.columns"),
            ));
        }
        if !matches!(
            cmp.test_for(m.kind),
            Some(TestKind::TwoProportions | TestKind::Welch)
        ) {
            return Err((
                here("unit"),
                "per-unit comparisons take rates and means (two_proportions, welch); a rank test has no per-unit form".into(),
            ));
        }
    }
    if cmp.cuped {
        if cmp.against != Against::Control {
            return Err((
                here("cuped"),
                "CUPED adjusts a control-cohort comparison (`against: control`); a baseline comparison already pairs each unit with its own earlier level".into(),
            ));
        }
        if cmp.unit.is_none() {
            return Err((
                here("cuped"),
                "CUPED needs `unit`: each unit's earlier value is its covariate".into(),
            ));
        }
        match &cmp.baseline {
            None => {
                return Err((
                    here("cuped"),
                    "CUPED needs `baseline: {start, end}`, the period before the pilot whose per-unit values are the covariate".into(),
                ));
            }
            Some(w) if w.end < w.start || w.end >= pilot_start => {
                return Err((
                    here("baseline"),
                    format!(
                        "{}..{} must end before the pilot starts ({pilot_start})",
                        w.start, w.end
                    ),
                ));
            }
            Some(_) => {}
        }
    } else if cmp.against == Against::Control && cmp.baseline.is_some() {
        return Err((
            here("baseline"),
            "with `against: control` a baseline window is CUPED's covariate period: add `cuped: true` (and `unit`) or remove it".into(),
        ));
    }
    Ok(())
}

/// The values a quantity can take, `low..=high` (either end open), and why: a criterion's
/// threshold, baseline and target outside it could never be met or missed as written (a rate
/// of −0.5, a "ratio" of 90), so card validation refuses them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValueRange {
    /// Smallest possible value, when bounded.
    pub low: Option<f64>,
    /// Largest possible value, when bounded.
    pub high: Option<f64>,
    /// Why, in words: "a rate is a share between 0 and 1".
    pub why: &'static str,
}

impl ValueRange {
    const fn new(low: Option<f64>, high: Option<f64>, why: &'static str) -> Self {
        Self { low, high, why }
    }

    /// Whether `v` is a possible value (NaN never is).
    pub fn contains(&self, v: f64) -> bool {
        !v.is_nan() && self.low.is_none_or(|l| v >= l) && self.high.is_none_or(|h| v <= h)
    }

    /// The range and its reason, e.g. "must lie between 0 and 1 — a rate is the share of…".
    pub fn describe(&self) -> String {
        let bounds = match (self.low, self.high) {
            (Some(l), Some(h)) => format!("must lie between {l} and {h}"),
            (Some(l), None) => format!("must be at least {l}"),
            (None, Some(h)) => format!("must be at most {h}"),
            (None, None) => "can be any number".to_owned(),
        };
        format!("{bounds} — {}", self.why)
    }

    /// Both ranges at once; the reason of the one that sets the tighter bounds.
    fn and(self, other: ValueRange) -> ValueRange {
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        let min = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        let low = max(self.low, other.low);
        let high = min(self.high, other.high);
        let why = if (low, high) == (self.low, self.high) {
            self.why
        } else {
            other.why
        };
        ValueRange::new(low, high, why)
    }
}

/// What a metric kind's value can be: rates and adoption are shares (0–1), counts and distinct
/// counts are never negative; sums, means, quantiles and ratios of sums follow their field,
/// which may be signed.
fn kind_range(kind: crate::metric::MetricKind) -> Option<ValueRange> {
    use crate::metric::MetricKind as K;
    match kind {
        K::Rate => Some(ValueRange::new(
            Some(0.0),
            Some(1.0),
            "a rate is the share of rows for which its predicate holds (write 0.9 for 90%)",
        )),
        K::Adoption => Some(ValueRange::new(
            Some(0.0),
            Some(1.0),
            "adoption is the share of the cohort that used the agent (write 0.8 for 80%)",
        )),
        K::Count | K::Distinct => Some(ValueRange::new(
            Some(0.0),
            None,
            "a count is never negative",
        )),
        K::Sum | K::Mean | K::Quantile | K::Ratio => None,
    }
}

/// Units of time: a value measured in one (a latency, a handle time) is never negative.
const DURATION_UNITS: &[&str] = &[
    "ms", "s", "sec", "seconds", "min", "minutes", "h", "hours", "d", "days", "weeks",
];

/// What a value's `unit` allows: `ratio` (and `fraction`, `share`) 0–1, `%` (`percent`) 0–100,
/// `count` and durations (`ms`, `s`, `min`, `h`, `d`…) not negative. Other units (money,
/// points, anything per period) say nothing about the range.
pub fn unit_range(unit: &str) -> Option<ValueRange> {
    match unit.trim() {
        "ratio" | "fraction" | "share" => Some(ValueRange::new(
            Some(0.0),
            Some(1.0),
            "a `ratio` is a fraction between 0 and 1 (write 0.9 for 90%)",
        )),
        "%" | "percent" => Some(ValueRange::new(
            Some(0.0),
            Some(100.0),
            "a percentage lies between 0 and 100",
        )),
        "count" => Some(ValueRange::new(
            Some(0.0),
            None,
            "a count is never negative",
        )),
        u if DURATION_UNITS.contains(&u) => Some(ValueRange::new(
            Some(0.0),
            None,
            "a duration is never negative",
        )),
        _ => None,
    }
}

impl Criterion {
    /// What the criterion's measured value can be: the range its metric kind allows (a rate
    /// 0–1, a count ≥ 0) together with the range its `unit` allows ([`unit_range`]). `None`
    /// when neither bounds it. A compared criterion's threshold is an effect instead: see
    /// [`Criterion::threshold_range`].
    pub fn value_range(&self) -> Option<ValueRange> {
        let by_kind = self.metric.as_ref().and_then(|m| kind_range(m.kind));
        let by_unit = self.unit.as_deref().and_then(unit_range);
        match (by_kind, by_unit) {
            (Some(k), Some(u)) => Some(k.and(u)),
            (k, u) => k.or(u),
        }
    }

    /// What the threshold can be. Without `compare`, the [`Criterion::value_range`]. With it,
    /// the threshold applies to the effect: an absolute effect (pilot − reference) of a
    /// quantity bounded to `low..=high` lies in `low − high ..= high − low` (a difference of two
    /// rates in −1..1); a relative effect ((pilot − reference) ÷ reference, reference > 0) of a
    /// quantity never negative is at least −1, and `unit` then names the effect's unit (a
    /// `ratio`), not the metric's, so only the metric kind bounds it. `None` when unbounded.
    pub fn threshold_range(&self) -> Option<ValueRange> {
        let Some(cmp) = &self.compare else {
            return self.value_range();
        };
        match cmp.effect {
            EffectScale::Absolute => {
                let r = self.value_range()?;
                let (l, h) = (r.low?, r.high?);
                Some(ValueRange::new(
                    Some(l - h),
                    Some(h - l),
                    "a difference of two values that each lie in a bounded range (a difference of two rates lies between −1 and 1)",
                ))
            }
            EffectScale::Relative => {
                let r = self.metric.as_ref().and_then(|m| kind_range(m.kind))?;
                (r.low? >= 0.0).then_some(ValueRange::new(
                    Some(-1.0),
                    None,
                    "a relative change of a quantity that is never negative is at least −1 (−100%)",
                ))
            }
        }
    }

    /// What the criterion's interval must do to decide it: exclude the threshold
    /// (superiority), exclude the threshold moved by the margin in the tolerated direction
    /// (non-inferiority), or lie inside or wholly outside `threshold ± margin` (equivalence).
    pub fn target(&self) -> stagegate_stats::interval::Target {
        use stagegate_stats::interval::Target;
        let (hypothesis, margin) = self
            .compare
            .as_ref()
            .map(|c| (c.hypothesis, c.margin.unwrap_or(0.0)))
            .unwrap_or((Hypothesis::Superiority, 0.0));
        match (hypothesis, self.comparator) {
            (Hypothesis::Equivalence, _) => {
                Target::Band(self.threshold - margin, self.threshold + margin)
            }
            (Hypothesis::NonInferiority, Comparator::Le | Comparator::Lt) => {
                Target::Limit(self.threshold + margin)
            }
            (Hypothesis::NonInferiority, Comparator::Ge | Comparator::Gt) => {
                Target::Limit(self.threshold - margin)
            }
            _ => Target::Limit(self.threshold),
        }
    }

    /// The hypothesis (superiority unless a comparison says otherwise).
    pub fn hypothesis(&self) -> Hypothesis {
        self.compare
            .as_ref()
            .map(|c| c.hypothesis)
            .unwrap_or_default()
    }
}

impl TestKind {
    /// snake_case name, as written in the card.
    pub fn name(self) -> &'static str {
        match self {
            TestKind::TwoProportions => "two_proportions",
            TestKind::Welch => "welch",
            TestKind::MannWhitney => "mann_whitney",
            TestKind::QuantileDifference => "quantile_difference",
        }
    }
}

impl Compare {
    /// The two-sided level of the effect's interval: the card's confidence for superiority,
    /// 1 − 2α for non-inferiority and equivalence (one-sided bounds at the card's level).
    pub fn interval_level(&self, confidence: f64) -> f64 {
        match self.hypothesis {
            Hypothesis::Superiority => confidence,
            _ => stagegate_stats::one_sided_level(confidence),
        }
    }

    /// The test used for a metric kind (explicit `test`, else the default for the kind);
    /// `None` when the kind cannot be compared.
    pub fn test_for(&self, kind: crate::metric::MetricKind) -> Option<TestKind> {
        use crate::metric::MetricKind as K;
        match (self.test, kind) {
            (Some(TestKind::TwoProportions) | None, K::Rate) => Some(TestKind::TwoProportions),
            (Some(TestKind::Welch) | None, K::Mean) => Some(TestKind::Welch),
            (Some(TestKind::MannWhitney), K::Mean | K::Quantile) => Some(TestKind::MannWhitney),
            (Some(TestKind::QuantileDifference) | None, K::Quantile) => {
                Some(TestKind::QuantileDifference)
            }
            _ => None,
        }
    }
}

/// The kinds of runtime guardrail (seed 001 item 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailKind {
    /// Input validation.
    InputValidation,
    /// Output schema check.
    OutputSchema,
    /// Tool allowlist.
    ToolAllowlist,
    /// Kill switch.
    KillSwitch,
    /// Anything else.
    Other,
}

/// A runtime guardrail declared on the card (Agent Card §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Guardrail {
    /// Stable identifier that guardrail-test evidence names.
    pub id: String,
    /// The kind.
    pub kind: GuardrailKind,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A dashboard and who watches it when (seed 001 item 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    /// Dashboard name.
    pub name: String,
    /// Where it lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The named person who looks at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watcher: Option<String>,
    /// How often they look, e.g. "daily", "weekly".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadence: Option<String>,
}

/// Monitoring.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    /// The dashboards.
    #[serde(default)]
    pub dashboards: Vec<Dashboard>,
}

/// The agent's identity in the IdP (seed 001 item 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Identity provider, e.g. "Okta", "Entra ID".
    pub idp: String,
    /// The agent's principal, e.g. "agent-finance-invoice-recon".
    pub principal: String,
    /// Credentials the agent holds; each should be rotated during the pilot.
    #[serde(default)]
    pub credentials: Vec<String>,
}

/// One place audit logs are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditStore {
    /// Storage, e.g. "LangSmith project", "S3 Glacier archive".
    pub storage: String,
    /// Retention, in days.
    pub retention_days: u32,
}

/// Audit-log retention (Agent Card §11, seed 001 item 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditLog {
    /// Where logs are kept and for how long; the longest store is the effective retention.
    pub stores: Vec<AuditStore>,
    /// Sector regimes that set a longer minimum, e.g. `sox` (keys of the gate template's
    /// `retention.regimes`).
    #[serde(default)]
    pub regimes: Vec<String>,
}

impl AuditLog {
    /// The effective retention in days: the longest store (0 when none).
    pub fn effective_days(&self) -> u32 {
        self.stores
            .iter()
            .map(|s| s.retention_days)
            .max()
            .unwrap_or(0)
    }
}

/// The kill switch the rollback plan flips.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KillSwitch {
    /// Flag provider, e.g. "OpenFeature (OFREP)", "LaunchDarkly".
    pub provider: String,
    /// The flag key, e.g. "finance-invoice-recon-enabled".
    pub flag: String,
}

/// Rollback / kill plan (seed 001 item 9; seed 000 `rollback_plan`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackPlan {
    /// The kill switch.
    pub kill_switch: KillSwitch,
    /// Steps, in order.
    pub procedure: Vec<String>,
    /// What happens to in-flight work when the switch flips.
    pub in_flight: String,
    /// Conditions that trigger a rollback, e.g. "Error rate exceeds 5%".
    #[serde(default)]
    pub triggers: Vec<String>,
    /// Who decides to roll back.
    pub decision_authority: String,
}

/// Launch facts the decision needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Launch {
    /// Target production launch date.
    #[serde(deserialize_with = "crate::ymd::date")]
    pub target_date: Date,
}

/// Economics inputs (issue "main job" §10).
///
/// annual value = volume per month × 12 × baseline minutes per unit × cost per minute ×
/// improvement; net = value − annual run cost; payback months = one-off costs ÷ (net ÷ 12).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Economics {
    /// Units of work per month at scale (invoices, tickets, requests).
    pub volume_per_month: f64,
    /// Minutes a person spends on one unit without the agent.
    pub baseline_minutes_per_unit: f64,
    /// Fully loaded cost of a person's minute, in USD.
    pub cost_per_minute_usd: f64,
    /// Criterion whose measured improvement over its baseline is the fraction of baseline
    /// minutes saved (see `stagegate_core::economics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub improvement_criterion: Option<String>,
    /// Fraction (0–1) of baseline minutes saved, as declared (used when no criterion is named).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub improvement: Option<f64>,
    /// Annual run cost at scale (models, hosting, support), in USD.
    pub annual_run_cost_usd: f64,
    /// One-off costs to reach production (build, integration, training), in USD.
    pub one_off_costs_usd: f64,
}

/// One rollout phase the card proposes (seed 000 "Phased Rollout").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    /// Phase name, e.g. "Power users".
    pub name: String,
    /// Who or what is included.
    pub scope: String,
    /// Duration in weeks.
    pub duration_weeks: u32,
}

/// Where scaling should land (seed 000 `target_state`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    /// Users at scale.
    pub target_users: u64,
    /// Volume at scale, e.g. "4,000 invoices/month".
    pub target_volume: String,
    /// Date by which the target state should be reached.
    #[serde(deserialize_with = "crate::ymd::date")]
    pub target_date: Date,
    /// Phases; seed 000's three-phase pattern when empty.
    #[serde(default)]
    pub phases: Vec<PhaseSpec>,
    /// Pilot infrastructure, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure_current: Option<String>,
    /// Production infrastructure, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure_target: Option<String>,
    /// Infrastructure changes needed.
    #[serde(default)]
    pub infrastructure_changes: Vec<String>,
}

/// The telemetry file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TelemetryFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// OpenTelemetry traces as OTLP/JSON lines (the file exporter's format); one row per span
    /// carrying `gen_ai.operation.name`.
    Otlp,
    /// Apache Parquet (snappy or zstd pages).
    Parquet,
}

/// A derived numeric role: a weighted sum of other numeric roles, e.g. cost per request from
/// token counts at a stated price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Derived {
    /// Terms of the sum; a missing input makes the derived value missing.
    pub sum_of: Vec<Term>,
}

/// `weight × field`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Term {
    /// A numeric role.
    pub field: String,
    /// Its weight, e.g. a price per token in USD.
    pub weight: f64,
}

/// Telemetry kept in a PostgreSQL table: the same metric catalogue runs there as SQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresSource {
    /// The table (optionally `schema.table`).
    pub table: String,
    /// Environment variable holding the connection URL (default `STAGEGATE_PG_URL`); the URL
    /// itself never goes in the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
}

/// Pilot telemetry: files (or a PostgreSQL table) and the mapping of their columns to roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// Files, relative to the agent folder; format from the extension (`.csv`, `.jsonl`,
    /// `.otlp.jsonl`, `.parquet`, each but Parquet optionally `.gz` or `.zst`) unless `format`
    /// is set. Empty when `postgres` is set.
    #[serde(default)]
    pub files: Vec<String>,
    /// Read from a PostgreSQL table instead of files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresSource>,
    /// Format override for every file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TelemetryFormat>,
    /// role → column header (CSV, Parquet), key (JSON Lines) or span field (OTLP: `span.*`,
    /// attribute keys, `resource.*`). Roles and their types: `timestamp` (required; RFC 3339,
    /// or `YYYY-MM-DD HH:MM:SS[.f]` read as UTC); text: `user`, `cohort`, `outcome`,
    /// `severity`, `model`, `operation`, and any role ending in `_id` or `_name`; boolean:
    /// `accepted` (true/false/1/0/yes/no); every other role is a number (`latency_ms`,
    /// `cost_usd`, `tokens`…).
    pub columns: BTreeMap<String, String>,
    /// Derived numeric roles.
    #[serde(default)]
    pub derived: BTreeMap<String, Derived>,
}

/// The agent card (`agent.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentCard {
    /// `agent-<dept>-<slug>`, lower-case letters, digits and dashes.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Agent version, e.g. "1.0".
    pub version: String,
    /// Risk tier.
    pub tier: Tier,
    /// Delivery lane.
    pub lane: Lane,
    /// Owning department, e.g. "finance"; must match `<dept>` in the id.
    pub department: String,
    /// People.
    pub people: People,
    /// The pilot.
    pub pilot: Pilot,
    /// Success criteria, set before the pilot.
    pub success_criteria: Vec<Criterion>,
    /// Runtime guardrails.
    pub guardrails: Vec<Guardrail>,
    /// Monitoring dashboards.
    #[serde(default)]
    pub monitoring: Monitoring,
    /// Identity in the IdP.
    pub identity: Identity,
    /// Audit-log retention.
    pub audit_log: AuditLog,
    /// Runbook path, relative to the agent folder.
    pub runbook: String,
    /// Rollback / kill plan.
    pub rollback: RollbackPlan,
    /// Launch facts.
    pub launch: Launch,
    /// Pilot telemetry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<Telemetry>,
    /// Economics inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub economics: Option<Economics>,
    /// Scaling target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<Scale>,
    /// Statistical settings for judging the criteria.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistics: Option<Statistics>,
}

/// Statistical settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Statistics {
    /// Confidence level of every interval, in (0.5, 1); default 0.95.
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// Fewest telemetry rows in the pilot window a criterion needs before it can be judged
    /// (default 1: no criterion is ever met on zero rows); a criterion's own
    /// `minimum_sample` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_sample: Option<u64>,
}

fn default_confidence() -> f64 {
    DEFAULT_CONFIDENCE
}

/// The confidence level used when the card does not set one.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;

/// A card whose fields parse but do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct CardError {
    /// Dotted path of the offending field, e.g. `success_criteria[2].metric`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl AgentCard {
    /// Checks the rules serde cannot: id shape, one e-mail per person (an e-mail is a signing
    /// principal), pilot window order, a cohort of at least one,
    /// launch after the pilot and scale after the launch, unique ids, metrics that fit their
    /// kind and read declared roles, thresholds (and baselines, targets) inside the range
    /// their metric kind and unit allow ([`Criterion::threshold_range`]), economics inputs not
    /// negative.
    ///
    /// # Errors
    /// The first [`CardError`] found, naming the field.
    pub fn validate(&self) -> Result<(), CardError> {
        let err = |field: &str, message: String| CardError {
            field: field.to_owned(),
            message,
        };
        let id_ok = self.id.starts_with("agent-")
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && self.id.split('-').count() >= 3
            && !self.id.split('-').any(str::is_empty);
        if !id_ok {
            return Err(err(
                "id",
                format!(
                    "`{}` is not of the form agent-<dept>-<slug> (lower-case letters, digits, dashes)",
                    self.id
                ),
            ));
        }
        let dept = self.id.split('-').nth(1).unwrap_or_default();
        if dept != self.department {
            return Err(err(
                "department",
                format!(
                    "`{}` does not match the id's department `{dept}`",
                    self.department
                ),
            ));
        }
        if self.pilot.end < self.pilot.start {
            return Err(err(
                "pilot.end",
                format!(
                    "{} is before pilot.start {}",
                    self.pilot.end, self.pilot.start
                ),
            ));
        }
        // An e-mail is a principal a person may sign as (crate::signing::principals): two
        // different people sharing one would let either sign as the other.
        let people = &self.people;
        let mut named: Vec<(&str, &Person)> = vec![
            ("people.builder", &people.builder),
            ("people.coe_lead", &people.coe_lead),
            ("people.sponsor", &people.sponsor),
            ("people.on_call.primary", &people.on_call.primary),
            ("people.on_call.backup", &people.on_call.backup),
        ];
        if let Some(p) = &people.peer_approver {
            named.push(("people.peer_approver", p));
        }
        for (i, (field, p)) in named.iter().enumerate() {
            let Some(email) = p.email.as_deref() else {
                continue;
            };
            if let Some((other_field, other)) = named[..i].iter().find(|(_, o)| {
                o.email
                    .as_deref()
                    .is_some_and(|e| e.trim().eq_ignore_ascii_case(email.trim()))
                    && !crate::person::same_person(&o.name, &p.name)
            }) {
                return Err(err(
                    &format!("{field}.email"),
                    format!(
                        "{email} is also {other_field}'s ({}): one e-mail stands for one person, and a sign-off may be signed as the e-mail",
                        other.name
                    ),
                ));
            }
        }
        if self.pilot.cohort_size == 0 {
            return Err(err(
                "pilot.cohort_size",
                "0 is not a cohort: a pilot has at least one user (adoption divides by it)".into(),
            ));
        }
        if self.launch.target_date < self.pilot.end {
            return Err(err(
                "launch.target_date",
                format!(
                    "{} is before the pilot ends ({}): production launch follows the pilot",
                    self.launch.target_date, self.pilot.end
                ),
            ));
        }
        if let Some(sc) = &self.scale
            && sc.target_date < self.launch.target_date
        {
            return Err(err(
                "scale.target_date",
                format!(
                    "{} is before the production launch ({}): scaling follows the launch",
                    sc.target_date, self.launch.target_date
                ),
            ));
        }
        if let Some(p) = self.pilot.share_of_volume_pct
            && !(0.0..=100.0).contains(&p)
        {
            return Err(err(
                "pilot.share_of_volume_pct",
                format!("{p} is not a percentage between 0 and 100"),
            ));
        }
        if let Some(st) = &self.statistics
            && !(st.confidence > 0.5 && st.confidence < 1.0)
        {
            return Err(err(
                "statistics.confidence",
                format!(
                    "{} is not a confidence level between 0.5 and 1",
                    st.confidence
                ),
            ));
        }
        if self.success_criteria.is_empty() {
            return Err(err(
                "success_criteria",
                "at least one criterion must be set before the pilot".into(),
            ));
        }
        let roles: Vec<&str> = self
            .telemetry
            .as_ref()
            .map(|t| {
                t.columns
                    .keys()
                    .chain(t.derived.keys())
                    .map(String::as_str)
                    .collect()
            })
            .unwrap_or_default();
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in self.success_criteria.iter().enumerate() {
            let here = format!("success_criteria[{i}]");
            if !seen.insert(c.id.as_str()) {
                return Err(err(
                    &format!("{here}.id"),
                    format!("duplicate criterion id `{}`", c.id),
                ));
            }
            if !c.threshold.is_finite() {
                return Err(err(
                    &format!("{here}.threshold"),
                    "must be a finite number".into(),
                ));
            }
            let out_of_range = |field: &str, v: f64, r: ValueRange| {
                err(
                    &format!("{here}.{field}"),
                    format!("{v} is out of range: it {}", r.describe()),
                )
            };
            if let Some(r) = c.threshold_range() {
                if !r.contains(c.threshold) {
                    return Err(out_of_range("threshold", c.threshold, r));
                }
                if let Some(v) = c.target_at_scale
                    && !r.contains(v)
                {
                    return Err(out_of_range("target_at_scale", v, r));
                }
            }
            if c.compare.is_none()
                && let (Some(r), Some(v)) = (c.value_range(), c.baseline)
                && !r.contains(v)
            {
                return Err(out_of_range("baseline", v, r));
            }
            match (c.source, &c.metric) {
                (CriterionSource::Telemetry, None) => {
                    return Err(err(
                        &format!("{here}.metric"),
                        "a telemetry criterion needs `metric`".into(),
                    ));
                }
                (CriterionSource::Evidence, Some(_)) => {
                    return Err(err(
                        &format!("{here}.metric"),
                        "an evidence criterion takes its value from a metric record, not `metric`"
                            .into(),
                    ));
                }
                (CriterionSource::Telemetry, Some(m)) => {
                    m.check()
                        .map_err(|e| err(&format!("{here}.metric"), e.to_string()))?;
                    use crate::metric::MetricKind as K;
                    if c.comparator == Comparator::Eq
                        && c.compare.is_none()
                        && m.per.is_none()
                        && matches!(m.kind, K::Rate | K::Mean | K::Quantile | K::Ratio)
                    {
                        return Err(err(
                            &format!("{here}.comparator"),
                            format!(
                                "`==` cannot be judged on an estimated {}: no interval equals a value; use <= or >={}",
                                crate::metric::kind_name(m.kind),
                                if m.kind == K::Rate {
                                    " (for \"zero incidents\", count them: `kind: count` with a `where`)"
                                } else {
                                    ""
                                }
                            ),
                        ));
                    }
                    if self.telemetry.is_none() {
                        return Err(err(
                            &format!("{here}.metric"),
                            "criterion reads telemetry but the card has no `telemetry` section"
                                .into(),
                        ));
                    }
                    for f in m.fields() {
                        if !roles.contains(&f) {
                            return Err(err(
                                &format!("{here}.metric"),
                                format!("reads role `{f}`, which telemetry.columns does not map"),
                            ));
                        }
                    }
                }
                (CriterionSource::Evidence, None) => {}
            }
            if let Some(cmp) = &c.compare {
                let at = format!("{here}.compare");
                let Some(m) = &c.metric else {
                    return Err(err(&at, "a comparison needs a telemetry `metric`".into()));
                };
                if cmp.test_for(m.kind).is_none() {
                    return Err(err(
                        &at,
                        format!(
                            "a `{}` metric cannot be compared{}; compare rates (two_proportions), means (welch, mann_whitney) or quantiles (quantile_difference, mann_whitney)",
                            crate::metric::kind_name(m.kind),
                            cmp.test
                                .map(|t| format!(" with {}", t.name()))
                                .unwrap_or_default()
                        ),
                    ));
                }
                if m.per.is_some() {
                    return Err(err(&at, "per-period metrics cannot be compared".into()));
                }
                if cmp.test_for(m.kind) == Some(TestKind::MannWhitney)
                    && cmp.effect == EffectScale::Relative
                {
                    return Err(err(
                        &format!("{at}.effect"),
                        "a Mann-Whitney shift has no distribution-free relative form (dividing by a sample median ignores its uncertainty); compare a quantile (`test: quantile_difference`) with `effect: relative`, or the shift as a difference".into(),
                    ));
                }
                match cmp.against {
                    Against::Baseline => match &cmp.baseline {
                        None => {
                            return Err(err(
                                &at,
                                "against: baseline needs `baseline: {start, end}`".into(),
                            ));
                        }
                        Some(w) if w.end < w.start || w.end >= self.pilot.start => {
                            return Err(err(
                                &format!("{at}.baseline"),
                                format!(
                                    "{}..{} must end before the pilot starts ({})",
                                    w.start, w.end, self.pilot.start
                                ),
                            ));
                        }
                        Some(_) => {}
                    },
                    Against::Control => {
                        if cmp.control_cohort.is_none() {
                            return Err(err(&at, "against: control needs `control_cohort`".into()));
                        }
                        if cmp.pilot_cohort.is_some() && cmp.pilot_cohort == cmp.control_cohort {
                            return Err(err(
                                &format!("{at}.pilot_cohort"),
                                "is the control cohort: a comparison needs two different cohorts"
                                    .into(),
                            ));
                        }
                        if !roles.contains(&"cohort") {
                            return Err(err(
                                &at,
                                "against: control needs the `cohort` role in telemetry.columns"
                                    .into(),
                            ));
                        }
                    }
                }
                if cmp.assigned_pilot_share.is_some()
                    && cmp.unit.is_none()
                    && !roles.contains(&"user")
                {
                    return Err(err(
                        &format!("{at}.assigned_pilot_share"),
                        "the sample-ratio check counts users per cohort: map the `user` role in telemetry.columns".into(),
                    ));
                }
                if let Some(sh) = cmp.assigned_pilot_share
                    && !(sh > 0.0 && sh < 1.0)
                {
                    return Err(err(
                        &format!("{at}.assigned_pilot_share"),
                        format!("{sh} is not a share strictly between 0 and 1"),
                    ));
                }
                validate_hypothesis(c, cmp, &at).map_err(|(f, m)| err(&f, m))?;
                validate_unit(m, cmp, &at, &roles, self.pilot.start)
                    .map_err(|(f, m)| err(&f, m))?;
            }
        }
        let mut gids = std::collections::BTreeSet::new();
        for (i, g) in self.guardrails.iter().enumerate() {
            if !gids.insert(g.id.as_str()) {
                return Err(err(
                    &format!("guardrails[{i}].id"),
                    format!("duplicate guardrail id `{}`", g.id),
                ));
            }
        }
        if let Some(t) = &self.telemetry {
            if !t.columns.contains_key("timestamp") {
                return Err(err(
                    "telemetry.columns",
                    "must map the `timestamp` role (the pilot window is applied to it)".into(),
                ));
            }
            match (&t.postgres, t.files.is_empty()) {
                (None, true) => return Err(err("telemetry.files", "lists no file".into())),
                (Some(_), false) => {
                    return Err(err(
                        "telemetry.postgres",
                        "read telemetry from files or from PostgreSQL, not both".into(),
                    ));
                }
                _ => {}
            }
            for (name, d) in &t.derived {
                if t.columns.contains_key(name) {
                    return Err(err(
                        &format!("telemetry.derived.{name}"),
                        "has the same name as a mapped column".into(),
                    ));
                }
                for term in &d.sum_of {
                    if !t.columns.contains_key(&term.field) {
                        return Err(err(
                            &format!("telemetry.derived.{name}"),
                            format!(
                                "reads `{}`, which telemetry.columns does not map",
                                term.field
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(e) = &self.economics {
            for (field, v) in [
                ("volume_per_month", e.volume_per_month),
                ("baseline_minutes_per_unit", e.baseline_minutes_per_unit),
                ("cost_per_minute_usd", e.cost_per_minute_usd),
                ("annual_run_cost_usd", e.annual_run_cost_usd),
                ("one_off_costs_usd", e.one_off_costs_usd),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(err(
                        &format!("economics.{field}"),
                        format!("{v} is out of range: it must be a number at least 0"),
                    ));
                }
            }
            if let Some(i) = e.improvement
                && !(0.0..=1.0).contains(&i)
            {
                return Err(err(
                    "economics.improvement",
                    format!(
                        "{i} is out of range: it must lie between 0 and 1 — the fraction of baseline minutes saved"
                    ),
                ));
            }
            match (&e.improvement_criterion, e.improvement) {
                (Some(id), _) => {
                    let Some(c) = self.success_criteria.iter().find(|c| &c.id == id) else {
                        return Err(err(
                            "economics.improvement_criterion",
                            format!("names `{id}`, which is not a success criterion"),
                        ));
                    };
                    if let Some(why) = crate::economics::improvement_unreadable(c) {
                        return Err(err(
                            "economics.improvement_criterion",
                            format!("`{id}` {why}"),
                        ));
                    }
                }
                (None, None) => {
                    return Err(err(
                        "economics",
                        "needs `improvement_criterion` (measured) or `improvement` (declared)"
                            .into(),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The fewest rows criterion `c` needs to be judged: its `minimum_sample`, else
    /// `statistics.minimum_sample`, else 1 (issue "trust" §4: no evidence, no pass).
    pub fn minimum_sample(&self, c: &Criterion) -> u64 {
        c.minimum_sample
            .or(self.statistics.as_ref().and_then(|s| s.minimum_sample))
            .unwrap_or(1)
            .max(1)
    }

    /// The confidence level for intervals: `statistics.confidence`, else 0.95.
    pub fn confidence(&self) -> f64 {
        self.statistics
            .as_ref()
            .map(|s| s.confidence)
            .unwrap_or(DEFAULT_CONFIDENCE)
    }

    /// Whether the CoE lead is also the agent builder (seed 001 item 10: they then need a
    /// peer approver's signature too). Names compare case-insensitively, ignoring spacing.
    pub fn coe_lead_is_builder(&self) -> bool {
        crate::person::same_person(&self.people.builder.name, &self.people.coe_lead.name)
    }
}
