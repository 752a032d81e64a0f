-- Webhooks (PostgreSQL): subscriptions with their cursor over the event log, a durable outbox
-- (one row per notification and subscription, unique by dedup key) and the delivery log (one
-- row per attempt). Times that are compared are Unix milliseconds.
CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    events      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    active      BIGINT NOT NULL DEFAULT 1,
    cursor      BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id              BIGSERIAL PRIMARY KEY,
    subscription    TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    dedup           TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'pending',
    UNIQUE (subscription, dedup)
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (status, next_attempt_ms);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id           BIGSERIAL PRIMARY KEY,
    outbox_id    BIGINT NOT NULL,
    subscription TEXT NOT NULL,
    attempt      BIGINT NOT NULL,
    at_ms        BIGINT NOT NULL,
    status_code  BIGINT,
    error        TEXT,
    duration_ms  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_sub ON webhook_deliveries (subscription, id);
