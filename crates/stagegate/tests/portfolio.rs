//! `stagegate portfolio` over a registry built by real commands: four agents — one launched
//! (Cleared, promoted), one Blocked with open items reviewed on its pilot's last day, one
//! reviewed mid-pilot and never again (pilot purgatory), one started and never reviewed. The
//! scorecard JSON is checked field by field, the Markdown and the iCalendar feed for their
//! content, the command for its verification of the registry; and the same registry on
//! PostgreSQL (with `STAGEGATE_TEST_PG`) gives the same scorecard.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Copies `example` into `root/<slug>` under a new agent id and name (the review digest
/// changes, so its examples' sign-offs no longer count: the review is Blocked).
fn variant(root: &Path, example: &str, id: &str, name: &str) -> PathBuf {
    let dir = root.join(id);
    copy_dir(&examples().join(example), &dir);
    let card = dir.join("agent.yaml");
    edit(
        &card,
        "id: agent-finance-invoice-recon",
        &format!("id: {id}"),
    );
    edit(
        &card,
        "name: Finance Invoice Reconciliation",
        &format!("name: {name}"),
    );
    dir
}

struct Built {
    _tmp: tempfile::TempDir,
    registry: Vec<String>,
}

/// Runs one command on the registry with the recording clock on `day`.
fn on(b: &[String], day: &str, args: &[&str], dir: Option<&Path>) -> std::process::Output {
    let mut c = stagegate_on(day);
    c.args(args).args(b);
    if let Some(d) = dir {
        c.arg(d);
    }
    c.output().unwrap()
}

fn code(out: &std::process::Output, want: i32) {
    assert_eq!(
        out.status.code(),
        Some(want),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The four agents, recorded through `registry` (flags such as `--registry F`); `key` adds
/// `--registry-key` (PostgreSQL).
fn build(registry: impl FnOnce(&Path) -> Vec<String>) -> Built {
    let (tmp, recon) = worked_example_copy();
    let root = tmp.path();
    let reg = registry(root);
    let cond = variant(
        root,
        "finance-invoice-recon-conditional",
        "agent-finance-recon-conditional",
        "Recon with open items",
    );
    let stuck = variant(
        root,
        "finance-invoice-recon-no-drill",
        "agent-finance-recon-stuck",
        "Recon stuck in pilot",
    );
    let fresh = variant(
        root,
        "finance-invoice-recon",
        "agent-finance-vendor-onboarding",
        "Vendor Onboarding",
    );
    let start = ["pilot", "start", "--as-of", "2026-05-12"];
    for d in [&recon, &cond, &stuck] {
        code(&on(&reg, "2026-05-12", &start, Some(d)), 0);
    }
    code(
        &on(
            &reg,
            "2026-07-01",
            &["pilot", "start", "--as-of", "2026-07-01"],
            Some(&fresh),
        ),
        0,
    );
    // The worked example clears on its pilot's last day and launches the day after.
    code(
        &on(
            &reg,
            "2026-06-12",
            &["review", "--as-of", "2026-06-12"],
            Some(&recon),
        ),
        0,
    );
    let signers = root.join("allowed_signers");
    code(
        &on(
            &reg,
            "2026-06-13",
            &[
                "promote",
                "agent-finance-invoice-recon",
                "--as-of",
                "2026-06-13",
                "--allowed-signers",
                signers.to_str().unwrap(),
            ],
            None,
        ),
        0,
    );
    // Reviewed on its last day (a decision: Blocked), with two owned open items.
    code(
        &on(
            &reg,
            "2026-06-12",
            &["review", "--as-of", "2026-06-12"],
            Some(&cond),
        ),
        20,
    );
    // Reviewed mid-pilot, never after its end (2026-06-12).
    code(
        &on(
            &reg,
            "2026-06-01",
            &["review", "--as-of", "2026-06-01"],
            Some(&stuck),
        ),
        20,
    );
    Built {
        _tmp: tmp,
        registry: reg,
    }
}

fn sqlite() -> Built {
    build(|root| {
        vec![
            "--registry".into(),
            root.join("reg/registry.db").display().to_string(),
        ]
    })
}

fn portfolio(b: &Built, args: &[&str]) -> std::process::Output {
    stagegate()
        .arg("portfolio")
        .args(args)
        .args(&b.registry)
        .output()
        .unwrap()
}

fn json(b: &Built, args: &[&str]) -> Value {
    let out = portfolio(b, args);
    code(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn agents_of(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["agent"].as_str().unwrap())
        .collect()
}

fn check(v: &Value) {
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["as_of"], "2026-07-20");
    assert_eq!(v["window"]["start"], "2026-07-14");
    assert_eq!(v["window"]["end"], "2026-07-20");
    let t = &v["totals"];
    assert_eq!(t["agents"], 4);
    assert_eq!(
        t["by_stage"],
        serde_json::json!({"pilot": 3, "production": 1, "paused": 0, "retired": 0, "none": 0})
    );
    assert_eq!(
        t["by_decision"],
        serde_json::json!({"cleared": 1, "conditional": 0, "blocked": 2, "none": 1})
    );

    // Every agent, by id, with stage, days in stage and last decision.
    let rows: Vec<(&str, &str, i64, Option<&str>)> = v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap(),
                a["stage"].as_str().unwrap(),
                a["days_in_stage"].as_i64().unwrap(),
                a["last_review"]["decision"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "agent-finance-invoice-recon",
                "production",
                37,
                Some("Cleared")
            ),
            (
                "agent-finance-recon-conditional",
                "pilot",
                69,
                Some("Blocked")
            ),
            ("agent-finance-recon-stuck", "pilot", 69, Some("Blocked")),
            ("agent-finance-vendor-onboarding", "pilot", 19, None),
        ]
    );

    // Seed 004: the pilot reviewed mid-way, 38 days past its end.
    assert_eq!(
        agents_of(&v["pilot_purgatory"]),
        ["agent-finance-recon-stuck"]
    );
    let p = &v["pilot_purgatory"][0];
    assert_eq!(p["pilot_end"], "2026-06-12");
    assert_eq!(p["days_since_pilot_end"], 38);
    assert_eq!(p["last_review"], "2026-06-01");
    assert_eq!(
        agents_of(&v["pilots_without_review"]),
        ["agent-finance-vendor-onboarding"]
    );

    // The conditional example's open items: comms due 2026-06-19, retention 2026-06-24.
    let items: Vec<(i64, &str, &str, i64)> = v["overdue_open_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["item"].as_i64().unwrap(),
                o["owner"].as_str().unwrap(),
                o["due"].as_str().unwrap(),
                o["days_until_due"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            (8, "Mike Chen", "2026-06-19", -31),
            (6, "Priya Nair", "2026-06-24", -26)
        ]
    );

    // Seed 001: launched 2026-06-13, post-launch review due 2026-07-13.
    let p = &v["post_launch_reviews"][0];
    assert_eq!(
        agents_of(&v["post_launch_reviews"]),
        ["agent-finance-invoice-recon"]
    );
    assert_eq!(p["launched"], "2026-06-13");
    assert_eq!(p["due"], "2026-07-13");
    assert_eq!(p["status"], "overdue");

    // Drills: the examples drilled on 2026-06-08 (counts until 2026-07-08); the no-drill
    // example's last drill (2026-05-01) lapsed on 2026-05-31; the fresh pilot has no review.
    let drills: Vec<(&str, &str, Option<&str>)> = v["stale_drills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["agent"].as_str().unwrap(),
                d["status"].as_str().unwrap(),
                d["due"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        drills,
        [
            ("agent-finance-recon-stuck", "overdue", Some("2026-05-31")),
            ("agent-finance-invoice-recon", "overdue", Some("2026-07-08")),
            (
                "agent-finance-recon-conditional",
                "overdue",
                Some("2026-07-08")
            ),
        ]
    );
    // 1 registry; 3 a pilot start (agent, lock, stage) ×4; 3 reviews; 1 launch.
    assert_eq!(v["source"]["verified_events"], 17);
}

#[test]
fn portfolio_of_a_registry_built_by_real_commands() {
    let b = sqlite();
    let v = json(&b, &["--as-of", "2026-07-20"]);
    check(&v);
    assert!(
        v["source"]["registry"]
            .as_str()
            .unwrap()
            .ends_with("registry.db")
    );

    // Deterministic: the same registry and date give the same bytes.
    let again = portfolio(&b, &["--as-of", "2026-07-20", "--format", "json"]);
    assert_eq!(
        portfolio(&b, &["--as-of", "2026-07-20"]).stdout,
        again.stdout
    );

    // --purgatory-days: 38 days past the end is in purgatory at 38, not at 39.
    let v = json(&b, &["--as-of", "2026-07-20", "--purgatory-days", "38"]);
    assert_eq!(v["totals"]["pilot_purgatory"], 1);
    let v = json(&b, &["--as-of", "2026-07-20", "--purgatory-days", "39"]);
    assert_eq!(v["totals"]["pilot_purgatory"], 0);

    // As of the pilot's last day nothing had launched and the fresh pilot did not exist.
    let v = json(&b, &["--as-of", "2026-06-12"]);
    assert_eq!(v["totals"]["agents"], 3);
    assert_eq!(v["totals"]["by_stage"]["production"], 0);
    assert_eq!(v["totals"]["pilot_purgatory"], 0);
    assert_eq!(v["activity"]["reviews"]["cleared"], 1);
    assert_eq!(
        v["activity"]["reviews"]["blocked"], 1,
        "the mid-pilot review is before the window"
    );
}

#[test]
fn markdown_and_ics_formats() {
    let b = sqlite();
    let out = portfolio(&b, &["--as-of", "2026-07-20", "--format", "markdown"]);
    code(&out, 0);
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(
        md.starts_with("# Portfolio — week 2026-07-14 to 2026-07-20\n"),
        "{md}"
    );
    assert!(
        md.contains(
            "| Recon stuck in pilot (agent-finance-recon-stuck) | 2026-06-12 | 38 | 2026-06-01 | Blocked |"
        ),
        "{md}"
    );
    assert!(md.contains("| Finance Invoice Reconciliation (agent-finance-invoice-recon) | 2026-06-13 | 2026-07-13 | overdue by 7 days |"), "{md}");

    let ics = b._tmp.path().join("portfolio.ics");
    let out = portfolio(
        &b,
        &[
            "--as-of",
            "2026-07-20",
            "--format",
            "ics",
            "--out",
            ics.to_str().unwrap(),
        ],
    );
    code(&out, 0);
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&ics).unwrap();
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n") && text.ends_with("END:VCALENDAR\r\n"));
    assert!(text.contains("UID:post-launch-review/agent-finance-invoice-recon@stagegate\r\n"));
    assert!(text.contains("DTSTART;VALUE=DATE:20260713\r\n"));
    assert!(text.contains("DTSTAMP:20260720T000000Z\r\n"));
    // Two open items; two target launches (the reviewed pilots; the launched agent has none
    // left, the unreviewed pilot none on record); three drills due; one post-launch review.
    assert_eq!(text.matches("BEGIN:VEVENT").count(), 2 + 2 + 3 + 1);
}

#[test]
fn portfolio_verifies_the_registry_first() {
    let b = sqlite();
    let db = PathBuf::from(&b.registry[1]);
    // Move the launch a month later behind the triggers' back: the event no longer matches
    // its hash, and the portfolio refuses to answer (exit 3) rather than report it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .connect()
            .await
            .unwrap();
        for s in [
            "DROP TRIGGER events_no_update",
            "UPDATE events SET as_of = '2026-07-13' WHERE kind = 'stage-changed' AND as_of = '2026-06-13'",
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(s.to_owned()))
                .execute(&mut c)
                .await
                .unwrap();
        }
    });
    let out = portfolio(&b, &["--as-of", "2026-07-20"]);
    code(&out, 3);
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify at event #"));

    // No registry: exit 74, and none is created.
    let missing = b._tmp.path().join("none/registry.db");
    let out = stagegate()
        .args(["portfolio", "--registry"])
        .arg(&missing)
        .output()
        .unwrap();
    code(&out, 74);
    assert!(!missing.exists());
}

#[test]
fn the_same_portfolio_on_postgres() {
    let url = match std::env::var("STAGEGATE_TEST_PG") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the PostgreSQL test"
            );
            eprintln!("skipping the PostgreSQL portfolio test: STAGEGATE_TEST_PG is not set");
            return;
        }
    };
    let name = format!("sg_portfolio_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        for sql in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    });
    let mut db = url::Url::parse(&url).unwrap();
    db.set_path(&name);
    let b = build(|root| {
        vec![
            "--registry".into(),
            db.to_string(),
            "--registry-key".into(),
            root.join("registry.key").display().to_string(),
        ]
    });
    let mut v = json(&b, &["--as-of", "2026-07-20"]);
    check(&v);
    let s = sqlite();
    let mut w = json(&s, &["--as-of", "2026-07-20"]);
    // Everything but the registry's own identity (location, key, hence head) is the same.
    v.as_object_mut().unwrap().remove("source");
    w.as_object_mut().unwrap().remove("source");
    assert_eq!(v, w);
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
    });
}
