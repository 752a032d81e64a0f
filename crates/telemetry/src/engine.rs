//! The streaming metric engine.
//!
//! Readers push one row at a time into an [`Evaluator`]; nothing keeps rows. Memory grows with
//! the number of groups (time buckets, distinct values) and with quantile buffers (8 bytes a
//! value), never with rows read otherwise. Evaluators built from the same plan merge, so
//! chunks of a file can be evaluated on several threads and merged in chunk order — the same
//! result whatever the number of threads.
//!
//! Quantiles are exact (Hyndman & Fan 1996, definition 7; numpy's default and DuckDB's
//! `quantile_cont`) up to [`EXACT_QUANTILE_LIMIT`] values per buffer; past it a buffer turns
//! into a DDSketch with relative accuracy [`SKETCH_RELATIVE_ERROR`] (Masson, Rim & Lee 2019),
//! and the measurement says so.

use crate::compare::{PerUnit, UnitSides};
use crate::read::Columns;
use jiff::civil::Date;
use sketches_ddsketch::{Config as SketchConfig, DDSketch};
use stagegate_core::card::{Against, Compare, TestKind};
use stagegate_core::metric::{
    Bucket, MetricKind, MetricSpec, Predicate, PredicateOp, Reduce, Scalar,
};
use stagegate_core::review::{Interval, Measurement, MoreEvents, SeriesPoint, Target};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Values a quantile buffer holds exactly before it becomes a sketch.
pub const EXACT_QUANTILE_LIMIT: usize = 100_000_000;

/// Relative accuracy of the approximate quantile sketch: the reported value is within ±1% of
/// the true quantile's value.
pub const SKETCH_RELATIVE_ERROR: f64 = 0.01;

/// A typed cell of a row. Text borrows from the reader's buffer when it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// Empty cell, `null` or absent key.
    Missing,
    /// A number.
    Num(f64),
    /// Text.
    Text(Cow<'a, str>),
    /// A boolean.
    Bool(bool),
}

/// One row as readers hand it over: timestamp (ns since the Unix epoch, UTC) and cells in
/// [`Columns`] order (mapped roles, then derived roles).
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'r, 'a> {
    /// Nanoseconds since the Unix epoch.
    pub ts: i64,
    /// Cells.
    pub cells: &'r [Cell<'a>],
}

impl RowRef<'_, '_> {
    fn get(&self, i: Option<usize>) -> &Cell<'_> {
        i.and_then(|i| self.cells.get(i)).unwrap_or(&Cell::Missing)
    }

    fn text(&self, i: Option<usize>) -> Option<&str> {
        match self.get(i) {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// A compiled predicate.
#[derive(Debug, Clone)]
struct Pred {
    idx: Option<usize>,
    op: PredicateOp,
    value: Option<Scalar>,
}

impl Pred {
    fn new(p: &Predicate, cols: &Columns) -> Self {
        Pred {
            idx: cols.index(&p.field),
            op: p.op,
            value: p.value.clone(),
        }
    }

    fn holds(&self, row: &RowRef<'_, '_>) -> bool {
        let v = row.get(self.idx);
        match self.op {
            PredicateOp::Present => !matches!(v, Cell::Missing),
            PredicateOp::IsTrue => matches!(v, Cell::Bool(true)),
            PredicateOp::IsFalse => matches!(v, Cell::Bool(false)),
            PredicateOp::Eq => eq(v, self.value.as_ref()),
            PredicateOp::Ne => !matches!(v, Cell::Missing) && !eq(v, self.value.as_ref()),
            PredicateOp::Lt | PredicateOp::Le | PredicateOp::Gt | PredicateOp::Ge => {
                let (Cell::Num(x), Some(Scalar::Number(t))) = (v, self.value.as_ref()) else {
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

    /// A rate over a boolean role counts only rows where the role is present.
    fn applicable(&self, row: &RowRef<'_, '_>) -> bool {
        !matches!(self.op, PredicateOp::IsTrue | PredicateOp::IsFalse)
            || !matches!(row.get(self.idx), Cell::Missing)
    }
}

fn eq(v: &Cell<'_>, lit: Option<&Scalar>) -> bool {
    match (v, lit) {
        (Cell::Text(a), Some(Scalar::Text(b))) => a == b,
        (Cell::Num(a), Some(Scalar::Number(b))) => a == b,
        (Cell::Bool(a), Some(Scalar::Bool(b))) => a == b,
        (Cell::Text(a), Some(Scalar::Number(b))) => a.parse::<f64>().is_ok_and(|x| x == *b),
        (Cell::Text(a), Some(Scalar::Bool(b))) => a.eq_ignore_ascii_case(&b.to_string()),
        _ => false,
    }
}

/// A quantile buffer: exact values, or a sketch once it outgrows the limit.
#[derive(Clone)]
enum Quantiles {
    Exact(Vec<f64>),
    Sketch(Box<DDSketch>),
}

impl std::fmt::Debug for Quantiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quantiles::Exact(v) => write!(f, "Exact({} values)", v.len()),
            Quantiles::Sketch(s) => write!(f, "Sketch({} values)", s.count()),
        }
    }
}

fn new_sketch() -> DDSketch {
    DDSketch::new(SketchConfig::new(SKETCH_RELATIVE_ERROR, 4096, 1.0e-9))
}

impl Quantiles {
    fn len(&self) -> usize {
        match self {
            Quantiles::Exact(v) => v.len(),
            Quantiles::Sketch(s) => s.count(),
        }
    }

    fn push(&mut self, x: f64, limit: usize) {
        match self {
            Quantiles::Exact(v) => {
                v.push(x);
                if v.len() > limit {
                    let mut s = new_sketch();
                    for &y in v.iter() {
                        s.add(y);
                    }
                    *self = Quantiles::Sketch(Box::new(s));
                }
            }
            Quantiles::Sketch(s) => s.add(x),
        }
    }

    fn merge(&mut self, other: Quantiles, limit: usize) {
        match (&mut *self, other) {
            (Quantiles::Exact(a), Quantiles::Exact(b)) if a.len() + b.len() <= limit => a.extend(b),
            (_, other) => {
                let mut s = match std::mem::replace(self, Quantiles::Exact(Vec::new())) {
                    Quantiles::Sketch(s) => *s,
                    Quantiles::Exact(v) => {
                        let mut s = new_sketch();
                        v.iter().for_each(|&y| s.add(y));
                        s
                    }
                };
                match other {
                    Quantiles::Exact(v) => v.iter().for_each(|&y| s.add(y)),
                    Quantiles::Sketch(o) => {
                        // Same configuration on both sides, so merging cannot fail.
                        let _ = s.merge(&o);
                    }
                }
                *self = Quantiles::Sketch(Box::new(s));
            }
        }
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
    /// Sums for the ratio, and running means and co-moments of y (numerator) and x
    /// (denominator) for its delta-method variance — centred, so that a large common offset
    /// does not cancel the digits away (Welford 1962; Chan, Golub & LeVeque 1979 to merge).
    Ratio {
        num: f64,
        den: f64,
        my: f64,
        mx: f64,
        syy: f64,
        sxx: f64,
        sxy: f64,
        n: u64,
    },
    Values(Quantiles),
    /// Distinct values by 128-bit XXH3 fingerprint (see [`fingerprint`]), and rows counted.
    Distinct(Box<Distinct>, u64),
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
                my: 0.0,
                mx: 0.0,
                syy: 0.0,
                sxx: 0.0,
                sxy: 0.0,
                n: 0,
            },
            MetricKind::Quantile => Acc::Values(Quantiles::Exact(Vec::new())),
            MetricKind::Distinct | MetricKind::Adoption => Acc::Distinct(Box::default(), 0),
        }
    }

    fn rows(&self) -> u64 {
        match self {
            Acc::Count(n) => *n,
            Acc::Sum { n, .. }
            | Acc::Mean { n, .. }
            | Acc::Rate { n, .. }
            | Acc::Ratio { n, .. } => *n,
            Acc::Values(q) => q.len() as u64,
            Acc::Distinct(_, n) => *n,
        }
    }

    /// Merges `other` (the later chunk) into `self`.
    fn merge(&mut self, other: Acc, limit: usize) {
        match (self, other) {
            (Acc::Count(a), Acc::Count(b)) => *a += b,
            (Acc::Sum { sum, n }, Acc::Sum { sum: s2, n: n2 }) => {
                *sum += s2;
                *n += n2;
            }
            (
                Acc::Mean { mean, m2, n },
                Acc::Mean {
                    mean: mb,
                    m2: m2b,
                    n: nb,
                },
            ) => {
                // Chan, Golub & LeVeque (1979) pairwise update.
                if nb == 0 {
                    return;
                }
                if *n == 0 {
                    (*mean, *m2, *n) = (mb, m2b, nb);
                    return;
                }
                let total = *n + nb;
                let delta = mb - *mean;
                *mean += delta * nb as f64 / total as f64;
                *m2 += m2b + delta * delta * (*n as f64) * (nb as f64) / total as f64;
                *n = total;
            }
            (Acc::Rate { hit, n }, Acc::Rate { hit: h2, n: n2 }) => {
                *hit += h2;
                *n += n2;
            }
            (
                Acc::Ratio {
                    num,
                    den,
                    my,
                    mx,
                    syy,
                    sxx,
                    sxy,
                    n,
                },
                Acc::Ratio {
                    num: num_b,
                    den: den_b,
                    my: my_b,
                    mx: mx_b,
                    syy: syy_b,
                    sxx: sxx_b,
                    sxy: sxy_b,
                    n: n_b,
                },
            ) => {
                *num += num_b;
                *den += den_b;
                if n_b == 0 {
                    return;
                }
                if *n == 0 {
                    (*my, *mx, *syy, *sxx, *sxy, *n) = (my_b, mx_b, syy_b, sxx_b, sxy_b, n_b);
                    return;
                }
                let total = (*n + n_b) as f64;
                let w = (*n as f64) * (n_b as f64) / total;
                let (dy, dx) = (my_b - *my, mx_b - *mx);
                *syy += syy_b + dy * dy * w;
                *sxx += sxx_b + dx * dx * w;
                *sxy += sxy_b + dx * dy * w;
                *my += dy * n_b as f64 / total;
                *mx += dx * n_b as f64 / total;
                *n += n_b;
            }
            (Acc::Values(a), Acc::Values(b)) => a.merge(b, limit),
            (Acc::Distinct(a, n), Acc::Distinct(b, n2)) => {
                *n += n2;
                a.merge(*b);
            }
            _ => {}
        }
    }
}

/// A metric compiled against the columns.
#[derive(Debug, Clone)]
struct Compiled {
    spec: MetricSpec,
    field: Option<usize>,
    num: Option<usize>,
    den: Option<usize>,
    of: Option<Pred>,
    filter: Option<Pred>,
}

impl Compiled {
    fn new(spec: &MetricSpec, cols: &Columns) -> Compiled {
        Compiled {
            spec: spec.clone(),
            field: spec.value_field().and_then(|f| cols.index(f)),
            num: spec.numerator.as_deref().and_then(|f| cols.index(f)),
            den: spec.denominator.as_deref().and_then(|f| cols.index(f)),
            of: spec.of.as_ref().map(|p| Pred::new(p, cols)),
            filter: spec.filter.as_ref().map(|p| Pred::new(p, cols)),
        }
    }

    fn keeps(&self, row: &RowRef<'_, '_>) -> bool {
        self.filter.as_ref().is_none_or(|f| f.holds(row))
    }

    /// A row's (sum, count) contribution to its unit's sums: (1 or 0, 1) for a rate whose
    /// predicate applies, (value, 1) for a mean; `None` when the row adds nothing.
    fn unit_contribution(&self, row: &RowRef<'_, '_>) -> Option<(f64, f64)> {
        match self.spec.kind {
            MetricKind::Rate => {
                let p = self.of.as_ref()?;
                p.applicable(row)
                    .then(|| (if p.holds(row) { 1.0 } else { 0.0 }, 1.0))
            }
            MetricKind::Mean => match row.get(self.field) {
                Cell::Num(x) => Some((*x, 1.0)),
                _ => None,
            },
            _ => None,
        }
    }

    fn push(&self, acc: &mut Acc, row: &RowRef<'_, '_>, limit: usize) {
        match acc {
            Acc::Count(n) => *n += 1,
            Acc::Sum { sum, n } => {
                if let Cell::Num(x) = row.get(self.field) {
                    *sum += x;
                    *n += 1;
                }
            }
            Acc::Mean { mean, m2, n } => {
                if let Cell::Num(x) = row.get(self.field) {
                    *n += 1;
                    let d = x - *mean;
                    *mean += d / *n as f64;
                    *m2 += d * (x - *mean);
                }
            }
            Acc::Rate { hit, n } => {
                if let Some(p) = &self.of
                    && p.applicable(row)
                {
                    *n += 1;
                    if p.holds(row) {
                        *hit += 1;
                    }
                }
            }
            Acc::Ratio {
                num,
                den,
                my,
                mx,
                syy,
                sxx,
                sxy,
                n,
            } => {
                if let (Cell::Num(y), Cell::Num(x)) = (row.get(self.num), row.get(self.den)) {
                    *num += y;
                    *den += x;
                    *n += 1;
                    let k = *n as f64;
                    let (dy, dx) = (y - *my, x - *mx);
                    *my += dy / k;
                    *mx += dx / k;
                    *syy += dy * (y - *my);
                    *sxx += dx * (x - *mx);
                    *sxy += dx * (y - *my);
                }
            }
            Acc::Values(q) => {
                if let Cell::Num(x) = row.get(self.field) {
                    q.push(*x, limit);
                }
            }
            Acc::Distinct(set, n) => {
                if let Some(f) = fingerprint(row.get(self.field)) {
                    *n += 1;
                    set.insert(f);
                }
            }
        }
    }

    fn finish(&self, acc: &mut Acc, cohort_size: u64) -> (Option<f64>, bool) {
        match acc {
            Acc::Count(n) => (Some(*n as f64), false),
            Acc::Sum { sum, .. } => (Some(*sum), false),
            Acc::Mean { mean, n, .. } => ((*n > 0).then_some(*mean), false),
            Acc::Rate { hit, n } => ((*n > 0).then(|| *hit as f64 / *n as f64), false),
            Acc::Ratio { num, den, .. } => ((*den != 0.0).then(|| *num / *den), false),
            Acc::Values(Quantiles::Exact(v)) => (quantile(v, self.spec.q.unwrap_or(0.5)), false),
            Acc::Values(Quantiles::Sketch(s)) => {
                (s.quantile(self.spec.q.unwrap_or(0.5)).ok().flatten(), true)
            }
            Acc::Distinct(set, _) => match self.spec.kind {
                MetricKind::Adoption => (
                    (cohort_size > 0).then(|| set.len() as f64 / cohort_size as f64),
                    false,
                ),
                _ => (Some(set.len() as f64), false),
            },
        }
    }
}

/// A hasher for fingerprints, which are already uniform hashes: it passes their low 64 bits
/// through instead of hashing them again.
#[derive(Debug, Clone, Copy, Default)]
pub struct Passthrough(u64);

impl std::hash::Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached for keys other than u128; fold the bytes in.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// A set of fingerprints.
pub type HashSet<T> = std::collections::HashSet<T, std::hash::BuildHasherDefault<Passthrough>>;

const PARTITIONS: usize = 64;
const BATCH: usize = 256;

/// An exact set of fingerprints, radix-partitioned: a fingerprint waits in a small batch for
/// its partition (its top six bits), and a full batch goes into that partition's set at once,
/// so the sets touched stay small and hot in cache whatever the number of distinct values.
#[derive(Clone)]
pub struct Distinct {
    parts: Vec<HashSet<u128>>,
    batches: Vec<Vec<u128>>,
}

impl Default for Distinct {
    fn default() -> Self {
        Distinct {
            parts: (0..PARTITIONS).map(|_| HashSet::default()).collect(),
            batches: (0..PARTITIONS).map(|_| Vec::new()).collect(),
        }
    }
}

impl std::fmt::Debug for Distinct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Distinct(~{})",
            self.parts.iter().map(HashSet::len).sum::<usize>()
        )
    }
}

impl Distinct {
    /// Adds a fingerprint.
    #[inline]
    pub fn insert(&mut self, f: u128) {
        let p = (f >> 122) as usize;
        let batch = &mut self.batches[p];
        if batch.capacity() == 0 {
            batch.reserve_exact(BATCH);
        }
        batch.push(f);
        if batch.len() == BATCH {
            self.parts[p].extend(batch.drain(..));
        }
    }

    fn flush(&mut self) {
        for (set, batch) in self.parts.iter_mut().zip(&mut self.batches) {
            set.extend(batch.drain(..));
        }
    }

    /// The number of distinct fingerprints.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&mut self) -> usize {
        self.flush();
        self.parts.iter().map(HashSet::len).sum()
    }

    /// Adds every fingerprint of `other`.
    pub fn merge(&mut self, mut other: Distinct) {
        other.flush();
        self.flush();
        for (a, b) in self.parts.iter_mut().zip(other.parts) {
            if a.len() < b.len() {
                let small = std::mem::replace(a, b);
                a.extend(small);
            } else {
                a.extend(b);
            }
        }
    }
}

/// The 128-bit XXH3 fingerprint of a cell, for distinct counts: text by its bytes, numbers and
/// booleans by a tagged encoding. Two different values share a fingerprint with probability
/// about n²/2¹²⁹ — below 10⁻²⁰ for a billion distinct values — so counts are exact in
/// practice while the sets stay flat (no strings kept).
pub fn fingerprint(c: &Cell<'_>) -> Option<u128> {
    use xxhash_rust::xxh3::xxh3_128;
    match c {
        Cell::Missing => None,
        Cell::Text(s) => Some(xxh3_128(s.as_bytes())),
        Cell::Num(x) => {
            let mut b = [0u8; 9];
            b[0] = 1;
            b[1..].copy_from_slice(&x.to_bits().to_le_bytes());
            Some(xxh3_128(&b))
        }
        Cell::Bool(v) => Some(xxh3_128(&[2, u8::from(*v)])),
    }
}

/// Exact quantile `q` of `values` by linear interpolation between order statistics
/// (Hyndman & Fan 1996, definition 7: h = (n − 1)q). Reorders `values` (selection, not a full
/// sort: O(n)). `None` for no values.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let h = (values.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let frac = h - lo as f64;
    let (_, &mut x_lo, above) = values.select_nth_unstable_by(lo, f64::total_cmp);
    if frac == 0.0 || above.is_empty() {
        return Some(x_lo);
    }
    let x_hi = above.iter().copied().fold(f64::INFINITY, f64::min);
    Some(x_lo + (x_hi - x_lo) * frac)
}

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Bucket keys of a row: hour since the epoch, day and week since the pilot start.
#[derive(Debug, Clone, Copy)]
struct Keys {
    hour: i64,
    day: i64,
}

impl Keys {
    fn of(ts: i64, pilot_start_secs: i64) -> Keys {
        let secs = ts.div_euclid(NANOS_PER_SEC);
        Keys {
            hour: secs.div_euclid(3600),
            day: (secs - pilot_start_secs).div_euclid(86_400),
        }
    }

    fn get(&self, b: Bucket) -> i64 {
        match b {
            Bucket::Hour => self.hour,
            Bucket::Day => self.day,
            Bucket::Week => self.day.div_euclid(7) + 1,
        }
    }
}

/// The label of a time bucket: `2026-03-02T10:00Z` (hour), `2026-03-02` (day), `week 1`.
pub fn bucket_label(b: Bucket, key: i64, pilot_start: Date) -> String {
    match b {
        Bucket::Hour => match jiff::Timestamp::from_second(key * 3600) {
            Ok(t) => {
                let z = t.to_zoned(jiff::tz::TimeZone::UTC);
                format!("{}T{:02}:00Z", z.date(), z.hour())
            }
            Err(_) => format!("hour {key}"),
        },
        Bucket::Day => pilot_start
            .checked_add(jiff::Span::new().days(key))
            .map(|d| d.to_string())
            .unwrap_or_else(|_| format!("day {key}")),
        Bucket::Week => format!("week {key}"),
    }
}

/// Which side of a comparison a row falls on.
#[derive(Debug, Clone)]
struct Sides {
    against: Against,
    baseline: Option<(i64, i64)>,
    cohort: Option<usize>,
    control: Option<String>,
    pilot: Option<String>,
}

// One value per criterion, few criteria: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum State {
    Plain {
        total: Acc,
        groups: BTreeMap<i64, Acc>,
        /// The group rows are arriving in (rows come in time order), flushed into `groups`
        /// when the key changes: no map lookup per row. `total` is filled from the groups
        /// when finishing.
        current: Option<(i64, Acc)>,
        bucket: Bucket,
    },
    Compare {
        sides: Sides,
        reference: Acc,
        pilot: Acc,
        ref_units: Distinct,
        pilot_units: Distinct,
        /// Units are only tracked for the sample-ratio-mismatch check.
        track_units: bool,
        /// Per-unit sums, when the comparison names a `unit`.
        per_unit: Option<Box<PerUnitState>>,
    },
}

/// Per-unit sums of a comparison with `unit:`: memory grows with units, not rows.
#[derive(Debug, Clone, Default)]
struct PerUnitState {
    /// The unit role's column.
    unit: Option<usize>,
    /// CUPED's covariate period, [start, end) in ns.
    covariate: Option<(i64, i64)>,
    map: rustc_hash::FxHashMap<u128, UnitSides>,
    rows_without_unit: u64,
}

impl PerUnitState {
    fn merge(&mut self, other: PerUnitState) {
        self.rows_without_unit += other.rows_without_unit;
        for (k, v) in other.map {
            let e = self.map.entry(k).or_default();
            for (a, b) in [
                (&mut e.reference, v.reference),
                (&mut e.pilot, v.pilot),
                (&mut e.covariate, v.covariate),
            ] {
                a.y += b.y;
                a.n += b.n;
            }
        }
    }

    /// The units in fingerprint order (a fixed order, whatever the number of threads).
    fn finish(self, role: &str) -> PerUnit {
        let mut units: Vec<(u128, UnitSides)> = self.map.into_iter().collect();
        units.sort_unstable_by_key(|(k, _)| *k);
        PerUnit {
            role: role.to_owned(),
            units: units.into_iter().map(|(_, u)| u).collect(),
            rows_without_unit: self.rows_without_unit,
        }
    }
}

#[derive(Debug, Clone)]
struct CriterionEval {
    id: String,
    c: Compiled,
    compare: Option<Compare>,
    target: Target,
    state: State,
}

/// The plan and running state of every telemetry criterion and of the data-quality checks.
/// Clone an empty evaluator per chunk, push rows, then [`Evaluator::merge`] in chunk order.
#[derive(Debug, Clone)]
pub struct Evaluator {
    window: (i64, i64),
    pilot_start: Date,
    pilot_start_secs: i64,
    cohort_size: u64,
    confidence: f64,
    limit: usize,
    user: Option<usize>,
    criteria: Vec<CriterionEval>,
    quality: crate::quality::QualityState,
    /// Rows pushed.
    pub rows_read: u64,
    /// Rows inside the pilot window.
    pub rows_in_window: u64,
}

/// A criterion to evaluate: its id, metric, optional comparison and threshold.
#[derive(Debug, Clone)]
pub struct CriterionPlan<'a> {
    /// Criterion id.
    pub id: &'a str,
    /// Its metric.
    pub metric: &'a MetricSpec,
    /// Its comparison, if relative.
    pub compare: Option<&'a Compare>,
    /// What its interval must do to decide it (`Criterion::target`).
    pub target: Target,
}

fn day_start_nanos(d: Date) -> i64 {
    d.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp().as_nanosecond() as i64)
        .unwrap_or(i64::MIN)
}

impl Evaluator {
    /// An empty evaluator. `pilot` is the window (first and last day, inclusive).
    pub fn new(
        criteria: &[CriterionPlan<'_>],
        cols: &Columns,
        pilot: (Date, Date),
        cohort_size: u64,
        confidence: f64,
    ) -> Evaluator {
        let end = pilot.1.tomorrow().map(day_start_nanos).unwrap_or(i64::MAX);
        let start = day_start_nanos(pilot.0);
        let criteria = criteria
            .iter()
            .map(|p| {
                let c = Compiled::new(p.metric, cols);
                let state = match p.compare {
                    None => State::Plain {
                        total: Acc::new(p.metric.kind),
                        groups: BTreeMap::new(),
                        current: None,
                        bucket: p.metric.per.unwrap_or(Bucket::Week),
                    },
                    Some(cmp) => {
                        let kind = match cmp.test_for(p.metric.kind) {
                            Some(TestKind::TwoProportions) => MetricKind::Rate,
                            Some(TestKind::Welch) => MetricKind::Mean,
                            _ => MetricKind::Quantile,
                        };
                        State::Compare {
                            sides: Sides {
                                against: cmp.against,
                                baseline: cmp.baseline.as_ref().map(|w| {
                                    (
                                        day_start_nanos(w.start),
                                        w.end.tomorrow().map(day_start_nanos).unwrap_or(i64::MAX),
                                    )
                                }),
                                cohort: cols.index("cohort"),
                                control: cmp.control_cohort.clone(),
                                pilot: cmp.pilot_cohort.clone(),
                            },
                            reference: Acc::new(kind),
                            pilot: Acc::new(kind),
                            ref_units: Distinct::default(),
                            pilot_units: Distinct::default(),
                            track_units: cmp.assigned_pilot_share.is_some(),
                            per_unit: cmp.unit.as_deref().map(|u| {
                                Box::new(PerUnitState {
                                    unit: cols.index(u),
                                    covariate: cmp.baseline.as_ref().filter(|_| cmp.cuped).map(
                                        |w| {
                                            (
                                                day_start_nanos(w.start),
                                                w.end
                                                    .tomorrow()
                                                    .map(day_start_nanos)
                                                    .unwrap_or(i64::MAX),
                                            )
                                        },
                                    ),
                                    ..PerUnitState::default()
                                })
                            }),
                        }
                    }
                };
                CriterionEval {
                    id: p.id.to_owned(),
                    c,
                    compare: p.compare.cloned(),
                    target: p.target,
                    state,
                }
            })
            .collect();
        Evaluator {
            window: (start, end),
            pilot_start: pilot.0,
            pilot_start_secs: start.div_euclid(NANOS_PER_SEC),
            cohort_size,
            confidence,
            limit: EXACT_QUANTILE_LIMIT,
            user: cols.index("user"),
            criteria,
            quality: crate::quality::QualityState::new(cols),
            rows_read: 0,
            rows_in_window: 0,
        }
    }

    /// Sets the exact-quantile limit (tests use a small one to exercise the sketch).
    pub fn with_quantile_limit(mut self, limit: usize) -> Evaluator {
        self.limit = limit;
        self
    }

    /// Takes one row.
    pub fn push(&mut self, row: &RowRef<'_, '_>) {
        self.rows_read += 1;
        let in_window = row.ts >= self.window.0 && row.ts < self.window.1;
        let keys = Keys::of(row.ts, self.pilot_start_secs);
        if in_window {
            self.rows_in_window += 1;
            self.quality.push(row, keys.get(Bucket::Week));
        }
        let limit = self.limit;
        let user = self.user;
        for ce in &mut self.criteria {
            match &mut ce.state {
                State::Plain {
                    groups,
                    current,
                    bucket,
                    ..
                } => {
                    if !in_window || !ce.c.keeps(row) {
                        continue;
                    }
                    // Rows accumulate in their time bucket only; the total is the merge of the
                    // buckets at the end (each row counted once; one quantile buffer).
                    let key = keys.get(*bucket);
                    if current.as_ref().is_none_or(|(k, _)| *k != key) {
                        if let Some((k, acc)) = current.take() {
                            flush(groups, k, acc, limit);
                        }
                        *current = Some((key, Acc::new(ce.c.spec.kind)));
                    }
                    if let Some((_, g)) = current {
                        ce.c.push(g, row, limit);
                    }
                }
                State::Compare {
                    sides,
                    reference,
                    pilot,
                    ref_units,
                    pilot_units,
                    track_units,
                    per_unit,
                } => {
                    if let Some(pu) = per_unit
                        && let Some((a, b)) = pu.covariate
                        && row.ts >= a
                        && row.ts < b
                        && ce.c.keeps(row)
                        && let Some((y, n)) = ce.c.unit_contribution(row)
                    {
                        match fingerprint(row.get(pu.unit)) {
                            Some(k) => {
                                let e = pu.map.entry(k).or_default();
                                e.covariate.y += y;
                                e.covariate.n += n;
                            }
                            None => pu.rows_without_unit += 1,
                        }
                    }
                    let cohort = row.text(sides.cohort);
                    let in_pilot_cohort = match &sides.pilot {
                        Some(p) => cohort == Some(p.as_str()),
                        None => sides.control.as_deref().is_none_or(|c| cohort != Some(c)),
                    };
                    let side = match sides.against {
                        Against::Baseline => {
                            let (a, b) = sides.baseline.unwrap_or((i64::MAX, i64::MAX));
                            if row.ts >= a && row.ts < b {
                                Some(true)
                            } else if in_window && (sides.pilot.is_none() || in_pilot_cohort) {
                                Some(false)
                            } else {
                                None
                            }
                        }
                        Against::Control => {
                            if !in_window {
                                None
                            } else if cohort.is_some() && cohort == sides.control.as_deref() {
                                Some(true)
                            } else if in_pilot_cohort {
                                Some(false)
                            } else {
                                None
                            }
                        }
                    };
                    let Some(is_ref) = side else { continue };
                    let (acc, units) = if is_ref {
                        (reference, ref_units)
                    } else {
                        (pilot, pilot_units)
                    };
                    let unit_col = per_unit.as_ref().map_or(user, |pu| pu.unit);
                    if *track_units && let Some(u) = fingerprint(row.get(unit_col)) {
                        units.insert(u);
                    }
                    if ce.c.keeps(row) {
                        ce.c.push(acc, row, limit);
                        if let Some(pu) = per_unit
                            && let Some((y, n)) = ce.c.unit_contribution(row)
                        {
                            match fingerprint(row.get(pu.unit)) {
                                Some(k) => {
                                    let e = pu.map.entry(k).or_default();
                                    let s = if is_ref {
                                        &mut e.reference
                                    } else {
                                        &mut e.pilot
                                    };
                                    s.y += y;
                                    s.n += n;
                                }
                                None => pu.rows_without_unit += 1,
                            }
                        }
                    }
                }
            }
        }
    }

    /// Merges a later chunk's evaluator into this one.
    pub fn merge(&mut self, other: Evaluator) {
        self.rows_read += other.rows_read;
        self.rows_in_window += other.rows_in_window;
        self.quality.merge(other.quality);
        let limit = self.limit;
        for (a, b) in self.criteria.iter_mut().zip(other.criteria) {
            match (&mut a.state, b.state) {
                (
                    State::Plain {
                        total,
                        groups,
                        current,
                        ..
                    },
                    State::Plain {
                        total: t2,
                        groups: g2,
                        current: c2,
                        ..
                    },
                ) => {
                    total.merge(t2, limit);
                    if let Some((k, acc)) = current.take() {
                        flush(groups, k, acc, limit);
                    }
                    for (k, acc) in g2.into_iter().chain(c2) {
                        flush(groups, k, acc, limit);
                    }
                }
                (
                    State::Compare {
                        reference,
                        pilot,
                        ref_units,
                        pilot_units,
                        per_unit,
                        ..
                    },
                    State::Compare {
                        reference: r2,
                        pilot: p2,
                        ref_units: ru2,
                        pilot_units: pu2,
                        per_unit: per2,
                        ..
                    },
                ) => {
                    reference.merge(r2, limit);
                    pilot.merge(p2, limit);
                    ref_units.merge(ru2);
                    pilot_units.merge(pu2);
                    if let (Some(a), Some(b)) = (per_unit, per2) {
                        a.merge(*b);
                    }
                }
                _ => {}
            }
        }
    }

    /// Finishes: a measurement per criterion id, and the data-quality report.
    pub fn finish(
        self,
    ) -> (
        BTreeMap<String, Measurement>,
        stagegate_core::review::DataQuality,
    ) {
        let mut out = BTreeMap::new();
        for ce in self.criteria {
            let m = match ce.state {
                State::Plain {
                    mut total,
                    mut groups,
                    current,
                    bucket,
                } => {
                    if let Some((k, acc)) = current {
                        flush(&mut groups, k, acc, self.limit);
                    }
                    finish_plain(
                        &ce.c,
                        &mut total,
                        groups,
                        bucket,
                        self.pilot_start,
                        self.cohort_size,
                        self.confidence,
                        ce.target,
                        self.limit,
                    )
                }
                State::Compare {
                    reference,
                    pilot,
                    mut ref_units,
                    mut pilot_units,
                    per_unit,
                    ..
                } => {
                    let cmp = ce
                        .compare
                        .as_ref()
                        .map(|c| (c, ref_units.len() as u64, pilot_units.len() as u64));
                    match cmp {
                        Some((cmp, ru, pu)) => crate::compare::finish(
                            &ce.c.spec,
                            cmp,
                            reference.into_side(),
                            pilot.into_side(),
                            (ru, pu),
                            per_unit.map(|p| p.finish(cmp.unit.as_deref().unwrap_or("unit"))),
                            self.confidence,
                            ce.target,
                        ),
                        None => Measurement::default(),
                    }
                }
            };
            out.insert(ce.id, m);
        }
        (out, self.quality.finish())
    }
}

/// Adds a group's accumulator into the map, merging with an existing one for the same key.
fn flush(groups: &mut BTreeMap<i64, Acc>, key: i64, acc: Acc, limit: usize) {
    match groups.get_mut(&key) {
        Some(mine) => mine.merge(acc, limit),
        None => {
            groups.insert(key, acc);
        }
    }
}

/// One side of a comparison, handed to [`crate::compare::finish`].
#[derive(Debug)]
pub enum Side {
    /// (hits, n) of a rate.
    Rate(u64, u64),
    /// (n, mean, sample variance) of a mean.
    Summary(u64, f64, f64),
    /// The values, for Mann-Whitney.
    Values(Vec<f64>),
}

impl Acc {
    fn into_side(self) -> Side {
        match self {
            Acc::Rate { hit, n } => Side::Rate(hit, n),
            Acc::Mean { mean, m2, n } => {
                Side::Summary(n, mean, if n > 1 { m2 / (n - 1) as f64 } else { f64::NAN })
            }
            Acc::Values(Quantiles::Exact(v)) => Side::Values(v),
            Acc::Values(Quantiles::Sketch(_)) => Side::Values(Vec::new()),
            _ => Side::Values(Vec::new()),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn finish_plain(
    c: &Compiled,
    total: &mut Acc,
    groups: BTreeMap<i64, Acc>,
    bucket: Bucket,
    pilot_start: Date,
    cohort_size: u64,
    confidence: f64,
    target: Target,
    limit: usize,
) -> Measurement {
    let spec = &c.spec;
    if spec.kind == MetricKind::Adoption && c.field.is_none() {
        return Measurement {
            note: Some("adoption needs a `user` role (or `field`) in telemetry.columns".into()),
            ..Measurement::default()
        };
    }
    let mut series: Vec<SeriesPoint> = Vec::with_capacity(groups.len());
    *total = Acc::new(spec.kind);
    if spec.kind == MetricKind::Quantile {
        let n: usize = groups.values().map(|g| g.rows() as usize).sum();
        *total = Acc::Values(Quantiles::Exact(Vec::with_capacity(n.min(limit))));
    }
    for (key, mut acc) in groups {
        let n = acc.rows();
        if let Some(v) = c.finish(&mut acc, cohort_size).0 {
            series.push(SeriesPoint {
                bucket: bucket_label(bucket, key, pilot_start),
                value: v,
                rows: n,
            });
        }
        total.merge(acc, limit);
    }
    let rows_read = total.rows();
    let mut uncertain = Uncertainty::default();
    let mut approximate = false;
    let value = match spec.per {
        None => {
            let (v, approx) = c.finish(total, cohort_size);
            approximate = approx;
            if let Some(v) = v
                && !approx
            {
                uncertain = uncertainty(total, spec, v, confidence, target);
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
    let note = if let Some(n) = uncertain.note.filter(|_| value.is_some()) {
        Some(n.to_owned())
    } else if value.is_none() {
        Some(if rows_read == 0 {
            "no telemetry rows with a value in the pilot window".to_owned()
        } else {
            "the metric is undefined on these rows (zero denominator)".to_owned()
        })
    } else if approximate {
        Some(format!(
            "approximate quantile: more than {EXACT_QUANTILE_LIMIT} values, DDSketch with relative error ≤ {}%",
            SKETCH_RELATIVE_ERROR * 100.0
        ))
    } else {
        None
    };
    Measurement {
        value,
        rows: rows_read,
        series,
        note,
        interval: uncertain.interval,
        interval_method: uncertain.method.map(str::to_owned),
        sampled: uncertain.sampled,
        more_events: uncertain.more_events,
        comparison: None,
    }
}

/// The sufficient statistics of a sample statistic, from which its interval is computed —
/// by the in-process engine and by the PostgreSQL path alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sufficient {
    /// `hit` of `n` rows satisfy the predicate.
    Rate {
        /// Rows satisfying the predicate.
        hit: u64,
        /// Rows considered.
        n: u64,
    },
    /// `n` values with sample variance `var`.
    Mean {
        /// Values.
        n: u64,
        /// Sample variance (n − 1 denominator).
        var: f64,
    },
    /// The order statistics bounding the quantile's interval, and the share of values below
    /// the threshold.
    Quantile {
        /// Values.
        n: u64,
        /// The quantile, 0–1.
        q: f64,
        /// x₍l₎ and x₍u₎ for the ranks of [`stagegate_stats::interval::quantile_ranks`].
        bounds: Option<(f64, f64)>,
        /// Share of values strictly below the threshold.
        below: f64,
    },
    /// Σx and the centred co-moments of y (numerator) and x (denominator) over `n` rows.
    Ratio {
        /// Σx.
        den: f64,
        /// Σ(y − ȳ)².
        syy: f64,
        /// Σ(x − x̄)².
        sxx: f64,
        /// Σ(x − x̄)(y − ȳ).
        sxy: f64,
        /// Rows.
        n: u64,
    },
}

/// What a sample statistic's uncertainty says: its interval (with coverage), the method, and
/// how many more events would decide the criterion.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Uncertainty {
    /// The interval, when the data allow one.
    pub interval: Option<Interval>,
    /// How it was computed.
    pub method: Option<&'static str>,
    /// More events needed, when the interval does not decide (or cannot be formed or reach
    /// the card's confidence yet).
    pub more_events: Option<MoreEvents>,
    /// Whether the value is a sample statistic (judged only through its interval).
    pub sampled: bool,
    /// Why there is no interval, when the data have values but no spread to show.
    pub note: Option<&'static str>,
}

/// The interval of a sample statistic, its method and coverage, and — when it does not decide
/// `target` — how many more events would, if what was seen held steady.
///
/// Rate: Wilson score. Mean: Student t (one value: no interval, at least one more value
/// needed). Quantile: order statistics with their exact coverage; when too few values exist for
/// any interval to reach `confidence` (a p99 over 20 values), the minimum sample that can;
/// otherwise its "more events" is the Wilson search on the share of values below the threshold
/// against q. Ratio of sums: delta method, Var(R) ≈ Σ(yᵢ − R·xᵢ)² / ((n − 1)·n·x̄²) (Cochran
/// 1977, §6.3), from centred co-moments, with a t quantile on n − 1 degrees of freedom (one row: no interval). Values
/// with no spread (a mean of identical values, a ratio constant row by row) have no interval
/// either. Every search is bounded (`stagegate_stats::interval`).
pub fn interval_of(stats: &Sufficient, value: f64, confidence: f64, target: Target) -> Uncertainty {
    use stagegate_stats::interval::{
        mean_t, more_events_mean, more_events_normal, more_events_rate, quantile_min_events,
        quantile_ranks, t_interval, wilson,
    };
    let undecided = |i: &Option<Interval>| i.is_some_and(|i| !target.decides(&i));
    let one_more = Some(MoreEvents::ForCoverage { events: 1 });
    let u = |interval: Option<Interval>, method, more_events| Uncertainty {
        interval,
        method: Some(method),
        more_events,
        sampled: true,
        note: None,
    };
    let no_spread = |method| Uncertainty {
        note: Some(
            "no interval: the values have no spread (or one beyond floating point) to show the uncertainty",
        ),
        ..u(None, method, None)
    };
    match *stats {
        Sufficient::Rate { hit, n } if n > 0 => {
            let i = wilson(hit, n, confidence);
            let more = undecided(&i).then(|| more_events_rate(n, value, target, confidence));
            u(i, "Wilson score", more)
        }
        Sufficient::Mean { n: 1, .. } => u(None, "Student t", one_more),
        Sufficient::Mean { n, var } if n >= 2 => {
            let sd = var.sqrt();
            let i = mean_t(n, value, sd, confidence);
            if i.is_none() {
                return no_spread("Student t");
            }
            let more = undecided(&i).then(|| more_events_mean(n, value, sd, target, confidence));
            u(i, "Student t", more)
        }
        Sufficient::Quantile {
            n,
            q,
            bounds,
            below,
        } if n > 0 => {
            let i = match (quantile_ranks(n, q, confidence), bounds) {
                (Some((_, _, cov)), Some((low, high))) => {
                    Some(Interval::exact(low, high, confidence, cov))
                }
                _ => None,
            };
            let more = match i {
                Some(iv) if !iv.reaches_confidence() => {
                    Some(match quantile_min_events(q, confidence) {
                        Some(m) => MoreEvents::ForCoverage {
                            events: m.saturating_sub(n).max(1),
                        },
                        None => MoreEvents::BeyondLimit {
                            limit: stagegate_stats::interval::MORE_EVENTS_LIMIT,
                        },
                    })
                }
                _ if undecided(&i) => {
                    Some(more_events_rate(n, below, Target::Limit(q), confidence))
                }
                _ => None,
            };
            u(i, "order statistics", more)
        }
        Sufficient::Ratio { n: 1, .. } => u(None, "delta method", one_more),
        Sufficient::Ratio {
            den,
            syy,
            sxx,
            sxy,
            n,
        } if n >= 2 && den != 0.0 => {
            // Σ(yᵢ − R·xᵢ)² = Syy − 2R·Sxy + R²·Sxx, since ȳ = R·x̄ exactly.
            let r = value;
            let nf = n as f64;
            let xbar = den / nf;
            let sigma = ((syy - 2.0 * r * sxy + r * r * sxx) / (nf - 1.0))
                .max(0.0)
                .sqrt()
                / xbar.abs();
            let i = t_interval(r, sigma / nf.sqrt(), nf - 1.0, confidence);
            if i.is_none() {
                return no_spread("delta method");
            }
            let more = undecided(&i).then(|| more_events_normal(n, r, sigma, target, confidence));
            u(i, "delta method", more)
        }
        _ => Uncertainty::default(),
    }
}

/// The sufficient statistics of an accumulator, when it is a sample statistic.
fn sufficient(
    acc: &mut Acc,
    spec: &MetricSpec,
    threshold: f64,
    confidence: f64,
) -> Option<Sufficient> {
    match acc {
        Acc::Rate { hit, n } => Some(Sufficient::Rate { hit: *hit, n: *n }),
        Acc::Mean { m2, n, .. } => Some(Sufficient::Mean {
            n: *n,
            var: if *n > 1 {
                *m2 / (*n - 1) as f64
            } else {
                f64::NAN
            },
        }),
        Acc::Values(Quantiles::Exact(v)) if !v.is_empty() => {
            let q = spec.q.unwrap_or(0.5);
            let n = v.len() as u64;
            let bounds =
                stagegate_stats::interval::quantile_ranks(n, q, confidence).map(|(l, u, _)| {
                    let low = *v.select_nth_unstable_by((l - 1) as usize, f64::total_cmp).1;
                    let high = *v.select_nth_unstable_by((u - 1) as usize, f64::total_cmp).1;
                    (low, high)
                });
            let below = v.iter().filter(|&&x| x < threshold).count() as f64 / v.len() as f64;
            Some(Sufficient::Quantile {
                n,
                q,
                bounds,
                below,
            })
        }
        Acc::Ratio {
            den,
            syy,
            sxx,
            sxy,
            n,
            ..
        } => Some(Sufficient::Ratio {
            den: *den,
            syy: *syy,
            sxx: *sxx,
            sxy: *sxy,
            n: *n,
        }),
        _ => None,
    }
}

fn uncertainty(
    acc: &mut Acc,
    spec: &MetricSpec,
    value: f64,
    confidence: f64,
    target: Target,
) -> Uncertainty {
    let threshold = match target {
        Target::Limit(t) => t,
        Target::Band(lo, _) => lo,
    };
    match sufficient(acc, spec, threshold, confidence) {
        Some(s) => interval_of(&s, value, confidence, target),
        None => Uncertainty::default(),
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

    #[test]
    fn ratio_variance_survives_a_large_offset() {
        // y = 2·10⁷ + u with u in [0, 1), x = 1: the ratio's delta-method variance is the
        // variance of u, about 1/12. Raw sums of squares lose it to cancellation; co-moments
        // do not, whether the rows arrive in one pass or in two merged chunks.
        let spec = MetricSpec {
            kind: MetricKind::Ratio,
            field: None,
            q: None,
            of: None,
            numerator: Some("y".into()),
            denominator: Some("x".into()),
            filter: None,
            per: None,
            reduce: None,
        };
        let c = Compiled {
            spec: spec.clone(),
            field: None,
            num: Some(0),
            den: Some(1),
            of: None,
            filter: None,
        };
        let us: Vec<f64> = (0..1000)
            .map(|i| f64::from((i * 7919) % 1000) / 1000.0)
            .collect();
        let mut one = Acc::new(MetricKind::Ratio);
        let (mut a, mut b) = (Acc::new(MetricKind::Ratio), Acc::new(MetricKind::Ratio));
        for (i, u) in us.iter().enumerate() {
            let cells = [Cell::Num(2e7 + u), Cell::Num(1.0)];
            let row = RowRef {
                ts: 0,
                cells: &cells,
            };
            c.push(&mut one, &row, 10);
            c.push(if i < 300 { &mut a } else { &mut b }, &row, 10);
        }
        a.merge(b, 10);
        let mean = us.iter().sum::<f64>() / 1000.0;
        let var_u = us.iter().map(|u| (u - mean).powi(2)).sum::<f64>() / 999.0;
        for acc in [&mut one, &mut a] {
            let value = c.finish(acc, 0).0.unwrap();
            let u = uncertainty(acc, &spec, value, 0.95, Target::Limit(0.0));
            let i = u.interval.unwrap();
            let se = (i.high - i.low) / 2.0 / stagegate_stats::dist::t_two_sided(0.95, 999.0);
            assert!(
                (se * se * 1000.0 / var_u - 1.0).abs() < 1e-6,
                "se {se} vs {}",
                (var_u / 1000.0).sqrt()
            );
        }
    }

    #[test]
    fn mean_merge_equals_one_pass() {
        let xs: Vec<f64> = (0..1000).map(|i| f64::from(i % 37) * 1.5).collect();
        let spec = MetricSpec {
            kind: MetricKind::Mean,
            field: Some("x".into()),
            q: None,
            of: None,
            numerator: None,
            denominator: None,
            filter: None,
            per: None,
            reduce: None,
        };
        let c = Compiled {
            spec,
            field: Some(0),
            num: None,
            den: None,
            of: None,
            filter: None,
        };
        let mut one = Acc::new(MetricKind::Mean);
        let (mut a, mut b) = (Acc::new(MetricKind::Mean), Acc::new(MetricKind::Mean));
        for (i, &x) in xs.iter().enumerate() {
            let cells = [Cell::Num(x)];
            let row = RowRef {
                ts: 0,
                cells: &cells,
            };
            c.push(&mut one, &row, 10);
            c.push(if i < 400 { &mut a } else { &mut b }, &row, 10);
        }
        a.merge(b, 10);
        match (one, a) {
            (
                Acc::Mean {
                    mean: m1,
                    m2: v1,
                    n: n1,
                },
                Acc::Mean {
                    mean: m2,
                    m2: v2,
                    n: n2,
                },
            ) => {
                assert_eq!(n1, n2);
                assert!((m1 - m2).abs() < 1e-12 && (v1 - v2).abs() < 1e-6 * v1);
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn quantile_buffer_turns_into_a_sketch_past_the_limit() {
        let mut q = Quantiles::Exact(Vec::new());
        for i in 1..=10_000 {
            q.push(f64::from(i), 1000);
        }
        let Quantiles::Sketch(s) = &q else {
            panic!("still exact")
        };
        let p95 = s.quantile(0.95).unwrap().unwrap();
        assert!(
            (p95 - 9500.0).abs() / 9500.0 <= SKETCH_RELATIVE_ERROR + 1e-3,
            "{p95}"
        );
    }
}
