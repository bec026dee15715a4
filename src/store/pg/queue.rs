//! The lease lifecycle: claim, renew, fenced writes (events, push record, finish), the reaper.

use serde_json::json;
use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

use super::schema::NOW_MS;
use super::{pg, PgStore};
use crate::store::backend::{Lease, LostTask, Reaped, Renewed};
use crate::store::{daemon_event, now_ms, Claimed, End, StoreError};
use crate::vocab::Reason;
use crate::vocab::State;

/// The fence every write after a claim carries: still ours, at this epoch, lease not expired
/// (by the database's clock). `$1` id, `$2` epoch.
pub(crate) const FENCE: &str =
    "id = $1 AND epoch = $2 AND state = 'running' AND lease_until > now()";

fn fenced(lease: &Lease) -> StoreError {
    StoreError::Fenced {
        id: lease.id.clone(),
        epoch: lease.epoch,
    }
}

/// Insert one event in `tx`. Listeners are woken after the commit ([`PgStore::wake`]).
pub(crate) async fn event(tx: &Transaction<'_>, id: &str, body: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO events(task_id, body) VALUES ($1, $2)",
        &[&id, &body],
    )
    .await
    .map_err(pg("insert an event"))
    .map(|_| ())
}

/// A string as an SQL escape-string literal (`E'…'`, whatever `standard_conforming_strings`).
fn literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// The simple-query text that sends `notes` in a transaction of its own that does not wait for
/// its commit to reach the disk.
pub(crate) fn wake_sql(notes: &[(&str, String)]) -> String {
    let mut sql = String::from("BEGIN; SET LOCAL synchronous_commit TO OFF;");
    let mut seen = std::collections::HashSet::new();
    for (channel, payload) in notes {
        if seen.insert((channel, payload)) {
            sql.push_str(&format!(
                " SELECT pg_notify({}, {});",
                literal(channel),
                literal(payload)
            ));
        }
    }
    sql.push_str(" COMMIT");
    sql
}

impl PgStore {
    /// Wake listeners (other runners' dispatchers and event followers) after a write committed.
    /// NOTIFY is kept out of the durable transactions: PostgreSQL holds one global lock from a
    /// transaction's NOTIFY through its commit's WAL flush, so notifying commits never share a
    /// flush (benches/shared_queue.rs measured ×0.11 claims/s at 100 runners). Here the
    /// notifications commit without waiting for the disk (a crash loses only wake-ups;
    /// followers and dispatchers re-read on a timer), and a failure is logged, never returned:
    /// the write it follows is already committed.
    pub(crate) async fn wake(&self, notes: Vec<(&'static str, String)>) {
        if notes.is_empty() {
            return;
        }
        let sql = wake_sql(&notes);
        let r = self
            .run("notify listeners", move |c| {
                Box::pin(async move { c.batch_execute(&sql).await.map_err(pg("notify listeners")) })
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "queue database: listeners not woken (they re-read on a timer)");
        }
    }
}

fn woken(ids: impl IntoIterator<Item = String>) -> Vec<(&'static str, String)> {
    ids.into_iter()
        .map(|id| (super::CHANNEL_EVENTS, id))
        .collect()
}

impl PgStore {
    fn ttl_secs(&self) -> f64 {
        self.times.ttl.as_secs_f64()
    }

    pub(super) async fn claim_tasks(
        &self,
        n: usize,
        runner: String,
    ) -> Result<Vec<Claimed>, StoreError> {
        let ttl = self.ttl_secs();
        let sql = format!(
            "WITH picked AS (SELECT seq FROM tasks WHERE state = 'queued' ORDER BY seq \
             LIMIT $1 FOR UPDATE SKIP LOCKED) \
             UPDATE tasks t SET state = 'running', session = $2, epoch = t.epoch + 1, \
             lease_until = now() + make_interval(secs => $3), started_at = {NOW_MS} \
             FROM picked WHERE t.seq = picked.seq \
             RETURNING t.seq, t.id, t.title, t.level, t.source, t.spec, t.trigger, \
             t.author_trusted, t.epoch, t.restarts"
        );
        let claimed = self
            .run("claim tasks", move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await.map_err(pg("begin a claim"))?;
                    let rows = tx
                        .query(&sql, &[&(n as i64), &runner, &ttl])
                        .await
                        .map_err(pg("claim tasks"))?;
                    let mut claimed: Vec<(i64, Claimed)> = rows.iter().map(claimed_row).collect();
                    claimed.sort_by_key(|c| c.0);
                    for (_, c) in &claimed {
                        let fields = json!({ "session": runner, "epoch": c.epoch });
                        let body = daemon_event(&c.id, "started", now_ms(), fields);
                        event(&tx, &c.id, &body).await?;
                    }
                    tx.commit().await.map_err(pg("commit a claim"))?;
                    Ok(claimed.into_iter().map(|c| c.1).collect::<Vec<_>>())
                })
            })
            .await?;
        self.wake(woken(claimed.iter().map(|c| c.id.clone()))).await;
        Ok(claimed)
    }

    pub(super) async fn renew_lease(&self, lease: &Lease) -> Result<Renewed, StoreError> {
        let (id, epoch, ttl) = (lease.id.clone(), lease.epoch, self.ttl_secs());
        let sql = format!(
            "UPDATE tasks SET lease_until = now() + make_interval(secs => $3) WHERE {FENCE} \
             RETURNING cancel_requested"
        );
        let row = self
            .run("renew a lease", move |c| {
                Box::pin(async move {
                    c.query_opt(&sql, &[&id, &epoch, &ttl])
                        .await
                        .map_err(pg("renew a lease"))
                })
            })
            .await?;
        match row {
            Some(r) => Ok(Renewed {
                cancel_requested: r.get(0),
            }),
            None => Err(fenced(lease)),
        }
    }

    pub(super) async fn append_fenced(
        &self,
        lease: &Lease,
        bodies: Vec<String>,
    ) -> Result<(), StoreError> {
        if bodies.is_empty() {
            return Ok(());
        }
        let (id, epoch) = (lease.id.clone(), lease.epoch);
        let sql = format!(
            "INSERT INTO events(task_id, body) SELECT $1, u.b FROM unnest($3::text[]) \
             WITH ORDINALITY AS u(b, n) WHERE EXISTS (SELECT 1 FROM tasks WHERE {FENCE} \
             FOR SHARE) ORDER BY u.n"
        );
        let n = self
            .run("append events", move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await.map_err(pg("begin an append"))?;
                    let n = tx
                        .execute(&sql, &[&id, &epoch, &bodies])
                        .await
                        .map_err(pg("append events"))?;
                    if n > 0 {
                        tx.commit().await.map_err(pg("commit events"))?;
                    }
                    Ok(n)
                })
            })
            .await?;
        if n == 0 {
            return Err(fenced(lease));
        }
        self.wake(woken([lease.id.clone()])).await;
        Ok(())
    }

    pub(super) async fn record_push(&self, lease: &Lease) -> Result<(), StoreError> {
        let (id, epoch) = (lease.id.clone(), lease.epoch);
        let sql = format!(
            "UPDATE tasks SET push_started_at = now() WHERE {FENCE} AND push_started_at IS NULL"
        );
        let n = self
            .run("record the push", move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await.map_err(pg("begin a push record"))?;
                    let n = tx
                        .execute(&sql, &[&id, &epoch])
                        .await
                        .map_err(pg("record the push"))?;
                    if n == 1 {
                        let body = daemon_event(&id, "push_recorded", now_ms(), json!({}));
                        event(&tx, &id, &body).await?;
                        tx.commit().await.map_err(pg("commit the push record"))?;
                    }
                    Ok(n)
                })
            })
            .await?;
        if n != 1 {
            return Err(fenced(lease));
        }
        self.wake(woken([lease.id.clone()])).await;
        Ok(())
    }

    pub(super) async fn finish_fenced(
        &self,
        lease: &Lease,
        end: End,
        artifacts: Option<String>,
    ) -> Result<bool, StoreError> {
        let (id, epoch) = (lease.id.clone(), lease.epoch);
        let sql = format!(
            "UPDATE tasks SET state = $3, reason = $4, message = $5, summary = $6, \
             artifacts_prefix = $7, finished_at = {NOW_MS}, lease_until = NULL WHERE {FENCE}"
        );
        let n = self
            .run("finish a task", move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await.map_err(pg("begin a finish"))?;
                    let state = end.state.as_str();
                    let reason = end.reason.as_str();
                    let params: [&(dyn ToSql + Sync); 7] = [
                        &id,
                        &epoch,
                        &state,
                        &reason,
                        &end.message,
                        &end.summary,
                        &artifacts,
                    ];
                    let n = tx
                        .execute(&sql, &params)
                        .await
                        .map_err(pg("finish a task"))?;
                    if n == 1 {
                        let fields =
                            json!({ "state": state, "reason": end.reason, "message": end.message });
                        event(&tx, &id, &daemon_event(&id, "done", now_ms(), fields)).await?;
                        tx.commit().await.map_err(pg("commit a finish"))?;
                    }
                    Ok(n)
                })
            })
            .await?;
        if n != 1 {
            return Err(fenced(lease));
        }
        self.wake(woken([lease.id.clone()])).await;
        Ok(true)
    }

    /// Re-queue tasks whose lease expired (their push had not started, re-queued fewer than the
    /// configured times), end the others `error` / `runner_lost`.
    pub(super) async fn reap_expired(&self) -> Result<Reaped, StoreError> {
        let requeues = self.times.requeues;
        let reaped = self
            .run("reap expired leases", move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await.map_err(pg("begin a reap"))?;
                    let requeued = requeue_expired(&tx, requeues).await?;
                    let lost = end_expired(&tx).await?;
                    tx.commit().await.map_err(pg("commit a reap"))?;
                    Ok(Reaped { requeued, lost })
                })
            })
            .await?;
        let ids = reaped
            .requeued
            .iter()
            .chain(reaped.lost.iter().map(|t| &t.id));
        let mut notes = woken(ids.cloned());
        if !reaped.requeued.is_empty() {
            notes.push((super::CHANNEL_QUEUE, String::new()));
        }
        self.wake(notes).await;
        Ok(reaped)
    }

    pub(super) async fn leases_live(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.run("list live leases", |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        "SELECT id, epoch FROM tasks WHERE state = 'running' AND lease_until > now()",
                        &[],
                    )
                    .await
                    .map_err(pg("list live leases"))?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })
        })
        .await
    }
}

const EXPIRED: &str = "SELECT seq FROM tasks WHERE state = 'running' AND lease_until <= now()";

async fn requeue_expired(tx: &Transaction<'_>, requeues: i64) -> Result<Vec<String>, StoreError> {
    let sql = format!(
        "UPDATE tasks SET state = 'queued', restarts = restarts + 1, session = NULL, \
         lease_until = NULL, started_at = NULL WHERE seq IN ({EXPIRED} \
         AND push_started_at IS NULL AND restarts < $1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, epoch"
    );
    let rows = tx
        .query(&sql, &[&requeues])
        .await
        .map_err(pg("re-queue expired leases"))?;
    let mut ids = Vec::new();
    for r in rows {
        let (id, epoch): (String, i64) = (r.get(0), r.get(1));
        let fields = json!({ "reason": Reason::RunnerLost, "epoch": epoch });
        event(tx, &id, &daemon_event(&id, "requeued", now_ms(), fields)).await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Message of a task ended by the reaper.
pub fn lost_message(push_started: bool) -> &'static str {
    if push_started {
        "the runner of this task was lost during its push; it is not repeated"
    } else {
        "the runner of this task was lost too many times; nothing was pushed"
    }
}

async fn end_expired(tx: &Transaction<'_>) -> Result<Vec<LostTask>, StoreError> {
    let sql = format!(
        "UPDATE tasks SET state = 'error', reason = $3, \
         message = CASE WHEN push_started_at IS NULL THEN $1 ELSE $2 END, \
         finished_at = {NOW_MS}, lease_until = NULL \
         WHERE seq IN ({EXPIRED} FOR UPDATE SKIP LOCKED) \
         RETURNING id, title, level, push_started_at IS NOT NULL"
    );
    let rows = tx
        .query(
            &sql,
            &[
                &lost_message(false),
                &lost_message(true),
                &Reason::RunnerLost.as_str(),
            ],
        )
        .await
        .map_err(pg("end expired leases"))?;
    let mut lost = Vec::new();
    for r in rows {
        let t = LostTask {
            id: r.get(0),
            title: r.get(1),
            level: r.get(2),
            push_started: r.get(3),
        };
        let fields = json!({ "state": State::Error.as_str(), "reason": Reason::RunnerLost, "message": lost_message(t.push_started) });
        event(tx, &t.id, &daemon_event(&t.id, "done", now_ms(), fields)).await?;
        lost.push(t);
    }
    Ok(lost)
}

fn claimed_row(r: &tokio_postgres::Row) -> (i64, Claimed) {
    (
        r.get(0),
        Claimed {
            id: r.get(1),
            title: r.get(2),
            level: r.get(3),
            source: r.get(4),
            spec: r.get(5),
            trigger: r.get(6),
            author_trusted: r.get(7),
            epoch: r.get(8),
            restarts: r.get(9),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_sql_quotes_payloads_and_sends_each_note_once() {
        let notes = vec![
            ("airlock_events", "t-1".to_string()),
            ("airlock_events", "t-1".to_string()),
            ("airlock_queue", "it's \\ odd".to_string()),
        ];
        assert_eq!(
            wake_sql(&notes),
            "BEGIN; SET LOCAL synchronous_commit TO OFF; \
             SELECT pg_notify(E'airlock_events', E't-1'); \
             SELECT pg_notify(E'airlock_queue', E'it''s \\\\ odd'); COMMIT"
        );
    }
}
