//! Trust primitives: who may sign what, and whether a signature holds.
//!
//! - [`AllowedSigners`] reads an OpenSSH allowed-signers file (`ssh-keygen(1)`, section
//!   ALLOWED SIGNERS): each line maps principals (people, by the name the agent card gives
//!   them or their e-mail) to a public key, with optional `namespaces="…"`,
//!   `valid-after=…` and `valid-before=…` options. `cert-authority` lines are refused: a
//!   sign-off is a person's own key, not a certificate.
//! - [`AllowedSigners::verify`] checks an SSHSIG signature (`ssh-keygen -Y sign`, the format
//!   git uses for SSH-signed commits; PROTOCOL.sshsig) over a message for one of a person's
//!   principals — the equivalent of `ssh-keygen -Y verify -f allowed_signers -I principal
//!   -n namespace -s sig`.
//! - [`RegistryKey`] is the registry's own Ed25519 key: it signs every event of the log and the
//!   checkpoints `stagegate checkpoint` prints ([`verify_with_key`] checks them).
//!
//! The crate does no IO: files are read by the caller, randomness for a new key is passed in.
//! Key parsing and signature verification are RustCrypto's `ssh-key`; this crate only adds
//! the allowed-signers line format around it (no maintained crate reads that format).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use jiff::Timestamp;
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

/// The SSHSIG namespace of accountable acts (sign-offs, approvals, risk acceptances).
/// `ssh-keygen -Y sign -n stagegate`.
pub const ACT_NAMESPACE: &str = "stagegate";
/// The SSHSIG namespace of registry events, signed by the registry key.
pub const EVENT_NAMESPACE: &str = "stagegate-registry";
/// The SSHSIG namespace of checkpoints, signed by the registry key.
pub const CHECKPOINT_NAMESPACE: &str = "stagegate-checkpoint";

/// An allowed-signers line that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Why a signature does not count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not an armored SSHSIG (`-----BEGIN SSH SIGNATURE-----`), or a public key that does not
    /// parse; the message says which.
    #[error("{0}")]
    Malformed(String),
    /// Signed for another purpose (`-n` of `ssh-keygen -Y sign`).
    #[error("signed in namespace {found:?}, not {expected:?}")]
    WrongNamespace {
        /// The signature's namespace.
        found: String,
        /// The namespace required.
        expected: String,
    },
    /// The signing key is in no line of the allowed-signers file.
    #[error("key {fingerprint} is not in the allowed-signers file")]
    UnknownKey {
        /// `SHA256:…` of the signing key.
        fingerprint: String,
    },
    /// The key belongs to other principals.
    #[error("key {fingerprint} belongs to {owners}, not to {wanted}")]
    NotThisPerson {
        /// `SHA256:…` of the signing key.
        fingerprint: String,
        /// The principals the allowed-signers file gives the key.
        owners: String,
        /// The principals that were required.
        wanted: String,
    },
    /// The allowed-signers line restricts the key to other namespaces or another period.
    #[error("key {fingerprint} may not sign here: {why}")]
    Restricted {
        /// `SHA256:…` of the signing key.
        fingerprint: String,
        /// Which option forbids it.
        why: String,
    },
    /// The cryptographic check failed: the message is not what was signed.
    #[error(
        "the signature by key {fingerprint} does not match the statement (it was made over something else)"
    )]
    Invalid {
        /// `SHA256:…` of the signing key.
        fingerprint: String,
    },
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The principal it verified for.
    pub principal: String,
    /// `SHA256:…` fingerprint of the signing key (as `ssh-keygen -l` prints it).
    pub fingerprint: String,
}

#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    principals: Vec<String>,
    namespaces: Option<Vec<String>>,
    valid_after: Option<Timestamp>,
    valid_before: Option<Timestamp>,
    key: PublicKey,
}

/// A parsed allowed-signers file.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    entries: Vec<Entry>,
}

impl AllowedSigners {
    /// Parses the text of an allowed-signers file. Blank lines and `#` comments are skipped.
    /// Principals are matched exactly (no wildcard patterns); options other than
    /// `namespaces`, `valid-after` and `valid-before` are refused, as is `cert-authority`.
    /// Times are `YYYYMMDD[HHMM[SS]]` with an optional `Z`, read as UTC.
    ///
    /// # Errors
    /// [`ParseError`] naming the first line that cannot be read.
    pub fn parse(text: &str) -> Result<AllowedSigners, ParseError> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let err = |message: String| ParseError { line, message };
            let (principals, rest) = split_principals(l).map_err(err)?;
            if principals.iter().any(|p| p.contains(['*', '?', '!'])) {
                return Err(err(
                    "principal patterns (*, ?, !) are not accepted: name each person".into(),
                ));
            }
            let (opts, key) = split_options(rest.trim_start());
            let opts = ssh_key::authorized_keys::ConfigOpts::new(opts)
                .map_err(|e| err(format!("options {opts:?}: {e}")))?;
            // The key is `type base64` (a comment may follow and is ignored).
            let mut parts = key.split_whitespace();
            let key = match (parts.next(), parts.next()) {
                (Some(t), Some(b)) => PublicKey::from_openssh(&format!("{t} {b}"))
                    .map_err(|e| err(format!("public key: {e}")))?,
                _ => {
                    return Err(err(
                        "expected `principals [options] key-type base64-key`".into()
                    ));
                }
            };
            let mut namespaces = None;
            let mut valid_after = None;
            let mut valid_before = None;
            for opt in opts.iter() {
                let (name, value) = match opt.split_once('=') {
                    Some((n, v)) => (n.to_ascii_lowercase(), Some(v.trim_matches('"'))),
                    None => (opt.to_ascii_lowercase(), None),
                };
                match (name.as_str(), value) {
                    ("namespaces", Some(v)) => {
                        namespaces = Some(v.split(',').map(|s| s.trim().to_owned()).collect());
                    }
                    ("valid-after", Some(v)) => valid_after = Some(ssh_time(v).map_err(err)?),
                    ("valid-before", Some(v)) => valid_before = Some(ssh_time(v).map_err(err)?),
                    ("cert-authority", _) => {
                        return Err(err(
                            "cert-authority lines are not accepted: list each person's own key"
                                .into(),
                        ));
                    }
                    _ => return Err(err(format!("unknown option {opt:?}"))),
                }
            }
            entries.push(Entry {
                line,
                principals,
                namespaces,
                valid_after,
                valid_before,
                key,
            });
        }
        Ok(AllowedSigners { entries })
    }

    /// Number of key lines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file lists no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Verifies `armored` (an SSHSIG) over `message` in `namespace` as a signature by one of
    /// `principals`, at instant `at` (checked against `valid-after`/`valid-before`).
    ///
    /// # Errors
    /// [`SignatureError`]: malformed, wrong namespace, unknown key, a key of someone else, a
    /// key restricted away from this use, or a signature over another message.
    pub fn verify(
        &self,
        principals: &[&str],
        namespace: &str,
        message: &[u8],
        armored: &str,
        at: Timestamp,
    ) -> Result<Verified, SignatureError> {
        let sig = parse_sig(armored)?;
        if sig.namespace() != namespace {
            return Err(SignatureError::WrongNamespace {
                found: sig.namespace().to_owned(),
                expected: namespace.to_owned(),
            });
        }
        let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
        let mine: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.key.key_data() == sig.public_key())
            .collect();
        if mine.is_empty() {
            return Err(SignatureError::UnknownKey { fingerprint });
        }
        let theirs: Vec<(&Entry, &str)> = mine
            .iter()
            .flat_map(|e| {
                e.principals
                    .iter()
                    .filter(|p| principals.contains(&p.as_str()))
                    .map(move |p| (*e, p.as_str()))
            })
            .collect();
        let Some(&(_, _)) = theirs.first() else {
            let mut owners: Vec<&str> = mine
                .iter()
                .flat_map(|e| e.principals.iter().map(String::as_str))
                .collect();
            owners.sort_unstable();
            owners.dedup();
            return Err(SignatureError::NotThisPerson {
                fingerprint,
                owners: owners.join(", "),
                wanted: principals.join(" or "),
            });
        };
        // A key listed for anyone else too cannot stand for this person alone.
        // (Principals on one line are one person's aliases; another line is another person.)
        let mut others: Vec<&str> = mine
            .iter()
            .filter(|e| {
                !e.principals
                    .iter()
                    .any(|p| principals.contains(&p.as_str()))
            })
            .flat_map(|e| e.principals.iter().map(String::as_str))
            .collect();
        others.sort_unstable();
        others.dedup();
        if !others.is_empty() {
            return Err(SignatureError::Restricted {
                fingerprint,
                why: format!(
                    "the allowed-signers file also lists it for {}; one key stands for one person",
                    others.join(", ")
                ),
            });
        }
        let mut why = String::new();
        for (e, principal) in theirs {
            if let Some(ns) = &e.namespaces
                && !ns.iter().any(|n| n == namespace)
            {
                why = format!("line {} allows namespaces {} only", e.line, ns.join(","));
                continue;
            }
            if e.valid_after.is_some_and(|t| at < t) || e.valid_before.is_some_and(|t| at > t) {
                why = format!("line {} does not cover {at}", e.line);
                continue;
            }
            let key = PublicKey::from(sig.public_key().clone());
            return match key.verify(namespace, message, &sig) {
                Ok(()) => Ok(Verified {
                    principal: principal.to_owned(),
                    fingerprint,
                }),
                Err(_) => Err(SignatureError::Invalid { fingerprint }),
            };
        }
        Err(SignatureError::Restricted { fingerprint, why })
    }
}

/// The signing key's `SHA256:…` fingerprint, without verifying anything.
///
/// # Errors
/// [`SignatureError::Malformed`].
pub fn signer_fingerprint(armored: &str) -> Result<String, SignatureError> {
    Ok(parse_sig(armored)?
        .public_key()
        .fingerprint(HashAlg::Sha256)
        .to_string())
}

fn parse_sig(armored: &str) -> Result<SshSig, SignatureError> {
    let armored = armored.trim();
    if !armored.starts_with("-----BEGIN SSH SIGNATURE-----")
        || !armored.ends_with("-----END SSH SIGNATURE-----")
    {
        return Err(SignatureError::Malformed(
            "not an SSH signature (expected the armored output of `ssh-keygen -Y sign`, from -----BEGIN SSH SIGNATURE----- to -----END SSH SIGNATURE-----)".into(),
        ));
    }
    SshSig::from_pem(armored.as_bytes())
        .map_err(|e| SignatureError::Malformed(format!("a damaged SSH signature ({e})")))
}

/// Splits the leading principals field (quoted, or up to the first space) off a line.
fn split_principals(l: &str) -> Result<(Vec<String>, &str), String> {
    let (field, rest) = if let Some(q) = l.strip_prefix('"') {
        let end = q
            .find('"')
            .ok_or_else(|| "unterminated quoted principals".to_owned())?;
        let rest = &q[end + 1..];
        if !rest.starts_with([' ', '\t']) {
            return Err("expected a space after the quoted principals".into());
        }
        (&q[..end], rest)
    } else {
        match l.find([' ', '\t']) {
            Some(i) => (&l[..i], &l[i..]),
            None => return Err("a principals field and a key are needed".into()),
        }
    };
    let principals: Vec<String> = field
        .split(',')
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    if principals.is_empty() {
        return Err("no principal before the key".into());
    }
    Ok((principals, rest))
}

/// Splits an options field (comma-separated, quotes may hold spaces) off the key, which
/// starts with its type (`ssh-…`, `ecdsa-…`, `sk-…`).
fn split_options(l: &str) -> (&str, &str) {
    let is_key_type =
        |t: &str| t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-");
    if is_key_type(l) {
        return ("", l);
    }
    let mut quoted = false;
    for (i, c) in l.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return (&l[..i], l[i..].trim_start()),
            _ => {}
        }
    }
    (l, "")
}

/// `YYYYMMDD[HHMM[SS]][Z]` as ssh-keygen(1) writes validity times, read as UTC.
fn ssh_time(v: &str) -> Result<Timestamp, String> {
    let s = v.strip_suffix(['Z', 'z']).unwrap_or(v);
    let bad = || format!("time {v:?}: expected YYYYMMDD[HHMM[SS]][Z]");
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = |a: usize, b: usize| s[a..b].parse::<i16>().map_err(|_| bad());
    let (h, m, sec) = match s.len() {
        8 => (0, 0, 0),
        12 => (n(8, 10)?, n(10, 12)?, 0),
        14 => (n(8, 10)?, n(10, 12)?, n(12, 14)?),
        _ => return Err(bad()),
    };
    let dt = jiff::civil::DateTime::new(
        n(0, 4)?,
        n(4, 6)? as i8,
        n(6, 8)? as i8,
        h as i8,
        m as i8,
        sec as i8,
        0,
    )
    .map_err(|_| bad())?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|_| bad())
}

/// The registry's Ed25519 key: signs each event hash and each checkpoint (SSHSIG, so
/// `ssh-keygen -Y check-novalidate` can check them too). Stored as an OpenSSH private key.
#[derive(Clone)]
pub struct RegistryKey(PrivateKey);

impl std::fmt::Debug for RegistryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryKey({})", self.fingerprint())
    }
}

/// A registry key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("registry key: {0}")]
pub struct KeyError(String);

impl RegistryKey {
    /// A new key from 32 random bytes (the caller draws them from the OS).
    pub fn from_seed(seed: &[u8; 32]) -> RegistryKey {
        let pair = ssh_key::private::Ed25519Keypair::from_seed(seed);
        let mut key = PrivateKey::from(pair);
        key.set_comment("stagegate registry key");
        RegistryKey(key)
    }

    /// Reads an unencrypted OpenSSH Ed25519 private key.
    ///
    /// # Errors
    /// [`KeyError`] when the text is not one.
    pub fn from_openssh(text: &str) -> Result<RegistryKey, KeyError> {
        let k = PrivateKey::from_openssh(text.as_bytes()).map_err(|e| KeyError(e.to_string()))?;
        if k.is_encrypted() || k.algorithm() != ssh_key::Algorithm::Ed25519 {
            return Err(KeyError("expected an unencrypted Ed25519 key".into()));
        }
        Ok(RegistryKey(k))
    }

    /// The private key in OpenSSH format (write it with mode 0600).
    ///
    /// # Errors
    /// [`KeyError`] when encoding fails.
    pub fn to_openssh(&self) -> Result<String, KeyError> {
        self.0
            .to_openssh(LineEnding::LF)
            .map(|z| z.to_string())
            .map_err(|e| KeyError(e.to_string()))
    }

    /// The public key, one OpenSSH line (`ssh-ed25519 AAAA… comment`).
    pub fn public_openssh(&self) -> String {
        self.0.public_key().to_openssh().unwrap_or_default()
    }

    /// `SHA256:…` fingerprint of the public key.
    pub fn fingerprint(&self) -> String {
        self.0.fingerprint(HashAlg::Sha256).to_string()
    }

    /// Signs `msg` in `namespace`; returns the armored SSHSIG.
    ///
    /// # Errors
    /// [`KeyError`] when signing fails.
    pub fn sign(&self, namespace: &str, msg: &[u8]) -> Result<String, KeyError> {
        self.0
            .sign(namespace, HashAlg::Sha512, msg)
            .and_then(|s| s.to_pem(LineEnding::LF))
            .map_err(|e| KeyError(e.to_string()))
    }
}

/// `SHA256:…` fingerprint of an OpenSSH public key line.
///
/// # Errors
/// [`SignatureError::Malformed`] when the line is not a public key.
pub fn public_fingerprint(public_openssh: &str) -> Result<String, SignatureError> {
    PublicKey::from_openssh(public_openssh.trim())
        .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
        .map_err(|e| SignatureError::Malformed(format!("not an OpenSSH public key ({e})")))
}

/// Verifies an SSHSIG over `msg` in `namespace` by exactly the key `public_openssh`.
///
/// # Errors
/// [`SignatureError`] when malformed, in another namespace, by another key, or over another
/// message.
pub fn verify_with_key(
    public_openssh: &str,
    namespace: &str,
    msg: &[u8],
    armored: &str,
) -> Result<(), SignatureError> {
    let key = PublicKey::from_openssh(public_openssh.trim())
        .map_err(|e| SignatureError::Malformed(format!("not an OpenSSH public key ({e})")))?;
    let sig = parse_sig(armored)?;
    let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
    if sig.namespace() != namespace {
        return Err(SignatureError::WrongNamespace {
            found: sig.namespace().to_owned(),
            expected: namespace.to_owned(),
        });
    }
    if sig.public_key() != key.key_data() {
        return Err(SignatureError::NotThisPerson {
            fingerprint,
            owners: "another key".into(),
            wanted: key.fingerprint(HashAlg::Sha256).to_string(),
        });
    }
    key.verify(namespace, msg, &sig)
        .map_err(|_| SignatureError::Invalid { fingerprint })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_key_round_trips_and_signs() {
        let k = RegistryKey::from_seed(&[7; 32]);
        let text = k.to_openssh().unwrap();
        let k2 = RegistryKey::from_openssh(&text).unwrap();
        assert_eq!(k.fingerprint(), k2.fingerprint());
        let sig = k.sign(EVENT_NAMESPACE, b"head").unwrap();
        verify_with_key(&k.public_openssh(), EVENT_NAMESPACE, b"head", &sig).unwrap();
        assert!(matches!(
            verify_with_key(&k.public_openssh(), EVENT_NAMESPACE, b"other", &sig),
            Err(SignatureError::Invalid { .. })
        ));
        assert!(matches!(
            verify_with_key(&k.public_openssh(), CHECKPOINT_NAMESPACE, b"head", &sig),
            Err(SignatureError::WrongNamespace { .. })
        ));
        let other = RegistryKey::from_seed(&[8; 32]);
        assert!(matches!(
            verify_with_key(&other.public_openssh(), EVENT_NAMESPACE, b"head", &sig),
            Err(SignatureError::NotThisPerson { .. })
        ));
    }

    #[test]
    fn allowed_signers_lines() {
        let k = RegistryKey::from_seed(&[1; 32]);
        let pk = k.public_openssh();
        let p = RegistryKey::from_seed(&[2; 32]);
        let ppk = p.public_openssh();
        let text = format!(
            "# people\n\n\"Daniel Ortiz,daniel@example.com\" namespaces=\"stagegate\" {pk}\npriya@example.com valid-after=20260101,valid-before=20261231Z {ppk}\n"
        );
        let a = AllowedSigners::parse(&text).unwrap();
        assert_eq!(a.len(), 2);
        let t: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let sig = k.sign(ACT_NAMESPACE, b"m").unwrap();
        let v = a
            .verify(&["Daniel Ortiz"], ACT_NAMESPACE, b"m", &sig, t)
            .unwrap();
        assert_eq!(v.principal, "Daniel Ortiz");
        assert_eq!(v.fingerprint, k.fingerprint());
        assert!(matches!(
            a.verify(&["Someone Else"], ACT_NAMESPACE, b"m", &sig, t),
            Err(SignatureError::NotThisPerson { .. })
        ));
        let late: Timestamp = "2027-06-01T00:00:00Z".parse().unwrap();
        let psig = p.sign(ACT_NAMESPACE, b"m").unwrap();
        a.verify(&["priya@example.com"], ACT_NAMESPACE, b"m", &psig, t)
            .unwrap();
        assert!(matches!(
            a.verify(&["priya@example.com"], ACT_NAMESPACE, b"m", &psig, late),
            Err(SignatureError::Restricted { .. })
        ));
        // One key for two people is refused for either.
        let shared = AllowedSigners::parse(&format!("a {pk}\nb {pk}\n")).unwrap();
        assert!(matches!(
            shared.verify(&["a"], ACT_NAMESPACE, b"m", &sig, t),
            Err(SignatureError::Restricted { .. })
        ));
        for bad in [
            format!("* {pk}"),
            format!("p cert-authority {pk}"),
            format!("p frobnicate=\"x\" {pk}"),
            format!("p valid-after=2026 {pk}"),
            "\"unterminated ssh-ed25519 AAAA".to_owned(),
            "onlyprincipal".to_owned(),
            "p ssh-ed25519 notbase64".to_owned(),
        ] {
            let e = AllowedSigners::parse(&format!("\n{bad}\n")).unwrap_err();
            assert_eq!(e.line, 2, "{bad}: {e}");
        }
    }
}
