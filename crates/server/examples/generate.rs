//! Generates a registry of N agents for the portfolio benchmark (`bench/portfolio.sh`):
//! a realistic mix of pilots never reviewed, pilots reviewed (Cleared, Conditional with owned
//! open items, Blocked), pilots in purgatory, and agents in production with drills of every
//! age — written through [`Registry::import`], so every event is hashed, signed and replayed
//! under the log's rules, and `stagegate verify` passes on the result. Deterministic: agent `i`
//! always gets the same history. The as-of date of the benchmark is 2026-11-02.
//!
//! ```text
//! cargo run --release -p stagegate-server --example generate -- REGISTRY KEY [AGENTS=10000]
//! ```

use jiff::civil::{Date, date};
use serde_json::{Value, json};
use stagegate_registry::{Act, Clock, Event, Location, Registry};

const DEPARTMENTS: [&str; 8] = [
    "finance",
    "hr",
    "support",
    "sales",
    "legal",
    "it",
    "marketing",
    "ops",
];

fn act(day: Date, actor: &str) -> Act {
    Act {
        as_of: Some(day),
        clock: Clock {
            now: day
                .at(9, 0, 0, 0)
                .to_zoned(jiff::tz::TimeZone::UTC)
                .expect("a valid day")
                .timestamp(),
            overridden: true,
        },
        actor: actor.into(),
    }
}

fn plus(d: Date, days: i64) -> Date {
    d.checked_add(jiff::Span::new().days(days))
        .expect("in range")
}

/// A review JSON with what replay and the portfolio read.
fn review(
    id: &str,
    i: usize,
    day: Date,
    start: Date,
    end: Date,
    outcome: &str,
    drill: Option<Date>,
) -> Value {
    let statuses: Vec<&str> = (1..=10)
        .map(|n| match (outcome, n) {
            ("Blocked", 4) => "fail",
            ("Blocked", 10) => "fail",
            ("Conditional", 8) => "open",
            _ => "pass",
        })
        .collect();
    let open_items: Vec<Value> = if outcome == "Conditional" {
        vec![json!({
            "item": 8, "what": "Exec one-pager not scheduled", "owner": "Dana Owner",
            "due": plus(day, 10 + (i % 30) as i64).to_string(),
            "source": "evidence/open-item-comms.yaml", "problems": []
        })]
    } else {
        Vec::new()
    };
    let evidence: Vec<Value> = drill
        .map(|d| {
            vec![json!({
                "path": "evidence/drill.md", "kind": "drill", "date": d.to_string(), "items": [9],
                "recorded_by": "Oli Oncall", "validity": {"state": "valid"}, "drill": {"result": "passed"}
            })]
        })
        .unwrap_or_default();
    let tier = ["low", "medium", "high"][i % 3];
    json!({
        "schema_version": 2,
        "agent": {"id": id, "name": format!("Agent {i}"), "version": "1.0.0", "tier": tier, "lane": "scale", "department": id.split('-').nth(1)},
        "review_date": day.to_string(),
        "pilot": {"start": start.to_string(), "end": end.to_string()},
        "digest": format!("sha256:{:064x}", i),
        "decision": {"outcome": outcome, "reasons": [], "target_launch": plus(end, 14).to_string(), "post_launch_review": plus(end, 44).to_string(), "open_items_due_by": plus(end, 28).to_string()},
        "template": {"drill_window_days": 30},
        "items": statuses.iter().enumerate().map(|(k, s)| json!({"number": k + 1, "status": s})).collect::<Vec<_>>(),
        "open_items": open_items,
        "evidence": evidence,
        "operations": {"people": {
            "builder": {"name": format!("Builder {}", i % 97)},
            "coe_lead": {"name": "Cai Lead"},
            "sponsor": {"name": "Sam Sponsor"},
            "on_call": {"primary": {"name": "Oli Oncall"}, "backup": {"name": "Ola Backup"}, "pager": {"system": "PagerDuty", "primary_schedule": "p", "backup_schedule": "b"}}
        }},
    })
}

fn items_line(v: &Value) -> String {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|x| format!("{}:{}", x["number"], x["status"].as_str().expect("status")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Agent `i`'s events, oldest first. `seq` is the event number the first one will get.
fn agent(i: usize, seq: &mut i64) -> Vec<(Act, Event)> {
    let dept = DEPARTMENTS[i % DEPARTMENTS.len()];
    let id = format!("agent-{dept}-bench{i:05}");
    let start = plus(date(2026, 1, 5), (i % 280) as i64);
    let end = plus(start, 30);
    let mut out = vec![
        (
            act(start, "generator"),
            Event::AgentRegistered {
                agent: id.clone(),
                name: format!("Agent {i}"),
                people: None,
            },
        ),
        (
            act(start, "generator"),
            Event::CriteriaLocked {
                agent: id.clone(),
                digest: format!("sha256:{:064x}", i + 1),
                criteria: json!([]),
                by: "Cai Lead".into(),
            },
        ),
        (
            act(start, "generator"),
            Event::StageChanged {
                agent: id.clone(),
                from: None,
                to: "pilot".into(),
                review_seq: None,
                signers: Vec::new(),
                reason: None,
            },
        ),
    ];
    let kind = i % 10;
    // 0: never reviewed; 1–2: reviewed, still in pilot (Blocked / Conditional); 3–9: production.
    if kind > 0 {
        let outcome = match kind {
            1 => "Blocked",
            2 => "Conditional",
            _ if i.is_multiple_of(7) => "Conditional",
            _ => "Cleared",
        };
        // Blocked pilots were reviewed mid-pilot: those whose pilot ended two weeks or more
        // before the benchmark's date with no review since are in purgatory (seed 004).
        let day = if kind == 1 {
            plus(end, -5)
        } else {
            plus(end, 1 + (i % 5) as i64)
        };
        let drill = (kind >= 3).then(|| plus(day, -((i % 60) as i64)));
        let v = review(&id, i, day, start, end, outcome, drill);
        let review_seq = *seq + out.len() as i64 + 1;
        out.push((
            act(day, "ci"),
            Event::ReviewRecorded {
                agent: id.clone(),
                version: "1.0.0".into(),
                stage: Some("pilot".into()),
                decision: outcome.into(),
                digest: v["digest"].as_str().expect("digest").into(),
                items: items_line(&v),
                review: v,
            },
        ));
        if kind >= 3 {
            out.push((
                act(plus(day, 2), "Cai Lead"),
                Event::StageChanged {
                    agent: id.clone(),
                    from: Some("pilot".into()),
                    to: "production".into(),
                    review_seq: Some(review_seq),
                    signers: vec!["SHA256:bench".into()],
                    reason: None,
                },
            ));
        }
    }
    *seq += out.len() as i64;
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(loc), Some(key)) = (args.first(), args.get(1)) else {
        eprintln!("usage: generate REGISTRY KEY [AGENTS=10000]");
        std::process::exit(2);
    };
    let n: usize = args
        .get(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let reg = Registry::open(&Location::parse(loc), true, Some(std::path::Path::new(key))).await?;
    // The registry's first event comes with the first batch.
    let mut seq = reg.size().await?.max(1);
    let started = std::time::Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut batch = Vec::new();
        for &i in chunk {
            batch.extend(agent(i, &mut seq));
        }
        reg.import(&batch).await?;
    }
    let v = reg.verify(&[]).await?;
    eprintln!(
        "{n} agents, {} events, verified in total {:.1} s; head {}",
        v.events,
        started.elapsed().as_secs_f64(),
        v.head
    );
    reg.close().await;
    Ok(())
}
