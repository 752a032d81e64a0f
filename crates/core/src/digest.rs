//! Digests: sha256 of input files, of the success criteria, and of a whole review.
//!
//! All digests are written `sha256:<64 lower-case hex>`. The review digest covers every input
//! (card, gate template, evidence except sign-offs, attachments, runbook, telemetry) by role,
//! path and content digest, sorted, so the same inputs give the same digest on any machine.
//! Sign-off records are left out because they sign this digest.

use crate::card::Criterion;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Lower-case hex sha256 of `bytes` (64 characters, no prefix).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let out = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in out.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_tagged(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// A hasher for streamed content (telemetry files too large to hold).
#[derive(Default)]
pub struct StreamDigest(Sha256);

impl StreamDigest {
    /// A new, empty hasher.
    pub fn new() -> Self {
        Self(Sha256::new())
    }
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    /// `sha256:<hex>` of everything fed.
    pub fn finish(self) -> String {
        let out = self.0.finalize();
        let mut s = String::from("sha256:");
        for b in out.iter() {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

/// What part an input file plays in a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputRole {
    /// The agent card.
    Card,
    /// The gate template (built-in or a `gates.yaml`).
    Template,
    /// An evidence record.
    Evidence,
    /// A file an evidence record attaches.
    Attachment,
    /// The runbook.
    Runbook,
    /// A telemetry file.
    Telemetry,
}

/// One input of a review.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct InputDigest {
    /// Its role.
    pub role: InputRole,
    /// Path as the card or record names it, relative to the agent folder (`builtin:…` for the
    /// built-in template).
    pub path: String,
    /// `sha256:<hex>` of its bytes.
    pub sha256: String,
}

/// The review digest: sha256 over the sorted `role\tpath\tsha256\n` lines of `inputs`.
pub fn review_digest(inputs: &[InputDigest]) -> String {
    let mut sorted: Vec<&InputDigest> = inputs.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut h = StreamDigest::new();
    for i in sorted {
        let role = serde_json::to_value(i.role)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        h.update(format!("{role}\t{}\t{}\n", i.path, i.sha256).as_bytes());
    }
    h.finish()
}

/// The digest of a set of success criteria: sha256 of their canonical JSON, in card order.
/// `stagegate pilot start` locks it; a review compares against it (seed 001: "Don't move
/// goalposts").
pub fn criteria_digest(criteria: &[Criterion]) -> String {
    let json = serde_json::to_vec(criteria).unwrap_or_default();
    sha256_tagged(&json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        // FIPS 180-2 test vector.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn review_digest_ignores_order_and_sees_content() {
        let a = InputDigest {
            role: InputRole::Card,
            path: "agent.yaml".into(),
            sha256: sha256_tagged(b"a"),
        };
        let b = InputDigest {
            role: InputRole::Evidence,
            path: "evidence/x.yaml".into(),
            sha256: sha256_tagged(b"b"),
        };
        let d1 = review_digest(&[a.clone(), b.clone()]);
        assert_eq!(d1, review_digest(&[b.clone(), a.clone()]));
        let mut b2 = b;
        b2.sha256 = sha256_tagged(b"c");
        assert_ne!(d1, review_digest(&[a, b2]));
    }
}

/// Normalises a relative path as cards and records write it: `/` separators, `.` dropped,
/// `a/../b` folded to `b` (leading `..` kept). Used for every path in digests and reports so
/// the review digest does not depend on how a path was spelled.
pub fn normalise_path(rel: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in rel.split(['/', '\\']) {
        match c {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod path_tests {
    use super::normalise_path;

    #[test]
    fn folds_dots() {
        assert_eq!(normalise_path("./evidence/../runbook.md"), "runbook.md");
        assert_eq!(normalise_path("../../x/./y.csv"), "../../x/y.csv");
        assert_eq!(normalise_path("evidence\\a.yaml"), "evidence/a.yaml");
    }
}
