//! The event log at library level, on both backends (embedded SQLite and PostgreSQL): SQL
//! edits abort, edits behind the triggers' back are named by `verify`, the rules of the log
//! hold, checkpoints catch truncation, and concurrent writers queue on one head. (The CLI
//! tamper suite, on a registry built by real commands, is `crates/stagegate/tests/tamper.rs`.)
//! The PostgreSQL runs need `STAGEGATE_TEST_PG` (`.ci/run` sets it); each gets a new database.

use jiff::civil::date;
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use stagegate_core::review::{Review, ReviewInput, review};
use stagegate_registry::{Act, Clock, Location, Registry, RegistryError};
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

/// One test registry: where it is, its key, and the folder holding them.
struct Db {
    location: Location,
    key: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        Db {
            location: Location::Sqlite(dir.path().join("registry.db")),
            key: dir.path().join("registry.key"),
            _dir: dir,
        }
    }

    /// A new, empty PostgreSQL database on the `STAGEGATE_TEST_PG` server, or `None` (with the
    /// reason printed) outside CI when it is not set.
    async fn postgres() -> Option<Db> {
        use sqlx::Connection;
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let admin = match std::env::var("STAGEGATE_TEST_PG") {
            Ok(u) if !u.is_empty() => u,
            _ => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must run the PostgreSQL registry tests: STAGEGATE_TEST_PG is not set"
                );
                eprintln!("skipping the PostgreSQL registry test: STAGEGATE_TEST_PG is not set");
                return None;
            }
        };
        let name = format!(
            "sg_reg_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            jiff::Timestamp::now().as_millisecond()
        );
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&name);
        let dir = tempfile::tempdir().unwrap();
        Some(Db {
            location: Location::Postgres(url.to_string()),
            key: dir.path().join("registry.key"),
            _dir: dir,
        })
    }

    async fn open(&self, create: bool) -> Registry {
        Registry::open(&self.location, create, Some(&self.key))
            .await
            .unwrap()
    }

    /// Runs raw SQL behind the registry's back; returns the driver's error text on failure.
    async fn exec(&self, sql: &str) -> Result<(), String> {
        use sqlx::Connection;
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.location {
            Location::Sqlite(p) => {
                let mut c = SqliteConnectOptions::new()
                    .filename(p)
                    .connect()
                    .await
                    .unwrap();
                sqlx::query(sql)
                    .execute(&mut c)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            Location::Postgres(u) => {
                let mut c = sqlx::PgConnection::connect(u).await.unwrap();
                sqlx::query(sql)
                    .execute(&mut c)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Disables the append-only trigger(s), as someone with the database's owner rights can.
    async fn drop_triggers(&self) {
        match &self.location {
            Location::Sqlite(_) => {
                self.exec("DROP TRIGGER events_no_update").await.unwrap();
                self.exec("DROP TRIGGER events_no_delete").await.unwrap();
            }
            Location::Postgres(_) => {
                self.exec("ALTER TABLE events DISABLE TRIGGER events_no_update")
                    .await
                    .unwrap();
            }
        }
    }
}

/// Runs a scenario `async fn name(db: &Db)` on SQLite and on PostgreSQL.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(&super::Db::sqlite()).await
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(db) = super::Db::postgres().await {
                    super::$name(&db).await
                }
            }
        }
    };
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

on_both!(edits_are_refused_and_tampering_is_named);
async fn edits_are_refused_and_tampering_is_named(db: &Db) {
    let reg = db.open(true).await;
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

    for sql in [
        "UPDATE events SET body = '{}' WHERE seq = 5",
        "DELETE FROM events WHERE seq = 6",
    ] {
        let e = db.exec(sql).await.unwrap_err();
        assert!(e.contains("append-only"), "{sql}: {e}");
    }
    // Someone disables the triggers and edits a stored event.
    db.drop_triggers().await;
    db.exec("UPDATE events SET actor = 'mallory' WHERE seq = 5")
        .await
        .unwrap();

    let reg = db.open(false).await;
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

on_both!(truncation_shows_only_against_a_kept_checkpoint);
async fn truncation_shows_only_against_a_kept_checkpoint(db: &Db) {
    let reg = db.open(true).await;
    start(&reg, "sha256:aa", "2026-05-12").await.unwrap();
    reg.record_review(&example_review(), &act("2026-06-12"))
        .await
        .unwrap();
    let kept = reg.checkpoint().await.unwrap();
    reg.close().await;
    db.drop_triggers().await;
    db.exec("DELETE FROM events WHERE seq = 5").await.unwrap();
    let reg = db.open(false).await;
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

on_both!(promotion_needs_pilot_stage_and_a_clearing_signed_review);
async fn promotion_needs_pilot_stage_and_a_clearing_signed_review(db: &Db) {
    let reg = db.open(true).await;
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

on_both!(a_registry_refuses_a_key_it_was_not_created_with);
async fn a_registry_refuses_a_key_it_was_not_created_with(db: &Db) {
    let tmp = tempfile::tempdir().unwrap();
    let reg = db.open(true).await;
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
    let reg = Registry::open(&db.location, false, Some(&other))
        .await
        .unwrap();
    assert!(matches!(
        reg.record_review(&example_review(), &act("2026-06-12")).await,
        Err(RegistryError::Key { message, .. }) if message.contains("not the one")
    ));
}

on_both!(the_clock_mode_is_fixed_by_the_first_event);
async fn the_clock_mode_is_fixed_by_the_first_event(db: &Db) {
    let machine = |day: &str| Act {
        clock: Clock {
            overridden: false,
            ..act(day).clock
        },
        ..act(day)
    };
    // Kept on the machine clock: an overridden recording time is refused.
    let reg = db.open(true).await;
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
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::open(&Location::Sqlite(tmp.path().join("replay.db")), true, None)
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

on_both!(concurrent_writers_queue_on_one_head);
async fn concurrent_writers_queue_on_one_head(db: &Db) {
    let reg = db.open(true).await;
    start(&reg, "sha256:aa", "2026-05-12").await.unwrap();
    let review = example_review();
    // Twenty writers, each with its own connection pool, at once.
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let reg = db.open(false).await;
        let review = review.clone();
        writers.spawn(async move { reg.record_review(&review, &act("2026-06-12")).await });
    }
    let mut ids: Vec<i64> = writers
        .join_all()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (5..25).collect::<Vec<_>>());
    let v = reg.verify(&[]).await.unwrap();
    assert_eq!(v.events, 24);
    assert_eq!(reg.history(Some(AGENT)).await.unwrap().len(), 20);
}

on_both!(an_import_is_replayed_before_it_is_written);
async fn an_import_is_replayed_before_it_is_written(db: &Db) {
    use stagegate_registry::Event;
    let reg = Registry::open(&db.location, true, Some(&db.key))
        .await
        .unwrap();
    let ev = |agent: &str| {
        vec![
            (
                act("2026-05-01"),
                Event::AgentRegistered {
                    agent: agent.into(),
                    name: agent.into(),
                    people: None,
                },
            ),
            (
                act("2026-05-01"),
                Event::CriteriaLocked {
                    agent: agent.into(),
                    digest: "sha256:aa".into(),
                    criteria: serde_json::json!([]),
                    by: "M".into(),
                },
            ),
            (
                act("2026-05-01"),
                Event::StageChanged {
                    agent: agent.into(),
                    from: None,
                    to: "pilot".into(),
                    review_seq: None,
                    signers: Vec::new(),
                    reason: None,
                },
            ),
        ]
    };
    let mut batch = ev("agent-a-one");
    batch.extend(ev("agent-a-two"));
    assert_eq!(reg.import(&batch).await.unwrap(), 7, "registry-created + 6");
    // Production without a review breaks a rule: named, and nothing of the batch is written.
    let mut bad = ev("agent-a-three");
    bad.push((
        act("2026-06-01"),
        Event::StageChanged {
            agent: "agent-a-three".into(),
            from: Some("pilot".into()),
            to: "production".into(),
            review_seq: None,
            signers: Vec::new(),
            reason: None,
        },
    ));
    match reg.import(&bad).await {
        Err(RegistryError::Tampered { seq, why }) => {
            assert_eq!(seq, 11, "{why}");
            assert!(why.contains("production"), "{why}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let v = reg.verify(&[]).await.unwrap();
    assert_eq!(v.events, 7);
    assert_eq!(reg.state().await.unwrap().agents.len(), 2);
}

on_both!(pause_resume_and_retire_follow_the_lifecycle);
async fn pause_resume_and_retire_follow_the_lifecycle(db: &Db) {
    use stagegate_core::stage::Stage;
    use stagegate_registry::{Event, StageChange};
    let reg = db.open(true).await;
    start(&reg, "sha256:aa", "2026-05-12").await.unwrap();
    let rule = |r: Result<i64, RegistryError>| match r {
        Err(RegistryError::Rule(m)) => m,
        other => panic!("expected a rule refusal, got {other:?}"),
    };
    assert!(
        rule(
            reg.change_stage(AGENT, StageChange::Resume, "why", &act("2026-05-13"))
                .await
        )
        .contains("cannot be resumed")
    );
    assert!(
        rule(
            reg.change_stage(AGENT, StageChange::Pause, "  ", &act("2026-05-13"))
                .await
        )
        .contains("reason")
    );
    reg.change_stage(
        AGENT,
        StageChange::Pause,
        "incident INC-7",
        &act("2026-05-14"),
    )
    .await
    .unwrap();
    assert_eq!(reg.stage(AGENT).await.unwrap(), Some(Stage::Paused));
    assert!(
        rule(
            reg.change_stage(AGENT, StageChange::Pause, "again", &act("2026-05-14"))
                .await
        )
        .contains("cannot be paused")
    );
    // A paused pilot is not promoted.
    let promoted = reg
        .promote(AGENT, &act("2026-05-15"), &[], |_, _| Ok(Vec::new()))
        .await;
    assert!(matches!(promoted, Err(RegistryError::Rule(m)) if m.contains("paused")));
    reg.change_stage(AGENT, StageChange::Resume, "fixed", &act("2026-05-15"))
        .await
        .unwrap();
    assert_eq!(
        reg.stage(AGENT).await.unwrap(),
        Some(Stage::Pilot),
        "back to the stage it was paused from"
    );
    reg.change_stage(
        AGENT,
        StageChange::Retire,
        "replaced by v2",
        &act("2026-05-16"),
    )
    .await
    .unwrap();
    assert!(
        rule(
            reg.change_stage(AGENT, StageChange::Resume, "x", &act("2026-05-17"))
                .await
        )
        .contains("retired")
    );
    // A log that resumes a paused pilot into production does not replay.
    let other = "agent-finance-other";
    let e = |ev: Event| (act("2026-06-01"), ev);
    let forged = vec![
        e(Event::AgentRegistered {
            agent: other.into(),
            name: "O".into(),
            people: None,
        }),
        e(Event::CriteriaLocked {
            agent: other.into(),
            digest: "sha256:bb".into(),
            criteria: serde_json::json!([]),
            by: "M".into(),
        }),
        e(Event::StageChanged {
            agent: other.into(),
            from: None,
            to: "pilot".into(),
            review_seq: None,
            signers: Vec::new(),
            reason: None,
        }),
        e(Event::StageChanged {
            agent: other.into(),
            from: Some("pilot".into()),
            to: "paused".into(),
            review_seq: None,
            signers: Vec::new(),
            reason: Some("x".into()),
        }),
        e(Event::StageChanged {
            agent: other.into(),
            from: Some("paused".into()),
            to: "production".into(),
            review_seq: None,
            signers: Vec::new(),
            reason: Some("x".into()),
        }),
    ];
    match reg.import(&forged).await {
        Err(RegistryError::Tampered { why, .. }) => assert!(why.contains("paused from"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    reg.verify(&[]).await.unwrap();
}

fn signed(
    act_kind: stagegate_core::signing::RolloutAct,
    after: i64,
    digest: Option<&str>,
    person: &str,
) -> stagegate_registry::SignedAct {
    stagegate_registry::SignedAct {
        act: act_kind.as_str().into(),
        person: person.into(),
        statement: stagegate_core::signing::rollout_act_statement(
            AGENT,
            act_kind,
            digest,
            after,
            "go",
            person,
            date(2026, 6, 14),
        ),
        signature: "checked by the writer".into(),
        key_fingerprint: "SHA256:x".into(),
    }
}

/// Asserts that the log refused a change by a rule whose message contains `needle`.
fn refused<T: std::fmt::Debug>(r: Result<T, RegistryError>, needle: &str) {
    match r {
        Err(RegistryError::Rule(m)) if m.contains(needle) => {}
        other => panic!("expected a refusal naming {needle:?}, got {other:?}"),
    }
}

on_both!(rollouts_and_the_kill_switch_follow_the_log_rules);
async fn rollouts_and_the_kill_switch_follow_the_log_rules(db: &Db) {
    use stagegate_core::signing::RolloutAct as A;
    use stagegate_rollout::{Exposure, RolloutPlan, Transition};
    let reg = db.open(true).await;
    let plan: RolloutPlan = serde_json::from_value(serde_json::json!({
        "flag": "finance-invoice-recon-enabled",
        "phases": [
            { "name": "Power users", "traffic_pct": 25, "min_duration": "1h" },
            { "name": "Everyone", "traffic_pct": 100, "min_duration": "1h" }
        ]
    }))
    .unwrap();
    let digest = plan.digest();
    let start_t = || Transition::Start {
        plan: plan.clone(),
        plan_digest: digest.clone(),
    };
    let on = act("2026-06-14");
    // Not before production.
    assert!(start(&reg, "sha256:aa", "2026-05-12").await.unwrap());
    refused(
        reg.rollout_change(
            AGENT,
            start_t(),
            Some(signed(A::Start, 0, Some(&digest), "M")),
            &on,
        )
        .await,
        "promote first",
    );
    reg.record_review(&example_review(), &act("2026-06-12"))
        .await
        .unwrap();
    reg.promote(AGENT, &act("2026-06-13"), &[], |_, _| Ok(vec![]))
        .await
        .unwrap();
    // Not without a person's act, not with an act signed for something else.
    refused(
        reg.rollout_change(AGENT, start_t(), None, &on).await,
        "signed act",
    );
    refused(
        reg.rollout_change(
            AGENT,
            start_t(),
            Some(signed(A::Start, 7, Some(&digest), "M")),
            &on,
        )
        .await,
        "after-event 0",
    );
    let s1 = reg
        .rollout_change(
            AGENT,
            start_t(),
            Some(signed(A::Start, 0, Some(&digest), "M")),
            &on,
        )
        .await
        .unwrap();
    let st = reg.state().await.unwrap();
    let a = &st.agents[AGENT];
    assert_eq!(
        a.rollout.as_ref().unwrap().exposure(),
        Exposure::Percent { pct: 25.0 }
    );
    assert_eq!(a.act_seq, s1);
    // No go before the phase's window (1h) has ended: the log itself refuses it.
    let adv = Transition::Advance {
        judgements: vec![],
        events: Some([0, 0]),
    };
    refused(
        reg.rollout_change(
            AGENT,
            adv.clone(),
            Some(signed(A::Advance, s1, None, "M")),
            &on,
        )
        .await,
        "window ends",
    );
    let on = act("2026-06-15");
    // The start's act cannot be replayed for another change.
    refused(
        reg.rollout_change(
            AGENT,
            adv.clone(),
            Some(signed(A::Advance, 0, None, "M")),
            &on,
        )
        .await,
        "after-event",
    );
    // A manual phase does not advance without a person.
    refused(
        reg.rollout_change(AGENT, adv.clone(), None, &on).await,
        "signed act",
    );
    let s2 = reg
        .rollout_change(AGENT, adv, Some(signed(A::Advance, s1, None, "M")), &on)
        .await
        .unwrap();
    // Kill switch: pull, not twice, restore; a drill restores only its own pull.
    let s3 = reg
        .set_kill_switch(
            AGENT,
            true,
            false,
            "incident 42",
            signed(A::Kill, s2, None, "M"),
            &on,
        )
        .await
        .unwrap();
    assert_eq!(
        reg.state().await.unwrap().agents[AGENT]
            .kill
            .as_ref()
            .unwrap()
            .seq,
        s3
    );
    refused(
        reg.set_kill_switch(
            AGENT,
            true,
            false,
            "again",
            signed(A::Kill, s3, None, "M"),
            &on,
        )
        .await,
        "already pulled",
    );
    refused(
        reg.set_kill_switch(
            AGENT,
            false,
            true,
            "drill",
            signed(A::Drill, s3, None, "M"),
            &on,
        )
        .await,
        "drill",
    );
    let s4 = reg
        .set_kill_switch(
            AGENT,
            false,
            false,
            "fixed",
            signed(A::Restore, s3, None, "M"),
            &on,
        )
        .await
        .unwrap();
    let drill = signed(A::Drill, s4, None, "M");
    let s5 = reg
        .set_kill_switch(AGENT, true, true, "drill", drill.clone(), &on)
        .await
        .unwrap();
    reg.set_kill_switch(AGENT, false, true, "drill", drill, &on)
        .await
        .unwrap();
    let st = reg.state().await.unwrap();
    assert!(st.agents[AGENT].kill.is_none());
    assert_eq!(st.agents[AGENT].act_seq, s5 + 1);
    // Retiring during an active rollout is refused; abort first.
    refused(
        reg.change_stage(AGENT, stagegate_registry::StageChange::Retire, "done", &on)
            .await,
        "abort it first",
    );
    reg.verify(&[]).await.unwrap();
}
