-- Rollout telemetry (SQLite): one row per batch of spans received for a rolling-out agent,
-- summarised per trigger and arm (stagegate_rollout::Tally as JSON). The controller of any
-- replica rebuilds a phase's state from these rows in id order, so a restart loses nothing.
-- Not a fact of the log: the decisions taken from them are events, with their statistics.
CREATE TABLE IF NOT EXISTS rollout_tallies (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    agent       TEXT NOT NULL,
    rollout_seq INTEGER NOT NULL,
    epoch       INTEGER NOT NULL,
    tally       TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rollout_tallies_by_phase ON rollout_tallies (agent, rollout_seq, epoch, id);
