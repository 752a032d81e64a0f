//! Replaying the log: the state every answer is derived from ([`State`]), rebuilt event by
//! event with the chain, the hashes, the clock mode and the rules checked on the way.

use crate::RegistryError;
use crate::event::{AttachmentRef, Event, StoredEvent, event_hash};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use stagegate_core::review::CriteriaLock;
use stagegate_core::stage::Stage;
use stagegate_trust::EVENT_NAMESPACE;
use std::collections::{BTreeMap, BTreeSet};

/// One stored review, as `stagegate history` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// Event number.
    pub id: i64,
    /// Agent id.
    pub agent: String,
    /// Agent version reviewed.
    pub version: String,
    /// Stage at review time.
    pub stage: Option<String>,
    /// Review date.
    pub review_date: String,
    /// When it was stored (RFC 3339), and whether from `STAGEGATE_NOW`.
    pub recorded_at: String,
    /// Who ran it.
    pub recorded_by: String,
    /// Decision.
    pub decision: String,
    /// Review digest.
    pub digest: String,
    /// Item statuses `1:pass 2:open …`.
    pub items: String,
}

/// A stage change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageEvent {
    /// Event number.
    pub seq: i64,
    /// Agent id.
    pub agent: String,
    /// New stage.
    pub stage: String,
    /// Effective date.
    pub at: String,
    /// When it was recorded.
    pub recorded_at: String,
    /// Who.
    pub by: String,
    /// The review that allowed it, if any.
    pub review_id: Option<i64>,
}

/// An agent as replayed from the log.
#[derive(Debug, Clone, Default)]
pub struct AgentState {
    /// Display name.
    pub name: String,
    /// Current stage.
    pub stage: Option<Stage>,
    /// The criteria lock.
    pub lock: Option<CriteriaLock>,
    /// The event number of the lock.
    pub lock_seq: Option<i64>,
    /// Reviews, oldest first.
    pub reviews: Vec<HistoryEntry>,
    /// Stage changes, oldest first.
    pub stages: Vec<StageEvent>,
    /// Evidence pushed to the server, oldest first.
    pub evidence: Vec<EvidenceEntry>,
    /// The latest recorded review (by recording order), whole: `Review`'s JSON shape.
    pub latest_review: Option<serde_json::Value>,
    /// The people of the card it was registered from, if any (`People`' JSON shape).
    pub people: Option<serde_json::Value>,
    /// Sign-offs recorded, oldest first.
    pub signoffs: Vec<SignoffEntry>,
    /// The stage a paused agent resumes to.
    pub paused_from: Option<Stage>,
}

/// A recorded sign-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignoffEntry {
    /// Event number.
    pub seq: i64,
    /// `builder`, `coe_lead` or `peer_approver`.
    pub role: String,
    /// The signer.
    pub person: String,
    /// The review digest signed.
    pub review_digest: String,
}

/// An evidence record pushed to the server, as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvidenceEntry {
    /// Event number.
    pub seq: i64,
    /// Checklist items it supports.
    pub items: Vec<u8>,
    /// Its kind.
    pub kind: String,
    /// The evidence date, `YYYY-MM-DD`.
    pub date: String,
    /// When it was recorded (RFC 3339).
    pub recorded_at: String,
    /// Who pushed it (the token's person).
    pub by: String,
    /// Its attachments.
    pub attachments: Vec<AttachmentRef>,
}

/// The registry's state, replayed from the log.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// The registry's public key (from the first event).
    pub public_key: String,
    /// Agents by id.
    pub agents: BTreeMap<String, AgentState>,
    /// Number of events.
    pub size: i64,
    /// Hash of the newest event.
    pub head: String,
    /// Whether the registry was created with its clock overridden (`STAGEGATE_NOW`): a test or
    /// replay registry, whose recording times are not the machine's. Fixed by the first event;
    /// a registry kept on the machine clock never accepts an overridden one.
    pub replay_clock: bool,
    /// Ids of every API token ever issued (revoked ones included).
    pub tokens: BTreeSet<String>,
}

impl State {
    /// Replays a whole log with every check, registry signatures included (what
    /// [`crate::Registry::verify`] does).
    ///
    /// # Errors
    /// [`RegistryError::Tampered`] at the first event that does not hold.
    pub fn verified(rows: &[StoredEvent]) -> Result<State, RegistryError> {
        replay(rows, true)
    }

    /// Extends a state built by [`State::verified`] with the events after its head, with
    /// the same checks (the first must chain onto [`State::head`]). On error the state holds
    /// the events before the failing one.
    ///
    /// # Errors
    /// [`RegistryError::Tampered`] at the first event that does not hold.
    pub fn extend_verified(&mut self, rows: &[StoredEvent]) -> Result<(), RegistryError> {
        extend(self, rows, true)
    }
}

pub(crate) fn tampered(seq: i64, why: impl Into<String>) -> RegistryError {
    RegistryError::Tampered {
        seq,
        why: why.into(),
    }
}

/// Replays the log: sequence, chain, hashes, columns against bodies, the rules of each
/// event, and (when `signatures`) every registry signature.
pub(crate) fn replay(rows: &[StoredEvent], signatures: bool) -> Result<State, RegistryError> {
    let mut st = State::default();
    extend(&mut st, rows, signatures)?;
    Ok(st)
}

/// Replays `rows`, the events that follow `st`'s head, onto `st` with the same checks as
/// [`replay`]: a state built by [`replay`] over a prefix and extended with the rest equals the
/// replay of the whole log. On error `st` holds the events before the failing one.
pub(crate) fn extend(
    st: &mut State,
    rows: &[StoredEvent],
    signatures: bool,
) -> Result<(), RegistryError> {
    let mut prev = st.head.clone();
    for r in rows {
        let seq = r.seq;
        let i = st.size;
        if seq != i + 1 {
            return Err(tampered(
                seq,
                format!(
                    "expected event #{} here: an event was deleted, inserted or renumbered",
                    i + 1
                ),
            ));
        }
        if r.prev_hash != prev {
            return Err(tampered(
                seq,
                "its prev_hash is not the previous event's hash (an event was removed, inserted or reordered)",
            ));
        }
        if event_hash(r) != r.hash {
            return Err(tampered(
                seq,
                "its columns do not match its hash (the event was edited)",
            ));
        }
        let ev: Event = serde_json::from_str(&r.body)
            .map_err(|e| tampered(seq, format!("its body is not an event: {e}")))?;
        if ev.kind() != r.kind || ev.agent() != r.agent_id.as_deref() {
            return Err(tampered(
                seq,
                "its kind or agent column disagrees with its body",
            ));
        }
        if !matches!(r.clock.as_str(), "system" | "override") {
            return Err(tampered(seq, "its clock is neither system nor override"));
        }
        let recorded: Timestamp = r
            .recorded_at
            .parse()
            .map_err(|_| tampered(seq, "its recorded_at is not a timestamp"))?;
        let as_of: Option<Date> = match &r.as_of {
            None => None,
            Some(d) => Some(
                d.parse()
                    .map_err(|_| tampered(seq, "its as_of is not a date"))?,
            ),
        };
        if i == 0 {
            match &ev {
                Event::RegistryCreated { public_key } => {
                    st.public_key = public_key.clone();
                    st.replay_clock = r.clock == "override";
                }
                _ => return Err(tampered(seq, "the first event must create the registry")),
            }
        } else if r.clock == "override" && !st.replay_clock {
            return Err(tampered(
                seq,
                "its clock is overridden in a registry kept on the machine clock",
            ));
        }
        if signatures {
            stagegate_trust::verify_with_key(
                &st.public_key,
                EVENT_NAMESPACE,
                r.hash.as_bytes(),
                &r.registry_sig,
            )
            .map_err(|e| tampered(seq, format!("its registry signature does not verify: {e}")))?;
        }
        apply(st, r, ev, recorded, as_of)?;
        prev = r.hash.clone();
        st.size = seq;
        st.head = r.hash.clone();
    }
    Ok(())
}

/// Applies one event to the state, refusing what the commands never write.
fn apply(
    st: &mut State,
    r: &StoredEvent,
    ev: Event,
    recorded: Timestamp,
    as_of: Option<Date>,
) -> Result<(), RegistryError> {
    let seq = r.seq;
    let known = |st: &State, agent: &str| {
        if st.agents.contains_key(agent) {
            Ok(())
        } else {
            Err(tampered(seq, format!("{agent} was never registered")))
        }
    };
    match ev {
        Event::RegistryCreated { .. } => {
            if seq != 1 {
                return Err(tampered(seq, "a second registry-created event"));
            }
        }
        Event::AgentRegistered {
            agent,
            name,
            people,
        } => {
            if st.agents.contains_key(&agent) {
                return Err(tampered(seq, format!("{agent} registered twice")));
            }
            st.agents.insert(
                agent,
                AgentState {
                    name,
                    people,
                    ..AgentState::default()
                },
            );
        }
        Event::CriteriaLocked {
            agent, digest, by, ..
        } => {
            known(st, &agent)?;
            let a = st.agents.get_mut(&agent).expect("checked");
            if a.lock.is_some() {
                return Err(tampered(
                    seq,
                    format!("a second criteria lock for {agent} (criteria are locked once)"),
                ));
            }
            let Some(locked_at) = as_of else {
                return Err(tampered(seq, "a criteria lock without a date"));
            };
            a.lock_seq = Some(seq);
            a.lock = Some(CriteriaLock {
                digest,
                locked_at,
                by,
                recorded_at: Some(recorded),
                clock_overridden: r.clock == "override",
            });
        }
        Event::ReviewRecorded {
            agent,
            version,
            stage,
            decision,
            digest,
            items,
            review,
        } => {
            known(st, &agent)?;
            let summary = |k: &str| review.pointer(k).and_then(|v| v.as_str()).unwrap_or("");
            if summary("/decision/outcome") != decision
                || summary("/digest") != digest
                || summary("/agent/id") != agent
                || summary("/agent/version") != version
            {
                return Err(tampered(
                    seq,
                    "its decision, digest, agent or version disagrees with the review it carries",
                ));
            }
            let mut from_review: Vec<(u64, String)> = review
                .get("items")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .map(|i| {
                            (
                                i.get("number").and_then(|n| n.as_u64()).unwrap_or(0),
                                i.get("status")
                                    .and_then(|s| s.as_str())
                                    .unwrap_or("")
                                    .to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            from_review.sort();
            let line = from_review
                .iter()
                .map(|(n, s)| format!("{n}:{s}"))
                .collect::<Vec<_>>()
                .join(" ");
            if line != items {
                return Err(tampered(
                    seq,
                    "its item statuses disagree with the review it carries",
                ));
            }
            let review_date = summary("/review_date").to_owned();
            let a = st.agents.get_mut(&agent).expect("checked");
            a.latest_review = Some(review);
            a.reviews.push(HistoryEntry {
                id: seq,
                agent,
                version,
                stage,
                review_date,
                recorded_at: format!(
                    "{}{}",
                    r.recorded_at,
                    if r.clock == "override" {
                        " (STAGEGATE_NOW)"
                    } else {
                        ""
                    }
                ),
                recorded_by: r.actor.clone(),
                decision,
                digest,
                items,
            });
        }
        Event::SignoffRecorded {
            agent,
            role,
            person,
            review_digest,
            ..
        } => {
            known(st, &agent)?;
            st.agents
                .get_mut(&agent)
                .expect("checked")
                .signoffs
                .push(SignoffEntry {
                    seq,
                    role,
                    person,
                    review_digest,
                });
        }
        Event::EvidenceRecorded {
            agent,
            items,
            kind,
            date,
            attachments,
            ..
        } => {
            known(st, &agent)?;
            st.agents
                .get_mut(&agent)
                .expect("checked")
                .evidence
                .push(EvidenceEntry {
                    seq,
                    items,
                    kind,
                    date,
                    recorded_at: r.recorded_at.clone(),
                    by: r.actor.clone(),
                    attachments,
                });
        }
        Event::TokenIssued { token, .. } => {
            if !st.tokens.insert(token.clone()) {
                return Err(tampered(seq, format!("token {token} issued twice")));
            }
        }
        Event::TokenRevoked { token } => {
            if !st.tokens.contains(&token) {
                return Err(tampered(seq, format!("token {token} was never issued")));
            }
        }
        Event::StageChanged {
            agent,
            from,
            to,
            review_seq,
            reason,
            ..
        } => {
            known(st, &agent)?;
            let a = st.agents.get_mut(&agent).expect("checked");
            let current = a.stage.map(|s| s.as_str().to_owned());
            if from != current {
                return Err(tampered(
                    seq,
                    format!(
                        "it moves {agent} from {} but the agent is in {}",
                        from.as_deref().unwrap_or("no stage"),
                        current.as_deref().unwrap_or("no stage")
                    ),
                ));
            }
            let to_stage =
                Stage::parse(&to).ok_or_else(|| tampered(seq, format!("unknown stage {to:?}")))?;
            let resuming = a.stage == Some(Stage::Paused);
            if resuming && Some(to_stage) != a.paused_from {
                return Err(tampered(
                    seq,
                    format!("it resumes {agent} to {to}, not the stage it was paused from"),
                ));
            }
            if a.stage == Some(Stage::Retired) {
                return Err(tampered(
                    seq,
                    format!("{agent} is retired; nothing follows"),
                ));
            }
            let needs_reason = matches!(to_stage, Stage::Paused | Stage::Retired) || resuming;
            if needs_reason && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(tampered(
                    seq,
                    "a pause, resume or retirement without a reason",
                ));
            }
            match to_stage {
                Stage::Pilot => {
                    if a.lock.is_none() {
                        return Err(tampered(seq, "a pilot started without a criteria lock"));
                    }
                    if !(a.stage.is_none() || resuming) {
                        return Err(tampered(seq, format!("{agent} cannot go back to pilot")));
                    }
                }
                Stage::Paused => {
                    if !matches!(a.stage, Some(Stage::Pilot | Stage::Production)) {
                        return Err(tampered(
                            seq,
                            "only a pilot or a production agent is paused",
                        ));
                    }
                    a.paused_from = a.stage;
                }
                Stage::Retired => {
                    if a.stage.is_none() {
                        return Err(tampered(
                            seq,
                            format!("{agent} has no stage to retire from"),
                        ));
                    }
                }
                Stage::Production if resuming => {}
                Stage::Production => {
                    let last = a.reviews.last();
                    let ok = last.is_some_and(|l| {
                        Some(l.id) == review_seq
                            && (l.decision == "Cleared" || l.decision == "Conditional")
                            && l.items.split_whitespace().any(|s| s == "10:pass")
                    });
                    if !ok {
                        return Err(tampered(
                            seq,
                            format!(
                                "it moves {agent} to production without its latest review being Cleared or Conditional and signed"
                            ),
                        ));
                    }
                }
            }
            a.stage = Some(to_stage);
            a.stages.push(StageEvent {
                seq,
                agent,
                stage: to,
                at: r.as_of.clone().unwrap_or_default(),
                recorded_at: r.recorded_at.clone(),
                by: r.actor.clone(),
                review_id: review_seq,
            });
        }
    }
    Ok(())
}
