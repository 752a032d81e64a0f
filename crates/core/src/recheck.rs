//! What a server can recompute from a review pushed to it (issue 8: "the server recomputes
//! what it can … and refuses an inconsistent push"), without the agent's files:
//!
//! - the review digest, from the inputs' hashes it lists ([`crate::digest::review_digest`]);
//! - that the sign-off subject names that digest, that agent and the same item statuses;
//! - that items 1–10 each appear once;
//! - the decision against the item statuses, by the parts of seed 001's decision matrix that
//!   do not depend on the gate template's policy ([`crate::decision::decide`]): any ❌ or an
//!   unsigned item 10 is Blocked; everything ✅ and signed is Cleared; Conditional needs every
//!   ⚠️ item of 1–9 to have an open item with one named owner and a due date.
//!
//! What it cannot recompute — the statuses themselves, from evidence it does not hold — stays
//! the reviewer's, under the digest that every sign-off signs.

use crate::decision::Status;
use crate::digest::{InputDigest, review_digest};
use crate::review::SCHEMA_VERSION;
use jiff::civil::Date;
use serde_json::Value;

/// What the recheck established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rechecked {
    /// The agent reviewed.
    pub agent: String,
    /// The review date.
    pub review_date: Date,
    /// The digest, recomputed and equal to the review's.
    pub digest: String,
    /// `Cleared`, `Conditional` or `Blocked`.
    pub decision: String,
}

/// Rechecks a review JSON (`Review`'s shape, `schema_version` [`SCHEMA_VERSION`]).
///
/// # Errors
/// A sentence naming the first field that is missing, malformed or inconsistent.
pub fn recheck(v: &Value) -> Result<Rechecked, String> {
    let s = |ptr: &str| v.pointer(ptr).and_then(Value::as_str);
    let need = |ptr: &str| s(ptr).ok_or_else(|| format!("{ptr}: missing or not a string"));
    match v.get("schema_version").and_then(Value::as_u64) {
        Some(n) if n == u64::from(SCHEMA_VERSION) => {}
        other => {
            return Err(format!(
                "/schema_version: {other:?}; this server reads version {SCHEMA_VERSION}"
            ));
        }
    }
    let agent = need("/agent/id")?.to_owned();
    let review_date: Date = need("/review_date")?
        .parse()
        .map_err(|_| "/review_date: not a date".to_owned())?;
    let inputs: Vec<InputDigest> =
        serde_json::from_value(v.get("inputs").cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("/inputs: {e}"))?;
    let digest = review_digest(&inputs);
    let claimed = need("/digest")?;
    if claimed != digest {
        return Err(format!(
            "/digest: {claimed} is not the digest of the inputs listed ({digest})"
        ));
    }
    if need("/signoff_subject/review_digest")? != digest {
        return Err("/signoff_subject/review_digest: not the review's digest".into());
    }
    if need("/signoff_subject/agent")? != agent {
        return Err("/signoff_subject/agent: not the agent reviewed".into());
    }
    let mut statuses: [Option<Status>; 10] = [None; 10];
    for (i, item) in v
        .get("items")
        .and_then(Value::as_array)
        .ok_or("/items: missing")?
        .iter()
        .enumerate()
    {
        let n = item
            .get("number")
            .and_then(Value::as_u64)
            .filter(|n| (1..=10).contains(n))
            .ok_or_else(|| format!("/items/{i}/number: not 1–10"))?;
        let st: Status = serde_json::from_value(item.get("status").cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("/items/{i}/status: {e}"))?;
        let slot = &mut statuses[(n - 1) as usize];
        if slot.is_some() {
            return Err(format!("/items/{i}: item {n} appears twice"));
        }
        *slot = Some(st);
    }
    let mut all = [Status::Fail; 10];
    for (i, st) in statuses.iter().enumerate() {
        all[i] = st.ok_or_else(|| format!("/items: item {} is missing", i + 1))?;
    }
    let subject: Vec<Status> = serde_json::from_value(
        v.pointer("/signoff_subject/items")
            .cloned()
            .unwrap_or(Value::Null),
    )
    .map_err(|e| format!("/signoff_subject/items: {e}"))?;
    if subject != all[..9] {
        return Err("/signoff_subject/items: not the statuses of items 1–9".into());
    }
    let decision = need("/decision/outcome")?.to_owned();
    let first9 = &all[..9];
    let signed = all[9] == Status::Pass;
    let expected: &[&str] = if first9.contains(&Status::Fail) || !signed {
        &["Blocked"]
    } else if first9.iter().all(|s| *s == Status::Pass) {
        &["Cleared"]
    } else {
        &["Conditional", "Blocked"]
    };
    if !expected.contains(&decision.as_str()) {
        return Err(format!(
            "/decision/outcome: {decision} contradicts the item statuses (the decision matrix gives {})",
            expected.join(" or ")
        ));
    }
    if decision == "Conditional" {
        let opens = v.get("open_items").and_then(Value::as_array);
        for (i, st) in first9.iter().enumerate() {
            if *st != Status::Open {
                continue;
            }
            let n = i as u64 + 1;
            let owned = opens.is_some_and(|o| {
                o.iter().any(|x| {
                    x.get("item").and_then(Value::as_u64) == Some(n)
                        && x.get("owner").and_then(Value::as_str).is_some()
                        && x.get("due").and_then(Value::as_str).is_some()
                        && x.get("problems")
                            .and_then(Value::as_array)
                            .is_none_or(Vec::is_empty)
                })
            });
            if !owned {
                return Err(format!(
                    "/decision/outcome: Conditional, but item {n} is ⚠️ without an open item that names one owner and a due date"
                ));
            }
        }
    }
    Ok(Rechecked {
        agent,
        review_date,
        digest,
        decision,
    })
}
