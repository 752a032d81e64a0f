//! Evidence records: one file per record under the agent's `evidence/` folder.
//!
//! A record says which checklist item(s) it supports, what kind of proof it is, when it was
//! taken and by whom, and carries the details its kind needs (a drill's timing, a rotation's
//! credential, a guardrail test's input and outcome…). Attachments are named by relative path
//! with their sha256; the loader recomputes the digest and a mismatch invalidates the record.
//!
//! Source: the issue "main job" §4; seed 001 per-item guidance ("Force actual evidence").

use jiff::civil::Date;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What kind of proof a record is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceKind {
    /// A measured value for an evidence-sourced success criterion (`metric:` block).
    Metric,
    /// A rollback / kill drill (`drill:` block).
    Drill,
    /// A credential rotation (`rotation:` block).
    Rotation,
    /// A guardrail triggered by a real input (`guardrail_test:` block).
    GuardrailTest,
    /// An on-call runbook acknowledgment with comprehension answers (`acknowledgment:` block).
    Acknowledgment,
    /// A document (config export, screenshot, drafted message…).
    Document,
    /// A link to a live system (dashboard, pager schedule…).
    Link,
    /// An approval: sponsor risk acceptance or criteria re-approval (`approval:` block).
    Approval,
    /// A sign-off over a review digest (`signoff:` block).
    Signoff,
    /// An open item with one owner and a due date (`open_item:` block).
    OpenItem,
    /// A communication drafted and scheduled (`communication:` block).
    Communication,
}

impl EvidenceKind {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Metric => "metric",
            EvidenceKind::Drill => "drill",
            EvidenceKind::Rotation => "rotation",
            EvidenceKind::GuardrailTest => "guardrail-test",
            EvidenceKind::Acknowledgment => "acknowledgment",
            EvidenceKind::Document => "document",
            EvidenceKind::Link => "link",
            EvidenceKind::Approval => "approval",
            EvidenceKind::Signoff => "signoff",
            EvidenceKind::OpenItem => "open-item",
            EvidenceKind::Communication => "communication",
        }
    }
}

/// A file the record points at, with the sha256 it had when recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// Path relative to the record's folder.
    pub path: String,
    /// Lower-case hex sha256 of the file's bytes.
    pub sha256: String,
}

/// A measured value for an evidence-sourced criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricDetails {
    /// The criterion id.
    pub criterion: String,
    /// The measured value, in the criterion's unit.
    pub value: f64,
    /// How it was measured (time study, survey…).
    pub method: String,
}

/// How a drill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DrillResult {
    /// The switch stopped the agent and the fallback worked.
    Passed,
    /// It did not.
    Failed,
}

/// A rollback / kill drill (seed 001 item 9: "executed end-to-end in a drill. Documented
/// timing. Documented what happens to in-flight work.").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillDetails {
    /// What was done.
    pub procedure: String,
    /// Seconds from the decision to kill until the agent stopped taking work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_stop_seconds: Option<f64>,
    /// How long the agent stayed off, in minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_minutes: Option<f64>,
    /// What happened to in-flight work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<String>,
    /// The outcome.
    pub result: DrillResult,
}

/// A credential rotation (seed 001 item 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotationDetails {
    /// The credential rotated, e.g. "NetSuite OAuth".
    pub credential: String,
    /// Whether the agent kept operating through the rotation.
    pub agent_kept_operating: bool,
    /// Downtime caused, in minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime_minutes: Option<u32>,
}

/// What the guardrail did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailAction {
    /// The input or action was blocked.
    Blocked,
    /// It was escalated to a person.
    Escalated,
    /// Nothing happened.
    None,
}

/// A guardrail triggered by an actual input (seed 001 item 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardrailTestDetails {
    /// The card's guardrail id.
    pub guardrail: String,
    /// The triggering input or scenario.
    pub input: String,
    /// Whether logs confirm the guardrail fired.
    pub fired: bool,
    /// What it did.
    pub action: GuardrailAction,
    /// Where the log line is (query, trace id…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_reference: Option<String>,
}

/// The three comprehension answers (seed 001 item 7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComprehensionAnswers {
    /// "How do you kill the agent in 60 seconds?"
    pub kill_switch: String,
    /// "What are the top 3 failure modes and what do you do for each?" — three entries.
    pub failure_modes: Vec<String>,
    /// "Where are the logs?"
    pub logs: String,
}

/// An on-call runbook acknowledgment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgmentDetails {
    /// Who read the runbook (must be the named on-call).
    pub person: String,
    /// Their answers, given without looking.
    pub answers: ComprehensionAnswers,
    /// Whether the reviewer judged the answers correct.
    pub passed: bool,
}

/// What an approval approves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalSubject {
    /// The sponsor accepts the risk of launching with open items (seed 001 decision matrix).
    RiskAcceptance,
    /// Changed success criteria were re-approved (seed 001 item 1: "redefine criteria (with
    /// re-approval at M8)").
    CriteriaChange,
}

/// An approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDetails {
    /// What is approved.
    pub subject: ApprovalSubject,
    /// Who approved (the sponsor for risk acceptance).
    pub by: String,
    /// Items the risk acceptance covers (risk acceptance only).
    #[serde(default)]
    pub items: Vec<u8>,
    /// Digest of the re-approved criteria, `sha256:<hex>` (criteria change only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criteria_digest: Option<String>,
}

/// The role a sign-off is given in (seed 001 item 10).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SignoffRole {
    /// The agent builder.
    Builder,
    /// The AI CoE lead.
    CoeLead,
    /// The peer approver (needed when the CoE lead is also the builder).
    PeerApprover,
}

impl SignoffRole {
    /// Display name as Template 07 writes it.
    pub fn title(self) -> &'static str {
        match self {
            SignoffRole::Builder => "Agent Builder",
            SignoffRole::CoeLead => "AI CoE Lead",
            SignoffRole::PeerApprover => "Peer Approver",
        }
    }
}

/// A sign-off over one review digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignoffDetails {
    /// Role signed in.
    pub role: SignoffRole,
    /// Who signed.
    pub name: String,
    /// The review digest signed, `sha256:<hex>`.
    pub digest: String,
}

/// An open item (seed 001: "documented open items and named owner").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenItemDetails {
    /// What is missing.
    pub what: String,
    /// One named owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// When it closes.
    #[serde(
        default,
        deserialize_with = "crate::ymd::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub due: Option<Date>,
}

/// A communication drafted and scheduled (seed 001 item 8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommunicationDetails {
    /// Channel, e.g. "Slack #finance", "all-hands email digest", "exec 1-pager".
    pub channel: String,
    /// Audience.
    pub audience: String,
    /// Whether the content is drafted.
    pub drafted: bool,
    /// When it goes out.
    #[serde(
        default,
        deserialize_with = "crate::ymd::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub scheduled_for: Option<Date>,
}

/// One evidence record, as written in `evidence/<name>.yaml` or in the front matter of
/// `evidence/<name>.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRecord {
    /// Checklist items (1–10) this record supports.
    #[serde(default)]
    pub items: Vec<u8>,
    /// Readiness item ids (`technical.load_tested`…) this record supports.
    #[serde(default)]
    pub readiness: Vec<String>,
    /// The kind.
    pub kind: EvidenceKind,
    /// When the evidence was taken (the drill, the rotation, the test…).
    #[serde(deserialize_with = "crate::ymd::date")]
    pub date: Date,
    /// Named person who recorded it.
    pub recorded_by: String,
    /// One-paragraph summary shown in the report.
    pub summary: String,
    /// Attached files.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Details of a `metric` record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricDetails>,
    /// Details of a `drill` record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillDetails>,
    /// Details of a `rotation` record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationDetails>,
    /// Details of a `guardrail-test` record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrail_test: Option<GuardrailTestDetails>,
    /// Details of an `acknowledgment` record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledgment: Option<AcknowledgmentDetails>,
    /// Details of an `approval` record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalDetails>,
    /// Details of a `signoff` record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signoff: Option<SignoffDetails>,
    /// Details of an `open-item` record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_item: Option<OpenItemDetails>,
    /// Details of a `communication` record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication: Option<CommunicationDetails>,
    /// The signer's SSH signature (armored SSHSIG, `ssh-keygen -Y sign -n stagegate`) over the
    /// act's statement (`crate::signing`); `signoff` and `approval` records only. Without it
    /// the act is reported as unsigned and does not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl EvidenceRecord {
    /// Checks that the record carries the block its kind needs and no other, that item
    /// numbers are 1–10, that durations are not negative and values finite, and that
    /// attachment digests are sha256 hex.
    ///
    /// # Errors
    /// `(field, message)` naming the offending field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (j, i) in self.items.iter().enumerate() {
            if !(1..=10).contains(i) {
                return Err((
                    format!("items[{j}]"),
                    format!("{i} is not a checklist item (1–10)"),
                ));
            }
        }
        if self.items.is_empty() && self.readiness.is_empty() && self.kind != EvidenceKind::Signoff
        {
            return Err((
                "items".into(),
                "a record must support at least one checklist item or readiness item".into(),
            ));
        }
        let blocks: [(&str, bool, Option<EvidenceKind>); 9] = [
            ("metric", self.metric.is_some(), Some(EvidenceKind::Metric)),
            ("drill", self.drill.is_some(), Some(EvidenceKind::Drill)),
            (
                "rotation",
                self.rotation.is_some(),
                Some(EvidenceKind::Rotation),
            ),
            (
                "guardrail_test",
                self.guardrail_test.is_some(),
                Some(EvidenceKind::GuardrailTest),
            ),
            (
                "acknowledgment",
                self.acknowledgment.is_some(),
                Some(EvidenceKind::Acknowledgment),
            ),
            (
                "approval",
                self.approval.is_some(),
                Some(EvidenceKind::Approval),
            ),
            (
                "signoff",
                self.signoff.is_some(),
                Some(EvidenceKind::Signoff),
            ),
            (
                "open_item",
                self.open_item.is_some(),
                Some(EvidenceKind::OpenItem),
            ),
            (
                "communication",
                self.communication.is_some(),
                Some(EvidenceKind::Communication),
            ),
        ];
        for (name, present, kind) in blocks {
            let is_mine = kind == Some(self.kind);
            if is_mine && !present {
                return Err((
                    name.into(),
                    format!("a `{}` record needs a `{name}:` block", self.kind.as_str()),
                ));
            }
            if !is_mine && present {
                return Err((
                    name.into(),
                    format!(
                        "a `{}` record cannot carry a `{name}:` block",
                        self.kind.as_str()
                    ),
                ));
            }
        }
        if self.signature.is_some()
            && !matches!(self.kind, EvidenceKind::Signoff | EvidenceKind::Approval)
        {
            return Err((
                "signature".into(),
                format!(
                    "a `{}` record is not a signed act; only signoff and approval records carry a signature",
                    self.kind.as_str()
                ),
            ));
        }
        if let Some(d) = &self.drill {
            for (field, v) in [
                ("drill.time_to_stop_seconds", d.time_to_stop_seconds),
                ("drill.duration_minutes", d.duration_minutes),
            ] {
                if let Some(v) = v
                    && !(v.is_finite() && v >= 0.0)
                {
                    return Err((
                        field.into(),
                        format!("{v} is out of range: a duration is never negative"),
                    ));
                }
            }
        }
        if let Some(m) = &self.metric
            && !m.value.is_finite()
        {
            return Err(("metric.value".into(), "must be a finite number".into()));
        }
        if let Some(a) = &self.approval {
            for (j, i) in a.items.iter().enumerate() {
                if !(1..=10).contains(i) {
                    return Err((
                        format!("approval.items[{j}]"),
                        format!("{i} is not a checklist item (1–10)"),
                    ));
                }
            }
        }
        for (i, a) in self.attachments.iter().enumerate() {
            let hex_ok = a.sha256.len() == 64
                && a.sha256
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
            if !hex_ok {
                return Err((
                    format!("attachments[{i}].sha256"),
                    "must be 64 lower-case hex digits".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Whether a loaded record can be relied on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum Validity {
    /// Attachments match; date not after the review.
    Valid,
    /// Not counted, with the reason (changed or missing attachment, dated after the review).
    Invalid(String),
}

/// A record as loaded from disk: where it came from, its digest and whether it still holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// Path relative to the agent folder, e.g. `evidence/drill-2026-06-08.yaml`.
    pub path: String,
    /// sha256 of the record file, `sha256:<hex>`.
    pub digest: String,
    /// The record.
    pub record: EvidenceRecord,
    /// Whether it counts.
    pub validity: Validity,
}

impl Evidence {
    /// Whether the record counts.
    pub fn is_valid(&self) -> bool {
        self.validity == Validity::Valid
    }

    /// Whether the record claims to support checklist item `n`.
    pub fn supports(&self, n: u8) -> bool {
        self.record.items.contains(&n)
    }
}
