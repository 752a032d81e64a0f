-- stagegate registry schema on SQLite (registry format 2): one append-only event log. Every state change is one
-- row; an agent's stage, criteria lock and reviews are derived by replaying the log. Each row's
-- `hash` covers every other column and the previous row's hash; `registry_sig` is the registry
-- key's SSH signature over `hash`. The triggers refuse UPDATE and DELETE through SQL; edits
-- made behind SQLite's back are caught by `stagegate verify`.
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY,
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
CREATE INDEX IF NOT EXISTS events_by_agent ON events(agent_id, seq);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'registry is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'registry is append-only'); END;
PRAGMA user_version = 2;
