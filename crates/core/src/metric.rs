//! The metric catalogue: how a success criterion's number is computed from pilot telemetry.
//!
//! A metric is data in the agent card (`success_criteria[].metric`); the telemetry crate
//! evaluates it. Fields are named by *role* (see [`crate::card::Telemetry::columns`]), never by
//! a file's raw column header, so the same criteria survive a change of export format.
//!
//! Source: the issue "main job" §6 (count, sum, mean, rate of a predicate, ratio of sums, exact
//! quantiles, distinct count, adoption, per-week series), seed 001 item 1 ("numbers from pilot
//! match or exceed pre-set criteria").

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a metric computes over the pilot-window rows that pass its `where` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Number of rows.
    Count,
    /// Sum of `field`.
    Sum,
    /// Arithmetic mean of `field` (rows where it is missing are skipped).
    Mean,
    /// Share of rows (0–1) for which the `of` predicate holds.
    Rate,
    /// `sum(numerator) / sum(denominator)`.
    Ratio,
    /// Exact quantile `q` (0–1) of `field`, linear interpolation between order statistics
    /// (Hyndman & Fan 1996, definition 7 — numpy's and DuckDB's `quantile_cont` default).
    Quantile,
    /// Number of distinct values of `field`.
    Distinct,
    /// Distinct values of `field` (default role `user`) divided by `pilot.cohort_size` (0–1).
    Adoption,
}

/// A time bucket for per-period metrics.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// Clock hour (UTC).
    Hour,
    /// Calendar day (UTC).
    Day,
    /// Seven-day week counted from the pilot's start date (week 1 = days 1–7).
    Week,
}

/// How per-bucket values reduce to the criterion's single number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reduce {
    /// Mean of the bucket values.
    #[default]
    Mean,
    /// Smallest bucket value.
    Min,
    /// Largest bucket value (e.g. peak hourly volume).
    Max,
}

/// A comparison used in predicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PredicateOp {
    /// Field equals `value` (strings compare exactly; numbers numerically; booleans as booleans).
    Eq,
    /// Field differs from `value`.
    Ne,
    /// Numeric field `<` value.
    Lt,
    /// Numeric field `<=` value.
    Le,
    /// Numeric field `>` value.
    Gt,
    /// Numeric field `>=` value.
    Ge,
    /// Boolean field is true.
    IsTrue,
    /// Boolean field is false.
    IsFalse,
    /// Field is present (not empty / not null).
    Present,
}

/// A literal in a predicate: a string, a number or a boolean.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    /// A boolean literal.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A string.
    Text(String),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Number(n) => write!(f, "{n}"),
            Scalar::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// A row filter: `field op value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Predicate {
    /// A role name from `telemetry.columns` or `telemetry.derived`.
    pub field: String,
    /// The comparison.
    pub op: PredicateOp,
    /// The literal compared against; required for every `op` except `is_true`, `is_false`
    /// and `present`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Scalar>,
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            PredicateOp::Eq => "==",
            PredicateOp::Ne => "!=",
            PredicateOp::Lt => "<",
            PredicateOp::Le => "<=",
            PredicateOp::Gt => ">",
            PredicateOp::Ge => ">=",
            PredicateOp::IsTrue => return write!(f, "{} is true", self.field),
            PredicateOp::IsFalse => return write!(f, "{} is false", self.field),
            PredicateOp::Present => return write!(f, "{} is present", self.field),
        };
        match &self.value {
            Some(v) => write!(f, "{} {op} {v}", self.field),
            None => write!(f, "{} {op} ?", self.field),
        }
    }
}

/// One metric of the catalogue, as written in the agent card.
///
/// Which of the optional fields are required depends on `kind`; [`MetricSpec::check`] says
/// which is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// What to compute.
    pub kind: MetricKind,
    /// The role the metric reads (sum, mean, quantile, distinct, adoption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Quantile in (0, 1), e.g. 0.95 for p95 (quantile only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<f64>,
    /// The predicate whose share of rows is the rate (rate only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<Predicate>,
    /// Numerator role (ratio only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerator: Option<String>,
    /// Denominator role (ratio only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<String>,
    /// Rows the metric considers; all pilot-window rows when absent.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<Predicate>,
    /// Compute the metric per bucket, then reduce with `reduce`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<Bucket>,
    /// Reduction of per-bucket values (default mean); only with `per`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduce: Option<Reduce>,
}

/// A metric spec that does not fit its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metric of kind `{kind}` {problem}")]
pub struct MetricSpecError {
    /// The kind, snake_case.
    pub kind: String,
    /// What is wrong, e.g. "needs `field`".
    pub problem: String,
}

impl MetricSpec {
    /// Checks that the fields required by `kind` are present and in range.
    ///
    /// # Errors
    /// [`MetricSpecError`] naming the missing or out-of-range field.
    pub fn check(&self) -> Result<(), MetricSpecError> {
        let err = |problem: &str| MetricSpecError {
            kind: kind_name(self.kind).to_owned(),
            problem: problem.to_owned(),
        };
        match self.kind {
            MetricKind::Count => {}
            MetricKind::Sum | MetricKind::Mean | MetricKind::Distinct => {
                if self.field.is_none() {
                    return Err(err("needs `field`"));
                }
            }
            MetricKind::Adoption => {}
            MetricKind::Quantile => {
                if self.field.is_none() {
                    return Err(err("needs `field`"));
                }
                match self.q {
                    Some(q) if q > 0.0 && q < 1.0 => {}
                    Some(_) => return Err(err("needs `q` strictly between 0 and 1")),
                    None => return Err(err("needs `q` (e.g. 0.95)")),
                }
            }
            MetricKind::Rate => {
                if self.of.is_none() {
                    return Err(err("needs `of` (the predicate whose share is the rate)"));
                }
            }
            MetricKind::Ratio => {
                if self.numerator.is_none() || self.denominator.is_none() {
                    return Err(err("needs `numerator` and `denominator`"));
                }
            }
        }
        if self.reduce.is_some() && self.per.is_none() {
            return Err(err("has `reduce` without `per`"));
        }
        for p in [&self.of, &self.filter].into_iter().flatten() {
            let needs_value = !matches!(
                p.op,
                PredicateOp::IsTrue | PredicateOp::IsFalse | PredicateOp::Present
            );
            if needs_value && p.value.is_none() {
                return Err(err(&format!(
                    "has a predicate on `{}` without `value`",
                    p.field
                )));
            }
        }
        Ok(())
    }

    /// The role whose values the metric reads: `field`, or `user` for adoption without one.
    pub fn value_field(&self) -> Option<&str> {
        self.field
            .as_deref()
            .or(if self.kind == MetricKind::Adoption {
                Some("user")
            } else {
                None
            })
    }

    /// Every role this metric reads, in a stable order.
    pub fn fields(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        v.extend(self.value_field());
        for f in [&self.numerator, &self.denominator].into_iter().flatten() {
            v.push(f);
        }
        for p in [&self.of, &self.filter].into_iter().flatten() {
            v.push(&p.field);
        }
        v
    }

    /// A short human description, e.g. `p95(latency_ms)` or `rate(accepted is true)`.
    pub fn describe(&self) -> String {
        let f = self.field.as_deref().unwrap_or("?");
        let base = match self.kind {
            MetricKind::Count => "count".to_owned(),
            MetricKind::Sum => format!("sum({f})"),
            MetricKind::Mean => format!("mean({f})"),
            MetricKind::Rate => match &self.of {
                Some(p) => format!("rate({p})"),
                None => "rate(?)".to_owned(),
            },
            MetricKind::Ratio => format!(
                "sum({}) / sum({})",
                self.numerator.as_deref().unwrap_or("?"),
                self.denominator.as_deref().unwrap_or("?")
            ),
            MetricKind::Quantile => {
                let q = self.q.unwrap_or(f64::NAN) * 100.0;
                format!("p{}({f})", trim_float(q))
            }
            MetricKind::Distinct => format!("distinct({f})"),
            MetricKind::Adoption => format!(
                "distinct({}) / cohort_size",
                self.field.as_deref().unwrap_or("user")
            ),
        };
        let base = match &self.filter {
            Some(p) => format!("{base} where {p}"),
            None => base,
        };
        match self.per {
            Some(b) => format!(
                "{}(per {} {base})",
                kind_name_reduce(self.reduce.unwrap_or_default()),
                bucket_name(b)
            ),
            None => base,
        }
    }
}

fn trim_float(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// snake_case name of a metric kind.
pub fn kind_name(k: MetricKind) -> &'static str {
    match k {
        MetricKind::Count => "count",
        MetricKind::Sum => "sum",
        MetricKind::Mean => "mean",
        MetricKind::Rate => "rate",
        MetricKind::Ratio => "ratio",
        MetricKind::Quantile => "quantile",
        MetricKind::Distinct => "distinct",
        MetricKind::Adoption => "adoption",
    }
}

fn kind_name_reduce(r: Reduce) -> &'static str {
    match r {
        Reduce::Mean => "mean",
        Reduce::Min => "min",
        Reduce::Max => "max",
    }
}

/// snake_case name of a bucket.
pub fn bucket_name(b: Bucket) -> &'static str {
    match b {
        Bucket::Hour => "hour",
        Bucket::Day => "day",
        Bucket::Week => "week",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: MetricKind) -> MetricSpec {
        MetricSpec {
            kind,
            field: None,
            q: None,
            of: None,
            numerator: None,
            denominator: None,
            filter: None,
            per: None,
            reduce: None,
        }
    }

    #[test]
    fn check_names_missing_fields() {
        assert!(spec(MetricKind::Count).check().is_ok());
        let e = spec(MetricKind::Quantile).check().unwrap_err();
        assert_eq!(e.problem, "needs `field`");
        let mut q = spec(MetricKind::Quantile);
        q.field = Some("latency_ms".into());
        q.q = Some(1.5);
        assert!(q.check().unwrap_err().problem.contains("between 0 and 1"));
        q.q = Some(0.95);
        assert!(q.check().is_ok());
        assert_eq!(q.describe(), "p95(latency_ms)");
        assert!(spec(MetricKind::Ratio).check().is_err());
        let mut r = spec(MetricKind::Rate);
        r.of = Some(Predicate {
            field: "severity".into(),
            op: PredicateOp::Eq,
            value: None,
        });
        assert!(r.check().unwrap_err().problem.contains("without `value`"));
    }

    #[test]
    fn reduce_requires_per() {
        let mut c = spec(MetricKind::Count);
        c.reduce = Some(Reduce::Max);
        assert!(c.check().is_err());
        c.per = Some(Bucket::Hour);
        assert!(c.check().is_ok());
        assert_eq!(c.describe(), "max(per hour count)");
    }
}
