//! The commands.

use crate::exit::{self, Failure};
use crate::{Format, ReviewArgs, Role, SchemaKind};
use jiff::civil::Date;
use stagegate_core::digest::criteria_digest;
use stagegate_core::gates::{BUILTIN_TEMPLATE_YAML, GateTemplate};
use stagegate_core::person::same_person;
use stagegate_core::review::{self, Review, ReviewInput};
use stagegate_load::AgentFolder;
use stagegate_registry::Registry;
use std::io::IsTerminal;
use std::path::Path;

/// Parses `--as-of`: a date, or an RFC 3339 timestamp (its UTC day). Absent: today in UTC —
/// the only place stagegate reads the clock.
fn as_of(s: Option<&str>) -> Result<Date, Failure> {
    match s {
        None => Ok(jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()),
        Some(s) => s
            .parse::<Date>()
            .or_else(|_| {
                s.parse::<jiff::Timestamp>()
                    .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
            })
            .map_err(|_| {
                Failure::Invalid(format!(
                    "--as-of {s:?}: expected YYYY-MM-DD or an RFC 3339 timestamp"
                ))
            }),
    }
}

fn who(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Opens the registry only if it exists (reading must never create it).
async fn open_existing(path: &Path) -> Result<Option<Registry>, Failure> {
    if path.exists() {
        Ok(Some(Registry::open(path, false).await?))
    } else {
        Ok(None)
    }
}

/// Loads, measures and reviews an agent folder. Writes nothing.
async fn evaluate(args: &ReviewArgs) -> Result<(AgentFolder, Review, Option<Registry>), Failure> {
    let date = as_of(args.as_of.as_deref())?;
    let folder = stagegate_load::load_agent(&args.agent, args.org.as_deref())?;
    stagegate_load::check_review_date(&folder.card, date)?;
    let card = &folder.card.card;
    let from_pg = card
        .telemetry
        .as_ref()
        .is_some_and(|t| t.postgres.is_some());
    let telemetry = if from_pg {
        let url = stagegate_pg::url_for(card).map_err(|e| Failure::NoInput(e.to_string()))?;
        stagegate_pg::measure(&url, card)
            .await
            .map_err(|e| Failure::NoInput(e.to_string()))?
    } else {
        stagegate_telemetry::measure_with(
            &folder.dir,
            card,
            &crate::progress::Bar::new(),
            stagegate_telemetry::Options::default(),
        )?
    };
    let registry = open_existing(&args.registry.registry).await?;
    let lock = match &registry {
        Some(r) => r.criteria_lock(&card.id).await?,
        None => None,
    };
    let mut inputs = folder.inputs.clone();
    inputs.extend(telemetry.inputs.iter().cloned());
    let input = ReviewInput {
        card,
        template: &folder.template.template,
        template_source: folder.template.source.clone(),
        evidence: &folder.evidence.records,
        measurements: &telemetry.measurements,
        telemetry_rows: telemetry.rows_in_window,
        data_quality: telemetry.data_quality.clone(),
        telemetry_files: telemetry.files.clone(),
        runbook_sha256: folder.runbook_sha256.clone(),
        criteria_lock: lock,
        inputs,
        as_of: date,
    };
    let review = review::review(&input);
    Ok((folder, review, registry))
}

/// Writes `text` to `path` atomically (temporary file in the same folder, then rename), or
/// to standard output when `path` is `None`.
fn emit(path: Option<&Path>, text: &str) -> Result<(), Failure> {
    match path {
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| Failure::Internal(format!("cannot write to standard output: {e}")))
        }
        Some(p) => write_atomic(p, text),
    }
}

fn write_atomic(p: &Path, text: &str) -> Result<(), Failure> {
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, p))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Failure::Internal(format!("cannot write {}: {e}", p.display()))
        })
}

/// `stagegate review`.
pub async fn review(
    args: &ReviewArgs,
    format: Format,
    out: Option<&Path>,
    by: Option<String>,
    no_record: bool,
) -> Result<u8, Failure> {
    let (_folder, review, registry) = evaluate(args).await?;
    let text = match format {
        Format::Table => {
            let tty = out.is_none() && std::io::stdout().is_terminal();
            let color = tty && std::env::var_os("NO_COLOR").is_none();
            stagegate_report::terminal(&review, color, if tty { None } else { Some(120) })
        }
        Format::Markdown => stagegate_report::markdown(&review),
        Format::Json => {
            stagegate_report::json(&review).map_err(|e| Failure::Internal(e.to_string()))?
        }
    };
    if !no_record {
        let reg = match registry {
            Some(r) => r,
            None => Registry::open(&args.registry.registry, true).await?,
        };
        let now = jiff::Timestamp::now().to_string();
        let id = reg.record_review(&review, &now, &who(by)).await?;
        reg.close().await;
        eprintln!(
            "stagegate: recorded review #{id} ({}) in {}",
            review.decision.outcome.as_str(),
            args.registry.registry.display()
        );
    }
    emit(out, &text)?;
    Ok(exit::of_outcome(review.decision.outcome))
}

/// `stagegate plan`.
pub async fn plan(args: &ReviewArgs, out: Option<&Path>) -> Result<u8, Failure> {
    let (folder, review, _) = evaluate(args).await?;
    let doc = stagegate_core::plan::build(&folder.card.card, &review);
    let text = stagegate_report::plan_yaml(&doc).map_err(|e| Failure::Internal(e.to_string()))?;
    emit(out, &text)?;
    Ok(0)
}

/// `stagegate pilot start`.
pub async fn pilot_start(args: &ReviewArgs, by: Option<String>) -> Result<u8, Failure> {
    let date = as_of(args.as_of.as_deref())?;
    let card = stagegate_load::load_card(&args.agent)?;
    let c = &card.card;
    let digest = criteria_digest(&c.success_criteria);
    let json =
        serde_json::to_string(&c.success_criteria).map_err(|e| Failure::Internal(e.to_string()))?;
    let by = by.unwrap_or_else(|| c.people.coe_lead.name.clone());
    let reg = Registry::open(&args.registry.registry, true).await?;
    let new = reg
        .start_pilot(&c.id, &c.name, &digest, &json, date, &by)
        .await?;
    reg.close().await;
    if new {
        println!(
            "{}: pilot started {date}; success criteria locked as {digest} by {by}",
            c.id
        );
    } else {
        println!(
            "{}: pilot already started with these criteria ({digest})",
            c.id
        );
    }
    Ok(0)
}

/// `stagegate signoff`.
pub async fn signoff(args: &ReviewArgs, role: Role, name: &str) -> Result<u8, Failure> {
    let (folder, review, _) = evaluate(args).await?;
    let card = &folder.card.card;
    let (role_key, expected) = match role {
        Role::Builder => ("builder", Some(card.people.builder.name.as_str())),
        Role::CoeLead => ("coe_lead", Some(card.people.coe_lead.name.as_str())),
        Role::PeerApprover => (
            "peer_approver",
            card.people.peer_approver.as_ref().map(|p| p.name.as_str()),
        ),
    };
    match expected {
        Some(e) if same_person(e, name) => {}
        Some(e) => {
            return Err(Failure::Invalid(format!(
                "--name {name:?}: the card names {e} as {role_key}"
            )));
        }
        None => {
            return Err(Failure::Invalid(format!("the card names no {role_key}")));
        }
    }
    let items_ok: Vec<String> = review
        .items
        .iter()
        .filter(|i| i.number <= 9)
        .map(|i| format!("{}{}", i.number, i.status.symbol()))
        .collect();
    let yaml = format!(
        "# Sign-off over review digest {digest} (items {items}).\n\
         # Any change to the card, evidence, attachments, runbook, telemetry or template changes\n\
         # the digest and this sign-off stops counting.\n\
         items: [10]\nkind: signoff\ndate: {date}\nrecorded_by: {name}\n\
         summary: \"{title} reviewed items 1-9 and signs review {short}\"\n\
         signoff:\n  role: {role_key}\n  name: {name}\n  digest: \"{digest}\"\n",
        digest = review.digest,
        items = items_ok.join(" "),
        date = review.review_date,
        name = yaml_scalar(name),
        title = match role {
            Role::Builder => "Agent Builder",
            Role::CoeLead => "AI CoE Lead",
            Role::PeerApprover => "Peer Approver",
        },
        short = stagegate_core::items::short(&review.digest),
    );
    let dir = folder.dir.join("evidence");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::Internal(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join(format!("signoff-{}.yaml", role_key.replace('_', "-")));
    write_atomic(&path, &yaml)?;
    println!("wrote {} over {}", path.display(), review.digest);
    Ok(0)
}

fn yaml_scalar(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '.')
    {
        s.to_owned()
    } else {
        format!("{s:?}")
    }
}

/// `stagegate promote`.
pub async fn promote(
    agent: &str,
    date: Option<&str>,
    by: Option<String>,
    registry: &Path,
) -> Result<u8, Failure> {
    let date = as_of(date)?;
    let reg = Registry::open(registry, false).await?;
    let id = reg.promote(agent, date, &who(by)).await?;
    reg.close().await;
    println!("{agent}: Pilot → Production on {date} (review #{id})");
    Ok(0)
}

/// `stagegate history`.
pub async fn history(agent: Option<&str>, format: Format, registry: &Path) -> Result<u8, Failure> {
    let reg = Registry::open(registry, false).await?;
    let verified = reg.verify_chain().await?;
    let rows = reg.history(agent).await?;
    let stages = match agent {
        Some(a) => reg.stage_events(a).await?,
        None => Vec::new(),
    };
    reg.close().await;
    match format {
        Format::Json => {
            let v = serde_json::json!({
                "schema_version": 1,
                "chain_verified_reviews": verified,
                "reviews": rows,
                "stage_events": stages,
            });
            emit(
                None,
                &format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()),
            )?;
        }
        Format::Table | Format::Markdown => {
            let mut t = history_lines(&rows);
            if !stages.is_empty() {
                t.push_str("\nStage events\n");
                for s in &stages {
                    t.push_str(&format!(
                        "  {} {} by {}{}\n",
                        s.at,
                        s.stage,
                        s.by,
                        s.review_id
                            .map(|r| format!(" (review #{r})"))
                            .unwrap_or_default()
                    ));
                }
            }
            t.push_str(&format!(
                "\nHash chain verified over {verified} review(s).\n"
            ));
            emit(None, &t)?;
        }
    }
    Ok(0)
}

fn history_lines(rows: &[stagegate_registry::HistoryEntry]) -> String {
    if rows.is_empty() {
        return "No reviews recorded.\n".into();
    }
    let mut s = String::new();
    for r in rows {
        s.push_str(&format!(
            "#{} {} v{} reviewed {} by {} (recorded {}): {} — {} — {}\n",
            r.id,
            r.agent,
            r.version,
            r.review_date,
            r.recorded_by,
            r.recorded_at,
            r.decision,
            r.items,
            stagegate_core::items::short(&r.digest)
        ));
    }
    s
}

/// `stagegate schema`.
pub fn schema(what: SchemaKind) -> Result<u8, Failure> {
    let s = match what {
        SchemaKind::Card => schemars::schema_for!(stagegate_core::card::AgentCard),
        SchemaKind::Evidence => schemars::schema_for!(stagegate_core::evidence::EvidenceRecord),
        SchemaKind::Gates => schemars::schema_for!(GateTemplate),
    };
    let text = serde_json::to_string_pretty(&s).map_err(|e| Failure::Internal(e.to_string()))?;
    emit(None, &format!("{text}\n"))?;
    Ok(0)
}

/// `stagegate gates`.
pub fn gates() -> Result<u8, Failure> {
    emit(None, BUILTIN_TEMPLATE_YAML)?;
    Ok(0)
}
