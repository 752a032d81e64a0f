//! The registry cannot be edited quietly: SQL edits abort, and edits behind the triggers'
//! back break the hash chain.

use jiff::civil::date;
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use stagegate_core::review::{Review, ReviewInput, review};
use stagegate_registry::{Registry, RegistryError};
use std::path::Path;

fn example_review() -> Review {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/finance-invoice-recon");
    let folder = stagegate_load::load_agent(&dir, None).unwrap();
    let t = stagegate_telemetry::measure(&dir, &folder.card.card).unwrap();
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
        inputs,
        as_of: date(2026, 6, 12),
    })
}

#[tokio::test]
async fn edits_are_refused_and_tampering_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("registry.db");
    let reg = Registry::open(&path, true).await.unwrap();
    reg.start_pilot(
        "agent-finance-invoice-recon",
        "Finance",
        "sha256:aa",
        "[]",
        date(2026, 5, 12),
        "M",
    )
    .await
    .unwrap();
    let r = example_review();
    let a = reg
        .record_review(&r, "2026-06-12T10:00:00Z", "ci")
        .await
        .unwrap();
    let b = reg
        .record_review(&r, "2026-06-12T11:00:00Z", "ci")
        .await
        .unwrap();
    assert_eq!((a, b), (1, 2));
    assert_eq!(reg.verify_chain().await.unwrap(), 2);
    assert_eq!(
        reg.history(Some("agent-finance-invoice-recon"))
            .await
            .unwrap()
            .len(),
        2
    );
    reg.close().await;

    let mut conn = SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .unwrap();
    for sql in [
        "UPDATE reviews SET decision = 'Blocked' WHERE id = 1",
        "DELETE FROM reviews WHERE id = 2",
        "UPDATE review_items SET status = 'pass' WHERE review_id = 1",
        "DELETE FROM review_inputs",
        "UPDATE stage_events SET stage = 'production'",
        "DELETE FROM criteria_locks",
    ] {
        let e = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    // Someone drops the trigger and edits the stored report.
    sqlx::query("DROP TRIGGER reviews_no_update")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE reviews SET report_json = replace(report_json, 'Cleared', 'Blocked') WHERE id = 1",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);

    let reg = Registry::open(&path, false).await.unwrap();
    match reg.verify_chain().await {
        Err(RegistryError::Tampered { id, why }) => {
            assert_eq!(id, 1);
            assert!(why.contains("edited"), "{why}");
        }
        other => panic!("tampering not detected: {other:?}"),
    }
}

#[tokio::test]
async fn promotion_needs_pilot_stage_and_a_clearing_signed_review() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::open(&tmp.path().join("r.db"), true)
        .await
        .unwrap();
    let agent = "agent-finance-invoice-recon";
    let on = date(2026, 6, 13);
    assert!(matches!(
        reg.promote(agent, on, "x").await,
        Err(RegistryError::Rule(_))
    ));
    assert!(
        reg.start_pilot(agent, "Finance", "sha256:aa", "[]", date(2026, 5, 12), "M")
            .await
            .unwrap()
    );
    assert!(
        !reg.start_pilot(agent, "Finance", "sha256:aa", "[]", date(2026, 5, 12), "M")
            .await
            .unwrap()
    );
    assert!(matches!(
        reg.start_pilot(agent, "Finance", "sha256:bb", "[]", date(2026, 5, 20), "M").await,
        Err(RegistryError::Rule(m)) if m.contains("cannot be locked again")
    ));
    // No review yet.
    assert!(
        matches!(reg.promote(agent, on, "x").await, Err(RegistryError::Rule(m)) if m.contains("no review"))
    );
    // A Blocked review does not promote.
    let mut r = example_review();
    r.decision.outcome = stagegate_core::decision::Outcome::Blocked;
    reg.record_review(&r, "t", "ci").await.unwrap();
    assert!(
        matches!(reg.promote(agent, on, "x").await, Err(RegistryError::Rule(m)) if m.contains("Blocked"))
    );
    // A Cleared one does.
    let r = example_review();
    assert_eq!(
        r.decision.outcome,
        stagegate_core::decision::Outcome::Cleared
    );
    let id = reg.record_review(&r, "t", "ci").await.unwrap();
    assert_eq!(reg.promote(agent, on, "x").await.unwrap(), id);
    let stages = reg.stage_events(agent).await.unwrap();
    assert_eq!(
        stages.iter().map(|s| s.stage.as_str()).collect::<Vec<_>>(),
        ["pilot", "production"]
    );
    assert!(matches!(
        reg.start_pilot(agent, "Finance", "sha256:aa", "[]", on, "M").await,
        Err(RegistryError::Rule(m)) if m.contains("already in production")
    ));
}
