//! `stagegate portfolio`: verifies the registry, turns its event log into the portfolio's
//! snapshots and prints the scorecard JSON, the weekly Markdown report or the iCalendar feed
//! ([`stagegate_portfolio`]).

use crate::RegistryArg;
use crate::exit::Failure;
use stagegate_portfolio::{AgentSnapshot, Options, Source};
use stagegate_registry::{Registry, StoredEvent};
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

/// Builds every agent's snapshot from the verified prefix of the log, event by event, as the
/// server's cache does ([`stagegate_server::cache::add_to_portfolio`]).
///
/// # Errors
/// [`Failure::Internal`] for a recorded review without the fields the portfolio reads, or a
/// stage change without a date (replay refuses the latter already).
pub fn snapshots(rows: &[StoredEvent]) -> Result<Vec<AgentSnapshot>, Failure> {
    let mut agents: BTreeMap<String, AgentSnapshot> = BTreeMap::new();
    for r in rows {
        stagegate_server::cache::add_to_portfolio(&mut agents, r)
            .map_err(|why| Failure::Internal(format!("registry {why}")))?;
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
