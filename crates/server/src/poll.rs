//! Polled telemetry of rolling-out agents: a PostgreSQL table of events, or a Prometheus
//! server's cumulative counters, read every few seconds into the same tallies as spans pushed
//! to `/v1/traces`, then judged by the same controller.
//!
//! Each source has a cursor per rollout in the registry (`telemetry_cursors`): the table's
//! last time read, or the counters' last values. A poll reads from the cursor, then moves it
//! and stores the tally in one transaction, only from the value it read
//! (`Store::add_polled_tally`), so replicas polling the same source count each event once
//! and a restart resumes where the last poll stopped. Sources are configured by whoever runs
//! the server (`telemetry:` in its configuration), never by the agent's builder.
//!
//! - **PostgreSQL**: one row per event; the row's columns are the fields the triggers name
//!   (`to_jsonb(row)`), the variant column says `on` (treatment) or `off` (control). Rows
//!   with `time_column` after the cursor (and after the phase window's start) and at least
//!   `settle_seconds` old are read; younger rows wait for the next poll, and a row inserted
//!   more than `settle_seconds` after its own time is missed (say so in the source's contract).
//! - **Prometheus**: per trigger, instant queries (`/api/v1/query`) returning cumulative
//!   counters by the variant label: `count` and, for a mean trigger, `sum` and `sum_squares`
//!   of its per-event value; for a rate trigger, `set` (events where it is set). The events
//!   between two polls are the counters' increase (`stagegate_rollout::counters`); the first
//!   poll of a phase window only records where the counters stand.

use crate::AppState;
use serde::{Deserialize, Serialize};
use serde_json::Value as J;
use stagegate_rollout::counters::{CounterSnapshot, Counters, increase};
use stagegate_rollout::plan::TriggerMetric;
use stagegate_rollout::{Arm, Fields, Rollout, Tally};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// One `telemetry:` entry of the server's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The agent whose rollout it feeds.
    pub agent: String,
    /// Seconds between polls (15).
    #[serde(default = "default_every")]
    pub every_seconds: u64,
    /// A PostgreSQL table or view of events.
    #[serde(default)]
    pub postgres: Option<PostgresSource>,
    /// A Prometheus server's counters.
    #[serde(default)]
    pub prometheus: Option<PrometheusSource>,
}

fn default_every() -> u64 {
    15
}

/// A table (or view) of events, one row each.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSource {
    /// The environment variable holding the `postgres://` URL (credentials stay out of the
    /// configuration file).
    pub url_env: String,
    /// `table` or `schema.table`.
    pub table: String,
    /// The event time, a `timestamptz` column (`time`).
    #[serde(default = "default_time")]
    pub time_column: String,
    /// The flag variant the event was served with, `on` or `off` (`variant`).
    #[serde(default = "default_variant")]
    pub variant_column: String,
    /// When the table holds several agents: the column naming the agent.
    #[serde(default)]
    pub agent_column: Option<String>,
    /// Rows younger than this many seconds are left for the next poll (5), so rows of
    /// transactions still open are not skipped.
    #[serde(default = "default_settle")]
    pub settle_seconds: u64,
}

fn default_time() -> String {
    "time".into()
}

fn default_variant() -> String {
    "variant".into()
}

fn default_settle() -> u64 {
    5
}

/// A Prometheus server and, per trigger id, the queries of its counters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSource {
    /// The server, e.g. `http://prometheus:9090`.
    pub url: String,
    /// The label carrying the variant, `on` or `off` (`variant`).
    #[serde(default = "default_variant")]
    pub variant_label: String,
    /// Per trigger id, its counters' queries.
    pub triggers: BTreeMap<String, CounterQueries>,
}

/// PromQL instant queries, each giving one cumulative counter per variant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterQueries {
    /// Events.
    pub count: String,
    /// Σ of the per-event value (mean triggers).
    #[serde(default)]
    pub sum: Option<String>,
    /// Σ of its squares (mean triggers).
    #[serde(default)]
    pub sum_squares: Option<String>,
    /// Events where the field is set (rate triggers).
    #[serde(default)]
    pub set: Option<String>,
}

/// A configured source, ready to poll.
#[derive(Debug, Clone)]
pub struct Source {
    /// The agent it feeds.
    pub agent: String,
    /// Its name in the cursor table and the rollout view: `postgres:<schema>.<table>` (schema
    /// `public` when the configuration gives none) or `prometheus:<url>` normalised; replicas
    /// polling one source must name it the same way, or each counts its events.
    pub name: String,
    /// Between polls.
    pub every: Duration,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Postgres {
        pool: sqlx::PgPool,
        /// The SELECT, identifiers quoted; `$1` after, `$2` until, `$3` the agent.
        sql: String,
        by_agent: bool,
        variant: String,
        settle: jiff::SignedDuration,
    },
    Prometheus {
        client: reqwest::Client,
        query_url: url::Url,
        label: String,
        triggers: BTreeMap<String, CounterQueries>,
    },
}

/// A `telemetry:` entry that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("telemetry source {index} ({agent}): {message}")]
pub struct SourceError {
    /// Its place in the list, from 0.
    pub index: usize,
    /// Its agent.
    pub agent: String,
    /// What is wrong.
    pub message: String,
}

/// PostgreSQL's `quote_ident`: double quotes around, inner quotes doubled.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl Source {
    /// Checks a configuration entry and prepares it (the PostgreSQL pool connects lazily,
    /// on the first poll). `env` reads environment variables.
    ///
    /// # Errors
    /// [`SourceError`]: neither or both of `postgres` and `prometheus`, an unset URL
    /// variable, an unusable URL, an empty table name, `every_seconds` of 0.
    pub fn open(
        index: usize,
        c: &SourceConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Source, SourceError> {
        let err = |message: String| SourceError {
            index,
            agent: c.agent.clone(),
            message,
        };
        if c.every_seconds == 0 {
            return Err(err("every_seconds must be at least 1".into()));
        }
        let (name, kind) = match (&c.postgres, &c.prometheus) {
            (Some(p), None) => {
                let url = env(&p.url_env).ok_or_else(|| {
                    err(format!(
                        "postgres.url_env: the variable {} is not set",
                        p.url_env
                    ))
                })?;
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_lazy(&url)
                    .map_err(|e| err(format!("postgres.url_env {}: {e}", p.url_env)))?;
                let parts: Vec<&str> = p.table.splitn(2, '.').collect();
                if parts.iter().any(|s| s.is_empty()) {
                    return Err(err(format!(
                        "postgres.table {:?}: expected table or schema.table",
                        p.table
                    )));
                }
                let table: Vec<String> = parts.iter().map(|s| quote_ident(s)).collect();
                let time = quote_ident(&p.time_column);
                let mut sql = format!(
                    "SELECT to_jsonb(t)::text FROM {} AS t WHERE t.{time} > $1::timestamptz AND t.{time} <= $2::timestamptz",
                    table.join(".")
                );
                if let Some(a) = &p.agent_column {
                    sql.push_str(&format!(" AND t.{}::text = $3", quote_ident(a)));
                }
                sql.push_str(&format!(" ORDER BY t.{time}"));
                // The cursor's key: `schema.table` (PostgreSQL's default schema spelled out), so
                // `t` and `public.t` are one source.
                let qualified = if parts.len() == 1 {
                    format!("public.{}", parts[0])
                } else {
                    p.table.clone()
                };
                (
                    format!("postgres:{qualified}"),
                    Kind::Postgres {
                        pool,
                        sql,
                        by_agent: p.agent_column.is_some(),
                        variant: p.variant_column.clone(),
                        settle: jiff::SignedDuration::from_secs(
                            i64::try_from(p.settle_seconds).unwrap_or(i64::MAX / 2),
                        ),
                    },
                )
            }
            (None, Some(p)) => {
                let base = url::Url::parse(&p.url)
                    .map_err(|e| err(format!("prometheus.url {:?}: {e}", p.url)))?;
                let query_url = base
                    .join("api/v1/query")
                    .map_err(|e| err(format!("prometheus.url {:?}: {e}", p.url)))?;
                if p.triggers.is_empty() {
                    return Err(err("prometheus.triggers: name at least one trigger".into()));
                }
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| err(format!("an HTTP client: {e}")))?;
                (
                    // Normalised (`http://p:9090` and `http://p:9090/` are one source).
                    format!("prometheus:{base}"),
                    Kind::Prometheus {
                        client,
                        query_url,
                        label: p.variant_label.clone(),
                        triggers: p.triggers.clone(),
                    },
                )
            }
            _ => {
                return Err(err(
                    "give exactly one of postgres: and prometheus:".to_owned()
                ));
            }
        };
        Ok(Source {
            agent: c.agent.clone(),
            name,
            every: Duration::from_secs(c.every_seconds),
            kind,
        })
    }
}

/// The last poll of a source, as this replica saw it (shown in the rollout view).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PollStatus {
    /// `postgres:<table>` or `prometheus:<url>`.
    pub source: String,
    /// When (RFC 3339).
    pub at: String,
    /// Treatment and control events read.
    pub events: [u64; 2],
    /// Rows or series not used, and why.
    pub skipped: Vec<String>,
    /// Why the poll failed, when it did (the rollout then sees no new data from it, and
    /// pauses at the window's end for lack of data rather than advancing).
    pub error: Option<String>,
}

/// Each source's last poll, per agent.
#[derive(Debug, Default)]
pub struct Polls(Mutex<BTreeMap<String, BTreeMap<String, PollStatus>>>);

impl Polls {
    /// The agent's sources' last polls, by source name.
    pub fn of(&self, agent: &str) -> Vec<PollStatus> {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.get(agent)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    fn set(&self, agent: &str, s: PollStatus) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.entry(agent.to_owned())
            .or_default()
            .insert(s.source.clone(), s);
    }
}

/// What one poll did.
#[derive(Debug, Clone, PartialEq)]
pub enum Polled {
    /// The agent has no running rollout: nothing read.
    Idle,
    /// Events read and stored (possibly none), the cursor moved.
    Read(PollStatus),
    /// Another replica moved the cursor first: nothing stored.
    Lost,
}

/// Polls `source` once: reads what is new since its cursor, stores it with the moved cursor,
/// and has the controller judge the rollout when anything was read.
///
/// # Errors
/// A message for the rollout view: the source or the registry could not be read, or the
/// source's answer did not make sense.
pub async fn poll_once(app: &AppState, source: &Source) -> Result<Polled, String> {
    let snap = app
        .cache
        .snapshot()
        .await
        .map_err(|e| format!("the registry: {e}"))?;
    let Some(r) = snap
        .state
        .agents
        .get(&source.agent)
        .and_then(|a| a.rollout.clone())
        .filter(|r| r.status == stagegate_rollout::Status::Running)
    else {
        return Ok(Polled::Idle);
    };
    let store = app.registry.store();
    let cursor = store
        .telemetry_cursor(&source.agent, r.started_seq, &source.name)
        .await
        .map_err(|e| format!("the registry: {e}"))?;
    let now = (app.clock)();
    let (tally, next, skipped) = match &source.kind {
        Kind::Postgres {
            pool,
            sql,
            by_agent,
            variant,
            settle,
        } => {
            read_table(
                source,
                &r,
                cursor.as_deref(),
                now,
                pool,
                sql,
                *by_agent,
                variant,
                *settle,
            )
            .await?
        }
        Kind::Prometheus {
            client,
            query_url,
            label,
            triggers,
        } => {
            read_counters(
                &r,
                cursor.as_deref(),
                now,
                client,
                query_url,
                label,
                triggers,
            )
            .await?
        }
    };
    let json = (tally.events != [0, 0])
        .then(|| serde_json::to_string(&tally).expect("a tally serialises"));
    let won = store
        .add_polled_tally(
            &source.agent,
            r.started_seq,
            i64::from(r.epoch),
            &source.name,
            cursor.as_deref(),
            &next,
            json.as_deref(),
            &now.to_string(),
        )
        .await
        .map_err(|e| format!("the registry: {e}"))?;
    if !won {
        return Ok(Polled::Lost);
    }
    if json.is_some() {
        metrics::counter!("stagegate_rollout_polled_events_total", "agent" => source.agent.clone())
            .increment(tally.events[0] + tally.events[1]);
        crate::rollout::drive(app, &source.agent)
            .await
            .map_err(|p| format!("the controller: {}", p.title))?;
    }
    Ok(Polled::Read(PollStatus {
        source: source.name.clone(),
        at: now.to_string(),
        events: tally.events,
        skipped,
        error: None,
    }))
}

/// One row of an event table: its columns as a JSON object.
struct Row<'a>(&'a serde_json::Map<String, J>);

impl Fields for Row<'_> {
    fn number(&self, field: &str) -> Option<f64> {
        crate::rollout::json_number(self.0.get(field)?)
    }

    fn is_set(&self, field: &str) -> Option<bool> {
        Some(crate::rollout::json_is_set(self.0.get(field)?))
    }
}

/// The events of the table after the cursor: their tally, the new cursor (the time read up
/// to) and what was skipped.
#[allow(clippy::too_many_arguments)]
async fn read_table(
    source: &Source,
    r: &Rollout,
    cursor: Option<&str>,
    now: jiff::Timestamp,
    pool: &sqlx::PgPool,
    sql: &str,
    by_agent: bool,
    variant: &str,
    settle: jiff::SignedDuration,
) -> Result<(Tally, String, Vec<String>), String> {
    use futures_util::TryStreamExt;
    let after = cursor
        .and_then(|c| c.parse::<jiff::Timestamp>().ok())
        .map_or(r.window_start, |c| c.max(r.window_start));
    let until = now
        .checked_sub(settle)
        .map_err(|e| format!("the settle time: {e}"))?;
    let mut tally = Tally::new(&r.plan);
    if until <= after {
        let same = cursor.map_or_else(|| after.to_string(), str::to_owned);
        return Ok((tally, same, vec![]));
    }
    let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(after.to_string())
        .bind(until.to_string());
    if by_agent {
        q = q.bind(source.agent.clone());
    }
    let mut rows = q.fetch(pool);
    let mut bad = 0u64;
    while let Some(text) = rows
        .try_next()
        .await
        .map_err(|e| format!("{}: {e}", source.name))?
    {
        let Ok(J::Object(row)) = serde_json::from_str::<J>(&text) else {
            bad += 1;
            continue;
        };
        let arm = match row.get(variant).and_then(J::as_str) {
            Some("on") => Arm::Treatment,
            Some("off") => Arm::Control,
            _ => {
                bad += 1;
                continue;
            }
        };
        tally.add(&r.plan, arm, &Row(&row));
    }
    let skipped = (bad > 0)
        .then(|| format!("{bad} rows without {variant} on or off"))
        .into_iter()
        .collect();
    Ok((tally, until.to_string(), skipped))
}

/// A Prometheus source's cursor: the counters at the last poll, in which phase window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CounterCursor {
    epoch: u32,
    window_start: jiff::Timestamp,
    counters: CounterSnapshot,
}

/// The counters' increase since the cursor (none on a window's first poll).
async fn read_counters(
    r: &Rollout,
    cursor: Option<&str>,
    now: jiff::Timestamp,
    client: &reqwest::Client,
    query_url: &url::Url,
    label: &str,
    queries: &BTreeMap<String, CounterQueries>,
) -> Result<(Tally, String, Vec<String>), String> {
    let mut counters = CounterSnapshot::new();
    let mut skipped = Vec::new();
    for t in &r.plan.triggers {
        let Some(q) = queries.get(&t.id) else {
            continue;
        };
        let rate = matches!(t.metric, TriggerMetric::Rate { .. });
        let (sum, squares) = match (rate, &q.set, &q.sum, &q.sum_squares) {
            (true, Some(set), _, _) => (set, set),
            (false, _, Some(s), Some(s2)) => (s, s2),
            (true, ..) => {
                skipped.push(format!("{}: a rate trigger needs a set query", t.id));
                continue;
            }
            (false, ..) => {
                skipped.push(format!(
                    "{}: a mean trigger needs sum and sum_squares queries",
                    t.id
                ));
                continue;
            }
        };
        let count = instant(client, query_url, &q.count, now, label).await?;
        let sum = instant(client, query_url, sum, now, label).await?;
        let squares = if rate {
            sum
        } else {
            instant(client, query_url, squares, now, label).await?
        };
        counters.insert(
            t.id.clone(),
            [0, 1].map(|a| Counters {
                count: count[a],
                sum: sum[a],
                sum_squares: squares[a],
            }),
        );
    }
    let before = cursor
        .and_then(|c| serde_json::from_str::<CounterCursor>(c).ok())
        .filter(|c| c.epoch == r.epoch && c.window_start == r.window_start);
    let tally = match &before {
        Some(b) => {
            let inc = increase(&r.plan, &b.counters, &counters);
            skipped.extend(
                inc.skipped
                    .into_iter()
                    .map(|(id, why)| format!("{id}: {why}")),
            );
            inc.tally
        }
        None => Tally::new(&r.plan),
    };
    let next = CounterCursor {
        epoch: r.epoch,
        window_start: r.window_start,
        counters,
    };
    Ok((
        tally,
        serde_json::to_string(&next).expect("a cursor serialises"),
        skipped,
    ))
}

/// One instant query: the value per arm (treatment, control); a variant without a series is 0.
async fn instant(
    client: &reqwest::Client,
    query_url: &url::Url,
    query: &str,
    at: jiff::Timestamp,
    label: &str,
) -> Result<[f64; 2], String> {
    let answer: J = client
        .get(query_url.clone())
        .query(&[("query", query), ("time", &at.to_string())])
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("{query_url} {query:?}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{query_url} {query:?}: not JSON: {e}"))?;
    if answer.get("status").and_then(J::as_str) != Some("success") {
        return Err(format!(
            "{query_url} {query:?}: {}",
            answer
                .get("error")
                .and_then(J::as_str)
                .unwrap_or("not a success")
        ));
    }
    let data = &answer["data"];
    if data.get("resultType").and_then(J::as_str) != Some("vector") {
        return Err(format!(
            "{query_url} {query:?}: the result is not an instant vector"
        ));
    }
    let mut out = [0.0; 2];
    for series in data["result"].as_array().into_iter().flatten() {
        let arm = match series["metric"].get(label).and_then(J::as_str) {
            Some("on") => 0,
            Some("off") => 1,
            _ => continue,
        };
        let value = series["value"]
            .get(1)
            .and_then(J::as_str)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{query_url} {query:?}: a sample that is not a number"))?;
        out[arm] += value;
    }
    Ok(out)
}

/// Polls each source every `every` until the task is dropped, recording each poll's outcome
/// for the rollout view and counting failures (`stagegate_rollout_poll_errors_total`).
pub async fn run(app: AppState, source: Source) {
    let mut every = tokio::time::interval(source.every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match poll_once(&app, &source).await {
            Ok(Polled::Read(s)) => app.polls.set(&source.agent, s),
            Ok(Polled::Idle | Polled::Lost) => {}
            Err(e) => {
                tracing::warn!(agent = %source.agent, source = %source.name, error = %e, "telemetry poll");
                metrics::counter!("stagegate_rollout_poll_errors_total", "source" => source.name.clone())
                    .increment(1);
                app.polls.set(
                    &source.agent,
                    PollStatus {
                        source: source.name.clone(),
                        at: (app.clock)().to_string(),
                        events: [0, 0],
                        skipped: vec![],
                        error: Some(e),
                    },
                );
            }
        }
    }
}
