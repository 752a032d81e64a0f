//! Accountable acts: the statements people sign, and who may sign them.
//!
//! A sign-off, a criteria-change approval and a risk acceptance count only as an SSH signature
//! (SSHSIG, namespace [`ACT_NAMESPACE`]) by the named person's own key, listed for them in the
//! organisation's allowed-signers file, over a statement stagegate builds from the facts the
//! act is about. A name typed into a record is never enough.
//!
//! Statements are plain text, one `field: value` per line, so a signer can read what they
//! sign (`stagegate signoff --print-statement`) and sign it with `ssh-keygen -Y sign -n
//! stagegate`. A sign-off statement names the review digest *and* the outcome the review
//! reaches once signed and every item's status, so a signature cannot be moved to another
//! review, nor to a stored review whose outcome was edited.
//!
//! Authority (seed 001): item 10 "CoE Lead reviews items 1–9 and signs … If CoE Lead is also
//! the Builder … additionally seek peer review" — the peer approver is someone other than the
//! builder; item 1 "redefine criteria (with re-approval at M8)" and the pitfall "Moving the
//! goalposts" — a criteria change is approved by the sponsor or the CoE lead, never by the
//! builder alone; the decision matrix's "explicit risk acceptance from sponsor" — by the
//! sponsor only.

use crate::card::{AgentCard, People, Person};
use crate::decision::{Outcome, Status};
use crate::evidence::SignoffRole;
use crate::person::same_person;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
pub use stagegate_trust::{ACT_NAMESPACE, AllowedSigners, Verified};

/// What a sign-off is about: the review's identity and what it concludes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignoffSubject {
    /// Agent id.
    pub agent: String,
    /// Agent version reviewed.
    pub version: String,
    /// The review digest (every input except sign-offs).
    pub review_digest: String,
    /// Digest of the success criteria.
    pub criteria_digest: String,
    /// The outcome once item 10 holds (the decision matrix with item 10 ✅).
    pub decision_when_signed: Outcome,
    /// Status of items 1–9, in order.
    pub items: Vec<Status>,
}

/// The text a sign-off signs.
pub fn signoff_statement(
    s: &SignoffSubject,
    role: SignoffRole,
    person: &str,
    date: Date,
) -> String {
    let items: Vec<String> = s
        .items
        .iter()
        .enumerate()
        .map(|(i, st)| format!("{}:{}", i + 1, st.word()))
        .collect();
    format!(
        "stagegate sign-off v1\nagent: {}\nversion: {}\nreview-digest: {}\ncriteria-digest: {}\ndecision-when-signed: {}\nitems: {}\nrole: {}\nperson: {}\ndate: {date}\n",
        s.agent,
        s.version,
        s.review_digest,
        s.criteria_digest,
        s.decision_when_signed.as_str(),
        items.join(" "),
        role_key(role),
        one_line(person),
    )
}

/// The text a criteria-change approval signs: the agent and the new criteria digest.
pub fn criteria_change_statement(
    agent: &str,
    criteria_digest: &str,
    person: &str,
    date: Date,
) -> String {
    format!(
        "stagegate approval v1\nact: criteria_change\nagent: {agent}\ncriteria-digest: {criteria_digest}\nperson: {}\ndate: {date}\n",
        one_line(person)
    )
}

/// The text a risk acceptance signs: the agent, its version, the items accepted as open and,
/// for each of them, every open-item record the sponsor saw (item, owner, due date, record,
/// what is missing), so changing an open item's owner, due date or content after the
/// acceptance, or adding one, stops it counting (seed 001 decision matrix: Conditional is
/// "minor gaps with owned open items + explicit risk acceptance from sponsor"). `open_items`
/// may hold items not accepted; they are left out.
pub fn risk_acceptance_statement(
    agent: &str,
    version: &str,
    items: &[u8],
    open_items: &[crate::review::OpenItem],
    person: &str,
    date: Date,
) -> String {
    let mut items = items.to_vec();
    items.sort_unstable();
    items.dedup();
    let mut opens: Vec<&crate::review::OpenItem> = open_items
        .iter()
        .filter(|o| items.contains(&o.item))
        .collect();
    opens.sort_by(|a, b| (a.item, &a.source).cmp(&(b.item, &b.source)));
    let opens: String = opens
        .iter()
        .map(|o| {
            format!(
                "open-item: {} | owner: {} | due: {} | record: {} | what: {}\n",
                o.item,
                one_line(o.owner.as_deref().unwrap_or("-")),
                o.due.map_or_else(|| "-".to_owned(), |d| d.to_string()),
                one_line(&o.source),
                one_line(&o.what)
            )
        })
        .collect();
    let items: Vec<String> = items.iter().map(u8::to_string).collect();
    format!(
        "stagegate approval v1\nact: risk_acceptance\nagent: {agent}\nversion: {version}\nitems: {}\n{opens}person: {}\ndate: {date}\n",
        items.join(" "),
        one_line(person)
    )
}

/// Which allowed-signers file a review checked signatures against, so a reader sees the trust
/// root behind every ✅ on item 10 (`promote` checks again against the file it is given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignersFile {
    /// The path as found: as given (`--allowed-signers`, `$STAGEGATE_ALLOWED_SIGNERS`),
    /// `<org>/allowed_signers`, or `../allowed_signers` beside the agent folder.
    pub path: String,
    /// `sha256:<hex>` of the file's bytes.
    pub sha256: String,
}

/// `builder`, `coe_lead`, `peer_approver`.
pub fn role_key(role: SignoffRole) -> &'static str {
    match role {
        SignoffRole::Builder => "builder",
        SignoffRole::CoeLead => "coe_lead",
        SignoffRole::PeerApprover => "peer_approver",
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The principals a person signs as in the allowed-signers file: their name as the card
/// writes it, and their e-mail when the card gives one.
pub fn principals(p: &Person) -> Vec<&str> {
    let mut v = vec![p.name.as_str()];
    if let Some(e) = p.email.as_deref() {
        v.push(e);
    }
    v
}

/// Checks a signature by `person` over `statement`, dated `date` (its validity window in the
/// allowed-signers file is checked at 00:00 UTC that day).
///
/// # Errors
/// A sentence saying why it does not count: unsigned, no allowed-signers file, or the
/// verification failure from [`AllowedSigners::verify`].
pub fn check(
    allowed: Option<&AllowedSigners>,
    person: &Person,
    statement: &str,
    signature: Option<&str>,
    date: Date,
) -> Result<Verified, String> {
    let Some(sig) = signature.filter(|s| !s.trim().is_empty()) else {
        return Err("unsigned (a typed name is not a signature: sign with `ssh-keygen -Y sign -n stagegate` or `stagegate signoff --key`)".into());
    };
    let Some(allowed) = allowed else {
        return Err(
            "no allowed-signers file to check the signature against (--allowed-signers)".into(),
        );
    };
    let at = date
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    allowed
        .verify(
            &principals(person),
            ACT_NAMESPACE,
            statement.as_bytes(),
            sig,
            at,
        )
        .map_err(|e| e.to_string())
}

/// [`check`] at the statement's `date`, and again at `recorded`, the day the signature was
/// first on record (the machine clock when `stagegate signoff`/`approve` ran, the registry's
/// recording time at `promote`): a key outside its `valid-after`/`valid-before` window on
/// either day does not count, so a revoked key cannot sign a statement it dates back into its
/// window (OpenSSH checks validity at the time of verification; git at the commit's time).
///
/// # Errors
/// As [`check`]; a failure on the recording day says so.
pub fn check_recorded(
    allowed: Option<&AllowedSigners>,
    person: &Person,
    statement: &str,
    signature: Option<&str>,
    date: Date,
    recorded: Date,
) -> Result<Verified, String> {
    let v = check(allowed, person, statement, signature, date)?;
    if recorded != date {
        check(allowed, person, statement, signature, recorded)
            .map_err(|why| format!("on {recorded}, when it was recorded: {why}"))?;
    }
    Ok(v)
}

/// Who may approve a criteria change: the sponsor or the CoE lead, never the builder (even
/// when the builder is also the CoE lead). Returns the card's person, or the rule refused.
///
/// # Errors
/// The rule, citing seed 001.
pub fn criteria_change_approver<'a>(card: &'a AgentCard, by: &str) -> Result<&'a Person, String> {
    criteria_change_approver_people(&card.people, by)
}

/// [`criteria_change_approver`] over a card's people alone (as a recorded review carries them).
///
/// # Errors
/// As [`criteria_change_approver`].
pub fn criteria_change_approver_people<'a>(p: &'a People, by: &str) -> Result<&'a Person, String> {
    if same_person(by, &p.builder.name) {
        return Err(format!(
            "{by} is the builder; a criteria change is re-approved by the sponsor or the CoE lead, never by the builder alone (seed 001 item 1: \"redefine criteria (with re-approval at M8)\"; pitfall \"Moving the goalposts\")"
        ));
    }
    if same_person(by, &p.sponsor.name) {
        return Ok(&p.sponsor);
    }
    if same_person(by, &p.coe_lead.name) {
        return Ok(&p.coe_lead);
    }
    Err(format!(
        "{by} is neither the sponsor ({}) nor the CoE lead ({}); only they re-approve changed criteria (seed 001 item 1, pitfall \"Moving the goalposts\")",
        p.sponsor.name, p.coe_lead.name
    ))
}

/// Who may accept the risk of a conditional launch: the sponsor only.
///
/// # Errors
/// The rule, citing seed 001's decision matrix.
pub fn risk_acceptor<'a>(card: &'a AgentCard, by: &str) -> Result<&'a Person, String> {
    risk_acceptor_people(&card.people, by)
}

/// [`risk_acceptor`] over a card's people alone.
///
/// # Errors
/// As [`risk_acceptor`].
pub fn risk_acceptor_people<'a>(p: &'a People, by: &str) -> Result<&'a Person, String> {
    if same_person(by, &p.sponsor.name) {
        Ok(&p.sponsor)
    } else {
        Err(format!(
            "{by} is not the sponsor ({}); a conditional launch needs \"explicit risk acceptance from sponsor\" (seed 001 decision matrix)",
            p.sponsor.name
        ))
    }
}

/// The person who signs in `role` for this card, or why nobody may (seed 001 item 10: the
/// peer approver is needed when the CoE lead is the builder, and must be someone else).
///
/// # Errors
/// The rule, citing seed 001 item 10.
pub fn signer_for(card: &AgentCard, role: SignoffRole) -> Result<&Person, String> {
    signer_for_people(&card.people, role)
}

/// [`signer_for`] over a card's people alone (as a recorded review carries them).
///
/// # Errors
/// As [`signer_for`].
pub fn signer_for_people(p: &People, role: SignoffRole) -> Result<&Person, String> {
    match role {
        SignoffRole::Builder => Ok(&p.builder),
        SignoffRole::CoeLead => Ok(&p.coe_lead),
        SignoffRole::PeerApprover => match &p.peer_approver {
            None => Err("the card names no peer approver (seed 001 item 10)".into()),
            Some(pa) if same_person(&pa.name, &p.builder.name) => Err(format!(
                "the peer approver {} is the builder; peer review is by someone other than the builder (seed 001 item 10: \"additionally seek peer review from one of the approvers from M8\")",
                pa.name
            )),
            Some(pa) => Ok(pa),
        },
    }
}

/// The part of a stored review that [`reverify`] needs.
#[derive(Debug, Clone, Deserialize)]
pub struct SignedReview {
    /// What the sign-offs signed.
    pub signoff_subject: SignoffSubject,
    /// The sign-off table, with signatures.
    pub signoffs: Vec<crate::review::SignoffRow>,
}

/// Re-verifies a stored review's sign-offs against the allowed signers (`stagegate promote`):
/// every row signed, by a key allowed for its person (name or e-mail), over the statement
/// rebuilt from the stored subject (digest, outcome once signed, item statuses); the builder
/// and the CoE lead both present (seed 001 item 10). Each key must be valid on the statement's
/// date and on the day `recorded` gives for its signature (when the registry first held it;
/// see [`check_recorded`]). Returns the signers' key fingerprints.
///
/// # Errors
/// A sentence naming the first row that does not verify.
pub fn reverify(
    s: &SignedReview,
    allowed: &AllowedSigners,
    recorded: impl Fn(&str) -> Date,
) -> Result<Vec<String>, String> {
    for needed in [SignoffRole::Builder, SignoffRole::CoeLead] {
        if !s.signoffs.iter().any(|r| r.role_key == needed && r.signed) {
            return Err(format!("no signed {} row", needed.title()));
        }
    }
    let mut fps = Vec::new();
    for r in &s.signoffs {
        let (Some(date), true) = (r.date, r.signed) else {
            return Err(format!("{} {} did not sign", r.role, r.name));
        };
        let person = Person {
            name: r.name.clone(),
            email: r.email.clone(),
        };
        let statement = signoff_statement(&s.signoff_subject, r.role_key, &r.name, date);
        let v = check_recorded(
            Some(allowed),
            &person,
            &statement,
            r.signature.as_deref(),
            date,
            recorded(r.signature.as_deref().unwrap_or_default()),
        )
        .map_err(|why| format!("{} {}: {why}", r.role, r.name))?;
        if let Some((other, _)) =
            s.signoffs.iter().zip(&fps).find(|(o, fp)| {
                **fp == v.fingerprint && !crate::person::same_person(&o.name, &r.name)
            })
        {
            return Err(format!(
                "{} {} and {} {} signed with the same key {}",
                other.role, other.name, r.role, r.name, v.fingerprint
            ));
        }
        fps.push(v.fingerprint);
    }
    Ok(fps)
}

/// A person's act on a rollout or a kill switch (seed 000 "Rollback Planning": the decision
/// authority; seed 001 item 9: the kill switch and its drill). Each is signed like a
/// sign-off: a typed name is not an act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutAct {
    /// Start a rollout from its plan.
    Start,
    /// Go at a go/no-go: the next phase.
    Advance,
    /// Hold the rollout.
    Pause,
    /// Continue it.
    Resume,
    /// Stop it for good at 0%.
    Abort,
    /// Pull the kill switch.
    Kill,
    /// Restore after a kill.
    Restore,
    /// Pull and restore the kill switch as a drill, measuring it (item 9).
    Drill,
}

impl RolloutAct {
    /// `start`, `advance`, …
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutAct::Start => "start",
            RolloutAct::Advance => "advance",
            RolloutAct::Pause => "pause",
            RolloutAct::Resume => "resume",
            RolloutAct::Abort => "abort",
            RolloutAct::Kill => "kill",
            RolloutAct::Restore => "restore",
            RolloutAct::Drill => "drill",
        }
    }

    /// Parses [`RolloutAct::as_str`].
    pub fn parse(s: &str) -> Option<RolloutAct> {
        [
            RolloutAct::Start,
            RolloutAct::Advance,
            RolloutAct::Pause,
            RolloutAct::Resume,
            RolloutAct::Abort,
            RolloutAct::Kill,
            RolloutAct::Restore,
            RolloutAct::Drill,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// The text a rollout or kill-switch act signs. `after_event` is the agent's latest rollout or
/// kill-switch event (0 before any), so a signature cannot be replayed later: it only counts
/// while the state it was given on is current. `plan_digest` names the plan started or
/// advanced (`-` for kill-switch acts).
pub fn rollout_act_statement(
    agent: &str,
    act: RolloutAct,
    plan_digest: Option<&str>,
    after_event: i64,
    reason: &str,
    person: &str,
    date: Date,
) -> String {
    format!(
        "stagegate rollout act v1\nagent: {agent}\nact: {}\nplan-digest: {}\nafter-event: {after_event}\nreason: {}\nperson: {}\ndate: {date}\n",
        act.as_str(),
        plan_digest.unwrap_or("-"),
        one_line(reason),
        one_line(person)
    )
}

/// Who may sign `act` for an agent with these people: start, advance, resume and abort are
/// the decision authority's — the sponsor or the CoE lead (seed 000 "Rollback Planning",
/// seed 004 "expand, pause or retire"); pause, kill and restore also the on-call primary or
/// backup (seed 001 item 9: the on-call can pull the kill switch); a drill is the on-call's or
/// the CoE lead's (seed 001 item 9: "kill switch tested"). The builder never signs an act that
/// widens or restores their own agent's exposure — start, advance, resume, restore — even when
/// they are also the CoE lead or the on-call (seed 001 item 10: when the CoE lead is the
/// builder, someone else reviews); acts that stop it (pause, kill, abort, drill) they may.
///
/// # Errors
/// The rule, naming who may.
pub fn rollout_actor_people<'a>(
    p: &'a People,
    act: RolloutAct,
    by: &str,
) -> Result<&'a Person, String> {
    let widens = matches!(
        act,
        RolloutAct::Start | RolloutAct::Advance | RolloutAct::Resume | RolloutAct::Restore
    );
    let on_call = [&p.on_call.primary, &p.on_call.backup];
    let candidates: Vec<&Person> = match act {
        RolloutAct::Start | RolloutAct::Advance | RolloutAct::Resume | RolloutAct::Abort => {
            vec![&p.sponsor, &p.coe_lead]
        }
        RolloutAct::Pause | RolloutAct::Kill | RolloutAct::Restore => {
            let mut v = vec![&p.sponsor, &p.coe_lead];
            v.extend(on_call);
            v
        }
        RolloutAct::Drill => {
            let mut v: Vec<&Person> = on_call.to_vec();
            v.push(&p.coe_lead);
            v
        }
    };
    // Who may, by name, once each; never the builder for an act that widens.
    let mut names: Vec<&str> = Vec::new();
    for c in &candidates {
        let builder = widens && same_person(&c.name, &p.builder.name);
        if !builder && !names.iter().any(|n| same_person(n, &c.name)) {
            names.push(&c.name);
        }
    }
    let who = if names.is_empty() {
        "nobody else named on the card".to_owned()
    } else {
        names.join(" or ")
    };
    if widens && same_person(by, &p.builder.name) {
        return Err(format!(
            "{by} built this agent and may not {} its rollout, whatever their other roles (seed 001 item 10: the builder does not approve their own agent); {who} may",
            act.as_str()
        ));
    }
    candidates
        .into_iter()
        .find(|c| same_person(by, &c.name))
        .ok_or_else(|| {
            format!(
                "{by} may not {} this agent's rollout; {who} may",
                act.as_str()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example's people: Morteza builds, leads the CoE and backs up the on-call.
    fn people() -> People {
        serde_json::from_value(serde_json::json!({
            "builder": {"name": "Morteza Moradi"},
            "coe_lead": {"name": "Morteza Moradi"},
            "sponsor": {"name": "Hannah Okafor"},
            "peer_approver": {"name": "Elena Petrova"},
            "on_call": {
                "primary": {"name": "Mike Chen", "email": "mike.chen@acme.example"},
                "backup": {"name": "Morteza Moradi"},
                "pager": {"system": "PagerDuty", "primary_schedule": "p", "backup_schedule": "b"},
                "weekend_coverage": "rota"
            }
        }))
        .unwrap()
    }

    #[test]
    fn the_builder_never_widens_their_own_rollout_but_may_stop_it() {
        use RolloutAct as A;
        let p = people();
        for act in [A::Start, A::Advance, A::Resume] {
            let e = rollout_actor_people(&p, act, "Morteza Moradi").unwrap_err();
            assert!(
                e.contains("built this agent") && e.ends_with("Hannah Okafor may"),
                "{e}"
            );
            assert_eq!(
                rollout_actor_people(&p, act, "Hannah Okafor").unwrap().name,
                "Hannah Okafor"
            );
        }
        let e = rollout_actor_people(&p, A::Restore, "Morteza Moradi").unwrap_err();
        assert!(e.ends_with("Hannah Okafor or Mike Chen may"), "{e}");
        for act in [A::Pause, A::Kill, A::Drill] {
            assert!(
                rollout_actor_people(&p, act, "Morteza Moradi").is_ok(),
                "{act:?}"
            );
        }
        // Not on the card for the act: named, with who may.
        let e = rollout_actor_people(&p, A::Start, "Elena Petrova").unwrap_err();
        assert!(e.contains("Elena Petrova may not start"), "{e}");
        assert!(rollout_actor_people(&p, A::Kill, "Mike Chen").is_ok());
    }
}
