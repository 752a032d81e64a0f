//! A map read by every OFREP evaluation and written rarely (a credential's first request): the
//! known clients and the rate-limit buckets.
//!
//! Reads go to an `arc-swap` snapshot: no lock taken, no counter shared between cores
//! written. Writes go to a locked map, which is published as the next snapshot at once while
//! it is small (at most [`SMALL`] keys) and at most once a second when it is larger, so that
//! many new keys cost a copy a second rather than a copy each (quadratic). A key written
//! since the last publication is read from the locked map meanwhile, and that read publishes
//! when one is due.

use arc_swap::ArcSwap;
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Up to this many keys, every write publishes at once.
pub const SMALL: usize = 1024;

/// How long a larger map waits between publications.
const EVERY: Duration = Duration::from_secs(1);

type Map<V> = FxHashMap<String, Arc<V>>;

/// See the module documentation.
#[derive(Debug)]
pub struct SnapshotMap<V> {
    snapshot: ArcSwap<Map<V>>,
    all: Mutex<(Map<V>, Option<Instant>)>,
    /// At this many keys the map is emptied before the next insert (a bound on memory).
    cap: usize,
}

impl<V> SnapshotMap<V> {
    /// An empty map holding at most `cap` keys (emptied when a new key would exceed it).
    pub fn new(cap: usize) -> SnapshotMap<V> {
        SnapshotMap {
            snapshot: ArcSwap::from_pointee(Map::default()),
            all: Mutex::new((Map::default(), None)),
            cap: cap.max(1),
        }
    }

    /// `f` of the value under `key`, if there is one.
    pub fn with<R>(&self, key: &str, f: impl FnOnce(&Arc<V>) -> R) -> Option<R> {
        if let Some(v) = self.snapshot.load().get(key) {
            return Some(f(v));
        }
        let v = {
            let mut g = self.all.lock().unwrap_or_else(|p| p.into_inner());
            let v = g.0.get(key).cloned();
            if v.is_some() {
                self.publish(&mut g, false);
            }
            v
        }?;
        Some(f(&v))
    }

    /// The value under `key`, made by `make` and kept if there is none yet.
    pub fn get_or_insert_with(&self, key: &str, make: impl FnOnce() -> Arc<V>) -> Arc<V> {
        if let Some(v) = self.with(key, Arc::clone) {
            return v;
        }
        let mut g = self.all.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = g.0.get(key) {
            return v.clone();
        }
        if g.0.len() >= self.cap {
            g.0.clear();
        }
        let v = make();
        g.0.insert(key.to_owned(), v.clone());
        self.publish(&mut g, false);
        v
    }

    /// Puts `value` under `key`, replacing any.
    pub fn insert(&self, key: &str, value: Arc<V>) {
        let mut g = self.all.lock().unwrap_or_else(|p| p.into_inner());
        if g.0.len() >= self.cap && !g.0.contains_key(key) {
            g.0.clear();
        }
        g.0.insert(key.to_owned(), value);
        self.publish(&mut g, false);
    }

    /// Removes `key` (published at once: a removed key is never read again).
    pub fn remove(&self, key: &str) {
        let mut g = self.all.lock().unwrap_or_else(|p| p.into_inner());
        if g.0.remove(key).is_some() || self.snapshot.load().contains_key(key) {
            self.publish(&mut g, true);
        }
    }

    fn publish(&self, g: &mut (Map<V>, Option<Instant>), now_anyway: bool) {
        let due = g.1.is_none_or(|at| at.elapsed() >= EVERY);
        if now_anyway || g.0.len() <= SMALL || due {
            self.snapshot.store(Arc::new(g.0.clone()));
            g.1 = Some(Instant::now());
        }
    }
}

impl<V> Default for SnapshotMap<V> {
    fn default() -> SnapshotMap<V> {
        SnapshotMap::new(100_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_read_back_published_or_not() {
        let m = SnapshotMap::new(10_000);
        // Past SMALL, most inserts are not published at once: still read, from the locked map.
        for i in 0..(SMALL + 500) {
            m.insert(&format!("k{i}"), Arc::new(i));
        }
        for i in 0..(SMALL + 500) {
            assert_eq!(m.with(&format!("k{i}"), |v| **v), Some(i), "k{i}");
        }
        assert_eq!(m.with("absent", |v| **v), None);
        assert_eq!(*m.get_or_insert_with("k3", || Arc::new(0)), 3);
        assert_eq!(*m.get_or_insert_with("new", || Arc::new(7)), 7);
        m.remove("k3");
        assert_eq!(
            m.with("k3", |v| **v),
            None,
            "a removed key is gone from the snapshot too"
        );
    }

    #[test]
    fn the_cap_bounds_the_keys() {
        let m = SnapshotMap::new(3);
        for i in 0..4 {
            m.insert(&format!("k{i}"), Arc::new(i));
        }
        assert_eq!(m.with("k3", |v| **v), Some(3));
        assert_eq!(
            m.with("k0", |v| **v),
            None,
            "emptied when the fourth key came"
        );
    }
}
