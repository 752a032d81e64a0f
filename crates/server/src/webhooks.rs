//! Webhooks (issue 8 item 5): subscriptions per event type, Slack-compatible JSON bodies
//! signed with HMAC-SHA256, delivered from a durable outbox with exponential backoff, and a
//! delivery log per subscription.
//!
//! Flow:
//! 1. [`Webhooks::dispatch`] turns what happened into outbox rows, one per subscription and
//!    notification, in one transaction with the subscription's cursor: from the verified log
//!    (review recorded, decision changed, stage changed; after the cursor) and from the
//!    portfolio as of a date (open item overdue, pilot purgatory, evidence stale — each fires
//!    once per agent, item and date: the dedup key is unique per subscription).
//! 2. [`Webhooks::deliver_due`] claims due rows (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so
//!    replicas never claim one row together; the claim is a lease, so a row whose sender died
//!    is sent again when the lease ends; a batch is small enough to be sent within its lease,
//!    see [`WebhookConfig::batch`]), POSTs each body, logs the attempt, and marks it
//!    delivered (2xx) or schedules the next attempt `base · 2^(attempts−1)` later (capped),
//!    up to `max_attempts` (then `failed`).
//! 3. [`run`] is the worker `stagegate serve` spawns: both passes on every write, when the
//!    next retry is due, and every `tick_seconds`.
//!
//! Bodies: `{"text": "stagegate: …", "stagegate": {"type", "agent", …}}`; the log-driven
//! types carry `event` (the log's event number), `at` (the event's as-of date) and
//! `recorded_at`; the portfolio-driven ones carry `as_of` and their due or end dates.
//!
//! Delivery is at least once: a receiver dedupes by `X-Stagegate-Delivery`. The signature is
//! `X-Stagegate-Signature: sha256=<hex HMAC-SHA256(secret, "<X-Stagegate-Timestamp>.<body>")>`
//! (the scheme Slack and Stripe use: the timestamp inside the MAC lets a receiver refuse
//! replays). Secrets are stored as given (the server must compute the MAC).

use crate::cache::Snapshot;
use hmac::{KeyInit, Mac};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;
use stagegate_registry::{Event, Registry, RegistryError, Store};
use utoipa::ToSchema;

/// A notification type a subscription can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EventType {
    /// A review was recorded.
    ReviewRecorded,
    /// An agent's latest decision differs from its previous one.
    DecisionChanged,
    /// An agent changed stage.
    StageChanged,
    /// An open item of an agent's latest review is past its due date (seed 001).
    OpenItemOverdue,
    /// A pilot ended N days ago with no decision since (seed 004).
    PilotPurgatory,
    /// The kill-switch drill lapsed or is about to (seed 001 item 9).
    EvidenceStale,
    /// A rollout started, advanced, paused, resumed, rolled back or was aborted; a
    /// controller's decision carries each trigger's judgement.
    RolloutChanged,
    /// An agent's kill switch was pulled or restored (a drill says so).
    KillSwitch,
}

impl EventType {
    /// Every type.
    pub const ALL: [EventType; 8] = [
        EventType::ReviewRecorded,
        EventType::DecisionChanged,
        EventType::StageChanged,
        EventType::OpenItemOverdue,
        EventType::PilotPurgatory,
        EventType::EvidenceStale,
        EventType::RolloutChanged,
        EventType::KillSwitch,
    ];

    /// `review-recorded`, …
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ReviewRecorded => "review-recorded",
            EventType::DecisionChanged => "decision-changed",
            EventType::StageChanged => "stage-changed",
            EventType::OpenItemOverdue => "open-item-overdue",
            EventType::PilotPurgatory => "pilot-purgatory",
            EventType::EvidenceStale => "evidence-stale",
            EventType::RolloutChanged => "rollout-changed",
            EventType::KillSwitch => "kill-switch",
        }
    }

    /// Reads a type name.
    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// How deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The first retry's delay in ms (1000); each further one doubles it.
    #[serde(default = "default_base")]
    pub backoff_base_ms: i64,
    /// The longest delay between attempts, in ms (one hour).
    #[serde(default = "default_cap")]
    pub backoff_cap_ms: i64,
    /// Attempts before a delivery is marked failed (8).
    #[serde(default = "default_attempts")]
    pub max_attempts: i64,
    /// How long a claimed delivery is leased to its sender, in ms (60 000).
    #[serde(default = "default_lease")]
    pub lease_ms: i64,
    /// Seconds between passes when nothing wakes the worker (30).
    #[serde(default = "default_tick")]
    pub tick_seconds: u64,
    /// Timeout of one POST, in ms (10 000).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_base() -> i64 {
    1000
}
fn default_cap() -> i64 {
    3_600_000
}
fn default_attempts() -> i64 {
    8
}
fn default_lease() -> i64 {
    60_000
}
fn default_tick() -> u64 {
    30
}
fn default_timeout() -> u64 {
    10_000
}

impl WebhookConfig {
    /// Checks the settings: every duration and count at least 1, the cap at least the base,
    /// and the lease longer than one POST's timeout (a row whose lease ended while it is still
    /// being sent could be claimed and sent by another replica too).
    ///
    /// # Errors
    /// [`WebhookError::Invalid`] naming the setting.
    pub fn check(&self) -> Result<(), WebhookError> {
        let bad = |m: &str| Err(WebhookError::Invalid(format!("webhooks: {m}")));
        if self.backoff_base_ms < 1 {
            return bad("backoff_base_ms must be at least 1");
        }
        if self.backoff_cap_ms < self.backoff_base_ms {
            return bad("backoff_cap_ms must be at least backoff_base_ms");
        }
        if self.max_attempts < 1 {
            return bad("max_attempts must be at least 1");
        }
        if self.timeout_ms < 1 || self.tick_seconds < 1 {
            return bad("timeout_ms and tick_seconds must be at least 1");
        }
        if u64::try_from(self.lease_ms).unwrap_or(0) <= self.timeout_ms {
            return bad("lease_ms must be longer than timeout_ms");
        }
        Ok(())
    }

    /// How many due deliveries one pass claims: as many as can be sent one after the other
    /// (each at most `timeout_ms`) within the lease, keeping a timeout's margin; 1 to 32.
    pub fn batch(&self) -> i64 {
        let per = i64::try_from(self.timeout_ms).unwrap_or(i64::MAX).max(1);
        (self.lease_ms / per - 1).clamp(1, 32)
    }

    /// The delay before the attempt after failed attempt number `attempt` (1, 2, …), in ms:
    /// `backoff_base_ms · 2^(attempt−1)`, at most `backoff_cap_ms`.
    pub fn backoff(&self, attempt: i64) -> i64 {
        let shift = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(40);
        self.backoff_base_ms
            .saturating_mul(1i64 << shift)
            .min(self.backoff_cap_ms)
    }
}

impl Default for WebhookConfig {
    fn default() -> WebhookConfig {
        WebhookConfig {
            backoff_base_ms: default_base(),
            backoff_cap_ms: default_cap(),
            max_attempts: default_attempts(),
            lease_ms: default_lease(),
            tick_seconds: default_tick(),
            timeout_ms: default_timeout(),
        }
    }
}

/// A subscription (its secret is never listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Subscription {
    /// Its id.
    pub id: String,
    /// Where notifications are POSTed.
    pub url: String,
    /// What it receives.
    pub events: Vec<EventType>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
    /// The log's event number it has been dispatched up to.
    pub cursor: i64,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Delivery {
    /// The outbox row (`X-Stagegate-Delivery`).
    pub delivery: i64,
    /// Its type.
    pub event_type: String,
    /// 1, 2, 3, …
    pub attempt: i64,
    /// When, Unix ms.
    pub at_ms: i64,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<i64>,
    /// Why it failed without an answer.
    pub error: Option<String>,
    /// How long it took, ms.
    pub duration_ms: i64,
    /// The delivery's state now: `pending`, `delivered` or `failed`.
    pub state: String,
}

/// Webhook failures.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The database.
    #[error("webhooks: {0}")]
    Database(#[from] sqlx::Error),
    /// The registry.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A subscription that cannot be made.
    #[error("{0}")]
    Invalid(String),
}

/// The webhooks of one server.
#[derive(Debug, Clone)]
pub struct Webhooks {
    registry: Registry,
    config: WebhookConfig,
    http: reqwest::Client,
}

/// `HMAC-SHA256(secret, "<timestamp>.<body>")` as lowercase hex: the `sha256=` value of
/// `X-Stagegate-Signature`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

macro_rules! q {
    ($store:expr, $sqlite:expr, $pg:expr, |$qq:ident| $body:expr) => {
        match $store {
            Store::Sqlite(p) => {
                let $qq = sqlx::query($sqlite);
                $body.execute(p).await?.rows_affected()
            }
            Store::Postgres(p) => {
                let $qq = sqlx::query($pg);
                $body.execute(p).await?.rows_affected()
            }
        }
    };
}

impl Webhooks {
    /// Webhooks over the registry's database.
    ///
    /// # Errors
    /// [`WebhookError::Invalid`] for settings that [`WebhookConfig::check`] refuses, or when
    /// the HTTP client cannot be built.
    pub fn new(registry: Registry, config: WebhookConfig) -> Result<Webhooks, WebhookError> {
        config.check()?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(config.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| WebhookError::Invalid(e.to_string()))?;
        Ok(Webhooks {
            registry,
            config,
            http,
        })
    }

    /// The settings.
    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    /// Subscribes `url` to `events`, starting after event number `from` (the head now: a new
    /// subscription is not sent the past). Returns the subscription.
    ///
    /// # Errors
    /// [`WebhookError::Invalid`] for a URL that is not http(s) or no event type.
    pub async fn subscribe(
        &self,
        url: &str,
        secret: &str,
        events: &[EventType],
        by: &str,
        now: jiff::Timestamp,
        from: i64,
    ) -> Result<Subscription, WebhookError> {
        let parsed =
            url::Url::parse(url).map_err(|e| WebhookError::Invalid(format!("url: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(WebhookError::Invalid("url: http or https only".into()));
        }
        if events.is_empty() {
            return Err(WebhookError::Invalid("events: at least one".into()));
        }
        if secret.len() < 16 {
            return Err(WebhookError::Invalid(
                "secret: at least 16 characters".into(),
            ));
        }
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| WebhookError::Invalid(e.to_string()))?;
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let mut events = events.to_vec();
        events.sort();
        events.dedup();
        let names = events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let created = now.to_string();
        q!(
            self.registry.store(),
            "INSERT INTO webhook_subscriptions (id, url, secret, events, created_at, created_by, active, cursor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7)",
            "INSERT INTO webhook_subscriptions (id, url, secret, events, created_at, created_by, active, cursor) VALUES ($1, $2, $3, $4, $5, $6, 1, $7)",
            |qq| qq
                .bind(&id)
                .bind(url)
                .bind(secret)
                .bind(&names)
                .bind(&created)
                .bind(by)
                .bind(from)
        );
        Ok(Subscription {
            id,
            url: url.into(),
            events,
            created_at: created,
            created_by: by.into(),
            cursor: from,
        })
    }

    /// Ends a subscription (its pending deliveries are not sent). Returns whether it existed.
    ///
    /// # Errors
    /// The database's.
    pub async fn unsubscribe(&self, id: &str) -> Result<bool, WebhookError> {
        let n = q!(
            self.registry.store(),
            "UPDATE webhook_subscriptions SET active = 0 WHERE id = ?1 AND active = 1",
            "UPDATE webhook_subscriptions SET active = 0 WHERE id = $1 AND active = 1",
            |qq| qq.bind(id)
        );
        Ok(n > 0)
    }

    /// The active subscriptions, by id, with their secrets.
    async fn active(&self) -> Result<Vec<(Subscription, String)>, WebhookError> {
        const Q: &str = "SELECT id, url, secret, events, created_at, created_by, cursor FROM webhook_subscriptions WHERE active = 1 ORDER BY id";
        let rows: Vec<(String, String, String, String, String, String, i64)> =
            match self.registry.store() {
                Store::Sqlite(p) => sqlx::query_as(Q).fetch_all(p).await?,
                Store::Postgres(p) => sqlx::query_as(Q).fetch_all(p).await?,
            };
        Ok(rows
            .into_iter()
            .map(
                |(id, url, secret, events, created_at, created_by, cursor)| {
                    (
                        Subscription {
                            id,
                            url,
                            events: events.split(',').filter_map(EventType::parse).collect(),
                            created_at,
                            created_by,
                            cursor,
                        },
                        secret,
                    )
                },
            )
            .collect())
    }

    /// The active subscriptions, by id (no secrets).
    ///
    /// # Errors
    /// The database's.
    pub async fn subscriptions(&self) -> Result<Vec<Subscription>, WebhookError> {
        Ok(self.active().await?.into_iter().map(|(s, _)| s).collect())
    }

    /// A subscription's delivery log, oldest attempt first.
    ///
    /// # Errors
    /// The database's.
    pub async fn deliveries(&self, subscription: &str) -> Result<Vec<Delivery>, WebhookError> {
        const Q_SQLITE: &str = "SELECT d.outbox_id, o.event_type, d.attempt, d.at_ms, d.status_code, d.error, d.duration_ms, o.status FROM webhook_deliveries d JOIN webhook_outbox o ON o.id = d.outbox_id WHERE d.subscription = ?1 ORDER BY d.id";
        const Q_PG: &str = "SELECT d.outbox_id, o.event_type, d.attempt, d.at_ms, d.status_code, d.error, d.duration_ms, o.status FROM webhook_deliveries d JOIN webhook_outbox o ON o.id = d.outbox_id WHERE d.subscription = $1 ORDER BY d.id";
        type Row = (
            i64,
            String,
            i64,
            i64,
            Option<i64>,
            Option<String>,
            i64,
            String,
        );
        let rows: Vec<Row> = match self.registry.store() {
            Store::Sqlite(p) => {
                sqlx::query_as(Q_SQLITE)
                    .bind(subscription)
                    .fetch_all(p)
                    .await?
            }
            Store::Postgres(p) => sqlx::query_as(Q_PG).bind(subscription).fetch_all(p).await?,
        };
        Ok(rows
            .into_iter()
            .map(
                |(delivery, event_type, attempt, at_ms, status_code, error, duration_ms, state)| {
                    Delivery {
                        delivery,
                        event_type,
                        attempt,
                        at_ms,
                        status_code,
                        error,
                        duration_ms,
                        state,
                    }
                },
            )
            .collect())
    }

    /// One dispatch pass over a verified snapshot: every active subscription gets the
    /// notifications it asked for, from the log after its cursor (up to the snapshot's head)
    /// and from the portfolio as of `as_of`. Returns the outbox rows added.
    ///
    /// # Errors
    /// The database's.
    pub async fn dispatch(
        &self,
        snap: &Snapshot,
        as_of: Date,
        purgatory_days: u32,
        now_ms: i64,
    ) -> Result<usize, WebhookError> {
        let subs = self.active().await?;
        if subs.is_empty() {
            return Ok(0);
        }
        let from = subs.iter().map(|(s, _)| s.cursor).min().unwrap_or(0);
        let rows: Vec<_> = self
            .registry
            .events_after(from)
            .await?
            .into_iter()
            .filter(|r| r.seq <= snap.state.size)
            .collect();
        let agents: Vec<_> = snap.portfolio.values().cloned().collect();
        let card = stagegate_portfolio::scorecard(
            &agents,
            &stagegate_portfolio::Options {
                purgatory_days,
                ..stagegate_portfolio::Options::new(as_of)
            },
        );
        let mut added = 0;
        for (sub, _) in &subs {
            let mut out: Vec<(EventType, String, Value)> = Vec::new();
            let wants = |t: EventType| sub.events.contains(&t);
            for r in rows.iter().filter(|r| r.seq > sub.cursor) {
                let Ok(ev) = serde_json::from_str::<Event>(&r.body) else {
                    continue;
                };
                match ev {
                    Event::ReviewRecorded {
                        agent,
                        decision,
                        digest,
                        version,
                        ..
                    } => {
                        if wants(EventType::ReviewRecorded) {
                            out.push((
                                EventType::ReviewRecorded,
                                format!("seq:{}:review-recorded", r.seq),
                                body(
                                    EventType::ReviewRecorded,
                                    &format!("{agent} {version}: review recorded, {decision} ({digest})"),
                                    json!({"agent": agent, "event": r.seq, "decision": decision, "digest": digest, "version": version, "at": r.as_of, "recorded_at": r.recorded_at}),
                                ),
                            ));
                        }
                        let before = snap
                            .state
                            .agents
                            .get(&agent)
                            .and_then(|a| a.reviews.iter().rev().find(|h| h.id < r.seq))
                            .map(|h| h.decision.clone());
                        if wants(EventType::DecisionChanged)
                            && before.as_ref().is_some_and(|b| *b != decision)
                        {
                            let b = before.unwrap_or_default();
                            out.push((
                                EventType::DecisionChanged,
                                format!("seq:{}:decision-changed", r.seq),
                                body(
                                    EventType::DecisionChanged,
                                    &format!("{agent}: decision changed from {b} to {decision}"),
                                    json!({"agent": agent, "event": r.seq, "from": b, "to": decision, "at": r.as_of, "recorded_at": r.recorded_at}),
                                ),
                            ));
                        }
                    }
                    Event::StageChanged {
                        agent, from, to, ..
                    } if wants(EventType::StageChanged) => {
                        let f = from.unwrap_or_else(|| "none".into());
                        out.push((
                            EventType::StageChanged,
                            format!("seq:{}:stage-changed", r.seq),
                            body(
                                EventType::StageChanged,
                                &format!("{agent}: {f} → {to} on {}", r.as_of.clone().unwrap_or_default()),
                                json!({"agent": agent, "event": r.seq, "from": f, "to": to, "at": r.as_of, "recorded_at": r.recorded_at}),
                            ),
                        ));
                    }
                    Event::RolloutChanged { agent, change, act }
                        if wants(EventType::RolloutChanged) =>
                    {
                        let by = act.as_ref().map_or("the controller", |a| a.person.as_str());
                        let what = match &change {
                            stagegate_rollout::Transition::Rollback {
                                trigger, to_phase, ..
                            } => format!(
                                "rolled back to {} (trigger {trigger} failed)",
                                to_phase.map_or_else(
                                    || "0%".to_owned(),
                                    |p| format!("phase {}", p + 1)
                                )
                            ),
                            stagegate_rollout::Transition::Pause { reason, .. } => {
                                format!("paused: {reason}")
                            }
                            other => other.action().to_owned(),
                        };
                        out.push((
                            EventType::RolloutChanged,
                            format!("seq:{}:rollout-changed", r.seq),
                            body(
                                EventType::RolloutChanged,
                                &format!("{agent}: rollout {what} (by {by})"),
                                json!({"agent": agent, "event": r.seq, "action": change.action(), "by": by, "change": change, "recorded_at": r.recorded_at}),
                            ),
                        ));
                    }
                    Event::KillSwitchSet {
                        agent,
                        disabled,
                        drill,
                        reason,
                        act,
                    } if wants(EventType::KillSwitch) => {
                        let what = if disabled {
                            "KILL SWITCH PULLED"
                        } else {
                            "kill switch restored"
                        };
                        let d = if drill { " (drill)" } else { "" };
                        out.push((
                            EventType::KillSwitch,
                            format!("seq:{}:kill-switch", r.seq),
                            body(
                                EventType::KillSwitch,
                                &format!("{agent}: {what}{d} by {}: {reason}", act.person),
                                json!({"agent": agent, "event": r.seq, "disabled": disabled, "drill": drill, "reason": reason, "by": act.person, "recorded_at": r.recorded_at}),
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            if wants(EventType::OpenItemOverdue) {
                for o in &card.overdue_open_items {
                    out.push((
                        EventType::OpenItemOverdue,
                        format!("overdue:{}:{}:{}:{}", o.agent, o.item, o.due, o.source),
                        body(
                            EventType::OpenItemOverdue,
                            &format!("{}: open item on item {} ({}) was due {} ({})", o.agent, o.item, o.what, o.due, o.owner.as_deref().unwrap_or("no owner")),
                            json!({"agent": o.agent, "item": o.item, "what": o.what, "owner": o.owner, "due": o.due.to_string(), "as_of": as_of.to_string()}),
                        ),
                    ));
                }
            }
            if wants(EventType::PilotPurgatory) {
                for p in &card.pilot_purgatory {
                    out.push((
                        EventType::PilotPurgatory,
                        format!("purgatory:{}:{}", p.agent, p.pilot_end),
                        body(
                            EventType::PilotPurgatory,
                            &format!("{}: pilot ended {} ({} days ago) with no decision since (seed 004)", p.agent, p.pilot_end, p.days_since_pilot_end),
                            json!({"agent": p.agent, "pilot_end": p.pilot_end.to_string(), "days_since_pilot_end": p.days_since_pilot_end, "as_of": as_of.to_string()}),
                        ),
                    ));
                }
            }
            if wants(EventType::EvidenceStale) {
                for d in &card.stale_drills {
                    let last = d.last_drill.map(|x| x.to_string());
                    out.push((
                        EventType::EvidenceStale,
                        format!("drill:{}:{}:{}", d.agent, last.as_deref().unwrap_or("none"), d.status.words()),
                        body(
                            EventType::EvidenceStale,
                            &format!("{}: kill-switch drill {} (last {})", d.agent, d.status.words(), last.as_deref().unwrap_or("none")),
                            json!({"agent": d.agent, "last_drill": last, "due": d.due.map(|x| x.to_string()), "status": d.status.words(), "as_of": as_of.to_string()}),
                        ),
                    ));
                }
            }
            added += self
                .enqueue(&sub.id, snap.state.size.max(sub.cursor), &out, now_ms)
                .await?;
        }
        Ok(added)
    }

    /// Inserts the rows (skipping dedup keys already there) and moves the cursor, in one
    /// transaction.
    async fn enqueue(
        &self,
        sub: &str,
        cursor: i64,
        rows: &[(EventType, String, Value)],
        now_ms: i64,
    ) -> Result<usize, WebhookError> {
        macro_rules! run {
            ($pool:expr, $p:literal) => {{
                let mut tx = $pool.begin().await?;
                let mut n = 0;
                for (t, dedup, b) in rows {
                    n += sqlx::query(concat!(
                        "INSERT INTO webhook_outbox (subscription, event_type, dedup, body, created_ms, next_attempt_ms) VALUES (",
                        $p, "1, ", $p, "2, ", $p, "3, ", $p, "4, ", $p, "5, ", $p, "5) ON CONFLICT (subscription, dedup) DO NOTHING"
                    ))
                    .bind(sub)
                    .bind(t.as_str())
                    .bind(dedup)
                    .bind(b.to_string())
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected() as usize;
                }
                sqlx::query(concat!("UPDATE webhook_subscriptions SET cursor = ", $p, "2 WHERE id = ", $p, "1 AND cursor < ", $p, "2"))
                    .bind(sub)
                    .bind(cursor)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                n
            }};
        }
        Ok(match self.registry.store() {
            Store::Sqlite(p) => run!(p, "?"),
            Store::Postgres(p) => run!(p, "$"),
        })
    }

    /// Claims the due deliveries (at most [`WebhookConfig::batch`], under a lease of
    /// `lease_ms`), POSTs them one after the other, and records each attempt. Returns how
    /// many were delivered.
    ///
    /// # Errors
    /// The database's (a receiver's failure is an attempt, not an error).
    pub async fn deliver_due(&self, now_ms: i64) -> Result<usize, WebhookError> {
        self.deliver(now_ms, None).await
    }

    /// [`Webhooks::deliver_due`], stopping before the next POST once `stop` is true: the
    /// claimed rows not yet sent are released (due at once again, for the next start).
    async fn deliver(
        &self,
        now_ms: i64,
        stop: Option<&tokio::sync::watch::Receiver<bool>>,
    ) -> Result<usize, WebhookError> {
        let claimed = self.claim(now_ms).await?;
        let mut delivered = 0;
        for (n, (id, sub, event_type, body, attempts, url, secret)) in
            claimed.iter().cloned().enumerate()
        {
            if stop.is_some_and(|s| *s.borrow()) {
                let rest: Vec<i64> = claimed[n..].iter().map(|c| c.0).collect();
                self.release(&rest, now_ms).await?;
                break;
            }
            let attempt = attempts + 1;
            let ts = now_ms / 1000;
            let started = std::time::Instant::now();
            let res = self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .header("x-stagegate-event", &event_type)
                .header("x-stagegate-delivery", id.to_string())
                .header("x-stagegate-timestamp", ts.to_string())
                .header(
                    "x-stagegate-signature",
                    format!("sha256={}", signature(&secret, ts, &body)),
                )
                .body(body)
                .send()
                .await;
            let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let (code, error) = match res {
                Ok(r) => (Some(i64::from(r.status().as_u16())), None),
                Err(e) => (None, Some(failure(e))),
            };
            let ok = code.is_some_and(|c| (200..300).contains(&c));
            let (state, next) = if ok {
                ("delivered", now_ms)
            } else if attempt >= self.config.max_attempts {
                ("failed", now_ms)
            } else {
                ("pending", now_ms + self.config.backoff(attempt))
            };
            self.record(
                id,
                &sub,
                attempt,
                now_ms,
                code,
                error.as_deref(),
                ms,
                state,
                next,
            )
            .await?;
            if ok {
                delivered += 1;
            }
        }
        Ok(delivered)
    }

    /// Makes claimed rows due at `now_ms` again (their lease given back).
    async fn release(&self, ids: &[i64], now_ms: i64) -> Result<(), WebhookError> {
        for id in ids {
            q!(
                self.registry.store(),
                "UPDATE webhook_outbox SET next_attempt_ms = ?2 WHERE id = ?1 AND status = 'pending'",
                "UPDATE webhook_outbox SET next_attempt_ms = $2 WHERE id = $1 AND status = 'pending'",
                |qq| qq.bind(id).bind(now_ms)
            );
        }
        Ok(())
    }

    /// When the next pending delivery of an active subscription is due (Unix ms; a claimed
    /// one's lease end), or `None` when nothing is pending.
    ///
    /// # Errors
    /// The database's.
    pub async fn next_due(&self) -> Result<Option<i64>, WebhookError> {
        const Q: &str = "SELECT MIN(o.next_attempt_ms) FROM webhook_outbox o JOIN webhook_subscriptions s ON s.id = o.subscription WHERE o.status = 'pending' AND s.active = 1";
        Ok(match self.registry.store() {
            Store::Sqlite(p) => sqlx::query_scalar(Q).fetch_one(p).await?,
            Store::Postgres(p) => sqlx::query_scalar(Q).fetch_one(p).await?,
        })
    }

    #[allow(clippy::type_complexity)]
    async fn claim(
        &self,
        now_ms: i64,
    ) -> Result<Vec<(i64, String, String, String, i64, String, String)>, WebhookError> {
        const PICK_SQLITE: &str = "SELECT o.id, o.subscription, o.event_type, o.body, o.attempts, s.url, s.secret FROM webhook_outbox o JOIN webhook_subscriptions s ON s.id = o.subscription WHERE o.status = 'pending' AND o.next_attempt_ms <= ?1 AND s.active = 1 ORDER BY o.id LIMIT ?2";
        const PICK_PG: &str = "SELECT o.id, o.subscription, o.event_type, o.body, o.attempts, s.url, s.secret FROM webhook_outbox o JOIN webhook_subscriptions s ON s.id = o.subscription WHERE o.status = 'pending' AND o.next_attempt_ms <= $1 AND s.active = 1 ORDER BY o.id LIMIT $2 FOR UPDATE OF o SKIP LOCKED";
        let lease = now_ms + self.config.lease_ms;
        macro_rules! run {
            ($pool:expr, $pick:expr, $p:literal) => {{
                let mut tx = $pool.begin().await?;
                let rows = sqlx::query($pick)
                    .bind(now_ms)
                    .bind(self.config.batch())
                    .fetch_all(&mut *tx)
                    .await?;
                let mut out = Vec::new();
                for r in rows {
                    let id: i64 = r.get(0);
                    sqlx::query(concat!(
                        "UPDATE webhook_outbox SET next_attempt_ms = ",
                        $p,
                        "2 WHERE id = ",
                        $p,
                        "1"
                    ))
                    .bind(id)
                    .bind(lease)
                    .execute(&mut *tx)
                    .await?;
                    out.push((
                        id,
                        r.get(1),
                        r.get(2),
                        r.get(3),
                        r.get(4),
                        r.get(5),
                        r.get(6),
                    ));
                }
                tx.commit().await?;
                out
            }};
        }
        Ok(match self.registry.store() {
            Store::Sqlite(p) => run!(p, PICK_SQLITE, "?"),
            Store::Postgres(p) => run!(p, PICK_PG, "$"),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        id: i64,
        sub: &str,
        attempt: i64,
        at_ms: i64,
        code: Option<i64>,
        error: Option<&str>,
        duration_ms: i64,
        state: &str,
        next_ms: i64,
    ) -> Result<(), WebhookError> {
        macro_rules! run {
            ($pool:expr, $p:literal) => {{
                let mut tx = $pool.begin().await?;
                sqlx::query(concat!(
                    "INSERT INTO webhook_deliveries (outbox_id, subscription, attempt, at_ms, status_code, error, duration_ms) VALUES (",
                    $p, "1, ", $p, "2, ", $p, "3, ", $p, "4, ", $p, "5, ", $p, "6, ", $p, "7)"
                ))
                .bind(id)
                .bind(sub)
                .bind(attempt)
                .bind(at_ms)
                .bind(code)
                .bind(error)
                .bind(duration_ms)
                .execute(&mut *tx)
                .await?;
                sqlx::query(concat!(
                    "UPDATE webhook_outbox SET attempts = ", $p, "2, status = ", $p, "3, next_attempt_ms = ", $p, "4 WHERE id = ", $p, "1"
                ))
                .bind(id)
                .bind(attempt)
                .bind(state)
                .bind(next_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }};
        }
        match self.registry.store() {
            Store::Sqlite(p) => run!(p, "?"),
            Store::Postgres(p) => run!(p, "$"),
        }
        Ok(())
    }
}

/// A failed POST in words, with its causes (connection refused, timed out, …) but not the
/// URL: a Slack incoming-webhook URL is itself a secret, and the delivery log is served.
fn failure(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut words = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        words.push_str(": ");
        words.push_str(&c.to_string());
        cause = c.source();
    }
    words
}

/// A Slack-compatible body: `text` for a Slack incoming webhook, and `stagegate` with the
/// machine-readable facts.
fn body(t: EventType, text: &str, facts: Value) -> Value {
    let mut facts = facts;
    if let Some(o) = facts.as_object_mut() {
        o.insert("type".into(), Value::String(t.as_str().into()));
    }
    json!({"text": format!("stagegate: {text}"), "stagegate": facts})
}

/// The shortest wait between two passes, so that rows due but not claimable (another
/// replica is claiming them) do not make the worker spin.
const MIN_WAIT_MS: i64 = 25;

/// The worker: a dispatch and a delivery pass whenever the log changes (the cache's wake-up,
/// which LISTEN/NOTIFY also rings) and every `tick_seconds` (time-based notifications), and a
/// delivery pass when the next pending delivery is due (so retries keep their backoff, and a
/// backlog beyond one batch is drained at once), until `shutdown` is true. A wake-up during a
/// pass is not lost: the next wait returns at once. On shutdown the POST in flight finishes
/// (at most `timeout_ms`), the claimed rows not yet sent are released, and what is pending
/// stays in the outbox for the next start.
pub async fn run(
    hooks: Webhooks,
    cache: std::sync::Arc<crate::cache::Cache>,
    clock: crate::ClockFn,
    purgatory_days: u32,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use std::future::Future;
    let mut shutdown = shutdown;
    let tick_ms = i64::try_from(hooks.config.tick_seconds.max(1))
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000);
    // Dispatch on a write, on the tick, and not again when only a retry fell due.
    let mut dispatch = true;
    let mut dispatched = std::time::Instant::now();
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Listen for writes before the pass: one during the pass ends the wait below.
        let changed = cache.changed();
        tokio::pin!(changed);
        let early =
            std::future::poll_fn(|cx| std::task::Poll::Ready(changed.as_mut().poll(cx).is_ready()))
                .await;
        let now = clock();
        let now_ms = now.as_millisecond();
        if dispatch || dispatched.elapsed().as_millis() >= u128::from(tick_ms.unsigned_abs()) {
            dispatched = std::time::Instant::now();
            match cache.snapshot().await {
                Ok(snap) => {
                    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
                    if let Err(e) = hooks.dispatch(&snap, today, purgatory_days, now_ms).await {
                        tracing::warn!(error = %e, "webhook dispatch failed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "webhooks wait for a verified registry"),
            }
        }
        if let Err(e) = hooks.deliver(now_ms, Some(&shutdown)).await {
            tracing::warn!(error = %e, "webhook delivery failed");
        }
        if early {
            dispatch = true;
            continue;
        }
        let wait_ms = match hooks.next_due().await {
            Ok(Some(due)) => (due - clock().as_millisecond()).clamp(MIN_WAIT_MS, tick_ms),
            Ok(None) => tick_ms,
            Err(e) => {
                tracing::warn!(error = %e, "webhooks: the next due delivery is unknown");
                tick_ms.min(1000)
            }
        };
        let wait = std::time::Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0));
        dispatch = false;
        tokio::select! {
            () = &mut changed => dispatch = true,
            () = tokio::time::sleep(wait) => {},
            r = shutdown.changed() => if r.is_err() {
                // The sender is gone: its owner has stopped.
                return;
            },
        }
    }
}
