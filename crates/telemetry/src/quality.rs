//! Weekly data quality of the pilot window, streamed: per role, rows and missing values per
//! week, and for numeric roles a deterministic sample of values (the [`SAMPLE`] values with the
//! smallest hash of timestamp and value — the same sample whatever the chunking) for the
//! population stability index against week 1. Flags use the thresholds of
//! `stagegate_stats::drift`.

use crate::engine::{Cell, RowRef};
use crate::read::{Columns, RoleType};
use stagegate_core::review::{ColumnQuality, DataQuality, WeekQuality};
use stagegate_stats::drift::{MISSING_RATE_DELTA, PSI_SIGNIFICANT, psi};
use std::collections::{BTreeMap, BinaryHeap};
use std::hash::{DefaultHasher, Hash, Hasher};

/// Values kept per role and week for the PSI.
pub const SAMPLE: usize = 20_000;

#[derive(Debug, Clone, Default)]
struct RoleWeek {
    rows: u64,
    missing: u64,
    /// Max-heap of (hash, value bits): the SAMPLE smallest hashes.
    sample: BinaryHeap<(u64, u64)>,
}

impl RoleWeek {
    fn offer(&mut self, h: u64, bits: u64) {
        if self.sample.len() < SAMPLE {
            self.sample.push((h, bits));
        } else if self.sample.peek().is_some_and(|top| (h, bits) < *top) {
            self.sample.pop();
            self.sample.push((h, bits));
        }
    }
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
                    let mut h = DefaultHasher::new();
                    row.ts.hash(&mut h);
                    x.to_bits().hash(&mut h);
                    idx.hash(&mut h);
                    slot.offer(h.finish(), x.to_bits());
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
                        for (h, bits) in b.sample {
                            a.offer(h, bits);
                        }
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
                let mut v: Vec<(u64, u64)> = w.sample.iter().copied().collect();
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
