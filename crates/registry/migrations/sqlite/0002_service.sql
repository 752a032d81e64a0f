-- Service tables beside the event log (SQLite). They hold what is not a fact of the log:
-- API tokens (argon2 hashes only; who created or revoked one is also an event) and the
-- content-addressed attachments that evidence events name by sha256 (the event carries the
-- digest, so an edited blob no longer matches the log).
CREATE TABLE IF NOT EXISTS api_tokens (
    id          TEXT PRIMARY KEY,
    person      TEXT NOT NULL,
    roles       TEXT NOT NULL,
    agents      TEXT NOT NULL DEFAULT '',
    hash        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE TABLE IF NOT EXISTS blobs (
    sha256      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    content     BLOB NOT NULL
);
