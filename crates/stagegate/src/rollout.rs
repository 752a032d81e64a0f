//! `stagegate rollout start|status|advance|pause|resume|abort`, `stagegate kill|restore`: a
//! person's signed acts on a rollout and its kill switch, sent to `stagegate serve` (the
//! controller and the flags run there). Each act fetches the statement the server will check
//! (it names the agent, the act, the plan, the state it is given on, the person and the date),
//! signs it with `ssh-keygen -Y sign` (`--key`) and posts it.

use crate::SignWith;
use crate::exit::Failure;
use crate::remote::{Client, RemoteArg};
use serde_json::{Value, json};
use std::path::PathBuf;

/// The flags every act takes.
#[derive(Debug, clap::Args)]
pub struct ActArgs {
    /// Agent id (agent-<dept>-<slug>).
    pub agent: String,
    /// Why (recorded with the act and signed).
    #[arg(long)]
    pub reason: String,
    /// The statement's date. Default: today (UTC).
    #[arg(long)]
    pub as_of: Option<String>,
    #[command(flatten)]
    pub sign: SignWith,
    #[command(flatten)]
    pub remote: RemoteArg,
}

fn client(remote: &RemoteArg) -> Result<Client, Failure> {
    Client::from_args(remote)?.ok_or_else(|| {
        Failure::Invalid(
            "rollouts run in `stagegate serve`: give --server (or $STAGEGATE_SERVER) and --token"
                .into(),
        )
    })
}

/// Reads a rollout plan: the `rollout:` section of a `stagegate plan` file, or a file that is
/// the section itself.
///
/// # Errors
/// [`Failure::NoInput`] unreadable; [`Failure::Invalid`] with file, line and field.
pub fn read_plan(path: &std::path::Path) -> Result<stagegate_rollout::RolloutPlan, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::NoInput(format!("{}: {e}", path.display())))?;
    /// A `stagegate plan` file: other sections beside `rollout:` are not read here.
    #[derive(serde::Deserialize)]
    struct PlanFile {
        rollout: stagegate_rollout::RolloutPlan,
    }
    let plan = if text.lines().any(|l| l.starts_with("rollout:")) {
        stagegate_load::parse_yaml::<PlanFile>(path, &text, 0)?.rollout
    } else {
        stagegate_load::parse_yaml(path, &text, 0)?
    };
    plan.validate().map_err(|e| {
        Failure::Invalid(format!(
            "{}: rollout.{}: {}",
            path.display(),
            e.field,
            e.message
        ))
    })?;
    Ok(plan)
}

/// One signed act (`act` is `start`, `advance`, …, `kill`, `restore`, `drill`).
///
/// # Errors
/// As the server answers; ssh-keygen's failures.
pub async fn act(
    args: &ActArgs,
    act: &str,
    plan: Option<&PathBuf>,
    extra: Option<(&str, &str)>,
) -> Result<u8, Failure> {
    let c = client(&args.remote)?;
    let plan = plan.map(|p| read_plan(p)).transpose()?;
    if plan.as_ref().is_some_and(|p| p.triggers.is_empty()) {
        eprintln!(
            "stagegate: warning: this plan has no rollback triggers: nothing will roll the rollout back on its own (add triggers: to the rollout: section)"
        );
    }
    let date = match &args.as_of {
        Some(d) => d.clone(),
        None => jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .to_string(),
    };
    let digest = plan.as_ref().map(stagegate_rollout::RolloutPlan::digest);
    let mut query = vec![
        ("act", act.to_owned()),
        ("reason", args.reason.clone()),
        ("date", date.clone()),
    ];
    if let Some(d) = &digest {
        query.push(("plan_digest", d.clone()));
    }
    let statement = c
        .get_text(
            &format!("api/v1/agents/{}/rollout/statement", args.agent),
            &query,
        )
        .await?;
    let Some(signature) = crate::run::obtain_signature(&args.sign, &statement)? else {
        return Ok(0);
    };
    let mut body = json!({"reason": args.reason, "date": date, "signature": signature});
    if let Some(p) = &plan {
        body["plan"] = serde_json::to_value(p).map_err(|e| Failure::Internal(e.to_string()))?;
    }
    if let Some((k, v)) = extra {
        body[k] = Value::String(v.to_owned());
    }
    let answer = c
        .post_json(
            &format!("api/v1/agents/{}/rollout/{act}", args.agent),
            &body,
            200,
        )
        .await?;
    outln!(
        "{} (event #{})",
        answer
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        answer
            .get("event")
            .and_then(Value::as_i64)
            .unwrap_or_default()
    );
    Ok(0)
}

/// `stagegate rollout status`: the phase, exposure, kill switch and each trigger's judgement.
///
/// # Errors
/// As the server answers.
pub async fn status(agent: &str, remote: &RemoteArg, json_out: bool) -> Result<u8, Failure> {
    let c = client(remote)?;
    let v = c
        .get_json(&format!("api/v1/agents/{agent}/rollout"))
        .await?;
    if json_out {
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
    let Some(r) = v.get("rollout").filter(|r| !r.is_null()) else {
        outln!("{agent}: no rollout");
        return Ok(0);
    };
    let phase = r.get("phase").and_then(Value::as_u64);
    let phases = r.pointer("/plan/phases").and_then(Value::as_array);
    let name = phase
        .and_then(|i| phases.and_then(|p| p.get(i as usize)))
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("0%");
    let status = r
        .pointer("/status/status")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let exposure = match v.pointer("/exposure/kind").and_then(Value::as_str) {
        Some("percent") => format!(
            "{}%",
            v.pointer("/exposure/pct")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
        ),
        Some("cohorts") => format!("cohorts {}", v["exposure"]["cohorts"]),
        Some(k) => k.to_owned(),
        None => "-".into(),
    };
    outln!(
        "{agent}: rollout {status} — phase {} of {} ({name}), exposure {exposure}, flag {}",
        phase.map_or(0, |p| p + 1),
        phases.map_or(0, Vec::len),
        r.pointer("/plan/flag")
            .and_then(Value::as_str)
            .unwrap_or("?")
    );
    if let Some(reason) = r.pointer("/status/reason").and_then(Value::as_str) {
        outln!("  why: {reason}");
    }
    if let Some(k) = v.get("kill").filter(|k| !k.is_null()) {
        outln!(
            "  KILL SWITCH PULLED by {} at {}{}: {}",
            k["person"].as_str().unwrap_or("?"),
            k["at"].as_str().unwrap_or("?"),
            if k["drill"] == true { " (drill)" } else { "" },
            k["reason"].as_str().unwrap_or("")
        );
    }
    if let Some(o) = v.get("outlook").filter(|o| !o.is_null()) {
        outln!(
            "  events: {} treatment, {} control; window left {} s; sample left {}",
            o["events"][0],
            o["events"][1],
            o["window_left_seconds"],
            o["sample_left"]
        );
        let mut table = comfy_table::Table::new();
        table.set_header(["trigger", "verdict", "estimate", "sequence", "alpha", "why"]);
        for j in o["judgements"].as_array().into_iter().flatten() {
            let seq = j["sequence"]
                .as_array()
                .map(|s| {
                    format!(
                        "[{:.6}, {:.6}]",
                        s[0].as_f64().unwrap_or(f64::NAN),
                        s[1].as_f64().unwrap_or(f64::NAN)
                    )
                })
                .unwrap_or_else(|| "-".into());
            table.add_row([
                j["trigger"].as_str().unwrap_or("").to_owned(),
                j["verdict"].as_str().unwrap_or("").to_owned(),
                j["estimate"]
                    .as_f64()
                    .map_or("-".into(), |e| format!("{e:.6}")),
                seq,
                format!("{}", j["alpha"]),
                j["reason"].as_str().unwrap_or("").to_owned(),
            ]);
        }
        outln!("{table}");
    }
    Ok(0)
}

/// `stagegate drill`: pulls the agent's kill switch as a signed drill act, watches until every
/// client and SSE stream connected to each server (`--server` and every `--also`) has seen
/// `DISABLED` or `wait` passes, restores it with the same act, and records the drill as an
/// item-9 evidence record (timings per observer in its attachment; the signed drill act is the
/// log's pull and restore events, which the record names) written to `out` and pushed to the
/// server.
///
/// # Errors
/// As the server answers; unwritable `out`; ssh-keygen's failures.
pub async fn drill(
    args: &ActArgs,
    also: &[url::Url],
    wait: std::time::Duration,
    out: &std::path::Path,
) -> Result<u8, Failure> {
    let c = client(&args.remote)?;
    let others: Vec<Client> = also
        .iter()
        .map(|u| {
            Client::from_args(&RemoteArg {
                server: Some(u.clone()),
                token: args.remote.token.clone(),
            })
            .map(|c| c.expect("a server was given"))
        })
        .collect::<Result<_, _>>()?;
    let date = match &args.as_of {
        Some(d) => d.clone(),
        None => jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .to_string(),
    };
    let agent = &args.agent;
    let query = vec![
        ("act", "drill".to_owned()),
        ("reason", args.reason.clone()),
        ("date", date.clone()),
    ];
    let statement = c
        .get_text(&format!("api/v1/agents/{agent}/rollout/statement"), &query)
        .await?;
    let person = statement
        .lines()
        .find_map(|l| l.strip_prefix("person: "))
        .unwrap_or_default()
        .to_owned();
    let Some(signature) = crate::run::obtain_signature(&args.sign, &statement)? else {
        return Ok(0);
    };
    let body = |phase: &str| json!({"reason": args.reason, "date": date, "signature": signature, "drill": phase});
    let started = std::time::Instant::now();
    let pulled = c
        .post_json(
            &format!("api/v1/agents/{agent}/rollout/drill"),
            &body("pull"),
            200,
        )
        .await?;
    let pull_event = pulled.get("event").and_then(Value::as_i64).unwrap_or(0);
    eprintln!(
        "{agent}: kill switch pulled for the drill (event #{pull_event}); watching the clients"
    );
    let mut reports: Vec<Value>;
    loop {
        reports = Vec::new();
        for s in std::iter::once(&c).chain(others.iter()) {
            reports.push(s.get_json(&format!("api/v1/agents/{agent}/drill")).await?);
        }
        let complete = reports.iter().all(|r| r["complete"] == true);
        if complete || started.elapsed() >= wait {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let restored = c
        .post_json(
            &format!("api/v1/agents/{agent}/rollout/drill"),
            &body("restore"),
            200,
        )
        .await?;
    let restore_event = restored.get("event").and_then(Value::as_i64).unwrap_or(0);
    let elapsed = started.elapsed();
    let observations: Vec<&Value> = reports
        .iter()
        .flat_map(|r| r["observations"].as_array().into_iter().flatten())
        .collect();
    let seen: Vec<f64> = observations
        .iter()
        .filter_map(|o| o["ms"].as_f64())
        .collect();
    let missing = observations.len() - seen.len();
    let slowest = seen.iter().copied().fold(0.0f64, f64::max);
    let in_flight: u64 = reports.iter().filter_map(|r| r["in_flight"].as_u64()).sum();
    let passed = !observations.is_empty() && missing == 0;
    let flag = reports
        .first()
        .and_then(|r| r["flag"].as_str())
        .unwrap_or_default()
        .to_owned();
    // The attachment: every server's report, as measured.
    let report = serde_json::to_vec_pretty(&json!({
        "agent": agent, "flag": flag, "pull_event": pull_event, "restore_event": restore_event,
        "wait_seconds": wait.as_secs_f64(), "elapsed_seconds": elapsed.as_secs_f64(),
        "servers": reports,
    }))
    .map_err(|e| Failure::Internal(e.to_string()))?;
    let attachment = format!("attachments/drill-{date}-{pull_event}.json");
    std::fs::create_dir_all(out.join("attachments"))
        .map_err(|e| Failure::Internal(format!("cannot write {}: {e}", out.display())))?;
    std::fs::write(out.join(&attachment), &report)
        .map_err(|e| Failure::Internal(format!("cannot write {}: {e}", out.display())))?;
    let sha = stagegate_core::digest::sha256_hex(&report);
    let summary = if observations.is_empty() {
        format!(
            "Kill-switch drill of {flag}: pulled (event #{pull_event}) and restored (event #{restore_event}); no client or stream was connected, so no client was seen to stop."
        )
    } else {
        format!(
            "Kill-switch drill of {flag}: pulled (event #{pull_event}) and restored (event #{restore_event}); {} of {} clients and streams saw DISABLED, the slowest after {slowest:.1} ms.",
            seen.len(),
            observations.len()
        )
    };
    let record = format!(
        "items: [9]\nkind: drill\ndate: {date}\nrecorded_by: {person}\nsummary: {}\nattachments:\n  - path: {attachment}\n    sha256: {sha}\ndrill:\n  procedure: {}\n{}  duration_minutes: {:.3}\n  in_flight: {}\n  result: {}\n",
        serde_json::to_string(&summary).unwrap_or_default(),
        serde_json::to_string(&format!(
            "stagegate drill: the kill switch pulled as {person}'s signed drill act (events #{pull_event} and #{restore_event} of the registry log carry the signature), every client and SSE stream of {} server(s) watched until it saw DISABLED (at most {} s), then restored under the same act.",
            1 + others.len(),
            wait.as_secs()
        ))
        .unwrap_or_default(),
        if passed {
            format!("  time_to_stop_seconds: {:.3}\n", slowest / 1000.0)
        } else {
            String::new()
        },
        elapsed.as_secs_f64() / 60.0,
        serde_json::to_string(&format!(
            "{in_flight} evaluation(s) answered the old state after the pull, while the flags were being rebuilt; {missing} observer(s) did not see DISABLED in time"
        ))
        .unwrap_or_default(),
        if passed { "passed" } else { "failed" },
    );
    let file = out.join(format!("drill-{date}-{pull_event}.yaml"));
    std::fs::write(&file, &record)
        .map_err(|e| Failure::Internal(format!("cannot write {}: {e}", file.display())))?;
    let mut table = comfy_table::Table::new();
    table.set_header(["observer", "kind", "ms to DISABLED"]);
    for o in &observations {
        table.add_row([
            o["who"].as_str().unwrap_or("").to_owned(),
            o["kind"].as_str().unwrap_or("").to_owned(),
            o["ms"]
                .as_f64()
                .map_or("not seen".into(), |m| format!("{m:.1}")),
        ]);
    }
    outln!("{table}");
    outln!("{summary}");
    let pushed = c.push_evidence(agent, &file).await?;
    outln!("{pushed}");
    Ok(if passed { 0 } else { 1 })
}
