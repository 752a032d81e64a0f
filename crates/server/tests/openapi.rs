//! The OpenAPI document against an independent validator and against the router: the served
//! document validates as OpenAPI 3.1 (`openapi-spec-validator`, a Python implementation; `.ci/run`
//! installs it when absent), every operation it lists reaches a handler (never the fallback or
//! 405), and every path the API must offer is in it.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use stagegate_registry::{Location, Registry};
use stagegate_server::{AppState, app};
use tower::ServiceExt;

/// The API's paths (issue 8 item 4), written out here: a route that disappears from the
/// document fails this test.
const REQUIRED: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/api/v1/agents"),
    ("post", "/api/v1/agents"),
    ("get", "/api/v1/agents/{id}"),
    ("post", "/api/v1/agents/{id}/pilot"),
    ("post", "/api/v1/agents/{id}/reviews"),
    ("get", "/api/v1/agents/{id}/evidence"),
    ("post", "/api/v1/agents/{id}/evidence"),
    ("get", "/api/v1/agents/{id}/signoffs"),
    ("post", "/api/v1/agents/{id}/signoffs"),
    ("post", "/api/v1/agents/{id}/approvals"),
    ("post", "/api/v1/agents/{id}/promote"),
    ("post", "/api/v1/agents/{id}/pause"),
    ("post", "/api/v1/agents/{id}/resume"),
    ("post", "/api/v1/agents/{id}/retire"),
    ("get", "/api/v1/blobs/{sha256}"),
    ("get", "/api/v1/history"),
    ("get", "/api/v1/checkpoint"),
    ("get", "/api/v1/verify"),
    ("get", "/api/v1/portfolio"),
    ("get", "/api/v1/webhooks"),
    ("post", "/api/v1/webhooks"),
    ("delete", "/api/v1/webhooks/{id}"),
    ("get", "/api/v1/webhooks/{id}/deliveries"),
];

#[tokio::test]
async fn the_document_validates_and_matches_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(
        &Location::Sqlite(dir.path().join("r.db")),
        true,
        Some(&dir.path().join("r.key")),
    )
    .await
    .unwrap();
    let (router, _) = app(AppState::new(reg));
    let res = router
        .clone()
        .oneshot(
            Request::get("/api/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );

    // Every operation the document lists reaches its handler.
    let mut listed = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            listed.push((method.clone(), path.clone()));
            let uri = path
                .replace("{id}", "agent-x-y")
                .replace("{sha256}", &"0".repeat(64));
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = router
                .clone()
                .oneshot(
                    Request::builder()
                        .method(m)
                        .uri(&uri)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = res.status();
            let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            let body = String::from_utf8_lossy(&body);
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !body.contains("no such route"),
                "{method} {path} is documented but not routed"
            );
        }
    }
    for (m, p) in REQUIRED {
        assert!(
            listed.iter().any(|(lm, lp)| lm == m && lp == p),
            "{m} {p} is missing from the OpenAPI document"
        );
    }
    // Served beside the documented operations: the document itself and the Prometheus text.
    for path in ["/api/v1/openapi.json", "/metrics"] {
        let res = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }

    // An independent validator; a document broken on purpose shows it is really checking.
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &bytes).unwrap();
    let Some(verdict) = validate(&file) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must validate the document: install openapi-spec-validator"
        );
        eprintln!("skipping the validator: openapi-spec-validator is not installed");
        return;
    };
    if let Err(why) = verdict {
        panic!("the OpenAPI document does not validate:\n{why}");
    }
    let mut broken = doc.clone();
    broken["paths"]["/api/v1/portfolio"]["get"]["responses"]["200"]["content"] =
        serde_json::json!({"application/json": {"schema": {"type": "no-such-type"}}});
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, serde_json::to_vec(&broken).unwrap()).unwrap();
    assert!(
        validate(&bad).unwrap().is_err(),
        "the validator accepted a document with an invalid schema type"
    );
}

/// `python3 -m openapi_spec_validator --schema 3.1 FILE`: `None` when the package is not
/// installed, else its verdict (the validator's output when it refuses).
fn validate(file: &std::path::Path) -> Option<Result<(), String>> {
    let o = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    if o.status.success() {
        assert!(stdout.contains("OK"), "{stdout}");
        Some(Ok(()))
    } else if stderr.contains("No module named") {
        None
    } else {
        Some(Err(format!("{stdout}{stderr}")))
    }
}
