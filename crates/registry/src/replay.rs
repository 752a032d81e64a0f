//! Replaying the log: the state every answer is derived from ([`State`]), rebuilt event by
//! event with the chain, the hashes, the clock mode and the rules checked on the way.

use crate::RegistryError;
use crate::event::SignedAct;
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
    /// The latest rollout (a completed or aborted one stays until the next starts).
    pub rollout: Option<stagegate_rollout::Rollout>,
    /// The kill switch, when pulled.
    pub kill: Option<KillState>,
    /// The agent's latest rollout or kill-switch event (0 before any): a signed act names it.
    pub act_seq: i64,
}

/// A pulled kill switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KillState {
    /// Event number.
    pub seq: i64,
    /// Why.
    pub reason: String,
    /// Who.
    pub person: String,
    /// Pulled by a drill.
    pub drill: bool,
    /// When (RFC 3339).
    pub at: String,
    /// The agent's latest rollout or kill-switch event before the pull (a drill's one act
    /// signs the pull and the restore, so both name it).
    pub after_event: i64,
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
    /// Ids of the revoked ones.
    pub revoked_tokens: BTreeSet<String>,
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
            st.revoked_tokens.insert(token);
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
            if matches!(to_stage, Stage::Retired)
                && let Some(r) = a.rollout.as_ref().filter(|r| r.is_active())
            {
                return Err(tampered(
                    seq,
                    format!(
                        "{agent} is retired during a {} rollout; abort it first",
                        r.status_name()
                    ),
                ));
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
        Event::RolloutChanged { agent, change, act } => {
            known(st, &agent)?;
            let a = st.agents.get_mut(&agent).expect("checked");
            check_act(seq, &agent, a, act.as_ref(), &change)?;
            if let stagegate_rollout::Transition::Start { .. } = change {
                if a.stage != Some(Stage::Production) {
                    return Err(tampered(
                        seq,
                        format!(
                            "a rollout of {agent} started in {}, not production (promote first)",
                            a.stage.map_or("no stage", |s| s.as_str())
                        ),
                    ));
                }
                if a.rollout.as_ref().is_some_and(|r| r.is_active()) {
                    return Err(tampered(
                        seq,
                        format!("a second rollout of {agent} started"),
                    ));
                }
                a.rollout = Some(
                    stagegate_rollout::Rollout::start(&change, recorded, seq)
                        .map_err(|e| tampered(seq, e.0))?,
                );
            } else {
                let r = a.rollout.as_mut().ok_or_else(|| {
                    tampered(
                        seq,
                        format!("{agent} has no rollout to {}", change.action()),
                    )
                })?;
                r.apply(&change, recorded, seq)
                    .map_err(|e| tampered(seq, e.0))?;
            }
            a.act_seq = seq;
        }
        Event::KillSwitchSet {
            agent,
            disabled,
            drill,
            reason,
            act,
        } => {
            known(st, &agent)?;
            let a = st.agents.get_mut(&agent).expect("checked");
            let expected = match (disabled, drill) {
                (_, true) => "drill",
                (true, false) => "kill",
                (false, false) => "restore",
            };
            if act.act != expected || !act.statement.contains(&format!("\nact: {expected}\n")) {
                return Err(tampered(
                    seq,
                    format!(
                        "a kill-switch event signed as {} ({expected} expected)",
                        act.act
                    ),
                ));
            }
            match (&a.kill, disabled) {
                (Some(_), true) => {
                    return Err(tampered(
                        seq,
                        format!("{agent}'s kill switch is already pulled"),
                    ));
                }
                (None, false) => {
                    return Err(tampered(
                        seq,
                        format!("{agent}'s kill switch is not pulled: nothing to restore"),
                    ));
                }
                (Some(k), false) if k.drill != drill => {
                    return Err(tampered(
                        seq,
                        "a drill restores only its own pull, and only a drill restores it",
                    ));
                }
                _ => {}
            }
            if reason.trim().is_empty() {
                return Err(tampered(seq, "a kill-switch event without a reason"));
            }
            let after = match (&a.kill, disabled, drill) {
                (Some(k), false, true) => k.after_event,
                _ => a.act_seq,
            };
            check_statement(seq, &agent, after, &act, None)?;
            a.kill = disabled.then(|| KillState {
                seq,
                reason,
                person: act.person.clone(),
                drill,
                at: r.recorded_at.clone(),
                after_event: a.act_seq,
            });
            a.act_seq = seq;
        }
    }
    Ok(())
}

/// A person's act must sign the statement rebuilt from the event: the agent, the act, the plan
/// (start), the agent's latest rollout or kill-switch event before it, the person and a date.
/// A change without an act must be one the controller makes: a rollback, a pause or an
/// automatic advance, each with the judgements behind it.
fn check_act(
    seq: i64,
    agent: &str,
    a: &AgentState,
    act: Option<&SignedAct>,
    change: &stagegate_rollout::Transition,
) -> Result<(), RegistryError> {
    use stagegate_rollout::Transition as T;
    let Some(act) = act else {
        let auto_advance = a
            .rollout
            .as_ref()
            .and_then(|r| r.current())
            .is_some_and(|p| p.advance == stagegate_rollout::plan::Advance::Auto);
        return match change {
            T::Rollback { judgements, .. } | T::Pause { judgements, .. }
                if !judgements.is_empty() =>
            {
                Ok(())
            }
            T::Advance { judgements, .. } if auto_advance && !judgements.is_empty() => Ok(()),
            _ => Err(tampered(
                seq,
                format!(
                    "a rollout {} without a person's signed act",
                    change.action()
                ),
            )),
        };
    };
    if matches!(change, T::Rollback { .. }) {
        return Err(tampered(
            seq,
            "a rollback is the controller's, not a person's act",
        ));
    }
    if act.act != change.action() {
        return Err(tampered(
            seq,
            format!("a rollout {} signed as {}", change.action(), act.act),
        ));
    }
    let digest = match change {
        T::Start { plan_digest, .. } => Some(plan_digest.as_str()),
        _ => None,
    };
    check_statement(seq, agent, a.act_seq, act, digest)
}

/// The act's statement must be the one rebuilt from the event and the state before it.
fn check_statement(
    seq: i64,
    agent: &str,
    after_event: i64,
    act: &SignedAct,
    plan_digest: Option<&str>,
) -> Result<(), RegistryError> {
    use stagegate_core::signing::{RolloutAct, rollout_act_statement};
    let kind = RolloutAct::parse(&act.act)
        .ok_or_else(|| tampered(seq, format!("unknown act {:?}", act.act)))?;
    let field = |name: &str| {
        act.statement
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_default()
            .to_owned()
    };
    let date: jiff::civil::Date = field("date")
        .parse()
        .map_err(|_| tampered(seq, "the act's statement has no date"))?;
    let rebuilt = rollout_act_statement(
        agent,
        kind,
        plan_digest,
        after_event,
        &field("reason"),
        &act.person,
        date,
    );
    if rebuilt != act.statement {
        return Err(tampered(
            seq,
            format!(
                "the signed statement is not this act's (agent, act, plan, after-event {after_event} or person differ)"
            ),
        ));
    }
    Ok(())
}
