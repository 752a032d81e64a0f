//! `stagegate serve`: reads the configuration, sets up logging and runs
//! [`stagegate_server::serve`] on a multi-threaded runtime until SIGINT/SIGTERM.

use crate::exit::Failure;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `stagegate serve` flags; each overrides the configuration file and the environment.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// A YAML configuration file (listen, registry, registry_key, log_format, allowed_signers,
    /// oidc, purgatory_days, full_verify_seconds).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:8080. Default 127.0.0.1:8080.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// The registry: an SQLite file or a postgres:// URL. Default .stagegate/registry.db.
    #[arg(long)]
    pub registry: Option<String>,
    /// The registry key file (required to write to a PostgreSQL registry).
    #[arg(long)]
    pub registry_key: Option<PathBuf>,
    /// The allowed-signers file sign-offs and promotions are checked against.
    #[arg(long)]
    pub allowed_signers: Option<PathBuf>,
    /// Log lines as text or JSON.
    #[arg(long, value_parser = ["text", "json"])]
    pub log_format: Option<String>,
}

/// Loads the settings, starts logging and serves until a shutdown signal.
///
/// # Errors
/// [`Failure::Invalid`] for a bad configuration, [`Failure::Registry`] when the registry
/// cannot be opened, [`Failure::Internal`] when the address cannot be bound.
pub fn run(args: &ServeArgs) -> Result<(), Failure> {
    let mut config = stagegate_server::Config::load(args.config.as_deref(), |k| {
        std::env::var(k).ok().filter(|v| !v.is_empty())
    })
    .map_err(|e| Failure::Invalid(e.to_string()))?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(r) = &args.registry {
        config.registry.clone_from(r);
    }
    if let Some(a) = &args.allowed_signers {
        config.allowed_signers = Some(a.clone());
    }
    if let Some(k) = &args.registry_key {
        config.registry_key = Some(k.clone());
    }
    match args.log_format.as_deref() {
        Some("json") => config.log_format = stagegate_server::LogFormat::Json,
        Some("text") => config.log_format = stagegate_server::LogFormat::Text,
        _ => {}
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("STAGEGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log redirected to a file or a collector stays plain.
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match config.log_format {
        stagegate_server::LogFormat::Json => fmt.json().init(),
        stagegate_server::LogFormat::Text => fmt.init(),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("cannot start the runtime: {e}")))?;
    rt.block_on(stagegate_server::serve(
        &config,
        stagegate_server::shutdown_signal(),
    ))
    .map_err(|e| match e {
        stagegate_server::ServeError::Registry(e) => e.into(),
        e @ stagegate_server::ServeError::Bind(..) => Failure::Internal(e.to_string()),
        stagegate_server::ServeError::Setting(m) => Failure::Invalid(m),
    })
}
