-- Webhooks (SQLite): subscriptions with their cursor over the event log, a durable outbox
-- (one row per notification and subscription, unique by dedup key) and the delivery log (one
-- row per attempt). Times that are compared are Unix milliseconds.
CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    events      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    cursor      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription    TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    dedup           TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'pending',
    UNIQUE (subscription, dedup)
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (status, next_attempt_ms);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id    INTEGER NOT NULL,
    subscription TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    at_ms        INTEGER NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_sub ON webhook_deliveries (subscription, id);
