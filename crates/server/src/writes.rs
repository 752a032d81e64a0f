//! The write side of `/api/v1`: register an agent, start its pilot, push a review, push
//! evidence (multipart, attachments stored by sha256), sign off, promote. Every handler
//! authenticates the caller ([`Caller`]), authorizes the act against the roles and the
//! agent card's people ([`stagegate_auth::authorize`]) *before* touching the registry, and
//! writes through [`stagegate_registry::Registry`] — the same rules as the CLI, one
//! transaction per act. A refused call writes nothing.

use crate::AppState;
use crate::auth::forbidden;
use crate::problem::Problem;
use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stagegate_auth::{Action, Caller, authorize};
use stagegate_core::card::{AgentCard, People};
use stagegate_core::evidence::{EvidenceRecord, SignoffRole};
use stagegate_core::signing;
use stagegate_registry::{Act, AttachmentRef, Clock};
use utoipa::ToSchema;

/// What a write answers: the event number it recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Recorded {
    /// The event number (the newest, when the act recorded several).
    pub event: i64,
    /// What was recorded, in words.
    pub message: String,
}

/// An agent card, as YAML text (the `agent.yaml` an agent folder holds).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CardBody {
    /// The card's YAML.
    pub card: String,
    /// The effective date (`YYYY-MM-DD`) of a pilot start; default today (UTC).
    #[serde(default)]
    pub as_of: Option<String>,
}

/// A sign-off submitted through the API: the statement `stagegate signoff --print-statement`
/// prints, signed with `ssh-keygen -Y sign -n stagegate`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SignoffBody {
    /// `builder`, `coe_lead` or `peer_approver`.
    pub role: String,
    /// The armored SSH signature over the statement of the agent's latest review.
    pub signature: String,
}

/// A stage change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct PromoteBody {
    /// Effective date, `YYYY-MM-DD`; default today (UTC).
    #[serde(default)]
    pub as_of: Option<String>,
}

pub(crate) fn unprocessable(why: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-input",
        "Invalid input",
    )
    .detail(why)
}

pub(crate) fn today(app: &AppState) -> jiff::civil::Date {
    (app.clock)().to_zoned(jiff::tz::TimeZone::UTC).date()
}

pub(crate) fn act(app: &AppState, caller: &Caller, as_of: Option<jiff::civil::Date>) -> Act {
    Act {
        as_of,
        clock: Clock {
            now: (app.clock)(),
            overridden: false,
        },
        actor: caller.actor(),
    }
}

fn date(s: Option<&str>, app: &AppState) -> Result<jiff::civil::Date, Problem> {
    match s {
        None => Ok(today(app)),
        Some(d) => d
            .parse()
            .map_err(|_| unprocessable(format!("as_of: {d:?} is not a date (YYYY-MM-DD)"))),
    }
}

/// The people the registry knows for `agent`: its latest review's card, else the card it was
/// registered from.
pub(crate) async fn people_of(app: &AppState, agent: &str) -> Result<Option<People>, Problem> {
    let snap = app.cache.snapshot().await?;
    let Some(a) = snap.state.agents.get(agent) else {
        return Ok(None);
    };
    Ok(a.latest_review
        .as_ref()
        .and_then(|r| r.pointer("/operations/people"))
        .or(a.people.as_ref())
        .and_then(|p| serde_json::from_value(p.clone()).ok()))
}

fn parse_card(text: &str) -> Result<AgentCard, Problem> {
    let file = std::path::Path::new("agent.yaml");
    let card: AgentCard =
        stagegate_load::parse_yaml(file, text, 0).map_err(|e| unprocessable(e.to_string()))?;
    card.validate()
        .map_err(|e| unprocessable(format!("agent.yaml: {}: {}", e.field, e.message)))?;
    Ok(card)
}

pub(crate) fn check(
    caller: &Caller,
    action: Action<'_>,
    agent: &str,
    people: Option<&People>,
) -> Result<(), Problem> {
    authorize(caller, action, Some(agent), people).map_err(|d| forbidden(d.0))
}

/// Registers an agent from its card (no stage yet; `pilot` starts it).
#[utoipa::path(
    post,
    path = "/api/v1/agents",
    tag = "agents",
    request_body = CardBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Registered", body = Recorded),
        (status = 200, description = "Already registered", body = Recorded),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The card is invalid (file, line, field)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn register_agent(
    State(app): State<AppState>,
    caller: Caller,
    Json(body): Json<CardBody>,
) -> Result<(StatusCode, Json<Recorded>), Problem> {
    let card = parse_card(&body.card)?;
    let known = people_of(&app, &card.id).await?;
    check(
        &caller,
        Action::Register,
        &card.id,
        Some(known.as_ref().unwrap_or(&card.people)),
    )?;
    let new = app
        .registry
        .register_agent(
            &card.id,
            &card.name,
            serde_json::to_value(&card.people).ok(),
            &act(&app, &caller, Some(today(&app))),
        )
        .await?;
    app.cache.invalidate();
    let size = app.registry.size().await?;
    Ok((
        if new {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(Recorded {
            event: size,
            message: format!(
                "{} {}",
                card.id,
                if new {
                    "registered"
                } else {
                    "was already registered"
                }
            ),
        }),
    ))
}

/// Starts an agent's pilot: locks its success criteria digest and moves it to Pilot.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/pilot",
    tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    request_body = CardBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Pilot started", body = Recorded),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Refused by a registry rule (criteria already locked otherwise, in production)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The card is invalid or is another agent's", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn start_pilot(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    Json(body): Json<CardBody>,
) -> Result<(StatusCode, Json<Recorded>), Problem> {
    let card = parse_card(&body.card)?;
    if card.id != id {
        return Err(unprocessable(format!(
            "the card is {}'s, not {id}'s",
            card.id
        )));
    }
    let known = people_of(&app, &id).await?;
    check(
        &caller,
        Action::Register,
        &id,
        Some(known.as_ref().unwrap_or(&card.people)),
    )?;
    let on = date(body.as_of.as_deref(), &app)?;
    let digest = stagegate_core::digest::criteria_digest(&card.success_criteria);
    let json =
        serde_json::to_value(&card.success_criteria).map_err(|e| unprocessable(e.to_string()))?;
    let new = app
        .registry
        .start_pilot(
            &id,
            &card.name,
            &digest,
            json,
            &caller.person,
            &act(&app, &caller, Some(on)),
        )
        .await?;
    app.cache.invalidate();
    Ok((
        StatusCode::CREATED,
        Json(Recorded {
            event: app.registry.size().await?,
            message: if new {
                format!("{id}: pilot started {on}; success criteria locked as {digest}")
            } else {
                format!("{id}: pilot already started with these criteria ({digest})")
            },
        }),
    ))
}

/// Pushes a review run elsewhere (`stagegate review --server`): the whole review JSON. The
/// server recomputes what it can before recording it: the digest over the inputs' hashes,
/// the decision against the item statuses (seed 001 decision matrix), and the agent.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/reviews",
    tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    request_body(content = Object, description = "The review, as `stagegate review --format json` prints it"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Recorded", body = Recorded),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The review is inconsistent (digest, decision, agent)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn push_review(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    Json(review): Json<Value>,
) -> Result<(StatusCode, Json<Recorded>), Problem> {
    let known = people_of(&app, &id).await?;
    check(&caller, Action::PushReview, &id, known.as_ref())?;
    let checked = stagegate_core::recheck::recheck(&review).map_err(unprocessable)?;
    // What the portfolio reads must be there too, or the review could not be shown.
    stagegate_portfolio::ReviewSnapshot::from_review_json(0, &review).map_err(|e| {
        unprocessable(format!(
            "{}: missing or malformed (the portfolio reads it)",
            e.field
        ))
    })?;
    if checked.agent != id {
        return Err(unprocessable(format!(
            "the review is {}'s, not {id}'s",
            checked.agent
        )));
    }
    let event = app
        .registry
        .record_review_json(&review, &act(&app, &caller, Some(checked.review_date)))
        .await?;
    app.cache.invalidate();
    Ok((
        StatusCode::CREATED,
        Json(Recorded {
            event,
            message: format!(
                "{id}: review {} recorded: {}",
                checked.digest, checked.decision
            ),
        }),
    ))
}

/// Pushes one evidence record with its attachments (`multipart/form-data`): a part named
/// `record` holding the record's YAML (or JSON), and one part per attachment whose file name
/// is the path the record gives it. Each attachment's sha256 must match the record's; the
/// bytes are stored once per sha256, in the same transaction as the event.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/evidence",
    tag = "evidence",
    params(("id" = String, Path, description = "Agent id")),
    request_body(content = String, content_type = "multipart/form-data", description = "`record` (YAML) and one part per attachment, its filename the record's path"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Recorded", body = Recorded),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The agent is not registered", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The record is invalid or an attachment is missing or does not match", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn push_evidence(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    mut form: Multipart,
) -> Result<(StatusCode, Json<Recorded>), Problem> {
    let mut record_text: Option<(String, String)> = None;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| Problem::bad_request(format!("multipart: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let bytes = field
            .bytes()
            .await
            .map_err(|e| Problem::bad_request(format!("multipart part {name}: {e}")))?;
        if name == "record" {
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| unprocessable("record: not UTF-8 text"))?;
            record_text = Some((file_name.unwrap_or_else(|| "record.yaml".into()), text));
        } else {
            let path = file_name.ok_or_else(|| {
                unprocessable(format!(
                    "part {name}: an attachment needs a filename (the record's path)"
                ))
            })?;
            files.push((path, bytes.to_vec()));
        }
    }
    let (file, text) = record_text.ok_or_else(|| unprocessable("no `record` part"))?;
    let record: EvidenceRecord = stagegate_load::parse_yaml(std::path::Path::new(&file), &text, 0)
        .map_err(|e| unprocessable(e.to_string()))?;
    record
        .validate()
        .map_err(|(field, msg)| unprocessable(format!("{file}: {field}: {msg}")))?;
    let kind = record.kind.as_str();
    let known = people_of(&app, &id).await?;
    check(&caller, Action::PushEvidence(kind), &id, known.as_ref())?;
    let mut attachments = Vec::new();
    for a in &record.attachments {
        let Some(pos) = files.iter().position(|(p, _)| *p == a.path) else {
            return Err(unprocessable(format!(
                "{file}: attachments: {} has no part (send it with filename=\"{}\")",
                a.path, a.path
            )));
        };
        let (path, bytes) = files.swap_remove(pos);
        let sha256 = stagegate_core::digest::sha256_hex(&bytes);
        if !a.sha256.eq_ignore_ascii_case(&sha256) {
            return Err(unprocessable(format!(
                "{file}: attachments: {path}: its bytes hash to {sha256}, the record says {}",
                a.sha256
            )));
        }
        attachments.push((
            AttachmentRef {
                path,
                sha256,
                size: bytes.len() as u64,
            },
            bytes,
        ));
    }
    if let Some((p, _)) = files.first() {
        return Err(unprocessable(format!(
            "{file}: the part {p} is not an attachment the record names"
        )));
    }
    let json = serde_json::to_value(&record).map_err(|e| unprocessable(e.to_string()))?;
    let event = app
        .registry
        .record_evidence(
            &id,
            &json,
            attachments,
            &act(&app, &caller, Some(today(&app))),
        )
        .await?;
    app.cache.invalidate();
    Ok((
        StatusCode::CREATED,
        Json(Recorded {
            event,
            message: format!("{id}: {kind} evidence of {} recorded", record.date),
        }),
    ))
}

/// Signs off the agent's latest recorded review (item 10). The signature must be the
/// caller's own, by a key the allowed-signers file gives the card's person for the role,
/// over the statement rebuilt from that review (`stagegate signoff --print-statement`).
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/signoffs",
    tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    request_body = SignoffBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Recorded", body = Recorded),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed, or the signer is not the caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No review to sign", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The signature does not verify", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn sign_off(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    Json(body): Json<SignoffBody>,
) -> Result<(StatusCode, Json<Recorded>), Problem> {
    let known = people_of(&app, &id).await?;
    check(&caller, Action::SignOff, &id, known.as_ref())?;
    let role = match body.role.as_str() {
        "builder" => SignoffRole::Builder,
        "coe_lead" => SignoffRole::CoeLead,
        "peer_approver" => SignoffRole::PeerApprover,
        r => {
            return Err(unprocessable(format!(
                "role: {r:?} is not builder, coe_lead or peer_approver"
            )));
        }
    };
    let snap = app.cache.snapshot().await?;
    let review = snap
        .state
        .agents
        .get(&id)
        .and_then(|a| a.latest_review.clone())
        .ok_or_else(|| {
            Problem::from(stagegate_registry::RegistryError::Rule(format!(
                "{id} has no review to sign"
            )))
        })?;
    let people = known.ok_or_else(|| unprocessable("the latest review names no people"))?;
    let person = signing::signer_for_people(&people, role).map_err(forbidden)?;
    if !caller.is(person) {
        return Err(forbidden(format!(
            "{} signs as {}; this credential is {}'s",
            person.name,
            role.title(),
            caller.person
        )));
    }
    let subject: signing::SignoffSubject = serde_json::from_value(
        review
            .get("signoff_subject")
            .cloned()
            .unwrap_or(Value::Null),
    )
    .map_err(|e| unprocessable(format!("the latest review has no sign-off subject: {e}")))?;
    let on: jiff::civil::Date = review
        .get("review_date")
        .and_then(Value::as_str)
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| unprocessable("the latest review has no review_date"))?;
    let statement = signing::signoff_statement(&subject, role, &person.name, on);
    let allowed = app.allowed_signers.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-allowed-signers",
            "Signatures cannot be checked",
        )
        .detail("this server has no allowed-signers file (`allowed_signers:` in its configuration)")
    })?;
    let verified = signing::check_recorded(
        Some(&allowed.1),
        person,
        &statement,
        Some(&body.signature),
        on,
        today(&app),
    )
    .map_err(|why| {
        unprocessable(format!(
            "the signature does not count as {} {}'s: {why}",
            role.title(),
            person.name
        ))
    })?;
    let event = app
        .registry
        .record_signoff(
            &id,
            &id,
            signing::role_key(role),
            &person.name,
            &subject.review_digest,
            &statement,
            &body.signature,
            &verified.fingerprint,
            &act(&app, &caller, Some(on)),
        )
        .await?;
    app.cache.invalidate();
    Ok((
        StatusCode::CREATED,
        Json(Recorded {
            event,
            message: format!(
                "{id}: {} sign-off by {} over review {} recorded (review again to count it)",
                role.title(),
                person.name,
                subject.review_digest
            ),
        }),
    ))
}

/// Moves the agent from Pilot to Production on its latest review, re-verifying its
/// sign-offs against the server's allowed-signers file (as `stagegate promote`).
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/promote",
    tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    request_body = PromoteBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Promoted", body = Recorded),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Refused by a registry rule (not Cleared, unsigned, not in Pilot)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn promote(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    Json(body): Json<PromoteBody>,
) -> Result<Json<Recorded>, Problem> {
    let known = people_of(&app, &id).await?;
    check(&caller, Action::ChangeStage, &id, known.as_ref())?;
    let on = date(body.as_of.as_deref(), &app)?;
    let allowed = app.allowed_signers.clone().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-allowed-signers",
            "Signatures cannot be checked",
        )
        .detail("this server has no allowed-signers file (`allowed_signers:` in its configuration)")
    })?;
    let review = app
        .registry
        .promote(
            &id,
            &act(&app, &caller, Some(on)),
            &[],
            |stored, recorded| {
                let s: signing::SignedReview = serde_json::from_value(stored.clone())
                    .map_err(|e| format!("the stored review has no sign-off subject: {e}"))?;
                signing::reverify(&s, &allowed.1, recorded)
            },
        )
        .await?;
    app.cache.invalidate();
    Ok(Json(Recorded {
        event: app.registry.size().await?,
        message: format!("{id}: Pilot → Production on {on} (review: event #{review})"),
    }))
}

/// An approval submitted through the API: the record `stagegate approve` writes
/// (`kind: approval`, its `approval:` block and `signature:`), as YAML.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ApprovalBody {
    /// The record's YAML.
    pub record: String,
}

/// Records a signed approval: a criteria change (the sponsor or the CoE lead, never the
/// builder) or the sponsor's risk acceptance of open items. The signature must be the
/// caller's, by a key the allowed-signers file gives the card's person, over the statement
/// rebuilt here: for a criteria change from the record's criteria digest; for a risk
/// acceptance from the open items of the agent's latest recorded review (seed 001 decision
/// matrix: "explicit risk acceptance from sponsor").
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/approvals",
    tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    request_body = ApprovalBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Recorded", body = Recorded),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed, or the approver is not the caller", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an approval record, or its signature does not verify", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn approve(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    Json(body): Json<ApprovalBody>,
) -> Result<(StatusCode, Json<Recorded>), Problem> {
    let known = people_of(&app, &id).await?;
    check(&caller, Action::Approve, &id, known.as_ref())?;
    let file = std::path::Path::new("approval.yaml");
    let record: EvidenceRecord = stagegate_load::parse_yaml(file, &body.record, 0)
        .map_err(|e| unprocessable(e.to_string()))?;
    record
        .validate()
        .map_err(|(field, msg)| unprocessable(format!("approval.yaml: {field}: {msg}")))?;
    let (Some(a), Some(signature)) = (&record.approval, &record.signature) else {
        return Err(unprocessable(
            "approval.yaml: an approval record with its `approval:` block and `signature:`",
        ));
    };
    let people = known.ok_or_else(|| unprocessable("the registry knows no card for this agent"))?;
    let snap = app.cache.snapshot().await?;
    let agent = snap
        .state
        .agents
        .get(&id)
        .ok_or_else(|| Problem::not_found(format!("no agent {id} in the registry")))?;
    use stagegate_core::evidence::ApprovalSubject;
    // Who approves, and whether that is the caller, before anything else is looked at.
    let person = match a.subject {
        ApprovalSubject::CriteriaChange => signing::criteria_change_approver_people(&people, &a.by),
        ApprovalSubject::RiskAcceptance => signing::risk_acceptor_people(&people, &a.by),
    }
    .map_err(forbidden)?;
    if !caller.is(person) {
        return Err(forbidden(format!(
            "this approval is {}'s; this credential is {}'s",
            person.name, caller.person
        )));
    }
    let statement = match a.subject {
        ApprovalSubject::CriteriaChange => {
            let digest = a
                .criteria_digest
                .as_deref()
                .ok_or_else(|| unprocessable("approval.yaml: approval.criteria_digest: missing"))?;
            signing::criteria_change_statement(&id, digest, &person.name, record.date)
        }
        ApprovalSubject::RiskAcceptance => {
            let review = agent.latest_review.as_ref().ok_or_else(|| {
                unprocessable("a risk acceptance needs a recorded review with open items")
            })?;
            let opens: Vec<stagegate_core::review::OpenItem> =
                serde_json::from_value(review.get("open_items").cloned().unwrap_or_default())
                    .map_err(|e| unprocessable(format!("the latest review's open items: {e}")))?;
            if let Some(bare) = a
                .items
                .iter()
                .find(|i| !opens.iter().any(|o| o.item == **i))
            {
                return Err(unprocessable(format!(
                    "item {bare} has no open item in the latest review; a sponsor accepts owned open items"
                )));
            }
            let version = review
                .pointer("/agent/version")
                .and_then(Value::as_str)
                .unwrap_or_default();
            signing::risk_acceptance_statement(
                &id,
                version,
                &a.items,
                &opens,
                &person.name,
                record.date,
            )
        }
    };
    let allowed = app.allowed_signers.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-allowed-signers",
            "Signatures cannot be checked",
        )
        .detail("this server has no allowed-signers file (`allowed_signers:` in its configuration)")
    })?;
    signing::check_recorded(
        Some(&allowed.1),
        person,
        &statement,
        Some(signature),
        record.date,
        today(&app),
    )
    .map_err(|why| {
        unprocessable(format!(
            "the signature does not count as {}'s: {why}",
            person.name
        ))
    })?;
    let json = serde_json::to_value(&record).map_err(|e| unprocessable(e.to_string()))?;
    let event = app
        .registry
        .record_evidence(
            &id,
            &json,
            Vec::new(),
            &act(&app, &caller, Some(record.date)),
        )
        .await?;
    app.cache.invalidate();
    Ok((
        StatusCode::CREATED,
        Json(Recorded {
            event,
            message: format!("{id}: approval by {} recorded", person.name),
        }),
    ))
}

/// What the latest review still needs signed: one row per sign-off role, signed or not and
/// why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SignoffNeed {
    /// `builder`, `coe_lead` or `peer_approver`.
    pub role: String,
    /// The card's person for the role.
    pub name: String,
    /// Whether the review holds a valid sign-off for it.
    pub signed: bool,
    /// Why not, when not.
    pub note: Option<String>,
    /// Sign-offs recorded through the API after the review, over its digest (they count at
    /// the next review).
    pub recorded_since: Vec<i64>,
}

/// The latest review's sign-off table: who still has to sign (seed 001 item 10).
#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}/signoffs",
    tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One row per role", body = Vec<SignoffNeed>),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent, or no review yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn signoffs_needed(
    State(app): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<SignoffNeed>>, Problem> {
    let snap = app.cache.snapshot().await?;
    let a = snap
        .state
        .agents
        .get(&id)
        .ok_or_else(|| Problem::not_found(format!("no agent {id} in the registry")))?;
    let review = a
        .latest_review
        .as_ref()
        .ok_or_else(|| Problem::not_found(format!("{id} has no review yet")))?;
    let rows: Vec<stagegate_core::review::SignoffRow> =
        serde_json::from_value(review.get("signoffs").cloned().unwrap_or_default())
            .map_err(|e| unprocessable(format!("the latest review's sign-offs: {e}")))?;
    let last = a.reviews.last().map_or(0, |r| r.id);
    Ok(Json(
        rows.into_iter()
            .map(|r| {
                let role = signing::role_key(r.role_key).to_owned();
                SignoffNeed {
                    recorded_since: a
                        .signoffs
                        .iter()
                        .filter(|s| s.seq > last && s.role == role)
                        .map(|s| s.seq)
                        .collect(),
                    role,
                    name: r.name,
                    signed: r.signed,
                    note: r.note,
                }
            })
            .collect(),
    ))
}

/// A pause, resume or retirement.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct StageChangeBody {
    /// Why (required): the incident, the kill-switch drill, the decision to retire.
    pub reason: String,
    /// Effective date, `YYYY-MM-DD`; default today (UTC).
    #[serde(default)]
    pub as_of: Option<String>,
}

async fn change_stage(
    app: &AppState,
    id: &str,
    caller: &Caller,
    action: Action<'_>,
    change: stagegate_registry::StageChange,
    body: &StageChangeBody,
) -> Result<Json<Recorded>, Problem> {
    let known = people_of(app, id).await?;
    check(caller, action, id, known.as_ref())?;
    let on = date(body.as_of.as_deref(), app)?;
    let event = app
        .registry
        .change_stage(id, change, &body.reason, &act(app, caller, Some(on)))
        .await?;
    app.cache.invalidate();
    Ok(Json(Recorded {
        event,
        message: format!("{id} {} on {on}: {}", change.done(), body.reason.trim()),
    }))
}

/// Pauses a pilot or production agent (the kill switch pulled, an incident): admin,
/// coe-lead, or the agent's named on-call.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/pause",
    tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    request_body = StageChangeBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Paused", body = Recorded),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Its stage does not allow it", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn pause(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    Json(body): Json<StageChangeBody>,
) -> Result<Json<Recorded>, Problem> {
    change_stage(
        &app,
        &id,
        &caller,
        Action::Pause,
        stagegate_registry::StageChange::Pause,
        &body,
    )
    .await
}

/// Resumes a paused agent to the stage it was paused from: admin or coe-lead, never the
/// agent's builder.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/resume",
    tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    request_body = StageChangeBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Resumed", body = Recorded),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not paused", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resume(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    Json(body): Json<StageChangeBody>,
) -> Result<Json<Recorded>, Problem> {
    // Resuming puts the agent back in front of its users (its flag leaves DISABLED): never
    // its own builder's call, whatever their other roles (as the rollout acts that widen it).
    if let Some(p) = people_of(&app, &id).await?
        && caller.is(&p.builder)
    {
        return Err(forbidden(format!(
            "{} built {id} and may not resume it, whatever their other roles: an admin or another CoE lead may",
            p.builder.name
        )));
    }
    change_stage(
        &app,
        &id,
        &caller,
        Action::ChangeStage,
        stagegate_registry::StageChange::Resume,
        &body,
    )
    .await
}

/// Retires an agent for good: admin, coe-lead, or the agent's sponsor.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/retire",
    tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    request_body = StageChangeBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Retired", body = Recorded),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already retired, or no stage", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retire(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    Json(body): Json<StageChangeBody>,
) -> Result<Json<Recorded>, Problem> {
    change_stage(
        &app,
        &id,
        &caller,
        Action::Retire,
        stagegate_registry::StageChange::Retire,
        &body,
    )
    .await
}
