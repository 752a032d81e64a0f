//! OFREP conformance through the server's front (and, for every request the router serves,
//! through the router too, with the same answers), for every status and error code the protocol
//! defines (`open-feature/protocol` `service/openapi.yaml` v0.3.0, ADR 0008): 200 with
//! OpenFeature reasons; 400 `PARSE_ERROR`, `TARGETING_KEY_MISSING`, `INVALID_CONTEXT`; 404
//! `FLAG_NOT_FOUND`; 401 (no, unknown, revoked credential; `Bearer` and `X-API-Key` both
//! accepted); 403 (a token limited to other agents); 429 with `Retry-After`; the bulk endpoint's
//! `ETag` and 304; the flagd-compatible split as the percentage grows; the kill switch
//! (`DISABLED` with the safe default) and its `refetchEvaluation` message on the event stream;
//! the last known flags served, and said so in `/readyz`, when the database is gone.

mod common;
use common::*;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use stagegate_core::signing::RolloutAct as A;
use stagegate_server::{AppState, Front};
use tower::ServiceExt;

fn eval(uri: &str, auth: Option<(&str, &str)>, body: &str) -> Request<Body> {
    let mut b = Request::post(uri).header("content-type", "application/json");
    if let Some((h, v)) = auth {
        b = b.header(h, v);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

type Answer = (StatusCode, axum::http::HeaderMap, bytes::Bytes);

/// Through the front only (what `stagegate serve` answers with): for a request that must count
/// once, e.g. against a rate limit.
async fn send_once(
    front: &Front,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let (s, h, b) = answer(front.handle(req).await).await;
    (s, h, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

async fn answer<B: axum::body::HttpBody>(res: axum::http::Response<B>) -> Answer
where
    B::Error: std::fmt::Debug,
{
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes)
}

/// Through the front; a request the router also serves is asked of the router too, and both
/// answers must be the same (status, body, and the headers OFREP gives meaning to): the
/// front's short way to single-flag evaluations changes nothing but the speed.
async fn send(front: &Front, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let again = || {
        let mut b = Request::builder()
            .method(parts.method.clone())
            .uri(parts.uri.clone());
        for (k, v) in &parts.headers {
            b = b.header(k, v);
        }
        b.body(Body::from(body.clone())).unwrap()
    };
    let (s, h, b) = answer(front.handle(again()).await).await;
    if parts.uri.path() != "/ofrep/v1/events" {
        let (rs, rh, rb) = answer(front.router().clone().oneshot(again()).await.unwrap()).await;
        assert_eq!(
            (rs, &rb),
            (s, &b),
            "{} {}: the router and the front differ",
            parts.method,
            parts.uri
        );
        for name in ["content-type", "www-authenticate", "retry-after", "etag"] {
            assert_eq!(
                rh.get(name),
                h.get(name),
                "{} {}: {name}",
                parts.method,
                parts.uri
            );
        }
    }
    (s, h, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

fn plan(pct: f64) -> stagegate_rollout::RolloutPlan {
    serde_json::from_value(json!({
        "flag": FLAG,
        "phases": [
            {"name": "Some", "traffic_pct": pct, "min_duration": "1 week"},
            {"name": "Everyone", "traffic_pct": 100, "min_duration": "1 week"}
        ]
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ofrep_statuses_codes_split_kill_switch_and_events() {
    let (_dir, reg) = production_registry().await;
    let started = start_rollout(&reg, plan(30.0)).await;
    let client = issue(&reg, "checkout-service", &["auditor"]).await;
    let limited = {
        let t = stagegate_auth::token::generate().unwrap();
        reg.issue_token(
            &stagegate_registry::TokenRow {
                id: t.id.clone(),
                person: "other-service".into(),
                roles: vec!["ci".into()],
                agents: vec!["agent-hr-other".into()],
                hash: t.hash.clone(),
                created_at: "2026-06-01T00:00:00Z".into(),
                expires_at: "2027-06-01T00:00:00Z".into(),
                revoked_at: None,
            },
            &act("2026-06-15"),
        )
        .await
        .unwrap();
        t.token
    };
    let revoked = issue(&reg, "old-service", &["auditor"]).await;
    let revoked_id = revoked.split('_').nth(1).unwrap().to_owned();
    reg.revoke_token(&revoked_id, &act("2026-06-15"))
        .await
        .unwrap();

    let mut state = AppState::new(reg.clone());
    state.clock = std::sync::Arc::new(|| "2026-06-15T12:00:00Z".parse().unwrap());
    let refresh = {
        let (flags, cache, drills, clock) = (
            state.flags.clone(),
            state.cache.clone(),
            state.drills.clone(),
            state.clock.clone(),
        );
        move || {
            let (flags, cache, drills, clock) =
                (flags.clone(), cache.clone(), drills.clone(), clock.clone());
            async move {
                cache.invalidate();
                flags.refresh(&cache, &drills, clock()).await
            }
        }
    };
    assert!(refresh().await, "the first set is built");
    let front = Front::new(state.clone());
    let one = format!("/ofrep/v1/evaluate/flags/{FLAG}");
    let bearer = format!("Bearer {client}");
    let auth = Some(("authorization", bearer.as_str()));

    // 401: none, unknown, revoked, not a token.
    for a in [
        None,
        Some((
            "authorization",
            "Bearer sgt_0000000000000000_0000000000000000000000000000000000000000000000000000000000000000",
        )),
        Some(("x-api-key", revoked.as_str())),
        Some(("authorization", "Bearer not-a-token")),
    ] {
        let (s, h, _) = send(
            &front,
            eval(&one, a, r#"{"context":{"targetingKey":"u1"}}"#),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{a:?}");
        assert!(h.contains_key("www-authenticate"));
    }
    // 403: a token limited to another agent.
    let lim = format!("Bearer {limited}");
    let (s, _, _) = send(
        &front,
        eval(
            &one,
            Some(("authorization", &lim)),
            r#"{"context":{"targetingKey":"u1"}}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // 200: the split, as flagd would assign it, by Bearer or X-API-Key alike.
    let variants = [("on".to_owned(), 30_000u32), ("off".to_owned(), 70_000)];
    let mut on_at_30 = Vec::new();
    for i in 0..40 {
        let key = format!("user-{i}");
        let body = json!({"context": {"targetingKey": key}}).to_string();
        let a = if i % 2 == 0 {
            auth
        } else {
            Some(("x-api-key", client.as_str()))
        };
        let (s, _, v) = send(&front, eval(&one, a, &body)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let want = stagegate_flags::bucket::fractional(FLAG, &key, &variants).unwrap();
        assert_eq!(v["variant"], want, "{v}");
        assert_eq!(v["value"], want == "on");
        assert_eq!(v["reason"], "SPLIT");
        assert_eq!(v["key"], FLAG);
        assert_eq!(v["metadata"]["agent"], AGENT);
        if want == "on" {
            on_at_30.push(key);
        }
    }
    assert!(!on_at_30.is_empty() && on_at_30.len() < 40);
    // Counted, whichever thread answered (the counters are per-thread shards): 50 answers
    // through the front alone (the other test of this binary evaluates a handful).
    let answered = || async {
        let res = front
            .handle(
                Request::get("/metrics")
                    .header("authorization", &bearer)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        let text = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec())
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("stagegate_ofrep_evaluations_total{outcome=\"value\"} "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{text}"))
    };
    let before = answered().await;
    for i in 0..50 {
        let body = json!({"context": {"targetingKey": format!("user-{i}")}}).to_string();
        let (s, _, v) = send_once(&front, eval(&one, auth, &body)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let after = answered().await;
    assert!(after - before >= 50, "{before} -> {after}");

    // 400 and 404 with the spec's codes, the flag's key in the body.
    for (uri, body, status, code) in [
        (one.as_str(), "{not json", 400, "PARSE_ERROR"),
        (one.as_str(), "[1, 2]", 400, "PARSE_ERROR"),
        (
            one.as_str(),
            r#"{"context": {}}"#,
            400,
            "TARGETING_KEY_MISSING",
        ),
        (one.as_str(), r#"{"context": "u1"}"#, 400, "INVALID_CONTEXT"),
        (
            one.as_str(),
            r#"{"context": {"targetingKey": 42}}"#,
            400,
            "INVALID_CONTEXT",
        ),
        (
            "/ofrep/v1/evaluate/flags/no-such-flag",
            r#"{"context": {"targetingKey": "u1"}}"#,
            404,
            "FLAG_NOT_FOUND",
        ),
    ] {
        let (s, _, v) = send(&front, eval(uri, auth, body)).await;
        assert_eq!(
            (s.as_u16(), v["errorCode"].as_str()),
            (status, Some(code)),
            "{body}: {v}"
        );
        assert!(
            v["errorDetails"].as_str().is_some_and(|d| !d.is_empty()),
            "{v}"
        );
        assert_eq!(v["key"], uri.rsplit('/').next().unwrap(), "{v}");
    }
    // A key with %-escapes is decoded (the router's way); other paths and methods are not
    // single-flag evaluations.
    let escaped = format!("/ofrep/v1/evaluate/flags/{}", FLAG.replacen('-', "%2D", 1));
    let (s, _, v) = send(
        &front,
        eval(&escaped, auth, r#"{"context":{"targetingKey":"u1"}}"#),
    )
    .await;
    assert_eq!((s, v["key"].as_str()), (StatusCode::OK, Some(FLAG)), "{v}");
    let (s, _, _) = send(&front, eval(&format!("{one}/"), auth, "{}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = send(&front, eval(&format!("{one}/extra"), auth, "{}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = send(
        &front,
        Request::get(&one)
            .header("authorization", &bearer)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);

    // Bulk: ETag, 304 on If-None-Match, another context another ETag, the event stream named.
    let bulk = "/ofrep/v1/evaluate/flags";
    let ctx1 = r#"{"context":{"targetingKey":"user-1"}}"#;
    let (s, h, v) = send(&front, eval(bulk, auth, ctx1)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let etag = h["etag"].to_str().unwrap().to_owned();
    assert_eq!(v["flags"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["eventStreams"][0]["type"], "sse", "{v}");
    let mut req = eval(bulk, auth, ctx1);
    req.headers_mut()
        .insert("if-none-match", etag.parse().unwrap());
    let (s, h, _) = send(&front, req).await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    assert_eq!(h["etag"].to_str().unwrap(), etag);
    let (_, h2, _) = send(
        &front,
        eval(bulk, auth, r#"{"context":{"targetingKey":"user-2"}}"#),
    )
    .await;
    assert_ne!(
        h2["etag"].to_str().unwrap(),
        etag,
        "the ETag covers the context"
    );
    let (s, _, v) = send(&front, eval(bulk, auth, "{oops")).await;
    assert_eq!(
        (s, v["errorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("PARSE_ERROR")),
        "{v}"
    );

    // The event stream: open it, then pull the kill switch; its first message says refetch.
    let res = front
        .handle(
            Request::get(format!("/ofrep/v1/events?token={client}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.into_body();
    let killed = reg
        .set_kill_switch(
            AGENT,
            true,
            false,
            "incident 7",
            signed(A::Kill, started, None, "Mike Chen"),
            &act("2026-06-15"),
        )
        .await
        .unwrap();
    assert!(refresh().await, "the kill switch changes the set");
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
        .await
        .expect("a message within 5 s")
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(
        text.contains("event: message") && text.contains("\"type\":\"refetchEvaluation\""),
        "{text}"
    );
    // Every evaluation: the safe default, reason DISABLED; the bulk ETag moved.
    for i in 0..10 {
        let body = json!({"context": {"targetingKey": format!("user-{i}")}}).to_string();
        let (s, _, v) = send(&front, eval(&one, auth, &body)).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (
                v["value"].clone(),
                v["reason"].clone(),
                v["variant"].clone()
            ),
            (json!(false), json!("DISABLED"), json!("off")),
            "{v}"
        );
    }
    let mut req = eval(bulk, auth, ctx1);
    req.headers_mut()
        .insert("if-none-match", etag.parse().unwrap());
    let (s, _, v) = send(&front, req).await;
    assert_eq!(s, StatusCode::OK, "a killed flag is not the cached one");
    assert_eq!(v["flags"][0]["reason"], "DISABLED");
    // Restored, then widened: everyone on at 30% stays on at 100%.
    let restored = reg
        .set_kill_switch(
            AGENT,
            false,
            false,
            "fixed",
            signed(A::Restore, killed, None, "Mike Chen"),
            &act("2026-06-15"),
        )
        .await
        .unwrap();
    reg.rollout_change(
        AGENT,
        stagegate_rollout::Transition::Advance {
            judgements: vec![],
            events: Some([0, 0]),
        },
        Some(signed(A::Advance, restored, None, "Hannah Okafor")),
        &act("2026-06-23"),
    )
    .await
    .unwrap();
    assert!(refresh().await);
    for key in &on_at_30 {
        let body = json!({"context": {"targetingKey": key}}).to_string();
        let (_, _, v) = send(&front, eval(&one, auth, &body)).await;
        assert_eq!(
            (v["value"].clone(), v["reason"].clone()),
            (json!(true), json!("STATIC")),
            "{v}"
        );
    }
    // No targeting key is needed once everyone has it.
    let (s, _, v) = send(&front, eval(&one, auth, "{}")).await;
    assert_eq!(
        (s, v["value"].clone()),
        (StatusCode::OK, json!(true)),
        "{v}"
    );

    // 429 with Retry-After past the rate.
    let mut tight = state.clone();
    tight.ofrep_limiter = std::sync::Arc::new(stagegate_server::ofrep::Limiter::new(2));
    let tight = Front::new(tight);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (s, h, _) = send_once(&tight, eval(&one, auth, ctx1)).await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(wait >= 1);
        }
        statuses.push(s.as_u16());
    }
    assert_eq!(&statuses[..2], &[200, 200], "{statuses:?}");
    assert!(statuses[2..].contains(&429), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_known_flags_outlive_the_database_and_readyz_says_so() {
    let Some((name, admin, _dir, reg)) = production_pg("ofrep_degraded").await else {
        return;
    };
    start_rollout(&reg, plan(100.0)).await;
    let client = issue(&reg, "checkout-service", &["auditor"]).await;
    let mut state = AppState::new(reg.clone());
    state.clock = std::sync::Arc::new(|| "2026-06-15T12:00:00Z".parse().unwrap());
    assert!(
        state
            .flags
            .refresh(&state.cache, &state.drills, (state.clock)())
            .await
    );
    let front = Front::new(state.clone());
    let one = format!("/ofrep/v1/evaluate/flags/{FLAG}");
    let bearer = format!("Bearer {client}");
    let auth = Some(("authorization", bearer.as_str()));
    let (s, _, v) = send(&front, eval(&one, auth, "{}")).await;
    assert_eq!(
        (s, v["value"].clone()),
        (StatusCode::OK, json!(true)),
        "{v}"
    );
    let (s, _, v) = send(&front, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (s, v["status"].clone()),
        (StatusCode::OK, json!("ok")),
        "{v}"
    );
    // The database goes away (every connection to it terminated, then it is dropped).
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(&mut c)
        .await
        .unwrap();
    }
    state.cache.invalidate();
    assert!(
        !state
            .flags
            .refresh(&state.cache, &state.drills, (state.clock)())
            .await
    );
    assert!(state.flags.stale_since().is_some());
    let (s, _, v) = send(&front, eval(&one, auth, "{}")).await;
    assert_eq!(
        (s, v["value"].clone(), v["reason"].clone()),
        (StatusCode::OK, json!(true), json!("STATIC")),
        "{v}"
    );
    let (s, _, v) = send(&front, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "degraded", "{v}");
    assert!(
        v["flags"].as_str().unwrap().contains("last known flags"),
        "{v}"
    );
}
