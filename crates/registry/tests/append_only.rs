//! The event log at library level: SQL edits abort, edits behind the triggers' back are named
//! by `verify`, the rules of the log hold, and checkpoints catch truncation. (The CLI tamper
//! suite, on a registry built by real commands, is `crates/stagegate/tests/tamper.rs`.)

use jiff::civil::date;
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use stagegate_core::review::{Review, ReviewInput, review};
use stagegate_registry::{Act, Clock, Registry, RegistryError};
use std::path::Path;

fn example_review() -> Review {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/finance-invoice-recon");
    let folder = stagegate_load::load_agent(&dir, None).unwrap();
    let t = stagegate_telemetry::measure(&dir, &folder.card.card).unwrap();
    let allowed: &'static _ = Box::leak(Box::new(
        stagegate_trust::AllowedSigners::parse(
            &std::fs::read_to_string(dir.join("../allowed_signers")).unwrap(),
        )
        .unwrap(),
    ));
    let mut inputs = folder.inputs.clone();
    inputs.extend(t.inputs.clone());
    review(&ReviewInput {
        card: &folder.card.card,
        template: &folder.template.template,
        template_source: folder.template.source.clone(),
        evidence: &folder.evidence.records,
        measurements: &t.measurements,
        telemetry_rows: t.rows_in_window,
        data_quality: t.data_quality.clone(),
        telemetry_files: t.files.clone(),
        runbook_sha256: folder.runbook_sha256.clone(),
        criteria_lock: None,
        allowed_signers: Some(allowed),
        allowed_signers_file: None,
        inputs,
        as_of: date(2026, 6, 12),
    })
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

const AGENT: &str = "agent-finance-invoice-recon";

async fn start(reg: &Registry, digest: &str, day: &str) -> Result<bool, RegistryError> {
    reg.start_pilot(
        AGENT,
        "Finance",
        digest,
        serde_json::json!([]),
        "M",
        &act(day),
    )
    .await
}

#[tokio::test]
async fn edits_are_refused_and_tampering_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("registry.db");
    let reg = Registry::open(&path, true, None).await.unwrap();
    assert!(start(&reg, "sha256:aa", "2026-05-12").await.unwrap());
    let r = example_review();
    let a = reg.record_review(&r, &act("2026-06-12")).await.unwrap();
    let b = reg.record_review(&r, &act("2026-06-12")).await.unwrap();
    // 1 registry-created, 2 agent, 3 lock, 4 pilot stage, 5 and 6 the reviews.
    assert_eq!((a, b), (5, 6));
    let v = reg.verify(&[]).await.unwrap();
    assert_eq!(v.events, 6);
    assert_eq!(v.clock_overrides, 6);
    assert_eq!(reg.history(Some(AGENT)).await.unwrap().len(), 2);
    let lock = reg.criteria_lock(AGENT).await.unwrap().unwrap();
    assert_eq!(lock.locked_at, date(2026, 5, 12));
    assert!(lock.clock_overridden);
    let kept = reg.checkpoint().await.unwrap();
    assert!(
        stagegate_registry::Checkpoint::parse(&kept.to_text()).unwrap() == kept,
        "checkpoint text round-trips"
    );
    reg.close().await;

    let mut conn = SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .unwrap();
    for sql in [
        "UPDATE events SET body = '{}' WHERE seq = 5",
        "DELETE FROM events WHERE seq = 6",
    ] {
        let e = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    // Someone drops the trigger and edits the stored decision.
    sqlx::query("DROP TRIGGER events_no_update")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("UPDATE events SET actor = 'mallory' WHERE seq = 5")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);

    let reg = Registry::open(&path, false, None).await.unwrap();
    match reg.verify(&[]).await {
        Err(RegistryError::Tampered { seq, why }) => {
            assert_eq!(seq, 5);
            assert!(why.contains("edited"), "{why}");
        }
        other => panic!("tampering not detected: {other:?}"),
    }
    // Reading state refuses too: nothing is derived from a log that does not verify.
    assert!(matches!(
        reg.stage(AGENT).await,
        Err(RegistryError::Tampered { seq: 5, .. })
    ));
}

#[tokio::test]
async fn truncation_shows_only_against_a_kept_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("registry.db");
    let reg = Registry::open(&path, true, None).await.unwrap();
    start(&reg, "sha256:aa", "2026-05-12").await.unwrap();
    reg.record_review(&example_review(), &act("2026-06-12"))
        .await
        .unwrap();
    let kept = reg.checkpoint().await.unwrap();
    reg.close().await;
    let mut conn = SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER events_no_delete")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM events WHERE seq = 5")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let reg = Registry::open(&path, false, None).await.unwrap();
    // The shorter log is internally consistent…
    assert_eq!(reg.verify(&[]).await.unwrap().events, 4);
    // …but not with what was kept.
    match reg.verify(&[kept]).await {
        Err(RegistryError::Tampered { seq, why }) => {
            assert_eq!(seq, 5);
            assert!(why.contains("removed"), "{why}");
        }
        other => panic!("truncation not detected: {other:?}"),
    }
}

#[tokio::test]
async fn promotion_needs_pilot_stage_and_a_clearing_signed_review() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::open(&tmp.path().join("r.db"), true, None)
        .await
        .unwrap();
    let on = act("2026-06-13");
    let ok = |_: &serde_json::Value, _: &dyn Fn(&str) -> jiff::civil::Date| {
        Ok(vec!["SHA256:x".to_owned()])
    };
    assert!(matches!(
        reg.promote(AGENT, &on, &[], ok).await,
        Err(RegistryError::Rule(_))
    ));
    assert!(start(&reg, "sha256:aa", "2026-05-12").await.unwrap());
    assert!(!start(&reg, "sha256:aa", "2026-05-12").await.unwrap());
    assert!(matches!(
        start(&reg, "sha256:bb", "2026-05-20").await,
        Err(RegistryError::Rule(m)) if m.contains("cannot be locked again")
    ));
    assert!(
        matches!(reg.promote(AGENT, &on, &[], ok).await, Err(RegistryError::Rule(m)) if m.contains("no review"))
    );
    // A Blocked review does not promote.
    let mut r = example_review();
    r.decision.outcome = stagegate_core::decision::Outcome::Blocked;
    reg.record_review(&r, &act("2026-06-12")).await.unwrap();
    assert!(
        matches!(reg.promote(AGENT, &on, &[], ok).await, Err(RegistryError::Rule(m)) if m.contains("Blocked"))
    );
    // A Cleared one whose signatures do not verify does not either.
    let r = example_review();
    assert_eq!(
        r.decision.outcome,
        stagegate_core::decision::Outcome::Cleared
    );
    let id = reg.record_review(&r, &act("2026-06-12")).await.unwrap();
    assert!(matches!(
        reg.promote(AGENT, &on, &[], |_, _| Err("forged".into())).await,
        Err(RegistryError::Rule(m)) if m.contains("forged")
    ));
    // The re-verification learns when each signature was first on record: with no sign-off
    // event, the day the review carrying it was recorded.
    assert_eq!(
        reg.promote(AGENT, &on, &[], |_, recorded| {
            assert_eq!(recorded("any signature"), date(2026, 6, 12));
            ok(&serde_json::Value::Null, recorded)
        })
        .await
        .unwrap(),
        id
    );
    let stages = reg.stage_events(AGENT).await.unwrap();
    assert_eq!(
        stages.iter().map(|s| s.stage.as_str()).collect::<Vec<_>>(),
        ["pilot", "production"]
    );
    assert!(matches!(
        start(&reg, "sha256:aa", "2026-06-13").await,
        Err(RegistryError::Rule(m)) if m.contains("already in production")
    ));
    reg.verify(&[]).await.unwrap();
}

#[tokio::test]
async fn a_registry_refuses_a_key_it_was_not_created_with() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("r.db");
    let reg = Registry::open(&path, true, None).await.unwrap();
    start(&reg, "sha256:aa", "2026-05-12").await.unwrap();
    reg.close().await;
    let other = tmp.path().join("other.key");
    std::fs::write(
        &other,
        stagegate_trust::RegistryKey::from_seed(&[9; 32])
            .to_openssh()
            .unwrap(),
    )
    .unwrap();
    let reg = Registry::open(&path, false, Some(&other)).await.unwrap();
    assert!(matches!(
        reg.record_review(&example_review(), &act("2026-06-12")).await,
        Err(RegistryError::Key { message, .. }) if message.contains("not the one")
    ));
}

#[tokio::test]
async fn the_clock_mode_is_fixed_by_the_first_event() {
    let machine = |day: &str| Act {
        clock: Clock {
            overridden: false,
            ..act(day).clock
        },
        ..act(day)
    };
    // Kept on the machine clock: an overridden recording time is refused.
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::open(&tmp.path().join("r.db"), true, None)
        .await
        .unwrap();
    reg.record_review(&example_review(), &machine("2026-06-12"))
        .await
        .unwrap();
    match reg
        .record_review(&example_review(), &act("2026-06-12"))
        .await
    {
        Err(RegistryError::Rule(m)) => assert!(m.contains("STAGEGATE_NOW is refused"), "{m}"),
        other => panic!("an overridden clock was accepted: {other:?}"),
    }
    let v = reg.verify(&[]).await.unwrap();
    assert!(!v.replay_clock);
    assert_eq!((v.events, v.clock_overrides), (3, 0));
    // Created under an override: a replay registry, and it says so.
    let reg = Registry::open(&tmp.path().join("replay.db"), true, None)
        .await
        .unwrap();
    reg.record_review(&example_review(), &act("2026-06-12"))
        .await
        .unwrap();
    reg.record_review(&example_review(), &machine("2026-06-13"))
        .await
        .unwrap();
    assert!(reg.verify(&[]).await.unwrap().replay_clock);
}
