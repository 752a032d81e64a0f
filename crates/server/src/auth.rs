//! Authentication: the `Authorization: Bearer …` header of a request becomes a verified
//! [`Caller`], or the request is answered 401 before its handler runs.
//!
//! - `sgt_<id>_<secret>` is an API token: its row is read on every request (so a revocation
//!   or expiry takes effect at once, on every replica), and the secret checked against the
//!   row's argon2id hash. A check that succeeded is remembered per process, keyed by the
//!   sha256 of the secret and the stored hash, so argon2 runs once per token and process.
//! - Anything else is an OIDC JWT, checked against the configured issuer's JWKS
//!   ([`stagegate_auth::oidc`]); without OIDC configured, it is refused.

use crate::AppState;
use crate::problem::Problem;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use stagegate_auth::{Caller, Role, token};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// What authentication needs: the OIDC verifier, when configured, and the per-process memory
/// of checked token secrets.
#[derive(Debug, Default)]
pub struct Authenticator {
    /// OIDC, when configured.
    pub oidc: Option<stagegate_auth::oidc::Verifier>,
    checked: Mutex<HashMap<String, String>>,
    /// OFREP clients checked once, by the credential they present (at most 10,000; read
    /// without a lock).
    flag_clients: crate::snapshot_map::SnapshotMap<FlagClient>,
}

impl Authenticator {
    /// With this OIDC verifier (or none).
    pub fn new(oidc: Option<stagegate_auth::oidc::Verifier>) -> Authenticator {
        Authenticator {
            oidc,
            checked: Mutex::new(HashMap::new()),
            flag_clients: crate::snapshot_map::SnapshotMap::new(10_000),
        }
    }
}

/// 401 with `WWW-Authenticate: Bearer` (RFC 6750); the detail never echoes the credential.
pub fn unauthorized(why: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authentication required",
    )
    .detail(why)
}

/// 403 for an authenticated caller the rules do not allow.
pub fn forbidden(why: impl Into<String>) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed").detail(why)
}

async fn from_token(app: &AppState, presented: &str) -> Result<Caller, Problem> {
    let (id, secret) = token::parse(presented).map_err(|e| unauthorized(e.to_string()))?;
    let row = app
        .registry
        .store()
        .token(id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "token lookup failed");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "registry-unavailable",
                "The registry is unavailable",
            )
        })?
        .ok_or_else(|| unauthorized("unknown token"))?;
    if row.revoked_at.is_some() {
        return Err(unauthorized(format!("token {id} was revoked")));
    }
    let expires: jiff::Timestamp = row
        .expires_at
        .parse()
        .map_err(|_| unauthorized(format!("token {id} has no valid expiry")))?;
    if (app.clock)() >= expires {
        return Err(unauthorized(format!("token {id} expired at {expires}")));
    }
    let key = stagegate_core::digest::sha256_hex(secret.as_bytes());
    let known = app
        .auth
        .checked
        .lock()
        .map(|m| m.get(&key) == Some(&row.hash))
        .unwrap_or(false);
    if !known {
        let (secret, hash) = (secret.to_owned(), row.hash.clone());
        let ok = tokio::task::spawn_blocking(move || token::matches(&secret, &hash))
            .await
            .unwrap_or(false);
        if !ok {
            return Err(unauthorized("the token does not match"));
        }
        if let Ok(mut m) = app.auth.checked.lock() {
            m.insert(key, row.hash.clone());
        }
    }
    let mut roles = BTreeSet::new();
    for r in &row.roles {
        roles.insert(
            Role::parse(r)
                .ok_or_else(|| unauthorized(format!("token {id} has an unknown role")))?,
        );
    }
    Ok(Caller {
        person: row.person,
        roles,
        agents: row.agents,
        credential: format!("token {id}"),
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Caller, Problem> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("no Authorization header (Bearer token or OIDC JWT)"))?
            .to_str()
            .map_err(|_| unauthorized("the Authorization header is not text"))?;
        let presented = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthorized("the Authorization header is not `Bearer …`"))?;
        if presented.starts_with(token::PREFIX) {
            return from_token(app, presented).await;
        }
        let Some(oidc) = &app.auth.oidc else {
            return Err(unauthorized(
                "not a stagegate API token, and this server accepts no OIDC tokens (no `oidc:` in its configuration)",
            ));
        };
        oidc.verify(presented, (app.clock)())
            .map_err(|e| unauthorized(e.to_string()))
    }
}

/// An OFREP client, checked once: who it is, its token id (for revocation), until when its
/// credential holds, and the flag it was last noted evaluating (for drills).
#[derive(Debug)]
pub struct FlagClient {
    /// The caller.
    pub caller: Caller,
    /// The API token's id; `None` for an OIDC JWT.
    token_id: Option<String>,
    /// The credential's expiry (a JWT is checked again after a minute at the latest).
    until: jiff::Timestamp,
    /// Which flag this client was last noted evaluating, and when ([`crate::drill::Seen`]).
    pub seen: crate::drill::Seen,
}

impl FlagClient {
    /// Whether the credential, presented as `presented`, still holds at `now`: its token not
    /// revoked in the flags' view of the log (a revocation arrives as fast as a kill), and not
    /// expired (an expired one is forgotten, so that a renewed JWT is checked afresh).
    ///
    /// # Errors
    /// Why not, in words (answered 401).
    pub fn holds(
        &self,
        app: &AppState,
        presented: &str,
        view: &crate::flags::FlagsView,
        now: jiff::Timestamp,
    ) -> Result<(), String> {
        if let Some(id) = &self.token_id
            && view.revoked.contains(id)
        {
            return Err(format!("token {id} was revoked"));
        }
        if now >= self.until {
            forget_flag_client(app, presented);
            return Err(format!("the credential expired at {}", self.until));
        }
        Ok(())
    }
}

/// `f` of the OFREP client already checked for the `presented` credential, if any (read
/// without a lock); else check it with [`flag_client`].
pub fn with_known_client<R>(
    app: &AppState,
    presented: &str,
    f: impl FnOnce(&FlagClient) -> R,
) -> Option<R> {
    app.auth.flag_clients.with(presented, |c| f(c))
}

/// Forgets a remembered OFREP credential (it expired): the next request checks it again.
fn forget_flag_client(app: &AppState, presented: &str) {
    app.auth.flag_clients.remove(presented);
}

/// Authenticates an OFREP client without reading the database per request: the presented
/// credential is checked once (an API token's row and argon2 hash, or an OIDC JWT) and
/// remembered ([`with_known_client`]); afterwards each request only looks it up and asks
/// [`FlagClient::holds`]. Any role may evaluate flags.
///
/// # Errors
/// Why the credential does not count, in words (answered 401).
pub async fn flag_client(app: &AppState, presented: &str) -> Result<Arc<FlagClient>, String> {
    let now = (app.clock)();
    let known = app.auth.flag_clients.with(presented, Arc::clone);
    let client = match known {
        Some(c) => c,
        None => {
            let client = if presented.starts_with(token::PREFIX) {
                let (id, _) = token::parse(presented).map_err(|e| e.to_string())?;
                let caller = from_token(app, presented)
                    .await
                    .map_err(|p| p.detail.unwrap_or_default())?;
                let until = app
                    .registry
                    .store()
                    .token(id)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|r| r.expires_at.parse().ok())
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                FlagClient {
                    caller,
                    token_id: Some(id.to_owned()),
                    until,
                    seen: Default::default(),
                }
            } else {
                let Some(oidc) = &app.auth.oidc else {
                    return Err(
                        "not a stagegate API token, and this server accepts no OIDC tokens".into(),
                    );
                };
                let caller = oidc.verify(presented, now).map_err(|e| e.to_string())?;
                FlagClient {
                    caller,
                    token_id: None,
                    until: now + jiff::SignedDuration::from_secs(60),
                    seen: Default::default(),
                }
            };
            let client = Arc::new(client);
            app.auth.flag_clients.insert(presented, client.clone());
            client
        }
    };
    client.holds(app, presented, &app.flags.current(), now)?;
    Ok(client)
}
