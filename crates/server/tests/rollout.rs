//! Rollouts through the real router: the sponsor starts a rollout with a signed act; the
//! builder may not, nor may anyone with a signature that is not theirs or that names an older
//! state; live OTLP telemetry in which the agent's answers cost twice the control's rolls the
//! rollout back to 0% before the telemetry call returns, with the statistics in the event; the
//! on-call pulls and restores the kill switch with their own signed acts. Every refusal leaves
//! the log as it was.

use axum::http::StatusCode;
use serde_json::{Value, json};
use stagegate_registry::Registry;
use stagegate_server::{AppState, app};

mod common;
use common::*;

/// `n` GenAI spans of the agent, every `treat_every`-th served with the flag on; output
/// tokens 100–190, times `factor` for the treated ones.
fn spans(n: usize, treat_every: usize, factor: f64) -> Value {
    let spans: Vec<Value> = (0..n)
        .map(|i| {
            let on = i % treat_every == 0;
            let tokens = (100 + (i * 37) % 91) as f64 * if on { factor } else { 1.0 };
            json!({
                "name": "chat",
                "traceId": format!("{:032x}", (i + 1) * 0xabc_def),
                "spanId": format!("{:016x}", i + 1),
                "startTimeUnixNano": "1781524860000000000",
                "endTimeUnixNano": "1781524861000000000",
                "attributes": [
                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": (tokens as i64).to_string()}},
                    {"key": "feature_flag.key", "value": {"stringValue": FLAG}},
                    {"key": "feature_flag.result.variant", "value": {"stringValue": if on { "on" } else { "off" }}}
                ]
            })
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": AGENT}}]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]
    }]})
}

async fn events(reg: &Registry) -> String {
    serde_json::to_string(&reg.events().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_acts_live_telemetry_rollback_and_the_kill_switch() {
    // A production agent: pilot, a Cleared signed review, promoted.
    let (dir, reg) = production_registry().await;
    let sponsor = issue(&reg, "Hannah Okafor", &["sponsor"]).await;
    let builder = issue(&reg, "Morteza Moradi", &["builder"]).await;
    let on_call = issue(&reg, "mike.chen@acme.example", &["on-call"]).await;
    let ci = issue(&reg, "ci", &["ci"]).await;
    let hannah = stagegate_trust::RegistryKey::from_seed(&[43; 32]);
    let mike = stagegate_trust::RegistryKey::from_seed(&[44; 32]);
    let signers = dir.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!(
            "\"Hannah Okafor\" namespaces=\"stagegate\" {}\n\"Mike Chen\" namespaces=\"stagegate\" {}\n",
            hannah.public_openssh(),
            mike.public_openssh()
        ),
    )
    .unwrap();
    // A subscriber to rollout and kill-switch notifications, from here on.
    let hooks = stagegate_server::webhooks::Webhooks::new(reg.clone(), Default::default()).unwrap();
    let head = reg.size().await.unwrap();
    hooks
        .subscribe(
            "http://127.0.0.1:9/hook",
            "a secret that is long enough",
            &[
                stagegate_server::webhooks::EventType::RolloutChanged,
                stagegate_server::webhooks::EventType::KillSwitch,
            ],
            "test",
            "2026-06-15T00:00:00Z".parse().unwrap(),
            head,
        )
        .await
        .unwrap();
    let mut state = AppState::new(reg.clone());
    state.clock = std::sync::Arc::new(|| "2026-06-15T12:00:00Z".parse().unwrap());
    state.allowed_signers = Some(std::sync::Arc::new((
        signers.clone(),
        stagegate_trust::AllowedSigners::parse(&std::fs::read_to_string(&signers).unwrap())
            .unwrap(),
    )));
    let (router, _) = app(state);
    let plan = json!({
        "flag": FLAG,
        "phases": [
            {"name": "Half", "traffic_pct": 50, "min_duration": "1 week", "min_sample": 100},
            {"name": "Everyone", "traffic_pct": 100, "min_duration": "1 week"}
        ],
        "triggers": [{
            "id": "output_tokens",
            "metric": {"kind": "mean", "of": [{"field": "gen_ai.usage.output_tokens"}]},
            "comparator": ">", "threshold": 10, "relative_to": "control", "on_fail": "zero"
        }]
    });
    let parsed: stagegate_rollout::RolloutPlan = serde_json::from_value(plan.clone()).unwrap();
    let digest = parsed.digest();
    let statement_uri = |act: &str| {
        format!(
            "/api/v1/agents/{AGENT}/rollout/statement?act={act}&reason=go&date=2026-06-15&plan_digest={}",
            digest.replace(':', "%3A")
        )
    };
    let roll = |act: &str| format!("/api/v1/agents/{AGENT}/rollout/{act}");

    // The statement the sponsor signs names the agent, the plan and the state it was given on.
    let (s, text) = call(&router, get(&statement_uri("start"), &sponsor)).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    let text = text.as_str().unwrap().to_owned();
    assert!(
        text.contains(&digest)
            && text.contains("after-event: 0")
            && text.contains("person: Hannah Okafor"),
        "{text}"
    );
    let good = hannah.sign("stagegate", text.as_bytes()).unwrap();
    let before = events(&reg).await;
    // Refused: the builder (not the decision authority), Mike's key for Hannah, no plan.
    let body =
        |sig: &str| json!({"plan": plan, "reason": "go", "date": "2026-06-15", "signature": sig});
    let (s, v) = call(&router, post(&roll("start"), &builder, body(&good))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let forged = mike.sign("stagegate", text.as_bytes()).unwrap();
    let (s, v) = call(&router, post(&roll("start"), &sponsor, body(&forged))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = call(
        &router,
        post(
            &roll("start"),
            &sponsor,
            json!({"reason": "go", "date": "2026-06-15", "signature": good}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(events(&reg).await, before, "refusals write nothing");
    // Started.
    let (s, v) = call(&router, post(&roll("start"), &sponsor, body(&good))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let started = v["event"].as_i64().unwrap();
    // The same signature again names an older state: refused.
    let (s, v) = call(&router, post(&roll("start"), &sponsor, body(&good))).await;
    assert!(
        s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::CONFLICT,
        "{s} {v}"
    );
    let (s, v) = call(
        &router,
        get(&format!("/api/v1/agents/{AGENT}/rollout"), &ci),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["exposure"],
        json!({"kind": "percent", "pct": 50.0}),
        "{v}"
    );
    assert_eq!(v["after_event"], started);

    // Healthy telemetry: nothing happens (the window is a week).
    let (s, v) = call(&router, post("/v1/traces", &ci, spans(400, 2, 1.0))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(&router, post("/v1/traces", &ci, spans(400, 2, 1.0))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = call(
        &router,
        get(&format!("/api/v1/agents/{AGENT}/rollout"), &ci),
    )
    .await;
    assert_eq!(v["rollout"]["status"]["status"], "running", "{v}");
    assert_eq!(v["outlook"]["events"], json!([400, 400]), "{v}");
    // The agent's own builder may not feed its rollout's judges.
    let (s, v) = call(&router, post("/v1/traces", &builder, spans(10, 2, 1.0))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // Nor as the CoE lead they also are: the person, not the token's role, decides.
    let builder_lead = issue(&reg, "Morteza Moradi", &["coe-lead"]).await;
    let (s, v) = call(
        &router,
        post("/v1/traces", &builder_lead, spans(10, 2, 1.0)),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("built"), "{v}");
    let (s, v) = call(
        &router,
        post(
            &roll("advance"),
            &builder_lead,
            json!({"reason": "go", "date": "2026-06-15", "signature": "x"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("built this agent"),
        "{v}"
    );
    // Nor put it back in front of users by resuming the agent's stage.
    let (s, v) = call(
        &router,
        post(
            &format!("/api/v1/agents/{AGENT}/resume"),
            &builder_lead,
            json!({"reason": "back"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("may not resume"),
        "{v}"
    );
    // A span twice in one export, or from before the phase window: not counted, said so.
    let mut replayed = spans(4, 2, 1.0);
    let list = replayed["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array_mut()
        .unwrap();
    list.push(list[0].clone());
    // The same ids in capitals are the same span; a span without an end time is not counted.
    let mut shouting = list[0].clone();
    shouting["traceId"] = json!(shouting["traceId"].as_str().unwrap().to_uppercase());
    list.push(shouting);
    let mut timeless = list[3].clone();
    timeless["spanId"] = json!("00000000000000ff");
    timeless.as_object_mut().unwrap().remove("endTimeUnixNano");
    list.push(timeless);
    list[1]["endTimeUnixNano"] = json!("1781500000000000000");
    let (s, v) = call(&router, post("/v1/traces", &ci, replayed)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["partialSuccess"]["rejectedSpans"], "4", "{v}");
    let msg = v["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("twice")
            && msg.contains("outside the phase window")
            && msg.contains("no endTimeUnixNano"),
        "{msg}"
    );
    let (_, v) = call(
        &router,
        get(&format!("/api/v1/agents/{AGENT}/rollout"), &ci),
    )
    .await;
    assert_eq!(v["outlook"]["events"], json!([402, 401]), "{v}");
    // Not OTLP.
    let (s, _) = call(&router, post("/v1/traces", &ci, json!({"spans": []}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // The agent's answers now cost twice as many tokens: rolled back to 0% in this call.
    let (s, v) = call(&router, post("/v1/traces", &ci, spans(1000, 2, 2.0))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = call(
        &router,
        get(&format!("/api/v1/agents/{AGENT}/rollout"), &ci),
    )
    .await;
    assert_eq!(v["rollout"]["status"]["status"], "paused", "{v}");
    assert_eq!(v["exposure"]["kind"], "nobody", "{v}");
    let log = reg.events().await.unwrap();
    let last: Value = serde_json::from_str(&log.last().unwrap().body).unwrap();
    assert_eq!(last["change"]["action"], "rollback", "{last}");
    assert_eq!(
        last["change"]["judgements"][0]["verdict"], "failed",
        "{last}"
    );
    assert!(last.get("act").is_none(), "the controller's act: {last}");
    assert!(log.last().unwrap().actor.contains("controller"));

    // Kill switch: the on-call pulls it with their own signed act, then restores it.
    let kill_stmt = |act: &str| {
        format!(
            "/api/v1/agents/{AGENT}/rollout/statement?act={act}&reason=incident%2042&date=2026-06-15"
        )
    };
    let (s, text) = call(&router, get(&kill_stmt("kill"), &on_call)).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    let sig = mike
        .sign("stagegate", text.as_str().unwrap().as_bytes())
        .unwrap();
    let kbody = json!({"reason": "incident 42", "date": "2026-06-15", "signature": sig});
    let (s, v) = call(&router, post(&roll("kill"), &sponsor, kbody.clone())).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Mike's signature is not Hannah's: {v}"
    );
    let (s, v) = call(&router, post(&roll("kill"), &on_call, kbody)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = call(
        &router,
        get(&format!("/api/v1/agents/{AGENT}/rollout"), &ci),
    )
    .await;
    assert_eq!(v["kill"]["person"], "Mike Chen", "{v}");
    let (_, text) = call(&router, get(&kill_stmt("restore"), &on_call)).await;
    let sig = mike
        .sign("stagegate", text.as_str().unwrap().as_bytes())
        .unwrap();
    let (s, v) = call(
        &router,
        post(
            &roll("restore"),
            &on_call,
            json!({"reason": "incident 42", "date": "2026-06-15", "signature": sig}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = call(
        &router,
        get(&format!("/api/v1/agents/{AGENT}/rollout"), &ci),
    )
    .await;
    assert!(v["kill"].is_null(), "{v}");
    // Four notifications: the start and the controller's rollback, the pull and the restore.
    let cache = stagegate_server::cache::Cache::new(reg.clone());
    let snap = cache.snapshot().await.unwrap();
    let sent = hooks
        .dispatch(&snap, jiff::civil::date(2026, 6, 15), 14, 0)
        .await
        .unwrap();
    assert_eq!(sent, 4);
    reg.verify(&[]).await.unwrap();
}
