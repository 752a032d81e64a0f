//! Polled telemetry: a PostgreSQL table of events and a Prometheus server's counters feed the
//! same controller as pushed spans. Each event counts once even when two replicas poll the
//! same source at once; a regression in the polled data rolls the rollout back; a source
//! that fails or answers nonsense says so and stores nothing.

use serde_json::{Value, json};
use stagegate_registry::Registry;
use stagegate_server::AppState;
use stagegate_server::poll::{Polled, Source, SourceConfig, poll_once};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

mod common;
use common::*;

/// Window start of the rollout `start` below (the act's clock).
const START: i64 = 1_781_514_000; // 2026-06-15T09:00:00Z

fn plan() -> stagegate_rollout::RolloutPlan {
    serde_json::from_value(json!({
        "flag": FLAG,
        "phases": [
            {"name": "Half", "traffic_pct": 50, "min_duration": "1 week", "min_sample": 100},
            {"name": "Everyone", "traffic_pct": 100, "min_duration": "1 week"}
        ],
        "triggers": [
            {"id": "output_tokens",
             "metric": {"kind": "mean", "of": [{"field": "gen_ai.usage.output_tokens"}]},
             "comparator": ">", "threshold": 10, "relative_to": "control", "on_fail": "zero"},
            {"id": "errors", "metric": {"kind": "rate", "field": "error.type"},
             "comparator": ">", "threshold": 50}
        ]
    }))
    .unwrap()
}

async fn start(reg: &Registry) {
    start_rollout(reg, plan()).await;
}

/// A server state whose clock reads `now` (Unix seconds).
fn state(reg: &Registry, now: &Arc<AtomicI64>) -> AppState {
    let mut s = AppState::new(reg.clone());
    let now = now.clone();
    s.clock = Arc::new(move || jiff::Timestamp::from_second(now.load(Ordering::SeqCst)).unwrap());
    s
}

/// Stored tallies of the current phase: (batches, treatment events, control events).
async fn stored(reg: &Registry) -> (usize, u64, u64) {
    let state = reg.state().await.unwrap();
    let r = state.agents[AGENT].rollout.clone().unwrap();
    let rows = reg
        .store()
        .tallies(AGENT, r.started_seq, i64::from(r.epoch))
        .await
        .unwrap();
    let (mut t, mut c) = (0, 0);
    for row in &rows {
        let tally: stagegate_rollout::Tally = serde_json::from_str(row).unwrap();
        t += tally.events[0];
        c += tally.events[1];
    }
    (rows.len(), t, c)
}

async fn phase(reg: &Registry) -> (Option<usize>, stagegate_rollout::Status) {
    let r = reg.state().await.unwrap().agents[AGENT]
        .rollout
        .clone()
        .unwrap();
    (r.phase, r.status)
}

fn read(p: Polled) -> stagegate_server::poll::PollStatus {
    match p {
        Polled::Read(s) => s,
        other => panic!("expected a read, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_table_counted_once_across_replicas_and_a_regression_rolls_back() {
    // The registry of two replicas on PostgreSQL, and the events' table in the same server.
    let Some((db, admin, _pgdir, reg)) = production_pg("poll").await else {
        return;
    };
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&db);
    let pool = sqlx::PgPool::connect(url.as_str()).await.unwrap();
    sqlx::query(
        r#"CREATE TABLE agent_events (
            "at" timestamptz NOT NULL, variant text, agent text NOT NULL,
            "gen_ai.usage.output_tokens" bigint, "error.type" text)"#,
    )
    .execute(&pool)
    .await
    .unwrap();
    // `n` events of an agent from second `from` after the window's start, every other one
    // served with the flag on, whose output tokens are multiplied by `factor`.
    let insert = |from: i64, n: i64, factor: f64, agent: &'static str| {
        let pool = pool.clone();
        async move {
            for i in 0..n {
                let on = i % 2 == 0;
                let tokens = ((100 + (i * 37) % 91) as f64 * if on { factor } else { 1.0 }) as i64;
                sqlx::query(
                    r#"INSERT INTO agent_events VALUES (to_timestamp($1), $2, $3, $4, $5)"#,
                )
                .bind((START + from + i) as f64)
                .bind(if on { "on" } else { "off" })
                .bind(agent)
                .bind(tokens)
                .bind((i % 50 == 0).then_some("timeout"))
                .execute(&pool)
                .await
                .unwrap();
            }
        }
    };
    start(&reg).await;
    let config: SourceConfig = serde_saphyr::from_str(&format!(
        "agent: {AGENT}\npostgres:\n  url_env: EVENTS_PG\n  table: public.agent_events\n  time_column: at\n  agent_column: agent\n"
    ))
    .unwrap();
    let env = |k: &str| (k == "EVENTS_PG").then(|| url.to_string());
    let source = Source::open(0, &config, env).unwrap();
    let now = Arc::new(AtomicI64::new(START + 600));
    let (a, b) = (state(&reg, &now), state(&reg, &now));

    // 300 events of the agent, 40 of another, one row with a variant nobody serves; two
    // replicas poll at once: the events are stored once.
    insert(1, 300, 1.0, AGENT).await;
    insert(1, 40, 1.0, "agent-other").await;
    sqlx::query("INSERT INTO agent_events VALUES (to_timestamp($1), 'blue', $2, 1, NULL)")
        .bind((START + 2) as f64)
        .bind(AGENT)
        .execute(&pool)
        .await
        .unwrap();
    let (x, y) = tokio::join!(poll_once(&a, &source), poll_once(&b, &source));
    let (x, y) = (x.unwrap(), y.unwrap());
    let events: u64 = [&x, &y]
        .iter()
        .map(|p| match p {
            Polled::Read(s) => s.events[0] + s.events[1],
            _ => 0,
        })
        .sum();
    assert_eq!(events, 300, "{x:?} {y:?}");
    assert_eq!(stored(&reg).await, (1, 150, 150));
    let skipped: Vec<String> = [&x, &y]
        .iter()
        .filter_map(|p| match p {
            Polled::Read(s) if s.events != [0, 0] => Some(s.skipped.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(skipped, ["1 rows without variant on or off"]);
    // Nothing new: nothing stored. Rows younger than the settle time wait for the next poll.
    insert(597, 4, 1.0, AGENT).await;
    let s = read(poll_once(&a, &source).await.unwrap());
    assert_eq!(s.events, [0, 0], "{s:?}");
    now.fetch_add(10, Ordering::SeqCst);
    let s = read(poll_once(&b, &source).await.unwrap());
    assert_eq!(s.events, [2, 2], "{s:?}");
    assert_eq!(stored(&reg).await, (2, 152, 152));
    assert_eq!(
        phase(&reg).await,
        (Some(0), stagegate_rollout::Status::Running)
    );

    // The agent's answers grow twice as long: the rollout goes back to 0% on that poll.
    insert(700, 1_000, 2.0, AGENT).await;
    now.fetch_add(1_200, Ordering::SeqCst);
    let s = read(poll_once(&a, &source).await.unwrap());
    assert_eq!(s.events, [500, 500], "{s:?}");
    assert_eq!(phase(&reg).await.0, None, "rolled back to 0%");
    let last = reg.events().await.unwrap().last().unwrap().clone();
    let body = serde_json::to_value(&last).unwrap().to_string();
    assert!(
        body.contains("output_tokens") && body.contains("failed"),
        "{body}"
    );
    // Rolled back: the rollout is not running, the source is not read.
    assert_eq!(poll_once(&b, &source).await.unwrap(), Polled::Idle);

    // A table that is not there: an error naming the source, nothing stored.
    let reg2 = production_registry().await;
    start(&reg2.1).await;
    let config: SourceConfig = serde_saphyr::from_str(&format!(
        "agent: {AGENT}\npostgres: {{url_env: EVENTS_PG, table: nowhere}}\n"
    ))
    .unwrap();
    let missing = Source::open(0, &config, env).unwrap();
    let e = poll_once(&state(&reg2.1, &now), &missing)
        .await
        .unwrap_err();
    assert!(
        e.contains("postgres:public.nowhere") && e.contains("nowhere"),
        "{e}"
    );
    assert_eq!(stored(&reg2.1).await, (0, 0, 0));
    pool.close().await;
}

/// A stand-in Prometheus: `/api/v1/query` answers each known query with one series per
/// variant from `values`; unknown queries get Prometheus's error shape.
async fn prometheus(values: Arc<std::sync::Mutex<Value>>) -> String {
    use axum::extract::{Query, State};
    let app = axum::Router::new()
        .route(
            "/api/v1/query",
            axum::routing::get(
                |State(v): State<Arc<std::sync::Mutex<Value>>>,
                 Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    let v = v.lock().unwrap().clone();
                    let Some(pair) = v.get(&q["query"]) else {
                        return axum::Json(json!({"status": "error", "errorType": "bad_data", "error": "unknown metric"}));
                    };
                    let t = &q["time"];
                    axum::Json(json!({"status": "success", "data": {"resultType": "vector", "result": [
                        {"metric": {"variant": "on"}, "value": [t, pair[0].to_string()]},
                        {"metric": {"variant": "off"}, "value": [t, pair[1].to_string()]},
                        {"metric": {"variant": "canary"}, "value": [t, "99"]}
                    ]}}))
                },
            ),
        )
        .with_state(values);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Cumulative counters after `n` events per arm whose output tokens are 100–190 (× `factor`
/// on the treatment arm), 1 in 50 an error.
fn counters(n: u64, factor: f64, base: &mut [[f64; 5]; 2]) -> Value {
    for (arm, c) in base.iter_mut().enumerate() {
        for i in 0..n {
            let x = (100 + (i * 37) % 91) as f64 * if arm == 0 { factor } else { 1.0 };
            c[0] += 1.0;
            c[1] += x;
            c[2] += x * x;
            c[3] += 1.0;
            c[4] += f64::from(u8::from(i % 50 == 0));
        }
    }
    let pair = |k: usize| json!([base[0][k], base[1][k]]);
    json!({
        "tokens_count": pair(0), "tokens_sum": pair(1), "tokens_sum_squares": pair(2),
        "requests": pair(3), "errors": pair(4)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_counters_increase_judged_and_resets_and_errors_reported() {
    let values = Arc::new(std::sync::Mutex::new(json!({})));
    let url = prometheus(values.clone()).await;
    let (_dir, reg) = production_registry().await;
    start(&reg).await;
    let config: SourceConfig = serde_saphyr::from_str(&format!(
        "agent: {AGENT}\nprometheus:\n  url: {url}\n  triggers:\n    output_tokens: {{count: tokens_count, sum: tokens_sum, sum_squares: tokens_sum_squares}}\n    errors: {{count: requests, set: errors}}\n"
    ))
    .unwrap();
    let source = Source::open(0, &config, |_| None).unwrap();
    assert_eq!(source.name, format!("prometheus:{url}/"));
    let now = Arc::new(AtomicI64::new(START + 60));
    let app = state(&reg, &now);
    let mut base = [[0.0; 5]; 2];
    // Counters that ran before the window: the first poll only notes where they stand.
    *values.lock().unwrap() = counters(10_000, 1.0, &mut base);
    let s = read(poll_once(&app, &source).await.unwrap());
    assert_eq!(s.events, [0, 0], "{s:?}");
    // 200 events per arm since: stored as one batch with the same moments as event by event.
    *values.lock().unwrap() = counters(200, 1.0, &mut base);
    now.fetch_add(15, Ordering::SeqCst);
    let s = read(poll_once(&app, &source).await.unwrap());
    assert_eq!(s.events, [200, 200], "{s:?}");
    assert!(s.skipped.is_empty(), "{s:?}");
    assert_eq!(stored(&reg).await, (1, 200, 200));
    let r = reg.state().await.unwrap().agents[AGENT]
        .rollout
        .clone()
        .unwrap();
    let row = &reg
        .store()
        .tallies(AGENT, r.started_seq, i64::from(r.epoch))
        .await
        .unwrap()[0];
    let tally: stagegate_rollout::Tally = serde_json::from_str(row).unwrap();
    let mut want = stagegate_stats::sequential::Moments::default();
    (0..200u64).for_each(|i| want.push((100 + (i * 37) % 91) as f64));
    let got = tally.triggers[0].treatment;
    assert!((got.mean - want.mean).abs() < 1e-9 && (got.m2 - want.m2).abs() < 1e-6 * want.m2);
    assert_eq!(tally.triggers[1].control.n, 200);
    assert!((tally.triggers[1].control.mean - 4.0 / 200.0).abs() < 1e-12);

    // A process restarted: the request counter went down. That trigger's interval is left
    // out and said so, the other counted.
    {
        let mut v = values.lock().unwrap();
        *v = counters(100, 1.0, &mut base);
        v["requests"] = json!([5.0, 5.0]);
    }
    now.fetch_add(15, Ordering::SeqCst);
    let s = read(poll_once(&app, &source).await.unwrap());
    assert_eq!(s.events, [100, 100], "{s:?}");
    assert_eq!(s.skipped, ["errors: a counter went down (reset)"], "{s:?}");

    // Prometheus answers an error: said, nothing stored, the cursor stays.
    let before = stored(&reg).await;
    let good = values.lock().unwrap().clone();
    values
        .lock()
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove("tokens_sum");
    let e = poll_once(&app, &source).await.unwrap_err();
    assert!(
        e.contains("tokens_sum") && e.contains("unknown metric"),
        "{e}"
    );
    assert_eq!(stored(&reg).await, before);
    *values.lock().unwrap() = good;

    // The agent's answers grow twice as long: rolled back to 0% on the poll that sees it.
    // (The request counter continues from where it restarted.)
    base[0][3] = 5.0;
    base[1][3] = 5.0;
    *values.lock().unwrap() = counters(600, 2.0, &mut base);
    now.fetch_add(15, Ordering::SeqCst);
    let s = read(poll_once(&app, &source).await.unwrap());
    assert_eq!(s.events, [600, 600], "{s:?}");
    assert_eq!(phase(&reg).await.0, None, "rolled back to 0%");
    assert_eq!(poll_once(&app, &source).await.unwrap(), Polled::Idle);

    // The server's poll loop: a source that cannot be reached is reported in the rollout
    // view (here a port nobody listens on), the rollout left as it is.
    let (_dir2, reg2) = production_registry().await;
    start(&reg2).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let config: SourceConfig = serde_saphyr::from_str(&format!(
        "agent: {AGENT}\nevery_seconds: 1\nprometheus:\n  url: http://{closed}\n  triggers:\n    errors: {{count: requests, set: errors}}\n"
    ))
    .unwrap();
    let app2 = state(&reg2, &now);
    let task = tokio::spawn(stagegate_server::poll::run(
        app2.clone(),
        Source::open(0, &config, |_| None).unwrap(),
    ));
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = app2.polls.of(AGENT);
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    task.abort();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let e = seen[0].error.as_deref().unwrap_or_default();
    assert!(e.contains(&closed.to_string()), "{seen:?}");
    assert_eq!(
        phase(&reg2).await,
        (Some(0), stagegate_rollout::Status::Running)
    );

    // Configuration mistakes are named before anything runs.
    for (yaml, want) in [
        (format!("agent: {AGENT}\n"), "exactly one of postgres"),
        (
            format!("agent: {AGENT}\npostgres: {{url_env: NOT_SET, table: t}}\n"),
            "NOT_SET is not set",
        ),
        (
            format!("agent: {AGENT}\nprometheus: {{url: 'not a url', triggers: {{}}}}\n"),
            "prometheus.url",
        ),
        (
            format!(
                "agent: {AGENT}\nevery_seconds: 0\nprometheus: {{url: '{url}', triggers: {{}}}}\n"
            ),
            "every_seconds",
        ),
    ] {
        let c: SourceConfig = serde_saphyr::from_str(&yaml).unwrap();
        let e = Source::open(3, &c, |_| None).unwrap_err().to_string();
        assert!(
            e.contains(want) && e.starts_with("telemetry source 3"),
            "{e}"
        );
    }
}
