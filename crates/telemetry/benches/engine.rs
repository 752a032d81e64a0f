//! Engine throughput on 200,000 generated events (CSV and JSON Lines), one thread and all
//! cores. The full 10-million-event comparison with DuckDB and Polars is `bench/run.sh`.
//! Run: `cargo bench -p stagegate-telemetry --bench engine`.

use stagegate_core::card::AgentCard;
use stagegate_telemetry::{NoProgress, Options, measure_with};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const ROWS: usize = 200_000;

fn data() -> &'static (tempfile::TempDir, PathBuf) {
    static DATA: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    DATA.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let status = std::process::Command::new(env!("CARGO"))
            .args([
                "run",
                "--release",
                "-q",
                "-p",
                "stagegate-telemetry",
                "--example",
                "gen_events",
                "--",
            ])
            .arg(&dir)
            .arg(ROWS.to_string())
            .status()
            .expect("generator runs");
        assert!(status.success());
        (tmp, dir)
    })
}

fn card(dir: &Path) -> AgentCard {
    let text = std::fs::read_to_string(dir.join("agent.yaml")).expect("card");
    serde_saphyr::from_str(&text).expect("card parses")
}

fn run(bencher: divan::Bencher, format: &str, threads: usize) {
    let agent = data().1.join(format!("agent-{format}"));
    let card = card(&agent);
    let options = Options {
        threads,
        chunk_bytes: 1 << 20,
        ..Options::default()
    };
    bencher
        .counter(divan::counter::ItemsCount::new(ROWS))
        .bench(|| measure_with(&agent, &card, &NoProgress, options).expect("measures"));
}

#[divan::bench(args = [1, 0])]
fn csv(bencher: divan::Bencher, threads: usize) {
    run(bencher, "csv", threads);
}

#[divan::bench(args = [1, 0])]
fn jsonl(bencher: divan::Bencher, threads: usize) {
    run(bencher, "jsonl", threads);
}

fn main() {
    divan::main();
}
