//! The CLI as a CI job and an on-call engineer against a running `stagegate serve` (issue 8):
//! `review --server` pushes the review it ran, `evidence push` sends the drill record with its
//! attachment; both are read back through the API (the attachment by its sha256), and the
//! chain verifies from the API and from `stagegate verify`. On PostgreSQL (`STAGEGATE_TEST_PG`,
//! set by `.ci/run`) and on SQLite.

mod common;
use common::*;
use std::process::{Child, Stdio};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scenario(registry: &str) {
    let (tmp, dir) = worked_example_copy();
    let key = tmp.path().join("registry.key");
    // Tokens first: the first one creates the registry and its key.
    let ci = token(registry, &key, "ci-bot", "ci");
    let on_call = token(registry, &key, "mike.chen@acme.example", "on-call");
    let auditor = token(registry, &key, "Aud Itor", "auditor");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let bin = assert_cmd::cargo::cargo_bin("stagegate");
    let _server = Server(
        std::process::Command::new(bin)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--registry",
                registry,
            ])
            .arg("--registry-key")
            .arg(&key)
            .arg("--allowed-signers")
            .arg(tmp.path().join("allowed_signers"))
            .env_remove("STAGEGATE_NOW")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    rt.block_on(async {
        for _ in 0..300 {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("stagegate serve did not become ready");
    });

    // The CI job: review here, push there. Cleared exits 0.
    stagegate()
        .arg("review")
        .arg(&dir)
        .args([
            "--as-of",
            "2026-06-12",
            "--format",
            "json",
            "--server",
            &base,
        ])
        .env("STAGEGATE_TOKEN", &ci)
        .assert()
        .code(0)
        .stderr(predicates::str::contains("pushed the review"));
    // The on-call engineer pushes the drill, attachment included.
    let drill = dir.join("evidence/drill-2026-06-08.md");
    stagegate()
        .args([
            "evidence",
            "push",
            "--agent",
            "agent-finance-invoice-recon",
            "--server",
            &base,
            "--token",
            &on_call,
        ])
        .arg(&drill)
        .assert()
        .code(0)
        .stdout(predicates::str::contains(
            "drill evidence of 2026-06-08 recorded",
        ));
    // The auditor may not push anything: refused (exit 1), nothing recorded.
    stagegate()
        .args([
            "evidence",
            "push",
            "--agent",
            "agent-finance-invoice-recon",
            "--server",
            &base,
            "--token",
            &auditor,
        ])
        .arg(&drill)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("403"));

    rt.block_on(async {
        let get = |path: &str| {
            http.get(format!("{base}{path}"))
                .bearer_auth(&auditor)
                .send()
        };
        let a: serde_json::Value = get("/api/v1/agents/agent-finance-invoice-recon")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(a["last_review"]["decision"], "Cleared", "{a}");
        assert_eq!(a["last_review"]["review_date"], "2026-06-12");
        assert!(
            a["last_review"]["digest"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
        let ev = a["evidence"].as_array().unwrap();
        assert_eq!(ev.len(), 1, "{a}");
        assert_eq!(ev[0]["kind"], "drill");
        assert_eq!(ev[0]["items"], serde_json::json!([9]));
        assert!(
            ev[0]["by"]
                .as_str()
                .unwrap()
                .starts_with("mike.chen@acme.example")
        );
        let att = &ev[0]["attachments"][0];
        let sha = att["sha256"].as_str().unwrap();
        let bytes = get(&format!("/api/v1/blobs/{sha}"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let on_disk =
            std::fs::read(dir.join("evidence").join(att["path"].as_str().unwrap())).unwrap();
        assert_eq!(bytes.as_ref(), on_disk.as_slice());
        let items: serde_json::Value =
            get("/api/v1/agents/agent-finance-invoice-recon/evidence?item=9")
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(items.as_array().unwrap().len(), 1);
        let v: serde_json::Value = get("/api/v1/verify").await.unwrap().json().await.unwrap();
        // Registry, three tokens, agent, review, evidence.
        assert_eq!(v["events"], 7, "{v}");
    });
    stagegate()
        .args(["verify", "--registry", registry])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("7 events verified"));
}

#[test]
fn cli_pushes_to_a_server_on_postgres() {
    let Ok(admin) = std::env::var("STAGEGATE_TEST_PG") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the PostgreSQL push test"
        );
        eprintln!("skipping: STAGEGATE_TEST_PG is not set");
        return;
    };
    let name = format!("sg_push_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
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
    });
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    scenario(url.as_str());
}

#[test]
fn cli_pushes_to_a_server_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    scenario(tmp.path().join("registry.db").to_str().unwrap());
}
