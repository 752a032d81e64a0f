-- stagegate registry schema, version 1. Every table is append-only: the triggers below abort
-- UPDATE and DELETE. An agent's stage is its latest stage_events row.
CREATE TABLE IF NOT EXISTS agents (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    first_seen  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS criteria_locks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id      TEXT NOT NULL REFERENCES agents(id),
    digest        TEXT NOT NULL,
    criteria_json TEXT NOT NULL,
    locked_on     TEXT NOT NULL,
    locked_by     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stage_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id   TEXT NOT NULL REFERENCES agents(id),
    stage      TEXT NOT NULL CHECK (stage IN ('pilot', 'production')),
    at         TEXT NOT NULL,
    by         TEXT NOT NULL,
    review_id  INTEGER REFERENCES reviews(id)
);
CREATE TABLE IF NOT EXISTS reviews (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id        TEXT NOT NULL REFERENCES agents(id),
    agent_version   TEXT NOT NULL,
    stage           TEXT,
    review_date     TEXT NOT NULL,
    recorded_at     TEXT NOT NULL,
    recorded_by     TEXT NOT NULL,
    decision        TEXT NOT NULL CHECK (decision IN ('Cleared', 'Conditional', 'Blocked')),
    digest          TEXT NOT NULL,
    criteria_digest TEXT NOT NULL,
    report_json     TEXT NOT NULL,
    prev_hash       TEXT NOT NULL,
    entry_hash      TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS review_items (
    review_id  INTEGER NOT NULL REFERENCES reviews(id),
    item       INTEGER NOT NULL CHECK (item BETWEEN 1 AND 10),
    status     TEXT NOT NULL CHECK (status IN ('pass', 'open', 'fail')),
    reasons    TEXT NOT NULL,
    PRIMARY KEY (review_id, item)
);
CREATE TABLE IF NOT EXISTS review_inputs (
    review_id  INTEGER NOT NULL REFERENCES reviews(id),
    role       TEXT NOT NULL,
    path       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    PRIMARY KEY (review_id, role, path)
);
CREATE INDEX IF NOT EXISTS reviews_by_agent ON reviews(agent_id, id);
CREATE INDEX IF NOT EXISTS stage_by_agent ON stage_events(agent_id, id);

CREATE TRIGGER IF NOT EXISTS agents_no_update BEFORE UPDATE ON agents BEGIN SELECT RAISE(ABORT, 'registry is append-only'); END;
CREATE TRIGGER IF NOT EXISTS agents_no_delete BEFORE DELETE ON agents BEGIN SELECT RAISE(ABORT, 'registry is append-only'); END;
CREATE TRIGGER IF NOT EXISTS locks_no_update BEFORE UPDATE ON criteria_locks BEGIN SELECT RAISE(ABORT, 'registry is append-only'); END;
CREATE TRIGGER IF NOT EXISTS locks_no_delete BEFORE DELETE ON criteria_locks BEGIN SELECT RAISE(ABORT, 'registry is append-only'); END;
CREATE TRIGGER IF NOT EXISTS stages_no_update BEFORE UPDATE ON stage_events BEGIN SELECT RAISE(ABORT, 'registry is append-only'); END;
CREATE TRIGGER IF NOT EXISTS stages_no_delete BEFORE DELETE ON stage_events BEGIN SELECT RAISE(ABORT, 'registry is append-only'); END;
CREATE TRIGGER IF NOT EXISTS reviews_no_update BEFORE UPDATE ON reviews BEGIN SELECT RAISE(ABORT, 'registry is append-only'); END;
CREATE TRIGGER IF NOT EXISTS reviews_no_delete BEFORE DELETE ON reviews BEGIN SELECT RAISE(ABORT, 'registry is append-only'); END;
CREATE TRIGGER IF NOT EXISTS items_no_update BEFORE UPDATE ON review_items BEGIN SELECT RAISE(ABORT, 'registry is append-only'); END;
CREATE TRIGGER IF NOT EXISTS items_no_delete BEFORE DELETE ON review_items BEGIN SELECT RAISE(ABORT, 'registry is append-only'); END;
CREATE TRIGGER IF NOT EXISTS inputs_no_update BEFORE UPDATE ON review_inputs BEGIN SELECT RAISE(ABORT, 'registry is append-only'); END;
CREATE TRIGGER IF NOT EXISTS inputs_no_delete BEFORE DELETE ON review_inputs BEGIN SELECT RAISE(ABORT, 'registry is append-only'); END;
