//! Where the Admin API's consumers persist: an SQLite database in WAL mode,
//! one row per consumer (its JSON, as the declarative file writes it), one
//! small transaction per write. A write costs the rows it changes, not the
//! whole state (the JSON state file was rewritten, fsync and all, per
//! write: ~0.5 s at 100,000 consumers). `synchronous=FULL`: a change is on
//! disk before the Admin API answers, so neither a crash nor a power cut
//! loses an acknowledged write.
//!
//! A state file from an earlier version (JSON) is migrated on first start:
//! its consumers go into a new database that replaces it in one rename, and
//! the JSON stays beside it as `<state>.json.bak`.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension as _, params};

use super::store::{Edits, Seq};
use crate::config::ConsumerSpec;

/// `PRAGMA user_version` of a complete database: 0 means created but never
/// seeded (a crash mid-seed), so it is seeded again.
const FORMAT: i64 = 1;

/// Why the state could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Db {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {msg}")]
    Bad { path: String, msg: String },
    #[error("{path}: cannot migrate the JSON state: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: the JSON state to migrate: {source}")]
    Legacy {
        path: String,
        #[source]
        source: crate::config::ConfigError,
    },
}

/// The open database.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
    path: PathBuf,
}

/// Whether `path` holds an SQLite database (or nothing yet).
fn is_sqlite(path: &Path) -> std::io::Result<bool> {
    use std::io::Read as _;
    let mut head = [0u8; 16];
    let mut f = std::fs::File::open(path)?;
    let n = f.read(&mut head)?;
    // SQLite takes an empty file for a new database.
    Ok(n == 0 || head == *b"SQLite format 3\0")
}

impl Db {
    /// Opens the state at `path`: created and filled with `seed()` when
    /// absent (or never completed), migrated when it is a JSON state file.
    /// Returns the consumers with their places.
    pub fn open(
        path: &Path,
        seed: impl FnOnce() -> Vec<ConsumerSpec>,
    ) -> Result<(Db, Vec<(Seq, ConsumerSpec)>), StateError> {
        let name = path.display().to_string();
        let io = |source| StateError::Io {
            path: name.clone(),
            source,
        };
        // The main file alone decides: a JSON state has no -wal beside it.
        if path.exists() && !is_sqlite(path).map_err(io)? {
            migrate(path, path)?;
        }
        let mut db = Db::connect(path)?;
        let version: i64 = db
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| db.err(e))?;
        if version == 0 {
            db.fill(&seed())?;
        } else if version != FORMAT {
            return Err(StateError::Bad {
                path: name,
                msg: format!(
                    "state format {version}, this gateway reads {FORMAT}: made by a newer version?"
                ),
            });
        }
        let rows = db.load()?;
        Ok((db, rows))
    }

    fn connect(path: &Path) -> Result<Db, StateError> {
        let err = |source| StateError::Db {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        Ok(Db {
            conn,
            path: path.to_owned(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> StateError {
        StateError::Db {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Creates the table and stores `consumers` in order, in one transaction
    /// that also marks the database complete.
    fn fill(&mut self, consumers: &[ConsumerSpec]) -> Result<(), StateError> {
        let tx = self.conn.transaction().map_err(|e| StateError::Db {
            path: self.path.display().to_string(),
            source: e,
        })?;
        let result = (|| {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS consumers (seq INTEGER PRIMARY KEY, doc TEXT NOT NULL);
                 DELETE FROM consumers;",
            )?;
            {
                let mut insert = tx.prepare("INSERT INTO consumers (seq, doc) VALUES (?1, ?2)")?;
                for (seq, c) in consumers.iter().enumerate() {
                    insert.execute(params![seq as i64, doc(c)])?;
                }
            }
            tx.pragma_update(None, "user_version", FORMAT)?;
            tx.commit()
        })();
        result.map_err(|e| self.err(e))
    }

    fn load(&self) -> Result<Vec<(Seq, ConsumerSpec)>, StateError> {
        let bad = |seq: i64, msg: String| StateError::Bad {
            path: self.path.display().to_string(),
            msg: format!("consumer row {seq}: {msg}"),
        };
        let mut stmt = self
            .conn
            .prepare("SELECT seq, doc FROM consumers ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, text) = row.map_err(|e| self.err(e))?;
            let c: ConsumerSpec =
                serde_json::from_str(&text).map_err(|e| bad(seq, e.to_string()))?;
            let seq = Seq::try_from(seq).map_err(|_| bad(seq, "negative place".into()))?;
            out.push((seq, c));
        }
        Ok(out)
    }

    /// Stores a change: the rows it replaces, adds and removes, in one
    /// transaction, durable when this returns.
    pub fn write(&mut self, edits: &Edits) -> Result<(), rusqlite::Error> {
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO consumers (seq, doc) VALUES (?1, ?2)
                 ON CONFLICT (seq) DO UPDATE SET doc = excluded.doc",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM consumers WHERE seq = ?1")?;
            for (seq, c) in edits {
                let seq = i64::try_from(*seq).unwrap_or(i64::MAX);
                match c {
                    Some(c) => upsert.execute(params![seq, doc(c)])?,
                    None => delete.execute(params![seq])?,
                };
            }
        }
        tx.commit()
    }

    /// How many consumers are stored (for tests and checks).
    pub fn count(&self) -> Result<u64, rusqlite::Error> {
        self.conn
            .query_row("SELECT count(*) FROM consumers", [], |r| r.get::<_, i64>(0))
            .optional()
            .map(|n| n.unwrap_or(0).max(0).unsigned_abs())
    }
}

fn doc(c: &ConsumerSpec) -> String {
    // A ConsumerSpec is strings, numbers and lists: it always serializes.
    serde_json::to_string(c).unwrap_or_default()
}

/// Makes a database at `to` from the JSON state at `from` (which may be
/// `to` itself): built beside `to`, then renamed over it, so that a crash
/// leaves one or the other, never half of one. A JSON state replaced in
/// place is kept as `<state>.json.bak`.
pub fn migrate(from: &Path, to: &Path) -> Result<(), StateError> {
    let legacy = crate::config::Declarative::load(from).map_err(|source| StateError::Legacy {
        path: from.display().to_string(),
        source,
    })?;
    let consumers = super::store::normalize(legacy.consumers);
    let with = |suffix: &str| {
        let mut s = to.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let io = |source| StateError::Io {
        path: to.display().to_string(),
        source,
    };
    for leftover in [".migrating", ".migrating-wal", ".migrating-shm"] {
        match std::fs::remove_file(with(leftover)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
    }
    let tmp = with(".migrating");
    {
        let mut db = Db::connect(&tmp)?;
        db.fill(&consumers)?;
        // Closing checkpoints the WAL into the file, so the file alone is complete.
        db.conn.close().map_err(|(_, e)| StateError::Db {
            path: tmp.display().to_string(),
            source: e,
        })?;
    }
    if from == to {
        std::fs::copy(from, with(".json.bak")).map_err(io)?;
    }
    std::fs::rename(&tmp, to).map_err(io)?;
    tracing::info!(from = %from.display(), to = %to.display(), consumers = consumers.len(), "migrated the JSON state to SQLite");
    Ok(())
}
