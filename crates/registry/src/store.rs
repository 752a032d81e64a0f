//! Where the log is kept: embedded SQLite (the default) or PostgreSQL (the shared server's
//! store). Both hold the same `events` table, column for column, created by one set of sqlx
//! migrations per backend (`migrations/sqlite`, `migrations/postgres`); everything above this
//! module — hashing, replay, rules, verification — is the same code for both.
//!
//! One writer of the head at a time: an append runs in one transaction that first takes the
//! write lock (`BEGIN IMMEDIATE` on SQLite; `LOCK TABLE events IN EXCLUSIVE MODE` on
//! PostgreSQL, which still lets readers read), then re-reads the log.

use crate::RegistryError;
use crate::event::StoredEvent;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{Row, SqlSafeStr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where a registry lives, from `--registry` / `$STAGEGATE_REGISTRY`: a `postgres://` or
/// `postgresql://` URL, else the path of an SQLite file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An embedded SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by connection URL.
    Postgres(String),
}

impl Location {
    /// Reads a `--registry` value.
    pub fn parse(s: &str) -> Location {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Location::Postgres(s.to_owned())
        } else {
            Location::Sqlite(PathBuf::from(s))
        }
    }

    /// For messages: the path, or the URL with any password replaced by `***`.
    pub fn shown(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(u) => match url::Url::parse(u) {
                Ok(mut url) => {
                    if url.password().is_some() {
                        let _ = url.set_password(Some("***"));
                    }
                    url.to_string()
                }
                Err(_) => "postgres://(unparsable URL)".into(),
            },
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

/// An open connection pool to one backend. Public for the service tables that live beside
/// the log (tokens, attachments, webhooks); the `events` table is written only through
/// [`crate::Registry`].
#[derive(Debug, Clone)]
pub enum Store {
    /// Embedded SQLite (one connection: SQLite has one writer).
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// A write transaction holding the log's write lock.
pub(crate) enum WriteTx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

const SELECT: &str = "SELECT seq, kind, agent_id, as_of, recorded_at, clock, actor, body, prev_hash, hash, registry_sig FROM events ORDER BY seq";

/// The migrations of one backend, in order: `(version, name, SQL)`.
type Migrations = &'static [(i64, &'static str, &'static str)];

const SQLITE_MIGRATIONS: Migrations = &[
    (
        1,
        "events",
        include_str!("../migrations/sqlite/0001_events.sql"),
    ),
    (
        2,
        "service",
        include_str!("../migrations/sqlite/0002_service.sql"),
    ),
    (
        3,
        "webhooks",
        include_str!("../migrations/sqlite/0003_webhooks.sql"),
    ),
    (
        4,
        "rollout",
        include_str!("../migrations/sqlite/0004_rollout.sql"),
    ),
    (
        5,
        "telemetry_cursors",
        include_str!("../migrations/sqlite/0005_telemetry_cursors.sql"),
    ),
];

const POSTGRES_MIGRATIONS: Migrations = &[
    (
        1,
        "events",
        include_str!("../migrations/postgres/0001_events.sql"),
    ),
    (
        2,
        "service",
        include_str!("../migrations/postgres/0002_service.sql"),
    ),
    (
        3,
        "webhooks",
        include_str!("../migrations/postgres/0003_webhooks.sql"),
    ),
    (
        4,
        "rollout",
        include_str!("../migrations/postgres/0004_rollout.sql"),
    ),
    (
        5,
        "telemetry_cursors",
        include_str!("../migrations/postgres/0005_telemetry_cursors.sql"),
    ),
];

fn migrator(list: Migrations) -> Migrator {
    Migrator::with_migrations(
        list.iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    (*name).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

macro_rules! to_event {
    ($r:expr) => {
        StoredEvent {
            seq: $r.get(0),
            kind: $r.get(1),
            agent_id: $r.get(2),
            as_of: $r.get(3),
            recorded_at: $r.get(4),
            clock: $r.get(5),
            actor: $r.get(6),
            body: $r.get(7),
            prev_hash: $r.get(8),
            hash: $r.get(9),
            registry_sig: $r.get(10),
        }
    };
}

impl Store {
    /// Connects; with `create`, creates the SQLite file (and its folder) and applies the
    /// migrations. Without it, a registry that does not exist yet is
    /// [`RegistryError::Missing`].
    pub(crate) async fn open(loc: &Location, create: bool) -> Result<Store, RegistryError> {
        let db = |source| RegistryError::Database {
            path: loc.shown(),
            source,
        };
        match loc {
            Location::Sqlite(path) => {
                if !create && !path.exists() {
                    return Err(RegistryError::Missing(loc.shown()));
                }
                if create
                    && let Some(parent) = path.parent()
                    && !parent.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(parent).map_err(|e| db(sqlx::Error::Io(e)))?;
                }
                let opts = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(create)
                    .foreign_keys(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                    .busy_timeout(std::time::Duration::from_secs(60));
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(opts)
                    .await
                    .map_err(db)?;
                refuse_v1(&pool, path).await.map_err(|e| match e {
                    Ok(rule) => rule,
                    Err(e) => db(e),
                })?;
                // Migrations run even without `create`: an existing file made by an older
                // build of this format gets the migration table.
                let m = migrator(SQLITE_MIGRATIONS);
                // Processes creating one registry at once may race on the migration table;
                // the loser finds it applied on the next try.
                let mut tries = 0;
                loop {
                    match m.run(&pool).await {
                        Ok(()) => break,
                        Err(_) if tries < 3 => tries += 1,
                        Err(e) => return Err(db(sqlx::Error::Migrate(Box::new(e)))),
                    }
                }
                Ok(Store::Sqlite(pool))
            }
            Location::Postgres(url) => {
                let opts = PgConnectOptions::from_str(url).map_err(db)?;
                // One direct connection first: a pool reports only "timed out", this says why.
                {
                    use sqlx::Connection;
                    sqlx::PgConnection::connect_with(&opts)
                        .await
                        .map_err(db)?
                        .close()
                        .await
                        .map_err(db)?;
                }
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(std::time::Duration::from_secs(30))
                    .connect_with(opts)
                    .await
                    .map_err(db)?;
                if !create {
                    let exists: Option<String> =
                        sqlx::query_scalar("SELECT to_regclass('events')::text")
                            .fetch_one(&pool)
                            .await
                            .map_err(db)?;
                    if exists.is_none() {
                        return Err(RegistryError::Missing(loc.shown()));
                    }
                }
                // sqlx takes an advisory lock around PostgreSQL migrations.
                migrator(POSTGRES_MIGRATIONS)
                    .run(&pool)
                    .await
                    .map_err(|e| db(sqlx::Error::Migrate(Box::new(e))))?;
                Ok(Store::Postgres(pool))
            }
        }
    }

    /// Every row, oldest first.
    pub(crate) async fn rows(&self) -> Result<Vec<StoredEvent>, sqlx::Error> {
        Ok(match self {
            Store::Sqlite(p) => sqlx::query(SELECT)
                .fetch_all(p)
                .await?
                .into_iter()
                .map(|r| to_event!(r))
                .collect(),
            Store::Postgres(p) => sqlx::query(SELECT)
                .fetch_all(p)
                .await?
                .into_iter()
                .map(|r| to_event!(r))
                .collect(),
        })
    }

    /// Starts a write transaction holding the log's write lock.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        Ok(match self {
            Store::Sqlite(p) => WriteTx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Store::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
                WriteTx::Postgres(tx)
            }
        })
    }

    /// One cheap round trip to the database.
    pub(crate) async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Store::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
            Store::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
        }
    }

    /// Closes the pool (flushing SQLite's WAL).
    pub(crate) async fn close(&self) {
        match self {
            Store::Sqlite(p) => p.close().await,
            Store::Postgres(p) => p.close().await,
        }
    }
}

impl WriteTx {
    /// Every row, oldest first, as this transaction sees them.
    pub(crate) async fn rows(&mut self) -> Result<Vec<StoredEvent>, sqlx::Error> {
        Ok(match self {
            WriteTx::Sqlite(tx) => sqlx::query(SELECT)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(|r| to_event!(r))
                .collect(),
            WriteTx::Postgres(tx) => sqlx::query(SELECT)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(|r| to_event!(r))
                .collect(),
        })
    }

    /// Inserts one row.
    pub(crate) async fn insert(&mut self, row: &StoredEvent) -> Result<(), sqlx::Error> {
        macro_rules! bind_all {
            ($q:expr) => {
                $q.bind(row.seq)
                    .bind(&row.kind)
                    .bind(&row.agent_id)
                    .bind(&row.as_of)
                    .bind(&row.recorded_at)
                    .bind(&row.clock)
                    .bind(&row.actor)
                    .bind(&row.body)
                    .bind(&row.prev_hash)
                    .bind(&row.hash)
                    .bind(&row.registry_sig)
            };
        }
        match self {
            WriteTx::Sqlite(tx) => {
                bind_all!(sqlx::query(
                    "INSERT INTO events (seq, kind, agent_id, as_of, recorded_at, clock, actor, body, prev_hash, hash, registry_sig)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ))
                .execute(&mut **tx)
                .await?;
            }
            WriteTx::Postgres(tx) => {
                bind_all!(sqlx::query(
                    "INSERT INTO events (seq, kind, agent_id, as_of, recorded_at, clock, actor, body, prev_hash, hash, registry_sig)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ))
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }

    /// Writes a row of a service table in this transaction (with the events, or not at all).
    pub(crate) async fn side(&mut self, w: &SideWrite) -> Result<(), sqlx::Error> {
        macro_rules! run {
            ($tx:expr, $p:literal) => {{
                let tx = $tx;
                match w {
                    SideWrite::Blob { sha256, content } => {
                        sqlx::query(concat!(
                            "INSERT INTO blobs (sha256, size, content) VALUES (",
                            $p,
                            "1, ",
                            $p,
                            "2, ",
                            $p,
                            "3) ON CONFLICT (sha256) DO NOTHING"
                        ))
                        .bind(sha256)
                        .bind(content.len() as i64)
                        .bind(content.as_slice())
                        .execute(&mut **tx)
                        .await?;
                    }
                    SideWrite::Token(t) => {
                        sqlx::query(concat!(
                            "INSERT INTO api_tokens (id, person, roles, agents, hash, created_at, expires_at) VALUES (",
                            $p, "1, ", $p, "2, ", $p, "3, ", $p, "4, ", $p, "5, ", $p, "6, ", $p, "7)"
                        ))
                        .bind(&t.id)
                        .bind(&t.person)
                        .bind(t.roles.join(","))
                        .bind(t.agents.join(","))
                        .bind(&t.hash)
                        .bind(&t.created_at)
                        .bind(&t.expires_at)
                        .execute(&mut **tx)
                        .await?;
                    }
                    SideWrite::Revoke { id, at } => {
                        sqlx::query(concat!(
                            "UPDATE api_tokens SET revoked_at = ",
                            $p,
                            "2 WHERE id = ",
                            $p,
                            "1 AND revoked_at IS NULL"
                        ))
                        .bind(id)
                        .bind(at)
                        .execute(&mut **tx)
                        .await?;
                    }
                }
            }};
        }
        match self {
            WriteTx::Sqlite(tx) => run!(tx, "?"),
            WriteTx::Postgres(tx) => run!(tx, "$"),
        }
        Ok(())
    }

    /// Commits.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            WriteTx::Sqlite(tx) => tx.commit().await,
            WriteTx::Postgres(tx) => tx.commit().await,
        }
    }
}

/// A write to a service table that goes in the same transaction as the events it belongs to.
#[derive(Debug, Clone)]
pub enum SideWrite {
    /// An attachment's bytes under their sha256 (kept once).
    Blob {
        /// Lowercase hex sha256 of `content`.
        sha256: String,
        /// The bytes.
        content: Vec<u8>,
    },
    /// A new API token.
    Token(TokenRow),
    /// Revoke a token at an RFC 3339 time.
    Revoke {
        /// Token id.
        id: String,
        /// RFC 3339.
        at: String,
    },
}

/// A row of `api_tokens`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// The public id (the part before the secret).
    pub id: String,
    /// The person.
    pub person: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Agents it is limited to (empty: no limit).
    pub agents: Vec<String>,
    /// argon2id PHC string of the secret.
    pub hash: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// RFC 3339, when revoked.
    pub revoked_at: Option<String>,
}

impl Store {
    /// Stores one batch's tally (`stagegate_rollout::Tally` as JSON) for the agent's rollout
    /// started at event `rollout_seq`, in phase epoch `epoch`; returns its id.
    ///
    /// # Errors
    /// The database's.
    pub async fn add_tally(
        &self,
        agent: &str,
        rollout_seq: i64,
        epoch: i64,
        tally: &str,
        received_at: &str,
    ) -> Result<i64, sqlx::Error> {
        match self {
            Store::Sqlite(p) => {
                sqlx::query_scalar(
                    "INSERT INTO rollout_tallies (agent, rollout_seq, epoch, tally, received_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                )
                .bind(agent)
                .bind(rollout_seq)
                .bind(epoch)
                .bind(tally)
                .bind(received_at)
                .fetch_one(p)
                .await
            }
            Store::Postgres(p) => {
                sqlx::query_scalar(
                    "INSERT INTO rollout_tallies (agent, rollout_seq, epoch, tally, received_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(agent)
                .bind(rollout_seq)
                .bind(epoch)
                .bind(tally)
                .bind(received_at)
                .fetch_one(p)
                .await
            }
        }
    }

    /// The tallies of one phase epoch of a rollout, in the order they were stored.
    ///
    /// # Errors
    /// The database's.
    pub async fn tallies(
        &self,
        agent: &str,
        rollout_seq: i64,
        epoch: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        match self {
            Store::Sqlite(p) => {
                sqlx::query_scalar(
                    "SELECT tally FROM rollout_tallies WHERE agent = ?1 AND rollout_seq = ?2 AND epoch = ?3 ORDER BY id",
                )
                .bind(agent)
                .bind(rollout_seq)
                .bind(epoch)
                .fetch_all(p)
                .await
            }
            Store::Postgres(p) => {
                sqlx::query_scalar(
                    "SELECT tally FROM rollout_tallies WHERE agent = $1 AND rollout_seq = $2 AND epoch = $3 ORDER BY id",
                )
                .bind(agent)
                .bind(rollout_seq)
                .bind(epoch)
                .fetch_all(p)
                .await
            }
        }
    }

    /// Where polled `source` last stopped reading for the agent's rollout started at event
    /// `rollout_seq` (the cursor [`Store::add_polled_tally`] stored), if it has read before.
    ///
    /// # Errors
    /// The database's.
    pub async fn telemetry_cursor(
        &self,
        agent: &str,
        rollout_seq: i64,
        source: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        match self {
            Store::Sqlite(p) => {
                sqlx::query_scalar("SELECT cursor FROM telemetry_cursors WHERE agent = ?1 AND rollout_seq = ?2 AND source = ?3")
                    .bind(agent)
                    .bind(rollout_seq)
                    .bind(source)
                    .fetch_optional(p)
                    .await
            }
            Store::Postgres(p) => {
                sqlx::query_scalar("SELECT cursor FROM telemetry_cursors WHERE agent = $1 AND rollout_seq = $2 AND source = $3")
                    .bind(agent)
                    .bind(rollout_seq)
                    .bind(source)
                    .fetch_optional(p)
                    .await
            }
        }
    }

    /// Moves polled `source`'s cursor from `expected` (None: it has not read before) to
    /// `cursor` and stores the `tally` read in between (when there is one), in one
    /// transaction. Returns false, storing nothing, when the cursor is no longer `expected`:
    /// another replica read the same events first.
    ///
    /// # Errors
    /// The database's.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_polled_tally(
        &self,
        agent: &str,
        rollout_seq: i64,
        epoch: i64,
        source: &str,
        expected: Option<&str>,
        cursor: &str,
        tally: Option<&str>,
        received_at: &str,
    ) -> Result<bool, sqlx::Error> {
        macro_rules! run {
            ($pool:expr, $claim:literal, $move:literal, $tally:literal) => {{
                let mut tx = $pool.begin().await?;
                let moved = match expected {
                    None => sqlx::query($claim)
                        .bind(agent)
                        .bind(rollout_seq)
                        .bind(source)
                        .bind(cursor)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected(),
                    Some(old) => sqlx::query($move)
                        .bind(agent)
                        .bind(rollout_seq)
                        .bind(source)
                        .bind(cursor)
                        .bind(old)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected(),
                };
                if moved != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                if let Some(t) = tally {
                    sqlx::query($tally)
                        .bind(agent)
                        .bind(rollout_seq)
                        .bind(epoch)
                        .bind(t)
                        .bind(received_at)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            }};
        }
        match self {
            Store::Sqlite(p) => run!(
                p,
                "INSERT INTO telemetry_cursors (agent, rollout_seq, source, cursor) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                "UPDATE telemetry_cursors SET cursor = ?4 WHERE agent = ?1 AND rollout_seq = ?2 AND source = ?3 AND cursor = ?5",
                "INSERT INTO rollout_tallies (agent, rollout_seq, epoch, tally, received_at) VALUES (?1, ?2, ?3, ?4, ?5)"
            ),
            Store::Postgres(p) => run!(
                p,
                "INSERT INTO telemetry_cursors (agent, rollout_seq, source, cursor) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                "UPDATE telemetry_cursors SET cursor = $4 WHERE agent = $1 AND rollout_seq = $2 AND source = $3 AND cursor = $5",
                "INSERT INTO rollout_tallies (agent, rollout_seq, epoch, tally, received_at) VALUES ($1, $2, $3, $4, $5)"
            ),
        }
    }

    /// The token with this id, if any.
    ///
    /// # Errors
    /// The database's.
    pub async fn token(&self, id: &str) -> Result<Option<TokenRow>, sqlx::Error> {
        const Q_SQLITE: &str = "SELECT id, person, roles, agents, hash, created_at, expires_at, revoked_at FROM api_tokens WHERE id = ?1";
        const Q_PG: &str = "SELECT id, person, roles, agents, hash, created_at, expires_at, revoked_at FROM api_tokens WHERE id = $1";
        let split = |s: String| -> Vec<String> {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        };
        macro_rules! row {
            ($r:expr) => {
                $r.map(|r| TokenRow {
                    id: r.get(0),
                    person: r.get(1),
                    roles: split(r.get(2)),
                    agents: split(r.get(3)),
                    hash: r.get(4),
                    created_at: r.get(5),
                    expires_at: r.get(6),
                    revoked_at: r.get(7),
                })
            };
        }
        Ok(match self {
            Store::Sqlite(p) => row!(sqlx::query(Q_SQLITE).bind(id).fetch_optional(p).await?),
            Store::Postgres(p) => row!(sqlx::query(Q_PG).bind(id).fetch_optional(p).await?),
        })
    }

    /// Every token, by id.
    ///
    /// # Errors
    /// The database's.
    pub async fn tokens(&self) -> Result<Vec<String>, sqlx::Error> {
        const Q: &str = "SELECT id FROM api_tokens ORDER BY id";
        match self {
            Store::Sqlite(p) => sqlx::query_scalar(Q).fetch_all(p).await,
            Store::Postgres(p) => sqlx::query_scalar(Q).fetch_all(p).await,
        }
    }

    /// An attachment's bytes, by sha256.
    ///
    /// # Errors
    /// The database's.
    pub async fn blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
        match self {
            Store::Sqlite(p) => {
                sqlx::query_scalar("SELECT content FROM blobs WHERE sha256 = ?1")
                    .bind(sha256)
                    .fetch_optional(p)
                    .await
            }
            Store::Postgres(p) => {
                sqlx::query_scalar("SELECT content FROM blobs WHERE sha256 = $1")
                    .bind(sha256)
                    .fetch_optional(p)
                    .await
            }
        }
    }

    /// Rows after event `seq`, oldest first.
    pub(crate) async fn rows_after(&self, seq: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
        const Q_SQLITE: &str = "SELECT seq, kind, agent_id, as_of, recorded_at, clock, actor, body, prev_hash, hash, registry_sig FROM events WHERE seq > ?1 ORDER BY seq";
        const Q_PG: &str = "SELECT seq, kind, agent_id, as_of, recorded_at, clock, actor, body, prev_hash, hash, registry_sig FROM events WHERE seq > $1 ORDER BY seq";
        Ok(match self {
            Store::Sqlite(p) => sqlx::query(Q_SQLITE)
                .bind(seq)
                .fetch_all(p)
                .await?
                .into_iter()
                .map(|r| to_event!(r))
                .collect(),
            Store::Postgres(p) => sqlx::query(Q_PG)
                .bind(seq)
                .fetch_all(p)
                .await?
                .into_iter()
                .map(|r| to_event!(r))
                .collect(),
        })
    }

    /// The newest event number (0 for an empty log).
    pub(crate) async fn size(&self) -> Result<i64, sqlx::Error> {
        const Q: &str = "SELECT COALESCE(MAX(seq), 0) FROM events";
        match self {
            Store::Sqlite(p) => sqlx::query_scalar(Q).fetch_one(p).await,
            Store::Postgres(p) => sqlx::query_scalar(Q).fetch_one(p).await,
        }
    }
}

/// Refuses a version 1 registry (separate tables, only reviews chained): `Ok(rule)` is the
/// refusal, `Err` a database error.
async fn refuse_v1(
    pool: &SqlitePool,
    path: &Path,
) -> Result<(), Result<RegistryError, sqlx::Error>> {
    let old: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'reviews'",
    )
    .fetch_optional(pool)
    .await
    .map_err(Err)?;
    if old.is_some() {
        return Err(Ok(RegistryError::Rule(format!(
            "{} is a version 1 registry (separate tables, only reviews chained); this stagegate keeps every fact in one signed event log. Start a new registry and re-run `pilot start` and the reviews",
            path.display()
        ))));
    }
    Ok(())
}
