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
    println!(
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
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
    let Some(r) = v.get("rollout").filter(|r| !r.is_null()) else {
        println!("{agent}: no rollout");
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
    println!(
        "{agent}: rollout {status} — phase {} of {} ({name}), exposure {exposure}, flag {}",
        phase.map_or(0, |p| p + 1),
        phases.map_or(0, Vec::len),
        r.pointer("/plan/flag")
            .and_then(Value::as_str)
            .unwrap_or("?")
    );
    if let Some(reason) = r.pointer("/status/reason").and_then(Value::as_str) {
        println!("  why: {reason}");
    }
    if let Some(k) = v.get("kill").filter(|k| !k.is_null()) {
        println!(
            "  KILL SWITCH PULLED by {} at {}{}: {}",
            k["person"].as_str().unwrap_or("?"),
            k["at"].as_str().unwrap_or("?"),
            if k["drill"] == true { " (drill)" } else { "" },
            k["reason"].as_str().unwrap_or("")
        );
    }
    if let Some(o) = v.get("outlook").filter(|o| !o.is_null()) {
        println!(
            "  events: {} treatment, {} control; window left {} s; sample left {}",
            o["events"][0], o["events"][1], o["window_left_seconds"], o["sample_left"]
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
        println!("{table}");
    }
    Ok(0)
}
