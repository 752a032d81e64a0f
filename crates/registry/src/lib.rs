//! The registry: one append-only, hash-chained, signed event log in embedded SQLite, from
//! which every agent's stage, criteria lock, reviews and sign-offs are derived.
//!
//! Invariants:
//! - **Every fact is an event.** Agent registered, criteria locked, review recorded (with its
//!   decision, every item status and the whole review JSON), sign-off recorded, stage changed:
//!   one row each in `events`. Nothing else is stored; current state is replayed from the log
//!   ([`State`]), never read from a column that could be edited on its own.
//! - **Chained and signed.** Each event's `hash` is `sha256` over all of its columns and the
//!   previous event's hash ([`event_hash`]); `registry_sig` is the registry key's SSHSIG over
//!   that hash. The first event carries the registry's public key. [`Registry::verify`]
//!   recomputes everything and replays the rules (one lock per agent, production only from a
//!   clearing, signed review), so an edited, inserted, reordered or deleted event is named;
//!   a [`Checkpoint`] kept elsewhere also catches truncation of the newest events and a
//!   registry rebuilt under another key.
//! - **Serialised writers.** Every append runs in one `BEGIN IMMEDIATE` transaction that
//!   re-reads the head, checks the rules against the replayed state and appends: concurrent
//!   commands queue on SQLite's lock (WAL, busy timeout) instead of failing or forking the
//!   chain.
//! - **Honest clock.** Each event records the `--as-of` date it is given *and* the time it
//!   was recorded ([`Clock`]); a recording time taken from `STAGEGATE_NOW` is marked
//!   `override`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checkpoint;
mod event;
mod replay;
mod store;

pub use checkpoint::{Checkpoint, Verification};
pub use event::{Act, AttachmentRef, Clock, Event, SignedAct, StoredEvent, event_hash};
pub use replay::{
    AgentState, EvidenceEntry, HistoryEntry, KillState, SignoffEntry, StageEvent, State,
};
pub use store::{Location, SideWrite, Store, TokenRow};

use checkpoint::check_checkpoint;
use jiff::Timestamp;
use jiff::civil::Date;
use replay::{replay, tampered};

use stagegate_core::decision::Outcome;
use stagegate_core::review::{CriteriaLock, Review};
use stagegate_core::stage::Stage;
use stagegate_trust::{CHECKPOINT_NAMESPACE, EVENT_NAMESPACE, RegistryKey};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A stage change other than pilot start and promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageChange {
    /// Pilot or Production → Paused.
    Pause,
    /// Paused → the stage it was paused from.
    Resume,
    /// Any stage → Retired.
    Retire,
}

impl StageChange {
    /// `paused`, `resumed`, `retired`.
    pub fn done(self) -> &'static str {
        match self {
            StageChange::Pause => "paused",
            StageChange::Resume => "resumed",
            StageChange::Retire => "retired",
        }
    }
}

/// Registry failures.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The database could not be opened, read or written.
    #[error("registry {path}: {source}")]
    Database {
        /// The database file.
        path: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The registry key cannot be read, created or does not match the registry.
    #[error("registry key {path}: {message}")]
    Key {
        /// The key file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The operation breaks a registry rule (e.g. promoting without a Cleared review).
    #[error("{0}")]
    Rule(String),
    /// There is no registry at this path (and the command does not create one).
    #[error("no registry at {0} (a review or `pilot start` creates it)")]
    Missing(String),
    /// The log does not verify: an event was edited, inserted, reordered or deleted.
    #[error("registry does not verify at event #{seq}: {why}")]
    Tampered {
        /// The first event that fails (for truncation: the first one missing).
        seq: i64,
        /// What does not match.
        why: String,
    },
}

/// An open registry.
#[derive(Debug, Clone)]
pub struct Registry {
    store: Store,
    location: Location,
    /// `None` for a PostgreSQL registry opened without `--registry-key`: it can be read and
    /// verified (the public key is in the log) but not written.
    key_path: Option<PathBuf>,
}

impl Registry {
    /// The default key file of an SQLite registry: `registry.key` beside `registry.db`.
    pub fn default_key_path(db: &Path) -> PathBuf {
        db.with_extension("key")
    }

    /// Opens the registry at `location` (and, when `create`, creates an SQLite file with its
    /// folder); applies the backend's migrations. Writes sign with the key at `key_path`
    /// (default for SQLite: [`Registry::default_key_path`]; a PostgreSQL registry has no
    /// default), created with the registry.
    ///
    /// # Errors
    /// [`RegistryError::Missing`] when it does not exist and `create` is false;
    /// [`RegistryError::Database`] when it cannot be opened or migrated;
    /// [`RegistryError::Rule`] for an older format.
    pub async fn open(
        location: &Location,
        create: bool,
        key_path: Option<&Path>,
    ) -> Result<Registry, RegistryError> {
        let store = Store::open(location, create).await?;
        let key_path = key_path.map(Path::to_path_buf).or(match location {
            Location::Sqlite(p) => Some(Self::default_key_path(p)),
            Location::Postgres(_) => None,
        });
        Ok(Registry {
            store,
            location: location.clone(),
            key_path,
        })
    }

    /// The connection pool, for the service tables beside the log (tokens, attachments,
    /// webhooks). The `events` table is written only through this type's methods.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Where the registry is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    fn db(&self, source: sqlx::Error) -> RegistryError {
        RegistryError::Database {
            path: self.location.shown(),
            source,
        }
    }

    fn key_err(&self, message: impl Into<String>) -> RegistryError {
        RegistryError::Key {
            path: self
                .key_path
                .as_ref()
                .map_or_else(|| "(none given)".to_owned(), |p| p.display().to_string()),
            message: message.into(),
        }
    }

    /// Checks the database answers (for readiness probes); the migrations were applied when
    /// the registry was opened.
    ///
    /// # Errors
    /// [`RegistryError::Database`].
    pub async fn ping(&self) -> Result<(), RegistryError> {
        self.store.ping().await.map_err(|e| self.db(e))
    }

    /// Closes the pool (flushing SQLite's WAL).
    pub async fn close(self) {
        self.store.close().await;
    }

    async fn all_rows(&self) -> Result<Vec<StoredEvent>, RegistryError> {
        self.store.rows().await.map_err(|e| self.db(e))
    }

    /// Every event, oldest first, as stored (not verified).
    ///
    /// # Errors
    /// [`RegistryError::Database`].
    pub async fn events(&self) -> Result<Vec<StoredEvent>, RegistryError> {
        self.all_rows().await
    }

    /// Replays the log into [`State`], checking the chain, every hash and the rules (not the
    /// registry signatures: [`Registry::verify`] does).
    ///
    /// # Errors
    /// [`RegistryError::Tampered`] at the first event that does not hold.
    pub async fn state(&self) -> Result<State, RegistryError> {
        replay(&self.all_rows().await?, false)
    }

    /// The replayed state and, per agent, its latest review as recorded (the whole review
    /// JSON, `Review`'s shape), read in one pass over the log.
    ///
    /// # Errors
    /// [`RegistryError::Tampered`], [`RegistryError::Database`].
    pub async fn state_with_reviews(
        &self,
    ) -> Result<(State, BTreeMap<String, serde_json::Value>), RegistryError> {
        let state = replay(&self.all_rows().await?, false)?;
        let latest = state
            .agents
            .iter()
            .filter_map(|(id, a)| Some((id.clone(), a.latest_review.clone()?)))
            .collect();
        Ok((state, latest))
    }

    /// The events after event number `seq`, oldest first, as stored (not verified: extend a
    /// verified [`State`] with them through [`State::extend_verified`]).
    ///
    /// # Errors
    /// [`RegistryError::Database`].
    pub async fn events_after(&self, seq: i64) -> Result<Vec<StoredEvent>, RegistryError> {
        self.store.rows_after(seq).await.map_err(|e| self.db(e))
    }

    /// The newest event number (0 for an empty log): one cheap query.
    ///
    /// # Errors
    /// [`RegistryError::Database`].
    pub async fn size(&self) -> Result<i64, RegistryError> {
        self.store.size().await.map_err(|e| self.db(e))
    }

    /// Verifies the whole log — sequence, chain, hashes, registry signatures, rules — and its
    /// consistency with each kept checkpoint.
    ///
    /// # Errors
    /// [`RegistryError::Tampered`] naming the first event (or checkpoint) that fails.
    pub async fn verify(&self, checkpoints: &[Checkpoint]) -> Result<Verification, RegistryError> {
        let rows = self.all_rows().await?;
        let state = replay(&rows, true)?;
        let key_fingerprint = if state.public_key.is_empty() {
            String::new()
        } else {
            stagegate_trust::public_fingerprint(&state.public_key).unwrap_or_default()
        };
        for c in checkpoints {
            check_checkpoint(c, &rows, &state.public_key, &key_fingerprint)?;
        }
        Ok(Verification {
            events: state.size,
            head: state.head.clone(),
            key_fingerprint,
            checkpoints: checkpoints.len(),
            clock_overrides: rows.iter().filter(|r| r.clock == "override").count() as i64,
            replay_clock: state.replay_clock,
        })
    }

    /// A checkpoint of the current head, signed with the registry key (after a full
    /// verification).
    ///
    /// # Errors
    /// [`RegistryError::Tampered`], [`RegistryError::Key`].
    pub async fn checkpoint(&self) -> Result<Checkpoint, RegistryError> {
        let v = self.verify(&[]).await?;
        if v.events == 0 {
            return Err(RegistryError::Rule(
                "the registry holds no events yet".into(),
            ));
        }
        let key = self.load_key()?;
        if key.fingerprint() != v.key_fingerprint {
            return Err(self.key_err(format!(
                "this key ({}) is not the registry's ({})",
                key.fingerprint(),
                v.key_fingerprint
            )));
        }
        let mut c = Checkpoint {
            key_fingerprint: v.key_fingerprint,
            size: v.events,
            head: v.head,
            signature: String::new(),
        };
        c.signature = key
            .sign(CHECKPOINT_NAMESPACE, c.body().as_bytes())
            .map_err(|e| self.key_err(e.to_string()))?
            .trim_end()
            .to_owned();
        Ok(c)
    }

    /// The key file, or the refusal for a PostgreSQL registry opened without one.
    fn key_file(&self) -> Result<&Path, RegistryError> {
        self.key_path.as_deref().ok_or_else(|| {
            self.key_err(
                "a PostgreSQL registry has no key file by default: give --registry-key or $STAGEGATE_REGISTRY_KEY (keep it where those who can write the database cannot)",
            )
        })
    }

    fn load_key(&self) -> Result<RegistryKey, RegistryError> {
        let text = std::fs::read_to_string(self.key_file()?)
            .map_err(|e| self.key_err(format!("cannot read it: {e}")))?;
        RegistryKey::from_openssh(&text).map_err(|e| self.key_err(e.to_string()))
    }

    /// Loads the key, or creates it (mode 0600, never overwriting) when the registry is new.
    fn load_or_create_key(&self) -> Result<RegistryKey, RegistryError> {
        let key_path = self.key_file()?;
        if key_path.exists() {
            return self.load_key();
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| self.key_err(format!("no randomness: {e}")))?;
        let key = RegistryKey::from_seed(&seed);
        let text = key.to_openssh().map_err(|e| self.key_err(e.to_string()))?;
        if let Some(parent) = key_path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| self.key_err(e.to_string()))?;
        }
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        use std::io::Write;
        match o.open(key_path) {
            Ok(mut f) => {
                f.write_all(text.as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| self.key_err(e.to_string()))?;
                Ok(key)
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.load_key(),
            Err(e) => Err(self.key_err(format!("cannot create it: {e}"))),
        }
    }

    /// Appends the events `decide` returns, in one `BEGIN IMMEDIATE` transaction, after
    /// replaying the log; `decide` sees the replayed state and may refuse.
    async fn append<F>(&self, act: &Act, decide: F) -> Result<i64, RegistryError>
    where
        F: FnOnce(&State, &[StoredEvent]) -> Result<Vec<Event>, RegistryError>,
    {
        self.append_with(act, decide, &[]).await
    }

    /// [`Registry::append`], writing `side` rows of the service tables in the same
    /// transaction (only when events are appended).
    async fn append_with<F>(
        &self,
        act: &Act,
        decide: F,
        side: &[SideWrite],
    ) -> Result<i64, RegistryError>
    where
        F: FnOnce(&State, &[StoredEvent]) -> Result<Vec<Event>, RegistryError>,
    {
        let mut tx = self.store.begin_write().await.map_err(|e| self.db(e))?;
        let rows = tx.rows().await.map_err(|e| self.db(e))?;
        let state = replay(&rows, false)?;
        if !rows.is_empty() && act.clock.overridden && !state.replay_clock {
            return Err(RegistryError::Rule(format!(
                "{} records the machine clock; STAGEGATE_NOW is refused here (it is for test and replay registries, marked as such from their first event)",
                self.location
            )));
        }
        let mut events = decide(&state, &rows)?;
        if events.is_empty() {
            return Ok(state.size);
        }
        let key = if rows.is_empty() {
            let key = self.load_or_create_key()?;
            events.insert(
                0,
                Event::RegistryCreated {
                    public_key: key.public_openssh(),
                },
            );
            key
        } else {
            let key = self.load_key()?;
            if key.public_openssh().split_whitespace().nth(1)
                != state.public_key.split_whitespace().nth(1)
            {
                return Err(self.key_err(format!(
                    "this key ({}) is not the one the registry was created with",
                    key.fingerprint()
                )));
            }
            key
        };
        let mut seq = state.size;
        let mut prev = state.head.clone();
        let mut new = Vec::with_capacity(events.len());
        for ev in events {
            seq += 1;
            let row = self.signed_row(&key, seq, &prev, act, &ev)?;
            prev = row.hash.clone();
            new.push(row);
        }
        // The new events must hold under the same rules as the log they join.
        let mut state = state;
        replay::extend(&mut state, &new, false).map_err(as_rule)?;
        for row in &new {
            tx.insert(row).await.map_err(|e| self.db(e))?;
        }
        for w in side {
            tx.side(w).await.map_err(|e| self.db(e))?;
        }
        tx.commit().await.map_err(|e| self.db(e))?;
        Ok(seq)
    }

    /// Records a rollout's transition for `agent`: a person's (with their signed act, checked
    /// against the allowed-signers file by the caller) or the controller's (`signed: None`).
    /// The log's rules decide whether it may happen now (`stagegate_rollout::Rollout::apply`,
    /// production stage for a start, the act's statement naming the agent's latest rollout or
    /// kill-switch event).
    ///
    /// # Errors
    /// [`RegistryError::Rule`] for a transition the rules refuse; database and key errors.
    pub async fn rollout_change(
        &self,
        agent: &str,
        change: stagegate_rollout::Transition,
        signed: Option<SignedAct>,
        act: &Act,
    ) -> Result<i64, RegistryError> {
        self.append(act, |state, _| {
            if !state.agents.contains_key(agent) {
                return Err(RegistryError::Rule(format!(
                    "{agent} is not in the registry"
                )));
            }
            Ok(vec![Event::RolloutChanged {
                agent: agent.into(),
                change,
                act: signed,
            }])
        })
        .await
    }

    /// Pulls (`disabled`) or restores the agent's kill switch with a person's signed act.
    ///
    /// # Errors
    /// [`RegistryError::Rule`]: pulled twice, restored when not pulled, a drill's restore of
    /// a real kill, a missing reason, an act that is not this one; database and key errors.
    pub async fn set_kill_switch(
        &self,
        agent: &str,
        disabled: bool,
        drill: bool,
        reason: &str,
        signed: SignedAct,
        act: &Act,
    ) -> Result<i64, RegistryError> {
        self.append(act, |state, _| {
            if !state.agents.contains_key(agent) {
                return Err(RegistryError::Rule(format!(
                    "{agent} is not in the registry"
                )));
            }
            Ok(vec![Event::KillSwitchSet {
                agent: agent.into(),
                disabled,
                drill,
                reason: reason.trim().to_owned(),
                act: signed,
            }])
        })
        .await
    }

    /// One stored row: `ev` as event `seq` after `prev`, hashed and signed with `key`.
    fn signed_row(
        &self,
        key: &RegistryKey,
        seq: i64,
        prev: &str,
        act: &Act,
        ev: &Event,
    ) -> Result<StoredEvent, RegistryError> {
        let mut row = StoredEvent {
            seq,
            kind: ev.kind().to_owned(),
            agent_id: ev.agent().map(str::to_owned),
            as_of: act.as_of.map(|d| d.to_string()),
            recorded_at: act.clock.now.to_string(),
            clock: if act.clock.overridden {
                "override"
            } else {
                "system"
            }
            .to_owned(),
            actor: act.actor.clone(),
            body: serde_json::to_string(ev)
                .map_err(|e| RegistryError::Rule(format!("cannot serialise an event: {e}")))?,
            prev_hash: prev.to_owned(),
            hash: String::new(),
            registry_sig: String::new(),
        };
        row.hash = event_hash(&row);
        row.registry_sig = key
            .sign(EVENT_NAMESPACE, row.hash.as_bytes())
            .map_err(|e| self.key_err(e.to_string()))?;
        Ok(row)
    }

    /// Appends many events, each with its own act, in one transaction — for generators and
    /// imports (`crates/server/examples/generate.rs` builds the 10,000-agent benchmark registry
    /// with it). The commands' own checks are not run; instead the new events are replayed
    /// onto the log under the write lock with every rule [`Registry::verify`] applies (one lock
    /// per agent, production only from a clearing signed review, …) and nothing is written if
    /// one fails. A new registry gets its `registry-created` event first. Returns the newest
    /// event number.
    ///
    /// # Errors
    /// [`RegistryError::Tampered`] naming the first event that breaks a rule (nothing written);
    /// [`RegistryError::Rule`] for an overridden clock in a machine-clock registry; key and
    /// database errors.
    pub async fn import(&self, events: &[(Act, Event)]) -> Result<i64, RegistryError> {
        let Some((first_act, _)) = events.first() else {
            return self.size().await;
        };
        let mut tx = self.store.begin_write().await.map_err(|e| self.db(e))?;
        let rows = tx.rows().await.map_err(|e| self.db(e))?;
        let mut state = replay(&rows, false)?;
        let key = if rows.is_empty() {
            self.load_or_create_key()?
        } else {
            let key = self.load_key()?;
            if key.public_openssh().split_whitespace().nth(1)
                != state.public_key.split_whitespace().nth(1)
            {
                return Err(self.key_err("this key is not the one the registry was created with"));
            }
            key
        };
        let created = rows.is_empty().then(|| {
            (
                first_act.clone(),
                Event::RegistryCreated {
                    public_key: key.public_openssh(),
                },
            )
        });
        let mut new = Vec::with_capacity(events.len() + 1);
        let mut seq = state.size;
        let mut prev = state.head.clone();
        for (act, ev) in created.iter().chain(events.iter()) {
            seq += 1;
            let row = self.signed_row(&key, seq, &prev, act, ev)?;
            prev = row.hash.clone();
            new.push(row);
        }
        replay::extend(&mut state, &new, false)?;
        for row in &new {
            tx.insert(row).await.map_err(|e| self.db(e))?;
        }
        tx.commit().await.map_err(|e| self.db(e))?;
        Ok(seq)
    }

    /// The agent's current stage.
    ///
    /// # Errors
    /// [`RegistryError::Tampered`], [`RegistryError::Database`].
    pub async fn stage(&self, agent: &str) -> Result<Option<Stage>, RegistryError> {
        Ok(self.state().await?.agents.get(agent).and_then(|a| a.stage))
    }

    /// The agent's criteria lock, with when it was really recorded.
    ///
    /// # Errors
    /// [`RegistryError::Tampered`], [`RegistryError::Database`].
    pub async fn criteria_lock(&self, agent: &str) -> Result<Option<CriteriaLock>, RegistryError> {
        Ok(self
            .state()
            .await?
            .agents
            .get(agent)
            .and_then(|a| a.lock.clone()))
    }

    /// Starts the pilot: registers the agent, locks its success criteria digest and moves it
    /// to the Pilot stage. Starting again with the same criteria is a no-op (returns false).
    ///
    /// # Errors
    /// [`RegistryError::Rule`] when the agent is already in production or its criteria were
    /// locked with a different digest (re-approval goes through a signed approval record, not
    /// a new lock).
    pub async fn start_pilot(
        &self,
        agent: &str,
        name: &str,
        criteria_digest: &str,
        criteria: serde_json::Value,
        by: &str,
        act: &Act,
    ) -> Result<bool, RegistryError> {
        let mut new = false;
        self.append(act, |state, _| {
            let a = state.agents.get(agent);
            if a.and_then(|a| a.stage) == Some(Stage::Production) {
                return Err(RegistryError::Rule(format!("{agent} is already in production")));
            }
            if let Some(lock) = a.and_then(|a| a.lock.as_ref()) {
                if lock.digest == criteria_digest {
                    return Ok(Vec::new());
                }
                return Err(RegistryError::Rule(format!(
                    "{agent}'s success criteria were locked on {} by {} ({}); they cannot be locked again. \
                     Re-approve the change with a signed approval (`stagegate approve --criteria-change`)",
                    lock.locked_at, lock.by, lock.digest
                )));
            }
            new = true;
            let mut ev = Vec::new();
            if a.is_none() {
                ev.push(Event::AgentRegistered {
                    agent: agent.into(),
                    name: name.into(),
                    people: None,
                });
            }
            ev.push(Event::CriteriaLocked {
                agent: agent.into(),
                digest: criteria_digest.into(),
                criteria: criteria.clone(),
                by: by.into(),
            });
            ev.push(Event::StageChanged {
                agent: agent.into(),
                from: None,
                to: Stage::Pilot.as_str().into(),
                review_seq: None,
                signers: Vec::new(),
                reason: None,
            });
            Ok(ev)
        })
        .await?;
        Ok(new)
    }

    /// Records a review (decision, items and the whole review JSON) as one event. Returns its
    /// event number.
    ///
    /// # Errors
    /// [`RegistryError::Database`], [`RegistryError::Key`], [`RegistryError::Tampered`];
    /// nothing is written on error.
    pub async fn record_review(&self, review: &Review, act: &Act) -> Result<i64, RegistryError> {
        let value = serde_json::to_value(review)
            .map_err(|e| RegistryError::Rule(format!("cannot serialise the review: {e}")))?;
        self.record_review_json(&value, act).await
    }

    /// [`Registry::record_review`] for a review as JSON (`Review`'s shape), e.g. pushed to the
    /// server: the event's summary columns are read from it, and replay checks them against it.
    ///
    /// # Errors
    /// [`RegistryError::Rule`] when it lacks the agent's id, name, version, digest or
    /// decision; otherwise as [`Registry::record_review`].
    pub async fn record_review_json(
        &self,
        value: &serde_json::Value,
        act: &Act,
    ) -> Result<i64, RegistryError> {
        let field = |p: &str| {
            value
                .pointer(p)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| RegistryError::Rule(format!("the review has no {p}")))
        };
        let (id, name, version) = (
            field("/agent/id")?,
            field("/agent/name")?,
            field("/agent/version")?,
        );
        let (digest, decision) = (field("/digest")?, field("/decision/outcome")?);
        let mut items: Vec<(u64, String)> = value
            .get("items")
            .and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|i| {
                        (
                            i.get("number")
                                .and_then(serde_json::Value::as_u64)
                                .unwrap_or(0),
                            i.get("status")
                                .and_then(serde_json::Value::as_str)
                                .unwrap_or("")
                                .to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        items.sort();
        let items = items
            .iter()
            .map(|(n, s)| format!("{n}:{s}"))
            .collect::<Vec<_>>()
            .join(" ");
        self.append(act, |state, _| {
            let a = state.agents.get(&id);
            let mut ev = Vec::new();
            if a.is_none() {
                ev.push(Event::AgentRegistered {
                    agent: id.clone(),
                    name: name.clone(),
                    people: None,
                });
            }
            ev.push(Event::ReviewRecorded {
                agent: id.clone(),
                version: version.clone(),
                stage: a.and_then(|a| a.stage).map(|s| s.as_str().to_owned()),
                decision: decision.clone(),
                digest: digest.clone(),
                items: items.clone(),
                review: value.clone(),
            });
            Ok(ev)
        })
        .await
    }

    /// Records a verified sign-off. Returns its event number.
    ///
    /// # Errors
    /// As [`Registry::record_review`].
    #[allow(clippy::too_many_arguments)]
    pub async fn record_signoff(
        &self,
        agent: &str,
        agent_name: &str,
        role: &str,
        person: &str,
        review_digest: &str,
        statement: &str,
        signature: &str,
        key_fingerprint: &str,
        act: &Act,
    ) -> Result<i64, RegistryError> {
        self.append(act, |state, _| {
            let mut ev = Vec::new();
            if !state.agents.contains_key(agent) {
                ev.push(Event::AgentRegistered {
                    agent: agent.into(),
                    name: agent_name.into(),
                    people: None,
                });
            }
            ev.push(Event::SignoffRecorded {
                agent: agent.into(),
                role: role.into(),
                person: person.into(),
                review_digest: review_digest.into(),
                statement: statement.into(),
                signature: signature.into(),
                key_fingerprint: key_fingerprint.into(),
            });
            Ok(ev)
        })
        .await
    }

    /// Records an evidence record pushed to the server, with its attachments' bytes stored
    /// content-addressed in the same transaction (a blob already stored is kept once).
    /// `record` is the record's JSON (`EvidenceRecord`'s shape, validated by the caller);
    /// `attachments` pairs each reference with its bytes, whose sha256 must match. Returns the
    /// event number.
    ///
    /// # Errors
    /// [`RegistryError::Rule`] when the agent is not registered or an attachment's bytes do
    /// not hash to its reference; otherwise as [`Registry::record_review`].
    pub async fn record_evidence(
        &self,
        agent: &str,
        record: &serde_json::Value,
        attachments: Vec<(AttachmentRef, Vec<u8>)>,
        act: &Act,
    ) -> Result<i64, RegistryError> {
        let mut side = Vec::new();
        let mut refs = Vec::new();
        for (r, bytes) in attachments {
            let got = stagegate_core::digest::sha256_hex(&bytes);
            if got != r.sha256 || r.size != bytes.len() as u64 {
                return Err(RegistryError::Rule(format!(
                    "attachment {}: its bytes hash to {got} ({} bytes), not the {} ({} bytes) it claims",
                    r.path,
                    bytes.len(),
                    r.sha256,
                    r.size
                )));
            }
            side.push(SideWrite::Blob {
                sha256: got,
                content: bytes,
            });
            refs.push(r);
        }
        let field = |k: &str| record.get(k).cloned().unwrap_or(serde_json::Value::Null);
        let items: Vec<u8> = serde_json::from_value(field("items")).unwrap_or_default();
        let kind = field("kind").as_str().unwrap_or_default().to_owned();
        let date = field("date").as_str().unwrap_or_default().to_owned();
        self.append_with(
            act,
            |state, _| {
                if !state.agents.contains_key(agent) {
                    return Err(RegistryError::Rule(format!(
                        "{agent} is not in the registry (register it, or start its pilot, first)"
                    )));
                }
                Ok(vec![Event::EvidenceRecorded {
                    agent: agent.into(),
                    items,
                    kind,
                    date,
                    record: record.clone(),
                    attachments: refs,
                }])
            },
            &side,
        )
        .await
    }

    /// Registers an agent (its display name and, from a card, its people) if it is not in the
    /// registry yet. Returns whether it was new.
    ///
    /// # Errors
    /// As [`Registry::record_review`].
    pub async fn register_agent(
        &self,
        agent: &str,
        name: &str,
        people: Option<serde_json::Value>,
        act: &Act,
    ) -> Result<bool, RegistryError> {
        let mut new = false;
        self.append(act, |state, _| {
            if state.agents.contains_key(agent) {
                return Ok(Vec::new());
            }
            new = true;
            Ok(vec![Event::AgentRegistered {
                agent: agent.into(),
                name: name.into(),
                people: people.clone(),
            }])
        })
        .await?;
        Ok(new)
    }

    /// Issues an API token: the `token-issued` event (no secret) and the `api_tokens` row
    /// (`token.hash` is the argon2 hash of the secret) in one transaction. Returns the event
    /// number.
    ///
    /// # Errors
    /// [`RegistryError::Rule`] for an id already issued; otherwise as
    /// [`Registry::record_review`].
    pub async fn issue_token(&self, token: &TokenRow, act: &Act) -> Result<i64, RegistryError> {
        self.append_with(
            act,
            |state, _| {
                if state.tokens.contains(&token.id) {
                    return Err(RegistryError::Rule(format!(
                        "token {} was already issued",
                        token.id
                    )));
                }
                Ok(vec![Event::TokenIssued {
                    token: token.id.clone(),
                    person: token.person.clone(),
                    roles: token.roles.clone(),
                    agents: token.agents.clone(),
                    expires: token.expires_at.clone(),
                }])
            },
            &[SideWrite::Token(token.clone())],
        )
        .await
    }

    /// Revokes an API token (event and row, one transaction). Returns the event number.
    ///
    /// # Errors
    /// [`RegistryError::Rule`] for a token never issued or already revoked.
    pub async fn revoke_token(&self, id: &str, act: &Act) -> Result<i64, RegistryError> {
        let row = self.store.token(id).await.map_err(|e| self.db(e))?;
        match row {
            None => return Err(RegistryError::Rule(format!("no token {id}"))),
            Some(r) if r.revoked_at.is_some() => {
                return Err(RegistryError::Rule(format!(
                    "token {id} was already revoked at {}",
                    r.revoked_at.unwrap_or_default()
                )));
            }
            Some(_) => {}
        }
        self.append_with(
            act,
            |state, _| {
                if !state.tokens.contains(id) {
                    return Err(RegistryError::Rule(format!("no token {id} in the log")));
                }
                Ok(vec![Event::TokenRevoked { token: id.into() }])
            },
            &[SideWrite::Revoke {
                id: id.into(),
                at: act.clock.now.to_string(),
            }],
        )
        .await
    }

    /// Pauses, resumes or retires an agent (seed 001 item 9: the kill switch and its decision
    /// authority): a pilot or production agent is paused; a paused one resumes to the stage it
    /// was paused from; any agent with a stage is retired, for good. Every change carries its
    /// reason. Returns the event number.
    ///
    /// # Errors
    /// [`RegistryError::Rule`] for a change its stage does not allow or an empty reason.
    pub async fn change_stage(
        &self,
        agent: &str,
        change: StageChange,
        reason: &str,
        act: &Act,
    ) -> Result<i64, RegistryError> {
        if reason.trim().is_empty() {
            return Err(RegistryError::Rule("give the reason (--reason)".into()));
        }
        self.append(act, |state, _| {
            let a = state
                .agents
                .get(agent)
                .ok_or_else(|| RegistryError::Rule(format!("{agent} is not in the registry")))?;
            let from = a.stage;
            let to = match (change, from) {
                (StageChange::Pause, Some(Stage::Pilot | Stage::Production)) => Stage::Paused,
                (StageChange::Resume, Some(Stage::Paused)) => a.paused_from.ok_or_else(|| {
                    RegistryError::Rule(format!("{agent} has no stage to resume to"))
                })?,
                (StageChange::Retire, Some(s)) if s != Stage::Retired => Stage::Retired,
                _ => {
                    return Err(RegistryError::Rule(format!(
                        "{agent} is {}; it cannot be {}",
                        from.map_or("without a stage", |s| s.as_str()),
                        change.done()
                    )));
                }
            };
            Ok(vec![Event::StageChanged {
                agent: agent.into(),
                from: from.map(|s| s.as_str().to_owned()),
                to: to.as_str().into(),
                review_seq: None,
                signers: Vec::new(),
                reason: Some(reason.trim().to_owned()),
            }])
        })
        .await
    }

    /// Reviews of one agent (or all), oldest first.
    ///
    /// # Errors
    /// [`RegistryError::Tampered`], [`RegistryError::Database`].
    pub async fn history(&self, agent: Option<&str>) -> Result<Vec<HistoryEntry>, RegistryError> {
        let state = self.state().await?;
        let mut out: Vec<HistoryEntry> = state
            .agents
            .iter()
            .filter(|(id, _)| agent.is_none_or(|a| a == id.as_str()))
            .flat_map(|(_, a)| a.reviews.iter().cloned())
            .collect();
        out.sort_by_key(|h| h.id);
        Ok(out)
    }

    /// Stage events of one agent, oldest first.
    ///
    /// # Errors
    /// [`RegistryError::Tampered`], [`RegistryError::Database`].
    pub async fn stage_events(&self, agent: &str) -> Result<Vec<StageEvent>, RegistryError> {
        Ok(self
            .state()
            .await?
            .agents
            .get(agent)
            .map(|a| a.stages.clone())
            .unwrap_or_default())
    }

    /// Moves the agent from Pilot to Production on the strength of its latest review, which
    /// must be Cleared or Conditional with item 10 ✅. Before writing, the whole log is
    /// verified (registry signatures and the kept `checkpoints` included) and `resign`
    /// re-verifies the sign-off signatures inside the stored review, returning the signers' key
    /// fingerprints. `resign` is also given, for a signature's armored text, the UTC day it was
    /// first on record: its earliest sign-off event for this agent, or the day the review was
    /// recorded, whichever is earlier (a key must be valid then). Returns the review's event
    /// number.
    ///
    /// # Errors
    /// [`RegistryError::Tampered`] when the log does not verify; [`RegistryError::Rule`] when
    /// the agent is not in Pilot, has no review, its latest review does not clear it, or its
    /// signatures do not verify.
    pub async fn promote<F>(
        &self,
        agent: &str,
        act: &Act,
        checkpoints: &[Checkpoint],
        resign: F,
    ) -> Result<i64, RegistryError>
    where
        F: FnOnce(&serde_json::Value, &dyn Fn(&str) -> Date) -> Result<Vec<String>, String>,
    {
        // The full verification (signatures and kept checkpoints too) before taking the write
        // lock; `append` replays again under the lock, and a change in between shows as a
        // different head.
        let verified = self.verify(checkpoints).await?;
        let mut review_id = 0;
        self.append(act, |state, rows| {
            if state.head != verified.head {
                return Err(RegistryError::Rule(
                    "the registry changed while promoting; run promote again".into(),
                ));
            }
            let a = state.agents.get(agent);
            match a.and_then(|a| a.stage) {
                Some(Stage::Pilot) => {}
                Some(Stage::Production) => {
                    return Err(RegistryError::Rule(format!("{agent} is already in production")));
                }
                Some(s @ (Stage::Paused | Stage::Retired)) => {
                    return Err(RegistryError::Rule(format!(
                        "{agent} is {}; only a pilot is promoted",
                        s.as_str()
                    )));
                }
                None => {
                    return Err(RegistryError::Rule(format!(
                        "{agent} is not in the Pilot stage (run `stagegate pilot start` when the pilot begins)"
                    )));
                }
            }
            let Some(last) = a.and_then(|a| a.reviews.last()) else {
                return Err(RegistryError::Rule(format!("{agent} has no review in the registry")));
            };
            let id = last.id;
            let signed = last.items.split_whitespace().any(|s| s == "10:pass");
            let clears = last.decision == Outcome::Cleared.as_str()
                || last.decision == Outcome::Conditional.as_str();
            if !clears || !signed {
                return Err(RegistryError::Rule(format!(
                    "{agent}'s latest review (event #{id}) is {}{}; only a Cleared or Conditional review with valid sign-offs moves it to production",
                    last.decision,
                    if signed { "" } else { " without valid sign-offs" }
                )));
            }
            // The review must come after the lock it was judged against, be the latest by
            // date as well as by recording, and precede the promotion.
            if a.and_then(|a| a.lock_seq).is_none_or(|l| l > id) {
                return Err(RegistryError::Rule(format!(
                    "{agent}'s latest review (event #{id}) was recorded before its criteria were locked; review again now that they are"
                )));
            }
            if let Some(later) = a
                .map(|a| a.reviews.as_slice())
                .unwrap_or_default()
                .iter()
                .find(|r| r.review_date > last.review_date)
            {
                return Err(RegistryError::Rule(format!(
                    "{agent}'s latest review (event #{id}) is dated {}, before the review of event #{} dated {} ({}); an earlier-dated review cannot overrule a later one",
                    last.review_date, later.id, later.review_date, later.decision
                )));
            }
            if act.as_of.is_some_and(|d| d.to_string() < last.review_date) {
                return Err(RegistryError::Rule(format!(
                    "promotion dated {} is before the review it rests on ({})",
                    act.as_of.map(|d| d.to_string()).unwrap_or_default(),
                    last.review_date
                )));
            }
            let row = &rows[(id - 1) as usize];
            let review = match serde_json::from_str::<Event>(&row.body) {
                Ok(Event::ReviewRecorded { review, .. }) => review,
                _ => {
                    return Err(RegistryError::Tampered {
                        seq: id,
                        why: "not a review event".into(),
                    });
                }
            };
            // When each signature was first on record: its sign-off event, else the review
            // that carries it.
            let day = |t: &str| {
                t.parse::<Timestamp>()
                    .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
                    .ok()
            };
            let review_day = day(&row.recorded_at).ok_or_else(|| tampered(id, "its recorded_at is not a timestamp"))?;
            let mut first_seen: BTreeMap<String, Date> = BTreeMap::new();
            for r in rows.iter().filter(|r| r.kind == "signoff-recorded" && r.agent_id.as_deref() == Some(agent)) {
                if let (Ok(Event::SignoffRecorded { signature, .. }), Some(d)) =
                    (serde_json::from_str::<Event>(&r.body), day(&r.recorded_at))
                {
                    first_seen.entry(signature.trim().to_owned()).or_insert(d);
                }
            }
            let recorded = |sig: &str| {
                first_seen
                    .get(sig.trim())
                    .copied()
                    .map_or(review_day, |d| d.min(review_day))
            };
            let signers = resign(&review, &recorded).map_err(|why| {
                RegistryError::Rule(format!(
                    "{agent}'s latest review (event #{id}) cannot promote: its sign-offs do not verify ({why})"
                ))
            })?;
            review_id = id;
            Ok(vec![Event::StageChanged {
                agent: agent.into(),
                from: Some(Stage::Pilot.as_str().into()),
                to: Stage::Production.as_str().into(),
                review_seq: Some(id),
                signers,
                reason: None,
            }])
        })
        .await?;
        Ok(review_id)
    }
}

/// A rule broken by an event being written is the writer's error, not tampering.
fn as_rule(e: RegistryError) -> RegistryError {
    match e {
        RegistryError::Tampered { why, .. } => RegistryError::Rule(why),
        other => other,
    }
}
