//! The server's configuration: a YAML file (`--config`), then environment variables, then
//! command-line flags, each overriding the one before.
//!
//! ```yaml
//! listen: 127.0.0.1:8080                          # STAGEGATE_LISTEN
//! registry: postgres://stagegate@db/stagegate     # STAGEGATE_REGISTRY (SQLite path or URL)
//! registry_key: /run/secrets/registry.key         # STAGEGATE_REGISTRY_KEY
//! log_format: json                                # STAGEGATE_LOG_FORMAT: text | json
//! allowed_signers: /etc/stagegate/allowed_signers # STAGEGATE_ALLOWED_SIGNERS
//! purgatory_days: 14
//! full_verify_seconds: 600
//! max_body_mb: 64                                 # largest review or evidence upload
//! webhooks: { backoff_base_ms: 1000, max_attempts: 8, tick_seconds: 30 }
//! ofrep: { rate_per_second: 100000, poll_ms: 1000 } # per credential; flag refresh backstop
//! telemetry:                                      # polled telemetry of rolling-out agents
//!   - agent: agent-finance-invoice-recon
//!     every_seconds: 15                           # default
//!     postgres:                                   # one row per event, columns = fields
//!       url_env: INVOICE_EVENTS_PG                # the DSN's variable (never in this file)
//!       table: telemetry.agent_events
//!       time_column: time                         # timestamptz (default)
//!       variant_column: variant                   # 'on' | 'off' (default)
//!       agent_column: agent                       # optional
//!       settle_seconds: 5                         # rows newer than this are read next time
//!   - agent: agent-hr-onboarding
//!     prometheus:                                 # cumulative counters by label variant
//!       url: http://prometheus:9090
//!       triggers:
//!         output_tokens: { count: 'sum by (variant) (agent_output_tokens_count)',
//!                          sum: 'sum by (variant) (agent_output_tokens_sum)',
//!                          sum_squares: 'sum by (variant) (agent_output_tokens_sum_squares)' }
//!         errors: { count: 'sum by (variant) (agent_requests_total)',
//!                   set: 'sum by (variant) (agent_errors_total)' }
//! oidc:                                           # bearer JWTs besides API tokens
//!   issuer: https://login.acme.example
//!   audience: stagegate
//!   jwks_file: /etc/stagegate/jwks.json
//!   person_claim: email                           # default
//!   roles_claim: roles                            # default
//! ```

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// `stagegate serve`'s settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The registry: an SQLite path or a `postgres://` URL. Default `.stagegate/registry.db`.
    #[serde(default = "default_registry")]
    pub registry: String,
    /// The registry key file (required to write to a PostgreSQL registry).
    #[serde(default)]
    pub registry_key: Option<PathBuf>,
    /// Log format. Default `text`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// The allowed-signers file sign-offs and promotions are checked against
    /// (`STAGEGATE_ALLOWED_SIGNERS`). Without it, those calls answer 503.
    #[serde(default)]
    pub allowed_signers: Option<PathBuf>,
    /// OIDC bearer JWTs: issuer, audience, JWKS file, claims.
    #[serde(default)]
    pub oidc: Option<stagegate_auth::oidc::OidcConfig>,
    /// Days after a pilot's end before the portfolio calls it purgatory (seed 004; 14).
    #[serde(default = "default_purgatory")]
    pub purgatory_days: u32,
    /// Seconds between full verifications of the whole log (600).
    #[serde(default = "default_full_verify")]
    pub full_verify_seconds: u64,
    /// The largest request body, in MiB (64): a review JSON, or an evidence record with its
    /// attachments.
    #[serde(default = "default_max_body")]
    pub max_body_mb: usize,
    /// Webhook retries and timing (`backoff_base_ms`, `backoff_cap_ms`, `max_attempts`,
    /// `lease_ms`, `tick_seconds`, `timeout_ms`).
    #[serde(default)]
    pub webhooks: crate::webhooks::WebhookConfig,
    /// The OFREP endpoints: evaluations per second per credential before 429 (100,000), and
    /// how often the flags are rebuilt at the latest when no change signal comes, in ms (1000).
    #[serde(default)]
    pub ofrep: OfrepConfig,
    /// Polled telemetry sources of rolling-out agents (OTLP spans pushed to `/v1/traces`
    /// need none). Set by whoever runs the server, never by the agent's builder: the source
    /// decides what the rollback triggers see.
    #[serde(default)]
    pub telemetry: Vec<crate::poll::SourceConfig>,
}

/// `ofrep:` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfrepConfig {
    /// Evaluations per second per credential (burst the same) before 429 with `Retry-After`.
    #[serde(default = "default_rate")]
    pub rate_per_second: u32,
    /// The flags' rebuild backstop, in ms.
    #[serde(default = "default_poll")]
    pub poll_ms: u64,
}

impl Default for OfrepConfig {
    fn default() -> OfrepConfig {
        OfrepConfig {
            rate_per_second: default_rate(),
            poll_ms: default_poll(),
        }
    }
}

fn default_rate() -> u32 {
    100_000
}

fn default_poll() -> u64 {
    1000
}

fn default_max_body() -> usize {
    64
}

fn default_purgatory() -> u32 {
    stagegate_portfolio::scorecard::DEFAULT_PURGATORY_DAYS
}

fn default_full_verify() -> u64 {
    600
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_registry() -> String {
    ".stagegate/registry.db".into()
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: default_listen(),
            registry: default_registry(),
            registry_key: None,
            log_format: LogFormat::Text,
            allowed_signers: None,
            oidc: None,
            purgatory_days: default_purgatory(),
            full_verify_seconds: default_full_verify(),
            max_body_mb: default_max_body(),
            webhooks: crate::webhooks::WebhookConfig::default(),
            ofrep: OfrepConfig::default(),
            telemetry: Vec::new(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    /// The file or variable at fault.
    pub source_name: String,
    /// What is wrong.
    pub message: String,
}

impl Config {
    /// Reads `file` (when given), then applies `STAGEGATE_LISTEN`, `STAGEGATE_REGISTRY`,
    /// `STAGEGATE_REGISTRY_KEY` and `STAGEGATE_LOG_FORMAT` as `env` returns them.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file (with the YAML line) or the variable.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut c = match file {
            None => Config::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                    source_name: p.display().to_string(),
                    message: format!("cannot read it: {e}"),
                })?;
                serde_saphyr::from_str(&text).map_err(|e| ConfigError {
                    source_name: p.display().to_string(),
                    message: e.to_string(),
                })?
            }
        };
        if let Some(v) = env("STAGEGATE_LISTEN") {
            c.listen = v.parse().map_err(|e| ConfigError {
                source_name: "STAGEGATE_LISTEN".into(),
                message: format!("{v:?} is not an address such as 127.0.0.1:8080 ({e})"),
            })?;
        }
        if let Some(v) = env("STAGEGATE_REGISTRY") {
            c.registry = v;
        }
        if let Some(v) = env("STAGEGATE_REGISTRY_KEY") {
            c.registry_key = Some(PathBuf::from(v));
        }
        if let Some(v) = env("STAGEGATE_ALLOWED_SIGNERS") {
            c.allowed_signers = Some(PathBuf::from(v));
        }
        if let Some(v) = env("STAGEGATE_LOG_FORMAT") {
            c.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError {
                        source_name: "STAGEGATE_LOG_FORMAT".into(),
                        message: format!("{v:?}: expected text or json"),
                    });
                }
            };
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("serve.yaml");
        std::fs::write(&f, "listen: 0.0.0.0:9000\nregistry: /srv/r.db\n").unwrap();
        let c = Config::load(Some(&f), |_| None).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.registry, "/srv/r.db");
        let c = Config::load(Some(&f), |k| {
            (k == "STAGEGATE_REGISTRY").then(|| "postgres://db/x".to_owned())
        })
        .unwrap();
        assert_eq!(c.registry, "postgres://db/x");
        assert_eq!(c.listen.port(), 9000);
        // Unknown keys and bad values name their source.
        std::fs::write(&f, "listen: 0.0.0.0:9000\nregistyr: x\n").unwrap();
        let e = Config::load(Some(&f), |_| None).unwrap_err();
        assert!(e.to_string().contains("serve.yaml"), "{e}");
        let e = Config::load(None, |k| {
            (k == "STAGEGATE_LISTEN").then(|| "nine".to_owned())
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("STAGEGATE_LISTEN"), "{e}");
    }

    #[test]
    fn telemetry_sources_as_documented() {
        // The module documentation's example, verbatim.
        let doc = include_str!("config.rs")
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .map(|l| l.strip_prefix("//! ").unwrap_or(""))
            .skip_while(|l| !l.starts_with("```yaml"))
            .skip(1)
            .take_while(|l| !l.starts_with("```"))
            .collect::<Vec<_>>()
            .join("\n");
        let c: Config = serde_saphyr::from_str(&doc).unwrap();
        assert_eq!(c.telemetry.len(), 2);
        let pg = c.telemetry[0].postgres.as_ref().unwrap();
        assert_eq!(
            (
                pg.table.as_str(),
                pg.time_column.as_str(),
                pg.settle_seconds
            ),
            ("telemetry.agent_events", "time", 5)
        );
        let prom = c.telemetry[1].prometheus.as_ref().unwrap();
        assert_eq!(prom.triggers.len(), 2);
        assert_eq!(
            prom.triggers["errors"].set.as_deref(),
            Some("sum by (variant) (agent_errors_total)")
        );
        assert_eq!(c.telemetry[1].every_seconds, 15);
    }
}
