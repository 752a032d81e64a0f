//! Shared set-up of the rollout and OFREP tests: a registry with the finance example agent in
//! production, tokens, and request helpers.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use stagegate_registry::{Act, Clock, Location, Registry, TokenRow};
use std::path::Path;
use tower::ServiceExt;

pub const AGENT: &str = "agent-finance-invoice-recon";
pub const FLAG: &str = "finance-invoice-recon-enabled";

pub fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

pub fn act(day: &str) -> Act {
    Act {
        as_of: Some(day.parse().unwrap()),
        clock: Clock {
            now: format!("{day}T09:00:00Z").parse().unwrap(),
            overridden: true,
        },
        actor: "test".into(),
    }
}

pub fn review_json() -> Value {
    let dir = examples().join("finance-invoice-recon");
    let folder = stagegate_load::load_agent(&dir, None).unwrap();
    let t = stagegate_telemetry::measure(&dir, &folder.card.card).unwrap();
    let allowed = stagegate_trust::AllowedSigners::parse(
        &std::fs::read_to_string(examples().join("allowed_signers")).unwrap(),
    )
    .unwrap();
    let mut inputs = folder.inputs.clone();
    inputs.extend(t.inputs.clone());
    let r = stagegate_core::review::review(&stagegate_core::review::ReviewInput {
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
        allowed_signers: Some(&allowed),
        allowed_signers_file: None,
        inputs,
        as_of: jiff::civil::date(2026, 6, 12),
    });
    serde_json::to_value(&r).unwrap()
}

pub async fn issue(reg: &Registry, person: &str, roles: &[&str]) -> String {
    let t = stagegate_auth::token::generate().unwrap();
    reg.issue_token(
        &TokenRow {
            id: t.id.clone(),
            person: person.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            agents: Vec::new(),
            hash: t.hash.clone(),
            created_at: "2026-06-01T00:00:00Z".into(),
            expires_at: "2027-06-01T00:00:00Z".into(),
            revoked_at: None,
        },
        &act("2026-06-12"),
    )
    .await
    .unwrap();
    t.token
}

pub async fn call(router: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

pub fn post(uri: &str, token: &str, body: Value) -> Request<Body> {
    Request::post(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

pub fn get(uri: &str, token: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

/// A registry in a temporary folder with the finance example agent promoted to production
/// (pilot, its Cleared signed review, promotion): the folder, and the registry.
pub async fn production_registry() -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let loc = Location::Sqlite(dir.path().join("r.db"));
    let reg = production_at(&loc, &dir).await;
    (dir, reg)
}

/// A new PostgreSQL database on `STAGEGATE_TEST_PG` named `sg_<what>_<pid>` holding the same
/// production agent: its name, the admin URL, the folder of its key, and the registry. `None`
/// without `STAGEGATE_TEST_PG` (CI always sets it).
pub async fn production_pg(what: &str) -> Option<(String, String, tempfile::TempDir, Registry)> {
    let Ok(admin) = std::env::var("STAGEGATE_TEST_PG") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the PostgreSQL tests"
        );
        eprintln!("skipping: STAGEGATE_TEST_PG is not set");
        return None;
    };
    let name = format!("sg_{what}_{}", std::process::id());
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
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
    let reg = production_at(&Location::Postgres(url.to_string()), &dir).await;
    Some((name, admin, dir, reg))
}

async fn production_at(loc: &Location, dir: &tempfile::TempDir) -> Registry {
    let reg = Registry::open(loc, true, Some(&dir.path().join("r.key")))
        .await
        .unwrap();
    reg.start_pilot(
        AGENT,
        "Finance",
        "sha256:aa",
        json!([]),
        "M",
        &act("2026-05-13"),
    )
    .await
    .unwrap();
    reg.record_review_json(&review_json(), &act("2026-06-12"))
        .await
        .unwrap();
    reg.promote(AGENT, &act("2026-06-13"), &[], |_, _| Ok(vec![]))
        .await
        .unwrap();
    reg
}

/// A person's act as the registry stores it (the server checks the signature before; the log
/// checks the statement).
pub fn signed(
    kind: stagegate_core::signing::RolloutAct,
    after: i64,
    digest: Option<&str>,
    person: &str,
) -> stagegate_registry::SignedAct {
    stagegate_registry::SignedAct {
        act: kind.as_str().into(),
        person: person.into(),
        statement: stagegate_core::signing::rollout_act_statement(
            AGENT,
            kind,
            digest,
            after,
            "go",
            person,
            jiff::civil::date(2026, 6, 15),
        ),
        signature: "checked by the writer".into(),
        key_fingerprint: "SHA256:x".into(),
    }
}

/// Starts `plan` as the sponsor's signed act on 2026-06-15 (window start 09:00 UTC); returns
/// the start's event number.
pub async fn start_rollout(reg: &Registry, plan: stagegate_rollout::RolloutPlan) -> i64 {
    let digest = plan.digest();
    reg.rollout_change(
        AGENT,
        stagegate_rollout::Transition::Start {
            plan,
            plan_digest: digest.clone(),
        },
        Some(signed(
            stagegate_core::signing::RolloutAct::Start,
            0,
            Some(&digest),
            "Hannah Okafor",
        )),
        &act("2026-06-15"),
    )
    .await
    .unwrap()
}
