//! The metric catalogue as PostgreSQL SQL. Pure: a card in, SQL text out.
//!
//! Every criterion becomes one query over the pilot window, grouped by its time bucket with
//! `GROUPING SETS ((bucket), ())` so one scan gives the per-bucket series and the total. The
//! query returns the same sufficient statistics the in-process engine accumulates (counts,
//! sums, Welford-equivalent `avg` / `var_samp`, `percentile_cont` — linear interpolation,
//! Hyndman & Fan definition 7 — and `count(DISTINCT …)`), so the numbers agree.
//!
//! Identifiers are quoted with `"…"`, literals with `'…'` (doubling quotes); nothing from the
//! card is pasted unquoted.

use stagegate_core::card::{AgentCard, Telemetry};
use stagegate_core::metric::{Bucket, MetricKind, MetricSpec, Predicate, PredicateOp, Scalar};
use stagegate_telemetry::RoleType;

/// `"ident"`, with `"` doubled; a dotted name quotes each part (`schema.table`).
pub fn ident(name: &str) -> String {
    name.split('.')
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// `'literal'`, with `'` doubled.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn number(x: f64) -> String {
    if x.is_finite() {
        format!("{x:?}::float8")
    } else {
        "NULL::float8".into()
    }
}

/// SQL expressions for the card's roles.
#[derive(Debug, Clone)]
pub struct Roles<'a> {
    t: &'a Telemetry,
}

impl<'a> Roles<'a> {
    /// The roles of a card's telemetry section.
    pub fn new(t: &'a Telemetry) -> Self {
        Roles { t }
    }

    /// The role's SQL expression, cast to its type; `None` for an unmapped role.
    pub fn expr(&self, role: &str) -> Option<String> {
        if let Some(col) = self.t.columns.get(role) {
            return Some(match RoleType::of(role) {
                RoleType::Timestamp => format!("{}::timestamptz", ident(col)),
                RoleType::Text => format!("{}::text", ident(col)),
                RoleType::Bool => format!("{}::boolean", ident(col)),
                RoleType::Number => format!("{}::float8", ident(col)),
            });
        }
        let d = self.t.derived.get(role)?;
        let terms: Option<Vec<String>> = d
            .sum_of
            .iter()
            .map(|term| {
                self.t
                    .columns
                    .get(&term.field)
                    .map(|c| format!("{} * {}::float8", number(term.weight), ident(c)))
            })
            .collect();
        Some(format!("({})", terms?.join(" + ")))
    }

    fn is_text(&self, role: &str) -> bool {
        self.t.columns.contains_key(role) && RoleType::of(role) == RoleType::Text
    }
}

/// A predicate as SQL (`NULL` never satisfies it, as in the engine).
pub fn predicate(p: &Predicate, roles: &Roles<'_>) -> String {
    let Some(e) = roles.expr(&p.field) else {
        return "FALSE".into();
    };
    let eq = |v: &Option<Scalar>| match v {
        Some(Scalar::Text(s)) => format!("({e})::text = {}", literal(s)),
        Some(Scalar::Number(x)) if roles.is_text(&p.field) => {
            format!(
                "({e}) ~ '^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$' AND ({e})::float8 = {}",
                number(*x)
            )
        }
        Some(Scalar::Number(x)) => format!("({e})::float8 = {}", number(*x)),
        Some(Scalar::Bool(b)) => format!("({e})::text = {}", literal(&b.to_string())),
        None => "FALSE".into(),
    };
    let cmp = |op: &str| match &p.value {
        Some(Scalar::Number(x)) => format!("({e})::float8 {op} {}", number(*x)),
        _ => "FALSE".into(),
    };
    match p.op {
        PredicateOp::Present => format!("({e}) IS NOT NULL"),
        PredicateOp::IsTrue => format!("({e}) IS TRUE"),
        PredicateOp::IsFalse => format!("({e}) IS FALSE"),
        PredicateOp::Eq => format!("({})", eq(&p.value)),
        PredicateOp::Ne => format!(
            "(({e}) IS NOT NULL AND NOT coalesce({}, FALSE))",
            eq(&p.value)
        ),
        PredicateOp::Lt => cmp("<"),
        PredicateOp::Le => cmp("<="),
        PredicateOp::Gt => cmp(">"),
        PredicateOp::Ge => cmp(">="),
    }
}

/// The pilot window as a `WHERE` condition on the timestamp.
pub fn window(card: &AgentCard, roles: &Roles<'_>) -> String {
    let ts = roles.expr("timestamp").unwrap_or_else(|| "NULL".into());
    let end = card.pilot.end.tomorrow().unwrap_or(card.pilot.end);
    format!(
        "{ts} >= {}::timestamptz AND {ts} < {}::timestamptz",
        literal(&format!("{}T00:00:00Z", card.pilot.start)),
        literal(&format!("{end}T00:00:00Z"))
    )
}

/// The time-bucket key, as the engine computes it: hours since the epoch; days or weeks
/// (1-based) since the pilot start.
pub fn bucket(card: &AgentCard, roles: &Roles<'_>, b: Bucket) -> String {
    let ts = roles.expr("timestamp").unwrap_or_else(|| "NULL".into());
    let start = literal(&format!("{}T00:00:00Z", card.pilot.start));
    let day = format!("floor(extract(epoch from ({ts} - {start}::timestamptz)) / 86400)::bigint");
    match b {
        Bucket::Hour => format!("floor(extract(epoch from {ts}) / 3600)::bigint"),
        Bucket::Day => day,
        Bucket::Week => format!("(floor(({day})::float8 / 7)::bigint + 1)"),
    }
}

/// The aggregate columns a metric needs, after `total` and `b`; [`crate::decode`] reads them
/// back in this order.
pub fn aggregates(spec: &MetricSpec, roles: &Roles<'_>, threshold: f64) -> String {
    let v = |f: Option<&str>| {
        f.and_then(|f| roles.expr(f))
            .unwrap_or_else(|| "NULL::float8".into())
    };
    match spec.kind {
        MetricKind::Count => "count(*)::float8".into(),
        MetricKind::Sum => {
            let x = v(spec.field.as_deref());
            format!("sum({x})::float8, count({x})::float8")
        }
        MetricKind::Mean => {
            let x = v(spec.field.as_deref());
            format!("avg({x})::float8, count({x})::float8, var_samp({x})::float8")
        }
        MetricKind::Rate => {
            let p = spec.of.as_ref();
            let pred = p
                .map(|p| predicate(p, roles))
                .unwrap_or_else(|| "FALSE".into());
            let applicable = match p {
                Some(p) if matches!(p.op, PredicateOp::IsTrue | PredicateOp::IsFalse) => {
                    format!("({}) IS NOT NULL", v(Some(&p.field)))
                }
                _ => "TRUE".into(),
            };
            format!(
                "(count(*) FILTER (WHERE {applicable} AND coalesce({pred}, FALSE)))::float8, (count(*) FILTER (WHERE {applicable}))::float8"
            )
        }
        MetricKind::Ratio => {
            let (y, x) = (v(spec.numerator.as_deref()), v(spec.denominator.as_deref()));
            // Centred co-moments (PostgreSQL's regr_* use the Youngs-Cramer updates), as the
            // engine's: no cancellation from a large common offset.
            let both = format!("FILTER (WHERE {y} IS NOT NULL AND {x} IS NOT NULL)");
            format!(
                "sum({y}) {both}, sum({x}) {both}, regr_syy({y}, {x}), regr_sxx({y}, {x}), regr_sxy({y}, {x}), (count(*) {both})::float8"
            )
        }
        MetricKind::Quantile => {
            let x = v(spec.field.as_deref());
            format!(
                "(percentile_cont({}) WITHIN GROUP (ORDER BY {x}))::float8, count({x})::float8, avg(({x} < {})::int) FILTER (WHERE {x} IS NOT NULL)::float8",
                number(spec.q.unwrap_or(0.5)),
                number(threshold)
            )
        }
        MetricKind::Distinct | MetricKind::Adoption => {
            let x = v(spec.value_field());
            format!("count(DISTINCT {x})::float8, count({x})::float8")
        }
    }
}

/// Per-unit sums of a rate or mean metric: `y, n` — successes and trials where the predicate
/// applies (rate), or the sum and count of the values (mean), as the engine's per-unit sums.
pub fn unit_sums(spec: &MetricSpec, roles: &Roles<'_>) -> String {
    match spec.kind {
        MetricKind::Mean => {
            let x = spec
                .field
                .as_deref()
                .and_then(|f| roles.expr(f))
                .unwrap_or_else(|| "NULL::float8".into());
            format!("sum({x})::float8, count({x})::float8")
        }
        _ => aggregates(spec, roles, f64::NAN),
    }
}

/// `ts` within the days `start..=end` (UTC), as SQL.
pub fn date_window(ts: &str, start: jiff::civil::Date, end: jiff::civil::Date) -> String {
    let end = end.tomorrow().unwrap_or(end);
    format!(
        "{ts} >= {}::timestamptz AND {ts} < {}::timestamptz",
        literal(&format!("{start}T00:00:00Z")),
        literal(&format!("{end}T00:00:00Z"))
    )
}

/// The rows a metric reads: the pilot window and the metric's `where`.
fn rows_filter(card: &AgentCard, roles: &Roles<'_>, spec: &MetricSpec) -> String {
    let w = window(card, roles);
    match &spec.filter {
        Some(f) => format!("{w} AND coalesce({}, FALSE)", predicate(f, roles)),
        None => w,
    }
}

/// The query for one criterion: per-bucket rows (`total` = 0) and the total (`total` = 1).
pub fn criterion_query(card: &AgentCard, table: &str, spec: &MetricSpec, threshold: f64) -> String {
    let Some(t) = &card.telemetry else {
        return String::new();
    };
    let roles = Roles::new(t);
    let filter = rows_filter(card, &roles, spec);
    let b = bucket(card, &roles, spec.per.unwrap_or(Bucket::Week));
    format!(
        "SELECT GROUPING(b)::int AS total, b, {} FROM (SELECT {b} AS b, * FROM {} WHERE {filter}) AS t GROUP BY GROUPING SETS ((b), ()) ORDER BY total, b",
        aggregates(spec, &roles, threshold),
        ident(table)
    )
}

/// The order statistics x₍l₎ and x₍u₎ of a quantile's interval: `percentile_disc` at
/// (rank − ½) / n picks exactly the rank-th smallest value.
pub fn quantile_bounds_query(
    card: &AgentCard,
    table: &str,
    spec: &MetricSpec,
    n: u64,
    l: u64,
    u: u64,
) -> String {
    let Some(t) = &card.telemetry else {
        return String::new();
    };
    let roles = Roles::new(t);
    let filter = rows_filter(card, &roles, spec);
    let x = spec
        .field
        .as_deref()
        .and_then(|f| roles.expr(f))
        .unwrap_or_else(|| "NULL::float8".into());
    let frac = |r: u64| number((r as f64 - 0.5) / n as f64);
    format!(
        "SELECT (percentile_disc({}) WITHIN GROUP (ORDER BY {x}))::float8, (percentile_disc({}) WITHIN GROUP (ORDER BY {x}))::float8 FROM {} WHERE {filter} AND {x} IS NOT NULL",
        frac(l),
        frac(u),
        ident(table)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(ident("events"), "\"events\"");
        assert_eq!(
            ident("tele.my \"events\""),
            "\"tele\".\"my \"\"events\"\"\""
        );
        assert_eq!(literal("o'brien"), "'o''brien'");
    }
}
