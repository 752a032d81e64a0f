//! Checkpoints: small signed statements of the log's size and head, kept outside the registry
//! (Certificate Transparency's signed tree heads, for a hash chain), and what `verify` found.

use crate::RegistryError;
use crate::event::StoredEvent;
use crate::replay::tampered;
use serde::Serialize;
use stagegate_trust::CHECKPOINT_NAMESPACE;

/// What `verify` established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Events verified.
    pub events: i64,
    /// Head hash.
    pub head: String,
    /// `SHA256:…` of the registry key.
    pub key_fingerprint: String,
    /// Checkpoints the log is consistent with.
    pub checkpoints: usize,
    /// Events whose recording time came from `STAGEGATE_NOW`.
    pub clock_overrides: i64,
    /// Whether this is a replay registry (created under `STAGEGATE_NOW`; see
    /// [`State::replay_clock`]).
    pub replay_clock: bool,
}

/// A signed statement of the log's size and head (Certificate Transparency's signed tree head,
/// for a hash chain), to keep outside the registry. Its text form:
///
/// ```text
/// stagegate registry checkpoint v1
/// key: SHA256:…
/// size: 42
/// head: sha256:…
/// -----BEGIN SSH SIGNATURE-----
/// …
/// -----END SSH SIGNATURE-----
/// ```
///
/// The signature is the registry key's SSHSIG (namespace `stagegate-checkpoint`) over the
/// four lines before it, so `ssh-keygen -Y check-novalidate` can check it as well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    /// `SHA256:…` of the registry key.
    pub key_fingerprint: String,
    /// Events in the log.
    pub size: i64,
    /// Hash of event `size`.
    pub head: String,
    /// Armored SSHSIG over [`Checkpoint::body`].
    pub signature: String,
}

impl Checkpoint {
    /// The signed text.
    pub fn body(&self) -> String {
        format!(
            "stagegate registry checkpoint v1\nkey: {}\nsize: {}\nhead: {}\n",
            self.key_fingerprint, self.size, self.head
        )
    }

    /// Body and signature, as printed.
    pub fn to_text(&self) -> String {
        format!("{}{}\n", self.body(), self.signature.trim_end())
    }

    /// Reads the text form.
    ///
    /// # Errors
    /// A sentence naming the line that is wrong.
    pub fn parse(text: &str) -> Result<Checkpoint, String> {
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some("stagegate registry checkpoint v1") {
            return Err("line 1: expected `stagegate registry checkpoint v1`".into());
        }
        let mut field = |n: usize, name: &str| -> Result<String, String> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(&format!("{name}: ")))
                .map(|v| v.trim().to_owned())
                .ok_or_else(|| format!("line {n}: expected `{name}: …`"))
        };
        let key_fingerprint = field(2, "key")?;
        let size = field(3, "size")?
            .parse::<i64>()
            .map_err(|_| "line 3: size is not a number".to_owned())?;
        let head = field(4, "head")?;
        let signature: String = lines.collect::<Vec<_>>().join("\n").trim_end().to_owned();
        if !signature.contains("BEGIN SSH SIGNATURE") {
            return Err("line 5: expected the SSH signature".into());
        }
        Ok(Checkpoint {
            key_fingerprint,
            size,
            head,
            signature,
        })
    }
}

pub(crate) fn check_checkpoint(
    c: &Checkpoint,
    rows: &[StoredEvent],
    public_key: &str,
    key_fingerprint: &str,
) -> Result<(), RegistryError> {
    if c.key_fingerprint != key_fingerprint {
        return Err(tampered(
            1,
            format!(
                "the kept checkpoint was signed by registry key {}, but this registry was created with {} (the registry was replaced)",
                c.key_fingerprint, key_fingerprint
            ),
        ));
    }
    stagegate_trust::verify_with_key(
        public_key,
        CHECKPOINT_NAMESPACE,
        c.body().as_bytes(),
        &c.signature,
    )
    .map_err(|e| {
        tampered(
            c.size,
            format!("the kept checkpoint's signature does not verify: {e}"),
        )
    })?;
    let n = rows.len() as i64;
    if n < c.size {
        return Err(tampered(
            n + 1,
            format!(
                "the kept checkpoint records {} events but the registry holds {n}: the newest events were removed",
                c.size
            ),
        ));
    }
    if c.size >= 1 && rows[(c.size - 1) as usize].hash != c.head {
        return Err(tampered(
            c.size,
            "its hash differs from the kept checkpoint's head (history up to the checkpoint was rewritten)",
        ));
    }
    Ok(())
}
