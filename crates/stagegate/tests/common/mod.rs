//! Helpers shared by the CLI tests.
#![allow(dead_code)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};

/// The repository's examples folder.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The stagegate binary, with a clean environment for the registry.
pub fn stagegate() -> Command {
    let mut c = Command::cargo_bin("stagegate").expect("binary builds");
    c.env_remove("STAGEGATE_REGISTRY")
        .env_remove("STAGEGATE_REGISTRY_KEY")
        .env_remove("STAGEGATE_ALLOWED_SIGNERS")
        .env_remove("STAGEGATE_SIGNING_KEY")
        .env_remove("STAGEGATE_NOW")
        .env("NO_COLOR", "1")
        .env("USER", "ci");
    c
}

/// `stagegate` with the recording clock pinned to 09:00 UTC on `day` (`STAGEGATE_NOW`), so a
/// lock or review recorded "on" a past date is not backdated.
pub fn stagegate_on(day: &str) -> Command {
    let mut c = stagegate();
    c.env("STAGEGATE_NOW", format!("{day}T09:00:00Z"));
    c
}

/// A new Ed25519 key made by the real `ssh-keygen` (no passphrase) at `dir/<slug>`; returns
/// the private key path (the public key is beside it, `.pub`).
pub fn ssh_keygen(dir: &Path, name: &str) -> PathBuf {
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let k = dir.join(format!("key-{slug}"));
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C"])
        .arg(format!("test key for {name}"))
        .arg("-f")
        .arg(&k)
        .output()
        .expect("ssh-keygen is installed (OpenSSH client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    k
}

/// Adds `"name" <public key>` to an allowed-signers file.
pub fn allow(allowed: &Path, name: &str, key: &Path) {
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mut parts = public.split_whitespace();
    let line = format!(
        "\"{name}\" {} {}\n",
        parts.next().unwrap(),
        parts.next().unwrap()
    );
    let mut text = std::fs::read_to_string(allowed).unwrap_or_default();
    text.push_str(&line);
    std::fs::write(allowed, text).unwrap();
}

/// Signs `message` with `ssh-keygen -Y sign -n stagegate -f key`; returns the signature file.
pub fn ssh_sign(key: &Path, message: &[u8], dir: &Path, name: &str) -> PathBuf {
    let m = dir.join(name);
    std::fs::write(&m, message).unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "stagegate", "-f"])
        .arg(key)
        .arg(&m)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    m.with_file_name(format!("{name}.sig"))
}

/// Copies a folder recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A fresh copy of the self-contained worked example in a temporary folder, with the
/// examples' allowed-signers file beside it (so its sign-offs verify).
pub fn worked_example_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("finance-invoice-recon");
    copy_dir(&examples().join("finance-invoice-recon"), &dir);
    std::fs::copy(
        examples().join("allowed_signers"),
        tmp.path().join("allowed_signers"),
    )
    .unwrap();
    (tmp, dir)
}

/// Replaces `from` with `to` in a file, asserting `from` is there.
pub fn edit(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(
        s.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

/// Sets one cell of a CSV file: 1-based `line` (the header is line 1), 0-based `column`.
pub fn set_csv_cell(path: &Path, line: usize, column: usize, value: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut cells: Vec<&str> = lines[line - 1].split(',').collect();
    cells[column] = value;
    lines[line - 1] = cells.join(",");
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Number of reviews in a registry (via `stagegate history --format json`).
pub fn review_count(registry: &Path) -> usize {
    let out = stagegate()
        .args(["history", "--format", "json", "--registry"])
        .arg(registry)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["reviews"].as_array().unwrap().len()
}

/// `stagegate review --format json --no-record --as-of <as_of> <dir>`: exit code and report.
pub fn review_json(dir: &Path, as_of: &str) -> (Option<i32>, serde_json::Value, Vec<u8>) {
    let out = stagegate()
        .args([
            "review",
            "--format",
            "json",
            "--no-record",
            "--as-of",
            as_of,
        ])
        .arg(dir)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), v, out.stdout)
}

/// The criterion `id` of a JSON review.
pub fn criterion<'a>(v: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    v["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no criterion {id}"))
}

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a command that must succeed; its standard output, trimmed.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `stagegate serve` on `port` over `registry` (a path or URL) with its key and allowed
/// signers, started and ready (`/readyz` 200 within 30 s).
pub fn serve(registry: &str, key: &Path, signers: &Path, port: u16) -> Killed {
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("stagegate"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--registry",
            registry,
        ])
        .arg("--registry-key")
        .arg(key)
        .arg("--allowed-signers")
        .arg(signers)
        .env_remove("STAGEGATE_NOW")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = Killed(child);
    let ready = (0..300).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::process::Command::new("python3")
            .args([
                "-c",
                &format!("import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/readyz')"),
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    assert!(ready, "stagegate serve on {port} did not become ready");
    server
}

/// The finance example (folder `dir`) to production through the CLI on its own dates, in
/// `registry` (a path or URL; `key` given for PostgreSQL), its sign-offs checked against
/// `signers`.
pub fn to_production(registry: &str, key: &Path, dir: &Path, signers: &Path) {
    let with = |day: &str, args: &[&str], folder: bool| {
        let mut c = stagegate_on(day);
        c.args(args)
            .args(["--registry", registry])
            .arg("--registry-key")
            .arg(key);
        if folder {
            c.arg(dir);
        }
        run(&mut c);
    };
    with(
        "2026-05-12",
        &["pilot", "start", "--as-of", "2026-05-12"],
        true,
    );
    with("2026-06-12", &["review", "--as-of", "2026-06-12"], true);
    let signers = signers.display().to_string();
    with(
        "2026-06-13",
        &[
            "promote",
            "agent-finance-invoice-recon",
            "--as-of",
            "2026-06-13",
            "--allowed-signers",
            &signers,
        ],
        false,
    );
}

/// An API token made with the CLI.
pub fn token(registry: &str, key: &Path, person: &str, roles: &str) -> String {
    let mut c = stagegate();
    c.args([
        "token",
        "create",
        "--person",
        person,
        "--roles",
        roles,
        "--registry",
        registry,
    ])
    .arg("--registry-key")
    .arg(key);
    run(&mut c)
}
