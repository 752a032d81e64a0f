//! `stagegate token create | revoke | list`: API tokens for `stagegate serve`, written
//! straight into the registry (whoever can write the registry and holds its key administers
//! the server). The token is printed once; only its argon2id hash is stored; issuing and
//! revoking are events of the log.

use crate::RegistryArg;
use crate::exit::Failure;
use stagegate_auth::Role;
use stagegate_registry::{Act, Registry, TokenRow};

/// `stagegate token` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once.
    Create {
        /// The person it authenticates: their name or e-mail as the agent cards write it.
        #[arg(long)]
        person: String,
        /// Roles, comma-separated: admin, coe-lead, builder, sponsor, peer-approver, on-call,
        /// auditor, ci.
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// Limit it to these agents (comma-separated ids).
        #[arg(long, value_delimiter = ',')]
        agents: Vec<String>,
        /// Days until it expires (1–366).
        #[arg(long, default_value_t = 90)]
        expires_in_days: u16,
        /// Who creates it, recorded in the log. Default: $USER.
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        registry: RegistryArg,
    },
    /// Revoke a token by its id (the 16 hex digits after `sgt_`).
    Revoke {
        /// The token's id.
        id: String,
        /// Who revokes it. Default: $USER.
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        registry: RegistryArg,
    },
    /// List the tokens (never their secrets).
    List {
        #[command(flatten)]
        registry: RegistryArg,
    },
}

/// Runs a `stagegate token` subcommand.
///
/// # Errors
/// [`Failure::Invalid`] for an unknown role or expiry out of range; registry failures.
pub async fn run(cmd: TokenCommand) -> Result<u8, Failure> {
    match cmd {
        TokenCommand::Create {
            person,
            roles,
            agents,
            expires_in_days,
            by,
            registry,
        } => {
            if person.trim().is_empty() {
                return Err(Failure::Invalid("--person: empty".into()));
            }
            if !(1..=366).contains(&expires_in_days) {
                return Err(Failure::Invalid(format!(
                    "--expires-in-days {expires_in_days}: between 1 and 366"
                )));
            }
            let mut names = Vec::new();
            for r in &roles {
                let role = Role::parse(r).ok_or_else(|| {
                    Failure::Invalid(format!(
                        "--roles: {r:?} is not one of {}",
                        Role::ALL.map(|r| r.as_str()).join(", ")
                    ))
                })?;
                names.push(role.as_str().to_owned());
            }
            names.sort();
            names.dedup();
            let clock = crate::run::clock()?;
            let expires = clock
                .now
                .checked_add(jiff::SignedDuration::from_hours(
                    24 * i64::from(expires_in_days),
                ))
                .map_err(|e| Failure::Invalid(e.to_string()))?;
            let t =
                stagegate_auth::token::generate().map_err(|e| Failure::Internal(e.to_string()))?;
            let reg =
                Registry::open(&registry.registry, true, registry.registry_key.as_deref()).await?;
            let act = Act {
                as_of: Some(clock.now.to_zoned(jiff::tz::TimeZone::UTC).date()),
                clock,
                actor: crate::run::who(by),
            };
            let event = reg
                .issue_token(
                    &TokenRow {
                        id: t.id.clone(),
                        person: person.trim().to_owned(),
                        roles: names.clone(),
                        agents: agents.clone(),
                        hash: t.hash,
                        created_at: clock.now.to_string(),
                        expires_at: expires.to_string(),
                        revoked_at: None,
                    },
                    &act,
                )
                .await?;
            reg.close().await;
            eprintln!(
                "token {} for {} ({}{}) expires {expires}; recorded as event #{event}. It is shown once:",
                t.id,
                person.trim(),
                names.join(", "),
                if agents.is_empty() {
                    String::new()
                } else {
                    format!("; agents {}", agents.join(", "))
                },
            );
            outln!("{}", t.token);
            Ok(0)
        }
        TokenCommand::Revoke { id, by, registry } => {
            let reg =
                Registry::open(&registry.registry, false, registry.registry_key.as_deref()).await?;
            let event = reg.revoke_token(&id, &crate::run::act_now(by)?).await?;
            reg.close().await;
            outln!("token {id} revoked (event #{event})");
            Ok(0)
        }
        TokenCommand::List { registry } => {
            let reg =
                Registry::open(&registry.registry, false, registry.registry_key.as_deref()).await?;
            let db = |e| {
                Failure::from(stagegate_registry::RegistryError::Database {
                    path: registry.registry.shown(),
                    source: e,
                })
            };
            let mut table = comfy_table::Table::new();
            table.set_header([
                "id", "person", "roles", "agents", "created", "expires", "revoked",
            ]);
            for id in reg.store().tokens().await.map_err(db)? {
                if let Some(t) = reg.store().token(&id).await.map_err(db)? {
                    table.add_row([
                        t.id,
                        t.person,
                        t.roles.join(","),
                        t.agents.join(","),
                        t.created_at,
                        t.expires_at,
                        t.revoked_at.unwrap_or_default(),
                    ]);
                }
            }
            reg.close().await;
            outln!("{table}");
            Ok(0)
        }
    }
}
