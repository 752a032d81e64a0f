//! Roles and the authorization rule: what a caller may do, to which agent (issue 8 item 3).
//!
//! | action | roles allowed | and, for that agent |
//! |---|---|---|
//! | read (agents, history, verify, portfolio, evidence) | every role | — |
//! | register an agent, start its pilot | admin, coe-lead, builder | a builder only when the card names them builder |
//! | push a review | admin, coe-lead, ci, builder | builder: named builder |
//! | push evidence | admin, coe-lead, ci, builder, on-call | builder: named builder; on-call: named primary or backup on-call, and only `drill` and `rotation` records |
//! | sign off (item 10) | admin, coe-lead, builder, peer-approver | the signature must be the caller's, as the card's person for the role |
//! | approve (criteria change, risk acceptance) | admin, coe-lead, sponsor | the signature must be the caller's, as the card's sponsor or CoE lead |
//! | promote, resume | admin, coe-lead | — |
//! | pause (the kill switch pulled) | admin, coe-lead, on-call | on-call: named primary or backup on-call |
//! | retire | admin, coe-lead, sponsor | sponsor: the card's sponsor |
//! | webhooks, checkpoints | admin, coe-lead (checkpoints: auditor too) | — |
//! | rollout start, advance, resume, abort | admin, coe-lead, sponsor | the signature must be the caller's, as the card's sponsor or CoE lead |
//! | rollout pause, kill switch pull or restore | admin, coe-lead, sponsor, on-call | on-call: named primary or backup; the signature must be the caller's, as the card's on-call, CoE lead or sponsor |
//! | kill-switch drill | admin, coe-lead, on-call | on-call: named; the signature must be the caller's, as the card's on-call or CoE lead |
//! | send telemetry (OTLP) | admin, coe-lead, ci | — (never the builder: the spans judge their own agent) |
//!
//! A token limited to some agents (`--agents`) acts on those only. The auditor reads and
//! nothing else; ci pushes reviews and evidence and nothing else (seed 001 item 10: the
//! people who sign are named; a CI job is not a person).

use stagegate_core::card::{People, Person};
use stagegate_core::person::same_person;
use std::collections::BTreeSet;

/// A role a credential carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Everything the rules allow anyone.
    Admin,
    /// The AI CoE lead: reviews, promotes, signs.
    CoeLead,
    /// Builds agents; acts on the agents whose card names them builder.
    Builder,
    /// Executive sponsor: accepts risk, approves criteria changes.
    Sponsor,
    /// Peer approver (seed 001 item 10).
    PeerApprover,
    /// On-call engineer: records drills and rotations of the agents they are on call for.
    OnCall,
    /// Reads everything, writes nothing.
    Auditor,
    /// A CI job: pushes reviews and evidence only.
    Ci,
}

impl Role {
    /// Every role, in order.
    pub const ALL: [Role; 8] = [
        Role::Admin,
        Role::CoeLead,
        Role::Builder,
        Role::Sponsor,
        Role::PeerApprover,
        Role::OnCall,
        Role::Auditor,
        Role::Ci,
    ];

    /// The name used in tokens, claims and the API: `admin`, `coe-lead`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::CoeLead => "coe-lead",
            Role::Builder => "builder",
            Role::Sponsor => "sponsor",
            Role::PeerApprover => "peer-approver",
            Role::OnCall => "on-call",
            Role::Auditor => "auditor",
            Role::Ci => "ci",
        }
    }

    /// Reads a role name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller: built only from a verified token or JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The person: a name or e-mail as the agent cards write it.
    pub person: String,
    /// Their roles.
    pub roles: BTreeSet<Role>,
    /// Agents the credential is limited to (empty: no limit).
    pub agents: Vec<String>,
    /// The credential, for logs and the event log's actor: `token <id>` or `oidc <sub>`.
    pub credential: String,
}

impl Caller {
    /// Whether the caller has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the caller is `p` (name, or e-mail case-insensitively).
    pub fn is(&self, p: &Person) -> bool {
        same_person(&self.person, &p.name)
            || p.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(self.person.trim()))
    }

    /// What the event log records as the actor: `person (credential)`.
    pub fn actor(&self) -> String {
        format!("{} ({})", self.person, self.credential)
    }
}

/// What a caller asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Read anything.
    Read,
    /// Register an agent or start its pilot.
    Register,
    /// Push a review.
    PushReview,
    /// Push an evidence record of this kind (`drill`, `metric`, …).
    PushEvidence(&'a str),
    /// Sign off a review.
    SignOff,
    /// Approve a criteria change or accept risk.
    Approve,
    /// Promote or resume the agent.
    ChangeStage,
    /// Pause the agent.
    Pause,
    /// Retire the agent.
    Retire,
    /// Manage webhook subscriptions.
    ManageWebhooks,
    /// Take a signed checkpoint.
    Checkpoint,
    /// A signed rollout or kill-switch act (`start`, `advance`, `pause`, `resume`, `abort`,
    /// `kill`, `restore`, `drill`).
    Rollout(&'a str),
    /// Send telemetry of a rolling-out agent (OTLP).
    Telemetry,
}

impl Action<'_> {
    /// A short name for messages.
    pub fn name(&self) -> String {
        match self {
            Action::Read => "read".into(),
            Action::Register => "register agents or start pilots".into(),
            Action::PushReview => "push reviews".into(),
            Action::PushEvidence(k) => format!("push {k} evidence"),
            Action::SignOff => "sign off".into(),
            Action::Approve => "approve".into(),
            Action::ChangeStage => "change stages".into(),
            Action::Pause => "pause agents".into(),
            Action::Retire => "retire agents".into(),
            Action::ManageWebhooks => "manage webhooks".into(),
            Action::Checkpoint => "take checkpoints".into(),
            Action::Rollout(a) => format!("{a} rollouts"),
            Action::Telemetry => "send telemetry".into(),
        }
    }
}

/// Why a caller may not act (answered 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// Decides whether `caller` may do `action` to `agent` (`None` for actions on no agent),
/// whose card names `people` (`None` when the registry knows no card for it yet).
///
/// # Errors
/// [`Denied`] with a sentence naming the rule (see the module's table).
pub fn authorize(
    caller: &Caller,
    action: Action<'_>,
    agent: Option<&str>,
    people: Option<&People>,
) -> Result<(), Denied> {
    if let Some(a) = agent
        && !caller.agents.is_empty()
        && action != Action::Read
        && !caller.agents.iter().any(|x| x == a)
    {
        return Err(Denied(format!(
            "this credential is limited to {}; not {a}",
            caller.agents.join(", ")
        )));
    }
    let any = |roles: &[Role]| roles.iter().any(|r| caller.has(*r));
    let staff = any(&[Role::Admin, Role::CoeLead]);
    let named = |pick: fn(&People) -> Vec<&Person>| {
        people.is_some_and(|p| pick(p).into_iter().any(|x| caller.is(x)))
    };
    let builder_of = || caller.has(Role::Builder) && named(|p| vec![&p.builder]);
    let on_call_of =
        || caller.has(Role::OnCall) && named(|p| vec![&p.on_call.primary, &p.on_call.backup]);
    let ok = match action {
        Action::Read => !caller.roles.is_empty(),
        Action::Register => staff || builder_of(),
        Action::PushReview => staff || caller.has(Role::Ci) || builder_of(),
        Action::PushEvidence(kind) => {
            staff
                || caller.has(Role::Ci)
                || builder_of()
                || (matches!(kind, "drill" | "rotation") && on_call_of())
        }
        Action::SignOff => any(&[
            Role::Admin,
            Role::CoeLead,
            Role::Builder,
            Role::PeerApprover,
        ]),
        Action::Approve => any(&[Role::Admin, Role::CoeLead, Role::Sponsor]),
        Action::ChangeStage | Action::ManageWebhooks => staff,
        Action::Pause => staff || on_call_of(),
        Action::Retire => staff || (caller.has(Role::Sponsor) && named(|p| vec![&p.sponsor])),
        Action::Checkpoint => staff || caller.has(Role::Auditor),
        Action::Rollout(act) => match act {
            "pause" | "kill" | "restore" => staff || caller.has(Role::Sponsor) || on_call_of(),
            "drill" => staff || on_call_of(),
            _ => staff || caller.has(Role::Sponsor),
        },
        // Not the builder: the telemetry that advances a rollout must not come from the
        // person whose agent it judges.
        Action::Telemetry => staff || caller.has(Role::Ci),
    };
    if ok {
        return Ok(());
    }
    let roles = caller
        .roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let for_agent = agent.map(|a| format!(" for {a}")).unwrap_or_default();
    Err(Denied(format!(
        "{} ({}) may not {}{for_agent}{}",
        caller.person,
        if roles.is_empty() { "no role" } else { &roles },
        action.name(),
        match action {
            Action::Register | Action::PushReview if caller.has(Role::Builder) =>
                " (a builder acts on the agents whose card names them builder)",
            Action::PushEvidence(_) if caller.has(Role::OnCall) =>
                " (on-call records drills and rotations of the agents whose card names them on call)",
            _ => "",
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(name: &str, email: &str) -> Person {
        Person {
            name: name.into(),
            email: Some(email.into()),
        }
    }

    fn people() -> People {
        serde_json::from_value(serde_json::json!({
            "builder": {"name": "Bea Builder", "email": "bea@acme.example"},
            "coe_lead": {"name": "Cai Lead", "email": "cai@acme.example"},
            "sponsor": {"name": "Sam Sponsor", "email": "sam@acme.example"},
            "on_call": {
                "primary": {"name": "Oli Oncall", "email": "oli@acme.example"},
                "backup": {"name": "Ola Backup", "email": "ola@acme.example"},
                "pager": {"system": "PagerDuty", "primary_schedule": "x", "backup_schedule": "y"}
            }
        }))
        .unwrap()
    }

    fn caller(person: &str, roles: &[Role]) -> Caller {
        Caller {
            person: person.into(),
            roles: roles.iter().copied().collect(),
            agents: Vec::new(),
            credential: "token test".into(),
        }
    }

    #[test]
    fn a_builder_acts_only_on_the_agents_that_name_them() {
        let p = people();
        let bea = caller("bea@acme.example", &[Role::Builder]);
        assert!(authorize(&bea, Action::PushReview, Some("agent-x-y"), Some(&p)).is_ok());
        let other = caller("Zed Else", &[Role::Builder]);
        let e = authorize(&other, Action::PushReview, Some("agent-x-y"), Some(&p)).unwrap_err();
        assert!(e.0.contains("whose card names them builder"), "{e}");
        assert!(authorize(&bea, Action::ChangeStage, Some("agent-x-y"), Some(&p)).is_err());
        // Unknown card: nobody is the builder.
        assert!(authorize(&bea, Action::PushReview, Some("agent-x-y"), None).is_err());
    }

    #[test]
    fn on_call_pushes_only_drills_and_rotations_of_their_agents() {
        let p = people();
        let oli = caller("Oli Oncall", &[Role::OnCall]);
        assert!(authorize(&oli, Action::PushEvidence("drill"), Some("a"), Some(&p)).is_ok());
        assert!(authorize(&oli, Action::PushEvidence("rotation"), Some("a"), Some(&p)).is_ok());
        assert!(authorize(&oli, Action::PushEvidence("metric"), Some("a"), Some(&p)).is_err());
        let stranger = caller("Ned Other", &[Role::OnCall]);
        assert!(
            authorize(
                &stranger,
                Action::PushEvidence("drill"),
                Some("a"),
                Some(&p)
            )
            .is_err()
        );
    }

    #[test]
    fn auditor_reads_and_ci_pushes_only() {
        let p = people();
        let aud = caller("Ada Auditor", &[Role::Auditor]);
        let ci = caller("ci@acme.example", &[Role::Ci]);
        assert!(authorize(&aud, Action::Read, None, None).is_ok());
        assert!(authorize(&aud, Action::Checkpoint, None, None).is_ok());
        for a in [
            Action::Register,
            Action::PushReview,
            Action::PushEvidence("drill"),
            Action::SignOff,
            Action::Approve,
            Action::ChangeStage,
            Action::ManageWebhooks,
        ] {
            assert!(authorize(&aud, a, Some("a"), Some(&p)).is_err(), "{a:?}");
        }
        assert!(authorize(&ci, Action::PushReview, Some("a"), Some(&p)).is_ok());
        assert!(authorize(&ci, Action::PushEvidence("metric"), Some("a"), Some(&p)).is_ok());
        for a in [
            Action::Register,
            Action::SignOff,
            Action::Approve,
            Action::ChangeStage,
        ] {
            assert!(authorize(&ci, a, Some("a"), Some(&p)).is_err(), "{a:?}");
        }
    }

    #[test]
    fn a_limited_token_acts_on_its_agents_only() {
        let mut ci = caller("ci", &[Role::Ci]);
        ci.agents = vec!["agent-a-b".into()];
        assert!(authorize(&ci, Action::PushReview, Some("agent-a-b"), None).is_ok());
        let e = authorize(&ci, Action::PushReview, Some("agent-a-c"), None).unwrap_err();
        assert!(e.0.contains("limited to agent-a-b"));
        assert!(authorize(&ci, Action::Read, Some("agent-a-c"), None).is_ok());
    }

    #[test]
    fn roles_round_trip_and_person_matches_name_or_email() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
        let c = caller("BEA@acme.example", &[]);
        assert!(c.is(&person("Bea Builder", "bea@acme.example")));
        assert!(caller("bea  builder", &[]).is(&person("Bea Builder", "x@y")));
        assert!(!caller("Bea", &[]).is(&person("Bea Builder", "x@y")));
        assert!(authorize(&caller("x", &[]), Action::Read, None, None).is_err());
    }
}
