//! Webhook delivery against a local receiver, on SQLite and PostgreSQL (`STAGEGATE_TEST_PG`):
//! the signature verifies with the secret; a receiver that fails twice gets the third attempt
//! (three rows in the delivery log); a delivery pending when the server stops is sent by the
//! next one on the same database; dispatching twice sends once; a decision change fires only
//! when the decision changes; two workers on one PostgreSQL database never send a row twice.
//! Times are injected (no sleeping for backoff) — except in the tests of the worker loop
//! itself ([`run`]), which runs on the machine clock with a 50 ms backoff base and an hour's
//! tick: woken by a write, it retries on its own when the backoff ends, stops on shutdown
//! between two POSTs (the claimed rest released), and a new worker on the same database sends
//! what was pending at once; those tests only wait, up to a timeout, for what must happen.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use stagegate_registry::{Act, Clock, Location, Registry};
use stagegate_server::cache::Cache;
use stagegate_server::webhooks::{EventType, WebhookConfig, Webhooks, run, signature};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Inbox {
    fail_first: usize,
    /// When set, each request waits for a permit before it is answered.
    gate: Option<Arc<tokio::sync::Semaphore>>,
    calls: usize,
    got: Vec<(HeaderMap, String)>,
}

async fn receive(
    State(inbox): State<Arc<Mutex<Inbox>>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let (fail, gate) = {
        let mut i = inbox.lock().unwrap();
        i.calls += 1;
        (i.calls <= i.fail_first, i.gate.clone())
    };
    if let Some(g) = gate {
        g.acquire().await.unwrap().forget();
    }
    if fail {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    inbox.lock().unwrap().got.push((headers, body));
    StatusCode::OK
}

/// A receiver on a free port; returns its URL.
async fn receiver(inbox: Arc<Mutex<Inbox>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(inbox);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

fn act(day: &str) -> Act {
    Act {
        as_of: Some(day.parse().unwrap()),
        clock: Clock {
            now: format!("{day}T09:00:00Z").parse().unwrap(),
            overridden: true,
        },
        actor: "ci".into(),
    }
}

fn review(decision: &str, digest: &str) -> serde_json::Value {
    serde_json::json!({
        "agent": {"id": "agent-x-y", "name": "X", "version": "1"},
        "review_date": "2026-06-12", "digest": digest,
        "decision": {"outcome": decision, "target_launch": "2026-07-01", "post_launch_review": "2026-07-31"},
        "pilot": {"start": "2026-05-01", "end": "2026-06-10"},
        "items": [{"number": 1, "status": "pass"}],
    })
}

const SECRET: &str = "0123456789abcdef-secret";

fn config() -> WebhookConfig {
    WebhookConfig {
        backoff_base_ms: 100,
        ..WebhookConfig::default()
    }
}

async fn scenario(location: Location, key: &std::path::Path) {
    let reg = Registry::open(&location, true, Some(key)).await.unwrap();
    reg.start_pilot(
        "agent-x-y",
        "X",
        "sha256:aa",
        serde_json::json!([]),
        "Cai",
        &act("2026-05-01"),
    )
    .await
    .unwrap();
    let inbox = Arc::new(Mutex::new(Inbox {
        fail_first: 2,
        ..Inbox::default()
    }));
    let url = receiver(inbox.clone()).await;
    let hooks = Webhooks::new(reg.clone(), config()).unwrap();
    let cache = Cache::new(reg.clone());
    let head = cache.snapshot().await.unwrap().state.size;
    let sub = hooks
        .subscribe(
            &url,
            SECRET,
            &[EventType::ReviewRecorded, EventType::DecisionChanged],
            "test",
            "2026-06-12T00:00:00Z".parse().unwrap(),
            head,
        )
        .await
        .unwrap();
    // The past is not sent: nothing yet.
    let today = jiff::civil::date(2026, 6, 12);
    assert_eq!(
        hooks
            .dispatch(&cache.snapshot().await.unwrap(), today, 14, 0)
            .await
            .unwrap(),
        0
    );

    reg.record_review_json(&review("Blocked", "sha256:01"), &act("2026-06-12"))
        .await
        .unwrap();
    cache.invalidate();
    let snap = cache.snapshot().await.unwrap();
    // First review: recorded, no decision change (nothing before it). Twice: once.
    assert_eq!(hooks.dispatch(&snap, today, 14, 1_000).await.unwrap(), 1);
    assert_eq!(hooks.dispatch(&snap, today, 14, 1_000).await.unwrap(), 0);

    // Fails twice (backoff 100 ms, then 200 ms), delivered on the third attempt.
    assert_eq!(hooks.deliver_due(1_000).await.unwrap(), 0);
    assert_eq!(
        hooks.deliver_due(1_050).await.unwrap(),
        0,
        "not due before its backoff"
    );
    assert_eq!(hooks.deliver_due(1_100).await.unwrap(), 0);
    assert_eq!(hooks.deliver_due(1_299).await.unwrap(), 0);
    assert_eq!(hooks.deliver_due(1_300).await.unwrap(), 1);
    let log = hooks.deliveries(&sub.id).await.unwrap();
    assert_eq!(
        log.iter()
            .map(|d| (d.attempt, d.status_code))
            .collect::<Vec<_>>(),
        vec![(1, Some(500)), (2, Some(500)), (3, Some(200))]
    );
    assert!(log.iter().all(|d| d.state == "delivered"));
    {
        let i = inbox.lock().unwrap();
        let (h, body) = &i.got[0];
        let ts: i64 = h["x-stagegate-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            h["x-stagegate-signature"].to_str().unwrap(),
            format!("sha256={}", signature(SECRET, ts, body))
        );
        assert_ne!(
            signature("another secret, long enough", ts, body),
            signature(SECRET, ts, body)
        );
        assert_eq!(h["x-stagegate-event"], "review-recorded");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(
            v["text"].as_str().unwrap().contains("agent-x-y"),
            "Slack-compatible: {v}"
        );
        assert_eq!(v["stagegate"]["decision"], "Blocked");
    }

    // A decision change fires; the same decision again does not.
    reg.record_review_json(&review("Cleared", "sha256:02"), &act("2026-06-13"))
        .await
        .unwrap();
    reg.record_review_json(&review("Cleared", "sha256:03"), &act("2026-06-14"))
        .await
        .unwrap();
    cache.invalidate();
    let snap = cache.snapshot().await.unwrap();
    // Two reviews recorded + one decision change (Blocked → Cleared), not two.
    assert_eq!(hooks.dispatch(&snap, today, 14, 2_000).await.unwrap(), 3);

    // The server stops with these pending and the receiver down…
    inbox.lock().unwrap().fail_first = usize::MAX;
    assert_eq!(hooks.deliver_due(2_000).await.unwrap(), 0);
    drop(hooks);
    drop(cache);
    reg.close().await;
    // …and a new one on the same database sends them once the receiver is back.
    inbox.lock().unwrap().fail_first = 0;
    let reg = Registry::open(&location, false, Some(key)).await.unwrap();
    let hooks = Webhooks::new(reg.clone(), config()).unwrap();
    assert_eq!(hooks.deliver_due(2_100).await.unwrap(), 3);
    let got = inbox.lock().unwrap().got.len();
    assert_eq!(got, 4);
    let kinds: Vec<String> = inbox
        .lock()
        .unwrap()
        .got
        .iter()
        .map(|(h, _)| h["x-stagegate-event"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "decision-changed").count(),
        1,
        "{kinds:?}"
    );
    // Nothing left to send.
    assert_eq!(hooks.deliver_due(100_000).await.unwrap(), 0);

    // Time-based notifications: the pilot ended 2026-06-10 and was last reviewed 2026-06-14;
    // in September the latest review counted no kill-switch drill (evidence stale), and
    // nothing else fires; each fires once.
    let cache = Cache::new(reg.clone());
    let snap = cache.snapshot().await.unwrap();
    let timed = hooks
        .subscribe(
            &url,
            SECRET,
            &[
                EventType::EvidenceStale,
                EventType::PilotPurgatory,
                EventType::OpenItemOverdue,
            ],
            "test",
            "2026-09-01T00:00:00Z".parse().unwrap(),
            snap.state.size,
        )
        .await
        .unwrap();
    let sept = jiff::civil::date(2026, 9, 1);
    let n = hooks.dispatch(&snap, sept, 14, 200_000).await.unwrap();
    assert_eq!(
        hooks.dispatch(&snap, sept, 14, 200_000).await.unwrap(),
        0,
        "each fires once"
    );
    assert_eq!(hooks.deliver_due(200_000).await.unwrap(), n);
    let log = hooks.deliveries(&timed.id).await.unwrap();
    let types: Vec<&str> = log.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(types, vec!["evidence-stale"], "{log:?}");
    reg.verify(&[]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(
        Location::Sqlite(dir.path().join("r.db")),
        &dir.path().join("r.key"),
    )
    .await;
}

async fn pg_database(tag: &str) -> Option<String> {
    let Ok(admin) = std::env::var("STAGEGATE_TEST_PG") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the PostgreSQL webhook tests"
        );
        eprintln!("skipping: STAGEGATE_TEST_PG is not set");
        return None;
    };
    let name = format!("sg_hooks_{tag}_{}", std::process::id());
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut c)
            .await
            .unwrap();
    }
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    Some(url.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_on_postgres() {
    let Some(url) = pg_database("a").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    scenario(Location::Postgres(url), &dir.path().join("r.key")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_never_send_a_row_twice() {
    let Some(url) = pg_database("b").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("r.key");
    let loc = Location::Postgres(url);
    let reg = Registry::open(&loc, true, Some(&key)).await.unwrap();
    reg.start_pilot(
        "agent-x-y",
        "X",
        "sha256:aa",
        serde_json::json!([]),
        "Cai",
        &act("2026-05-01"),
    )
    .await
    .unwrap();
    let inbox = Arc::new(Mutex::new(Inbox::default()));
    let hook_url = receiver(inbox.clone()).await;
    let hooks = Webhooks::new(reg.clone(), config()).unwrap();
    hooks
        .subscribe(
            &hook_url,
            SECRET,
            &[EventType::ReviewRecorded],
            "test",
            "2026-06-12T00:00:00Z".parse().unwrap(),
            0,
        )
        .await
        .unwrap();
    for i in 0..40 {
        reg.record_review_json(
            &review("Blocked", &format!("sha256:{i:02}")),
            &act("2026-06-12"),
        )
        .await
        .unwrap();
    }
    let cache = Cache::new(reg.clone());
    let snap = cache.snapshot().await.unwrap();
    assert_eq!(
        hooks
            .dispatch(&snap, jiff::civil::date(2026, 6, 12), 14, 0)
            .await
            .unwrap(),
        40
    );
    // Two replicas, each with its own pool, deliver at once.
    let other = Registry::open(&loc, false, Some(&key)).await.unwrap();
    let a = Webhooks::new(reg.clone(), config()).unwrap();
    let b = Webhooks::new(other, config()).unwrap();
    let (x, y) = tokio::join!(
        async {
            let mut n = 0;
            for _ in 0..5 {
                n += a.deliver_due(10).await.unwrap();
            }
            n
        },
        async {
            let mut n = 0;
            for _ in 0..5 {
                n += b.deliver_due(10).await.unwrap();
            }
            n
        },
    );
    assert_eq!(x + y, 40);
    let got = inbox.lock().unwrap();
    let mut ids: Vec<String> = got
        .got
        .iter()
        .map(|(h, _)| h["x-stagegate-delivery"].to_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (got.got.len(), ids.len()),
        (40, 40),
        "each delivery sent once"
    );
}

/// Waits (up to 10 s) until `done` holds.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Settings for the worker loop: a 50 ms backoff base, and a tick of an hour, so that only
/// a write or a due retry can wake the worker within a test.
fn loop_config() -> WebhookConfig {
    WebhookConfig {
        backoff_base_ms: 50,
        tick_seconds: 3600,
        ..WebhookConfig::default()
    }
}

type Worker = (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
    Arc<Cache>,
);

/// Starts the worker as `stagegate serve` does, on the machine clock.
fn start(hooks: &Webhooks, reg: &Registry) -> Worker {
    let cache = Arc::new(Cache::new(reg.clone()));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let clock: stagegate_server::ClockFn = Arc::new(jiff::Timestamp::now);
    let handle = tokio::spawn(run(hooks.clone(), cache.clone(), clock, 14, rx));
    (tx, handle, cache)
}

/// Stops it and waits for it to end.
async fn stop(worker: Worker) {
    let (tx, handle, _) = worker;
    let _ = tx.send(true);
    tokio::time::timeout(std::time::Duration::from_secs(10), handle)
        .await
        .expect("the worker stops on shutdown")
        .unwrap();
}

async fn subscribed(reg: &Registry, hooks: &Webhooks, url: &str) -> String {
    reg.start_pilot(
        "agent-x-y",
        "X",
        "sha256:aa",
        serde_json::json!([]),
        "Cai",
        &act("2026-05-01"),
    )
    .await
    .unwrap();
    let head = reg.size().await.unwrap();
    hooks
        .subscribe(
            url,
            SECRET,
            &[EventType::ReviewRecorded],
            "test",
            "2026-06-12T00:00:00Z".parse().unwrap(),
            head,
        )
        .await
        .unwrap()
        .id
}

/// The worker loop: woken by a write, retries on its own, and what it left pending when it
/// stopped is sent by the next worker on the same database.
async fn worker_scenario(location: Location, key: &std::path::Path) {
    let reg = Registry::open(&location, true, Some(key)).await.unwrap();
    let inbox = Arc::new(Mutex::new(Inbox {
        fail_first: 2,
        ..Inbox::default()
    }));
    let url = receiver(inbox.clone()).await;
    let hooks = Webhooks::new(reg.clone(), loop_config()).unwrap();
    let sub = subscribed(&reg, &hooks, &url).await;
    let worker = start(&hooks, &reg);

    // A write wakes it (the tick is an hour); the receiver fails twice, and the worker
    // retries when each backoff ends, with no write or tick to wake it.
    reg.record_review_json(&review("Blocked", "sha256:01"), &act("2026-06-12"))
        .await
        .unwrap();
    worker.2.invalidate();
    until("three attempts, the third delivered", async || {
        let log = hooks.deliveries(&sub).await.unwrap();
        log.len() == 3 && log.iter().all(|d| d.state == "delivered")
    })
    .await;
    let codes: Vec<_> = hooks
        .deliveries(&sub)
        .await
        .unwrap()
        .iter()
        .map(|d| (d.attempt, d.status_code))
        .collect();
    assert_eq!(codes, vec![(1, Some(500)), (2, Some(500)), (3, Some(200))]);
    let (h, body) = inbox.lock().unwrap().got[0].clone();
    let ts: i64 = h["x-stagegate-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        h["x-stagegate-signature"].to_str().unwrap(),
        format!("sha256={}", signature(SECRET, ts, &body))
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&v["stagegate"]["type"], &v["stagegate"]["at"]),
        (
            &serde_json::json!("review-recorded"),
            &serde_json::json!("2026-06-12")
        ),
        "{v}"
    );

    // The receiver goes down; a review is recorded; the worker fails once and stops.
    inbox.lock().unwrap().fail_first = usize::MAX;
    reg.record_review_json(&review("Cleared", "sha256:02"), &act("2026-06-13"))
        .await
        .unwrap();
    worker.2.invalidate();
    until("a failed attempt at the second delivery", async || {
        hooks.deliveries(&sub).await.unwrap().len() > 3
    })
    .await;
    stop(worker).await;
    drop(hooks);
    reg.close().await;
    let failed = hooks_failed_attempts(&inbox);

    // The receiver is back; a new worker on the same database sends it.
    inbox.lock().unwrap().fail_first = 0;
    let reg = Registry::open(&location, false, Some(key)).await.unwrap();
    let hooks = Webhooks::new(reg.clone(), loop_config()).unwrap();
    let worker = start(&hooks, &reg);
    until("the pending delivery sent after the restart", async || {
        inbox.lock().unwrap().got.len() == 2
    })
    .await;
    until("its delivery logged", async || {
        hooks
            .deliveries(&sub)
            .await
            .unwrap()
            .iter()
            .all(|d| d.state == "delivered")
    })
    .await;
    stop(worker).await;
    let last = inbox.lock().unwrap().got[1].1.clone();
    let v: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["stagegate"]["decision"], "Cleared");
    assert!(failed >= 1);
    reg.verify(&[]).await.unwrap();
}

/// Requests the receiver refused so far.
fn hooks_failed_attempts(inbox: &Arc<Mutex<Inbox>>) -> usize {
    let i = inbox.lock().unwrap();
    i.calls - i.got.len()
}

/// Shutdown between two POSTs of one batch: the POST in flight finishes, the rest of the
/// batch is given back (not left leased for a minute), and the next worker sends it at once.
async fn shutdown_scenario(location: Location, key: &std::path::Path) {
    let reg = Registry::open(&location, true, Some(key)).await.unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let inbox = Arc::new(Mutex::new(Inbox {
        gate: Some(gate.clone()),
        ..Inbox::default()
    }));
    let url = receiver(inbox.clone()).await;
    let config = loop_config();
    assert!(config.batch() >= 3 && config.lease_ms >= 60_000);
    let hooks = Webhooks::new(reg.clone(), config).unwrap();
    let sub = subscribed(&reg, &hooks, &url).await;
    for i in 1..=3 {
        reg.record_review_json(
            &review("Blocked", &format!("sha256:{i:02}")),
            &act("2026-06-12"),
        )
        .await
        .unwrap();
    }
    let worker = start(&hooks, &reg);
    until("the first POST in flight", async || {
        inbox.lock().unwrap().calls >= 1
    })
    .await;
    // Shutdown while it is in flight; then it is answered.
    worker.0.send(true).unwrap();
    gate.add_permits(1000);
    stop(worker).await;
    assert_eq!(inbox.lock().unwrap().calls, 1, "no POST after shutdown");
    let log = hooks.deliveries(&sub).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].state, "delivered");

    let hooks = Webhooks::new(reg.clone(), loop_config()).unwrap();
    let worker = start(&hooks, &reg);
    until("the released rows sent by the next worker", async || {
        inbox.lock().unwrap().got.len() == 3
    })
    .await;
    stop(worker).await;
    let got = inbox.lock().unwrap();
    let mut ids: Vec<_> = got
        .got
        .iter()
        .map(|(h, _)| h["x-stagegate-delivery"].to_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((got.calls, ids.len()), (3, 3), "each sent once");
}

/// A write while the worker is busy POSTing wakes it once the pass ends (the tick is an
/// hour and nothing else is pending: a missed wake-up would leave it asleep).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_during_a_pass_is_not_missed() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Sqlite(dir.path().join("r.db"));
    let reg = Registry::open(&location, true, Some(&dir.path().join("r.key")))
        .await
        .unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let inbox = Arc::new(Mutex::new(Inbox {
        gate: Some(gate.clone()),
        ..Inbox::default()
    }));
    let url = receiver(inbox.clone()).await;
    let hooks = Webhooks::new(reg.clone(), loop_config()).unwrap();
    subscribed(&reg, &hooks, &url).await;
    let worker = start(&hooks, &reg);
    reg.record_review_json(&review("Blocked", "sha256:01"), &act("2026-06-12"))
        .await
        .unwrap();
    worker.2.invalidate();
    until("the first POST in flight", async || {
        inbox.lock().unwrap().calls >= 1
    })
    .await;
    reg.record_review_json(&review("Cleared", "sha256:02"), &act("2026-06-13"))
        .await
        .unwrap();
    worker.2.invalidate();
    // The pass ends only now, after the write.
    gate.add_permits(1000);
    until("the second review sent", async || {
        inbox.lock().unwrap().got.len() == 2
    })
    .await;
    stop(worker).await;
}

/// A POST that gets no answer is logged with its cause but without the URL (a Slack
/// incoming-webhook URL is a secret, and the delivery log is served over the API).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_post_is_logged_without_its_url() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Sqlite(dir.path().join("r.db"));
    let reg = Registry::open(&location, true, Some(&dir.path().join("r.key")))
        .await
        .unwrap();
    // A port nobody listens on any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/services/T0/B0/secret-token");
    let hooks = Webhooks::new(reg.clone(), config()).unwrap();
    let sub = subscribed(&reg, &hooks, &url).await;
    reg.record_review_json(&review("Blocked", "sha256:01"), &act("2026-06-12"))
        .await
        .unwrap();
    let snap = Cache::new(reg.clone()).snapshot().await.unwrap();
    let today = jiff::civil::date(2026, 6, 12);
    assert_eq!(hooks.dispatch(&snap, today, 14, 0).await.unwrap(), 1);
    assert_eq!(hooks.deliver_due(0).await.unwrap(), 0);
    let log = hooks.deliveries(&sub).await.unwrap();
    assert_eq!(log.len(), 1);
    let error = log[0].error.as_deref().unwrap();
    assert!(log[0].status_code.is_none());
    assert!(!error.contains("secret-token"), "{error}");
    assert!(error.to_lowercase().contains("connect"), "{error}");
    assert_eq!(log[0].state, "pending");
    assert_eq!(
        hooks.next_due().await.unwrap(),
        Some(100),
        "base 100 ms after 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    worker_scenario(
        Location::Sqlite(dir.path().join("r.db")),
        &dir.path().join("r.key"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_on_postgres() {
    let Some(url) = pg_database("c").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    worker_scenario(Location::Postgres(url), &dir.path().join("r.key")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_the_batch_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    shutdown_scenario(
        Location::Sqlite(dir.path().join("r.db")),
        &dir.path().join("r.key"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_the_batch_on_postgres() {
    let Some(url) = pg_database("d").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    shutdown_scenario(Location::Postgres(url), &dir.path().join("r.key")).await;
}

#[test]
fn settings_keep_a_batch_within_its_lease() {
    let d = WebhookConfig::default();
    d.check().unwrap();
    // Five POSTs of at most 10 s each fit in the 60 s lease with a timeout to spare.
    assert_eq!(d.batch(), 5);
    assert_eq!(
        (1..=4).map(|a| d.backoff(a)).collect::<Vec<_>>(),
        vec![1000, 2000, 4000, 8000]
    );
    assert_eq!(d.backoff(40), d.backoff_cap_ms);
    let short_lease = WebhookConfig {
        lease_ms: 10_000,
        ..d
    };
    assert!(short_lease.check().is_err());
    let slow = WebhookConfig {
        timeout_ms: 30_000,
        ..d
    };
    assert_eq!(slow.batch(), 1);
    let fast = WebhookConfig {
        timeout_ms: 100,
        ..d
    };
    assert_eq!(fast.batch(), 32);
}
