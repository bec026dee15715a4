//! Versioned schema migrations, run at start by every runner under one advisory lock: the first
//! applies what is missing, the others wait and find nothing left. A database newer than this
//! airlock is refused. The lock is held by a dedicated session that is closed afterwards (which
//! releases it even if a migration failed).

use std::time::Duration;

use tokio_postgres::NoTls;

use super::pg;
use crate::store::StoreError;

/// The advisory lock key of migrations (`'airlock'` in ASCII).
const LOCK_KEY: i64 = 0x0061_6972_6c6f_636b;

/// Times are Unix milliseconds on the database's clock.
pub(crate) const NOW_MS: &str = "(extract(epoch from now()) * 1000)::bigint";

/// `(version, SQL)`, in order. Never edit a released one: add the next.
pub const MIGRATIONS: &[(i64, &str)] = &[(1, V1), (2, V2)];

const V1: &str = "
CREATE TABLE tasks (
    seq              BIGSERIAL PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    title            TEXT NOT NULL,
    level            TEXT NOT NULL,
    source           TEXT NOT NULL,
    trigger          TEXT NOT NULL DEFAULT 'api',
    author_trusted   BOOLEAN NOT NULL DEFAULT false,
    spec             TEXT NOT NULL,
    state            TEXT NOT NULL,
    reason           TEXT,
    message          TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT false,
    restarts         BIGINT NOT NULL DEFAULT 0,
    session          TEXT,
    epoch            BIGINT NOT NULL DEFAULT 0,
    lease_until      TIMESTAMPTZ,
    push_started_at  TIMESTAMPTZ,
    artifacts_prefix TEXT,
    submitted_at     BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    summary          TEXT
);
CREATE INDEX tasks_queued ON tasks(seq) WHERE state = 'queued';
CREATE INDEX tasks_leased ON tasks(lease_until) WHERE state = 'running';
CREATE INDEX tasks_by_state ON tasks(state, seq);
CREATE TABLE events (
    id      BIGSERIAL PRIMARY KEY,
    task_id TEXT NOT NULL,
    body    TEXT NOT NULL
);
CREATE INDEX events_by_task ON events(task_id, id);
CREATE TABLE sessions (
    session    TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL
);
";

/// Webhook intake and schedules on the shared queue: a delivery (`<forge>:<delivery id>`) and a
/// schedule slot are each unique, inserted in the transaction of the task they start, so the
/// same delivery to two runners, or the same slot seen by two runners, starts one task.
const V2: &str = "
CREATE TABLE deliveries (
    delivery    TEXT PRIMARY KEY,
    issue_key   TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX deliveries_by_issue ON deliveries(issue_key);
CREATE INDEX deliveries_by_task ON deliveries(task_id);
CREATE TABLE schedules (
    schedule TEXT PRIMARY KEY,
    since    BIGINT NOT NULL
);
CREATE TABLE schedule_slots (
    schedule TEXT NOT NULL,
    slot     BIGINT NOT NULL,
    task_id  TEXT NOT NULL,
    PRIMARY KEY (schedule, slot)
);
";

/// The newest version this airlock knows.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// The migrations still to apply to a database at `found`, or an error if it is newer.
pub fn pending(found: i64) -> Result<Vec<(i64, &'static str)>, StoreError> {
    if found > latest() {
        return Err(StoreError::PgTooNew {
            found,
            supported: latest(),
        });
    }
    Ok(MIGRATIONS.iter().copied().filter(|m| m.0 > found).collect())
}

/// Apply what is missing, under the advisory lock, on a session of its own.
pub async fn migrate(
    config: &tokio_postgres::Config,
    deadline: Duration,
) -> Result<(), StoreError> {
    let op = "connect to run the migrations";
    let (mut client, conn) = tokio::time::timeout(deadline, config.connect(NoTls))
        .await
        .map_err(|_| StoreError::Timeout {
            op,
            after: deadline,
        })?
        .map_err(pg(op))?;
    let task = tokio::spawn(conn);
    let r = apply(&mut client).await;
    drop(client);
    let _ = task.await;
    r
}

async fn apply(client: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(pg("take the migration lock"))?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS airlock_schema (version BIGINT PRIMARY KEY, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(pg("create the schema table"))?;
    let row = client
        .query_one("SELECT COALESCE(MAX(version), 0) FROM airlock_schema", &[])
        .await
        .map_err(pg("read the schema version"))?;
    for (version, sql) in pending(row.get(0))? {
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin a migration"))?;
        tx.batch_execute(sql)
            .await
            .map_err(pg("apply a migration"))?;
        tx.execute(
            "INSERT INTO airlock_schema(version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(pg("record a migration"))?;
        tx.commit().await.map_err(pg("commit a migration"))?;
        tracing::info!(version, "queue database migrated");
    }
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await
        .map_err(pg("release the migration lock"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_and_newer_databases_are_refused() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(pending(0).unwrap().len(), MIGRATIONS.len());
        assert!(pending(latest()).unwrap().is_empty());
        assert!(matches!(
            pending(latest() + 1),
            Err(StoreError::PgTooNew { .. })
        ));
    }
}
