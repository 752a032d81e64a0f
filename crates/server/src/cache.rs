//! The verified state a replica serves reads from, kept current without replaying the whole
//! log per request.
//!
//! The first read replays and verifies the whole log (hashes, chain, registry signatures,
//! rules). Later reads extend it with the events after its head, verified the same way
//! ([`stagegate_registry::State::extend_verified`]). When to look for new events:
//! - PostgreSQL: a listener on channel `stagegate_events` (the insert trigger's NOTIFY) bumps a
//!   generation counter; a read finding the counter moved fetches the new events. A lost
//!   listener connection also bumps it (notifications may have been missed), and until it is
//!   back every read checks the head itself.
//! - SQLite: one process's file, written by this server or a CLI beside it; each read asks the
//!   newest event number (one indexed query).
//!
//! Invariants: a snapshot only ever holds a verified prefix of the log, and it is replaced
//! whole (readers never see half an update). An event edited *after* it was verified is not
//! seen by the incremental path: a full verification runs every `full_verify_every` (and at
//! `GET /api/v1/verify`), and a failure poisons the cache so every read answers 500 naming the
//! event until the log verifies again.

use jiff::civil::Date;
use stagegate_portfolio::{AgentSnapshot, ReviewSnapshot, StageChange};
use stagegate_registry::{Event, Registry, RegistryError, State, StoredEvent};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::{Mutex, RwLock};

/// One verified view of the log.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The replayed state.
    pub state: State,
    /// The portfolio's view of every agent.
    pub portfolio: BTreeMap<String, AgentSnapshot>,
    /// The generation this snapshot was read at.
    generation: u64,
}

/// Rendered answers kept for the current head: `(key, body)`.
type Rendered = BTreeMap<String, bytes::Bytes>;

/// The cache of one replica.
#[derive(Debug)]
pub struct Cache {
    registry: Registry,
    current: RwLock<Option<Arc<Snapshot>>>,
    poisoned: RwLock<Option<(i64, String)>>,
    refresh: Mutex<()>,
    generation: AtomicU64,
    /// Whether a listener keeps `generation` current (PostgreSQL with LISTEN running).
    listening: AtomicBool,
    rendered: std::sync::Mutex<(i64, Rendered)>,
    changed: tokio::sync::Notify,
}

/// Adds one verified event to the portfolio's view of the agents (`AgentRegistered` names,
/// `StageChanged` with the event's `--as-of` date, `ReviewRecorded` read through
/// [`ReviewSnapshot::from_review_json`]). Shared with `stagegate portfolio`.
///
/// # Errors
/// A sentence for a recorded review without the fields the portfolio reads, or a stage change
/// without a date.
pub fn add_to_portfolio(
    agents: &mut BTreeMap<String, AgentSnapshot>,
    row: &StoredEvent,
) -> Result<(), String> {
    let event: Event = serde_json::from_str(&row.body)
        .map_err(|e| format!("event #{}: not an event: {e}", row.seq))?;
    match event {
        Event::AgentRegistered { agent, name, .. } => {
            snapshot_of(agents, &agent).name = name;
        }
        Event::StageChanged { agent, to, .. } => {
            let stage = stagegate_core::stage::Stage::parse(&to)
                .ok_or_else(|| format!("event #{}: unknown stage {to:?}", row.seq))?;
            let at: Date = row
                .as_of
                .as_deref()
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| format!("event #{}: a stage change without a date", row.seq))?;
            snapshot_of(agents, &agent).stages.push(StageChange {
                event: row.seq,
                stage,
                at,
            });
        }
        Event::ReviewRecorded { agent, review, .. } => {
            let s = ReviewSnapshot::from_review_json(row.seq, &review)
                .map_err(|e| format!("{e}; the portfolio cannot use it"))?;
            snapshot_of(agents, &agent).reviews.push(s);
        }
        _ => {}
    }
    Ok(())
}

fn snapshot_of<'a>(
    agents: &'a mut BTreeMap<String, AgentSnapshot>,
    id: &str,
) -> &'a mut AgentSnapshot {
    agents
        .entry(id.to_owned())
        .or_insert_with(|| AgentSnapshot {
            id: id.to_owned(),
            name: id.to_owned(),
            stages: Vec::new(),
            reviews: Vec::new(),
        })
}

impl Cache {
    /// An empty cache over `registry`.
    pub fn new(registry: Registry) -> Cache {
        Cache {
            registry,
            current: RwLock::new(None),
            poisoned: RwLock::new(None),
            refresh: Mutex::new(()),
            generation: AtomicU64::new(1),
            listening: AtomicBool::new(false),
            rendered: std::sync::Mutex::new((-1, BTreeMap::new())),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Marks the cache stale: a write of this replica, a NOTIFY, or a lost listener.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Completes at the next [`Cache::invalidate`] (a write here, or a NOTIFY from another
    /// replica): what the webhook worker waits on.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Sets whether a LISTEN connection keeps the cache informed (PostgreSQL).
    pub fn set_listening(&self, on: bool) {
        self.listening.store(on, Ordering::SeqCst);
        self.invalidate();
    }

    /// Whether a LISTEN connection keeps this cache informed (then reads do not ask the head).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    /// The current verified snapshot, refreshed first when the log has moved.
    ///
    /// # Errors
    /// [`RegistryError::Tampered`] when the log (or the last full verification) does not
    /// verify; [`RegistryError::Database`].
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, RegistryError> {
        if let Some((seq, why)) = self.poisoned.read().await.clone() {
            return Err(RegistryError::Tampered { seq, why });
        }
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(s) = self.current.read().await.clone() {
            let fresh = if self.listening.load(Ordering::SeqCst) {
                s.generation == generation
            } else {
                self.registry.size().await? == s.state.size
            };
            if fresh {
                return Ok(s);
            }
        }
        let _one = self.refresh.lock().await;
        let base = self.current.read().await.clone();
        let mut next = match &base {
            Some(s) => (**s).clone(),
            None => Snapshot::default(),
        };
        let rows = self.registry.events_after(next.state.size).await?;
        if rows.is_empty() && base.is_some() {
            let mut same = next;
            same.generation = generation;
            let same = Arc::new(same);
            *self.current.write().await = Some(same.clone());
            return Ok(same);
        }
        if let Err(e) = extend(&mut next, &rows) {
            self.poison(&e).await;
            return Err(e);
        }
        next.generation = generation;
        let next = Arc::new(next);
        *self.current.write().await = Some(next.clone());
        Ok(next)
    }

    async fn poison(&self, e: &RegistryError) {
        if let RegistryError::Tampered { seq, why } = e {
            tracing::error!(seq, why, "the registry does not verify; reads refused");
            *self.poisoned.write().await = Some((*seq, why.clone()));
        }
    }

    /// Verifies the whole log again; a failure poisons the cache, a success clears an earlier
    /// poisoning and restarts the cache from the verified log.
    ///
    /// # Errors
    /// As [`Registry::verify`].
    pub async fn full_verify(&self) -> Result<stagegate_registry::Verification, RegistryError> {
        match self.registry.verify(&[]).await {
            Ok(v) => {
                if self.poisoned.write().await.take().is_some() {
                    *self.current.write().await = None;
                }
                Ok(v)
            }
            Err(e) => {
                self.poison(&e).await;
                Err(e)
            }
        }
    }

    /// A rendered answer for the snapshot at `size`, made once per head and key.
    pub fn rendered(
        &self,
        size: i64,
        key: &str,
        make: impl FnOnce() -> Result<bytes::Bytes, String>,
    ) -> Result<bytes::Bytes, String> {
        if let Ok(g) = self.rendered.lock()
            && g.0 == size
            && let Some(b) = g.1.get(key)
        {
            return Ok(b.clone());
        }
        let b = make()?;
        if let Ok(mut g) = self.rendered.lock() {
            if g.0 != size {
                *g = (size, BTreeMap::new());
            }
            if g.1.len() < 64 {
                g.1.insert(key.to_owned(), b.clone());
            }
        }
        Ok(b)
    }
}

fn extend(s: &mut Snapshot, rows: &[StoredEvent]) -> Result<(), RegistryError> {
    s.state.extend_verified(rows)?;
    for r in rows {
        add_to_portfolio(&mut s.portfolio, r)
            .map_err(|why| RegistryError::Tampered { seq: r.seq, why })?;
    }
    Ok(())
}

/// Keeps the cache informed through PostgreSQL `LISTEN stagegate_events` until the process
/// ends; reconnects after a lost connection (every read checks the head meanwhile).
pub async fn listen(cache: Arc<Cache>, url: String) {
    loop {
        match sqlx::postgres::PgListener::connect(&url).await {
            Ok(mut l) => {
                if let Err(e) = l.listen("stagegate_events").await {
                    tracing::warn!(error = %e, "LISTEN stagegate_events failed");
                } else {
                    cache.set_listening(true);
                    tracing::info!("listening on stagegate_events");
                    loop {
                        match l.try_recv().await {
                            Ok(Some(_)) => cache.invalidate(),
                            // The connection was lost: start again with a new listener
                            // (reads check the head until it listens).
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, "LISTEN connection lost");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot LISTEN; reads check the head"),
        }
        cache.set_listening(false);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
