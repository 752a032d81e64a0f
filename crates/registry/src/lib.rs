//! The registry: agents, their stages, success-criteria locks and every review, in an embedded
//! SQLite database.
//!
//! Invariants:
//! - **Append-only.** Triggers abort any `UPDATE` or `DELETE` on every table; an agent's stage
//!   is its latest stage event, never an edited column.
//! - **Hash-chained.** Each review row stores `entry_hash = sha256(prev_hash ‖ report_json)`;
//!   [`Registry::verify_chain`] recomputes the chain, so an edit made behind SQLite's back
//!   (triggers dropped, file patched) is detected.
//! - **Transactional.** A review, its items and its inputs are written in one transaction:
//!   all or nothing.
//! - **Pilot → Production only through a Cleared or Conditional review** with valid sign-offs
//!   (item 10 ✅), and only from the Pilot stage ([`Registry::promote`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use jiff::civil::Date;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use stagegate_core::decision::Outcome;
use stagegate_core::digest::sha256_tagged;
use stagegate_core::review::{CriteriaLock, Review};
use stagegate_core::stage::Stage;
use std::path::{Path, PathBuf};

/// The schema, applied on open (idempotent).
const SCHEMA: &str = include_str!("schema.sql");

/// Registry failures.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The database could not be opened, read or written.
    #[error("registry {path}: {source}")]
    Database {
        /// The database file.
        path: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The operation breaks a registry rule (e.g. promoting without a Cleared review).
    #[error("{0}")]
    Rule(String),
    /// The hash chain does not verify: the history was edited.
    #[error("registry history does not verify at review #{id}: {why}")]
    Tampered {
        /// The first review row that fails.
        id: i64,
        /// What does not match.
        why: String,
    },
}

/// One stored review, as `stagegate history` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryEntry {
    /// Row id.
    pub id: i64,
    /// Agent id.
    pub agent: String,
    /// Agent version reviewed.
    pub version: String,
    /// Stage at review time.
    pub stage: Option<String>,
    /// Review date.
    pub review_date: String,
    /// When it was stored (RFC 3339).
    pub recorded_at: String,
    /// Who ran it.
    pub recorded_by: String,
    /// Decision.
    pub decision: String,
    /// Review digest.
    pub digest: String,
    /// Item statuses `1:pass 2:open …`.
    pub items: String,
}

/// A stage change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StageEvent {
    /// Agent id.
    pub agent: String,
    /// New stage.
    pub stage: String,
    /// Effective date.
    pub at: String,
    /// Who.
    pub by: String,
    /// The review that allowed it, if any.
    pub review_id: Option<i64>,
}

/// An open registry.
#[derive(Debug, Clone)]
pub struct Registry {
    pool: SqlitePool,
    path: PathBuf,
}

impl Registry {
    /// Opens (and creates, with its folder, when `create`) the database at `path`.
    ///
    /// # Errors
    /// [`RegistryError::Database`], or [`RegistryError::Rule`] when it does not exist and
    /// `create` is false.
    pub async fn open(path: &Path, create: bool) -> Result<Registry, RegistryError> {
        if !create && !path.exists() {
            return Err(RegistryError::Rule(format!(
                "no registry at {} (a review or `pilot start` creates it)",
                path.display()
            )));
        }
        if create
            && let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| RegistryError::Database {
                path: path.display().to_string(),
                source: sqlx::Error::Io(e),
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create)
            .foreign_keys(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(|source| RegistryError::Database {
                path: path.display().to_string(),
                source,
            })?;
        let reg = Registry {
            pool,
            path: path.to_path_buf(),
        };
        sqlx::raw_sql(SCHEMA)
            .execute(&reg.pool)
            .await
            .map_err(|e| reg.db(e))?;
        Ok(reg)
    }

    fn db(&self, source: sqlx::Error) -> RegistryError {
        RegistryError::Database {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Closes the pool, flushing the WAL.
    pub async fn close(self) {
        self.pool.close().await;
    }

    /// The agent's current stage: its latest stage event.
    ///
    /// # Errors
    /// [`RegistryError::Database`].
    pub async fn stage(&self, agent: &str) -> Result<Option<Stage>, RegistryError> {
        let row = sqlx::query(
            "SELECT stage FROM stage_events WHERE agent_id = ?1 ORDER BY id DESC LIMIT 1",
        )
        .bind(agent)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.db(e))?;
        Ok(row.and_then(|r| Stage::parse(&r.get::<String, _>(0))))
    }

    /// The latest criteria lock for the agent.
    ///
    /// # Errors
    /// [`RegistryError::Database`].
    pub async fn criteria_lock(&self, agent: &str) -> Result<Option<CriteriaLock>, RegistryError> {
        let row = sqlx::query(
            "SELECT digest, locked_on, locked_by FROM criteria_locks WHERE agent_id = ?1 ORDER BY id DESC LIMIT 1",
        )
        .bind(agent)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.db(e))?;
        Ok(match row {
            None => None,
            Some(r) => {
                let d: String = r.get(1);
                Some(CriteriaLock {
                    digest: r.get(0),
                    locked_at: d.parse::<Date>().map_err(|e| {
                        RegistryError::Rule(format!("stored lock date {d:?} is not a date: {e}"))
                    })?,
                    by: r.get(2),
                })
            }
        })
    }

    /// Starts the pilot: registers the agent, locks its success criteria digest and moves it
    /// to the Pilot stage. Starting again with the same criteria is a no-op (returns false).
    ///
    /// # Errors
    /// [`RegistryError::Rule`] when the agent is already in production or its criteria were
    /// locked with a different digest (re-approval goes through an approval record, not a
    /// new lock).
    #[allow(clippy::too_many_arguments)]
    pub async fn start_pilot(
        &self,
        agent: &str,
        name: &str,
        criteria_digest: &str,
        criteria_json: &str,
        on: Date,
        by: &str,
    ) -> Result<bool, RegistryError> {
        if self.stage(agent).await? == Some(Stage::Production) {
            return Err(RegistryError::Rule(format!(
                "{agent} is already in production"
            )));
        }
        if let Some(lock) = self.criteria_lock(agent).await? {
            if lock.digest == criteria_digest {
                return Ok(false);
            }
            return Err(RegistryError::Rule(format!(
                "{agent}'s success criteria were locked on {} by {} ({}); they cannot be locked again. \
                 Re-approve the change with an `approval` record (subject: criteria_change, criteria_digest: {criteria_digest})",
                lock.locked_at, lock.by, lock.digest
            )));
        }
        let mut tx = self.pool.begin().await.map_err(|e| self.db(e))?;
        sqlx::query("INSERT OR IGNORE INTO agents (id, name, first_seen) VALUES (?1, ?2, ?3)")
            .bind(agent)
            .bind(name)
            .bind(on.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
        sqlx::query(
            "INSERT INTO criteria_locks (agent_id, digest, criteria_json, locked_on, locked_by) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(agent)
        .bind(criteria_digest)
        .bind(criteria_json)
        .bind(on.to_string())
        .bind(by)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.db(e))?;
        sqlx::query("INSERT INTO stage_events (agent_id, stage, at, by, review_id) VALUES (?1, 'pilot', ?2, ?3, NULL)")
            .bind(agent)
            .bind(on.to_string())
            .bind(by)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
        tx.commit().await.map_err(|e| self.db(e))?;
        Ok(true)
    }

    /// Stores a review with its items and inputs in one transaction, chained to the previous
    /// review. Returns the new row id.
    ///
    /// # Errors
    /// [`RegistryError::Database`]; nothing is written on error.
    pub async fn record_review(
        &self,
        review: &Review,
        recorded_at: &str,
        recorded_by: &str,
    ) -> Result<i64, RegistryError> {
        let report = serde_json::to_string(review)
            .map_err(|e| RegistryError::Rule(format!("cannot serialise the review: {e}")))?;
        let stage = self.stage(&review.agent.id).await?;
        let mut tx = self.pool.begin().await.map_err(|e| self.db(e))?;
        let prev: Option<String> =
            sqlx::query_scalar("SELECT entry_hash FROM reviews ORDER BY id DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.db(e))?;
        let prev = prev.unwrap_or_default();
        let entry_hash = chain_hash(&prev, &report);
        sqlx::query("INSERT OR IGNORE INTO agents (id, name, first_seen) VALUES (?1, ?2, ?3)")
            .bind(&review.agent.id)
            .bind(&review.agent.name)
            .bind(review.review_date.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO reviews (agent_id, agent_version, stage, review_date, recorded_at, recorded_by, decision, digest, criteria_digest, report_json, prev_hash, entry_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id",
        )
        .bind(&review.agent.id)
        .bind(&review.agent.version)
        .bind(stage.map(Stage::as_str))
        .bind(review.review_date.to_string())
        .bind(recorded_at)
        .bind(recorded_by)
        .bind(review.decision.outcome.as_str())
        .bind(&review.digest)
        .bind(&review.criteria_digest)
        .bind(&report)
        .bind(&prev)
        .bind(&entry_hash)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.db(e))?;
        for it in &review.items {
            sqlx::query("INSERT INTO review_items (review_id, item, status, reasons) VALUES (?1, ?2, ?3, ?4)")
                .bind(id)
                .bind(i64::from(it.number))
                .bind(it.status.word())
                .bind(it.reasons.join("\n"))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db(e))?;
        }
        for i in &review.inputs {
            let role = serde_json::to_value(i.role)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            sqlx::query(
                "INSERT INTO review_inputs (review_id, role, path, sha256) VALUES (?1, ?2, ?3, ?4)",
            )
            .bind(id)
            .bind(role)
            .bind(&i.path)
            .bind(&i.sha256)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
        }
        tx.commit().await.map_err(|e| self.db(e))?;
        Ok(id)
    }

    /// Reviews of one agent (or all), oldest first.
    ///
    /// # Errors
    /// [`RegistryError::Database`].
    pub async fn history(&self, agent: Option<&str>) -> Result<Vec<HistoryEntry>, RegistryError> {
        let rows = sqlx::query(
            "SELECT r.id, r.agent_id, r.agent_version, r.stage, r.review_date, r.recorded_at, r.recorded_by, r.decision, r.digest,
                    (SELECT group_concat(item || ':' || status, ' ') FROM (SELECT item, status FROM review_items WHERE review_id = r.id ORDER BY item))
             FROM reviews r WHERE ?1 IS NULL OR r.agent_id = ?1 ORDER BY r.id",
        )
        .bind(agent)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db(e))?;
        Ok(rows
            .into_iter()
            .map(|r| HistoryEntry {
                id: r.get(0),
                agent: r.get(1),
                version: r.get(2),
                stage: r.get(3),
                review_date: r.get(4),
                recorded_at: r.get(5),
                recorded_by: r.get(6),
                decision: r.get(7),
                digest: r.get(8),
                items: r.get::<Option<String>, _>(9).unwrap_or_default(),
            })
            .collect())
    }

    /// Stage events of one agent, oldest first.
    ///
    /// # Errors
    /// [`RegistryError::Database`].
    pub async fn stage_events(&self, agent: &str) -> Result<Vec<StageEvent>, RegistryError> {
        let rows = sqlx::query(
            "SELECT agent_id, stage, at, by, review_id FROM stage_events WHERE agent_id = ?1 ORDER BY id",
        )
        .bind(agent)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db(e))?;
        Ok(rows
            .into_iter()
            .map(|r| StageEvent {
                agent: r.get(0),
                stage: r.get(1),
                at: r.get(2),
                by: r.get(3),
                review_id: r.get(4),
            })
            .collect())
    }

    /// Moves the agent from Pilot to Production on the strength of its latest review, which
    /// must be Cleared or Conditional with item 10 ✅. Returns the review id used.
    ///
    /// # Errors
    /// [`RegistryError::Rule`] when the agent is not in Pilot, has no review, or its latest
    /// review does not clear it.
    pub async fn promote(&self, agent: &str, on: Date, by: &str) -> Result<i64, RegistryError> {
        match self.stage(agent).await? {
            Some(Stage::Pilot) => {}
            Some(Stage::Production) => {
                return Err(RegistryError::Rule(format!(
                    "{agent} is already in production"
                )));
            }
            None => {
                return Err(RegistryError::Rule(format!(
                    "{agent} is not in the Pilot stage (run `stagegate pilot start` when the pilot begins)"
                )));
            }
        }
        let row = sqlx::query(
            "SELECT r.id, r.decision, r.review_date, (SELECT status FROM review_items WHERE review_id = r.id AND item = 10)
             FROM reviews r WHERE r.agent_id = ?1 ORDER BY r.id DESC LIMIT 1",
        )
        .bind(agent)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.db(e))?;
        let Some(row) = row else {
            return Err(RegistryError::Rule(format!(
                "{agent} has no review in the registry"
            )));
        };
        let id: i64 = row.get(0);
        let decision: String = row.get(1);
        let signed: Option<String> = row.get(3);
        let clears =
            decision == Outcome::Cleared.as_str() || decision == Outcome::Conditional.as_str();
        if !clears || signed.as_deref() != Some("pass") {
            return Err(RegistryError::Rule(format!(
                "{agent}'s latest review #{id} is {decision}{}; only a Cleared or Conditional review with valid sign-offs moves it to production",
                if signed.as_deref() == Some("pass") {
                    ""
                } else {
                    " without valid sign-offs"
                }
            )));
        }
        sqlx::query("INSERT INTO stage_events (agent_id, stage, at, by, review_id) VALUES (?1, 'production', ?2, ?3, ?4)")
            .bind(agent)
            .bind(on.to_string())
            .bind(by)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.db(e))?;
        Ok(id)
    }

    /// Recomputes the review hash chain.
    ///
    /// # Errors
    /// [`RegistryError::Tampered`] at the first row that does not verify.
    pub async fn verify_chain(&self) -> Result<usize, RegistryError> {
        let rows =
            sqlx::query("SELECT id, report_json, prev_hash, entry_hash FROM reviews ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
        let mut prev = String::new();
        for r in &rows {
            let id: i64 = r.get(0);
            let report: String = r.get(1);
            let stored_prev: String = r.get(2);
            let stored: String = r.get(3);
            if stored_prev != prev {
                return Err(RegistryError::Tampered {
                    id,
                    why: "its prev_hash is not the previous row's entry_hash (a row was removed or reordered)".into(),
                });
            }
            if chain_hash(&prev, &report) != stored {
                return Err(RegistryError::Tampered {
                    id,
                    why: "its stored report does not match its entry_hash (the row was edited)"
                        .into(),
                });
            }
            prev = stored;
        }
        Ok(rows.len())
    }

    /// The stored JSON report of a review.
    ///
    /// # Errors
    /// [`RegistryError::Database`].
    pub async fn report_json(&self, id: i64) -> Result<Option<String>, RegistryError> {
        sqlx::query_scalar("SELECT report_json FROM reviews WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.db(e))
    }
}

/// `sha256(prev_hash ‖ "\n" ‖ report_json)`, tagged.
fn chain_hash(prev: &str, report: &str) -> String {
    let mut buf = Vec::with_capacity(prev.len() + report.len() + 1);
    buf.extend_from_slice(prev.as_bytes());
    buf.push(b'\n');
    buf.extend_from_slice(report.as_bytes());
    sha256_tagged(&buf)
}
