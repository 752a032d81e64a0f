//! stagegate's metric catalogue inside PostgreSQL.
//!
//! A card whose `telemetry.postgres` names a table is measured where the data lives: each
//! criterion compiles to one SQL query ([`compile`]) returning the same sufficient statistics
//! the in-process engine keeps, and the same finishing code turns them into values, series
//! and intervals. Relative criteria compare rates (two-proportion) and means (Welch) from
//! per-side statistics, per unit when the comparison names a `unit` (one row per unit and side,
//! `GROUP BY`); Mann-Whitney comparisons need every value and stay in-process.
//! Data-quality checks (drift, missing rates) are not computed in PostgreSQL.
//!
//! The connection URL comes from the environment (`telemetry.postgres.url_env`, default
//! `STAGEGATE_PG_URL`), never from the card.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod compile;

use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use stagegate_core::card::{Against, AgentCard, CriterionSource, TestKind};
use stagegate_core::digest::{InputDigest, InputRole, StreamDigest};
use stagegate_core::metric::{Bucket, MetricKind, MetricSpec, Reduce};
use stagegate_core::review::{DataQuality, Measurement, SeriesPoint, Target};
use stagegate_stats::units::Sums;
use stagegate_telemetry::{
    Cell, PerUnit, Side, Sufficient, TelemetryOutcome, UnitSides, bucket_label, compare_sides,
    fingerprint, interval_of,
};
use std::collections::BTreeMap;

/// The default environment variable holding the connection URL.
pub const DEFAULT_URL_ENV: &str = "STAGEGATE_PG_URL";

/// Failures of the PostgreSQL path.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The card does not read from PostgreSQL.
    #[error("the card's telemetry has no `postgres` source")]
    NotPostgres,
    /// The URL variable is not set.
    #[error("telemetry.postgres: set {0} to the PostgreSQL connection URL")]
    NoUrl(String),
    /// A query failed (connection, missing table or column, wrong type).
    #[error("PostgreSQL table {table}: {source}")]
    Query {
        /// The table.
        table: String,
        /// The driver's error.
        source: sqlx::Error,
    },
}

/// The connection URL for a card's PostgreSQL source, from the environment.
///
/// # Errors
/// [`PgError::NotPostgres`] or [`PgError::NoUrl`].
pub fn url_for(card: &AgentCard) -> Result<String, PgError> {
    let src = card
        .telemetry
        .as_ref()
        .and_then(|t| t.postgres.as_ref())
        .ok_or(PgError::NotPostgres)?;
    let var = src
        .url_env
        .clone()
        .unwrap_or_else(|| DEFAULT_URL_ENV.to_owned());
    std::env::var(&var).map_err(|_| PgError::NoUrl(var))
}

struct Ctx<'a> {
    pool: &'a PgPool,
    table: &'a str,
    digest: &'a mut StreamDigest,
}

impl Ctx<'_> {
    async fn rows(&mut self, sql: &str) -> Result<Vec<sqlx::postgres::PgRow>, PgError> {
        self.digest.update(sql.as_bytes());
        self.digest.update(b"\n");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(self.pool)
            .await
            .map_err(|source| PgError::Query {
                table: self.table.to_owned(),
                source,
            })?;
        for r in &rows {
            for i in 0..r.len() {
                let cell = r
                    .try_get::<Option<f64>, _>(i)
                    .map(|v| format!("{v:?}"))
                    .or_else(|_| r.try_get::<Option<i64>, _>(i).map(|v| format!("{v:?}")))
                    .or_else(|_| r.try_get::<Option<i32>, _>(i).map(|v| format!("{v:?}")))
                    .unwrap_or_default();
                self.digest.update(cell.as_bytes());
                self.digest.update(b"\t");
            }
            self.digest.update(b"\n");
        }
        Ok(rows)
    }
}

fn num(r: &sqlx::postgres::PgRow, i: usize) -> Option<f64> {
    r.try_get::<Option<f64>, _>(i).ok().flatten()
}

/// One group's statistics, decoded from a query row (columns after `total, b`).
struct Stats {
    value: Option<f64>,
    rows: u64,
    sufficient: Option<Sufficient>,
}

fn decode(spec: &MetricSpec, r: &sqlx::postgres::PgRow, cohort_size: u64) -> Stats {
    let c = |i: usize| num(r, i + 2);
    let n = |i: usize| c(i).unwrap_or(0.0) as u64;
    match spec.kind {
        MetricKind::Count => Stats {
            value: Some(c(0).unwrap_or(0.0)),
            rows: n(0),
            sufficient: None,
        },
        MetricKind::Sum => Stats {
            value: Some(c(0).unwrap_or(0.0)),
            rows: n(1),
            sufficient: None,
        },
        MetricKind::Mean => Stats {
            value: if n(1) > 0 { c(0) } else { None },
            rows: n(1),
            sufficient: Some(Sufficient::Mean {
                n: n(1),
                var: c(2).unwrap_or(f64::NAN),
            }),
        },
        MetricKind::Rate => Stats {
            value: (n(1) > 0).then(|| n(0) as f64 / n(1) as f64),
            rows: n(1),
            sufficient: Some(Sufficient::Rate { hit: n(0), n: n(1) }),
        },
        MetricKind::Ratio => {
            let den = c(1).unwrap_or(0.0);
            Stats {
                value: (den != 0.0).then(|| c(0).unwrap_or(0.0) / den),
                rows: n(5),
                sufficient: Some(Sufficient::Ratio {
                    den,
                    syy: c(2).unwrap_or(0.0),
                    sxx: c(3).unwrap_or(0.0),
                    sxy: c(4).unwrap_or(0.0),
                    n: n(5),
                }),
            }
        }
        MetricKind::Quantile => Stats {
            value: if n(1) > 0 { c(0) } else { None },
            rows: n(1),
            sufficient: Some(Sufficient::Quantile {
                n: n(1),
                q: spec.q.unwrap_or(0.5),
                bounds: None,
                below: c(2).unwrap_or(0.0),
            }),
        },
        MetricKind::Distinct => Stats {
            value: Some(c(0).unwrap_or(0.0)),
            rows: n(1),
            sufficient: None,
        },
        MetricKind::Adoption => Stats {
            value: (cohort_size > 0).then(|| c(0).unwrap_or(0.0) / cohort_size as f64),
            rows: n(1),
            sufficient: None,
        },
    }
}

async fn plain(
    ctx: &mut Ctx<'_>,
    card: &AgentCard,
    spec: &MetricSpec,
    target: Target,
) -> Result<Measurement, PgError> {
    let threshold = match target {
        Target::Limit(t) => t,
        Target::Band(lo, _) => lo,
    };
    let sql = compile::criterion_query(card, ctx.table, spec, threshold);
    let rows = ctx.rows(&sql).await?;
    let bucket = spec.per.unwrap_or(Bucket::Week);
    let mut series = Vec::new();
    let mut total = None;
    for r in &rows {
        let is_total = r.try_get::<i32, _>(0).unwrap_or(0) == 1;
        let s = decode(spec, r, card.pilot.cohort_size);
        if is_total {
            total = Some(s);
        } else if let (Some(v), Ok(Some(key))) = (s.value, r.try_get::<Option<i64>, _>(1)) {
            series.push(SeriesPoint {
                bucket: bucket_label(bucket, key, card.pilot.start),
                value: v,
                rows: s.rows,
            });
        }
    }
    let total = total.unwrap_or(Stats {
        value: None,
        rows: 0,
        sufficient: None,
    });
    let mut m = Measurement {
        rows: total.rows,
        series,
        ..Measurement::default()
    };
    m.value = match spec.per {
        None => total.value,
        Some(_) if m.series.is_empty() => None,
        Some(_) => {
            let vals = m.series.iter().map(|p| p.value);
            Some(match spec.reduce.unwrap_or_default() {
                Reduce::Mean => vals.sum::<f64>() / m.series.len() as f64,
                Reduce::Min => vals.fold(f64::INFINITY, f64::min),
                Reduce::Max => vals.fold(f64::NEG_INFINITY, f64::max),
            })
        }
    };
    if spec.per.is_none()
        && let (Some(v), Some(mut suff)) = (m.value, total.sufficient)
    {
        if let Sufficient::Quantile { n, q, bounds, .. } = &mut suff
            && let Some((l, u, _)) =
                stagegate_stats::interval::quantile_ranks(*n, *q, card.confidence())
        {
            let sql = compile::quantile_bounds_query(card, ctx.table, spec, *n, l, u);
            let r = ctx.rows(&sql).await?;
            *bounds = r.first().and_then(|r| Some((num(r, 0)?, num(r, 1)?)));
        }
        let u = interval_of(&suff, v, card.confidence(), target);
        m.interval = u.interval;
        m.interval_method = u.method.map(str::to_owned);
        m.sampled = u.sampled;
        m.more_events = u.more_events;
        m.note = u.note.map(str::to_owned);
    }
    if m.value.is_none() {
        m.note = Some(if m.rows == 0 {
            "no telemetry rows with a value in the pilot window".to_owned()
        } else {
            "the metric is undefined on these rows (zero denominator)".to_owned()
        });
    }
    Ok(m)
}

async fn relative(
    ctx: &mut Ctx<'_>,
    card: &AgentCard,
    spec: &MetricSpec,
    cmp: &stagegate_core::card::Compare,
    target: Target,
) -> Result<Measurement, PgError> {
    let Some(t) = &card.telemetry else {
        return Ok(Measurement::default());
    };
    let test = cmp.test_for(spec.kind);
    if !matches!(test, Some(TestKind::TwoProportions | TestKind::Welch)) {
        return Ok(Measurement {
            note: Some(
                "Mann-Whitney comparisons need every value; they run in-process, not in PostgreSQL"
                    .into(),
            ),
            ..Measurement::default()
        });
    }
    let roles = compile::Roles::new(t);
    let win = compile::window(card, &roles);
    let cohort = roles.expr("cohort").unwrap_or_else(|| "NULL::text".into());
    let in_pilot = match (&cmp.pilot_cohort, &cmp.control_cohort) {
        (Some(p), _) => format!("{cohort} = {}", compile::literal(p)),
        (None, Some(c)) => format!("{cohort} IS DISTINCT FROM {}", compile::literal(c)),
        (None, None) => "TRUE".into(),
    };
    let ts = roles.expr("timestamp").unwrap_or_else(|| "NULL".into());
    let (reference, pilot) = match cmp.against {
        Against::Baseline => {
            let w = cmp.baseline.as_ref();
            let start = w
                .map(|w| format!("{}T00:00:00Z", w.start))
                .unwrap_or_default();
            let end = w
                .and_then(|w| w.end.tomorrow().ok())
                .map(|d| format!("{d}T00:00:00Z"))
                .unwrap_or_default();
            let reference = format!(
                "{ts} >= {}::timestamptz AND {ts} < {}::timestamptz",
                compile::literal(&start),
                compile::literal(&end)
            );
            let pilot = if cmp.pilot_cohort.is_some() {
                format!("({win}) AND {in_pilot}")
            } else {
                format!("({win})")
            };
            (reference, pilot)
        }
        Against::Control => {
            let control = cmp.control_cohort.as_deref().unwrap_or_default();
            let reference = format!("({win}) AND {cohort} = {}", compile::literal(control));
            (
                reference.clone(),
                format!("({win}) AND NOT coalesce({reference}, FALSE) AND {in_pilot}"),
            )
        }
    };
    let keep = spec
        .filter
        .as_ref()
        .map(|f| format!("coalesce({}, FALSE)", compile::predicate(f, &roles)))
        .unwrap_or_else(|| "TRUE".into());
    let unit_role = cmp.unit.as_deref().unwrap_or("user");
    let user = roles.expr(unit_role).unwrap_or_else(|| "NULL::text".into());
    let threshold = match target {
        Target::Limit(t) => t,
        Target::Band(lo, _) => lo,
    };
    let per_unit = match &cmp.unit {
        Some(role) => {
            let covariate = match (&cmp.baseline, cmp.cuped) {
                (Some(w), true) => compile::date_window(&ts, w.start, w.end),
                _ => "FALSE".into(),
            };
            let sql = format!(
                "SELECT side, {user} AS unit, {} FROM (SELECT CASE WHEN coalesce({reference}, FALSE) THEN 0 WHEN coalesce({pilot}, FALSE) THEN 1 WHEN coalesce({covariate}, FALSE) THEN 2 END AS side, * FROM {}) AS t WHERE side IS NOT NULL AND {keep} GROUP BY side, unit ORDER BY side, unit",
                compile::unit_sums(spec, &roles),
                compile::ident(ctx.table)
            );
            let rows = ctx.rows(&sql).await?;
            let mut map: BTreeMap<u128, UnitSides> = BTreeMap::new();
            let mut rows_without_unit = 0u64;
            for r in &rows {
                let side = r.try_get::<i32, _>(0).unwrap_or(-1);
                let unit: Option<String> = r.try_get(1).ok().flatten();
                let sums = Sums {
                    y: num(r, 2).unwrap_or(0.0),
                    n: num(r, 3).unwrap_or(0.0),
                };
                let Some(key) = unit.and_then(|u| fingerprint(&Cell::Text(u.into()))) else {
                    rows_without_unit += sums.n as u64;
                    continue;
                };
                let e = map.entry(key).or_default();
                match side {
                    0 => e.reference = sums,
                    1 => e.pilot = sums,
                    2 => e.covariate = sums,
                    _ => {}
                }
            }
            Some(PerUnit {
                role: role.clone(),
                units: map.into_values().collect(),
                rows_without_unit,
            })
        }
        None => None,
    };
    let sql = format!(
        "SELECT side, count(DISTINCT {user})::float8 AS units, {} FROM (SELECT CASE WHEN coalesce({reference}, FALSE) THEN 0 WHEN coalesce({pilot}, FALSE) THEN 1 END AS side, * FROM {}) AS t WHERE side IS NOT NULL AND {keep} GROUP BY side ORDER BY side",
        compile::aggregates(spec, &roles, threshold),
        compile::ident(ctx.table)
    );
    let rows = ctx.rows(&sql).await?;
    let mut sides: [Option<Side>; 2] = [None, None];
    let mut units = [0u64; 2];
    for r in &rows {
        let side = r.try_get::<i32, _>(0).unwrap_or(-1);
        let Ok(i) = usize::try_from(side) else {
            continue;
        };
        if i > 1 {
            continue;
        }
        units[i] = num(r, 1).unwrap_or(0.0) as u64;
        let c = |k: usize| num(r, k + 2);
        sides[i] = Some(match spec.kind {
            MetricKind::Rate => Side::Rate(c(0).unwrap_or(0.0) as u64, c(1).unwrap_or(0.0) as u64),
            _ => Side::Summary(
                c(1).unwrap_or(0.0) as u64,
                c(0).unwrap_or(f64::NAN),
                c(2).unwrap_or(f64::NAN),
            ),
        });
    }
    let empty = || match spec.kind {
        MetricKind::Rate => Side::Rate(0, 0),
        _ => Side::Summary(0, f64::NAN, f64::NAN),
    };
    let [r, p] = sides;
    Ok(compare_sides(
        spec,
        cmp,
        r.unwrap_or_else(empty),
        p.unwrap_or_else(empty),
        (units[0], units[1]),
        per_unit,
        card.confidence(),
        target,
    ))
}

/// Measures the card's telemetry-sourced criteria inside PostgreSQL.
///
/// # Errors
/// [`PgError`]: no PostgreSQL source, no URL, or a failing query (named with its table).
pub async fn measure(url: &str, card: &AgentCard) -> Result<TelemetryOutcome, PgError> {
    let src = card
        .telemetry
        .as_ref()
        .and_then(|t| t.postgres.as_ref())
        .ok_or(PgError::NotPostgres)?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .map_err(|source| PgError::Query {
            table: src.table.clone(),
            source,
        })?;
    let mut digest = StreamDigest::new();
    let mut ctx = Ctx {
        pool: &pool,
        table: &src.table,
        digest: &mut digest,
    };
    let mut measurements = BTreeMap::new();
    for c in &card.success_criteria {
        if c.source != CriterionSource::Telemetry {
            continue;
        }
        let Some(spec) = &c.metric else { continue };
        let m = match &c.compare {
            None => plain(&mut ctx, card, spec, c.target()).await?,
            Some(cmp) => relative(&mut ctx, card, spec, cmp, c.target()).await?,
        };
        measurements.insert(c.id.clone(), m);
    }
    let roles = compile::Roles::new(card.telemetry.as_ref().ok_or(PgError::NotPostgres)?);
    let count_sql = format!(
        "SELECT count(*)::float8 FROM {} WHERE {}",
        compile::ident(&src.table),
        compile::window(card, &roles)
    );
    let rows_in_window = ctx
        .rows(&count_sql)
        .await?
        .first()
        .and_then(|r| num(r, 0))
        .unwrap_or(0.0) as u64;
    pool.close().await;
    let shown = format!("postgres:{}", src.table);
    Ok(TelemetryOutcome {
        measurements,
        rows_read: rows_in_window,
        rows_in_window,
        data_quality: DataQuality::default(),
        inputs: vec![InputDigest {
            role: InputRole::Telemetry,
            path: shown.clone(),
            sha256: digest.finish(),
        }],
        files: vec![shown],
    })
}
