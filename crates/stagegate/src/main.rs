//! The `stagegate` command line. Thin: parses arguments, calls the library crates, maps
//! outcomes to exit codes (see [`exit`]).

#![forbid(unsafe_code)]

/// `println!` that ends the process quietly (exit 0) when the reader of standard output has
/// gone (`stagegate … | head -1`), as pipe-friendly tools do, instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            $crate::stdout_failed(e)
        }
    }};
}

/// Standard output could not be written: quietly done when its reader has gone, else an
/// internal failure.
pub(crate) fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("stagegate: cannot write to standard output: {e}");
    std::process::exit(i32::from(exit::INTERNAL));
}

mod exit;
mod portfolio;
mod progress;
mod remote;
mod rollout;
mod run;
mod serve;
mod token;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Decide whether an AI agent's pilot may go to production, from its agent card, its
/// evidence and its pilot telemetry (the 10-item Pilot-to-Prod checklist).
#[derive(Debug, Parser)]
#[command(name = "stagegate", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 Cleared (or success), 10 Conditional, 20 Blocked, \
1 refused by a rule (registry, authority, signature), 2 usage error, 3 registry does not verify \
(edited, inserted, reordered, deleted or truncated events), 65 invalid input, 66 input missing \
or unreadable, 70 internal error or an output that cannot be written, 74 registry or its key \
unreadable or unwritable."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options shared by commands that read the registry.
#[derive(Debug, clap::Args)]
pub struct RegistryArg {
    /// The registry: an SQLite file, or a PostgreSQL URL (`postgres://user@host/db`).
    /// Default: $STAGEGATE_REGISTRY, else `.stagegate/registry.db` in the current directory.
    #[arg(
        long,
        env = "STAGEGATE_REGISTRY",
        default_value = ".stagegate/registry.db",
        value_parser = parse_location
    )]
    pub registry: stagegate_registry::Location,
    /// The registry key that signs every event (created with the registry; keep it where
    /// those who can write the database cannot). Default: $STAGEGATE_REGISTRY_KEY, else
    /// `registry.key` beside an SQLite database; a PostgreSQL registry needs it given.
    #[arg(long, env = "STAGEGATE_REGISTRY_KEY")]
    pub registry_key: Option<PathBuf>,
}

fn parse_location(s: &str) -> Result<stagegate_registry::Location, String> {
    if s.trim().is_empty() {
        return Err("an empty registry location".into());
    }
    Ok(stagegate_registry::Location::parse(s))
}

/// Where the organisation's allowed-signers file is.
#[derive(Debug, clap::Args)]
pub struct SignersArg {
    /// The allowed-signers file (OpenSSH format: `"Full Name" ssh-ed25519 AAAA…`) mapping each
    /// person to their public keys. Default: $STAGEGATE_ALLOWED_SIGNERS, else
    /// `allowed_signers` in the --org folder, else in the agent folder's parent.
    #[arg(long, env = "STAGEGATE_ALLOWED_SIGNERS")]
    pub allowed_signers: Option<PathBuf>,
}

/// Options shared by commands that review an agent folder.
#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    /// The agent's folder (holds agent.yaml and evidence/).
    pub agent: PathBuf,
    /// Review date: YYYY-MM-DD or an RFC 3339 timestamp (its UTC day). Default: today (UTC).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Organisation folder whose gates.yaml overrides the built-in template (an agent's own
    /// gates.yaml wins over it).
    #[arg(long)]
    pub org: Option<PathBuf>,
    #[command(flatten)]
    pub signers: SignersArg,
    #[command(flatten)]
    pub registry: RegistryArg,
}

/// How an accountable act gets its SSH signature.
#[derive(Debug, clap::Args)]
pub struct SignWith {
    /// Sign with this SSH key through `ssh-keygen -Y sign` (a private key file, or a public
    /// key whose private half is in ssh-agent). Default: $STAGEGATE_SIGNING_KEY.
    #[arg(long, env = "STAGEGATE_SIGNING_KEY", conflicts_with_all = ["signature", "print_statement"])]
    pub key: Option<PathBuf>,
    /// Use a signature made elsewhere: `ssh-keygen -Y sign -n stagegate -f KEY statement.txt`
    /// over the text `--print-statement` prints.
    #[arg(long, conflicts_with = "print_statement")]
    pub signature: Option<PathBuf>,
    /// Print the statement to sign and stop.
    #[arg(long)]
    pub print_statement: bool,
}

/// Output format of a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables for a terminal (colour on a TTY only).
    Table,
    /// Markdown in Template 07's layout.
    Markdown,
    /// JSON with `schema_version`, for CI.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Review an agent's pilot: checklist, decision, readiness. Records the review in the
    /// registry and exits 0 Cleared, 10 Conditional, 20 Blocked.
    Review {
        #[command(flatten)]
        args: ReviewArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Write the report to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Who runs the review, recorded in the registry. Default: $USER.
        #[arg(long)]
        by: Option<String>,
        /// Do not record the review in the registry.
        #[arg(long)]
        no_record: bool,
        #[command(flatten)]
        remote: remote::RemoteArg,
    },
    /// Evidence records and a shared server.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// Write the scaling plan (seed 000 `scaling_plan` YAML, plus economics) from a review.
    Plan {
        #[command(flatten)]
        args: ReviewArgs,
        /// Write the plan to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Pilot lifecycle.
    Pilot {
        #[command(subcommand)]
        command: PilotCommand,
    },
    /// Sign off the agent's current review (item 10) with your SSH key: the card's person for
    /// the role signs the review's statement (digest, outcome once signed, item statuses);
    /// writes evidence/signoff-<role>.yaml and records the sign-off in the registry.
    Signoff {
        #[command(flatten)]
        args: ReviewArgs,
        /// The role signed in.
        #[arg(long, value_enum)]
        role: Role,
        #[command(flatten)]
        sign: SignWith,
    },
    /// Sign an approval with your SSH key: a criteria change (the sponsor or the CoE lead,
    /// never the builder) or the sponsor's risk acceptance of open items. Writes
    /// evidence/approval-<subject>-<date>.yaml.
    Approve {
        /// What is approved.
        #[arg(value_enum)]
        subject: ApprovalKind,
        #[command(flatten)]
        args: ReviewArgs,
        /// Whose approval it is (from the card's people).
        #[arg(long = "as", value_enum, default_value = "sponsor")]
        signer: Approver,
        /// Items a risk acceptance covers (e.g. `--items 3,9`).
        #[arg(long, value_delimiter = ',')]
        items: Vec<u8>,
        #[command(flatten)]
        sign: SignWith,
    },
    /// Verify the registry: every event's hash, chain and registry signature, the rules of
    /// the log, and consistency with checkpoints kept elsewhere. Exit 3 names the first
    /// event that fails.
    Verify {
        /// A checkpoint printed earlier by `stagegate checkpoint` (repeatable).
        #[arg(long)]
        checkpoint: Vec<PathBuf>,
        /// Output format (table or json).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        registry: RegistryArg,
    },
    /// Print a signed checkpoint (event count + head hash) to keep outside the registry
    /// (in git, a ticket, another system); `verify --checkpoint` then detects truncation.
    Checkpoint {
        /// Write it to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArg,
    },
    /// Move an agent from Pilot to Production on the strength of its latest review (Cleared or
    /// Conditional, with valid sign-offs).
    Promote {
        /// Agent id (agent-<dept>-<slug>).
        agent: String,
        /// Effective date. Default: today (UTC).
        #[arg(long)]
        as_of: Option<String>,
        /// Who promotes. Default: $USER.
        #[arg(long)]
        by: Option<String>,
        /// A checkpoint kept elsewhere (`stagegate checkpoint`); the registry must be
        /// consistent with it (repeatable).
        #[arg(long)]
        checkpoint: Vec<PathBuf>,
        #[command(flatten)]
        signers: SignersArg,
        #[command(flatten)]
        registry: RegistryArg,
    },
    /// Pause a pilot or production agent (the kill switch pulled, an incident); it resumes to
    /// the stage it was paused from.
    Pause(LifecycleArgs),
    /// Resume a paused agent to the stage it was paused from.
    Resume(LifecycleArgs),
    /// Retire an agent for good.
    Retire(LifecycleArgs),
    /// A phased rollout on `stagegate serve`: start it from a plan, read its status, and the
    /// signed go/no-go acts (advance, pause, resume, abort). Triggers are judged live by the
    /// server's controller.
    Rollout {
        #[command(subcommand)]
        command: RolloutCommand,
    },
    /// Pull the agent's kill switch on `stagegate serve`: every evaluation of its flag returns
    /// the safe default with reason DISABLED, on every replica (a signed act).
    Kill(rollout::ActArgs),
    /// Restore a pulled kill switch (a signed act).
    Restore(rollout::ActArgs),
    /// Drill the kill switch on `stagegate serve` (seed 001 item 9): pull it as your signed
    /// drill act, measure until every connected client and SSE stream saw DISABLED, restore
    /// it, and record the item-9 evidence (written to --out and pushed). Exit 0 passed, 1 not.
    Drill {
        #[command(flatten)]
        act: rollout::ActArgs,
        /// More replicas to collect the measurement from (the same token).
        #[arg(long)]
        also: Vec<url::Url>,
        /// Longest wait for every client, in seconds.
        #[arg(long, default_value_t = 30)]
        wait_seconds: u64,
        /// Where the evidence record and its attachment are written.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Show an agent's review and stage history (verifies the registry's hash chain first).
    History {
        /// Agent id; all agents when omitted.
        agent: Option<String>,
        /// Output format (table or json).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        registry: RegistryArg,
    },
    /// Print the JSON Schema of an input file, generated from the Rust types.
    Schema {
        /// Which file.
        #[arg(value_enum, default_value = "card")]
        what: SchemaKind,
    },
    /// Print the built-in gate template (copy it to gates.yaml to override).
    Gates,
    /// Serve the registry as a shared service: the JSON API under /api/v1 (OpenAPI at
    /// /api/v1/openapi.json), /healthz, /readyz and Prometheus /metrics. Settings: --config
    /// FILE (YAML), then STAGEGATE_LISTEN / STAGEGATE_REGISTRY / STAGEGATE_REGISTRY_KEY /
    /// STAGEGATE_LOG_FORMAT, then these flags.
    Serve(serve::ServeArgs),
    /// The portfolio as of a date, after verifying the registry: every agent's stage and last
    /// decision, pilot purgatory, overdue open items, post-launch reviews due, stale drills —
    /// as the scorecard JSON, the weekly Markdown report or an iCalendar feed.
    Portfolio(portfolio::PortfolioArgs),
    /// API tokens for `stagegate serve`: create (shown once, stored hashed, expiring), revoke,
    /// list. Issuing and revoking are events of the registry's log.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum EvidenceCommand {
    /// Push evidence records (`.yaml`, or `.md` with front matter) with the attachments they
    /// name to a `stagegate serve`, e.g. a drill's record from the on-call's job.
    Push {
        /// The records.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The agent's id.
        #[arg(long)]
        agent: String,
        #[command(flatten)]
        remote: remote::RemoteArg,
    },
}

#[derive(Debug, Subcommand)]
enum PilotCommand {
    /// Start the pilot: register the agent, lock its success criteria digest, stage = Pilot.
    Start {
        #[command(flatten)]
        args: ReviewArgs,
        /// Who locks the criteria. Default: the card's CoE lead.
        #[arg(long)]
        by: Option<String>,
    },
}

/// A sign-off role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Agent builder.
    Builder,
    /// AI CoE lead.
    CoeLead,
    /// Peer approver.
    PeerApprover,
}

/// What an approval approves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApprovalKind {
    /// Changed success criteria (the card's current criteria digest).
    CriteriaChange,
    /// The sponsor accepts launching with the listed items open.
    RiskAcceptance,
}

/// Who approves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Approver {
    /// The executive sponsor.
    Sponsor,
    /// The AI CoE lead.
    CoeLead,
    /// The builder (always refused: shown so the refusal names the rule).
    Builder,
}

/// `pause`, `resume` and `retire` flags.
#[derive(Debug, clap::Args)]
pub struct LifecycleArgs {
    /// Agent id (agent-<dept>-<slug>).
    pub agent: String,
    /// Why (recorded with the change).
    #[arg(long)]
    pub reason: String,
    /// Effective date. Default: today (UTC).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Who records it. Default: $USER.
    #[arg(long)]
    pub by: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArg,
}

/// `stagegate rollout …`.
#[derive(Debug, Subcommand)]
enum RolloutCommand {
    /// Start the rollout from its plan (the sponsor or the CoE lead signs).
    Start {
        /// The plan: a `stagegate plan` file with its `rollout:` section, or the section alone.
        #[arg(long)]
        plan: PathBuf,
        #[command(flatten)]
        act: rollout::ActArgs,
    },
    /// The phase, exposure, kill switch and each trigger's judgement now.
    Status {
        /// Agent id.
        agent: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: remote::RemoteArg,
    },
    /// Go: the next phase (the sponsor or the CoE lead signs).
    Advance(rollout::ActArgs),
    /// Hold the rollout (the on-call, the CoE lead or the sponsor signs).
    Pause(rollout::ActArgs),
    /// Continue it: the phase's window starts again (the sponsor or the CoE lead signs).
    Resume(rollout::ActArgs),
    /// Stop it for good at 0% (the sponsor or the CoE lead signs).
    Abort(rollout::ActArgs),
}

/// Which schema to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// agent.yaml.
    Card,
    /// An evidence record.
    Evidence,
    /// gates.yaml.
    Gates,
}

/// mimalloc for the whole binary: the server's hot paths (OFREP evaluations, JSON bodies)
/// allocate small objects at a high rate, where it is markedly faster than the system
/// allocator (`bench/ofrep.sh`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Serve(args) = &cli.command {
        return match serve::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("stagegate: {e}");
                ExitCode::from(e.code())
            }
        };
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stagegate: cannot start the runtime: {e}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Review {
                args,
                format,
                out,
                by,
                no_record,
                remote,
            } => run::review(&args, format, out.as_deref(), by, no_record, &remote).await,
            Command::Evidence {
                command:
                    EvidenceCommand::Push {
                        files,
                        agent,
                        remote,
                    },
            } => remote::evidence_push(&agent, &files, &remote).await,
            Command::Plan { args, out } => run::plan(&args, out.as_deref()).await,
            Command::Pilot {
                command: PilotCommand::Start { args, by },
            } => run::pilot_start(&args, by).await,
            Command::Signoff { args, role, sign } => run::signoff(&args, role, &sign).await,
            Command::Approve {
                args,
                subject,
                signer,
                items,
                sign,
            } => run::approve(&args, subject, signer, &items, &sign).await,
            Command::Promote {
                agent,
                as_of,
                by,
                checkpoint,
                signers,
                registry,
            } => {
                run::promote(
                    &agent,
                    as_of.as_deref(),
                    by,
                    &checkpoint,
                    &signers,
                    &registry,
                )
                .await
            }
            Command::Rollout { command } => match command {
                RolloutCommand::Start { plan, act } => {
                    rollout::act(&act, "start", Some(&plan), None).await
                }
                RolloutCommand::Status {
                    agent,
                    json,
                    remote,
                } => rollout::status(&agent, &remote, json).await,
                RolloutCommand::Advance(a) => rollout::act(&a, "advance", None, None).await,
                RolloutCommand::Pause(a) => rollout::act(&a, "pause", None, None).await,
                RolloutCommand::Resume(a) => rollout::act(&a, "resume", None, None).await,
                RolloutCommand::Abort(a) => rollout::act(&a, "abort", None, None).await,
            },
            Command::Kill(a) => rollout::act(&a, "kill", None, None).await,
            Command::Restore(a) => rollout::act(&a, "restore", None, None).await,
            Command::Drill {
                act,
                also,
                wait_seconds,
                out,
            } => {
                rollout::drill(
                    &act,
                    &also,
                    std::time::Duration::from_secs(wait_seconds),
                    &out,
                )
                .await
            }
            Command::Pause(a) => {
                run::change_stage(&a, stagegate_registry::StageChange::Pause).await
            }
            Command::Resume(a) => {
                run::change_stage(&a, stagegate_registry::StageChange::Resume).await
            }
            Command::Retire(a) => {
                run::change_stage(&a, stagegate_registry::StageChange::Retire).await
            }
            Command::History {
                agent,
                format,
                registry,
            } => run::history(agent.as_deref(), format, &registry).await,
            Command::Verify {
                checkpoint,
                format,
                registry,
            } => run::verify(&checkpoint, format, &registry).await,
            Command::Checkpoint { out, registry } => {
                run::checkpoint(out.as_deref(), &registry).await
            }
            Command::Schema { what } => run::schema(what),
            Command::Gates => run::gates(),
            Command::Portfolio(args) => portfolio::run(&args).await,
            Command::Token { command } => token::run(command).await,
            // Served above, on its own multi-threaded runtime.
            Command::Serve(_) => Err(exit::Failure::Internal(
                "serve runs on its own runtime".into(),
            )),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("stagegate: {e}");
            ExitCode::from(e.code())
        }
    }
}
