//! `kill -9` of one replica during a rollout (issue 9): two `stagegate serve` replicas on one
//! PostgreSQL database (`STAGEGATE_TEST_PG`), a 50% rollout started through replica A, OTLP
//! telemetry batches sent to both, then A is killed with SIGKILL mid-stream. Every batch either
//! replica acknowledged is in the controller's state read through B (no state lost), B keeps
//! serving the flag, the kill switch pulled through B takes effect on B at once, and A,
//! restarted, serves the killed flag and the same telemetry; the log verifies.

mod common;
use common::*;
use serde_json::{Value, json};

const AGENT: &str = "agent-finance-invoice-recon";
const FLAG: &str = "finance-invoice-recon-enabled";

fn spans(n: usize, seed: usize) -> Value {
    let spans: Vec<Value> = (0..n)
        .map(|i| {
            let on = (i + seed).is_multiple_of(2);
            // The replicas run on the machine clock: the spans end now.
            let end = jiff::Timestamp::now().as_nanosecond();
            json!({
                "name": "chat",
                "endTimeUnixNano": end.to_string(),
                "attributes": [
                    {"key": "gen_ai.agent.id", "value": {"stringValue": AGENT}},
                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": (100 + (i * 37 + seed) % 91).to_string()}},
                    {"key": "feature_flag.key", "value": {"stringValue": FLAG}},
                    {"key": "feature_flag.result.variant", "value": {"stringValue": if on { "on" } else { "off" }}}
                ]
            })
        })
        .collect();
    json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
}

#[test]
fn kill_9_of_one_replica_during_a_rollout_loses_nothing_and_the_kill_switch_still_works() {
    let Ok(admin) = std::env::var("STAGEGATE_TEST_PG") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the replica test"
        );
        eprintln!("skipping: STAGEGATE_TEST_PG is not set");
        return;
    };
    let name = format!("sg_replica_kill_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
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
    });
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    let registry = url.to_string();
    let (tmp, dir) = worked_example_copy();
    let key = tmp.path().join("registry.key");
    let signers = tmp.path().join("allowed_signers");
    to_production(&registry, &key, &dir, &signers);
    let hannah = ssh_keygen(tmp.path(), "Hannah Okafor");
    let mike = ssh_keygen(tmp.path(), "Mike Chen");
    allow(&signers, "Hannah Okafor", &hannah);
    allow(&signers, "Mike Chen", &mike);
    let sponsor = token(&registry, &key, "Hannah Okafor", "sponsor");
    let on_call = token(&registry, &key, "mike.chen@acme.example", "on-call");
    let ci = token(&registry, &key, "ci-bot", "ci");
    let (pa, pb) = (free_port(), free_port());
    let (a, b) = (
        format!("http://127.0.0.1:{pa}"),
        format!("http://127.0.0.1:{pb}"),
    );
    let mut replica_a = serve(&registry, &key, &signers, pa);
    let _replica_b = serve(&registry, &key, &signers, pb);

    let plan = tmp.path().join("rollout.yaml");
    std::fs::write(
        &plan,
        format!(
            "rollout:\n  flag: {FLAG}\n  phases:\n    - {{ name: Half, traffic_pct: 50, min_duration: 2 weeks }}\n  triggers:\n    - id: tokens\n      metric: {{ kind: mean, of: [{{ field: gen_ai.usage.output_tokens }}] }}\n      comparator: '>'\n      threshold: 50\n      relative_to: control\n"
        ),
    )
    .unwrap();
    let act = |args: &[&str], server: &str, key: &std::path::Path, token: &str| {
        let mut c = stagegate();
        c.args(args)
            .args([
                "--reason",
                "go",
                "--as-of",
                "2026-06-15",
                "--server",
                server,
                "--token",
                token,
            ])
            .arg("--key")
            .arg(key);
        run(&mut c)
    };
    act(
        &[
            "rollout",
            "start",
            AGENT,
            "--plan",
            &plan.display().to_string(),
        ],
        &a,
        &hannah,
        &sponsor,
    );

    let http = reqwest::Client::new();
    rt.block_on(async {
        // 20 batches of 100 spans, alternating replicas; A is killed after the 10th.
        let mut acknowledged = 0u64;
        for batch in 0..20usize {
            if batch == 10 {
                let _ = replica_a.0.kill();
                let _ = replica_a.0.wait();
            }
            let target = if batch.is_multiple_of(2) && batch < 10 {
                &a
            } else {
                &b
            };
            let r = http
                .post(format!("{target}/v1/traces"))
                .bearer_auth(&ci)
                .json(&spans(100, batch))
                .send()
                .await;
            if r.is_ok_and(|r| r.status().is_success()) {
                acknowledged += 100;
            }
        }
        assert_eq!(acknowledged, 2000, "every batch was sent to a live replica");
        // Nothing acknowledged is lost: B's controller sees every span.
        let v: Value = http
            .get(format!("{b}/api/v1/agents/{AGENT}/rollout"))
            .bearer_auth(&ci)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let events = &v["outlook"]["events"];
        assert_eq!(
            events[0].as_u64().unwrap() + events[1].as_u64().unwrap(),
            acknowledged,
            "{v}"
        );
        assert_eq!(v["rollout"]["status"]["status"], "running", "{v}");
        // B keeps serving the flag.
        let eval = |base: String, key: &'static str| {
            let http = http.clone();
            let ci = ci.clone();
            async move {
                let r = http
                    .post(format!("{base}/ofrep/v1/evaluate/flags/{FLAG}"))
                    .bearer_auth(&ci)
                    .json(&json!({"context": {"targetingKey": key}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.json::<Value>().await.unwrap()
            }
        };
        assert_eq!(eval(b.clone(), "user-1").await["reason"], "SPLIT");
    });
    // The kill switch through B: in force on B when the command returns.
    act(&["kill", AGENT], &b, &mike, &on_call);
    rt.block_on(async {
        let r: Value = http
            .post(format!("{b}/ofrep/v1/evaluate/flags/{FLAG}"))
            .bearer_auth(&ci)
            .json(&json!({"context": {"targetingKey": "user-1"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            (r["value"].clone(), r["reason"].clone()),
            (json!(false), json!("DISABLED")),
            "{r}"
        );
    });
    // A, restarted, serves the same state.
    let _replica_a = serve(&registry, &key, &signers, pa);
    rt.block_on(async {
        let r: Value = http
            .post(format!("{a}/ofrep/v1/evaluate/flags/{FLAG}"))
            .bearer_auth(&ci)
            .json(&json!({"context": {"targetingKey": "user-1"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["reason"], "DISABLED", "{r}");
        let v: Value = http
            .get(format!("{a}/api/v1/agents/{AGENT}/rollout"))
            .bearer_auth(&ci)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let events = &v["outlook"]["events"];
        assert_eq!(
            events[0].as_u64().unwrap() + events[1].as_u64().unwrap(),
            2000,
            "{v}"
        );
    });
    let mut verify = stagegate();
    verify.args(["verify", "--registry", &registry]);
    run(&mut verify);
    rt.block_on(async {
        use sqlx::Connection;
        if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut c)
            .await;
        }
    });
}
