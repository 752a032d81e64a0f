//! `/api/v1/webhooks`: subscribe, list, unsubscribe, and each subscription's delivery log
//! (admin and coe-lead; see [`crate::webhooks`] for what is sent and how).

use crate::AppState;
use crate::auth::forbidden;
use crate::problem::Problem;
use crate::webhooks::{Delivery, EventType, Subscription, WebhookError};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use stagegate_auth::{Action, Caller, authorize};
use utoipa::ToSchema;

/// A new subscription.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SubscribeBody {
    /// Where to POST (http or https; a Slack incoming-webhook URL works as is).
    pub url: String,
    /// The HMAC secret (16 characters or more); one is generated when omitted.
    #[serde(default)]
    pub secret: Option<String>,
    /// What to send.
    pub events: Vec<EventType>,
}

/// A subscription as created: with its secret, shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Subscribed {
    /// The subscription.
    #[serde(flatten)]
    pub subscription: Subscription,
    /// The HMAC secret.
    pub secret: String,
}

fn problem(e: WebhookError) -> Problem {
    match e {
        WebhookError::Invalid(m) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
            "Invalid input",
        )
        .detail(m),
        WebhookError::Registry(r) => r.into(),
        WebhookError::Database(e) => {
            tracing::error!(error = %e, "webhooks: database");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "registry-unavailable",
                "The registry is unavailable",
            )
        }
    }
}

fn allow(caller: &Caller) -> Result<(), Problem> {
    authorize(caller, Action::ManageWebhooks, None, None).map_err(|d| forbidden(d.0))
}

/// Subscribes a URL to event types; it receives what happens from now on.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    request_body = SubscribeBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Subscribed; the secret is shown this once", body = Subscribed),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad URL, secret or event types", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn subscribe(
    State(app): State<AppState>,
    caller: Caller,
    Json(body): Json<SubscribeBody>,
) -> Result<(StatusCode, Json<Subscribed>), Problem> {
    allow(&caller)?;
    let secret = match body.secret {
        Some(s) => s,
        None => {
            let mut b = [0u8; 24];
            getrandom::fill(&mut b).map_err(|e| problem(WebhookError::Invalid(e.to_string())))?;
            b.iter().map(|x| format!("{x:02x}")).collect()
        }
    };
    let head = app.cache.snapshot().await?.state.size;
    let subscription = app
        .webhooks
        .subscribe(
            &body.url,
            &secret,
            &body.events,
            &caller.actor(),
            (app.clock)(),
            head,
        )
        .await
        .map_err(problem)?;
    Ok((
        StatusCode::CREATED,
        Json(Subscribed {
            subscription,
            secret,
        }),
    ))
}

/// The active subscriptions.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Subscriptions, no secrets", body = Vec<Subscription>),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Subscription>>, Problem> {
    allow(&caller)?;
    Ok(Json(app.webhooks.subscriptions().await.map_err(problem)?))
}

/// Ends a subscription.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn unsubscribe(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    allow(&caller)?;
    if app.webhooks.unsubscribe(&id).await.map_err(problem)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!("no active subscription {id}")))
    }
}

/// A subscription's delivery log: every attempt, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Attempts", body = Vec<Delivery>),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn deliveries(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<Delivery>>, Problem> {
    allow(&caller)?;
    Ok(Json(app.webhooks.deliveries(&id).await.map_err(problem)?))
}
