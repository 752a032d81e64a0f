//! `stagegate serve`: the registry as a shared service.
//!
//! A JSON HTTP API under `/api/v1` whose OpenAPI 3.1 document is generated from the handlers'
//! types ([`utoipa`]) and served at `/api/v1/openapi.json`; `/healthz` and `/readyz` (database
//! reachable, migrations applied when the registry was opened); Prometheus `/metrics`
//! (requests by route and status with latencies, agents by stage, latest decisions by outcome,
//! overdue open items); errors as RFC 9457 problem details ([`problem`]); graceful shutdown on
//! SIGINT/SIGTERM; configuration by file and environment ([`config`]).
//!
//! Invariants:
//! - **The same registry as the CLI.** Handlers call [`stagegate_registry::Registry`] and
//!   nothing else: the same event log, replay, rules and verification on SQLite and
//!   PostgreSQL. Every answer is derived from the verified log.
//! - **The document is the router.** Routes are registered through `utoipa_axum`'s
//!   `OpenApiRouter`, so a route cannot exist without its OpenAPI entry (a test checks every
//!   served path against the document).
//! - **No internals in errors.** Database and key failures are logged with their cause and
//!   answered with a generic problem.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
mod metrics_layer;
pub mod problem;
pub mod routes;

use axum::Router;
use axum::http::StatusCode;
use stagegate_registry::Registry;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use config::{Config, LogFormat};

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The registry (its pool is shared by all requests).
    pub registry: Registry,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "stagegate",
        description = "The registry of AI agents and their pilot-to-production gate: agents, reviews, stages and the signed event log behind them."
    ),
    tags(
        (name = "agents", description = "Agents and their lifecycle"),
        (name = "registry", description = "The signed event log"),
        (name = "operations", description = "Health and readiness"),
    )
)]
struct ApiDoc;

/// The router (every route and its OpenAPI entry) and the OpenAPI document it serves at
/// `/api/v1/openapi.json`.
pub fn app(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::healthz))
        .routes(routes!(routes::readyz))
        .routes(routes!(routes::list_agents))
        .routes(routes!(routes::get_agent))
        .routes(routes!(routes::verify))
        .with_state(state.clone())
        .split_for_parts();
    let served = doc.clone();
    let router = router
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || async move { axum::Json(served) }),
        )
        .route(
            "/metrics",
            axum::routing::get(metrics_layer::render).with_state(state),
        )
        .fallback(|| async {
            problem::Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found")
                .detail("no such route")
        })
        .layer(axum::middleware::from_fn(metrics_layer::record))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    (router, doc)
}

/// Opens the registry (creating an SQLite one, or migrating a PostgreSQL one) and serves
/// until `shutdown` completes, then finishes the requests in flight.
///
/// # Errors
/// The registry cannot be opened, or the address cannot be bound.
pub async fn serve(
    config: &Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let location = stagegate_registry::Location::parse(&config.registry);
    let registry = Registry::open(&location, true, config.registry_key.as_deref()).await?;
    let (router, _) = app(AppState { registry });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServeError::Bind(config.listen, e))?;
    tracing::info!(listen = %config.listen, registry = %location, "stagegate serve");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ServeError::Bind(config.listen, e))
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The registry cannot be opened.
    #[error(transparent)]
    Registry(#[from] stagegate_registry::RegistryError),
    /// The address cannot be bound, or serving failed.
    #[error("{0}: {1}")]
    Bind(std::net::SocketAddr, std::io::Error),
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
