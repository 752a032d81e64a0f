//! API tokens: `sgt_<id>_<secret>` where `id` is 16 hex digits (public, the database key and
//! the id in the event log) and `secret` 64 hex digits (256 random bits). Only the argon2id
//! hash of the secret is stored (OWASP's parameters, the `argon2` crate's default: m = 19 MiB,
//! t = 2, p = 1); the whole token is shown once, at creation.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// The prefix of every token (so secret scanners can find leaked ones).
pub const PREFIX: &str = "sgt_";

/// A new token, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// The public id.
    pub id: String,
    /// The whole token, to show once: `sgt_<id>_<secret>`.
    pub token: String,
    /// The argon2id PHC string of the secret, to store.
    pub hash: String,
}

/// Token failures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not of the form `sgt_<16 hex>_<64 hex>`.
    #[error("not a stagegate API token (expected sgt_<id>_<secret>)")]
    Malformed,
    /// No randomness from the operating system.
    #[error("no randomness: {0}")]
    Random(String),
    /// Hashing failed.
    #[error("cannot hash the token: {0}")]
    Hash(String),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes a new random token and its hash.
///
/// # Errors
/// [`TokenError::Random`], [`TokenError::Hash`].
pub fn generate() -> Result<NewToken, TokenError> {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    let mut salt = [0u8; 16];
    for buf in [&mut id[..], &mut secret[..], &mut salt[..]] {
        getrandom::fill(buf).map_err(|e| TokenError::Random(e.to_string()))?;
    }
    let (id, secret) = (hex(&id), hex(&secret));
    let hash = Argon2::default()
        .hash_password_with_salt(secret.as_bytes(), &salt)
        .map_err(|e| TokenError::Hash(e.to_string()))?
        .to_string();
    Ok(NewToken {
        token: format!("{PREFIX}{id}_{secret}"),
        id,
        hash,
    })
}

/// Splits a presented token into `(id, secret)`.
///
/// # Errors
/// [`TokenError::Malformed`].
pub fn parse(token: &str) -> Result<(&str, &str), TokenError> {
    let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
    let (id, secret) = rest.split_once('_').ok_or(TokenError::Malformed)?;
    let is_hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hex(id, 16) || !is_hex(secret, 64) {
        return Err(TokenError::Malformed);
    }
    Ok((id, secret))
}

/// Whether `secret` matches the stored argon2 `hash` (constant-time comparison inside
/// argon2). A hash that does not parse matches nothing.
pub fn matches(secret: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(secret.as_bytes(), hash)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_and_matches_only_its_own_hash() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.id, b.id);
        let (id, secret) = parse(&a.token).unwrap();
        assert_eq!(id, a.id);
        assert!(matches(secret, &a.hash));
        assert!(!matches(secret, &b.hash));
        let (_, other) = parse(&b.token).unwrap();
        assert!(!matches(other, &a.hash));
        assert!(!a.hash.contains(secret), "the secret is not stored");
        assert!(a.hash.starts_with("$argon2id$"));
        assert!(!matches(secret, "not a hash"));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for t in [
            "",
            "sgt_",
            "sgt_abc_def",
            "xyz_0123456789abcdef_0000000000000000000000000000000000000000000000000000000000000000",
            "sgt_0123456789abcdeg_0000000000000000000000000000000000000000000000000000000000000000",
            "sgt_0123456789abcdef_000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert_eq!(parse(t), Err(TokenError::Malformed), "{t}");
        }
    }
}
