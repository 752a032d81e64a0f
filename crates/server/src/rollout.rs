//! Rollouts over HTTP: the state and what the controller sees (`GET …/rollout`), the signed
//! acts of people (`POST …/rollout/{act}`: start, advance, pause, resume, abort, kill,
//! restore, drill), live telemetry in OTLP/HTTP JSON (`POST /v1/traces`; polled sources are
//! in [`crate::poll`]) and the controller that judges it.
//!
//! The controller keeps no state of its own: each batch of spans is summarised into a
//! `stagegate_rollout::Tally` and stored (`rollout_tallies`), then the phase's tallies are
//! read back in storage order and judged, so every replica decides from the same rows and a
//! restart loses nothing. A decision is an event written under the log's lock; a replica that
//! loses the race gets a rule refusal and lets it go. A ticker judges running rollouts once a
//! second for windows that end without new telemetry.

use crate::AppState;
use crate::auth::forbidden;
use crate::problem::Problem;
use crate::writes::{Recorded, act, check, people_of, today, unprocessable};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value as J;
use stagegate_auth::{Action, Caller};
use stagegate_core::card::{People, Person};
use stagegate_core::signing::{self, RolloutAct};
use stagegate_registry::{Act, Clock, KillState, RegistryError, SignedAct};
use stagegate_rollout::{
    Arm, Controller, Fields, Outlook, Rollout, RolloutPlan, Tally, Transition,
};
use utoipa::ToSchema;

/// An agent's rollout, kill switch and what the controller sees now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RolloutView {
    /// Agent id.
    pub agent: String,
    /// The latest rollout (plan, phase, status, window start, epoch), if any.
    #[schema(value_type = Option<Object>)]
    pub rollout: Option<Rollout>,
    /// Who gets the agent now (`nobody`, `percent`, `cohorts`, `everyone`).
    #[schema(value_type = Option<Object>)]
    pub exposure: Option<stagegate_rollout::Exposure>,
    /// The kill switch, when pulled.
    #[schema(value_type = Option<Object>)]
    pub kill: Option<KillState>,
    /// The agent's latest rollout or kill-switch event: the `after-event` a signed act names.
    pub after_event: i64,
    /// The controller's view of the current phase: events per arm, window and sample left,
    /// each trigger's judgement.
    #[schema(value_type = Option<Object>)]
    pub outlook: Option<Outlook>,
    /// The last poll of each polled telemetry source of the agent, as this replica saw it
    /// (empty when its telemetry is only pushed).
    pub telemetry_sources: Vec<crate::poll::PollStatus>,
}

/// A person's signed act.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ActBody {
    /// The plan (start only): the `rollout:` section as JSON.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub plan: Option<RolloutPlan>,
    /// Why, in words.
    pub reason: String,
    /// The statement's date, `YYYY-MM-DD`.
    pub date: String,
    /// The armored SSHSIG (`ssh-keygen -Y sign -n stagegate`) over the statement
    /// `GET …/rollout/statement` gives.
    pub signature: String,
    /// For `drill`: `pull` or `restore` (one signature covers both).
    #[serde(default)]
    pub drill: Option<String>,
}

/// The statement a caller signs for an act.
#[derive(Debug, Clone, Deserialize, ToSchema, utoipa::IntoParams)]
pub struct StatementQuery {
    /// The act.
    pub act: String,
    /// Why.
    pub reason: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// The plan's digest (start only).
    #[serde(default)]
    pub plan_digest: Option<String>,
}

async fn view(app: &AppState, id: &str) -> Result<RolloutView, Problem> {
    let snap = app.cache.snapshot().await?;
    let a = snap.state.agents.get(id).ok_or_else(|| {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found")
            .detail(format!("{id} is not in the registry"))
    })?;
    let outlook = match a.rollout.as_ref() {
        Some(r) if r.is_active() => Some(controller(app, id, r).await?.outlook(r, (app.clock)())),
        _ => None,
    };
    Ok(RolloutView {
        agent: id.to_owned(),
        exposure: a.rollout.as_ref().map(Rollout::exposure),
        rollout: a.rollout.clone(),
        kill: a.kill.clone(),
        after_event: a.act_seq,
        outlook,
        telemetry_sources: app.polls.of(id),
    })
}

/// The agent's rollout, kill switch and the controller's outlook.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}/rollout",
    tag = "rollout",
    params(("id" = String, Path, description = "Agent id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The rollout", body = RolloutView),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_rollout(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Json<RolloutView>, Problem> {
    check(&caller, Action::Read, &id, None)?;
    Ok(Json(view(&app, &id).await?))
}

/// The card's person the caller is, allowed to sign `act`.
fn signer<'a>(caller: &Caller, people: &'a People, act: RolloutAct) -> Result<&'a Person, Problem> {
    let everyone = [
        &people.builder,
        &people.coe_lead,
        &people.sponsor,
        &people.on_call.primary,
        &people.on_call.backup,
    ];
    let me = everyone.into_iter().find(|p| caller.is(p)).ok_or_else(|| {
        // Say who may, as the card names them.
        let who = signing::rollout_actor_people(people, act, &caller.person)
            .err()
            .and_then(|e| e.split_once("; ").map(|(_, who)| who.to_owned()))
            .unwrap_or_default();
        forbidden(format!(
            "{} is not the card's builder, CoE lead, sponsor or on-call, who sign rollout acts; to {} this agent's rollout: {who}",
            caller.person,
            act.as_str()
        ))
    })?;
    signing::rollout_actor_people(people, act, &me.name).map_err(forbidden)
}

fn parse_act(s: &str) -> Result<RolloutAct, Problem> {
    RolloutAct::parse(s).ok_or_else(|| {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(format!(
            "{s:?} is not an act (start, advance, pause, resume, abort, kill, restore, drill)"
        ))
    })
}

/// What the current (or latest) kill-switch drill of the agent's flag measured on this
/// replica: each expected client's and stream's time from the pull to seeing `DISABLED`.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}/drill",
    tag = "rollout",
    params(("id" = String, Path, description = "Agent id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The drill's measurement on this replica", body = crate::drill::DrillReport),
        (status = 404, description = "No drill of this agent's flag watched here", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn drill_report(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Json<crate::drill::DrillReport>, Problem> {
    check(&caller, Action::Read, &id, None)?;
    let snap = app.cache.snapshot().await?;
    let flag = snap
        .state
        .agents
        .get(&id)
        .and_then(|a| a.rollout.as_ref())
        .map(|r| r.plan.flag.clone())
        .ok_or_else(|| Problem::not_found(format!("{id} has no rollout, so no flag")))?;
    app.drills
        .report(&flag)
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no drill of {flag} watched on this replica")))
}

/// The statement the caller signs for an act on this agent now.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}/rollout/statement",
    tag = "rollout",
    params(("id" = String, Path, description = "Agent id"), StatementQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The statement, as text", body = String, content_type = "text/plain"),
        (status = 403, description = "The caller may not sign this act", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn statement(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    axum::extract::Query(q): axum::extract::Query<StatementQuery>,
) -> Result<String, Problem> {
    let kind = parse_act(&q.act)?;
    let people = people_of(&app, &id)
        .await?
        .ok_or_else(|| unprocessable(format!("{id} has no card with people")))?;
    let person = signer(&caller, &people, kind)?;
    let date = q
        .date
        .parse()
        .map_err(|_| unprocessable(format!("date: {:?} is not YYYY-MM-DD", q.date)))?;
    let snap = app.cache.snapshot().await?;
    let a = snap
        .state
        .agents
        .get(&id)
        .ok_or_else(|| unprocessable("no such agent"))?;
    let after = drill_after(kind, a);
    Ok(signing::rollout_act_statement(
        &id,
        kind,
        q.plan_digest
            .as_deref()
            .filter(|_| kind == RolloutAct::Start),
        after,
        &q.reason,
        &person.name,
        date,
    ))
}

/// A drill's restore names the event before its pull, so one signature covers both.
fn drill_after(kind: RolloutAct, a: &stagegate_registry::AgentState) -> i64 {
    match (&a.kill, kind) {
        (Some(k), RolloutAct::Drill) if k.drill => k.after_event,
        _ => a.act_seq,
    }
}

/// A person's signed act: starts, advances, pauses, resumes or aborts the rollout, or pulls
/// or restores the kill switch (or drills it). The signature must be the caller's own, as the
/// card's person allowed to sign the act, over the statement `…/rollout/statement` gives.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/rollout/{act}",
    tag = "rollout",
    params(("id" = String, Path, description = "Agent id"), ("act" = String, Path, description = "start, advance, pause, resume, abort, kill, restore or drill")),
    request_body = ActBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Recorded", body = Recorded),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed, or the signer is not the caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Refused by a rule of the log (not in production, already running, …)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The signature or the plan does not hold", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn post_act(
    State(app): State<AppState>,
    Path((id, act_name)): Path<(String, String)>,
    caller: Caller,
    Json(body): Json<ActBody>,
) -> Result<Json<Recorded>, Problem> {
    let kind = parse_act(&act_name)?;
    let people = people_of(&app, &id).await?;
    check(
        &caller,
        Action::Rollout(kind.as_str()),
        &id,
        people.as_ref(),
    )?;
    let people = people.ok_or_else(|| unprocessable(format!("{id} has no card with people")))?;
    let person = signer(&caller, &people, kind)?.clone();
    let date: jiff::civil::Date = body
        .date
        .parse()
        .map_err(|_| unprocessable(format!("date: {:?} is not YYYY-MM-DD", body.date)))?;
    if body.reason.trim().is_empty() {
        return Err(unprocessable("reason: say why"));
    }
    let plan = match (kind, body.plan) {
        (RolloutAct::Start, Some(p)) => {
            p.validate()
                .map_err(|e| unprocessable(format!("plan: {}: {}", e.field, e.message)))?;
            Some(p)
        }
        (RolloutAct::Start, None) => return Err(unprocessable("plan: a start needs the plan")),
        (_, Some(_)) => return Err(unprocessable("plan: only a start carries a plan")),
        (_, None) => None,
    };
    let digest = plan.as_ref().map(RolloutPlan::digest);
    let snap = app.cache.snapshot().await?;
    let a = snap
        .state
        .agents
        .get(&id)
        .ok_or_else(|| unprocessable(format!("{id} is not in the registry")))?;
    let after = drill_after(kind, a);
    let statement = signing::rollout_act_statement(
        &id,
        kind,
        digest.as_deref(),
        after,
        &body.reason,
        &person.name,
        date,
    );
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
        &person,
        &statement,
        Some(&body.signature),
        date,
        today(&app),
    )
    .map_err(|why| {
        unprocessable(format!(
            "the signature does not count as {}'s {}: {why}",
            person.name,
            kind.as_str()
        ))
    })?;
    let signed = SignedAct {
        act: kind.as_str().into(),
        person: person.name.clone(),
        statement,
        signature: body.signature.clone(),
        key_fingerprint: verified.fingerprint.clone(),
    };
    let who = act(&app, &caller, Some(date));
    let reason = body.reason.trim().to_owned();
    let event = match kind {
        RolloutAct::Kill | RolloutAct::Restore => {
            let disabled = kind == RolloutAct::Kill;
            app.registry
                .set_kill_switch(&id, disabled, false, &reason, signed, &who)
                .await?
        }
        RolloutAct::Drill => {
            let disabled = match body.drill.as_deref() {
                Some("pull") => true,
                Some("restore") => false,
                _ => return Err(unprocessable("drill: say pull or restore")),
            };
            app.registry
                .set_kill_switch(&id, disabled, true, &reason, signed, &who)
                .await?
        }
        _ => {
            let change = match kind {
                RolloutAct::Start => Transition::Start {
                    plan: plan.expect("checked above"),
                    plan_digest: digest.clone().expect("with the plan"),
                },
                // A person's go carries what the controller sees now; the log refuses it
                // before the window's end, below the minimum sample or past a Failed trigger.
                RolloutAct::Advance => match a.rollout.as_ref().filter(|r| r.is_active()) {
                    Some(r) => {
                        let c = controller(&app, &id, r).await?;
                        Transition::Advance {
                            judgements: c.judgements(r),
                            events: Some(c.tally().events),
                        }
                    }
                    None => Transition::Advance {
                        judgements: vec![],
                        events: Some([0, 0]),
                    },
                },
                RolloutAct::Pause => Transition::Pause {
                    reason: reason.clone(),
                    judgements: vec![],
                },
                RolloutAct::Resume => Transition::Resume {
                    reason: reason.clone(),
                },
                _ => Transition::Abort {
                    reason: reason.clone(),
                },
            };
            app.registry
                .rollout_change(&id, change, Some(signed), &who)
                .await?
        }
    };
    // This replica serves the new flags before the act is answered: a kill that returned is
    // in force here (other replicas follow through NOTIFY).
    app.flags_changed().await;
    Ok(Json(Recorded {
        event,
        message: format!(
            "{id}: {} by {} recorded: {reason}",
            kind.as_str(),
            person.name
        ),
    }))
}

fn unavailable(e: sqlx::Error) -> Problem {
    tracing::error!(error = %e, "rollout telemetry store");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "registry-unavailable",
        "The registry is unavailable",
    )
}

/// The controller of `agent`'s rollout, rebuilt from the stored tallies of its current epoch.
pub(crate) async fn controller(
    app: &AppState,
    agent: &str,
    rollout: &Rollout,
) -> Result<Controller, Problem> {
    let rows = app
        .registry
        .store()
        .tallies(agent, rollout.started_seq, i64::from(rollout.epoch))
        .await
        .map_err(unavailable)?;
    let mut c = Controller::new(rollout);
    for row in rows {
        let tally: Tally = serde_json::from_str(&row).map_err(|e| {
            tracing::error!(agent, error = %e, "a stored tally does not read");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "rollout-telemetry-unreadable",
                "Stored rollout telemetry does not read",
            )
        })?;
        c.add(rollout, rollout.epoch, &tally);
    }
    Ok(c)
}

/// Judges `agent`'s running rollout now and records the controller's transition, if any.
/// Returns the event number recorded.
///
/// # Errors
/// Database errors; a transition another replica recorded first is not an error.
pub async fn drive(app: &AppState, agent: &str) -> Result<Option<i64>, Problem> {
    let snap = app.cache.snapshot().await?;
    let Some(r) = snap.state.agents.get(agent).and_then(|a| a.rollout.clone()) else {
        return Ok(None);
    };
    let c = controller(app, agent, &r).await?;
    let now = (app.clock)();
    let Some(change) = c.decide(&r, now) else {
        return Ok(None);
    };
    let who = Act {
        as_of: Some(now.to_zoned(jiff::tz::TimeZone::UTC).date()),
        clock: Clock {
            now,
            overridden: false,
        },
        actor: "stagegate controller".into(),
    };
    tracing::info!(agent, action = change.action(), "rollout controller");
    match app.registry.rollout_change(agent, change, None, &who).await {
        Ok(seq) => {
            app.flags_changed().await;
            Ok(Some(seq))
        }
        Err(RegistryError::Rule(why)) => {
            tracing::debug!(agent, %why, "another replica decided first");
            app.flags_changed().await;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Judges every running rollout once a second (windows that end without new telemetry).
pub async fn ticker(app: AppState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        let Ok(snap) = app.cache.snapshot().await else {
            continue;
        };
        let running: Vec<String> = snap
            .state
            .agents
            .iter()
            .filter(|(_, a)| {
                a.rollout
                    .as_ref()
                    .is_some_and(|r| r.status == stagegate_rollout::Status::Running)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in running {
            if let Err(e) = drive(&app, &id).await {
                tracing::warn!(agent = %id, problem = ?e, "rollout controller");
            }
        }
    }
}

/// One span's fields, for the triggers.
struct Span<'a> {
    span: &'a J,
    resource: Option<&'a J>,
}

/// A field's value as a number: numbers, numeric strings, booleans as 0/1.
pub(crate) fn json_number(v: &J) -> Option<f64> {
    match v {
        J::Number(n) => n.as_f64(),
        J::String(s) => s.trim().parse().ok(),
        J::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Whether a field's value is "set" for a rate trigger (`stagegate_rollout::Fields::is_set`).
pub(crate) fn json_is_set(v: &J) -> bool {
    match v {
        J::Bool(b) => *b,
        J::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        J::String(s) => {
            let s = s.trim();
            !s.is_empty() && s != "ok" && s != "unset"
        }
        _ => false,
    }
}

impl Fields for Span<'_> {
    fn number(&self, field: &str) -> Option<f64> {
        json_number(&stagegate_telemetry::otlp_span_field(
            self.span,
            self.resource,
            field,
        )?)
    }

    fn is_set(&self, field: &str) -> Option<bool> {
        Some(json_is_set(&stagegate_telemetry::otlp_span_field(
            self.span,
            self.resource,
            field,
        )?))
    }
}

/// The OTLP/HTTP answer (`ExportTraceServiceResponse`, proto3 JSON).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportResponse {
    /// Spans not used, and why (absent when every span counted).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub partial_success: Option<J>,
}

/// The flag variant a span was served with (OpenTelemetry feature-flag semantic conventions:
/// `feature_flag.result.variant`, formerly `feature_flag.variant`), for the plan's flag.
fn arm_of(span: &Span<'_>, flag: &str) -> Option<Arm> {
    let get = |k: &str| stagegate_telemetry::otlp_span_field(span.span, span.resource, k);
    let key = get("feature_flag.key")?;
    if key.as_str() != Some(flag) {
        return None;
    }
    let variant = get("feature_flag.result.variant").or_else(|| get("feature_flag.variant"))?;
    match variant.as_str()? {
        "on" => Some(Arm::Treatment),
        "off" => Some(Arm::Control),
        _ => None,
    }
}

/// Receives spans of rolling-out agents (OTLP/HTTP, JSON encoding). A span belongs to the
/// agent its `gen_ai.agent.id` attribute names, else its resource's `service.name`; it counts
/// when it carries the rollout flag's `feature_flag.key` and its variant (`on`: treatment,
/// `off`: control). A span without a readable `endTimeUnixNano`, or one that ended before the
/// phase window's start or more than 5 min ahead of the server's clock, is not counted, nor a
/// span sent twice in one export (same `traceId` and `spanId`). Each agent's batch is stored as one tally and judged
/// at once, so a trigger that crosses its limit rolls the rollout back before this call
/// returns.
#[utoipa::path(
    post,
    path = "/v1/traces",
    tag = "rollout",
    request_body(content = Object, description = "ExportTraceServiceRequest (OTLP/JSON)", content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Received", body = ExportResponse),
        (status = 400, description = "Not an OTLP/JSON trace export", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed to send telemetry for an agent", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn traces(
    State(app): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<Json<ExportResponse>, Problem> {
    use stagegate_auth::Role;
    if ![Role::Admin, Role::CoeLead, Role::Ci]
        .iter()
        .any(|r| caller.has(*r))
    {
        return Err(forbidden(format!(
            "{} may not send telemetry (admin, coe-lead or ci may; never the builder, whose agent the spans judge)",
            caller.person
        )));
    }
    let doc: J = serde_json::from_slice(&body).map_err(|e| {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-otlp", "Not OTLP/JSON")
            .detail(format!("the body is not JSON: {e}"))
    })?;
    let Some(resource_spans) = doc.get("resourceSpans").and_then(J::as_array) else {
        return Err(
            Problem::new(StatusCode::BAD_REQUEST, "invalid-otlp", "Not OTLP/JSON")
                .detail("not an ExportTraceServiceRequest: no `resourceSpans`"),
        );
    };
    let snap = app.cache.snapshot().await?;
    let mut tallies: std::collections::BTreeMap<String, (Rollout, Tally)> = Default::default();
    let mut rejected = 0u64;
    let mut why = std::collections::BTreeSet::new();
    // A span counts in the phase it ended in (clocks may run 5 min ahead), once per export.
    let latest = (app.clock)() + jiff::SignedDuration::from_mins(5);
    let mut seen = std::collections::HashSet::new();
    for rs in resource_spans {
        let resource = rs.get("resource").and_then(|r| r.get("attributes"));
        for scope in rs
            .get("scopeSpans")
            .and_then(J::as_array)
            .into_iter()
            .flatten()
        {
            for span in scope
                .get("spans")
                .and_then(J::as_array)
                .into_iter()
                .flatten()
            {
                let s = Span { span, resource };
                let agent = stagegate_telemetry::otlp_span_field(span, resource, "gen_ai.agent.id")
                    .or_else(|| {
                        stagegate_telemetry::otlp_span_field(
                            span,
                            resource,
                            "resource.service.name",
                        )
                    });
                let Some(agent) = agent.as_ref().and_then(J::as_str) else {
                    rejected += 1;
                    why.insert(
                        "a span names no agent (gen_ai.agent.id or service.name)".to_owned(),
                    );
                    continue;
                };
                if !tallies.contains_key(agent) {
                    let Some(r) = snap
                        .state
                        .agents
                        .get(agent)
                        .and_then(|a| a.rollout.clone())
                        .filter(|r| r.status == stagegate_rollout::Status::Running)
                    else {
                        rejected += 1;
                        why.insert(format!("{agent} has no running rollout"));
                        continue;
                    };
                    let people = people_of(&app, agent).await?;
                    check(&caller, Action::Telemetry, agent, people.as_ref())?;
                    if let Some(p) = people.as_ref().filter(|p| caller.is(&p.builder)) {
                        return Err(forbidden(format!(
                            "{} built {agent} and may not send the telemetry that judges its rollout, whatever their role",
                            p.builder.name
                        )));
                    }
                    let t = Tally::new(&r.plan);
                    tallies.insert(agent.to_owned(), (r, t));
                }
                let (r, t) = tallies.get_mut(agent).expect("inserted above");
                // Ids are hex (OTLP/JSON): compared without case.
                let ids = (
                    span.get("traceId").and_then(J::as_str),
                    span.get("spanId").and_then(J::as_str),
                );
                if let (Some(trace), Some(id)) = ids
                    && !seen.insert((trace.to_ascii_lowercase(), id.to_ascii_lowercase()))
                {
                    rejected += 1;
                    why.insert("a span sent twice in one export".to_owned());
                    continue;
                }
                let end = match span.get("endTimeUnixNano") {
                    Some(J::String(v)) => v.parse::<i128>().ok(),
                    Some(J::Number(n)) => n.as_u64().map(i128::from),
                    _ => None,
                }
                .and_then(|ns| jiff::Timestamp::from_nanosecond(ns).ok());
                let Some(end) = end else {
                    rejected += 1;
                    why.insert(format!(
                        "a span of {agent} has no endTimeUnixNano in nanoseconds (a decimal string or an integer)"
                    ));
                    continue;
                };
                if end < r.window_start || end > latest {
                    rejected += 1;
                    why.insert(format!(
                        "a span of {agent} ended at {end}, outside the phase window ({} to now)",
                        r.window_start
                    ));
                    continue;
                }
                match arm_of(&s, &r.plan.flag) {
                    Some(arm) => t.add(&r.plan, arm, &s),
                    None => {
                        rejected += 1;
                        why.insert(format!(
                            "a span of {agent} has no feature_flag.key {:?} with variant on or off",
                            r.plan.flag
                        ));
                    }
                }
            }
        }
    }
    let received = (app.clock)().to_string();
    for (agent, (r, t)) in &tallies {
        if t.events == [0, 0] {
            continue;
        }
        let json = serde_json::to_string(t).expect("a tally serialises");
        app.registry
            .store()
            .add_tally(agent, r.started_seq, i64::from(r.epoch), &json, &received)
            .await
            .map_err(unavailable)?;
        metrics::counter!("stagegate_rollout_spans_total", "agent" => agent.clone())
            .increment(t.events[0] + t.events[1]);
        drive(&app, agent).await?;
    }
    Ok(Json(ExportResponse {
        partial_success: (rejected > 0).then(|| {
            serde_json::json!({
                "rejectedSpans": rejected.to_string(),
                "errorMessage": why.into_iter().collect::<Vec<_>>().join("; "),
            })
        }),
    }))
}
