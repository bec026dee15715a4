//! The durable queue: tasks, their events and the daemon sessions, in one SQLite database
//! (WAL, `synchronous=FULL`: a task is on disk before its id is handed out).
//!
//! Every write is a transaction; state changes are compare-and-set through the pure
//! [`state::next`]. The clock is passed in (`now_ms`, Unix milliseconds).

pub mod backend;
pub(crate) mod events;
pub mod local;
pub mod pg;
pub mod retention;
pub mod state;
mod stats;
mod tasks;
pub mod triggers;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

pub use backend::{Lease, LeaseTimes, LostTask, Reaped, Renewed, TaskStore};
pub use events::daemon_event;
pub use local::LocalStore;
pub use state::{next, Phase, Transition, FINAL_STATES};
pub use stats::{OutcomeRow, PrOutcome};
pub use tasks::{CancelOutcome, Claimed, End, NewTask, TaskRow};

/// Bumped when the schema changes; a newer database is refused, an older one migrated.
pub const SCHEMA_VERSION: i64 = 1;

/// How long a writer waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tasks (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    title            TEXT NOT NULL,
    level            TEXT NOT NULL,
    source           TEXT NOT NULL,
    trigger          TEXT NOT NULL DEFAULT 'api',
    author_trusted   INTEGER NOT NULL DEFAULT 0,
    spec             TEXT NOT NULL,
    state            TEXT NOT NULL,
    reason           TEXT,
    message          TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    restarts         INTEGER NOT NULL DEFAULT 0,
    session          TEXT,
    submitted_at     INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    summary          TEXT
);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks(state, seq);
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    body    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_task ON events(task_id, id);
CREATE TABLE IF NOT EXISTS sessions (
    session    TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL
);
";

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An SQLite call failed.
    #[error("store {path}: cannot {op}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The database was written by a newer airlock.
    #[error("store {path}: schema version {found} is newer than this airlock supports ({SCHEMA_VERSION}); use a newer airlock or another state dir")]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
    },
    /// The blocking thread running a store call failed.
    #[error("store: task {id}: the background worker failed: {message}")]
    Worker {
        /// The task the call was for.
        id: String,
        /// What failed.
        message: String,
    },
    /// The store at hand does not keep this.
    #[error("the shared queue does not keep {what} (the embedded store does)")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },
    /// A PostgreSQL call failed.
    #[error("queue database: cannot {op}: {source}")]
    Pg {
        /// What was being done.
        op: &'static str,
        /// PostgreSQL's error.
        source: tokio_postgres::Error,
    },
    /// No connection could be had from the pool.
    #[error("queue database: cannot {op}: {message}")]
    Pool {
        /// What was being done.
        op: &'static str,
        /// Why.
        message: String,
    },
    /// The database did not answer in time.
    #[error("queue database: cannot {op}: no answer within {}", humantime::format_duration(*.after))]
    Timeout {
        /// What was being done.
        op: &'static str,
        /// How long airlock waited.
        after: Duration,
    },
    /// The shared database was migrated by a newer airlock.
    #[error("queue database: schema version {found} is newer than this airlock supports ({supported}); upgrade every runner")]
    PgTooNew {
        /// Its schema version.
        found: i64,
        /// The newest this airlock knows.
        supported: i64,
    },
    /// The lease of this task at this epoch is no longer held: another runner may own it.
    #[error("task {id}: the lease at epoch {epoch} is lost; the write was refused")]
    Fenced {
        /// The task.
        id: String,
        /// The epoch the write carried.
        epoch: i64,
    },
}

impl StoreError {
    /// A uniqueness constraint failed (a task id already taken).
    pub fn is_duplicate(&self) -> bool {
        match self {
            StoreError::Db {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } => e.code == rusqlite::ErrorCode::ConstraintViolation,
            StoreError::Pg { source, .. } => {
                source.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            _ => false,
        }
    }

    /// The write was refused because the lease is no longer held.
    pub fn is_fenced(&self) -> bool {
        matches!(self, StoreError::Fenced { .. })
    }
}

/// The open database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path).map_err(db(path, "open the database"))?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    fn configure(&self) -> Result<(), StoreError> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(self.err("set the busy timeout"))?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(self.err("enable WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            tracing::warn!(path = %self.path.display(), mode, "WAL is not available");
        }
        self.conn
            .execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(self.err("set synchronous=FULL"))
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let found: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.err("read the schema version"))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
            });
        }
        self.conn
            .execute_batch(SCHEMA)
            .map_err(self.err("create the schema"))?;
        self.conn
            .execute_batch(triggers::SCHEMA)
            .map_err(self.err("create the trigger tables"))?;
        self.conn
            .execute_batch(stats::SCHEMA)
            .map_err(self.err("create the outcomes table"))?;
        self.conn
            .execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION}"))
            .map_err(self.err("write the schema version"))
    }

    /// Record a daemon session (its containers carry `airlock.session=<session>`).
    pub fn add_session(&mut self, session: &str, now_ms: i64) -> Result<(), StoreError> {
        self.write("record the session", |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO sessions(session, started_at) VALUES (?1, ?2)",
                rusqlite::params![session, now_ms],
            )
            .map(|_| ())
        })
    }

    /// Every session this store has recorded.
    pub fn sessions(&self) -> Result<Vec<String>, StoreError> {
        let run = || -> rusqlite::Result<Vec<String>> {
            let mut stmt = self
                .conn
                .prepare("SELECT session FROM sessions ORDER BY started_at")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        };
        run().map_err(self.err("list sessions"))
    }

    /// Run `f` in an immediate (write-locking) transaction and commit it.
    pub(crate) fn write<T>(
        &mut self,
        op: &'static str,
        f: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let run = |conn: &mut Connection| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        };
        run(&mut self.conn).map_err(db(&self.path, op))
    }

    pub(crate) fn err(&self, op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        db(&self.path, op)
    }
}

fn db(path: &Path, op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Db { path, op, source }
}

/// Unix milliseconds now (the daemon's clock; the store itself never reads a clock).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 (UTC, milliseconds) of Unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests;
