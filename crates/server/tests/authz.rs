//! The authorization matrix (issue 8): every write endpoint called with every role and with
//! no, expired, revoked, wrongly signed and malformed credentials, on SQLite and PostgreSQL
//! (`STAGEGATE_TEST_PG`). Every call the rules refuse is answered 401 or 403 and leaves the
//! event log byte-identical; every call they allow gets past authorization (its answer is
//! then about the content, never 401/403). The expected table is written here, apart from
//! the code that enforces it.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
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

async fn issue(reg: &Registry, person: &str, roles: &[&str], expires: &str) -> (String, String) {
    let t = stagegate_auth::token::generate().unwrap();
    reg.issue_token(
        &TokenRow {
            id: t.id.clone(),
            person: person.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            agents: Vec::new(),
            hash: t.hash.clone(),
            created_at: "2026-06-01T00:00:00Z".into(),
            expires_at: expires.into(),
            revoked_at: None,
        },
        &act(),
    )
    .await
    .unwrap();
    (t.id, t.token)
}

/// An Ed25519 key as a JWKS entry and a JWT signer (PKCS#8 v1 DER per RFC 8410).
struct Issuer {
    jwks: String,
    key: jsonwebtoken::EncodingKey,
}

fn issuer(seed: [u8; 32], kid: &str) -> Issuer {
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public.as_ref());
    let mut der = hex_bytes("302e020100300506032b657004220420");
    der.extend_from_slice(&seed);
    Issuer {
        jwks: serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}]})
            .to_string(),
        key: jsonwebtoken::EncodingKey::from_ed_der(&der),
    }
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn jwt(i: &Issuer, kid: &str, email: &str, roles: &[&str], exp: i64) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(
        &h,
        &serde_json::json!({
            "iss": "https://login.acme.example", "aud": "stagegate", "sub": email,
            "email": email, "roles": roles, "exp": exp,
        }),
        &i.key,
    )
    .unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Register,
    Pilot,
    Review,
    Evidence,
    Signoff,
    Approve,
    Promote,
    Checkpoint,
    Subscribe,
    Unsubscribe,
    Pause,
    Resume,
    Retire,
    RolloutStart,
    Kill,
    Drill,
    Telemetry,
}

const ENDPOINTS: [Endpoint; 17] = [
    Endpoint::RolloutStart,
    Endpoint::Kill,
    Endpoint::Drill,
    Endpoint::Telemetry,
    Endpoint::Register,
    Endpoint::Pilot,
    Endpoint::Review,
    Endpoint::Evidence,
    Endpoint::Signoff,
    Endpoint::Approve,
    Endpoint::Promote,
    Endpoint::Checkpoint,
    Endpoint::Subscribe,
    Endpoint::Unsubscribe,
    Endpoint::Pause,
    Endpoint::Resume,
    Endpoint::Retire,
];

/// Who may call what, by credential name (see `credentials`): the rule of issue 8 item 3 and
/// the module table of `stagegate_auth::roles`, written out independently.
fn allowed(cred: &str, e: Endpoint) -> bool {
    use Endpoint::*;
    match cred {
        // Staff may do anything but sign as somebody else: the sign-off is the builder's, the
        // risk acceptance the sponsor's.
        // Neither may they sign rollout acts: those are the card's people's own.
        "admin" | "coe-lead" | "oidc-coe-lead" => {
            !matches!(e, Signoff | Approve | RolloutStart | Kill | Drill)
        }
        // The card's builder (and CoE lead) Morteza Moradi, as builder.
        // Never telemetry: the spans would judge their own agent's rollout.
        "builder" => matches!(e, Register | Pilot | Review | Evidence | Signoff),
        // A builder the card does not name.
        "other-builder" => false,
        "ci" => matches!(e, Review | Evidence | Telemetry),
        // The card's primary on-call pushing a drill, or pulling the kill switch.
        "on-call" => matches!(e, Evidence | Pause | Kill | Drill),
        "other-on-call" => false,
        "auditor" => matches!(e, Checkpoint),
        // The card's sponsor accepting risk, starting a rollout, pulling the kill switch.
        "sponsor" => matches!(e, Approve | Retire | RolloutStart | Kill),
        "peer-approver" => false,
        // No, expired, revoked, wrong secret, wrongly signed, malformed, unknown key, expired JWT.
        _ => false,
    }
}

fn card_text() -> String {
    std::fs::read_to_string(examples().join("finance-invoice-recon/agent.yaml")).unwrap()
}

const DRILL: &str = "items: [9]\nkind: drill\ndate: 2026-06-08\nrecorded_by: Mike Chen\nsummary: Kill drill.\ndrill:\n  procedure: Flag off for an hour.\n  time_to_stop_seconds: 37\n  result: passed\n";

fn request(e: Endpoint, auth: Option<&str>, review: &serde_json::Value) -> Request<Body> {
    let json = |uri: &str, body: serde_json::Value| {
        let mut b = Request::post(uri).header("content-type", "application/json");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(Body::from(body.to_string())).unwrap()
    };
    match e {
        Endpoint::Register => json("/api/v1/agents", serde_json::json!({"card": card_text()})),
        Endpoint::Pilot => json(
            &format!("/api/v1/agents/{AGENT}/pilot"),
            serde_json::json!({"card": card_text(), "as_of": "2026-05-13"}),
        ),
        Endpoint::Review => json(&format!("/api/v1/agents/{AGENT}/reviews"), review.clone()),
        Endpoint::Signoff => json(
            &format!("/api/v1/agents/{AGENT}/signoffs"),
            serde_json::json!({"role": "builder", "signature": "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"}),
        ),
        Endpoint::Approve => json(
            &format!("/api/v1/agents/{AGENT}/approvals"),
            serde_json::json!({"record": "items: [8]\nkind: approval\ndate: 2026-06-12\nrecorded_by: Hannah Okafor\nsummary: Risk accepted.\napproval:\n  subject: risk_acceptance\n  by: Hannah Okafor\n  items: [8]\nsignature: |\n  -----BEGIN SSH SIGNATURE-----\n  AAAA\n  -----END SSH SIGNATURE-----\n"}),
        ),
        Endpoint::Promote => json(
            &format!("/api/v1/agents/{AGENT}/promote"),
            serde_json::json!({}),
        ),
        Endpoint::Evidence => {
            let boundary = "XbOuNdArYx";
            let body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"record\"; filename=\"drill.yaml\"\r\nContent-Type: application/yaml\r\n\r\n{DRILL}\r\n--{boundary}--\r\n"
            );
            let mut b = Request::post(format!("/api/v1/agents/{AGENT}/evidence")).header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            );
            if let Some(a) = auth {
                b = b.header("authorization", a);
            }
            b.body(Body::from(body)).unwrap()
        }
        Endpoint::Pause | Endpoint::Resume | Endpoint::Retire => json(
            &format!(
                "/api/v1/agents/{AGENT}/{}",
                match e {
                    Endpoint::Pause => "pause",
                    Endpoint::Resume => "resume",
                    _ => "retire",
                }
            ),
            serde_json::json!({"reason": "incident INC-42"}),
        ),
        Endpoint::RolloutStart | Endpoint::Kill | Endpoint::Drill => {
            let act = match e {
                Endpoint::RolloutStart => "start",
                Endpoint::Kill => "kill",
                _ => "drill",
            };
            let mut body = serde_json::json!({
                "reason": "go", "date": "2026-06-15", "drill": "pull",
                "signature": "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"
            });
            if e == Endpoint::RolloutStart {
                body["plan"] = serde_json::json!({
                    "flag": "finance-invoice-recon-enabled",
                    "phases": [{"name": "All", "traffic_pct": 100, "min_duration": "1 week"}]
                });
                body.as_object_mut().unwrap().remove("drill");
            }
            json(&format!("/api/v1/agents/{AGENT}/rollout/{act}"), body)
        }
        Endpoint::Telemetry => json(
            "/v1/traces",
            serde_json::json!({"resourceSpans": [{
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": AGENT}}]},
                "scopeSpans": [{"spans": [{"name": "chat", "attributes": []}]}]
            }]}),
        ),
        Endpoint::Subscribe => json(
            "/api/v1/webhooks",
            serde_json::json!({"url": "http://127.0.0.1:9/hook", "events": ["review-recorded"]}),
        ),
        Endpoint::Unsubscribe => {
            let mut b = Request::delete("/api/v1/webhooks/0000000000000000");
            if let Some(a) = auth {
                b = b.header("authorization", a);
            }
            b.body(Body::empty()).unwrap()
        }
        Endpoint::Checkpoint => {
            let mut b = Request::get("/api/v1/checkpoint");
            if let Some(a) = auth {
                b = b.header("authorization", a);
            }
            b.body(Body::empty()).unwrap()
        }
    }
}

/// The event log, and the webhook subscriptions beside it.
async fn log_bytes(reg: &Registry) -> String {
    let subs: Vec<(String, String, i64)> = match reg.store() {
        stagegate_registry::Store::Sqlite(p) => {
            sqlx::query_as("SELECT id, url, active FROM webhook_subscriptions ORDER BY id")
                .fetch_all(p)
                .await
                .unwrap()
        }
        stagegate_registry::Store::Postgres(p) => {
            sqlx::query_as("SELECT id, url, active FROM webhook_subscriptions ORDER BY id")
                .fetch_all(p)
                .await
                .unwrap()
        }
    };
    format!(
        "{}\n{subs:?}",
        serde_json::to_string(&reg.events().await.unwrap()).unwrap()
    )
}

async fn matrix(location: Location) {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(&location, true, Some(&dir.path().join("registry.key")))
        .await
        .unwrap();
    // The agent in pilot with one review, so the registry knows its card's people.
    reg.start_pilot(
        AGENT,
        "AP invoice reconciliation",
        "sha256:aa",
        serde_json::json!([]),
        "Morteza Moradi",
        &act(),
    )
    .await
    .unwrap();
    let review = review_json();
    reg.record_review_json(&review, &act()).await.unwrap();

    let good = "2027-06-01T00:00:00Z";
    let mut creds: Vec<(String, Option<String>)> = Vec::new();
    for (name, person, roles) in [
        ("admin", "Ada Admin", vec!["admin"]),
        ("coe-lead", "Cora Lead", vec!["coe-lead"]),
        ("builder", "Morteza Moradi", vec!["builder"]),
        ("other-builder", "Bob Elsewhere", vec!["builder"]),
        ("ci", "ci-bot", vec!["ci"]),
        ("on-call", "mike.chen@acme.example", vec!["on-call"]),
        ("other-on-call", "Olga Other", vec!["on-call"]),
        ("auditor", "Aud Itor", vec!["auditor"]),
        ("sponsor", "Hannah Okafor", vec!["sponsor"]),
        ("peer-approver", "Elena Petrova", vec!["peer-approver"]),
    ] {
        let (_, t) = issue(&reg, person, &roles, good).await;
        creds.push((name.into(), Some(format!("Bearer {t}"))));
    }
    let (_, expired) = issue(&reg, "Ada Admin", &["admin"], "2026-06-14T00:00:00Z").await;
    let (revoked_id, revoked) = issue(&reg, "Ada Admin", &["admin"], good).await;
    reg.revoke_token(&revoked_id, &act()).await.unwrap();
    let (_, real) = issue(&reg, "Ada Admin", &["admin"], good).await;
    // The right id with another secret.
    let forged = format!(
        "{}{}",
        &real[..real.len() - 4],
        if real.ends_with("0000") {
            "1111"
        } else {
            "0000"
        }
    );
    let trusted = issuer([9; 32], "k1");
    let rogue = issuer([13; 32], "k1");
    let exp_ok = "2026-07-01T00:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_second();
    let exp_past = "2026-06-14T00:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_second();
    creds.push(("none".into(), None));
    creds.push(("expired".into(), Some(format!("Bearer {expired}"))));
    creds.push(("revoked".into(), Some(format!("Bearer {revoked}"))));
    creds.push(("wrong-secret".into(), Some(format!("Bearer {forged}"))));
    creds.push(("malformed".into(), Some("Bearer sgt_nothex_zz".into())));
    creds.push(("not-bearer".into(), Some(format!("Basic {real}"))));
    creds.push((
        "oidc-coe-lead".into(),
        Some(format!(
            "Bearer {}",
            jwt(&trusted, "k1", "cora@acme.example", &["coe-lead"], exp_ok)
        )),
    ));
    creds.push((
        "oidc-wrongly-signed".into(),
        Some(format!(
            "Bearer {}",
            jwt(&rogue, "k1", "cora@acme.example", &["admin"], exp_ok)
        )),
    ));
    creds.push((
        "oidc-unknown-key".into(),
        Some(format!(
            "Bearer {}",
            jwt(&trusted, "k9", "cora@acme.example", &["admin"], exp_ok)
        )),
    ));
    creds.push((
        "oidc-expired".into(),
        Some(format!(
            "Bearer {}",
            jwt(&trusted, "k1", "cora@acme.example", &["admin"], exp_past)
        )),
    ));

    let mut state = AppState::new(reg.clone());
    state.clock = std::sync::Arc::new(|| "2026-06-15T12:00:00Z".parse().unwrap());
    let allowed_signers = stagegate_trust::AllowedSigners::parse(
        &std::fs::read_to_string(examples().join("allowed_signers")).unwrap(),
    )
    .unwrap();
    state.allowed_signers = Some(std::sync::Arc::new((
        examples().join("allowed_signers"),
        allowed_signers,
    )));
    state.auth = std::sync::Arc::new(stagegate_server::auth::Authenticator::new(Some(
        stagegate_auth::oidc::Verifier::from_jwks(
            &trusted.jwks,
            serde_saphyr::from_str("issuer: https://login.acme.example\naudience: stagegate\n")
                .unwrap(),
        )
        .unwrap(),
    )));
    let (router, _) = app(state);

    let mut checked = 0;
    for e in ENDPOINTS {
        for (name, auth) in &creds {
            let before = log_bytes(&reg).await;
            let res = router
                .clone()
                .oneshot(request(e, auth.as_deref(), &review))
                .await
                .unwrap();
            let status = res.status();
            let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            let body = String::from_utf8_lossy(&body);
            if allowed(name, e) {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{name} on {e:?} should pass authorization, got {status}: {body}"
                );
                if matches!(
                    e,
                    Endpoint::Signoff
                        | Endpoint::Approve
                        | Endpoint::RolloutStart
                        | Endpoint::Kill
                        | Endpoint::Drill
                ) {
                    // The caller is the card's builder, but the SSH signature is not theirs.
                    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
                    assert_eq!(
                        log_bytes(&reg).await,
                        before,
                        "a bad signature was recorded"
                    );
                }
            } else {
                let bad_credential = matches!(
                    name.as_str(),
                    "none"
                        | "expired"
                        | "revoked"
                        | "wrong-secret"
                        | "malformed"
                        | "not-bearer"
                        | "oidc-wrongly-signed"
                        | "oidc-unknown-key"
                        | "oidc-expired"
                );
                let want = if bad_credential {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::FORBIDDEN
                };
                assert_eq!(status, want, "{name} on {e:?}: {body}");
                assert_eq!(
                    log_bytes(&reg).await,
                    before,
                    "{name} on {e:?} changed the log"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ENDPOINTS.len() * creds.len());
    reg.verify(&[]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    matrix(Location::Sqlite(dir.path().join("registry.db"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_on_postgres() {
    let Ok(admin) = std::env::var("STAGEGATE_TEST_PG") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the PostgreSQL matrix: STAGEGATE_TEST_PG is not set"
        );
        eprintln!("skipping the PostgreSQL matrix: STAGEGATE_TEST_PG is not set");
        return;
    };
    let name = format!("sg_authz_{}", std::process::id());
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&mut c)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .unwrap();
    }
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    matrix(Location::Postgres(url.to_string())).await;
}
