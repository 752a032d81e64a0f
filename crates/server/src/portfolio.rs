//! `GET /api/v1/portfolio`: the portfolio scorecard (JSON, `schema_version`), the weekly
//! executive report (Markdown) or the iCalendar feed of due dates (RFC 5545), as of a date,
//! from the cache's verified snapshot ([`stagegate_portfolio`] does the judging). A rendered
//! answer is kept per head and query, so repeated reads cost a copy.

use crate::AppState;
use crate::problem::Problem;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use stagegate_auth::Caller;
use stagegate_portfolio::{AgentSnapshot, Options, Source};
use utoipa::{IntoParams, ToSchema};

/// The portfolio's formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PortfolioFormat {
    /// The scorecard JSON.
    #[default]
    Json,
    /// The weekly executive report (seed 003).
    Markdown,
    /// An iCalendar feed (RFC 5545) of open items, launches, 30-day reviews and drills due.
    Ics,
}

/// Query of `GET /api/v1/portfolio`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PortfolioQuery {
    /// The date to judge on, `YYYY-MM-DD`; default today (UTC).
    pub as_of: Option<String>,
    /// Pilot purgatory after this many days past the pilot's end with no decision (seed 004;
    /// default 14, or the server's `purgatory_days`).
    pub purgatory_days: Option<u32>,
    /// `json` (default), `markdown` or `ics`.
    #[param(inline)]
    pub format: Option<PortfolioFormat>,
    /// JSON only: each list (agents, purgatory, pilots without review, overdue open items,
    /// post-launch reviews, stale drills, open items) from this entry (0). `totals` and
    /// `page.total` count everything.
    pub offset: Option<usize>,
    /// JSON only: at most this many entries per list (100; at most 10,000).
    pub limit: Option<usize>,
}

/// Entries per list of the JSON scorecard unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;

/// The portfolio: every agent's stage, days in stage and last decision; pilot purgatory,
/// overdue open items, 30-day post-launch reviews due, drills lapsing.
#[utoipa::path(
    get,
    path = "/api/v1/portfolio",
    tag = "portfolio",
    params(PortfolioQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The scorecard (JSON), the weekly report (text/markdown) or the feed (text/calendar)", body = Object),
        (status = 400, description = "A bad date", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn portfolio(
    State(app): State<AppState>,
    _caller: Caller,
    Query(q): Query<PortfolioQuery>,
) -> Result<impl IntoResponse, Problem> {
    let as_of: jiff::civil::Date = match q.as_of.as_deref() {
        None => (app.clock)().to_zoned(jiff::tz::TimeZone::UTC).date(),
        Some(d) => d.parse().map_err(|_| {
            Problem::bad_request(format!("as_of: {d:?} is not a date (YYYY-MM-DD)"))
        })?,
    };
    let purgatory_days = q.purgatory_days.unwrap_or(app.purgatory_days);
    let format = q.format.unwrap_or_default();
    let snap = app.cache.snapshot().await?;
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > 10_000 {
        return Err(Problem::bad_request(format!(
            "limit: {limit}; between 1 and 10000"
        )));
    }
    let key = format!("{as_of}/{purgatory_days}/{format:?}/{offset}/{limit}");
    let body = app
        .cache
        .rendered(snap.state.size, &key, || {
            let agents: Vec<AgentSnapshot> = snap.portfolio.values().cloned().collect();
            let mut card = stagegate_portfolio::scorecard(
                &agents,
                &Options {
                    purgatory_days,
                    ..Options::new(as_of)
                },
            );
            card.source = Some(Source {
                registry: app.registry.location().shown(),
                verified_events: snap.state.size,
                head: snap.state.head.clone(),
            });
            Ok(match format {
                PortfolioFormat::Json => {
                    card.paged(offset, limit);
                    serde_json::to_string(&card).map_err(|e| e.to_string())?
                }
                PortfolioFormat::Markdown => stagegate_portfolio::markdown::weekly(&card),
                PortfolioFormat::Ics => stagegate_portfolio::ical::feed(&card),
            }
            .into())
        })
        .map_err(|why| {
            tracing::error!(why, "portfolio rendering failed");
            Problem::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "The portfolio could not be rendered",
            )
        })?;
    let content_type = match format {
        PortfolioFormat::Json => "application/json",
        PortfolioFormat::Markdown => "text/markdown; charset=utf-8",
        PortfolioFormat::Ics => "text/calendar; charset=utf-8",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body))
}
