//! OIDC bearer JWTs (RFC 7519) checked against the issuer's JWKS (RFC 7517): the key named by
//! the token's `kid` (or the only key), an algorithm fixed by that key (never the token's
//! choice alone: no `none`, no HMAC with a public key), the issuer, the audience, and `exp` /
//! `nbf` at an injected time (tests never read the clock). The person comes from a claim
//! (`email` by default), the roles from another (`roles`, a list or a space-separated string).

use crate::roles::{Caller, Role};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// The OIDC settings (`oidc:` in the server's configuration file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer (`iss`) tokens must carry, e.g. `https://login.acme.example`.
    pub issuer: String,
    /// The audience (`aud`) tokens must carry, e.g. `stagegate`.
    pub audience: String,
    /// The issuer's JWKS: a file path (`jwks_file`).
    #[serde(default)]
    pub jwks_file: Option<std::path::PathBuf>,
    /// The issuer's JWKS URL (`jwks_url`, fetched at start and when an unknown `kid` shows).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The claim naming the person (default `email`).
    #[serde(default = "default_person_claim")]
    pub person_claim: String,
    /// The claim listing the roles (default `roles`).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
}

fn default_person_claim() -> String {
    "email".into()
}

fn default_roles_claim() -> String {
    "roles".into()
}

/// Why a JWT is refused (answered 401 with the sentence; the token is never echoed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The JWKS does not parse or holds no usable key.
    #[error("the JWKS {0}")]
    Jwks(String),
    /// The token is refused.
    #[error("bearer JWT refused: {0}")]
    Refused(String),
}

/// Checks JWTs against one issuer's keys.
#[derive(Debug, Clone)]
pub struct Verifier {
    config: OidcConfig,
    keys: Vec<(Option<String>, Algorithm, DecodingKey)>,
}

fn algorithm_of(jwk: &Jwk) -> Result<Algorithm, String> {
    if let Some(a) = jwk.common.key_algorithm {
        return Algorithm::try_from(a)
            .map_err(|_| format!("key algorithm {a} is not a signature algorithm"));
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Ok(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Ok(Algorithm::ES256),
            EllipticCurve::P384 => Ok(Algorithm::ES384),
            _ => Err("an elliptic curve other than P-256 or P-384".into()),
        },
        AlgorithmParameters::OctetKeyPair(_) => Ok(Algorithm::EdDSA),
        AlgorithmParameters::OctetKey(_) => {
            Err("a symmetric key (an issuer publishes public keys only)".into())
        }
        _ => Err("an unsupported key type".into()),
    }
}

impl Verifier {
    /// Reads a JWKS document (`{"keys": [...]}`).
    ///
    /// # Errors
    /// [`OidcError::Jwks`] when it does not parse, holds a symmetric key, or no key.
    pub fn from_jwks(jwks: &str, config: OidcConfig) -> Result<Verifier, OidcError> {
        let set: JwkSet = serde_json::from_str(jwks)
            .map_err(|e| OidcError::Jwks(format!("does not parse: {e}")))?;
        let mut keys = Vec::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            let alg =
                algorithm_of(jwk).map_err(|why| OidcError::Jwks(format!("key {i}: {why}")))?;
            let key =
                DecodingKey::from_jwk(jwk).map_err(|e| OidcError::Jwks(format!("key {i}: {e}")))?;
            keys.push((jwk.common.key_id.clone(), alg, key));
        }
        if keys.is_empty() {
            return Err(OidcError::Jwks("holds no key".into()));
        }
        Ok(Verifier { config, keys })
    }

    /// The settings.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Verifies `jwt` at `now` and returns the caller it names.
    ///
    /// # Errors
    /// [`OidcError::Refused`]: unknown key, wrong algorithm, bad signature, issuer, audience,
    /// expired or not yet valid, no person claim, or an unknown role.
    pub fn verify(&self, jwt: &str, now: jiff::Timestamp) -> Result<Caller, OidcError> {
        let refuse = |s: String| OidcError::Refused(s);
        let header =
            jsonwebtoken::decode_header(jwt).map_err(|e| refuse(format!("not a JWT: {e}")))?;
        let (_, alg, key) = match header.kid.as_deref() {
            Some(kid) => self
                .keys
                .iter()
                .find(|(k, _, _)| k.as_deref() == Some(kid))
                .ok_or_else(|| refuse(format!("no key {kid:?} in the issuer's JWKS")))?,
            None if self.keys.len() == 1 => &self.keys[0],
            None => return Err(refuse("no kid, and the JWKS holds several keys".into())),
        };
        if header.alg != *alg {
            return Err(refuse(format!(
                "signed with {:?}, but its key is for {alg:?}",
                header.alg
            )));
        }
        let mut v = Validation::new(*alg);
        v.set_issuer(&[&self.config.issuer]);
        v.set_audience(&[&self.config.audience]);
        // Time is checked below, at the injected `now`.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<Value>(jwt, key, &v).map_err(|e| refuse(format!("{e}")))?;
        let claims = data.claims;
        let now_s = now.as_second();
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| refuse("exp is not a number".into()))?;
        if now_s >= exp {
            return Err(refuse("expired".into()));
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64)
            && now_s < nbf
        {
            return Err(refuse("not valid yet (nbf)".into()));
        }
        let person = claims
            .get(&self.config.person_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                refuse(format!(
                    "no {} claim naming the person",
                    self.config.person_claim
                ))
            })?
            .to_owned();
        let names: Vec<String> = match claims.get(&self.config.roles_claim) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        let mut roles = BTreeSet::new();
        for n in names {
            roles.insert(Role::parse(&n).ok_or_else(|| refuse(format!("unknown role {n:?}")))?);
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Ok(Caller {
            person,
            roles,
            agents: Vec::new(),
            credential: format!("oidc {sub}"),
        })
    }
}
