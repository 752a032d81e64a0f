//! The read side of `/api/v1`: agents (list with filters, one agent), an agent's history, and
//! verification of the whole event log. Every answer is derived from the replayed, verified
//! log; nothing is read from an editable column.

use crate::AppState;
use crate::problem::Problem;
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stagegate_auth::Caller;
use stagegate_registry::{AgentState, AttachmentRef, EvidenceEntry, HistoryEntry, StageEvent};
use utoipa::{IntoParams, ToSchema};

/// An agent as the portfolio lists it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentView {
    /// `agent-<dept>-<slug>`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `pilot` or `production`; `null` before `pilot start`.
    pub stage: Option<String>,
    /// Effective date (`YYYY-MM-DD`) of the latest stage change.
    pub stage_since: Option<String>,
    /// The department, from the id.
    pub department: String,
    /// Risk tier from the latest review (`low`, `medium`, `high`).
    pub tier: Option<String>,
    /// Lane from the latest review (`startup`, `scale`, `regulated`).
    pub lane: Option<String>,
    /// The builder named on the latest reviewed card (the agent's owner).
    pub owner: Option<String>,
    /// The latest review, if any.
    pub last_review: Option<ReviewView>,
}

/// One recorded review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReviewView {
    /// Its event number in the log.
    pub event: i64,
    /// Review date, `YYYY-MM-DD`.
    pub review_date: String,
    /// `Cleared`, `Conditional` or `Blocked`.
    pub decision: String,
    /// Item statuses, `1:pass 2:open …`.
    pub items: String,
    /// The review digest (`sha256:…`).
    pub digest: String,
    /// Agent version reviewed.
    pub version: String,
    /// Recording time, RFC 3339 (with ` (STAGEGATE_NOW)` in a replay registry).
    pub recorded_at: String,
}

impl From<&HistoryEntry> for ReviewView {
    fn from(h: &HistoryEntry) -> ReviewView {
        ReviewView {
            event: h.id,
            review_date: h.review_date.clone(),
            decision: h.decision.clone(),
            items: h.items.clone(),
            digest: h.digest.clone(),
            version: h.version.clone(),
            recorded_at: h.recorded_at.clone(),
        }
    }
}

/// A stage change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StageView {
    /// Its event number.
    pub event: i64,
    /// The new stage.
    pub stage: String,
    /// Effective date.
    pub at: String,
    /// Who recorded it.
    pub by: String,
    /// The review it rests on (event number), for a promotion.
    pub review_event: Option<i64>,
}

impl From<&StageEvent> for StageView {
    fn from(s: &StageEvent) -> StageView {
        StageView {
            event: s.seq,
            stage: s.stage.clone(),
            at: s.at.clone(),
            by: s.by.clone(),
            review_event: s.review_id,
        }
    }
}

/// The criteria lock taken at pilot start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LockView {
    /// `sha256:` of the success criteria.
    pub digest: String,
    /// Its `--as-of` date.
    pub locked_at: String,
    /// When it was really recorded (RFC 3339).
    pub recorded_at: Option<String>,
    /// Who locked them.
    pub by: String,
}

/// One agent in full: the summary, its lock, every review and stage change, and the latest
/// review's open items.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentDetail {
    /// The summary.
    #[serde(flatten)]
    pub agent: AgentView,
    /// The criteria lock.
    pub criteria_lock: Option<LockView>,
    /// Reviews, oldest first.
    pub reviews: Vec<ReviewView>,
    /// Stage changes, oldest first.
    pub stages: Vec<StageView>,
    /// Evidence pushed to the server, oldest first.
    pub evidence: Vec<EvidenceView>,
    /// The latest review's open items (`Review.open_items`: item, what, owner, due, source,
    /// problems).
    #[schema(value_type = Vec<Object>)]
    pub open_items: Vec<Value>,
}

/// Filters of `GET /api/v1/agents`; each given one must match exactly.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentFilter {
    /// `pilot` or `production`.
    pub stage: Option<String>,
    /// `low`, `medium` or `high`.
    pub tier: Option<String>,
    /// `startup`, `scale` or `regulated`.
    pub lane: Option<String>,
    /// Department (the id's second part).
    pub department: Option<String>,
    /// The builder's name.
    pub owner: Option<String>,
}

fn view(id: &str, a: &AgentState, review: Option<&Value>) -> AgentView {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    AgentView {
        id: id.to_owned(),
        name: a.name.clone(),
        stage: a.stage.map(|s| s.as_str().to_owned()),
        stage_since: a.stages.last().map(|s| s.at.clone()),
        department: id.split('-').nth(1).unwrap_or_default().to_owned(),
        tier: s(review.and_then(|r| r.pointer("/agent/tier"))),
        lane: s(review.and_then(|r| r.pointer("/agent/lane"))),
        owner: s(review.and_then(|r| r.pointer("/operations/people/builder/name"))),
        last_review: a.reviews.last().map(ReviewView::from),
    }
}

/// Every agent in the registry, filtered, by id.
#[utoipa::path(
    get,
    path = "/api/v1/agents",
    tag = "agents",
    params(AgentFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Agents by id", body = Vec<AgentView>),
        (status = 500, description = "The registry does not verify", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The registry is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_agents(
    State(app): State<AppState>,
    _caller: Caller,
    Query(f): Query<AgentFilter>,
) -> Result<Json<Vec<AgentView>>, Problem> {
    let snap = app.cache.snapshot().await?;
    let state = &snap.state;
    let keep = |want: &Option<String>, have: &Option<String>| {
        want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
    };
    Ok(Json(
        state
            .agents
            .iter()
            .map(|(id, a)| view(id, a, a.latest_review.as_ref()))
            .filter(|v| {
                keep(&f.stage, &v.stage)
                    && keep(&f.tier, &v.tier)
                    && keep(&f.lane, &v.lane)
                    && keep(&f.owner, &v.owner)
                    && f.department.as_ref().is_none_or(|d| *d == v.department)
            })
            .collect(),
    ))
}

/// One agent: stage, criteria lock, reviews, stage changes and open items.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}",
    tag = "agents",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Agent id, `agent-<dept>-<slug>`")),
    responses(
        (status = 200, description = "The agent", body = AgentDetail),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The registry does not verify", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The registry is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_agent(
    State(app): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AgentDetail>, Problem> {
    let snap = app.cache.snapshot().await?;
    let a = snap
        .state
        .agents
        .get(&id)
        .ok_or_else(|| Problem::not_found(format!("no agent {id} in the registry")))?;
    let review = a.latest_review.as_ref();
    Ok(Json(AgentDetail {
        agent: view(&id, a, review),
        criteria_lock: a.lock.as_ref().map(|l| LockView {
            digest: l.digest.clone(),
            locked_at: l.locked_at.to_string(),
            recorded_at: l.recorded_at.map(|t| t.to_string()),
            by: l.by.clone(),
        }),
        reviews: a.reviews.iter().map(ReviewView::from).collect(),
        stages: a.stages.iter().map(StageView::from).collect(),
        evidence: a.evidence.iter().map(EvidenceView::from).collect(),
        open_items: review
            .and_then(|r| r.get("open_items"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    }))
}

/// An evidence record pushed to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EvidenceView {
    /// Its event number.
    pub event: i64,
    /// Checklist items it supports.
    pub items: Vec<u8>,
    /// Its kind.
    pub kind: String,
    /// Evidence date.
    pub date: String,
    /// When it was recorded (RFC 3339).
    pub recorded_at: String,
    /// Who pushed it (`person (credential)`).
    pub by: String,
    /// Attachments: path, sha256 (fetch at `/api/v1/blobs/{sha256}`), size in bytes.
    pub attachments: Vec<AttachmentView>,
}

/// An attachment of an evidence record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AttachmentView {
    /// The record's path for it.
    pub path: String,
    /// Lowercase hex sha256 of its bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

impl From<&AttachmentRef> for AttachmentView {
    fn from(a: &AttachmentRef) -> AttachmentView {
        AttachmentView {
            path: a.path.clone(),
            sha256: a.sha256.clone(),
            size: a.size,
        }
    }
}

impl From<&EvidenceEntry> for EvidenceView {
    fn from(e: &EvidenceEntry) -> EvidenceView {
        EvidenceView {
            event: e.seq,
            items: e.items.clone(),
            kind: e.kind.clone(),
            date: e.date.clone(),
            recorded_at: e.recorded_at.clone(),
            by: e.by.clone(),
            attachments: e.attachments.iter().map(AttachmentView::from).collect(),
        }
    }
}

/// Filter of an agent's evidence list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvidenceFilter {
    /// Only records supporting this checklist item (1–10).
    pub item: Option<u8>,
}

/// An agent's evidence pushed to the server, oldest first, optionally for one item.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}/evidence",
    tag = "evidence",
    params(("id" = String, Path, description = "Agent id"), EvidenceFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Evidence records", body = Vec<EvidenceView>),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_evidence(
    State(app): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    Query(f): Query<EvidenceFilter>,
) -> Result<Json<Vec<EvidenceView>>, Problem> {
    let snap = app.cache.snapshot().await?;
    let a = snap
        .state
        .agents
        .get(&id)
        .ok_or_else(|| Problem::not_found(format!("no agent {id} in the registry")))?;
    Ok(Json(
        a.evidence
            .iter()
            .filter(|e| f.item.is_none_or(|i| e.items.contains(&i)))
            .map(EvidenceView::from)
            .collect(),
    ))
}

/// An attachment's bytes, by the sha256 an evidence record names.
#[utoipa::path(
    get,
    path = "/api/v1/blobs/{sha256}",
    tag = "evidence",
    params(("sha256" = String, Path, description = "Lowercase hex sha256")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The bytes", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such attachment", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_blob(
    State(app): State<AppState>,
    _caller: Caller,
    Path(sha256): Path<String>,
) -> Result<impl axum::response::IntoResponse, Problem> {
    let bytes = app
        .registry
        .store()
        .blob(&sha256.to_ascii_lowercase())
        .await
        .map_err(|e| {
            Problem::from(stagegate_registry::RegistryError::Database {
                path: String::new(),
                source: e,
            })
        })?
        .ok_or_else(|| Problem::not_found(format!("no attachment {sha256}")))?;
    // Content-addressed: the bytes are checked against their name before they are served.
    if stagegate_core::digest::sha256_hex(&bytes) != sha256.to_ascii_lowercase() {
        return Err(Problem::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "attachment-does-not-verify",
            "The stored attachment does not match its sha256",
        ));
    }
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        bytes,
    ))
}

/// Every recorded review (all agents, or one), oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/history",
    tag = "registry",
    params(HistoryFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reviews, oldest first", body = Vec<ReviewView>),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn history(
    State(app): State<AppState>,
    _caller: Caller,
    Query(f): Query<HistoryFilter>,
) -> Result<Json<Vec<ReviewView>>, Problem> {
    let snap = app.cache.snapshot().await?;
    let mut out: Vec<ReviewView> = snap
        .state
        .agents
        .iter()
        .filter(|(id, _)| f.agent.as_ref().is_none_or(|a| a == *id))
        .flat_map(|(_, a)| a.reviews.iter().map(ReviewView::from))
        .collect();
    out.sort_by_key(|r| r.event);
    Ok(Json(out))
}

/// Filter of the history.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryFilter {
    /// One agent's id.
    pub agent: Option<String>,
}

/// A signed checkpoint of the log's head, to keep outside the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CheckpointView {
    /// The checkpoint text `stagegate verify --checkpoint` reads.
    pub text: String,
    /// Events covered.
    pub size: i64,
    /// Head hash.
    pub head: String,
}

/// A checkpoint (event count and head hash, signed with the registry key) after a full
/// verification.
#[utoipa::path(
    get,
    path = "/api/v1/checkpoint",
    tag = "registry",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The checkpoint", body = CheckpointView),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn checkpoint(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<CheckpointView>, Problem> {
    stagegate_auth::authorize(&caller, stagegate_auth::Action::Checkpoint, None, None)
        .map_err(|d| crate::auth::forbidden(d.0))?;
    let c = app.registry.checkpoint().await?;
    Ok(Json(CheckpointView {
        text: c.to_text(),
        size: c.size,
        head: c.head,
    }))
}

/// What `verify` established over the whole log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct VerificationView {
    /// Events verified.
    pub events: i64,
    /// Hash of the newest event.
    pub head: String,
    /// `SHA256:…` of the registry key.
    pub key_fingerprint: String,
    /// Whether this is a replay registry (created under `STAGEGATE_NOW`).
    pub replay_clock: bool,
}

/// Verifies every event: sequence, chain, hashes, registry signatures and the log's rules.
#[utoipa::path(
    get,
    path = "/api/v1/verify",
    tag = "registry",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The log verifies", body = VerificationView),
        (status = 500, description = "The registry does not verify (the first bad event is named)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The registry is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn verify(
    State(app): State<AppState>,
    _caller: Caller,
) -> Result<Json<VerificationView>, Problem> {
    let v = app.cache.full_verify().await?;
    Ok(Json(VerificationView {
        events: v.events,
        head: v.head,
        key_fingerprint: v.key_fingerprint,
        replay_clock: v.replay_clock,
    }))
}

/// Liveness: the process answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Health {
    /// `ok`; `degraded` when the registry cannot be read and the flags are served from the
    /// last known state.
    pub status: String,
    /// What the flags are served from, when degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<String>,
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Up", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        flags: None,
    })
}

/// Ready to serve: the database answers, its migrations were applied, and the log verified
/// into the snapshot reads are served from.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready (`ok`), or serving the last known flags while the registry is unreachable (`degraded`)", body = Health),
        (status = 500, description = "The registry does not verify", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database does not answer", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<Health>, Problem> {
    let live = async {
        app.registry.ping().await?;
        // Ready means a verified snapshot to serve from (the first one verifies the whole log).
        app.cache.snapshot().await
    }
    .await;
    match live {
        Ok(_) => Ok(Json(Health {
            status: "ok".into(),
            flags: None,
        })),
        // The database is gone but flags were built: they keep being served, and this says so.
        Err(stagegate_registry::RegistryError::Database { .. }) if app.flags.is_built() => {
            let view = app.flags.view();
            let since = app
                .flags
                .stale_since()
                .map_or_else(|| "now".to_owned(), |t| t.to_string());
            Ok(Json(Health {
                status: "degraded".into(),
                flags: Some(format!(
                    "the registry is unreachable (since {since}); serving the last known flags: {} flags as of event {}, built {}",
                    view.set.len(),
                    view.size,
                    view.built_at
                )),
            }))
        }
        Err(e) => Err(e.into()),
    }
}
