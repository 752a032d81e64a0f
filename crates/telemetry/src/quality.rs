//! Weekly data quality of the pilot window: per role, the missing rate and (numeric roles) the
//! population stability index against the first pilot week, with flags beyond the thresholds
//! of `stagegate_stats::drift`.

use crate::engine::{Row, Value};
use crate::read::{Columns, RoleType};
use jiff::civil::Date;
use stagegate_core::review::{ColumnQuality, DataQuality, WeekQuality};
use stagegate_stats::drift::{MISSING_RATE_DELTA, PSI_SIGNIFICANT, psi};
use std::collections::BTreeMap;

/// Computes [`DataQuality`] over `rows` (the pilot window), weeks counted from `pilot_start`.
pub fn assess(rows: &[Row], cols: &Columns, pilot_start: Date) -> DataQuality {
    let mut by_week: BTreeMap<i64, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        let day = r.ts.to_zoned(jiff::tz::TimeZone::UTC).date();
        let week = i64::from((day - pilot_start).get_days()).div_euclid(7) + 1;
        by_week.entry(week).or_default().push(r);
    }
    let mut roles: Vec<(String, usize, bool)> = cols
        .mapped
        .iter()
        .enumerate()
        .map(|(i, (role, _))| (role.clone(), i, cols.role_type(role) == RoleType::Number))
        .collect();
    roles.sort();
    let mut out = DataQuality::default();
    for (role, idx, numeric) in roles {
        let numbers = |rows: &[&Row]| -> Vec<f64> {
            rows.iter()
                .filter_map(|r| match r.values.get(idx) {
                    Some(Value::Num(x)) => Some(*x),
                    _ => None,
                })
                .collect()
        };
        let first: Vec<f64> = by_week
            .values()
            .next()
            .map(|w| numbers(w))
            .unwrap_or_default();
        let mut first_missing = None;
        let mut weeks = Vec::new();
        for (week, rs) in &by_week {
            let missing = rs
                .iter()
                .filter(|r| matches!(r.values.get(idx), None | Some(Value::Missing)))
                .count();
            let missing_rate = missing as f64 / rs.len().max(1) as f64;
            let base_missing = *first_missing.get_or_insert(missing_rate);
            let label = format!("week {week}");
            let drift = if numeric && *week != *by_week.keys().next().unwrap_or(week) {
                psi(&first, &numbers(rs))
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
            if missing_rate - base_missing > MISSING_RATE_DELTA {
                out.flags.push(format!(
                    "`{role}` missing in {:.1}% of {label}'s rows, up from {:.1}% in week 1",
                    missing_rate * 100.0,
                    base_missing * 100.0
                ));
            }
            weeks.push(WeekQuality {
                week: label,
                rows: rs.len() as u64,
                missing_rate,
                psi: drift,
            });
        }
        out.columns.push(ColumnQuality { role, weeks });
    }
    out
}
