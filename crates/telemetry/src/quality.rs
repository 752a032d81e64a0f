//! Weekly data quality of the pilot window, streamed: per role, rows and missing values per
//! week, and for numeric roles a deterministic sample of values (the [`SAMPLE`] values with the
//! smallest hash of timestamp and value — the same sample whatever the chunking) for the
//! population stability index against week 1. Flags use the thresholds of
//! `stagegate_stats::drift`.

use crate::engine::{Cell, RowRef};
use crate::read::{Columns, RoleType};
use stagegate_core::review::{ColumnQuality, DataQuality, WeekQuality};
use stagegate_stats::drift::{MISSING_RATE_DELTA, PSI_SIGNIFICANT, psi};
use std::collections::BTreeMap;

/// Values kept per role and week for the PSI.
pub const SAMPLE: usize = 20_000;

#[derive(Debug, Clone)]
struct RoleWeek {
    rows: u64,
    missing: u64,
    /// (hash, value bits) with hash below `bar`; compacted to the SAMPLE smallest hashes
    /// whenever it reaches twice that (amortised O(1) per value).
    sample: Vec<(u64, u64)>,
    /// Hashes above it cannot be among the SAMPLE smallest.
    bar: u64,
}

impl Default for RoleWeek {
    fn default() -> Self {
        RoleWeek {
            rows: 0,
            missing: 0,
            sample: Vec::new(),
            bar: u64::MAX,
        }
    }
}

impl RoleWeek {
    #[inline]
    fn offer(&mut self, h: u64, bits: u64) {
        if h >= self.bar {
            return;
        }
        self.sample.push((h, bits));
        if self.sample.len() >= 2 * SAMPLE {
            self.compact();
        }
    }

    /// Keeps the SAMPLE smallest (hash, bits) pairs and lowers the bar to the largest kept.
    fn compact(&mut self) {
        if self.sample.len() > SAMPLE {
            self.sample.select_nth_unstable(SAMPLE - 1);
            self.sample.truncate(SAMPLE);
            self.bar = self.sample.iter().map(|p| p.0).max().unwrap_or(u64::MAX);
        }
    }
}

/// SplitMix64's finaliser (Steele, Lea & Flood 2014): spreads (timestamp, value, role) over
/// 64 bits so the bottom-k sample is uniform and independent of how the file was chunked.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Streaming state of the data-quality checks.
#[derive(Debug, Clone)]
pub struct QualityState {
    roles: Vec<(String, usize, bool)>,
    weeks: BTreeMap<i64, Vec<RoleWeek>>,
}

impl QualityState {
    /// Empty state for the mapped roles.
    pub fn new(cols: &Columns) -> QualityState {
        let mut roles: Vec<(String, usize, bool)> = cols
            .mapped
            .iter()
            .enumerate()
            .map(|(i, (role, _))| (role.clone(), i, cols.role_type(role) == RoleType::Number))
            .collect();
        roles.sort();
        QualityState {
            roles,
            weeks: BTreeMap::new(),
        }
    }

    /// Takes one pilot-window row in `week`.
    pub fn push(&mut self, row: &RowRef<'_, '_>, week: i64) {
        let n = self.roles.len();
        let w = self
            .weeks
            .entry(week)
            .or_insert_with(|| vec![RoleWeek::default(); n]);
        for (slot, (_, idx, numeric)) in w.iter_mut().zip(&self.roles) {
            slot.rows += 1;
            match row.cells.get(*idx) {
                None | Some(Cell::Missing) => slot.missing += 1,
                Some(Cell::Num(x)) if *numeric => {
                    let bits = x.to_bits();
                    let h = mix((row.ts as u64)
                        ^ mix(bits ^ (*idx as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)));
                    slot.offer(h, bits);
                }
                Some(_) => {}
            }
        }
    }

    /// Merges a later chunk's state.
    pub fn merge(&mut self, other: QualityState) {
        for (week, slots) in other.weeks {
            match self.weeks.get_mut(&week) {
                None => {
                    self.weeks.insert(week, slots);
                }
                Some(mine) => {
                    for (a, b) in mine.iter_mut().zip(slots) {
                        a.rows += b.rows;
                        a.missing += b.missing;
                        a.sample
                            .extend(b.sample.into_iter().filter(|p| p.0 < a.bar));
                        a.compact();
                        a.bar = a.bar.min(b.bar);
                    }
                }
            }
        }
    }

    /// The report: weekly missing rate and PSI against the first week, with flags.
    pub fn finish(self) -> DataQuality {
        let mut out = DataQuality::default();
        let first_week = self.weeks.keys().next().copied();
        for (r, (role, _, numeric)) in self.roles.iter().enumerate() {
            let values = |w: &RoleWeek| -> Vec<f64> {
                let mut v: Vec<(u64, u64)> = w.sample.clone();
                if v.len() > SAMPLE {
                    v.select_nth_unstable(SAMPLE - 1);
                    v.truncate(SAMPLE);
                }
                v.sort_unstable();
                v.into_iter().map(|(_, b)| f64::from_bits(b)).collect()
            };
            let first: Vec<f64> = first_week
                .and_then(|k| self.weeks.get(&k))
                .map(|w| values(&w[r]))
                .unwrap_or_default();
            let mut base_missing = None;
            let mut weeks = Vec::new();
            for (week, slots) in &self.weeks {
                let s = &slots[r];
                let missing_rate = s.missing as f64 / s.rows.max(1) as f64;
                let base = *base_missing.get_or_insert(missing_rate);
                let label = format!("week {week}");
                let drift = if *numeric && Some(*week) != first_week {
                    psi(&first, &values(s))
                } else {
                    None
                };
                if let Some(p) = drift
                    && p > PSI_SIGNIFICANT
                {
                    out.flags.push(format!(
                        "`{role}` shifted in {label}: PSI {p:.3} against week 1 (> {PSI_SIGNIFICANT})"
                    ));
                }
                if missing_rate - base > MISSING_RATE_DELTA {
                    out.flags.push(format!(
                        "`{role}` missing in {:.1}% of {label}'s rows, up from {:.1}% in week 1",
                        missing_rate * 100.0,
                        base * 100.0
                    ));
                }
                weeks.push(WeekQuality {
                    week: label,
                    rows: s.rows,
                    missing_rate,
                    psi: drift,
                });
            }
            out.columns.push(ColumnQuality {
                role: role.clone(),
                weeks,
            });
        }
        out
    }
}
