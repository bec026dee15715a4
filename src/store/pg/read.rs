//! Submissions, cancels and reads: the parts of the queue that carry no lease.

use serde_json::json;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Transaction};

use super::queue::event;
use super::schema::NOW_MS;
use super::{pg, PgStore, CHANNEL_EVENTS, CHANNEL_QUEUE};
use crate::store::events::EVENTS_PAGE;
use crate::store::retention::Finished;
use crate::store::{daemon_event, now_ms, CancelOutcome, End, NewTask, Phase, StoreError, TaskRow};
use crate::vocab::State;

const COLUMNS: &str = "seq, id, title, level, source, state, reason, message, cancel_requested, \
     restarts, session, submitted_at, started_at, finished_at, summary, epoch, artifacts_prefix";

impl PgStore {
    pub(super) async fn insert_task(&self, t: NewTask) -> Result<(), StoreError> {
        let id = t.id.clone();
        self.run("insert a task", move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.map_err(pg("begin an insert"))?;
                insert_in(&tx, &t).await?;
                tx.commit().await.map_err(pg("commit an insert"))
            })
        })
        .await?;
        self.wake(queued(id)).await;
        Ok(())
    }

    pub(super) async fn cancel_task(
        &self,
        id: String,
        end: End,
    ) -> Result<CancelOutcome, StoreError> {
        let task = id.clone();
        let outcome = self.run("cancel a task", move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.map_err(pg("begin a cancel"))?;
                let row = tx
                    .query_opt("SELECT state FROM tasks WHERE id = $1 FOR UPDATE", &[&id])
                    .await
                    .map_err(pg("read a task"))?;
                let Some(row) = row else {
                    return Ok(CancelOutcome::NotFound);
                };
                let state: String = row.get(0);
                let outcome = match Phase::parse(&state).unwrap_or(Phase::Done(State::Error)) {
                    Phase::Queued => {
                        let sql = format!(
                            "UPDATE tasks SET state = 'cancelled', reason = $2, message = $3, \
                             summary = $4, finished_at = {NOW_MS} WHERE id = $1"
                        );
                        let reason = end.reason.as_str();
                        tx.execute(&sql, &[&id, &reason, &end.message, &end.summary])
                            .await
                            .map_err(pg("cancel a task"))?;
                        let fields = json!({ "state": State::Cancelled.as_str(), "reason": end.reason, "message": end.message });
                        event(&tx, &id, &daemon_event(&id, "done", now_ms(), fields)).await?;
                        CancelOutcome::Cancelled
                    }
                    Phase::Running => {
                        tx.execute("UPDATE tasks SET cancel_requested = true WHERE id = $1", &[&id])
                            .await
                            .map_err(pg("request a cancel"))?;
                        let body = daemon_event(&id, "cancel_requested", now_ms(), json!({}));
                        event(&tx, &id, &body).await?;
                        CancelOutcome::Running
                    }
                    done => CancelOutcome::AlreadyFinal(done),
                };
                tx.commit().await.map_err(pg("commit a cancel"))?;
                Ok(outcome)
            })
        })
        .await?;
        if matches!(outcome, CancelOutcome::Cancelled | CancelOutcome::Running) {
            self.wake(vec![(CHANNEL_EVENTS, task)]).await;
        }
        Ok(outcome)
    }

    pub(super) async fn store_summary(
        &self,
        id: String,
        summary: String,
    ) -> Result<(), StoreError> {
        self.run("store a summary", move |c| {
            Box::pin(async move {
                c.execute(
                    "UPDATE tasks SET summary = $2 WHERE id = $1",
                    &[&id, &summary],
                )
                .await
                .map(|_| ())
                .map_err(pg("store a summary"))
            })
        })
        .await
    }

    pub(super) async fn get_task(&self, id: String) -> Result<Option<TaskRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM tasks WHERE id = $1");
        self.run("read a task", move |c| {
            Box::pin(async move {
                let row = c.query_opt(&sql, &[&id]).await.map_err(pg("read a task"))?;
                Ok(row.as_ref().map(task_row))
            })
        })
        .await
    }

    pub(super) async fn list_tasks(
        &self,
        phase: Option<Phase>,
        limit: usize,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM tasks WHERE ($1::text IS NULL OR state = $1) \
             ORDER BY seq DESC LIMIT $2"
        );
        let state = phase.map(|p| p.as_str().to_string());
        let limit = limit.min(i64::MAX as usize) as i64;
        self.run("list tasks", move |c| {
            Box::pin(async move {
                let rows = c
                    .query(&sql, &[&state, &limit])
                    .await
                    .map_err(pg("list tasks"))?;
                Ok(rows.iter().map(task_row).collect())
            })
        })
        .await
    }

    pub(super) async fn count_tasks(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.run("count tasks", |c| {
            Box::pin(async move {
                let rows = c
                    .query("SELECT state, COUNT(*) FROM tasks GROUP BY state", &[])
                    .await
                    .map_err(pg("count tasks"))?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })
        })
        .await
    }

    pub(super) async fn events_page(
        &self,
        id: String,
        after: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.run("read events", move |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        "SELECT id, body FROM events WHERE task_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                        &[&id, &after, &(EVENTS_PAGE as i64)],
                    )
                    .await
                    .map_err(pg("read events"))?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })
        })
        .await
    }

    pub(super) async fn finished_tasks(&self) -> Result<Vec<Finished>, StoreError> {
        self.run("list finished tasks", |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        "SELECT id, finished_at FROM tasks WHERE finished_at IS NOT NULL",
                        &[],
                    )
                    .await
                    .map_err(pg("list finished tasks"))?;
                Ok(rows
                    .iter()
                    .map(|r| Finished {
                        id: r.get(0),
                        finished_at_ms: r.get(1),
                    })
                    .collect())
            })
        })
        .await
    }

    pub(super) async fn delete_tasks(&self, ids: Vec<String>) -> Result<usize, StoreError> {
        self.run("delete tasks", move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.map_err(pg("begin a delete"))?;
                let rows = tx
                    .query(
                        "DELETE FROM tasks WHERE id = ANY($1) AND finished_at IS NOT NULL RETURNING id",
                        &[&ids],
                    )
                    .await
                    .map_err(pg("delete tasks"))?;
                let gone: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
                tx.execute("DELETE FROM events WHERE task_id = ANY($1)", &[&gone])
                    .await
                    .map_err(pg("delete events"))?;
                tx.commit().await.map_err(pg("commit a delete"))?;
                Ok(gone.len())
            })
        })
        .await
    }

    pub(super) async fn record_session(&self, session: String) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO sessions(session, started_at) VALUES ($1, {NOW_MS}) ON CONFLICT DO NOTHING"
        );
        self.run("record the session", move |c| {
            Box::pin(async move {
                c.execute(&sql, &[&session])
                    .await
                    .map(|_| ())
                    .map_err(pg("record the session"))
            })
        })
        .await
    }

    pub(super) async fn list_sessions(&self) -> Result<Vec<String>, StoreError> {
        self.run("list sessions", |c| {
            Box::pin(async move {
                let rows = c
                    .query("SELECT session FROM sessions ORDER BY started_at", &[])
                    .await
                    .map_err(pg("list sessions"))?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            })
        })
        .await
    }
}

/// What a newly queued task wakes: its followers and every runner's dispatcher.
pub(super) fn queued(id: String) -> Vec<(&'static str, String)> {
    vec![(CHANNEL_EVENTS, id.clone()), (CHANNEL_QUEUE, id)]
}

/// Insert a queued task and its `queued` event in `tx` (wake with [`queued`] after the commit).
pub(super) async fn insert_in(tx: &Transaction<'_>, t: &NewTask) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO tasks(id, title, level, source, spec, state, submitted_at, trigger, \
         author_trusted) VALUES ($1, $2, $3, $4, $5, 'queued', {NOW_MS}, $6, $7)"
    );
    let params: [&(dyn ToSql + Sync); 7] = [
        &t.id,
        &t.title,
        &t.level,
        &t.source,
        &t.spec,
        &t.trigger,
        &t.author_trusted,
    ];
    tx.execute(&sql, &params)
        .await
        .map_err(pg("insert a task"))?;
    let body = daemon_event(&t.id, "queued", now_ms(), json!({ "title": t.title }));
    event(tx, &t.id, &body).await
}

fn task_row(r: &Row) -> TaskRow {
    let state: String = r.get(5);
    TaskRow {
        seq: r.get(0),
        id: r.get(1),
        title: r.get(2),
        level: r.get(3),
        source: r.get(4),
        phase: Phase::parse(&state).unwrap_or(Phase::Done(State::Error)),
        reason: r.get(6),
        message: r.get(7),
        cancel_requested: r.get(8),
        restarts: r.get(9),
        session: r.get(10),
        submitted_at: r.get(11),
        started_at: r.get(12),
        finished_at: r.get(13),
        summary: r.get(14),
        epoch: r.get(15),
        artifacts: r.get(16),
    }
}
