//! The commands.

use crate::exit::{self, Failure};
use crate::{
    ApprovalKind, Approver, Format, RegistryArg, ReviewArgs, Role, SchemaKind, SignWith, SignersArg,
};
use jiff::civil::Date;
use stagegate_core::digest::{criteria_digest, sha256_tagged};
use stagegate_core::evidence::SignoffRole;
use stagegate_core::gates::{BUILTIN_TEMPLATE_YAML, GateTemplate};
use stagegate_core::review::{self, Review, ReviewInput};
use stagegate_core::signing::{self, AllowedSigners, SignersFile};
use stagegate_load::AgentFolder;
use stagegate_registry::{Act, Clock, Registry};
use std::io::IsTerminal;
use std::path::Path;

/// Parses `--as-of`: a date, or an RFC 3339 timestamp (its UTC day). Absent: today in UTC —
/// the only place stagegate reads the clock.
pub(crate) fn as_of(s: Option<&str>) -> Result<Date, Failure> {
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

pub(crate) fn who(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The recording time: the machine clock, or `STAGEGATE_NOW` (RFC 3339) — which every
/// event then records as an override, and reports flag.
pub(crate) fn clock() -> Result<Clock, Failure> {
    match std::env::var("STAGEGATE_NOW") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<jiff::Timestamp>()
            .map(|now| Clock {
                now,
                overridden: true,
            })
            .map_err(|_| {
                Failure::Invalid(format!(
                    "STAGEGATE_NOW {v:?}: expected an RFC 3339 timestamp such as 2026-06-12T09:00:00Z"
                ))
            }),
        _ => Ok(Clock {
            now: jiff::Timestamp::now(),
            overridden: false,
        }),
    }
}

/// The recording clock's UTC day.
fn clock_day() -> Result<Date, Failure> {
    Ok(clock()?.now.to_zoned(jiff::tz::TimeZone::UTC).date())
}

/// An act dated today (the recording clock's UTC day).
pub(crate) fn act_now(by: Option<String>) -> Result<Act, Failure> {
    let clock = clock()?;
    Ok(Act {
        as_of: Some(clock.now.to_zoned(jiff::tz::TimeZone::UTC).date()),
        clock,
        actor: who(by),
    })
}

fn act(as_of: Option<Date>, by: Option<String>) -> Result<Act, Failure> {
    Ok(Act {
        as_of,
        clock: clock()?,
        actor: who(by),
    })
}

/// Opens the registry only if it exists (reading must never create it).
async fn open_existing(r: &RegistryArg) -> Result<Option<Registry>, Failure> {
    match Registry::open(&r.registry, false, r.registry_key.as_deref()).await {
        Ok(reg) => Ok(Some(reg)),
        Err(stagegate_registry::RegistryError::Missing(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn open(r: &RegistryArg, create: bool) -> Result<Registry, Failure> {
    Ok(Registry::open(&r.registry, create, r.registry_key.as_deref()).await?)
}

/// The allowed-signers file: `--allowed-signers`/`$STAGEGATE_ALLOWED_SIGNERS`, else
/// `allowed_signers` in the org folder, else in the agent folder's parent. Returns the path
/// to read and the path to show (`../allowed_signers` for the last). `None` when none exists
/// (then no signature can count).
fn signers_path(
    arg: &SignersArg,
    org: Option<&Path>,
    agent: Option<&Path>,
) -> Option<(std::path::PathBuf, String)> {
    if let Some(p) = &arg.allowed_signers {
        return Some((p.clone(), p.display().to_string()));
    }
    if let Some(p) = org
        .map(|o| o.join("allowed_signers"))
        .filter(|p| p.is_file())
    {
        let shown = p.display().to_string();
        return Some((p, shown));
    }
    let beside = std::path::absolute(agent?)
        .ok()?
        .parent()?
        .join("allowed_signers");
    beside.is_file().then(|| {
        (
            beside,
            "../allowed_signers, beside the agent folder".to_owned(),
        )
    })
}

/// Reads and parses an allowed-signers file; errors name the file and line. Returns it with
/// its `sha256:` digest.
fn load_signers(path: &Path) -> Result<(AllowedSigners, String), Failure> {
    let bytes = std::fs::read(path).map_err(|e| {
        Failure::NoInput(format!(
            "{}: cannot read the allowed-signers file: {e}",
            path.display()
        ))
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Failure::Invalid(format!(
            "{}: the allowed-signers file is not UTF-8 text",
            path.display()
        ))
    })?;
    let allowed = AllowedSigners::parse(&text).map_err(|e| {
        Failure::Invalid(format!(
            "{}:{}: allowed signers: {}",
            path.display(),
            e.line,
            e.message
        ))
    })?;
    Ok((allowed, sha256_tagged(text.as_bytes())))
}

/// Loads, measures and reviews an agent folder. Writes nothing.
async fn evaluate(args: &ReviewArgs) -> Result<(AgentFolder, Review, Option<Registry>), Failure> {
    evaluate_with(args, None).await
}

/// [`evaluate`], taking the criteria lock from `server` when given (the server is then the
/// registry; no local one is opened).
async fn evaluate_with(
    args: &ReviewArgs,
    server: Option<&crate::remote::Client>,
) -> Result<(AgentFolder, Review, Option<Registry>), Failure> {
    let date = as_of(args.as_of.as_deref())?;
    let folder = stagegate_load::load_agent(&args.agent, args.org.as_deref())?;
    stagegate_load::check_review_date(&folder.card, date)?;
    let card = &folder.card.card;
    // Telemetry after the review date is not counted, like evidence dated after it: the
    // measured window is the pilot window cut at the review day.
    let mut measured_card = card.clone();
    if date < measured_card.pilot.end {
        measured_card.pilot.end = date;
    }
    let from_pg = card
        .telemetry
        .as_ref()
        .is_some_and(|t| t.postgres.is_some());
    let telemetry = if from_pg {
        let url = stagegate_pg::url_for(card).map_err(|e| Failure::NoInput(e.to_string()))?;
        stagegate_pg::measure(&url, &measured_card)
            .await
            .map_err(|e| Failure::NoInput(e.to_string()))?
    } else {
        stagegate_telemetry::measure_with(
            &folder.dir,
            &measured_card,
            &crate::progress::Bar::new(),
            stagegate_telemetry::Options::default(),
        )?
    };
    let (allowed, allowed_file) =
        match signers_path(&args.signers, args.org.as_deref(), Some(&args.agent)) {
            Some((path, shown)) => {
                let (allowed, sha256) = load_signers(&path)?;
                (
                    Some(allowed),
                    Some(SignersFile {
                        path: shown,
                        sha256,
                    }),
                )
            }
            None => (None, None),
        };
    let (registry, lock) = match server {
        Some(s) => (None, s.criteria_lock(&card.id).await?),
        None => {
            let registry = open_existing(&args.registry).await?;
            let lock = match &registry {
                Some(r) => r.criteria_lock(&card.id).await?,
                None => None,
            };
            (registry, lock)
        }
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
        allowed_signers: allowed.as_ref(),
        allowed_signers_file: allowed_file,
        inputs,
        as_of: date,
    };
    let review = review::review(&input);
    Ok((folder, review, registry))
}

/// Writes `text` to `path` atomically (temporary file in the same folder, then rename), or
/// to standard output when `path` is `None`.
pub(crate) fn emit(path: Option<&Path>, text: &str) -> Result<(), Failure> {
    match path {
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .or_else(|e| match e.kind() {
                    // The reader has gone (`| head`): nothing more to say, not a failure.
                    std::io::ErrorKind::BrokenPipe => crate::stdout_failed(e),
                    _ => Err(e),
                })
                .map_err(|e| Failure::Internal(format!("cannot write to standard output: {e}")))
        }
        Some(p) => write_atomic(p, text),
    }
}

fn write_atomic(p: &Path, text: &str) -> Result<(), Failure> {
    // A device, pipe or socket (`--out /dev/null`, `--out /dev/stdout`) is written to, never
    // replaced by a renamed file.
    if std::fs::metadata(p).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        return std::fs::write(p, text)
            .map_err(|e| Failure::Internal(format!("cannot write {}: {e}", p.display())));
    }
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

/// Writes `text` to a new file `<stem>.yaml` in `dir`, or `<stem>-2.yaml`, `-3`… when that
/// exists: an accountable act never replaces an earlier one. Complete or absent: the text goes
/// to a temporary file first, then is hard-linked under a name that must not exist yet.
fn write_new(dir: &Path, stem: &str, text: &str) -> Result<std::path::PathBuf, Failure> {
    let tmp = dir.join(format!(".{stem}.tmp-{}", std::process::id()));
    let fail = |p: &Path, e: std::io::Error| {
        Failure::Internal(format!("cannot write {}: {e}", p.display()))
    };
    std::fs::write(&tmp, text).map_err(|e| fail(&tmp, e))?;
    let mut n = 1;
    let result = loop {
        let name = if n == 1 {
            format!("{stem}.yaml")
        } else {
            format!("{stem}-{n}.yaml")
        };
        let p = dir.join(name);
        match std::fs::hard_link(&tmp, &p) {
            Ok(()) => break Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(e) => break Err(fail(&p, e)),
        }
    };
    let _ = std::fs::remove_file(&tmp);
    result
}

/// `stagegate review`.
pub async fn review(
    args: &ReviewArgs,
    format: Format,
    out: Option<&Path>,
    by: Option<String>,
    no_record: bool,
    remote: &crate::remote::RemoteArg,
) -> Result<u8, Failure> {
    let server = crate::remote::Client::from_args(remote)?;
    let (_folder, review, registry) = evaluate_with(args, server.as_ref()).await?;
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
    // The report first: an output that cannot be written records nothing.
    let act = act(Some(review.review_date), by)?;
    if out.is_some() || no_record {
        emit(out, &text)?;
    }
    if let (Some(server), false) = (&server, no_record) {
        let json = serde_json::to_value(&review).map_err(|e| Failure::Internal(e.to_string()))?;
        let said = server.push_review(&review.agent.id, &json).await?;
        eprintln!("stagegate: pushed the review: {said}");
        if out.is_none() {
            emit(None, &text)?;
        }
        return Ok(exit::of_outcome(review.decision.outcome));
    }
    if !no_record {
        let reg = match registry {
            Some(r) => r,
            None => open(&args.registry, true).await?,
        };
        let id = reg.record_review(&review, &act).await?;
        reg.close().await;
        eprintln!(
            "stagegate: recorded the review ({}) as event #{id} in {}",
            review.decision.outcome.as_str(),
            args.registry.registry
        );
        if out.is_none() {
            emit(None, &text)?;
        }
    }
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
        serde_json::to_value(&c.success_criteria).map_err(|e| Failure::Internal(e.to_string()))?;
    let locker = by.clone().unwrap_or_else(|| c.people.coe_lead.name.clone());
    let act = act(Some(date), by)?;
    let reg = open(&args.registry, true).await?;
    let new = reg
        .start_pilot(&c.id, &c.name, &digest, json, &locker, &act)
        .await?;
    let by = locker;
    reg.close().await;
    if new {
        outln!(
            "{}: pilot started {date}; success criteria locked as {digest} by {by}",
            c.id
        );
    } else {
        outln!(
            "{}: pilot already started with these criteria ({digest})",
            c.id
        );
    }
    Ok(0)
}

/// Gets the signature over `statement`: prints it and stops (`None`), reads a signature
/// file, or runs `ssh-keygen -Y sign -n stagegate -f KEY` on it.
pub(crate) fn obtain_signature(
    sign: &SignWith,
    statement: &str,
) -> Result<Option<String>, Failure> {
    if sign.print_statement {
        emit(None, statement)?;
        return Ok(None);
    }
    if let Some(p) = &sign.signature {
        return std::fs::read_to_string(p).map(Some).map_err(|e| {
            Failure::NoInput(format!("{}: cannot read the signature: {e}", p.display()))
        });
    }
    let Some(key) = &sign.key else {
        return Err(Failure::Invalid(
            "say how to sign: --key PATH (or $STAGEGATE_SIGNING_KEY), --signature FILE, or --print-statement".into(),
        ));
    };
    use std::io::Write;
    let mut child = std::process::Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", signing::ACT_NAMESPACE, "-f"])
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            Failure::NoInput(format!(
                "cannot run ssh-keygen (OpenSSH 8.2+ is needed to sign): {e}"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(statement.as_bytes()).map_err(|e| {
            Failure::Internal(format!("cannot pass the statement to ssh-keygen: {e}"))
        })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Failure::Internal(format!("ssh-keygen: {e}")))?;
    if !out.status.success() {
        return Err(Failure::Refused(format!(
            "ssh-keygen -Y sign with {} failed: {}",
            key.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn indent_block(s: &str) -> String {
    s.trim_end().lines().map(|l| format!("  {l}\n")).collect()
}

/// The allowed signers a new signature is checked against before anything is written.
fn required_signers(args: &ReviewArgs) -> Result<(std::path::PathBuf, AllowedSigners), Failure> {
    let (path, _) = signers_path(&args.signers, args.org.as_deref(), Some(&args.agent)).ok_or_else(|| {
        Failure::NoInput("no allowed-signers file: give --allowed-signers (the signature is checked before it is recorded)".into())
    })?;
    let (allowed, _) = load_signers(&path)?;
    Ok((path, allowed))
}

/// `stagegate signoff`.
pub async fn signoff(args: &ReviewArgs, role: Role, sign: &SignWith) -> Result<u8, Failure> {
    let (folder, review, _) = evaluate(args).await?;
    let card = &folder.card.card;
    let role = match role {
        Role::Builder => SignoffRole::Builder,
        Role::CoeLead => SignoffRole::CoeLead,
        Role::PeerApprover => SignoffRole::PeerApprover,
    };
    let person = signing::signer_for(card, role).map_err(Failure::Refused)?;
    let date = review.review_date;
    let statement = signing::signoff_statement(&review.signoff_subject, role, &person.name, date);
    let Some(signature) = obtain_signature(sign, &statement)? else {
        return Ok(0);
    };
    let (path, allowed) = required_signers(args)?;
    let verified = signing::check_recorded(
        Some(&allowed),
        person,
        &statement,
        Some(&signature),
        date,
        clock_day()?,
    )
    .map_err(|why| {
        Failure::Refused(format!(
            "the signature does not count as {} {}'s: {why} (checked against {})",
            role.title(),
            person.name,
            path.display()
        ))
    })?;
    let yaml = format!(
        "# Sign-off by {name} ({title}) over review {digest}: items {items}, {outcome} once signed.\n\
         # The SSH signature covers exactly that statement (`stagegate signoff --print-statement`);\n\
         # any change to the card, evidence, attachments, runbook, telemetry or template changes the\n\
         # digest and this sign-off stops counting.\n\
         items: [10]\nkind: signoff\ndate: {date}\nrecorded_by: {yname}\n\
         summary: \"{title} reviewed items 1-9 and signs review {short}\"\n\
         signoff:\n  role: {role_key}\n  name: {yname}\n  digest: \"{digest}\"\n\
         signature: |\n{sig}",
        name = person.name,
        yname = yaml_scalar(&person.name),
        title = role.title(),
        digest = review.digest,
        items = review
            .items
            .iter()
            .filter(|i| i.number <= 9)
            .map(|i| format!("{}{}", i.number, i.status.symbol()))
            .collect::<Vec<_>>()
            .join(" "),
        outcome = review.signoff_subject.decision_when_signed.as_str(),
        role_key = signing::role_key(role),
        short = stagegate_core::items::short(&review.digest),
        sig = indent_block(&signature),
    );
    let dir = folder.dir.join("evidence");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::Internal(format!("cannot create {}: {e}", dir.display())))?;
    let file = dir.join(format!(
        "signoff-{}.yaml",
        signing::role_key(role).replace('_', "-")
    ));
    write_atomic(&file, &yaml)?;
    let act = act(Some(date), None)?;
    let reg = open(&args.registry, true).await?;
    let id = reg
        .record_signoff(
            &card.id,
            &card.name,
            signing::role_key(role),
            &person.name,
            &review.digest,
            &statement,
            &signature,
            &verified.fingerprint,
            &act,
        )
        .await?;
    reg.close().await;
    outln!(
        "wrote {} — {} {} signed {} with key {} (registry event #{id})",
        file.display(),
        role.title(),
        person.name,
        review.digest,
        verified.fingerprint
    );
    Ok(0)
}

/// `stagegate approve`.
pub async fn approve(
    args: &ReviewArgs,
    subject: ApprovalKind,
    signer: Approver,
    items: &[u8],
    sign: &SignWith,
) -> Result<u8, Failure> {
    let date = as_of(args.as_of.as_deref())?;
    let card_file = stagegate_load::load_card(&args.agent)?;
    let card = &card_file.card;
    let name = match signer {
        Approver::Sponsor => &card.people.sponsor.name,
        Approver::CoeLead => &card.people.coe_lead.name,
        Approver::Builder => &card.people.builder.name,
    };
    let (person, statement, block, file) = match subject {
        ApprovalKind::CriteriaChange => {
            let person = signing::criteria_change_approver(card, name).map_err(Failure::Refused)?;
            let digest = criteria_digest(&card.success_criteria);
            (
                person,
                signing::criteria_change_statement(&card.id, &digest, &person.name, date),
                format!(
                    "approval:\n  subject: criteria_change\n  by: {}\n  criteria_digest: \"{digest}\"\n",
                    yaml_scalar(&person.name)
                ),
                format!("approval-criteria-change-{date}"),
            )
        }
        ApprovalKind::RiskAcceptance => {
            if items.is_empty() || items.iter().any(|i| !(1..=9).contains(i)) {
                return Err(Failure::Invalid(
                    "--items: a risk acceptance names the open items (1–9) it accepts, e.g. --items 3,9".into(),
                ));
            }
            let person = signing::risk_acceptor(card, name).map_err(Failure::Refused)?;
            let mut items = items.to_vec();
            items.sort_unstable();
            items.dedup();
            // The open items the sponsor accepts, as the evidence holds them on this date.
            let folder = stagegate_load::load_agent(&args.agent, args.org.as_deref())?;
            let seen: Vec<_> = folder
                .evidence
                .records
                .iter()
                .filter(|e| e.record.date <= date)
                .cloned()
                .collect();
            let opens = stagegate_core::review::open_items(&seen);
            if let Some(bare) = items.iter().find(|i| !opens.iter().any(|o| o.item == **i)) {
                return Err(Failure::Refused(format!(
                    "item {bare} has no open-item record dated on or before {date}: record what is missing, its owner and due date first; a sponsor accepts owned open items (seed 001 decision matrix: Conditional)"
                )));
            }
            let list = items
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            (
                person,
                signing::risk_acceptance_statement(
                    &card.id,
                    &card.version,
                    &items,
                    &opens,
                    &person.name,
                    date,
                ),
                format!(
                    "approval:\n  subject: risk_acceptance\n  by: {}\n  items: [{list}]\n",
                    yaml_scalar(&person.name)
                ),
                format!("approval-risk-acceptance-{date}"),
            )
        }
    };
    let Some(signature) = obtain_signature(sign, &statement)? else {
        return Ok(0);
    };
    let (_, allowed) = required_signers(args)?;
    let verified = signing::check_recorded(
        Some(&allowed),
        person,
        &statement,
        Some(&signature),
        date,
        clock_day()?,
    )
    .map_err(|why| {
        Failure::Refused(format!(
            "the signature does not count as {}'s: {why}",
            person.name
        ))
    })?;
    let items_line = match subject {
        ApprovalKind::CriteriaChange => "items: [1]".to_owned(),
        ApprovalKind::RiskAcceptance => format!(
            "items: [{}]",
            items
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let yaml = format!(
        "# {what} signed by {name} with key {fp}.\n{items_line}\nkind: approval\ndate: {date}\nrecorded_by: {yname}\nsummary: \"{what} by {name}\"\n{block}signature: |\n{sig}",
        what = match subject {
            ApprovalKind::CriteriaChange => "Criteria change re-approved",
            ApprovalKind::RiskAcceptance => "Risk of a conditional launch accepted",
        },
        name = person.name,
        yname = yaml_scalar(&person.name),
        fp = verified.fingerprint,
        sig = indent_block(&signature),
    );
    let dir = args.agent.join("evidence");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::Internal(format!("cannot create {}: {e}", dir.display())))?;
    let out = write_new(&dir, &file, &yaml)?;
    outln!(
        "wrote {} — signed by {} with key {}",
        out.display(),
        person.name,
        verified.fingerprint
    );
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
    checkpoints: &[std::path::PathBuf],
    signers: &SignersArg,
    registry: &RegistryArg,
) -> Result<u8, Failure> {
    let date = as_of(date)?;
    let kept = read_checkpoints(checkpoints)?;
    let (path, _) = signers_path(signers, None, None).ok_or_else(|| {
        Failure::NoInput(
            "promote re-verifies the review's sign-off signatures: give --allowed-signers (or $STAGEGATE_ALLOWED_SIGNERS)".into(),
        )
    })?;
    let (allowed, _) = load_signers(&path)?;
    let act = act(Some(date), by)?;
    let reg = open(registry, false).await?;
    let id = reg
        .promote(agent, &act, &kept, |stored, recorded| {
            resign(stored, &allowed, recorded)
        })
        .await?;
    reg.close().await;
    outln!(
        "{agent}: Pilot → Production on {date} (review: event #{id}; sign-offs re-verified against {})",
        path.display()
    );
    Ok(0)
}

/// `stagegate pause | resume | retire`.
pub async fn change_stage(
    a: &crate::LifecycleArgs,
    change: stagegate_registry::StageChange,
) -> Result<u8, Failure> {
    let date = as_of(a.as_of.as_deref())?;
    let act = act(Some(date), a.by.clone())?;
    let reg = open(&a.registry, false).await?;
    let event = reg.change_stage(&a.agent, change, &a.reason, &act).await?;
    let stage = reg.stage(&a.agent).await?;
    reg.close().await;
    outln!(
        "{}: {} on {date} (event #{event}); stage now {}",
        a.agent,
        change.done(),
        stage.map_or("none", |s| s.as_str())
    );
    Ok(0)
}

/// Re-verifies the sign-offs inside a stored review (see [`signing::reverify`]).
fn resign(
    stored: &serde_json::Value,
    allowed: &AllowedSigners,
    recorded: &dyn Fn(&str) -> Date,
) -> Result<Vec<String>, String> {
    let s: signing::SignedReview = serde_json::from_value(stored.clone())
        .map_err(|e| format!("the stored review has no sign-off subject: {e}"))?;
    signing::reverify(&s, allowed, recorded)
}

fn read_checkpoints(
    paths: &[std::path::PathBuf],
) -> Result<Vec<stagegate_registry::Checkpoint>, Failure> {
    let mut kept = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| {
            Failure::NoInput(format!("{}: cannot read the checkpoint: {e}", p.display()))
        })?;
        kept.push(
            stagegate_registry::Checkpoint::parse(&text)
                .map_err(|e| Failure::Invalid(format!("{}: {e}", p.display())))?,
        );
    }
    Ok(kept)
}

/// `stagegate verify`.
pub async fn verify(
    checkpoints: &[std::path::PathBuf],
    format: Format,
    registry: &RegistryArg,
) -> Result<u8, Failure> {
    let kept = read_checkpoints(checkpoints)?;
    let reg = open(registry, false).await?;
    let v = reg.verify(&kept).await?;
    reg.close().await;
    match format {
        Format::Json => emit(
            None,
            &format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()),
        )?,
        Format::Table | Format::Markdown => emit(
            None,
            &format!(
                "{}: {} events verified (hashes, chain, registry signatures {}, rules); head {}{}{}\n",
                registry.registry,
                v.events,
                v.key_fingerprint,
                v.head,
                if v.checkpoints > 0 {
                    format!("; consistent with {} kept checkpoint(s)", v.checkpoints)
                } else {
                    "; no checkpoint given, so removal of the newest events cannot be ruled out"
                        .into()
                },
                if v.replay_clock {
                    "; a replay registry: created under STAGEGATE_NOW, so its recording times are not the machine clock's".to_owned()
                } else {
                    String::new()
                }
            ),
        )?,
    }
    Ok(0)
}

/// `stagegate checkpoint`.
pub async fn checkpoint(out: Option<&Path>, registry: &RegistryArg) -> Result<u8, Failure> {
    let reg = open(registry, false).await?;
    let c = reg.checkpoint().await?;
    reg.close().await;
    emit(out, &c.to_text())?;
    Ok(0)
}

/// `stagegate history`.
pub async fn history(
    agent: Option<&str>,
    format: Format,
    registry: &RegistryArg,
) -> Result<u8, Failure> {
    let reg = open(registry, false).await?;
    let verified = reg.verify(&[]).await?.events;
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
                "verified_events": verified,
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
                            .map(|r| format!(" (review: event #{r})"))
                            .unwrap_or_default()
                    ));
                }
            }
            t.push_str(&format!(
                "\nRegistry verified: {verified} event(s), hashes, chain and signatures.\n"
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
