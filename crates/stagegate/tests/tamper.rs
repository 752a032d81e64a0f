//! The tamper suite: a registry built by real commands (pilot start, two reviews, a kept
//! checkpoint), then, on a fresh copy each time, one manipulation made behind stagegate's back
//! — SQL with the triggers dropped, raw bytes, forged rows with recomputed hashes, a registry
//! rebuilt under another key. For each, `stagegate verify` exits 3 naming the event, and
//! `promote` (which would succeed on the untouched copy) refuses.

mod common;
use common::*;
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use stagegate_registry::{StoredEvent, event_hash};
use std::path::{Path, PathBuf};

const AGENT: &str = "agent-finance-invoice-recon";

struct Built {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    db: PathBuf,
    checkpoint: PathBuf,
}

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 1 registry-created, 2 agent, 3 criteria lock, 4 pilot stage, 5 review Blocked (2026-06-11:
/// the sign-offs are dated after it), 6 review Cleared (2026-06-12). A checkpoint of the 6 events is kept.
fn build() -> Built {
    let (tmp, dir) = worked_example_copy();
    let root = tmp.path().to_path_buf();
    let db = root.join("reg/registry.db");
    ok(&stagegate_on("2026-05-12")
        .args(["pilot", "start", "--as-of", "2026-05-12", "--registry"])
        .arg(&db)
        .arg(&dir)
        .output()
        .unwrap());
    let out = stagegate_on("2026-06-11")
        .args(["review", "--as-of", "2026-06-11", "--registry"])
        .arg(&db)
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(20));
    let out = stagegate_on("2026-06-12")
        .args(["review", "--as-of", "2026-06-12", "--registry"])
        .arg(&db)
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let checkpoint = root.join("kept-checkpoint.txt");
    ok(&stagegate()
        .args(["checkpoint", "--registry"])
        .arg(&db)
        .arg("--out")
        .arg(&checkpoint)
        .output()
        .unwrap());
    Built {
        _tmp: tmp,
        root,
        db,
        checkpoint,
    }
}

/// A fresh copy of the built registry and its key.
fn copy(b: &Built, name: &str) -> PathBuf {
    let d = b.root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(&b.db, d.join("registry.db")).unwrap();
    std::fs::copy(b.db.with_extension("key"), d.join("registry.key")).unwrap();
    d.join("registry.db")
}

fn verify(b: &Built, db: &Path) -> std::process::Output {
    stagegate()
        .args(["verify", "--registry"])
        .arg(db)
        .arg("--checkpoint")
        .arg(&b.checkpoint)
        .output()
        .unwrap()
}

fn promote(b: &Built, db: &Path) -> std::process::Output {
    stagegate_on("2026-06-13")
        .args(["promote", AGENT, "--as-of", "2026-06-13", "--registry"])
        .arg(db)
        .arg("--checkpoint")
        .arg(&b.checkpoint)
        .arg("--allowed-signers")
        .arg(b.root.join("allowed_signers"))
        .output()
        .unwrap()
}

fn sql(db: &Path, statements: &[&str]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = SqliteConnectOptions::new()
            .filename(db)
            .connect()
            .await
            .unwrap();
        for s in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(s.to_string()))
                .execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    });
}

fn events(db: &Path) -> Vec<StoredEvent> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = stagegate_registry::Registry::open(
            &stagegate_registry::Location::Sqlite(db.to_path_buf()),
            false,
            None,
        )
        .await
        .unwrap();
        r.events().await.unwrap()
    })
}

/// Rewrites every row (triggers dropped) with the given events, as an attacker with SQL access
/// would after recomputing hashes.
fn rewrite(db: &Path, rows: &[StoredEvent]) {
    let q = |s: &str| s.replace('\'', "''");
    let mut stmts = vec![
        "DROP TRIGGER IF EXISTS events_no_update".to_owned(),
        "DROP TRIGGER IF EXISTS events_no_delete".to_owned(),
        "DELETE FROM events".to_owned(),
    ];
    for r in rows {
        stmts.push(format!(
            "INSERT INTO events VALUES ({}, '{}', {}, {}, '{}', '{}', '{}', '{}', '{}', '{}', '{}')",
            r.seq,
            q(&r.kind),
            r.agent_id.as_deref().map(|a| format!("'{}'", q(a))).unwrap_or("NULL".into()),
            r.as_of.as_deref().map(|a| format!("'{}'", q(a))).unwrap_or("NULL".into()),
            q(&r.recorded_at),
            q(&r.clock),
            q(&r.actor),
            q(&r.body),
            q(&r.prev_hash),
            q(&r.hash),
            q(&r.registry_sig)
        ));
    }
    let refs: Vec<&str> = stmts.iter().map(String::as_str).collect();
    sql(db, &refs);
}

/// Recomputes the chain from `from` on (hashes only: the attacker has no registry key unless
/// `key` is given, then they re-sign too).
fn rechain(rows: &mut [StoredEvent], from: usize, key: Option<&stagegate_trust::RegistryKey>) {
    for i in from..rows.len() {
        rows[i].prev_hash = if i == 0 {
            String::new()
        } else {
            rows[i - 1].hash.clone()
        };
        rows[i].hash = event_hash(&rows[i]);
        if let Some(k) = key {
            rows[i].registry_sig = k
                .sign(stagegate_trust::EVENT_NAMESPACE, rows[i].hash.as_bytes())
                .unwrap();
        }
    }
}

fn assert_caught(b: &Built, db: &Path, seq: i64, what: &str) {
    let out = verify(b, db);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{what}: verify did not fail: {err}"
    );
    assert!(
        err.contains(&format!("event #{seq}:")),
        "{what}: expected event #{seq} named in {err}"
    );
    let before = events(db).len();
    let out = promote(b, db);
    assert_ne!(out.status.code(), Some(0), "{what}: promote went through");
    assert!(
        matches!(out.status.code(), Some(1) | Some(3)),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing was appended by the refused promote.
    assert_eq!(events(db).len(), before, "{what}: promote wrote");
}

#[test]
fn every_manipulation_is_named_and_blocks_promotion() {
    let b = build();
    // The untouched copy verifies against the checkpoint and promotes.
    let clean = copy(&b, "clean");
    ok(&verify(&b, &clean));
    ok(&promote(&b, &clean));

    let edits: &[(&str, i64, &str)] = &[
        (
            "body",
            5,
            "UPDATE events SET body = replace(body, '\"decision\":\"Blocked\"', '\"decision\":\"Cleared\"') WHERE seq = 5",
        ),
        (
            "kind",
            6,
            "UPDATE events SET kind = 'stage-changed' WHERE seq = 6",
        ),
        (
            "agent_id",
            3,
            "UPDATE events SET agent_id = 'agent-other-x' WHERE seq = 3",
        ),
        (
            "as_of (backdate the lock)",
            3,
            "UPDATE events SET as_of = '2026-01-01' WHERE seq = 3",
        ),
        (
            "recorded_at",
            3,
            "UPDATE events SET recorded_at = '2026-01-01T00:00:00Z' WHERE seq = 3",
        ),
        (
            "clock",
            6,
            "UPDATE events SET clock = 'system' WHERE seq = 6",
        ),
        (
            "actor",
            4,
            "UPDATE events SET actor = 'mallory' WHERE seq = 4",
        ),
        (
            "prev_hash",
            6,
            "UPDATE events SET prev_hash = 'sha256:00' WHERE seq = 6",
        ),
        (
            "registry_sig",
            6,
            "UPDATE events SET registry_sig = (SELECT registry_sig FROM events WHERE seq = 5) WHERE seq = 6",
        ),
        (
            "hash",
            6,
            "UPDATE events SET hash = 'sha256:ff' WHERE seq = 6",
        ),
    ];
    for (i, (what, seq, stmt)) in edits.iter().enumerate() {
        let db = copy(&b, &format!("edit{i}"));
        sql(&db, &["DROP TRIGGER events_no_update", stmt]);
        assert_caught(&b, &db, *seq, &format!("edit of {what}"));
    }

    // Delete a middle event.
    let db = copy(&b, "delete");
    sql(
        &db,
        &[
            "DROP TRIGGER events_no_delete",
            "DELETE FROM events WHERE seq = 5",
        ],
    );
    assert_caught(&b, &db, 6, "deleted event");

    // Reorder the two reviews.
    let db = copy(&b, "reorder");
    sql(
        &db,
        &[
            "DROP TRIGGER events_no_update",
            "UPDATE events SET seq = 100 WHERE seq = 5",
            "UPDATE events SET seq = 5 WHERE seq = 6",
            "UPDATE events SET seq = 6 WHERE seq = 100",
        ],
    );
    assert_caught(&b, &db, 5, "reordered events");

    // Truncate the newest event: consistent on its own, caught against the kept checkpoint.
    let db = copy(&b, "truncate");
    sql(
        &db,
        &[
            "DROP TRIGGER events_no_delete",
            "DELETE FROM events WHERE seq = 6",
        ],
    );
    ok(&stagegate()
        .args(["verify", "--registry"])
        .arg(&db)
        .output()
        .unwrap());
    assert_caught(&b, &db, 6, "truncation");

    // Raw byte patch of the database file: "Blocked" → "Cleared" inside review #5.
    let db = copy(&b, "bytes");
    let mut bytes = std::fs::read(&db).unwrap();
    let needle = b"\"decision\":\"Blocked\"";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the review body is in the file");
    bytes[at..at + needle.len()].copy_from_slice(b"\"decision\":\"Cleared\"");
    std::fs::write(&db, bytes).unwrap();
    assert_caught(&b, &db, 5, "raw byte patch");

    // Recomputed-hash forgery without the registry key: review #5 says Cleared, every hash
    // after it recomputed, the old signatures kept.
    let db = copy(&b, "rehash");
    let mut rows = events(&db);
    rows[4].body = rows[4]
        .body
        .replace("\"decision\":\"Blocked\"", "\"decision\":\"Cleared\"");
    rechain(&mut rows, 4, None);
    rewrite(&db, &rows);
    assert_caught(&b, &db, 5, "recomputed-hash forgery");

    // An inserted production stage event "by Mallory", hashed correctly, signature copied.
    let db = copy(&b, "insert");
    let mut rows = events(&db);
    let mut forged = rows[3].clone();
    forged.seq = 7;
    forged.actor = "Mallory".into();
    forged.body = format!(
        "{{\"agent\":\"{AGENT}\",\"event\":\"stage-changed\",\"from\":\"pilot\",\"review_seq\":5,\"signers\":[],\"to\":\"production\"}}"
    );
    forged.registry_sig = rows[5].registry_sig.clone();
    rows.push(forged);
    rechain(&mut rows, 6, None);
    rewrite(&db, &rows);
    assert_caught(&b, &db, 7, "inserted stage event");

    // Forgery by someone holding the registry key (re-signed, self-consistent): caught only by
    // the kept checkpoint, whose head it no longer matches.
    let db = copy(&b, "rekeyed");
    let key = stagegate_trust::RegistryKey::from_openssh(
        &std::fs::read_to_string(db.with_extension("key")).unwrap(),
    )
    .unwrap();
    let mut rows = events(&db);
    rows[4].actor = "someone else".into();
    rechain(&mut rows, 4, Some(&key));
    rewrite(&db, &rows);
    // Consistent on its own: only the kept checkpoint tells.
    ok(&stagegate()
        .args(["verify", "--registry"])
        .arg(&db)
        .output()
        .unwrap());
    assert_caught(&b, &db, 6, "re-signed forgery");

    // A registry rebuilt from scratch under a new key.
    let db = copy(&b, "replaced");
    let other = stagegate_trust::RegistryKey::from_seed(&[42; 32]);
    let mut rows = events(&db);
    rows[0].body = format!(
        "{{\"event\":\"registry-created\",\"public_key\":\"{}\"}}",
        other.public_openssh()
    );
    rechain(&mut rows, 0, Some(&other));
    rewrite(&db, &rows);
    std::fs::write(db.with_extension("key"), other.to_openssh().unwrap()).unwrap();
    assert_caught(&b, &db, 1, "replaced registry");
}

#[test]
fn a_forged_cleared_review_cannot_promote_without_its_signers_keys() {
    // Someone with the registry key appends a review that says Cleared with item 10 ✅, but
    // the sign-offs in it are not signatures by the people named: promote re-verifies them.
    let b = build();
    let db = copy(&b, "forged-review");
    let key = stagegate_trust::RegistryKey::from_openssh(
        &std::fs::read_to_string(db.with_extension("key")).unwrap(),
    )
    .unwrap();
    let mut rows = events(&db);
    let mut forged = rows[5].clone(); // the Cleared review…
    let mut v: serde_json::Value = serde_json::from_str(&forged.body).unwrap();
    // …of another digest (as if the inputs had changed), signatures kept.
    v["digest"] = "sha256:forged".into();
    v["review"]["digest"] = "sha256:forged".into();
    v["review"]["signoff_subject"]["review_digest"] = "sha256:forged".into();
    forged.body = v.to_string();
    forged.seq = 7;
    rows.push(forged);
    rechain(&mut rows, 6, Some(&key));
    rewrite(&db, &rows);
    // Self-consistent: verify (without the checkpoint) passes…
    ok(&stagegate()
        .args(["verify", "--registry"])
        .arg(&db)
        .output()
        .unwrap());
    // …but promote re-verifies the sign-offs and refuses.
    let out = stagegate_on("2026-06-13")
        .args(["promote", AGENT, "--as-of", "2026-06-13", "--registry"])
        .arg(&db)
        .arg("--allowed-signers")
        .arg(b.root.join("allowed_signers"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sign-offs do not verify"), "{err}");
}
