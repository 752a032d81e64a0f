//! The real router, on SQLite and on PostgreSQL (`STAGEGATE_TEST_PG`, set by `.ci/run`): health
//! and readiness, agents with filters, one agent, verification, problem details, metrics, and
//! the OpenAPI document against the routes.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use stagegate_core::review::{Review, ReviewInput, review};
use stagegate_registry::{Act, Clock, Location, Registry};
use stagegate_server::{AppState, app};
use std::path::Path;
use tower::ServiceExt;

fn example_review() -> Review {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/finance-invoice-recon");
    let folder = stagegate_load::load_agent(&dir, None).unwrap();
    let t = stagegate_telemetry::measure(&dir, &folder.card.card).unwrap();
    let allowed = stagegate_trust::AllowedSigners::parse(
        &std::fs::read_to_string(dir.join("../allowed_signers")).unwrap(),
    )
    .unwrap();
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
        allowed_signers: Some(&allowed),
        allowed_signers_file: None,
        inputs,
        as_of: jiff::civil::date(2026, 6, 12),
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

/// A registry with one agent in pilot and one review, on `location`.
async fn registry(location: Location, key: &Path) -> Registry {
    let reg = Registry::open(&location, true, Some(key)).await.unwrap();
    reg.start_pilot(
        AGENT,
        "AP invoice reconciliation",
        "sha256:aa",
        serde_json::json!([]),
        "Morteza Moradi",
        &act("2026-05-12"),
    )
    .await
    .unwrap();
    reg.record_review(&example_review(), &act("2026-06-12"))
        .await
        .unwrap();
    reg
}

/// Issues an API token to `person` with `roles` (the registry's own path: event + hashed row).
async fn token(reg: &Registry, person: &str, roles: &[&str]) -> String {
    let t = stagegate_auth::token::generate().unwrap();
    reg.issue_token(
        &stagegate_registry::TokenRow {
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

fn fixed_clock(state: &mut AppState) {
    state.clock = std::sync::Arc::new(|| "2026-06-15T12:00:00Z".parse().unwrap());
}

async fn get(
    router: &axum::Router,
    token: &str,
    uri: &str,
) -> (StatusCode, String, serde_json::Value) {
    let res = router
        .clone()
        .oneshot(
            Request::get(uri)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let ctype = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, ctype, json)
}

async fn scenario(location: Location) {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(location, &dir.path().join("registry.key")).await;
    let tok = token(&reg, "Ada Auditor", &["auditor"]).await;
    let mut state = AppState::new(reg);
    fixed_clock(&mut state);
    let (router, doc) = app(state);

    assert_eq!(get(&router, &tok, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&router, &tok, "/readyz").await.0, StatusCode::OK);

    let (s, _, v) = get(&router, &tok, "/api/v1/agents").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[0]["id"], AGENT);
    assert_eq!(v[0]["stage"], "pilot");
    assert_eq!(v[0]["tier"], "medium");
    assert_eq!(v[0]["department"], "finance");
    assert_eq!(v[0]["owner"], "Morteza Moradi");
    assert_eq!(v[0]["last_review"]["decision"], "Cleared");
    for (q, n) in [
        ("stage=pilot", 1),
        ("stage=production", 0),
        ("department=finance", 1),
        ("department=hr", 0),
        (
            "tier=medium&lane=scale",
            usize::from(v[0]["lane"] == "scale"),
        ),
        ("owner=Someone%20Else", 0),
    ] {
        let (_, _, v) = get(&router, &tok, &format!("/api/v1/agents?{q}")).await;
        assert_eq!(v.as_array().unwrap().len(), n, "{q}");
    }

    let (s, _, v) = get(&router, &tok, &format!("/api/v1/agents/{AGENT}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["criteria_lock"]["digest"], "sha256:aa");
    assert_eq!(v["reviews"].as_array().unwrap().len(), 1);
    assert_eq!(v["stages"][0]["stage"], "pilot");

    let (s, ctype, v) = get(&router, &tok, "/api/v1/agents/agent-x-nobody").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(ctype, "application/problem+json");
    assert_eq!(v["type"], "urn:stagegate:problem:not-found");
    assert_eq!(v["status"], 404);

    // The portfolio in its three formats; the JSON pages its agent rows.
    let (s, ctype, v) = get(&router, &tok, "/api/v1/portfolio?as_of=2026-07-15&limit=1").await;
    assert_eq!((s, ctype.as_str()), (StatusCode::OK, "application/json"));
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["page"]["offset"], 0);
    assert_eq!(v["page"]["limit"], 1);
    assert_eq!(v["page"]["total"]["agents"], 1);
    assert_eq!(v["agents"][0]["id"], AGENT);
    let (_, _, v) = get(&router, &tok, "/api/v1/portfolio?as_of=2026-07-15&offset=1").await;
    assert_eq!(v["agents"], serde_json::json!([]));
    assert_eq!(
        v["totals"]["agents"], 1,
        "totals cover every agent: {}",
        v["totals"]
    );
    let (s, ctype, v) = get(
        &router,
        &tok,
        "/api/v1/portfolio?as_of=2026-07-15&format=markdown",
    )
    .await;
    assert_eq!(
        (s, ctype.as_str()),
        (StatusCode::OK, "text/markdown; charset=utf-8")
    );
    assert!(v.as_str().unwrap().starts_with("# Portfolio"), "{v}");
    let (s, ctype, v) = get(
        &router,
        &tok,
        "/api/v1/portfolio?as_of=2026-07-15&format=ics",
    )
    .await;
    assert_eq!(
        (s, ctype.as_str()),
        (StatusCode::OK, "text/calendar; charset=utf-8")
    );
    assert!(v.as_str().unwrap().starts_with("BEGIN:VCALENDAR"), "{v}");
    let (s, _, _) = get(&router, &tok, "/api/v1/portfolio?as_of=July").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, _, v) = get(&router, &tok, "/api/v1/verify").await;
    assert_eq!(s, StatusCode::OK);
    // Registry, agent, lock, pilot, review, and the auditor's token.
    assert_eq!(v["events"], 6);

    let (s, ctype, _) = get(&router, &tok, "/no/such/route").await;
    assert_eq!(
        (s, ctype.as_str()),
        (StatusCode::NOT_FOUND, "application/problem+json")
    );

    // The document is OpenAPI 3.1, as served, and every documented path answers (none falls
    // through to the router's fallback).
    let (s, _, served) = get(&router, &tok, "/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        served["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        served["openapi"]
    );
    assert_eq!(served, serde_json::to_value(&doc).unwrap());
    let paths: Vec<&String> = doc.paths.paths.keys().collect();
    for want in [
        "/healthz",
        "/readyz",
        "/api/v1/agents",
        "/api/v1/agents/{id}",
        "/api/v1/agents/{id}/pilot",
        "/api/v1/agents/{id}/reviews",
        "/api/v1/agents/{id}/evidence",
        "/api/v1/agents/{id}/signoffs",
        "/api/v1/agents/{id}/approvals",
        "/api/v1/agents/{id}/promote",
        "/api/v1/blobs/{sha256}",
        "/api/v1/history",
        "/api/v1/checkpoint",
        "/api/v1/portfolio",
        "/api/v1/verify",
    ] {
        assert!(
            paths.iter().any(|p| *p == want),
            "{want} missing from the document"
        );
    }
    for p in paths {
        let (_, _, v) = get(&router, &tok, &p.replace("{id}", AGENT)).await;
        assert_ne!(
            v["detail"], "no such route",
            "{p} is documented but not routed"
        );
    }

    let (s, _, text) = get(&router, &tok, "/metrics").await;
    assert_eq!(s, StatusCode::OK);
    let text = text.as_str().unwrap().to_owned();
    assert!(text.contains("stagegate_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/api/v1/agents/{id}\""), "{text}");
    assert!(
        text.contains("stagegate_agents{stage=\"pilot\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("stagegate_latest_decisions{outcome=\"Cleared\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn routes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(Location::Sqlite(dir.path().join("registry.db"))).await;
}

#[tokio::test]
async fn routes_on_postgres() {
    let admin = match std::env::var("STAGEGATE_TEST_PG") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the PostgreSQL route test: STAGEGATE_TEST_PG is not set"
            );
            eprintln!("skipping the PostgreSQL route test: STAGEGATE_TEST_PG is not set");
            return;
        }
    };
    let name = format!("sg_srv_{}", std::process::id());
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
    scenario(Location::Postgres(url.to_string())).await;
}

#[tokio::test]
async fn an_edited_log_is_named_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("registry.db");
    let reg = registry(Location::Sqlite(db.clone()), &dir.path().join("k")).await;
    let tok = token(&reg, "Ada Auditor", &["auditor"]).await;
    reg.close().await;
    {
        use sqlx::ConnectOptions;
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .connect()
            .await
            .unwrap();
        for sql in [
            "DROP TRIGGER events_no_update",
            "UPDATE events SET actor = 'mallory' WHERE seq = 5",
        ] {
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
    }
    let reg = Registry::open(&Location::Sqlite(db), false, None)
        .await
        .unwrap();
    let mut state = AppState::new(reg);
    fixed_clock(&mut state);
    let (router, _) = app(state);
    for uri in ["/api/v1/agents", "/api/v1/verify"] {
        let (s, ctype, v) = get(&router, &tok, uri).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        assert_eq!(ctype, "application/problem+json");
        assert_eq!(v["type"], "urn:stagegate:problem:registry-does-not-verify");
        assert!(v["detail"].as_str().unwrap().starts_with("event #5"), "{v}");
    }
}
