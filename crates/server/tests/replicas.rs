//! Two replicas on one PostgreSQL database (`STAGEGATE_TEST_PG`): a write through one is seen
//! by the other's cached state through LISTEN/NOTIFY alone (a listening replica does not ask
//! the head on each read), and both serve the same verified log.

use stagegate_registry::{Act, Clock, Location, Registry};
use stagegate_server::cache::{Cache, listen};
use std::sync::Arc;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_replica_reaches_the_other_through_notify() {
    let Ok(admin) = std::env::var("STAGEGATE_TEST_PG") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the replica test"
        );
        eprintln!("skipping: STAGEGATE_TEST_PG is not set");
        return;
    };
    let name = format!("sg_replicas_{}", std::process::id());
    {
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
    }
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("r.key");
    let loc = Location::Postgres(url.to_string());
    let a = Registry::open(&loc, true, Some(&key)).await.unwrap();
    a.start_pilot(
        "agent-x-one",
        "One",
        "sha256:aa",
        serde_json::json!([]),
        "Cai",
        &act("2026-05-01"),
    )
    .await
    .unwrap();
    let b = Registry::open(&loc, false, Some(&key)).await.unwrap();
    let replica = Arc::new(Cache::new(b));
    tokio::spawn(listen(replica.clone(), url.to_string()));
    for _ in 0..100 {
        if replica.is_listening() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(replica.is_listening(), "the replica never listened");
    assert_eq!(replica.snapshot().await.unwrap().state.agents.len(), 1);
    // The first replica writes; the second learns of it only through NOTIFY.
    a.start_pilot(
        "agent-x-two",
        "Two",
        "sha256:bb",
        serde_json::json!([]),
        "Cai",
        &act("2026-05-02"),
    )
    .await
    .unwrap();
    let mut seen = 0;
    for _ in 0..100 {
        seen = replica.snapshot().await.unwrap().state.agents.len();
        if seen == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(seen, 2, "the replica's cache was not refreshed by NOTIFY");
    let snap = replica.snapshot().await.unwrap();
    assert_eq!(snap.state.head, a.verify(&[]).await.unwrap().head);
}
