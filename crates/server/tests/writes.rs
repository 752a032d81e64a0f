//! The write side through the real router: a builder registers their agent from its card and
//! pushes its review; the server refuses inconsistent reviews (digest, decision, missing
//! fields) and evidence whose attachment does not hash to what the record says; attachments are
//! stored once; a sign-off counts only when the caller is the card's person and the SSH
//! signature verifies; the CoE lead promotes on re-verified sign-offs. Every refusal leaves
//! the log as it was.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use stagegate_registry::{Act, Clock, Location, Registry, TokenRow};
use stagegate_server::{AppState, app};
use std::path::Path;
use tower::ServiceExt;

const AGENT: &str = "agent-finance-invoice-recon";

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn act() -> Act {
    Act {
        as_of: Some(jiff::civil::date(2026, 6, 12)),
        clock: Clock {
            now: "2026-06-12T09:00:00Z".parse().unwrap(),
            overridden: true,
        },
        actor: "test".into(),
    }
}

fn review_json() -> serde_json::Value {
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

async fn issue(reg: &Registry, person: &str, roles: &[&str]) -> String {
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
        &act(),
    )
    .await
    .unwrap();
    t.token
}

async fn call(router: &axum::Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

fn post(uri: &str, token: &str, body: serde_json::Value) -> Request<Body> {
    Request::post(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn multipart(uri: &str, token: &str, record: &str, files: &[(&str, &[u8])]) -> Request<Body> {
    let b = "BoUnDaRy7";
    let mut body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"record\"; filename=\"drill.yaml\"\r\n\r\n{record}\r\n"
    )
    .into_bytes();
    for (name, bytes) in files {
        body.extend(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{b}--\r\n").bytes());
    Request::post(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", format!("multipart/form-data; boundary={b}"))
        .body(Body::from(body))
        .unwrap()
}

fn drill(sha: &str) -> String {
    format!(
        "items: [9]\nkind: drill\ndate: 2026-06-08\nrecorded_by: Mike Chen\nsummary: Kill drill.\nattachments:\n  - path: attachments/drill.log\n    sha256: {sha}\ndrill:\n  procedure: Flag off for an hour.\n  time_to_stop_seconds: 37\n  result: passed\n"
    )
}

async fn events(reg: &Registry) -> String {
    serde_json::to_string(&reg.events().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(
        &Location::Sqlite(dir.path().join("r.db")),
        true,
        Some(&dir.path().join("r.key")),
    )
    .await
    .unwrap();
    let builder = issue(&reg, "Morteza Moradi", &["builder"]).await;
    let lead = issue(&reg, "Cora Lead", &["coe-lead"]).await;
    let on_call = issue(&reg, "mike.chen@acme.example", &["on-call"]).await;
    // Morteza's own key, made here, in the server's allowed-signers file with the examples'.
    let key = stagegate_trust::RegistryKey::from_seed(&[42; 32]);
    let hannah_key = stagegate_trust::RegistryKey::from_seed(&[43; 32]);
    let signers = dir.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!(
            "{}\"Morteza Moradi\" namespaces=\"stagegate\" {}\n\"Hannah Okafor\" namespaces=\"stagegate\" {}\n",
            std::fs::read_to_string(examples().join("allowed_signers")).unwrap(),
            key.public_openssh(),
            hannah_key.public_openssh()
        ),
    )
    .unwrap();
    let sponsor = issue(&reg, "Hannah Okafor", &["sponsor"]).await;
    let mut state = AppState::new(reg.clone());
    state.clock = std::sync::Arc::new(|| "2026-06-15T12:00:00Z".parse().unwrap());
    state.allowed_signers = Some(std::sync::Arc::new((
        signers.clone(),
        stagegate_trust::AllowedSigners::parse(&std::fs::read_to_string(&signers).unwrap())
            .unwrap(),
    )));
    let (router, _) = app(state);
    let card =
        std::fs::read_to_string(examples().join("finance-invoice-recon/agent.yaml")).unwrap();

    // The builder registers the agent their card names them builder of, and starts its pilot.
    let (s, v) = call(
        &router,
        post(
            "/api/v1/agents",
            &builder,
            serde_json::json!({"card": card}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = call(
        &router,
        post(
            "/api/v1/agents",
            &builder,
            serde_json::json!({"card": card}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "registering again is a no-op: {v}");
    let (s, v) = call(
        &router,
        post(
            &format!("/api/v1/agents/{AGENT}/pilot"),
            &builder,
            serde_json::json!({"card": card, "as_of": "2026-05-13"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // An invalid card names the file and field.
    let (s, v) = call(
        &router,
        post(
            "/api/v1/agents",
            &lead,
            serde_json::json!({"card": "id: x\n"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("agent.yaml"), "{v}");

    // Reviews: every inconsistent push is refused and writes nothing.
    let review = review_json();
    let uri = format!("/api/v1/agents/{AGENT}/reviews");
    let before = events(&reg).await;
    let mut bad_digest = review.clone();
    bad_digest["inputs"][0]["sha256"] = "sha256:00".into();
    let mut contradiction = review.clone();
    contradiction["items"][2]["status"] = "fail".into();
    contradiction["signoff_subject"]["items"][2] = "fail".into();
    let mut no_pilot = review.clone();
    no_pilot["pilot"] = serde_json::json!({});
    let mut other_agent = review.clone();
    other_agent["agent"]["id"] = "agent-hr-other".into();
    other_agent["signoff_subject"]["agent"] = "agent-hr-other".into();
    for (what, body, needle) in [
        ("digest", bad_digest, "/digest"),
        ("decision", contradiction, "contradicts"),
        ("pilot", no_pilot, "/pilot/"),
        ("agent", other_agent, "not agent-finance-invoice-recon"),
    ] {
        let (s, v) = call(&router, post(&uri, &builder, body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {v}");
        assert!(
            v["detail"].as_str().unwrap().contains(needle),
            "{what}: {v}"
        );
        assert_eq!(events(&reg).await, before, "{what}");
    }
    let (s, v) = call(&router, post(&uri, &builder, review.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Evidence: the attachment must hash to what the record says; the same bytes are kept once.
    let log = b"drill log\n".as_slice();
    let sha = stagegate_core::digest::sha256_hex(log);
    let ev_uri = format!("/api/v1/agents/{AGENT}/evidence");
    let before = events(&reg).await;
    let (s, v) = call(
        &router,
        multipart(
            &ev_uri,
            &on_call,
            &drill(&sha),
            &[("attachments/drill.log", b"other bytes")],
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = call(&router, multipart(&ev_uri, &on_call, &drill(&sha), &[])).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing attachment: {v}"
    );
    let (s, v) = call(&router, multipart(&ev_uri, &on_call, "kind: drill\n", &[])).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "invalid record: {v}");
    assert_eq!(events(&reg).await, before);
    for _ in 0..2 {
        let (s, v) = call(
            &router,
            multipart(
                &ev_uri,
                &on_call,
                &drill(&sha),
                &[("attachments/drill.log", log)],
            ),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let blobs: i64 = match reg.store() {
        stagegate_registry::Store::Sqlite(p) => sqlx::query_scalar("SELECT COUNT(*) FROM blobs")
            .fetch_one(p)
            .await
            .unwrap(),
        stagegate_registry::Store::Postgres(_) => unreachable!(),
    };
    assert_eq!(blobs, 1, "the same attachment is stored once");
    let got = router
        .clone()
        .oneshot(
            Request::get(format!("/api/v1/blobs/{sha}"))
                .header("authorization", format!("Bearer {lead}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(
        axum::body::to_bytes(got.into_body(), usize::MAX)
            .await
            .unwrap()
            .as_ref(),
        log
    );

    // Sign-off: by the card's builder, with their key, over the latest review's statement.
    let subject: stagegate_core::signing::SignoffSubject =
        serde_json::from_value(review["signoff_subject"].clone()).unwrap();
    let statement = stagegate_core::signing::signoff_statement(
        &subject,
        stagegate_core::evidence::SignoffRole::Builder,
        "Morteza Moradi",
        jiff::civil::date(2026, 6, 12),
    );
    let good = key.sign("stagegate", statement.as_bytes()).unwrap();
    let wrong = key.sign("stagegate", b"another statement").unwrap();
    let so = format!("/api/v1/agents/{AGENT}/signoffs");
    let before = events(&reg).await;
    let (s, v) = call(
        &router,
        post(
            &so,
            &builder,
            serde_json::json!({"role": "builder", "signature": wrong}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // The right signature, presented by someone else, is not theirs to submit.
    let (s, v) = call(
        &router,
        post(
            &so,
            &lead,
            serde_json::json!({"role": "builder", "signature": good}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(events(&reg).await, before);
    let (s, v) = call(
        &router,
        post(
            &so,
            &builder,
            serde_json::json!({"role": "builder", "signature": good}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // What the review still needs: every role signed in the example; the API sign-off is
    // listed as recorded since.
    let res = router
        .clone()
        .oneshot(
            Request::get(&so)
                .header("authorization", format!("Bearer {lead}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let need: serde_json::Value = serde_json::from_slice(
        &axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    let builder_row = need
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "builder")
        .unwrap();
    assert_eq!(
        builder_row["recorded_since"].as_array().unwrap().len(),
        1,
        "{need}"
    );

    // A criteria change re-approved by the sponsor, signed with her key; the builder may not.
    let digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let statement = stagegate_core::signing::criteria_change_statement(
        AGENT,
        digest,
        "Hannah Okafor",
        jiff::civil::date(2026, 6, 14),
    );
    let record = |by: &str, sig: &str| {
        format!(
            "items: [1]\nkind: approval\ndate: 2026-06-14\nrecorded_by: {by}\nsummary: Criteria re-approved.\napproval:\n  subject: criteria_change\n  by: {by}\n  criteria_digest: \"{digest}\"\nsignature: |\n{}",
            sig.lines().map(|l| format!("  {l}\n")).collect::<String>()
        )
    };
    let sig = hannah_key.sign("stagegate", statement.as_bytes()).unwrap();
    let ap = format!("/api/v1/agents/{AGENT}/approvals");
    let before = events(&reg).await;
    let (s, v) = call(
        &router,
        post(
            &ap,
            &builder,
            serde_json::json!({"record": record("Morteza Moradi", &sig)}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = call(&router, post(&ap, &sponsor, serde_json::json!({"record": record("Hannah Okafor", &key.sign("stagegate", statement.as_bytes()).unwrap())}))).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Morteza's key is not Hannah's: {v}"
    );
    assert_eq!(events(&reg).await, before);
    let (s, v) = call(
        &router,
        post(
            &ap,
            &sponsor,
            serde_json::json!({"record": record("Hannah Okafor", &sig)}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Promotion by the CoE lead, on the review's sign-offs re-verified.
    let (s, v) = call(
        &router,
        post(
            &format!("/api/v1/agents/{AGENT}/promote"),
            &lead,
            serde_json::json!({"as_of": "2026-06-15"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let res = router
        .clone()
        .oneshot(
            Request::get(format!("/api/v1/agents/{AGENT}"))
                .header("authorization", format!("Bearer {lead}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let a: serde_json::Value = serde_json::from_slice(
        &axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(a["stage"], "production", "{a}");
    assert_eq!(a["evidence"].as_array().unwrap().len(), 3);
    reg.verify(&[]).await.unwrap();
}
