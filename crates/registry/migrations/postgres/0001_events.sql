-- stagegate registry schema on PostgreSQL, version 1 of this backend: the same append-only
-- event log as on SQLite, column for column (the hashes cover the same text). Every state
-- change is one row; state is derived by replaying the log. Triggers refuse UPDATE, DELETE and
-- TRUNCATE through SQL; edits made behind PostgreSQL's back are caught by `stagegate verify`.
-- Each insert notifies channel `stagegate_events` with the new event number, so server
-- replicas refresh their cached state (LISTEN/NOTIFY).
CREATE TABLE IF NOT EXISTS events (
    seq          BIGINT PRIMARY KEY,
    kind         TEXT NOT NULL,
    agent_id     TEXT,
    as_of        TEXT,
    recorded_at  TEXT NOT NULL,
    clock        TEXT NOT NULL CHECK (clock IN ('system', 'override')),
    actor        TEXT NOT NULL,
    body         TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    registry_sig TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_agent ON events (agent_id, seq);

CREATE OR REPLACE FUNCTION stagegate_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'registry is append-only';
END
$$;
CREATE OR REPLACE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION stagegate_append_only();
CREATE OR REPLACE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION stagegate_append_only();

CREATE OR REPLACE FUNCTION stagegate_notify_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('stagegate_events', NEW.seq::text);
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION stagegate_notify_event();
