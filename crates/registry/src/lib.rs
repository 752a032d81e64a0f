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

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use stagegate_core::decision::Outcome;
use stagegate_core::digest::sha256_tagged;
use stagegate_core::review::{CriteriaLock, Review};
use stagegate_core::stage::Stage;
use stagegate_trust::{CHECKPOINT_NAMESPACE, EVENT_NAMESPACE, RegistryKey};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The schema, applied when the registry is created (idempotent).
const SCHEMA: &str = include_str!("schema.sql");
/// `PRAGMA user_version` of this schema.
const SCHEMA_VERSION: i64 = 2;

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
    },
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
        }
    }

    /// The `agent_id` column.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Event::RegistryCreated { .. } => None,
            Event::AgentRegistered { agent, .. }
            | Event::CriteriaLocked { agent, .. }
            | Event::ReviewRecorded { agent, .. }
            | Event::SignoffRecorded { agent, .. }
            | Event::StageChanged { agent, .. } => Some(agent),
        }
    }
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
}

/// What `verify` established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Events verified.
    pub events: i64,
    /// Head hash.
    pub head: String,
    /// `SHA256:…` of the registry key.
    pub key_fingerprint: String,
    /// Checkpoints the log is consistent with.
    pub checkpoints: usize,
    /// Events whose recording time came from `STAGEGATE_NOW`.
    pub clock_overrides: i64,
    /// Whether this is a replay registry (created under `STAGEGATE_NOW`; see
    /// [`State::replay_clock`]).
    pub replay_clock: bool,
}

/// A signed statement of the log's size and head (Certificate Transparency's signed tree head,
/// for a hash chain), to keep outside the registry. Its text form:
///
/// ```text
/// stagegate registry checkpoint v1
/// key: SHA256:…
/// size: 42
/// head: sha256:…
/// -----BEGIN SSH SIGNATURE-----
/// …
/// -----END SSH SIGNATURE-----
/// ```
///
/// The signature is the registry key's SSHSIG (namespace `stagegate-checkpoint`) over the
/// four lines before it, so `ssh-keygen -Y check-novalidate` can check it as well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    /// `SHA256:…` of the registry key.
    pub key_fingerprint: String,
    /// Events in the log.
    pub size: i64,
    /// Hash of event `size`.
    pub head: String,
    /// Armored SSHSIG over [`Checkpoint::body`].
    pub signature: String,
}

impl Checkpoint {
    /// The signed text.
    pub fn body(&self) -> String {
        format!(
            "stagegate registry checkpoint v1\nkey: {}\nsize: {}\nhead: {}\n",
            self.key_fingerprint, self.size, self.head
        )
    }

    /// Body and signature, as printed.
    pub fn to_text(&self) -> String {
        format!("{}{}\n", self.body(), self.signature.trim_end())
    }

    /// Reads the text form.
    ///
    /// # Errors
    /// A sentence naming the line that is wrong.
    pub fn parse(text: &str) -> Result<Checkpoint, String> {
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some("stagegate registry checkpoint v1") {
            return Err("line 1: expected `stagegate registry checkpoint v1`".into());
        }
        let mut field = |n: usize, name: &str| -> Result<String, String> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(&format!("{name}: ")))
                .map(|v| v.trim().to_owned())
                .ok_or_else(|| format!("line {n}: expected `{name}: …`"))
        };
        let key_fingerprint = field(2, "key")?;
        let size = field(3, "size")?
            .parse::<i64>()
            .map_err(|_| "line 3: size is not a number".to_owned())?;
        let head = field(4, "head")?;
        let signature: String = lines.collect::<Vec<_>>().join("\n").trim_end().to_owned();
        if !signature.contains("BEGIN SSH SIGNATURE") {
            return Err("line 5: expected the SSH signature".into());
        }
        Ok(Checkpoint {
            key_fingerprint,
            size,
            head,
            signature,
        })
    }
}

/// An open registry.
#[derive(Debug, Clone)]
pub struct Registry {
    pool: SqlitePool,
    path: PathBuf,
    key_path: PathBuf,
}

impl Registry {
    /// The default key file of a registry: `registry.key` beside `registry.db`.
    pub fn default_key_path(db: &Path) -> PathBuf {
        db.with_extension("key")
    }

    /// Opens (and creates, with its folder, when `create`) the database at `path`. Writes
    /// sign with the key at `key_path` (default [`Registry::default_key_path`]), created with
    /// the registry.
    ///
    /// # Errors
    /// [`RegistryError::Database`]; [`RegistryError::Rule`] when it does not exist and
    /// `create` is false, or when it is an older format.
    pub async fn open(
        path: &Path,
        create: bool,
        key_path: Option<&Path>,
    ) -> Result<Registry, RegistryError> {
        if !create && !path.exists() {
            return Err(RegistryError::Missing(path.display().to_string()));
        }
        if create
            && let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| RegistryError::Database {
                path: path.display().to_string(),
                source: sqlx::Error::Io(e),
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create)
            .foreign_keys(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(60));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(|source| RegistryError::Database {
                path: path.display().to_string(),
                source,
            })?;
        let reg = Registry {
            pool,
            path: path.to_path_buf(),
            key_path: key_path
                .map(Path::to_path_buf)
                .unwrap_or_else(|| Self::default_key_path(path)),
        };
        let old: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'reviews'",
        )
        .fetch_optional(&reg.pool)
        .await
        .map_err(|e| reg.db(e))?;
        if old.is_some() {
            return Err(RegistryError::Rule(format!(
                "{} is a version 1 registry (separate tables, only reviews chained); this stagegate keeps every fact in one signed event log. Start a new registry and re-run `pilot start` and the reviews",
                path.display()
            )));
        }
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&reg.pool)
            .await
            .map_err(|e| reg.db(e))?;
        if version != SCHEMA_VERSION {
            if version != 0 {
                return Err(RegistryError::Rule(format!(
                    "{} has schema version {version}; this stagegate reads version {SCHEMA_VERSION}",
                    path.display()
                )));
            }
            let mut tx = reg
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(|e| reg.db(e))?;
            sqlx::raw_sql(SCHEMA)
                .execute(&mut *tx)
                .await
                .map_err(|e| reg.db(e))?;
            tx.commit().await.map_err(|e| reg.db(e))?;
        }
        Ok(reg)
    }

    fn db(&self, source: sqlx::Error) -> RegistryError {
        RegistryError::Database {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn key_err(&self, message: impl Into<String>) -> RegistryError {
        RegistryError::Key {
            path: self.key_path.display().to_string(),
            message: message.into(),
        }
    }

    /// Closes the pool, flushing the WAL.
    pub async fn close(self) {
        self.pool.close().await;
    }

    async fn rows<'e, E>(&self, exec: E) -> Result<Vec<StoredEvent>, RegistryError>
    where
        E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
    {
        let rows = sqlx::query(
            "SELECT seq, kind, agent_id, as_of, recorded_at, clock, actor, body, prev_hash, hash, registry_sig FROM events ORDER BY seq",
        )
        .fetch_all(exec)
        .await
        .map_err(|e| self.db(e))?;
        Ok(rows
            .into_iter()
            .map(|r| StoredEvent {
                seq: r.get(0),
                kind: r.get(1),
                agent_id: r.get(2),
                as_of: r.get(3),
                recorded_at: r.get(4),
                clock: r.get(5),
                actor: r.get(6),
                body: r.get(7),
                prev_hash: r.get(8),
                hash: r.get(9),
                registry_sig: r.get(10),
            })
            .collect())
    }

    /// Every event, oldest first, as stored (not verified).
    ///
    /// # Errors
    /// [`RegistryError::Database`].
    pub async fn events(&self) -> Result<Vec<StoredEvent>, RegistryError> {
        self.rows(&self.pool).await
    }

    /// Replays the log into [`State`], checking the chain, every hash and the rules (not the
    /// registry signatures: [`Registry::verify`] does).
    ///
    /// # Errors
    /// [`RegistryError::Tampered`] at the first event that does not hold.
    pub async fn state(&self) -> Result<State, RegistryError> {
        replay(&self.rows(&self.pool).await?, false)
    }

    /// Verifies the whole log — sequence, chain, hashes, registry signatures, rules — and its
    /// consistency with each kept checkpoint.
    ///
    /// # Errors
    /// [`RegistryError::Tampered`] naming the first event (or checkpoint) that fails.
    pub async fn verify(&self, checkpoints: &[Checkpoint]) -> Result<Verification, RegistryError> {
        let rows = self.rows(&self.pool).await?;
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

    fn load_key(&self) -> Result<RegistryKey, RegistryError> {
        let text = std::fs::read_to_string(&self.key_path)
            .map_err(|e| self.key_err(format!("cannot read it: {e}")))?;
        RegistryKey::from_openssh(&text).map_err(|e| self.key_err(e.to_string()))
    }

    /// Loads the key, or creates it (mode 0600, never overwriting) when the registry is new.
    fn load_or_create_key(&self) -> Result<RegistryKey, RegistryError> {
        if self.key_path.exists() {
            return self.load_key();
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| self.key_err(format!("no randomness: {e}")))?;
        let key = RegistryKey::from_seed(&seed);
        let text = key.to_openssh().map_err(|e| self.key_err(e.to_string()))?;
        if let Some(parent) = self.key_path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| self.key_err(e.to_string()))?;
        }
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        use std::io::Write;
        match o.open(&self.key_path) {
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
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.db(e))?;
        let rows = self.rows(&mut *tx).await?;
        let state = replay(&rows, false)?;
        if !rows.is_empty() && act.clock.overridden && !state.replay_clock {
            return Err(RegistryError::Rule(format!(
                "{} records the machine clock; STAGEGATE_NOW is refused here (it is for test and replay registries, marked as such from their first event)",
                self.path.display()
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
        for ev in events {
            seq += 1;
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
                body: serde_json::to_string(&ev)
                    .map_err(|e| RegistryError::Rule(format!("cannot serialise an event: {e}")))?,
                prev_hash: prev.clone(),
                hash: String::new(),
                registry_sig: String::new(),
            };
            row.hash = event_hash(&row);
            row.registry_sig = key
                .sign(EVENT_NAMESPACE, row.hash.as_bytes())
                .map_err(|e| self.key_err(e.to_string()))?;
            sqlx::query(
                "INSERT INTO events (seq, kind, agent_id, as_of, recorded_at, clock, actor, body, prev_hash, hash, registry_sig)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .bind(row.seq)
            .bind(&row.kind)
            .bind(&row.agent_id)
            .bind(&row.as_of)
            .bind(&row.recorded_at)
            .bind(&row.clock)
            .bind(&row.actor)
            .bind(&row.body)
            .bind(&row.prev_hash)
            .bind(&row.hash)
            .bind(&row.registry_sig)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
            prev = row.hash;
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
        self.append(act, |state, _| {
            let a = state.agents.get(&review.agent.id);
            let mut ev = Vec::new();
            if a.is_none() {
                ev.push(Event::AgentRegistered {
                    agent: review.agent.id.clone(),
                    name: review.agent.name.clone(),
                });
            }
            ev.push(Event::ReviewRecorded {
                agent: review.agent.id.clone(),
                version: review.agent.version.clone(),
                stage: a.and_then(|a| a.stage).map(|s| s.as_str().to_owned()),
                decision: review.decision.outcome.as_str().into(),
                digest: review.digest.clone(),
                items: items_line(review),
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
            }])
        })
        .await?;
        Ok(review_id)
    }
}

fn items_line(review: &Review) -> String {
    let mut items: Vec<(u8, &str)> = review
        .items
        .iter()
        .map(|i| (i.number, i.status.word()))
        .collect();
    items.sort_unstable();
    items
        .iter()
        .map(|(n, s)| format!("{n}:{s}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn tampered(seq: i64, why: impl Into<String>) -> RegistryError {
    RegistryError::Tampered {
        seq,
        why: why.into(),
    }
}

/// Replays the log: sequence, chain, hashes, columns against bodies, the rules of each
/// event, and (when `signatures`) every registry signature.
fn replay(rows: &[StoredEvent], signatures: bool) -> Result<State, RegistryError> {
    let mut st = State::default();
    let mut prev = String::new();
    for (i, r) in rows.iter().enumerate() {
        let seq = r.seq;
        if seq != i as i64 + 1 {
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
        apply(&mut st, r, ev, recorded, as_of)?;
        prev = r.hash.clone();
        st.size = seq;
        st.head = r.hash.clone();
    }
    Ok(st)
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
        Event::AgentRegistered { agent, name } => {
            if st.agents.contains_key(&agent) {
                return Err(tampered(seq, format!("{agent} registered twice")));
            }
            st.agents.insert(
                agent,
                AgentState {
                    name,
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
            let a = st.agents.get_mut(&agent).expect("checked");
            a.reviews.push(HistoryEntry {
                id: seq,
                agent,
                version,
                stage,
                review_date: summary("/review_date").to_owned(),
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
        Event::SignoffRecorded { agent, .. } => known(st, &agent)?,
        Event::StageChanged {
            agent,
            from,
            to,
            review_seq,
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
            match to_stage {
                Stage::Pilot => {
                    if a.lock.is_none() {
                        return Err(tampered(seq, "a pilot started without a criteria lock"));
                    }
                }
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

fn check_checkpoint(
    c: &Checkpoint,
    rows: &[StoredEvent],
    public_key: &str,
    key_fingerprint: &str,
) -> Result<(), RegistryError> {
    if c.key_fingerprint != key_fingerprint {
        return Err(tampered(
            1,
            format!(
                "the kept checkpoint was signed by registry key {}, but this registry was created with {} (the registry was replaced)",
                c.key_fingerprint, key_fingerprint
            ),
        ));
    }
    stagegate_trust::verify_with_key(
        public_key,
        CHECKPOINT_NAMESPACE,
        c.body().as_bytes(),
        &c.signature,
    )
    .map_err(|e| {
        tampered(
            c.size,
            format!("the kept checkpoint's signature does not verify: {e}"),
        )
    })?;
    let n = rows.len() as i64;
    if n < c.size {
        return Err(tampered(
            n + 1,
            format!(
                "the kept checkpoint records {} events but the registry holds {n}: the newest events were removed",
                c.size
            ),
        ));
    }
    if c.size >= 1 && rows[(c.size - 1) as usize].hash != c.head {
        return Err(tampered(
            c.size,
            "its hash differs from the kept checkpoint's head (history up to the checkpoint was rewritten)",
        ));
    }
    Ok(())
}
