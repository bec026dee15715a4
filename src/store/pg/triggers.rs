//! Webhook deliveries and schedule slots on the shared queue: what makes a forge event or a
//! schedule slot start a task exactly once when several runners receive it.
//!
//! - A delivery: intake for one issue is serialized across runners by a transaction-scoped
//!   advisory lock on the issue key; under it, a delivery already recorded is a redelivery and
//!   an issue with a queued or running task starts nothing. The delivery row (primary key
//!   `<forge>:<delivery id>`) is inserted in the task's transaction.
//! - A slot: `INSERT … ON CONFLICT DO NOTHING` on `(schedule, slot)` first, in the task's
//!   transaction: a second runner inserting the same slot waits for the first to commit, then
//!   inserts nothing and learns which task the slot started.

use serde_json::Value;
use tokio_postgres::Transaction;

use super::queue::event;
use super::read::{insert_in, queued};
use super::schema::NOW_MS;
use super::{pg, PgStore};
use crate::store::triggers::{Key, Triggered};
use crate::store::{daemon_event, now_ms, NewTask, StoreError};

/// First key of the per-issue intake lock (`'hook'` in ASCII); the second is the issue key's
/// hash (a collision only serializes two issues' intake, it never merges them).
const ISSUE_LOCK: i32 = 0x686f_6f6b;

impl PgStore {
    pub(super) async fn insert_triggered_task(
        &self,
        task: NewTask,
        key: Key,
        fields: Value,
    ) -> Result<Triggered, StoreError> {
        let id = task.id.clone();
        let r = self
            .run("insert a triggered task", move |c| {
                Box::pin(async move {
                    let tx = c
                        .transaction()
                        .await
                        .map_err(pg("begin a triggered insert"))?;
                    let taken = match &key {
                        Key::Delivery {
                            delivery,
                            issue_key,
                        } => claim_delivery(&tx, delivery, issue_key, &task.id).await?,
                        Key::Slot { schedule, slot_ms } => {
                            claim_slot(&tx, schedule, *slot_ms, &task.id).await?
                        }
                    };
                    if let Some(t) = taken {
                        // Nothing was written: the transaction is dropped (rolled back).
                        return Ok(t);
                    }
                    insert_in(&tx, &task).await?;
                    let body = daemon_event(&task.id, "triggered", now_ms(), fields);
                    event(&tx, &task.id, &body).await?;
                    tx.commit().await.map_err(pg("commit a triggered insert"))?;
                    Ok(Triggered::Inserted)
                })
            })
            .await?;
        if r == Triggered::Inserted {
            self.wake(queued(id)).await;
        }
        Ok(r)
    }

    pub(super) async fn delivery_issue(
        &self,
        task_id: String,
    ) -> Result<Option<String>, StoreError> {
        self.run("read a delivery", move |c| {
            Box::pin(async move {
                let row = c
                    .query_opt(
                        "SELECT issue_key FROM deliveries WHERE task_id = $1 LIMIT 1",
                        &[&task_id],
                    )
                    .await
                    .map_err(pg("read a delivery"))?;
                Ok(row.map(|r| r.get(0)))
            })
        })
        .await
    }

    pub(super) async fn schedule_since(
        &self,
        schedule: String,
        now_ms: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        self.run("read a schedule", move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.map_err(pg("begin a schedule read"))?;
                tx.execute(
                    "INSERT INTO schedules(schedule, since) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&schedule, &now_ms],
                )
                .await
                .map_err(pg("record a schedule"))?;
                let row = tx
                    .query_one(
                        "SELECT s.since, (SELECT MAX(slot) FROM schedule_slots WHERE schedule = $1) \
                         FROM schedules s WHERE s.schedule = $1",
                        &[&schedule],
                    )
                    .await
                    .map_err(pg("read a schedule"))?;
                tx.commit().await.map_err(pg("commit a schedule read"))?;
                Ok((row.get(0), row.get(1)))
            })
        })
        .await
    }
}

/// `Some`: this delivery or its issue already has a task (nothing written). `None`: the
/// delivery is recorded for `task_id` in `tx`.
async fn claim_delivery(
    tx: &Transaction<'_>,
    delivery: &str,
    issue_key: &str,
    task_id: &str,
) -> Result<Option<Triggered>, StoreError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&ISSUE_LOCK, &issue_key],
    )
    .await
    .map_err(pg("lock the issue's intake"))?;
    if let Some(task_id) = delivered(tx, delivery).await? {
        return Ok(Some(Triggered::Redelivered { task_id }));
    }
    let live = tx
        .query_opt(
            "SELECT d.task_id FROM deliveries d JOIN tasks t ON t.id = d.task_id \
             WHERE d.issue_key = $1 AND t.state IN ('queued', 'running') LIMIT 1",
            &[&issue_key],
        )
        .await
        .map_err(pg("look for the issue's live task"))?;
    if let Some(r) = live {
        return Ok(Some(Triggered::IssueBusy { task_id: r.get(0) }));
    }
    let sql = format!(
        "INSERT INTO deliveries(delivery, issue_key, task_id, received_at) \
         VALUES ($1, $2, $3, {NOW_MS}) ON CONFLICT (delivery) DO NOTHING"
    );
    let n = tx
        .execute(&sql, &[&delivery, &issue_key, &task_id])
        .await
        .map_err(pg("record a delivery"))?;
    if n == 1 {
        return Ok(None);
    }
    // Only a delivery id reused for another issue gets here (the lock is per issue).
    let task_id = delivered(tx, delivery).await?.unwrap_or_default();
    Ok(Some(Triggered::Redelivered { task_id }))
}

async fn delivered(tx: &Transaction<'_>, delivery: &str) -> Result<Option<String>, StoreError> {
    let row = tx
        .query_opt(
            "SELECT task_id FROM deliveries WHERE delivery = $1",
            &[&delivery],
        )
        .await
        .map_err(pg("read a delivery"))?;
    Ok(row.map(|r| r.get(0)))
}

/// `Some`: the slot already started a task (nothing written). `None`: it is recorded for
/// `task_id` in `tx`.
async fn claim_slot(
    tx: &Transaction<'_>,
    schedule: &str,
    slot_ms: i64,
    task_id: &str,
) -> Result<Option<Triggered>, StoreError> {
    let n = tx
        .execute(
            "INSERT INTO schedule_slots(schedule, slot, task_id) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            &[&schedule, &slot_ms, &task_id],
        )
        .await
        .map_err(pg("record a schedule slot"))?;
    if n == 1 {
        return Ok(None);
    }
    let row = tx
        .query_opt(
            "SELECT task_id FROM schedule_slots WHERE schedule = $1 AND slot = $2",
            &[&schedule, &slot_ms],
        )
        .await
        .map_err(pg("read a schedule slot"))?;
    Ok(Some(Triggered::SlotTaken {
        task_id: row.map(|r| r.get(0)).unwrap_or_default(),
    }))
}
