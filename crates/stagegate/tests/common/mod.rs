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
        .env("NO_COLOR", "1")
        .env("USER", "ci");
    c
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

/// A fresh copy of the self-contained worked example in a temporary folder.
pub fn worked_example_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("finance-invoice-recon");
    copy_dir(&examples().join("finance-invoice-recon"), &dir);
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
