//! The metric engine: one pass over the window's rows per metric, with per-bucket groups.

use crate::read::Columns;
use jiff::Timestamp;
use jiff::civil::Date;
use stagegate_core::metric::{
    Bucket, MetricKind, MetricSpec, Predicate, PredicateOp, Reduce, Scalar,
};
use stagegate_core::review::{Interval, Measurement, SeriesPoint};
use std::collections::{BTreeMap, HashSet};

/// A typed cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Empty cell, `null` or absent key.
    Missing,
    /// A number.
    Num(f64),
    /// Text.
    Text(String),
    /// A boolean.
    Bool(bool),
}

/// One telemetry row: its timestamp and its role values in [`Columns`] order (mapped roles,
/// then derived roles).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// When.
    pub ts: Timestamp,
    /// Values.
    pub values: Vec<Value>,
}

/// A compiled predicate: role index, op, literal.
struct Pred<'a> {
    idx: Option<usize>,
    op: PredicateOp,
    value: Option<&'a Scalar>,
}

impl<'a> Pred<'a> {
    fn new(p: &'a Predicate, cols: &Columns) -> Self {
        Pred {
            idx: cols.index(&p.field),
            op: p.op,
            value: p.value.as_ref(),
        }
    }

    fn holds(&self, row: &Row) -> bool {
        let v = self
            .idx
            .and_then(|i| row.values.get(i))
            .unwrap_or(&Value::Missing);
        match self.op {
            PredicateOp::Present => !matches!(v, Value::Missing),
            PredicateOp::IsTrue => matches!(v, Value::Bool(true)),
            PredicateOp::IsFalse => matches!(v, Value::Bool(false)),
            PredicateOp::Eq => eq(v, self.value),
            PredicateOp::Ne => !matches!(v, Value::Missing) && !eq(v, self.value),
            PredicateOp::Lt | PredicateOp::Le | PredicateOp::Gt | PredicateOp::Ge => {
                let (Value::Num(x), Some(Scalar::Number(t))) = (v, self.value) else {
                    return false;
                };
                match self.op {
                    PredicateOp::Lt => x < t,
                    PredicateOp::Le => x <= t,
                    PredicateOp::Gt => x > t,
                    _ => x >= t,
                }
            }
        }
    }
}

fn eq(v: &Value, lit: Option<&Scalar>) -> bool {
    match (v, lit) {
        (Value::Text(a), Some(Scalar::Text(b))) => a == b,
        (Value::Num(a), Some(Scalar::Number(b))) => a == b,
        (Value::Bool(a), Some(Scalar::Bool(b))) => a == b,
        (Value::Text(a), Some(Scalar::Number(b))) => a.parse::<f64>().is_ok_and(|x| x == *b),
        (Value::Text(a), Some(Scalar::Bool(b))) => a.eq_ignore_ascii_case(&b.to_string()),
        _ => false,
    }
}

/// Running state of one metric over one group of rows.
#[derive(Debug, Clone)]
enum Acc {
    Count(u64),
    Sum {
        sum: f64,
        n: u64,
    },
    /// Welford's running mean and sum of squared deviations.
    Mean {
        mean: f64,
        m2: f64,
        n: u64,
    },
    Rate {
        hit: u64,
        n: u64,
    },
    /// Sums for the ratio and its delta-method variance: y = numerator, x = denominator.
    Ratio {
        num: f64,
        den: f64,
        yy: f64,
        xx: f64,
        xy: f64,
        n: u64,
    },
    Values(Vec<f64>),
    Distinct(HashSet<String>, u64),
}

impl Acc {
    fn new(kind: MetricKind) -> Acc {
        match kind {
            MetricKind::Count => Acc::Count(0),
            MetricKind::Sum => Acc::Sum { sum: 0.0, n: 0 },
            MetricKind::Mean => Acc::Mean {
                mean: 0.0,
                m2: 0.0,
                n: 0,
            },
            MetricKind::Rate => Acc::Rate { hit: 0, n: 0 },
            MetricKind::Ratio => Acc::Ratio {
                num: 0.0,
                den: 0.0,
                yy: 0.0,
                xx: 0.0,
                xy: 0.0,
                n: 0,
            },
            MetricKind::Quantile => Acc::Values(Vec::new()),
            MetricKind::Distinct | MetricKind::Adoption => Acc::Distinct(HashSet::new(), 0),
        }
    }

    fn rows(&self) -> u64 {
        match self {
            Acc::Count(n) => *n,
            Acc::Sum { n, .. }
            | Acc::Mean { n, .. }
            | Acc::Rate { n, .. }
            | Acc::Ratio { n, .. } => *n,
            Acc::Values(v) => v.len() as u64,
            Acc::Distinct(_, n) => *n,
        }
    }
}

pub(crate) struct Compiled<'a> {
    spec: &'a MetricSpec,
    field: Option<usize>,
    num: Option<usize>,
    den: Option<usize>,
    of: Option<Pred<'a>>,
    filter: Option<Pred<'a>>,
}

impl<'a> Compiled<'a> {
    /// Compiles a metric's field references against the columns.
    pub(crate) fn new(spec: &'a MetricSpec, cols: &Columns) -> Compiled<'a> {
        Compiled {
            spec,
            field: spec
                .field
                .as_deref()
                .or(if spec.kind == MetricKind::Adoption {
                    Some("user")
                } else {
                    None
                })
                .and_then(|f| cols.index(f)),
            num: spec.numerator.as_deref().and_then(|f| cols.index(f)),
            den: spec.denominator.as_deref().and_then(|f| cols.index(f)),
            of: spec.of.as_ref().map(|p| Pred::new(p, cols)),
            filter: spec.filter.as_ref().map(|p| Pred::new(p, cols)),
        }
    }

    /// Whether the metric's `where` filter keeps the row.
    pub(crate) fn keeps(&self, row: &Row) -> bool {
        self.filter.as_ref().is_none_or(|f| f.holds(row))
    }

    /// Numeric value of the metric's `field` in a row.
    pub(crate) fn number(&self, row: &Row) -> Option<f64> {
        match self.field.and_then(|i| row.values.get(i)) {
            Some(Value::Num(x)) => Some(*x),
            _ => None,
        }
    }

    /// (hits, n) of a rate metric over rows.
    pub(crate) fn rate_counts(&self, rows: &[&Row]) -> (u64, u64) {
        let mut acc = Acc::new(MetricKind::Rate);
        for r in rows {
            if self.keeps(r) {
                self.push(&mut acc, r);
            }
        }
        match acc {
            Acc::Rate { hit, n } => (hit, n),
            _ => (0, 0),
        }
    }

    fn push(&self, acc: &mut Acc, row: &Row) {
        let get = |i: Option<usize>| i.and_then(|i| row.values.get(i)).unwrap_or(&Value::Missing);
        match acc {
            Acc::Count(n) => *n += 1,
            Acc::Sum { sum, n } => {
                if let Value::Num(x) = get(self.field) {
                    *sum += x;
                    *n += 1;
                }
            }
            Acc::Mean { mean, m2, n } => {
                if let Value::Num(x) = get(self.field) {
                    *n += 1;
                    let d = x - *mean;
                    *mean += d / *n as f64;
                    *m2 += d * (x - *mean);
                }
            }
            Acc::Rate { hit, n } => {
                let p = self.of.as_ref().map(|p| p.holds(row)).unwrap_or(false);
                // A rate over a boolean role counts only rows where the role is present.
                let applicable = match &self.of {
                    Some(p) if matches!(p.op, PredicateOp::IsTrue | PredicateOp::IsFalse) => {
                        !matches!(get(p.idx), Value::Missing)
                    }
                    _ => true,
                };
                if applicable {
                    *n += 1;
                    if p {
                        *hit += 1;
                    }
                }
            }
            Acc::Ratio {
                num,
                den,
                yy,
                xx,
                xy,
                n,
            } => {
                if let (Value::Num(y), Value::Num(x)) = (get(self.num), get(self.den)) {
                    *num += y;
                    *den += x;
                    *yy += y * y;
                    *xx += x * x;
                    *xy += x * y;
                    *n += 1;
                }
            }
            Acc::Values(v) => {
                if let Value::Num(x) = get(self.field) {
                    v.push(*x);
                }
            }
            Acc::Distinct(set, n) => match get(self.field) {
                Value::Missing => {}
                Value::Text(s) => {
                    *n += 1;
                    if !set.contains(s.as_str()) {
                        set.insert(s.clone());
                    }
                }
                Value::Num(x) => {
                    *n += 1;
                    set.insert(format!("{x}"));
                }
                Value::Bool(b) => {
                    *n += 1;
                    set.insert(b.to_string());
                }
            },
        }
    }

    fn finish(&self, acc: &mut Acc, cohort_size: u64) -> Option<f64> {
        match acc {
            Acc::Count(n) => Some(*n as f64),
            Acc::Sum { sum, .. } => Some(*sum),
            Acc::Mean { mean, n, .. } => (*n > 0).then_some(*mean),
            Acc::Rate { hit, n } => (*n > 0).then(|| *hit as f64 / *n as f64),
            Acc::Ratio { num, den, .. } => (*den != 0.0).then(|| *num / *den),
            Acc::Values(v) => quantile(v, self.spec.q.unwrap_or(0.5)),
            Acc::Distinct(set, _) => match self.spec.kind {
                MetricKind::Adoption => {
                    (cohort_size > 0).then(|| set.len() as f64 / cohort_size as f64)
                }
                _ => Some(set.len() as f64),
            },
        }
    }
}

/// The interval of a sample statistic, its method, and — when the interval straddles
/// `threshold` — roughly how many more events would decide it if what was seen held steady.
/// Exact tallies get no interval.
///
/// Rate: Wilson score. Mean: Student t. Quantile: order statistics; its "more events" is the
/// Wilson search on the share of values below the threshold against q. Ratio of sums: delta
/// method, Var(R) ≈ Σ(yᵢ − R·xᵢ)² / ((n − 1)·n·x̄²) (Cochran 1977, §6.3).
fn uncertainty(
    acc: &Acc,
    spec: &MetricSpec,
    value: f64,
    confidence: f64,
    threshold: f64,
) -> (Option<Interval>, Option<&'static str>, Option<u64>) {
    use stagegate_stats::interval::{
        mean_t, more_events_mean, more_events_normal, more_events_rate, quantile_interval, wilson,
    };
    let straddles = |i: &Option<Interval>| i.is_some_and(|i| i.contains(threshold));
    match acc {
        Acc::Rate { hit, n } => {
            let i = wilson(*hit, *n, confidence);
            let more = straddles(&i)
                .then(|| more_events_rate(*n, value, threshold, confidence))
                .flatten();
            (i, Some("Wilson score"), more)
        }
        Acc::Mean { m2, n, .. } if *n >= 2 => {
            let sd = (m2 / (*n - 1) as f64).sqrt();
            let i = mean_t(*n, value, sd, confidence);
            let more = straddles(&i)
                .then(|| more_events_mean(*n, value, sd, threshold, confidence))
                .flatten();
            (i, Some("Student t"), more)
        }
        Acc::Values(v) if !v.is_empty() => {
            let q = spec.q.unwrap_or(0.5);
            let i = quantile_interval(v, q, confidence);
            let n = v.len() as u64;
            let below = v.partition_point(|&x| x < threshold) as f64 / v.len() as f64;
            let more = straddles(&i)
                .then(|| more_events_rate(n, below, q, confidence))
                .flatten();
            (i, Some("order statistics"), more)
        }
        Acc::Ratio {
            den, yy, xx, xy, n, ..
        } if *n >= 2 && *den != 0.0 => {
            let r = value;
            let nf = *n as f64;
            let xbar = den / nf;
            let sigma = ((yy - 2.0 * r * xy + r * r * xx) / (nf - 1.0))
                .max(0.0)
                .sqrt()
                / xbar.abs();
            let half = stagegate_stats::z_two_sided(confidence) * sigma / nf.sqrt();
            let i = Some(Interval {
                low: r - half,
                high: r + half,
                confidence,
            });
            let more = straddles(&i)
                .then(|| more_events_normal(*n, r, sigma, threshold, confidence))
                .flatten();
            (i, Some("delta method"), more)
        }
        _ => (None, None, None),
    }
}

/// Exact quantile `q` of `values` by linear interpolation between order statistics
/// (Hyndman & Fan 1996, definition 7: h = (n − 1)q; numpy's default, DuckDB's
/// `quantile_cont`). `None` for no values. Sorts `values` in place.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    let h = (values.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    let frac = h - lo as f64;
    Some(values[lo] + (values[hi] - values[lo]) * frac)
}

/// The bucket a timestamp falls in, as a sortable key and a label.
fn bucket_of(ts: Timestamp, b: Bucket, pilot_start: Date) -> (i64, String) {
    let z = ts.to_zoned(jiff::tz::TimeZone::UTC);
    match b {
        Bucket::Hour => {
            let key = ts.as_second().div_euclid(3600);
            (key, format!("{}T{:02}:00Z", z.date(), z.hour()))
        }
        Bucket::Day => {
            let d = z.date();
            (i64::from((d - pilot_start).get_days()), d.to_string())
        }
        Bucket::Week => {
            let days = i64::from((z.date() - pilot_start).get_days());
            let w = days.div_euclid(7) + 1;
            (w, format!("week {w}"))
        }
    }
}

/// Evaluates one metric over the rows (already limited to the pilot window). The series is
/// per `spec.per` when set, else per week from `pilot_start`. Sample statistics get a
/// `confidence` interval and, when it straddles `threshold`, the events still needed.
pub fn evaluate(
    spec: &MetricSpec,
    rows: &[Row],
    cols: &Columns,
    pilot_start: Date,
    cohort_size: u64,
    confidence: f64,
    threshold: f64,
) -> Measurement {
    let c = Compiled::new(spec, cols);
    if spec.kind == MetricKind::Adoption && c.field.is_none() {
        return Measurement {
            note: Some("adoption needs a `user` role (or `field`) in telemetry.columns".into()),
            ..Measurement::default()
        };
    }
    let bucket = spec.per.unwrap_or(Bucket::Week);
    let mut total = Acc::new(spec.kind);
    let mut groups: BTreeMap<i64, (String, Acc)> = BTreeMap::new();
    for row in rows {
        if !c.keeps(row) {
            continue;
        }
        c.push(&mut total, row);
        let (key, label) = bucket_of(row.ts, bucket, pilot_start);
        let g = groups
            .entry(key)
            .or_insert_with(|| (label, Acc::new(spec.kind)));
        c.push(&mut g.1, row);
    }
    let rows_read = total.rows();
    let series: Vec<SeriesPoint> = groups
        .into_values()
        .filter_map(|(label, mut acc)| {
            let n = acc.rows();
            c.finish(&mut acc, cohort_size).map(|v| SeriesPoint {
                bucket: label,
                value: v,
                rows: n,
            })
        })
        .collect();
    let mut uncertain = (None, None, None);
    let value = match spec.per {
        None => {
            let v = c.finish(&mut total, cohort_size);
            if let Some(v) = v {
                uncertain = uncertainty(&total, spec, v, confidence, threshold);
            }
            v
        }
        Some(_) if series.is_empty() => None,
        Some(_) => {
            let vals = series.iter().map(|p| p.value);
            Some(match spec.reduce.unwrap_or_default() {
                Reduce::Mean => vals.sum::<f64>() / series.len() as f64,
                Reduce::Min => vals.fold(f64::INFINITY, f64::min),
                Reduce::Max => vals.fold(f64::NEG_INFINITY, f64::max),
            })
        }
    };
    let note = if value.is_none() {
        Some(if rows_read == 0 {
            "no telemetry rows with a value in the pilot window".to_owned()
        } else {
            "the metric is undefined on these rows (zero denominator)".to_owned()
        })
    } else {
        None
    };
    Measurement {
        value,
        rows: rows_read,
        series,
        note,
        interval: uncertain.0,
        interval_method: uncertain.1.map(str::to_owned),
        more_events: uncertain.2,
        comparison: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_matches_numpy_linear() {
        // numpy.quantile([1, 2, 3, 4], 0.95) == 3.85 ; ([7], q) == 7
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert!((quantile(&mut v, 0.95).unwrap() - 3.85).abs() < 1e-12);
        assert!((quantile(&mut v, 0.5).unwrap() - 2.5).abs() < 1e-12);
        assert_eq!(quantile(&mut [7.0], 0.99), Some(7.0));
        assert_eq!(quantile(&mut [], 0.5), None);
    }
}
