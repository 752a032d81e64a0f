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

pub mod auth;
pub mod cache;
pub mod config;
pub mod drill;
pub mod flags;
mod metrics_layer;
pub mod ofrep;
pub mod poll;
pub mod portfolio;
pub mod problem;
pub mod rollout;
pub mod routes;
mod snapshot_map;
pub mod webhook_routes;
pub mod webhooks;
pub mod writes;

use axum::Router;
use axum::http::StatusCode;
use stagegate_registry::Registry;
use std::path::PathBuf;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use config::{Config, LogFormat};

/// The clock the server reads (injected so tests never read the machine's).
pub type ClockFn = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The registry (its pool is shared by all requests).
    pub registry: Registry,
    /// The verified state reads are served from.
    pub cache: Arc<cache::Cache>,
    /// Token and OIDC checks.
    pub auth: Arc<auth::Authenticator>,
    /// The allowed-signers file sign-offs and promotions are checked against, and its path.
    pub allowed_signers: Option<Arc<(PathBuf, stagegate_trust::AllowedSigners)>>,
    /// Now.
    pub clock: ClockFn,
    /// Default days after a pilot's end before it is in purgatory (seed 004).
    pub purgatory_days: u32,
    /// Webhook subscriptions and deliveries.
    pub webhooks: webhooks::Webhooks,
    /// The largest request body accepted, in bytes (a review JSON, an evidence record with its
    /// attachments); larger ones are answered 413.
    pub max_body_bytes: usize,
    /// The flags served over OFREP.
    pub flags: Arc<flags::FlagHub>,
    /// Kill-switch drills measured on this replica.
    pub drills: Arc<drill::Drills>,
    /// OFREP rate limit per credential.
    pub ofrep_limiter: Arc<ofrep::Limiter>,
    /// The last poll of each polled telemetry source.
    pub polls: Arc<poll::Polls>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("registry", &self.registry.location())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// After a write of this replica: marks the cache stale and rebuilds the flags now, so
    /// the answer to a rollout act or kill is given once this replica serves its effect.
    pub async fn flags_changed(&self) {
        self.cache.invalidate();
        self.flags
            .refresh(&self.cache, &self.drills, (self.clock)())
            .await;
    }

    /// The state over an open registry, with the machine clock, no OIDC and no
    /// allowed-signers file (set the fields to change them).
    pub fn new(registry: Registry) -> AppState {
        let hooks = webhooks::Webhooks::new(registry.clone(), webhooks::WebhookConfig::default())
            .expect("an HTTP client with default settings builds");
        AppState {
            webhooks: hooks,
            cache: Arc::new(cache::Cache::new(registry.clone())),
            registry,
            auth: Arc::new(auth::Authenticator::default()),
            allowed_signers: None,
            clock: Arc::new(jiff::Timestamp::now),
            purgatory_days: stagegate_portfolio::scorecard::DEFAULT_PURGATORY_DAYS,
            max_body_bytes: 64 << 20,
            flags: Arc::new(flags::FlagHub::default()),
            drills: Arc::new(drill::Drills::default()),
            ofrep_limiter: Arc::new(ofrep::Limiter::new(
                config::OfrepConfig::default().rate_per_second,
            )),
            polls: Arc::new(poll::Polls::default()),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "stagegate",
        description = "The registry of AI agents and their pilot-to-production gate: agents, reviews, stages and the signed event log behind them."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "agents", description = "Agents and their lifecycle"),
        (name = "evidence", description = "Evidence records and their attachments"),
        (name = "portfolio", description = "Every agent at once: scorecard, weekly report, due dates"),
        (name = "webhooks", description = "Subscriptions and their delivery logs"),
        (name = "rollout", description = "Phased rollouts, their signed acts, the kill switch and live telemetry (OTLP)"),
        (name = "registry", description = "The signed event log"),
        (name = "operations", description = "Health and readiness"),
    )
)]
struct ApiDoc;

/// Declares the `bearer` scheme: an API token (`sgt_…`) or an OIDC JWT.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token from `stagegate token create` (sgt_…), or an OIDC JWT from the configured issuer",
                    ))
                    .build(),
            ),
        );
    }
}

/// The router (every route and its OpenAPI entry) and the OpenAPI document it serves at
/// `/api/v1/openapi.json`.
pub fn app(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let limit = state.max_body_bytes;
    // One `Arc` to clone per request, not the whole state (its registry handle owns strings).
    let ofrep_state = Arc::new(state.clone());
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::healthz))
        .routes(routes!(routes::readyz))
        .routes(routes!(routes::list_agents))
        .routes(routes!(routes::get_agent))
        .routes(routes!(routes::verify))
        .routes(routes!(routes::history))
        .routes(routes!(routes::checkpoint))
        .routes(routes!(routes::list_evidence, writes::push_evidence))
        .routes(routes!(routes::get_blob))
        .routes(routes!(portfolio::portfolio))
        .routes(routes!(writes::register_agent))
        .routes(routes!(writes::start_pilot))
        .routes(routes!(writes::push_review))
        .routes(routes!(writes::signoffs_needed, writes::sign_off))
        .routes(routes!(writes::approve))
        .routes(routes!(writes::promote))
        .routes(routes!(writes::pause))
        .routes(routes!(writes::resume))
        .routes(routes!(writes::retire))
        .routes(routes!(rollout::get_rollout))
        .routes(routes!(rollout::statement))
        .routes(routes!(rollout::post_act))
        .routes(routes!(rollout::traces))
        .routes(routes!(rollout::drill_report))
        .routes(routes!(webhook_routes::list, webhook_routes::subscribe))
        .routes(routes!(webhook_routes::unsubscribe))
        .routes(routes!(webhook_routes::deliveries))
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
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(metrics_layer::record))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    // OFREP is the hot path: outside the per-request metrics and tracing layers (its
    // evaluations are counted in `ofrep`), with a small body limit.
    let ofrep_routes = Router::new()
        .route(
            "/ofrep/v1/evaluate/flags/{key}",
            axum::routing::post(ofrep::evaluate_one),
        )
        .route(
            "/ofrep/v1/evaluate/flags",
            axum::routing::post(ofrep::evaluate_all),
        )
        .route("/ofrep/v1/events", axum::routing::get(ofrep::events))
        .layer(axum::extract::DefaultBodyLimit::max(64 << 10))
        .with_state(ofrep_state);
    let router = ofrep_routes.merge(router);
    (router, doc)
}

/// What `stagegate serve` answers every request with: a single-flag OFREP evaluation straight
/// from the connection ([`ofrep::evaluate_single`]: the hot path, without the router's
/// matching, boxing and extractors), anything else through [`app`]'s router (which answers
/// single-flag evaluations the same way, through the same function).
#[derive(Clone)]
pub struct Front {
    router: Router,
    ofrep: Arc<AppState>,
}

/// The response body of [`Front::handle`]: an OFREP answer's bytes, or the router's body.
pub type FrontBody =
    http_body_util::Either<http_body_util::Full<axum::body::Bytes>, axum::body::Body>;

impl std::fmt::Debug for Front {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Front").finish_non_exhaustive()
    }
}

impl Front {
    /// Over this state.
    pub fn new(state: AppState) -> Front {
        let ofrep = Arc::new(state.clone());
        let (router, _) = app(state);
        Front { router, ofrep }
    }

    /// The router behind it.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Answers one request.
    pub async fn handle<B>(&self, req: axum::http::Request<B>) -> axum::http::Response<FrontBody>
    where
        B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        use http_body_util::Either;
        use tower::ServiceExt;
        let (parts, body) = req.into_parts();
        if let Some(key) = ofrep::single_flag_key(&parts.method, parts.uri.path()) {
            return ofrep::evaluate_single(&self.ofrep, key, &parts.headers, body)
                .await
                .map(|b| Either::Left(http_body_util::Full::new(b)));
        }
        let req = axum::http::Request::from_parts(parts, axum::body::Body::new(body));
        let res = self.router.clone().oneshot(req).await;
        match res {
            Ok(r) => r.map(Either::Right),
            Err(never) => match never {},
        }
    }
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
    let sources = config
        .telemetry
        .iter()
        .enumerate()
        .map(|(i, c)| poll::Source::open(i, c, |k| std::env::var(k).ok()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServeError::Setting(e.to_string()))?;
    let mut state = AppState::new(registry);
    state.purgatory_days = config.purgatory_days;
    state.max_body_bytes = config.max_body_mb.saturating_mul(1 << 20);
    if let Some(p) = &config.allowed_signers {
        let text = std::fs::read_to_string(p)
            .map_err(|e| ServeError::Setting(format!("allowed_signers {}: {e}", p.display())))?;
        let allowed = stagegate_trust::AllowedSigners::parse(&text)
            .map_err(|e| ServeError::Setting(format!("allowed_signers {}: {e}", p.display())))?;
        state.allowed_signers = Some(Arc::new((p.clone(), allowed)));
    }
    if let Some(o) = &config.oidc {
        let jwks = match (&o.jwks_file, &o.jwks_url) {
            (Some(f), _) => std::fs::read_to_string(f)
                .map_err(|e| ServeError::Setting(format!("oidc.jwks_file {}: {e}", f.display())))?,
            (None, Some(_)) => {
                return Err(ServeError::Setting(
                    "oidc.jwks_url is not supported by this build yet: download the issuer's JWKS to a file and give oidc.jwks_file".into(),
                ));
            }
            (None, None) => {
                return Err(ServeError::Setting("oidc: give jwks_file".into()));
            }
        };
        let v = stagegate_auth::oidc::Verifier::from_jwks(&jwks, o.clone())
            .map_err(|e| ServeError::Setting(format!("oidc: {e}")))?;
        state.auth = Arc::new(auth::Authenticator::new(Some(v)));
    }
    if let stagegate_registry::Location::Postgres(url) = &location {
        tokio::spawn(cache::listen(state.cache.clone(), url.clone()));
    }
    {
        let cache = state.cache.clone();
        let every = std::time::Duration::from_secs(config.full_verify_seconds.max(1));
        tokio::spawn(async move {
            // The first read verifies the whole log; from then on, every `every`.
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = cache.full_verify().await {
                    tracing::error!(error = %e, "periodic verification failed");
                }
            }
        });
    }
    state.webhooks = webhooks::Webhooks::new(state.registry.clone(), config.webhooks)
        .map_err(|e| ServeError::Setting(format!("webhooks: {e}")))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(webhooks::run(
        state.webhooks.clone(),
        state.cache.clone(),
        state.clock.clone(),
        state.purgatory_days,
        stop_rx,
    ));
    state.ofrep_limiter = Arc::new(ofrep::Limiter::new(config.ofrep.rate_per_second));
    let flag_task = tokio::spawn(flags::run(
        state.flags.clone(),
        state.cache.clone(),
        state.drills.clone(),
        state.clock.clone(),
        std::time::Duration::from_millis(config.ofrep.poll_ms.max(10)),
    ));
    let ticker = tokio::spawn(rollout::ticker(state.clone()));
    let pollers: Vec<_> = sources
        .into_iter()
        .map(|source| tokio::spawn(poll::run(state.clone(), source)))
        .collect();
    let front = Front::new(state);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServeError::Bind(config.listen, e))?;
    tracing::info!(listen = %config.listen, registry = %location, "stagegate serve");
    let served = serve_http1(listener, front, shutdown).await;
    // Pending deliveries stay in the outbox for the next start.
    let _ = stop_tx.send(true);
    let _ = worker.await;
    ticker.abort();
    flag_task.abort();
    pollers.iter().for_each(tokio::task::JoinHandle::abort);
    served
}

/// Serves `front` over HTTP/1.1 (keep-alive) until `shutdown` completes, then lets the
/// connections in flight finish (at most 30 s; an SSE stream ends then). Plain hyper HTTP/1
/// connections rather than `axum::serve`'s HTTP/1-or-2 detection: stagegate sits behind a
/// TLS-terminating proxy, and the OFREP hot path is measurably faster without the detection
/// (`bench/ofrep.sh`). Each connection has its own handle on `front`, so a request's clone
/// of it touches no counter another connection shares.
async fn serve_http1(
    listener: tokio::net::TcpListener,
    front: Front,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    use hyper_util::rt::TokioIo;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let conn_front = Arc::new(front.clone());
                let service = hyper::service::service_fn(move |req| {
                    let front = conn_front.clone();
                    async move { Ok::<_, std::convert::Infallible>(front.handle(req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown()).await;
    Ok(())
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The registry cannot be opened.
    #[error(transparent)]
    Registry(#[from] stagegate_registry::RegistryError),
    /// A setting cannot be used (allowed-signers file, OIDC keys).
    #[error("{0}")]
    Setting(String),
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
