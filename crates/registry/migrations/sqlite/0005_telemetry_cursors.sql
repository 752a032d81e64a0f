-- Polled rollout telemetry (SQLite): how far each configured source has been read for a
-- rollout (a PostgreSQL table's last event time, a Prometheus source's last counter values).
-- The cursor moves in the same transaction as the tally it produced is stored, and only from
-- the value the poller read, so two replicas polling the same source count each event once.
CREATE TABLE IF NOT EXISTS telemetry_cursors (
    agent       TEXT NOT NULL,
    rollout_seq INTEGER NOT NULL,
    source      TEXT NOT NULL,
    cursor      TEXT NOT NULL,
    PRIMARY KEY (agent, rollout_seq, source)
);
