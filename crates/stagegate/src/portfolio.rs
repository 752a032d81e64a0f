//! `stagegate portfolio`: verifies the registry, turns its event log into the portfolio's
//! snapshots and prints the scorecard JSON, the weekly Markdown report or the iCalendar feed
//! ([`stagegate_portfolio`]).

use crate::RegistryArg;
use crate::exit::Failure;
use jiff::civil::Date;
use stagegate_core::stage::Stage;
use stagegate_portfolio::{AgentSnapshot, Options, ReviewSnapshot, Source, StageChange};
use stagegate_registry::{Event, Registry, StoredEvent};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Output format of the portfolio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PortfolioFormat {
    /// The scorecard JSON (`schema_version: 1`).
    Json,
    /// The weekly executive report.
    Markdown,
    /// An iCalendar (RFC 5545) feed of the due dates.
    Ics,
}

/// `stagegate portfolio` flags.
#[derive(Debug, clap::Args)]
pub struct PortfolioArgs {
    /// The date to judge on: YYYY-MM-DD or an RFC 3339 timestamp (its UTC day). Events dated
    /// after it are ignored. Default: today (UTC).
    #[arg(long)]
    pub as_of: Option<String>,
    /// A pilot is in purgatory this many days after its end with no decision since (seed 004).
    #[arg(long, default_value_t = stagegate_portfolio::scorecard::DEFAULT_PURGATORY_DAYS)]
    pub purgatory_days: u32,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: PortfolioFormat,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArg,
}

/// Builds every agent's snapshot from the verified prefix of the log: names from
/// `agent-registered`, stage changes (effective date = the event's `--as-of`) from
/// `stage-changed`, reviews from the review JSON each `review-recorded` carries.
///
/// # Errors
/// [`Failure::Tampered`] for an event that does not parse or a stage change without a valid
/// date (replay already refuses both), [`Failure::Internal`] for a recorded review without the
/// fields the portfolio reads.
pub fn snapshots(rows: &[StoredEvent]) -> Result<Vec<AgentSnapshot>, Failure> {
    let mut agents: BTreeMap<String, AgentSnapshot> = BTreeMap::new();
    fn entry<'a>(
        agents: &'a mut BTreeMap<String, AgentSnapshot>,
        id: &str,
    ) -> &'a mut AgentSnapshot {
        agents
            .entry(id.to_owned())
            .or_insert_with(|| AgentSnapshot {
                id: id.to_owned(),
                name: id.to_owned(),
                stages: Vec::new(),
                reviews: Vec::new(),
            })
    }
    for r in rows {
        let bad = |why: &str| Failure::Tampered(format!("registry event #{}: {why}", r.seq));
        let event: Event =
            serde_json::from_str(&r.body).map_err(|e| bad(&format!("not an event: {e}")))?;
        match event {
            Event::AgentRegistered { agent, name } => {
                entry(&mut agents, &agent).name = name;
            }
            Event::StageChanged { agent, to, .. } => {
                let stage = Stage::parse(&to).ok_or_else(|| bad("unknown stage"))?;
                let at: Date = r
                    .as_of
                    .as_deref()
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(|| bad("a stage change without a date"))?;
                entry(&mut agents, &agent).stages.push(StageChange {
                    event: r.seq,
                    stage,
                    at,
                });
            }
            Event::ReviewRecorded { agent, review, .. } => {
                let s = ReviewSnapshot::from_review_json(r.seq, &review)
                    .map_err(|e| Failure::Internal(format!("{e}; the portfolio cannot use it")))?;
                entry(&mut agents, &agent).reviews.push(s);
            }
            _ => {}
        }
    }
    Ok(agents.into_values().collect())
}

/// `stagegate portfolio`.
pub async fn run(args: &PortfolioArgs) -> Result<u8, Failure> {
    let as_of = crate::run::as_of(args.as_of.as_deref())?;
    let reg = Registry::open(
        &args.registry.registry,
        false,
        args.registry.registry_key.as_deref(),
    )
    .await?;
    // Verify everything before answering; then read only the verified prefix (an event
    // appended meanwhile waits for the next run).
    let v = reg.verify(&[]).await?;
    let rows = reg.events().await?;
    reg.close().await;
    let verified = usize::try_from(v.events).unwrap_or(0).min(rows.len());
    let rows = &rows[..verified];
    if rows.last().is_some_and(|r| r.hash != v.head) {
        return Err(Failure::Tampered(
            "the registry changed under its verification; run portfolio again".into(),
        ));
    }
    let agents = snapshots(rows)?;
    let mut card = stagegate_portfolio::scorecard(
        &agents,
        &Options {
            purgatory_days: args.purgatory_days,
            ..Options::new(as_of)
        },
    );
    card.source = Some(Source {
        registry: args.registry.registry.shown(),
        verified_events: v.events,
        head: v.head,
    });
    let text = match args.format {
        PortfolioFormat::Json => {
            stagegate_portfolio::to_json(&card).map_err(|e| Failure::Internal(e.to_string()))?
        }
        PortfolioFormat::Markdown => stagegate_portfolio::markdown::weekly(&card),
        PortfolioFormat::Ics => stagegate_portfolio::ical::feed(&card),
    };
    crate::run::emit(args.out.as_deref(), &text)?;
    Ok(0)
}
