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

/// Insert one event in `tx` and tell listeners.
pub(crate) async fn event(tx: &Transaction<'_>, id: &str, body: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO events(task_id, body) VALUES ($1, $2)",
        &[&id, &body],
    )
    .await
    .map_err(pg("insert an event"))?;
    notify(tx, super::CHANNEL_EVENTS, id).await
}

pub(crate) async fn notify(
    tx: &Transaction<'_>,
    channel: &str,
    payload: &str,
) -> Result<(), StoreError> {
    tx.execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
        .await
        .map_err(pg("notify listeners"))
        .map(|_| ())
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
        self.run("claim tasks", move |c| {
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
                Ok(claimed.into_iter().map(|c| c.1).collect())
            })
        })
        .await
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
                        notify(&tx, super::CHANNEL_EVENTS, &id).await?;
                        tx.commit().await.map_err(pg("commit events"))?;
                    }
                    Ok(n)
                })
            })
            .await?;
        if n == 0 {
            return Err(fenced(lease));
        }
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
        Ok(true)
    }

    /// Re-queue tasks whose lease expired (their push had not started, re-queued fewer than the
    /// configured times), end the others `error` / `runner_lost`.
    pub(super) async fn reap_expired(&self) -> Result<Reaped, StoreError> {
        let requeues = self.times.requeues;
        self.run("reap expired leases", move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.map_err(pg("begin a reap"))?;
                let requeued = requeue_expired(&tx, requeues).await?;
                let lost = end_expired(&tx).await?;
                if !requeued.is_empty() {
                    notify(&tx, super::CHANNEL_QUEUE, "").await?;
                }
                tx.commit().await.map_err(pg("commit a reap"))?;
                Ok(Reaped { requeued, lost })
            })
        })
        .await
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
