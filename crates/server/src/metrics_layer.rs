//! Prometheus metrics: every request counted and timed by route and status (a middleware),
//! and, at each scrape, the registry's gauges — agents by stage, latest decisions by outcome,
//! overdue open items — computed from the verified log.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// The process-wide recorder (metrics' macros write to one global recorder).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
            .expect("static, non-empty buckets")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder installed first (e.g. by an embedding program) keeps its place;
        // this handle then renders only what reaches it.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Counts and times each request: `stagegate_http_requests_total` and
/// `stagegate_http_request_duration_seconds`, labelled by method, matched route and status.
pub(crate) async fn record(req: Request, next: Next) -> Response {
    handle();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let start = std::time::Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("stagegate_http_requests_total", &labels).increment(1);
    metrics::histogram!("stagegate_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the registry gauges as of now, then everything in the Prometheus text
/// format. A registry that cannot be read sets `stagegate_registry_up` to 0.
pub(crate) async fn render(State(app): State<AppState>) -> Response {
    let h = handle();
    match app.cache.snapshot().await {
        Ok(snap) => {
            let state = &snap.state;
            metrics::gauge!("stagegate_registry_up").set(1.0);
            for (outcome, n) in crate::ofrep::OUTCOMES
                .iter()
                .zip(crate::ofrep::evaluations())
            {
                metrics::counter!("stagegate_ofrep_evaluations_total", "outcome" => *outcome)
                    .absolute(n);
            }
            metrics::gauge!("stagegate_registry_events").set(state.size as f64);
            for stage in ["pilot", "production", "paused", "retired"] {
                let n = state
                    .agents
                    .values()
                    .filter(|a| a.stage.map(|s| s.as_str()) == Some(stage))
                    .count();
                metrics::gauge!("stagegate_agents", "stage" => stage).set(n as f64);
            }
            for outcome in ["Cleared", "Conditional", "Blocked"] {
                let n = state
                    .agents
                    .values()
                    .filter(|a| a.reviews.last().is_some_and(|r| r.decision == outcome))
                    .count();
                metrics::gauge!("stagegate_latest_decisions", "outcome" => outcome).set(n as f64);
            }
            let today = (app.clock)()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .date()
                .to_string();
            let overdue = state
                .agents
                .values()
                .filter_map(|a| a.latest_review.as_ref())
                .filter_map(|r| r.get("open_items").and_then(|o| o.as_array()))
                .flatten()
                .filter(|o| {
                    o.get("due")
                        .and_then(|d| d.as_str())
                        .is_some_and(|d| d < today.as_str())
                })
                .count();
            metrics::gauge!("stagegate_open_items_overdue").set(overdue as f64);
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics: registry unreadable");
            metrics::gauge!("stagegate_registry_up").set(0.0);
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        h.render(),
    )
        .into_response()
}
