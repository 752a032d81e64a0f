//! Webhook delivery against a local receiver, on SQLite and PostgreSQL (`STAGEGATE_TEST_PG`):
//! the signature verifies with the secret; a receiver that fails twice gets the third attempt
//! (three rows in the delivery log); a delivery pending when the server stops is sent by the
//! next one on the same database; dispatching twice sends once; a decision change fires only
//! when the decision changes; two workers on one PostgreSQL database never send a row twice.
//! Times are injected (no sleeping for backoff).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use stagegate_registry::{Act, Clock, Location, Registry};
use stagegate_server::cache::Cache;
use stagegate_server::webhooks::{EventType, WebhookConfig, Webhooks, signature};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Inbox {
    fail_first: usize,
    calls: usize,
    got: Vec<(HeaderMap, String)>,
}

async fn receive(
    State(inbox): State<Arc<Mutex<Inbox>>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let mut i = inbox.lock().unwrap();
    i.calls += 1;
    if i.calls <= i.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    i.got.push((headers, body));
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
