//! The log's rows: what an event says ([`Event`]), how it is stored ([`StoredEvent`]) and
//! hashed ([`event_hash`]), and who records it when ([`Act`], [`Clock`]).

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use stagegate_core::digest::sha256_tagged;

/// When an act is recorded: the machine clock, or `STAGEGATE_NOW` (marked as an override).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// The recording instant.
    pub now: Timestamp,
    /// Whether `now` came from `STAGEGATE_NOW` rather than the machine clock.
    pub overridden: bool,
}

/// Who records an act, when, and for which date.
#[derive(Debug, Clone)]
pub struct Act {
    /// The `--as-of` date the act is given.
    pub as_of: Option<Date>,
    /// The recording time.
    pub clock: Clock,
    /// Who ran the command (`--by`, else `$USER`).
    pub actor: String,
}

/// The body of one event. Serialized (sorted keys) into the `body` column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Event {
    /// The first event: the registry's public key (OpenSSH line).
    RegistryCreated {
        /// `ssh-ed25519 AAAA…`.
        public_key: String,
    },
    /// An agent appears in the registry.
    AgentRegistered {
        /// Agent id.
        agent: String,
        /// Display name.
        name: String,
        /// The card's people (`People`' JSON shape) when it was registered from a card
        /// (`POST /api/v1/agents`): who may act on it until a review names them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        people: Option<serde_json::Value>,
    },
    /// The success criteria are locked at pilot start.
    CriteriaLocked {
        /// Agent id.
        agent: String,
        /// `sha256:` of the criteria.
        digest: String,
        /// The criteria as JSON.
        criteria: serde_json::Value,
        /// Who locks them (the card's CoE lead unless `--by`).
        by: String,
    },
    /// A review, with its decision and every item.
    ReviewRecorded {
        /// Agent id.
        agent: String,
        /// Agent version.
        version: String,
        /// Stage at review time.
        stage: Option<String>,
        /// Cleared / Conditional / Blocked.
        decision: String,
        /// Review digest.
        digest: String,
        /// Item statuses, `1:pass 2:open …`.
        items: String,
        /// The whole review (stagegate's JSON output).
        review: serde_json::Value,
    },
    /// A sign-off signed and recorded by `stagegate signoff`.
    SignoffRecorded {
        /// Agent id.
        agent: String,
        /// `builder`, `coe_lead` or `peer_approver`.
        role: String,
        /// The signer.
        person: String,
        /// The review digest signed.
        review_digest: String,
        /// The statement signed.
        statement: String,
        /// The armored SSHSIG.
        signature: String,
        /// `SHA256:…` of the signing key.
        key_fingerprint: String,
    },
    /// An evidence record pushed to the server (`POST /api/v1/agents/{id}/evidence`), with the
    /// attachments it names, stored content-addressed beside the log.
    EvidenceRecorded {
        /// Agent id.
        agent: String,
        /// Checklist items (1–10) it supports.
        items: Vec<u8>,
        /// Its kind (`drill`, `metric`, …).
        kind: String,
        /// The evidence date, `YYYY-MM-DD`.
        date: String,
        /// The record (`EvidenceRecord`'s JSON shape).
        record: serde_json::Value,
        /// The attachments, in the record's order.
        attachments: Vec<AttachmentRef>,
    },
    /// An API token was issued (`stagegate token create`); the secret is never logged.
    TokenIssued {
        /// The token's public id.
        token: String,
        /// The person it authenticates (name or e-mail as the cards write it).
        person: String,
        /// Its roles.
        roles: Vec<String>,
        /// Agents it is limited to (empty: every agent its roles allow).
        agents: Vec<String>,
        /// Expiry, RFC 3339.
        expires: String,
    },
    /// An API token was revoked.
    TokenRevoked {
        /// The token's public id.
        token: String,
    },
    /// A stage change.
    StageChanged {
        /// Agent id.
        agent: String,
        /// Previous stage.
        from: Option<String>,
        /// New stage.
        to: String,
        /// The review event that allowed it.
        review_seq: Option<i64>,
        /// Fingerprints of the sign-off keys re-verified before the change.
        signers: Vec<String>,
        /// Why (pause, resume, retire).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A rollout changed: started, advanced, paused, resumed, rolled back or aborted
    /// (`stagegate_rollout::Transition`, with the judgements behind a controller's change).
    RolloutChanged {
        /// Agent id.
        agent: String,
        /// The transition.
        change: stagegate_rollout::Transition,
        /// The person's signed act; absent when the controller made the change (a rollback,
        /// a pause at a go/no-go, an automatic advance), which the registry key signs as it
        /// signs every event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        act: Option<SignedAct>,
    },
    /// The kill switch pulled (`disabled: true`: every evaluation of the agent's flag returns
    /// the safe default with reason `DISABLED`) or restored.
    KillSwitchSet {
        /// Agent id.
        agent: String,
        /// Pulled or restored.
        disabled: bool,
        /// Part of a drill (`stagegate drill`): the drill's own act signs both the pull and the
        /// restore.
        drill: bool,
        /// Why.
        reason: String,
        /// The person's signed act.
        act: SignedAct,
    },
}

/// A person's signed act (`stagegate_core::signing::rollout_act_statement`), verified against
/// the allowed-signers file before it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedAct {
    /// `start`, `advance`, `pause`, `resume`, `abort`, `kill`, `restore` or `drill`.
    pub act: String,
    /// The signer, as the card names them.
    pub person: String,
    /// The statement signed.
    pub statement: String,
    /// The armored SSHSIG.
    pub signature: String,
    /// `SHA256:…` of the signing key.
    pub key_fingerprint: String,
}

impl Event {
    /// The `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RegistryCreated { .. } => "registry-created",
            Event::AgentRegistered { .. } => "agent-registered",
            Event::CriteriaLocked { .. } => "criteria-locked",
            Event::ReviewRecorded { .. } => "review-recorded",
            Event::SignoffRecorded { .. } => "signoff-recorded",
            Event::StageChanged { .. } => "stage-changed",
            Event::EvidenceRecorded { .. } => "evidence-recorded",
            Event::TokenIssued { .. } => "token-issued",
            Event::TokenRevoked { .. } => "token-revoked",
            Event::RolloutChanged { .. } => "rollout-changed",
            Event::KillSwitchSet { .. } => "kill-switch-set",
        }
    }

    /// The `agent_id` column.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Event::RegistryCreated { .. }
            | Event::TokenIssued { .. }
            | Event::TokenRevoked { .. } => None,
            Event::AgentRegistered { agent, .. }
            | Event::CriteriaLocked { agent, .. }
            | Event::ReviewRecorded { agent, .. }
            | Event::SignoffRecorded { agent, .. }
            | Event::StageChanged { agent, .. }
            | Event::EvidenceRecorded { agent, .. }
            | Event::RolloutChanged { agent, .. }
            | Event::KillSwitchSet { agent, .. } => Some(agent),
        }
    }
}

/// An attachment an evidence event names: its path in the record and the sha256 of the
/// bytes stored under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRef {
    /// The path the record gives.
    pub path: String,
    /// Lowercase hex sha256 of the content.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// One row of the log, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredEvent {
    /// 1, 2, 3, … with no gap.
    pub seq: i64,
    /// [`Event::kind`].
    pub kind: String,
    /// [`Event::agent`].
    pub agent_id: Option<String>,
    /// The `--as-of` date.
    pub as_of: Option<String>,
    /// Recording time, RFC 3339.
    pub recorded_at: String,
    /// `system` or `override`.
    pub clock: String,
    /// Who ran the command.
    pub actor: String,
    /// The [`Event`] as JSON.
    pub body: String,
    /// The previous event's hash (empty for the first).
    pub prev_hash: String,
    /// [`event_hash`] of this row.
    pub hash: String,
    /// The registry key's SSHSIG over `hash`.
    pub registry_sig: String,
}

/// `sha256` over the JSON array of every column but `hash` and `registry_sig`, tagged
/// `sha256:`. A change to any of them changes the hash.
pub fn event_hash(e: &StoredEvent) -> String {
    let v = serde_json::json!([
        e.seq,
        e.kind,
        e.agent_id,
        e.as_of,
        e.recorded_at,
        e.clock,
        e.actor,
        e.body,
        e.prev_hash
    ]);
    sha256_tagged(v.to_string().as_bytes())
}
