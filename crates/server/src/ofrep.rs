//! The OpenFeature Remote Evaluation Protocol (OFREP, `open-feature/protocol`
//! `service/openapi.yaml` v0.3.0, ADR 0008 for the event stream) over the flags of
//! [`crate::flags`]:
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}`: one flag; 200 with `{key, value, reason, variant,
//!   metadata}`, 400 `{key, errorCode, errorDetails}` for `PARSE_ERROR`,
//!   `TARGETING_KEY_MISSING`, `INVALID_CONTEXT`, 404 for `FLAG_NOT_FOUND`, 500 `GENERAL`.
//! - `POST /ofrep/v1/evaluate/flags`: every flag for one context, with an `ETag` over the flag
//!   set and the context; `If-None-Match` with the same value answers 304. The answer names the
//!   event stream (`eventStreams: [{type: sse, url}]`).
//! - `GET /ofrep/v1/events`: server-sent events; each new flag set sends `event: message`,
//!   `data: {"type": "refetchEvaluation", "etag", "lastModified"}` (ADR 0008), with the set's
//!   version as the event id.
//! - Credentials: `Authorization: Bearer <token>` or `X-API-Key: <token>` (an API token from
//!   `stagegate token create`, any role; or an OIDC JWT); the event stream also takes
//!   `?token=` (a browser's `EventSource` sends no headers). 401 without a valid one, 403 for a
//!   token limited to agents whose flags are asked for, 429 with `Retry-After` (seconds) when
//!   a credential exceeds `ofrep.rate_per_second`.

use crate::AppState;
use crate::auth::FlagClient;
use crate::flags::FlagsView;
use axum::Json;
use axum::body::{Bytes, HttpBody};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use stagegate_auth::Caller;
use stagegate_flags::ofrep as wire;
use std::sync::Arc;

/// The largest OFREP request body read, in bytes (64 KiB).
pub const MAX_BODY: usize = 64 << 10;

type Bucket = governor::DefaultDirectRateLimiter;

/// Evaluations per second per credential (each its own token bucket); `check` says how long
/// to wait when over.
pub struct Limiter {
    quota: governor::Quota,
    /// By credential (at most 100,000; read without a lock).
    buckets: crate::snapshot_map::SnapshotMap<Bucket>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("quota", &self.quota)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// `per_second` evaluations per second per credential, bursting to the same (at least 1).
    pub fn new(per_second: u32) -> Limiter {
        let n = std::num::NonZeroU32::new(per_second.max(1)).expect("at least 1");
        Limiter {
            quota: governor::Quota::per_second(n),
            buckets: Default::default(),
        }
    }

    /// `Err(wait)` when `key` is over its rate.
    pub fn check(&self, key: &str) -> Result<(), std::time::Duration> {
        use governor::clock::{Clock, DefaultClock};
        let over = |b: &Bucket| {
            b.check()
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
        };
        if let Some(verdict) = self.buckets.with(key, |b| over(b)) {
            return verdict;
        }
        let bucket = self
            .buckets
            .get_or_insert_with(key, || Arc::new(governor::RateLimiter::direct(self.quota)));
        over(&bucket)
    }
}

/// The outcomes counted in [`evaluations`], in order.
pub const OUTCOMES: [&str; 3] = ["value", "disabled", "error"];

/// One shard of the outcome counters, alone on its cache line(s).
#[repr(align(128))]
struct Shard([std::sync::atomic::AtomicU64; 3]);

/// The counters, sharded by thread so that two cores counting never write the same line.
static SHARDS: [Shard; 16] =
    [const { Shard([const { std::sync::atomic::AtomicU64::new(0) }; 3]) }; 16];

thread_local! {
    static SHARD: usize = {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SHARDS.len()
    };
}

fn count(outcome: usize) {
    SHARD.with(|&s| SHARDS[s].0[outcome].fetch_add(1, std::sync::atomic::Ordering::Relaxed));
}

/// OFREP evaluations answered since the start, by outcome ([`OUTCOMES`]; `/metrics` reports
/// them as `stagegate_ofrep_evaluations_total{outcome}`).
pub fn evaluations() -> [u64; 3] {
    let mut n = [0u64; 3];
    for shard in &SHARDS {
        for (total, c) in n.iter_mut().zip(&shard.0) {
            *total += c.load(std::sync::atomic::Ordering::Relaxed);
        }
    }
    n
}

/// A single-flag OFREP answer with its JSON body already serialised, whichever way the request
/// came ([`evaluate_one`] through the router, or [`crate::Front`] straight from the connection).
pub type Reply = axum::http::Response<Bytes>;

fn json_reply(status: StatusCode, body: Bytes) -> Reply {
    let mut r = Reply::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn status_only(code: StatusCode, detail: &str) -> Reply {
    let body = serde_json::to_vec(&json!({"errorDetails": detail})).unwrap_or_default();
    json_reply(code, body.into())
}

fn unauthorized(why: &str) -> Reply {
    let mut r = status_only(StatusCode::UNAUTHORIZED, why);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"stagegate\""),
    );
    r
}

fn to_axum(r: Reply) -> Response {
    r.map(axum::body::Body::from)
}

const NO_CREDENTIAL: &str = "no credential (Authorization: Bearer, or X-API-Key)";

/// The credential presented: `Authorization: Bearer`, else `X-API-Key`, else `?token=`.
fn presented<'a>(headers: &'a HeaderMap, query_token: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .or(query_token)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The OFREP caller: a token or JWT from `Authorization: Bearer` or `X-API-Key`.
async fn caller(
    app: &AppState,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Arc<FlagClient>, Response> {
    let presented =
        presented(headers, query_token).ok_or_else(|| to_axum(unauthorized(NO_CREDENTIAL)))?;
    crate::auth::flag_client(app, presented)
        .await
        .map_err(|why| to_axum(unauthorized(&why)))
}

/// 429 with `Retry-After` (whole seconds, at least 1) when the caller is over its rate.
fn limited(app: &AppState, caller: &Caller) -> Option<Reply> {
    let wait = app.ofrep_limiter.check(&caller.credential).err()?;
    let mut r = status_only(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&wait.as_secs().max(1).to_string()).expect("digits"),
    );
    Some(r)
}

/// A token limited to some agents may evaluate only their flags.
fn may_see(caller: &Caller, view: &FlagsView, key: &str) -> bool {
    if caller.agents.is_empty() {
        return true;
    }
    view.set
        .get(key)
        .and_then(|f| f.metadata.get("agent"))
        .and_then(Value::as_str)
        .is_some_and(|a| caller.agents.iter().any(|x| x == a))
}

fn error(key: Option<&str>, e: &wire::Failure) -> Reply {
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    json_reply(
        status,
        serde_json::to_vec(&e.body(key)).unwrap_or_default().into(),
    )
}

/// The flag key of a single-flag evaluation (`POST /ofrep/v1/evaluate/flags/{key}`) whose key
/// needs no decoding; `None` for any other request (the router then answers it, a key with
/// `%` escapes included).
pub fn single_flag_key<'a>(method: &Method, path: &'a str) -> Option<&'a str> {
    let key = path.strip_prefix("/ofrep/v1/evaluate/flags/")?;
    (method == Method::POST && !key.is_empty() && !key.contains(['/', '%'])).then_some(key)
}

/// `POST /ofrep/v1/evaluate/flags/{key}` through the router.
pub async fn evaluate_one(
    State(app): State<Arc<AppState>>,
    Path(key): Path<String>,
    req: axum::extract::Request,
) -> Response {
    // The request itself, not the `HeaderMap` extractor: that one clones the headers.
    let (parts, body) = req.into_parts();
    to_axum(evaluate_single(&app, &key, &parts.headers, body).await)
}

/// One flag for one context: the body read (at most [`MAX_BODY`]), the credential checked
/// (once per process, then looked up), the rate limit, the agents a token is limited to, the
/// evaluation, the drill's note — and the answer, serialised when the flags were built.
/// Apart from reading the body and a credential's first check, nothing here waits; outside a
/// watched drill, nothing locks or writes a counter shared by every request but the rate
/// limit's own (and, once a second per client, the drill's map of who evaluated lately).
///
/// The answer (JSON): 200 `{key, value, reason, variant, metadata}`; 400 `{key, errorCode,
/// errorDetails}` with `PARSE_ERROR` (a body unreadable, over 64 KiB, not JSON or not an
/// object), `INVALID_CONTEXT` or `TARGETING_KEY_MISSING`; 404 `FLAG_NOT_FOUND`; 500 `GENERAL`;
/// 401 `{errorDetails}` with `WWW-Authenticate` (no, unknown, revoked or expired credential);
/// 403 (a token limited to other agents); 429 with `Retry-After` in whole seconds.
pub async fn evaluate_single<B>(app: &AppState, key: &str, headers: &HeaderMap, body: B) -> Reply
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    let Ok(body) = http_body_util::Limited::new(body, MAX_BODY).collect().await else {
        return error(
            Some(key),
            &wire::Failure {
                code: stagegate_flags::ErrorCode::ParseError,
                details: "the body could not be read (64 KiB at most)".into(),
            },
        );
    };
    let body = body.to_bytes();
    let Some(presented) = presented(headers, None) else {
        return unauthorized(NO_CREDENTIAL);
    };
    if let Some(reply) = crate::auth::with_known_client(app, presented, |client| {
        answer_one(app, client, presented, key, &body, (app.clock)())
    }) {
        return reply;
    }
    match crate::auth::flag_client(app, presented).await {
        // The clock read after the credential's check (which may wait on the database).
        Ok(client) => answer_one(app, &client, presented, key, &body, (app.clock)()),
        Err(why) => unauthorized(&why),
    }
}

fn answer_one(
    app: &AppState,
    client: &FlagClient,
    presented: &str,
    key: &str,
    body: &[u8],
    now: jiff::Timestamp,
) -> Reply {
    let view = app.flags.current();
    if let Err(why) = client.holds(app, presented, &view, now) {
        return unauthorized(&why);
    }
    let caller = &client.caller;
    if let Some(r) = limited(app, caller) {
        return r;
    }
    if !may_see(caller, &view, key) {
        return status_only(
            StatusCode::FORBIDDEN,
            "this credential is limited to other agents",
        );
    }
    let ctx = match wire::parse_request(body) {
        Ok(r) => r.context,
        Err(e) => return error(Some(key), &e),
    };
    match view.set.evaluate(key, &ctx) {
        Ok(res) => {
            count(usize::from(res.reason == stagegate_flags::Reason::Disabled));
            app.drills.observe(caller, &client.seen, key, &res, now);
            json_reply(StatusCode::OK, view.body(&res))
        }
        Err(e) => {
            count(2);
            error(Some(key), &e.into())
        }
    }
}

/// `POST /ofrep/v1/evaluate/flags`.
pub async fn evaluate_all(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let client = match caller(&app, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let caller = &client.caller;
    if let Some(r) = limited(&app, caller) {
        return to_axum(r);
    }
    let view = app.flags.view();
    let ctx = match wire::parse_request(&body) {
        Ok(r) => r.context,
        Err(e) => return to_axum(error(None, &e)),
    };
    let etag = format!("\"{}\"", view.set.etag_for(&ctx));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut()
            .insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
        return r;
    }
    let results = view.set.evaluate_all(&ctx);
    let now = (app.clock)();
    for (key, res) in &results {
        if let Ok(res) = res {
            app.drills.observe(caller, &client.seen, key, res, now);
        }
    }
    let flags: Vec<Value> = results
        .into_iter()
        .filter(|(key, _)| may_see(caller, &view, key))
        .map(|(key, r)| match r {
            Ok(res) => serde_json::to_value(res).unwrap_or(Value::Null),
            Err(e) => wire::Failure::from(e).body(Some(key)),
        })
        .collect();
    let mut r = Json(json!({
        "flags": flags,
        "eventStreams": [{"type": "sse", "endpoint": {"requestUri": "/ofrep/v1/events"}, "inactivityDelaySec": 120}],
        "metadata": {"version": app.flags.version().to_string()},
    }))
    .into_response();
    r.headers_mut()
        .insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
    r
}

/// `?token=` for the event stream.
#[derive(Debug, serde::Deserialize)]
pub struct StreamQuery {
    token: Option<String>,
}

/// `GET /ofrep/v1/events`: a `refetchEvaluation` message for every new flag set.
pub async fn events(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Response {
    let client = match caller(&app, &headers, q.token.as_deref()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let caller = &client.caller;
    let mut rx = app.flags.subscribe();
    rx.mark_unchanged();
    let hub = app.flags.clone();
    let drills = app.drills.clone();
    let stream_id = drills.connect(caller);
    let guard = Arc::new(crate::drill::StreamGuard::new(drills, stream_id));
    let clock = app.clock.clone();
    let stream = futures_util::stream::unfold((rx, hub, guard), move |(mut rx, hub, guard)| {
        let clock = clock.clone();
        async move {
            rx.changed().await.ok()?;
            let version = *rx.borrow_and_update();
            let view = hub.view();
            let data = json!({
                "type": "refetchEvaluation",
                "etag": format!("\"{}\"", view.set.etag()),
                "lastModified": view.built_at.as_second(),
            });
            guard.sent(clock());
            let ev = Event::default()
                .id(version.to_string())
                .event("message")
                .data(data.to_string());
            Some((Ok::<_, std::convert::Infallible>(ev), (rx, hub, guard)))
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response()
}
