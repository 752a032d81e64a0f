//! What a kill-switch drill measures on this replica: when each client first saw its flag
//! `DISABLED` after the pull.
//!
//! Time zero is the pull's recording time in the log (every replica reads the same event), so
//! replicas measure their own clients against one origin. A *client* is one credential (an
//! application instance with its own token, whatever users it evaluates for); an SSE *stream*
//! is one open `GET /ofrep/v1/events`. Clients expected to observe are those that
//! evaluated the flag in the minute before the pull and every stream open at the pull; a
//! stream has observed when its `refetchEvaluation` message was written, a client when an
//! evaluation answered `DISABLED`.

use jiff::Timestamp;
use stagegate_auth::Caller;
use stagegate_flags::{Reason, Resolution};
use std::collections::BTreeMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One client: its credential.
type Client = String;

#[derive(Debug, Default)]
struct Inner {
    /// Flag key → (client → last evaluation time).
    recent: rustc_hash::FxHashMap<String, rustc_hash::FxHashMap<Client, Timestamp>>,
    /// Open streams: id → credential.
    streams: BTreeMap<u64, String>,
    /// The drill being watched.
    watch: Option<Watch>,
}

#[derive(Debug, Clone)]
struct Watch {
    flag: String,
    pulled_at: Timestamp,
    expected_clients: Vec<Client>,
    expected_streams: Vec<u64>,
    clients: BTreeMap<Client, Timestamp>,
    streams: BTreeMap<u64, Timestamp>,
    /// Evaluations of the flag after the pull that still answered the old state.
    in_flight: u64,
}

/// One client's memo of the flag it was last noted evaluating and the second it was, in one
/// atomic word (44 bits of a hash of the key, then the Unix second modulo 2^20): the client's
/// repeated evaluations of one flag are noted once a second without a lock. Only a shortcut:
/// a watched drill bypasses it, so a `DISABLED` observation is never skipped; two flag keys
/// whose hashes agree in 44 bits (a chance of one in 2^44 for a pair) would leave the second
/// out of the map of who evaluated lately, and with it out of a drill's expected clients.
#[derive(Debug, Default)]
pub struct Seen(AtomicU64);

impl Seen {
    const SECOND_BITS: u32 = 20;

    fn word(key: &str, now: Timestamp) -> u64 {
        use std::hash::BuildHasher;
        let h = rustc_hash::FxBuildHasher.hash_one(key) >> Seen::SECOND_BITS;
        let s = (now.as_second() as u64) & ((1 << Seen::SECOND_BITS) - 1);
        h << Seen::SECOND_BITS | s
    }

    /// Whether `key` was noted in the same Unix second as `now`.
    fn fresh(&self, key: &str, now: Timestamp) -> bool {
        self.0.load(Ordering::Relaxed) == Seen::word(key, now)
    }

    fn mark(&self, key: &str, now: Timestamp) {
        self.0.store(Seen::word(key, now), Ordering::Relaxed);
    }
}

/// The drills of this replica.
#[derive(Debug, Default)]
pub struct Drills {
    inner: RwLock<Inner>,
    next_stream: AtomicU64,
    /// Whether a drill is watched (else an evaluation only refreshes who was seen lately).
    watching: AtomicBool,
}

/// One observer's time to see the pull.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Observation {
    /// `client` (an evaluating credential) or `stream` (an SSE connection).
    pub kind: String,
    /// The credential (`token <id>` or the JWT's person), or the stream and its credential.
    pub who: String,
    /// Milliseconds from the pull's recording to the observation; `null`: not yet.
    pub ms: Option<f64>,
}

/// A drill's measurement on this replica.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DrillReport {
    /// The flag.
    pub flag: String,
    /// The pull's recording time (RFC 3339).
    pub pulled_at: String,
    /// Every expected observer, and any other client that saw it.
    pub observations: Vec<Observation>,
    /// Whether every expected observer has seen it.
    pub complete: bool,
    /// Evaluations after the pull that still answered the old state (in flight while the
    /// replica's flags were being rebuilt).
    pub in_flight: u64,
}

impl Drills {
    /// Notes an evaluation: who evaluated which flag when, and, during a drill of that flag,
    /// the first `DISABLED` answer each client got.
    pub fn observe(
        &self,
        caller: &Caller,
        seen: &Seen,
        key: &str,
        res: &Resolution<'_>,
        now: Timestamp,
    ) {
        // The common cases, read-only: no drill, and this client was noted evaluating this
        // flag in the last second — by its own memo (no lock), or in the shared map.
        if !self.watching.load(Ordering::Relaxed) && seen.fresh(key, now) {
            return;
        }
        self.note(caller, key, res, now);
        seen.mark(key, now);
    }

    fn note(&self, caller: &Caller, key: &str, res: &Resolution<'_>, now: Timestamp) {
        if !self.watching.load(Ordering::Relaxed)
            && let Ok(g) = self.inner.read()
            && g.recent
                .get(key)
                .and_then(|m| m.get(&caller.credential))
                .is_some_and(|t| now.duration_since(*t) < jiff::SignedDuration::from_secs(1))
        {
            return;
        }
        let client = caller.credential.clone();
        let Ok(mut g) = self.inner.write() else {
            return;
        };
        if let Some(w) = g.watch.as_mut()
            && w.flag == key
            && now >= w.pulled_at
        {
            if res.reason == Reason::Disabled {
                w.clients.entry(client.clone()).or_insert(now);
            } else if !w.clients.contains_key(&client) {
                w.in_flight += 1;
            }
        }
        let per_flag = g.recent.entry(key.to_owned()).or_default();
        if per_flag.len() < 100_000 || per_flag.contains_key(&client) {
            per_flag.insert(client, now);
        }
    }

    /// Registers an SSE stream; returns its id.
    pub fn connect(&self, caller: &Caller) -> u64 {
        let id = self.next_stream.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut g) = self.inner.write() {
            g.streams.insert(id, caller.credential.clone());
        }
        id
    }

    fn sent(&self, stream: u64, now: Timestamp) {
        if let Ok(mut g) = self.inner.write()
            && let Some(w) = g.watch.as_mut()
            && w.expected_streams.contains(&stream)
        {
            w.streams.entry(stream).or_insert(now);
        }
    }

    fn disconnect(&self, stream: u64) {
        if let Ok(mut g) = self.inner.write() {
            g.streams.remove(&stream);
        }
    }

    /// Starts watching a drill of `flag` pulled at `pulled_at` (from the log), unless this one
    /// is watched already.
    pub fn start(&self, flag: &str, pulled_at: Timestamp) {
        let Ok(mut g) = self.inner.write() else {
            return;
        };
        self.watching.store(true, Ordering::Relaxed);
        if g.watch
            .as_ref()
            .is_some_and(|w| w.flag == flag && w.pulled_at == pulled_at)
        {
            return;
        }
        let since = pulled_at - jiff::SignedDuration::from_secs(60);
        let expected_clients = g
            .recent
            .get(flag)
            .map(|m| {
                m.iter()
                    .filter(|(_, t)| **t >= since)
                    .map(|(c, _)| c.clone())
                    .collect()
            })
            .unwrap_or_default();
        let expected_streams = g.streams.keys().copied().collect();
        g.watch = Some(Watch {
            flag: flag.to_owned(),
            pulled_at,
            expected_clients,
            expected_streams,
            clients: BTreeMap::new(),
            streams: BTreeMap::new(),
            in_flight: 0,
        });
    }

    /// Stops watching once the watched drill's kill switch is no longer pulled
    /// (`still_pulled(flag)` false: restored): its report stays, and evaluations go back to the
    /// path without a lock.
    pub fn settle(&self, still_pulled: impl Fn(&str) -> bool) {
        if !self.watching.load(Ordering::Relaxed) {
            return;
        }
        let over = self
            .inner
            .read()
            .map(|g| g.watch.as_ref().is_none_or(|w| !still_pulled(&w.flag)))
            .unwrap_or(false);
        if over {
            self.watching.store(false, Ordering::Relaxed);
        }
    }

    /// The report of the drill of `flag`, if one is watched.
    pub fn report(&self, flag: &str) -> Option<DrillReport> {
        let g = self.inner.read().ok()?;
        let w = g.watch.as_ref().filter(|w| w.flag == flag)?;
        let ms = |t: Option<&Timestamp>| {
            t.map(|t| (t.as_nanosecond() - w.pulled_at.as_nanosecond()) as f64 / 1e6)
        };
        let mut observations: Vec<Observation> = w
            .expected_streams
            .iter()
            .map(|s| Observation {
                kind: "stream".into(),
                who: format!(
                    "stream {s} ({})",
                    g.streams.get(s).map_or("closed", String::as_str)
                ),
                ms: ms(w.streams.get(s)),
            })
            .collect();
        let mut clients: Vec<&Client> = w.expected_clients.iter().collect();
        clients.extend(w.clients.keys().filter(|c| !w.expected_clients.contains(c)));
        observations.extend(clients.into_iter().map(|c| Observation {
            kind: "client".into(),
            who: c.to_string(),
            ms: ms(w.clients.get(c)),
        }));
        let complete = observations.iter().all(|o| o.ms.is_some());
        Some(DrillReport {
            flag: flag.to_owned(),
            pulled_at: w.pulled_at.to_string(),
            observations,
            complete,
            in_flight: w.in_flight,
        })
    }
}

/// Keeps an SSE stream registered while it is open.
#[derive(Debug)]
pub struct StreamGuard {
    drills: std::sync::Arc<Drills>,
    id: u64,
}

impl StreamGuard {
    /// Registers nothing itself: `id` comes from [`Drills::connect`].
    pub fn new(drills: std::sync::Arc<Drills>, id: u64) -> StreamGuard {
        StreamGuard { drills, id }
    }

    /// The stream's message for a new set was written at `now`.
    pub fn sent(&self, now: Timestamp) {
        self.drills.sent(self.id, now);
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.drills.disconnect(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_memo_is_fresh_for_its_flag_within_its_second_only() {
        let seen = Seen::default();
        let t = at("2026-06-15T12:00:00.100Z");
        assert!(!seen.fresh("flag-a", t), "nothing noted yet");
        seen.mark("flag-a", t);
        assert!(seen.fresh("flag-a", at("2026-06-15T12:00:00.900Z")));
        assert!(!seen.fresh("flag-a", at("2026-06-15T12:00:01Z")));
        assert!(!seen.fresh("flag-b", t));
        seen.mark("flag-b", t);
        assert!(!seen.fresh("flag-a", t), "one flag at a time");
    }

    #[test]
    fn a_watched_drill_sees_past_the_memo() {
        let drills = Drills::default();
        let caller = Caller {
            person: "checkout-service".into(),
            roles: Default::default(),
            agents: vec![],
            credential: "token 1".into(),
        };
        let seen = Seen::default();
        let metadata = std::collections::BTreeMap::new();
        let (on, off) = (Value::Bool(true), Value::Bool(false));
        let res = |value, reason, variant| Resolution {
            key: "flag-a",
            value,
            reason,
            variant,
            metadata: &metadata,
        };
        let t0 = at("2026-06-15T12:00:00Z");
        drills.observe(&caller, &seen, "flag-a", &res(&on, Reason::Split, "on"), t0);
        // Pulled in the same second the client was last noted: its DISABLED answer still counts.
        let pulled = at("2026-06-15T12:00:00.200Z");
        drills.start("flag-a", pulled);
        let seen_at = at("2026-06-15T12:00:00.250Z");
        drills.observe(
            &caller,
            &seen,
            "flag-a",
            &res(&off, Reason::Disabled, "off"),
            seen_at,
        );
        let report = drills.report("flag-a").unwrap();
        assert!(report.complete, "{report:?}");
        let client = report
            .observations
            .iter()
            .find(|o| o.kind == "client")
            .unwrap();
        assert_eq!(client.ms, Some(50.0), "{report:?}");
        // Still pulled: still watched. Restored: the report stays, the memo works again.
        drills.settle(|flag| flag == "flag-a");
        assert!(drills.watching.load(Ordering::Relaxed));
        drills.settle(|_| false);
        assert!(!drills.watching.load(Ordering::Relaxed));
        assert!(drills.report("flag-a").is_some());
    }
}
