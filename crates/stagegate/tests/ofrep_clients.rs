//! Real OpenFeature clients against `stagegate serve` (issue 9): the npm
//! `@openfeature/ofrep-provider` with `@openfeature/server-sdk` (node) and the PyPI
//! `openfeature-provider-ofrep` with `openfeature-sdk` (python), installed by `.ci/run` into
//! `target/ofrep-node` and `target/ofrep-py`. The finance example goes to production through
//! the CLI; the sponsor starts a 30% rollout with her own SSH key; both clients get the flagd
//! split for 40 users; the sponsor widens it to 100% and both see every user on; the on-call
//! pulls the kill switch and both see `DISABLED` with the safe default; `stagegate drill`
//! measures both clients' time to `DISABLED`, restores, and records passed item-9 evidence; the
//! server stops and both fall back to their code default, the safe default.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};

const AGENT: &str = "agent-finance-invoice-recon";
const FLAG: &str = "finance-invoice-recon-enabled";

/// One client process, asked line by line.
struct Client {
    name: &'static str,
    _child: Killed,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Client {
    fn spawn(name: &'static str, mut cmd: Command) -> Client {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.contains("ready"), "{name} did not start: {line:?}");
        Client {
            name,
            _child: Killed(child),
            stdin,
            stdout,
        }
    }

    fn eval(&mut self, key: &str) -> serde_json::Value {
        writeln!(self.stdin, "{FLAG} {key}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{}: {line:?}: {e}", self.name))
    }
}

fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

#[test]
fn node_and_python_openfeature_clients_see_the_split_its_widening_and_the_kill_switch() {
    let node_modules = target().join("ofrep-node/node_modules");
    let py = target().join("ofrep-py");
    if !node_modules.join("@openfeature/ofrep-provider").is_dir()
        || !py.join("openfeature/contrib/provider/ofrep").is_dir()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the OpenFeature clients (.ci/run installs them)"
        );
        eprintln!(
            "skipping: the OpenFeature clients are not installed (bash .ci/run installs them)"
        );
        return;
    }
    let (tmp, dir) = worked_example_copy();
    let reg = tmp.path().join("registry.db");
    let key = tmp.path().join("registry.key");
    let signers = tmp.path().join("allowed_signers");
    let reg_s = reg.display().to_string();
    to_production(&reg_s, &key, &dir, &signers);
    let hannah = ssh_keygen(tmp.path(), "Hannah Okafor");
    let mike = ssh_keygen(tmp.path(), "Mike Chen");
    allow(&signers, "Hannah Okafor", &hannah);
    allow(&signers, "Mike Chen", &mike);
    let sponsor = token(&reg_s, &key, "Hannah Okafor", "sponsor");
    let on_call = token(&reg_s, &key, "mike.chen@acme.example", "on-call");
    let node_token = token(&reg_s, &key, "checkout-service", "auditor");
    let python_token = token(&reg_s, &key, "billing-service", "auditor");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = serve(&reg_s, &key, &signers, port);
    let plan = tmp.path().join("rollout.yaml");
    std::fs::write(
        &plan,
        format!(
            "rollout:\n  flag: {FLAG}\n  phases:\n    - {{ name: Power users, traffic_pct: 30, min_duration: 0s }}\n    - {{ name: Everyone, traffic_pct: 100, min_duration: 6 weeks }}\n"
        ),
    )
    .unwrap();
    let act = |args: &[&str], key: &Path, token: &str| {
        let mut c = stagegate();
        c.args(args)
            .args([
                "--reason",
                "go/no-go 2026-06-15",
                "--as-of",
                "2026-06-15",
                "--server",
                &base,
                "--token",
                token,
            ])
            .arg("--key")
            .arg(key);
        run(&mut c)
    };
    let plan_s = plan.display().to_string();
    act(
        &["rollout", "start", AGENT, "--plan", &plan_s],
        &hannah,
        &sponsor,
    );

    let mut node = {
        let mut c = Command::new("node");
        c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/ofrep_client.cjs"))
            .env("NODE_PATH", &node_modules)
            .env("OFREP_URL", &base)
            .env("OFREP_TOKEN", &node_token);
        Client::spawn("node", c)
    };
    let mut python = {
        let mut c = Command::new("python3");
        c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/ofrep_client.py"))
            .env("PYTHONPATH", &py)
            .env("OFREP_URL", &base)
            .env("OFREP_TOKEN", &python_token);
        Client::spawn("python", c)
    };
    let split = [("on".to_owned(), 30_000u32), ("off".to_owned(), 70_000)];
    let users: Vec<String> = (0..40).map(|i| format!("user-{i}")).collect();
    let mut on_at_30 = 0;
    for u in &users {
        let want = stagegate_flags::bucket::fractional(FLAG, u, &split).unwrap() == "on";
        on_at_30 += usize::from(want);
        for c in [&mut node, &mut python] {
            let v = c.eval(u);
            assert_eq!(v["value"], want, "{} for {u}: {v}", c.name);
            assert_eq!(v["reason"], "SPLIT", "{}: {v}", c.name);
        }
    }
    assert!(on_at_30 > 0 && on_at_30 < users.len());

    // Widened to everyone: every user on, in both.
    act(&["rollout", "advance", AGENT], &hannah, &sponsor);
    for u in &users {
        for c in [&mut node, &mut python] {
            let v = c.eval(u);
            assert_eq!(v["value"], true, "{} for {u}: {v}", c.name);
        }
    }

    // The kill switch: the safe default, reason DISABLED, in both.
    act(&["kill", AGENT], &mike, &on_call);
    for u in &users {
        for c in [&mut node, &mut python] {
            let v = c.eval(u);
            assert_eq!(v["value"], false, "{} for {u}: {v}", c.name);
            assert_eq!(v["reason"], "DISABLED", "{}: {v}", c.name);
        }
    }
    act(&["restore", AGENT], &mike, &on_call);
    assert_eq!(node.eval("user-1")["value"], true);
    assert_eq!(python.eval("user-1")["value"], true);

    // The drill: the on-call runs `stagegate drill` while both clients keep evaluating; it
    // measures each client's time to DISABLED, restores, and records the item-9 evidence.
    let out = tmp.path().join("drill");
    let mut drill = Killed(
        Command::new(assert_cmd::cargo::cargo_bin("stagegate"))
            .args([
                "drill",
                AGENT,
                "--reason",
                "monthly kill-switch drill",
                "--as-of",
                "2026-06-15",
            ])
            .args([
                "--server",
                &base,
                "--token",
                &on_call,
                "--wait-seconds",
                "20",
                "--out",
            ])
            .arg(&out)
            .arg("--key")
            .arg(&mike)
            .env_remove("STAGEGATE_NOW")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut disabled_seen = [false, false];
    let status = loop {
        for (i, c) in [&mut node, &mut python].into_iter().enumerate() {
            let v = c.eval("user-1");
            disabled_seen[i] |= v["reason"] == "DISABLED";
        }
        if let Some(s) = drill.0.try_wait().unwrap() {
            break s;
        }
    };
    let mut report = String::new();
    std::io::Read::read_to_string(drill.0.stdout.as_mut().unwrap(), &mut report).unwrap();
    let mut errors = String::new();
    std::io::Read::read_to_string(drill.0.stderr.as_mut().unwrap(), &mut errors).unwrap();
    assert!(status.success(), "{report}{errors}");
    assert_eq!(disabled_seen, [true, true], "both clients saw the drill");
    assert!(
        report.contains("2 of 2 clients and streams saw DISABLED"),
        "{report}"
    );
    let record_file = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "yaml"))
        .expect("the evidence record");
    let record = std::fs::read_to_string(&record_file).unwrap();
    assert!(
        record.contains("kind: drill") && record.contains("result: passed"),
        "{record}"
    );
    assert!(
        record.contains("time_to_stop_seconds:") && record.contains("signed drill act (events #"),
        "{record}"
    );
    // Restored: the clients are served again.
    assert_eq!(node.eval("user-1")["value"], true);
    assert_eq!(python.eval("user-1")["value"], true);

    // The server is gone: both clients answer their code default, the safe default, with an
    // error code instead of a value from the server.
    let _ = server.0.kill();
    let _ = server.0.wait();
    for c in [&mut node, &mut python] {
        let v = c.eval("user-1");
        assert_eq!(v["value"], false, "{}: {v}", c.name);
        assert!(!v["errorCode"].is_null(), "{}: {v}", c.name);
    }
}
