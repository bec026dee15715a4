//! Task rows: insert, claim, finish, cancel, recover, read.

use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde_json::{json, Value};

use super::events::{daemon_event, insert_event};
use super::retention::Finished;
use super::state::{next, Phase, Transition};
use super::{rfc3339, Store, StoreError};
use crate::vocab::Reason;
use crate::vocab::State;

/// A task as submitted (already validated).
#[derive(Debug, Clone)]
pub struct NewTask {
    /// The task's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its level (`L0`..`L4`).
    pub level: String,
    /// Name of the spec for messages (the client's file name).
    pub source: String,
    /// The spec text (TOML) as it will be run.
    pub spec: String,
    /// What started it (`api`, `webhook:issue_label`, ...), for admission.
    pub trigger: String,
    /// Whether the issue author has write access (admission caps untrusted authors).
    pub author_trusted: bool,
}

/// A task a worker has taken.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The task's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its level.
    pub level: String,
    /// The spec's name for messages.
    pub source: String,
    /// The spec text to run.
    pub spec: String,
    /// What started it, for admission.
    pub trigger: String,
    /// Whether the issue author has write access.
    pub author_trusted: bool,
    /// The fencing epoch of this claim (always 0 in the local store).
    pub epoch: i64,
    /// Times it was re-queued before this claim.
    pub restarts: i64,
}

/// One task as stored.
#[derive(Debug, Clone)]
pub struct TaskRow {
    /// Insertion order (the list's sort key).
    pub seq: i64,
    /// The task's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its level.
    pub level: String,
    /// The spec's name.
    pub source: String,
    /// Where it is in the queue.
    pub phase: Phase,
    /// Its reason code, once final.
    pub reason: Option<String>,
    /// The reason's detail, once final.
    pub message: Option<String>,
    /// Whether a client asked to cancel it.
    pub cancel_requested: bool,
    /// Times it was re-queued.
    pub restarts: i64,
    /// The runner session running (or that ran) it.
    pub session: Option<String>,
    /// When it was submitted (Unix ms).
    pub submitted_at: i64,
    /// When a worker took it (Unix ms).
    pub started_at: Option<i64>,
    /// When it ended (Unix ms).
    pub finished_at: Option<i64>,
    /// Its `summary.json`, once written.
    pub summary: Option<String>,
    /// The fencing epoch of its latest claim (0 in the local store).
    pub epoch: i64,
    /// The artifact prefix its fenced finish published (shared artifact store only).
    pub artifacts: Option<String>,
}

/// What a cancel request found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It was queued and is now `cancelled`.
    Cancelled,
    /// It is running; the cancel is recorded and the worker must stop it.
    Running,
    /// It had already ended.
    AlreadyFinal(Phase),
    /// No task has that id.
    NotFound,
}

const COLUMNS: &str = "seq, id, title, level, source, state, reason, message, cancel_requested, \
     restarts, session, submitted_at, started_at, finished_at, summary";

impl Store {
    /// Store a new queued task and its `queued` event, durably, in one transaction.
    pub fn insert(&mut self, t: &NewTask, now_ms: i64) -> Result<(), StoreError> {
        self.write("insert a task", |tx| insert_in(tx, t, now_ms))
    }

    /// Move up to `n` of the oldest queued tasks to `running` under `session`.
    pub fn claim(
        &mut self,
        n: usize,
        session: &str,
        now_ms: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.write("claim tasks", |tx| {
            let claimed = oldest_queued(tx, n)?;
            for c in &claimed {
                set_phase(tx, &c.id, Phase::Queued, Transition::Claim)?;
                tx.execute(
                    "UPDATE tasks SET session = ?2, started_at = ?3 WHERE id = ?1",
                    params![c.id, session, now_ms],
                )?;
                let ev = daemon_event(&c.id, "started", now_ms, json!({ "session": session }));
                insert_event(tx, &c.id, &ev)?;
            }
            Ok(claimed)
        })
    }

    /// Record the end of a running task. `false` if it was not running (nothing changed).
    pub fn finish(&mut self, id: &str, end: &End, now_ms: i64) -> Result<bool, StoreError> {
        self.write("finish a task", |tx| {
            let ok = set_phase(tx, id, Phase::Running, Transition::Finish(end.state))?;
            if ok {
                record_end(tx, id, end, now_ms)?;
            }
            Ok(ok)
        })
    }

    /// Cancel a queued task now (ending it with `end`), or mark a running one for cancelling.
    pub fn cancel(
        &mut self,
        id: &str,
        end: &End,
        now_ms: i64,
    ) -> Result<CancelOutcome, StoreError> {
        self.write("cancel a task", |tx| cancel_in(tx, id, end, now_ms))
    }

    /// A task left `running` by a daemon that is gone: re-queue it or end it with `end`.
    pub fn recover(
        &mut self,
        id: &str,
        requeue: bool,
        end: &End,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write("recover a task", |tx| {
            let ok = set_phase(tx, id, Phase::Running, Transition::Interrupted { requeue })?;
            if ok && requeue {
                tx.execute(
                    "UPDATE tasks SET restarts = restarts + 1, started_at = NULL, session = NULL \
                     WHERE id = ?1",
                    params![id],
                )?;
                let ev = daemon_event(
                    id,
                    "requeued",
                    now_ms,
                    json!({ "reason": Reason::RunnerRestart }),
                );
                insert_event(tx, id, &ev)?;
            } else if ok {
                record_end(tx, id, end, now_ms)?;
            }
            Ok(ok)
        })
    }

    /// Replace the stored summary of a finished task.
    pub fn set_summary(&mut self, id: &str, summary: &str) -> Result<(), StoreError> {
        self.write("store a summary", |tx| {
            tx.execute(
                "UPDATE tasks SET summary = ?2 WHERE id = ?1",
                params![id, summary],
            )
            .map(|_| ())
        })
    }

    /// The task `id`, if there is one.
    pub fn get(&self, id: &str) -> Result<Option<TaskRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1");
        self.conn
            .query_row(&sql, params![id], task_row)
            .optional()
            .map_err(self.err("read a task"))
    }

    /// Tasks, newest first, optionally in one phase.
    pub fn list(&self, phase: Option<Phase>, limit: usize) -> Result<Vec<TaskRow>, StoreError> {
        let filter = phase.map(|p| p.as_str()).unwrap_or("%");
        let sql =
            format!("SELECT {COLUMNS} FROM tasks WHERE state LIKE ?1 ORDER BY seq DESC LIMIT ?2");
        let run = || -> rusqlite::Result<Vec<TaskRow>> {
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![filter, limit as i64], task_row)?;
            rows.collect()
        };
        run().map_err(self.err("list tasks"))
    }

    /// Number of tasks in each phase.
    pub fn counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let run = || -> rusqlite::Result<Vec<(String, i64)>> {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT state, COUNT(*) FROM tasks GROUP BY state")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        };
        run().map_err(self.err("count tasks"))
    }

    /// Every finished task, for retention.
    pub fn finished(&self) -> Result<Vec<Finished>, StoreError> {
        let run = || -> rusqlite::Result<Vec<Finished>> {
            let mut stmt = self
                .conn
                .prepare("SELECT id, finished_at FROM tasks WHERE finished_at IS NOT NULL")?;
            let rows = stmt.query_map([], |r| {
                Ok(Finished {
                    id: r.get(0)?,
                    finished_at_ms: r.get(1)?,
                })
            })?;
            rows.collect()
        };
        run().map_err(self.err("list finished tasks"))
    }

    /// Forget finished tasks and their events. Queued and running tasks are never deleted.
    pub fn delete_finished(&mut self, ids: &[String]) -> Result<usize, StoreError> {
        self.write("delete tasks", |tx| {
            let mut n = 0;
            for id in ids {
                n += tx.execute(
                    "DELETE FROM tasks WHERE id = ?1 AND finished_at IS NOT NULL",
                    params![id],
                )?;
                tx.execute("DELETE FROM events WHERE task_id = ?1", params![id])?;
            }
            Ok(n)
        })
    }
}

/// How a task ended, as stored.
#[derive(Debug, Clone)]
pub struct End {
    /// The final state.
    pub state: State,
    /// Why it ended there.
    pub reason: Reason,
    /// The reason's detail.
    pub message: Option<String>,
    /// `summary.json` as written to the artifacts.
    pub summary: Option<String>,
}

/// Insert `t` queued, with its `queued` event, inside the caller's transaction.
pub(super) fn insert_in(tx: &Transaction, t: &NewTask, now_ms: i64) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO tasks(id, title, level, source, spec, state, submitted_at, trigger, author_trusted) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, ?8)",
        params![t.id, t.title, t.level, t.source, t.spec, now_ms, t.trigger, t.author_trusted],
    )?;
    let fields = json!({ "title": t.title, "trigger": t.trigger });
    let ev = daemon_event(&t.id, "queued", now_ms, fields);
    insert_event(tx, &t.id, &ev)
}

fn cancel_in(
    tx: &Transaction,
    id: &str,
    end: &End,
    now_ms: i64,
) -> rusqlite::Result<CancelOutcome> {
    let Some(phase) = phase_of(tx, id)? else {
        return Ok(CancelOutcome::NotFound);
    };
    match phase {
        Phase::Queued => {
            set_phase(tx, id, Phase::Queued, Transition::CancelQueued)?;
            record_end(tx, id, end, now_ms)?;
            Ok(CancelOutcome::Cancelled)
        }
        Phase::Running => {
            tx.execute(
                "UPDATE tasks SET cancel_requested = 1 WHERE id = ?1",
                params![id],
            )?;
            let ev = daemon_event(id, "cancel_requested", now_ms, json!({}));
            insert_event(tx, id, &ev)?;
            Ok(CancelOutcome::Running)
        }
        done => Ok(CancelOutcome::AlreadyFinal(done)),
    }
}

fn record_end(tx: &Transaction, id: &str, end: &End, now_ms: i64) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE tasks SET reason = ?2, message = ?3, summary = ?4, finished_at = ?5 WHERE id = ?1",
        params![id, end.reason.as_str(), end.message, end.summary, now_ms],
    )?;
    super::stats::record(tx, id, end, now_ms)?;
    let fields =
        json!({ "state": end.state.as_str(), "reason": end.reason, "message": end.message });
    insert_event(tx, id, &daemon_event(id, "done", now_ms, fields))
}

fn phase_of(tx: &Transaction, id: &str) -> rusqlite::Result<Option<Phase>> {
    let text: Option<String> = tx
        .query_row("SELECT state FROM tasks WHERE id = ?1", params![id], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(text.and_then(|t| Phase::parse(&t)))
}

/// Compare-and-set the phase through [`next`]. `false` if the task is not in `from` or `t` is
/// not allowed from it.
fn set_phase(tx: &Transaction, id: &str, from: Phase, t: Transition) -> rusqlite::Result<bool> {
    let Some(to) = next(from, t) else {
        return Ok(false);
    };
    let n = tx.execute(
        "UPDATE tasks SET state = ?3 WHERE id = ?1 AND state = ?2",
        params![id, from.as_str(), to.as_str()],
    )?;
    Ok(n == 1)
}

fn oldest_queued(tx: &Transaction, n: usize) -> rusqlite::Result<Vec<Claimed>> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, title, level, source, spec, trigger, author_trusted, restarts FROM tasks \
         WHERE state = 'queued' ORDER BY seq LIMIT ?1",
    )?;
    let rows = stmt.query_map(params![n as i64], |r| {
        Ok(Claimed {
            id: r.get(0)?,
            title: r.get(1)?,
            level: r.get(2)?,
            source: r.get(3)?,
            spec: r.get(4)?,
            trigger: r.get(5)?,
            author_trusted: r.get(6)?,
            epoch: 0,
            restarts: r.get(7)?,
        })
    })?;
    rows.collect()
}

fn task_row(r: &Row) -> rusqlite::Result<TaskRow> {
    let state: String = r.get(5)?;
    Ok(TaskRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        title: r.get(2)?,
        level: r.get(3)?,
        source: r.get(4)?,
        phase: Phase::parse(&state).unwrap_or(Phase::Done(State::Error)),
        reason: r.get(6)?,
        message: r.get(7)?,
        cancel_requested: r.get::<_, i64>(8)? != 0,
        restarts: r.get(9)?,
        session: r.get(10)?,
        submitted_at: r.get(11)?,
        started_at: r.get(12)?,
        finished_at: r.get(13)?,
        summary: r.get(14)?,
        epoch: 0,
        artifacts: None,
    })
}

impl TaskRow {
    /// The API's view of the row; the summary (parsed) only if asked for.
    pub fn to_json(&self, with_summary: bool) -> Value {
        let mut v = json!({
            "id": self.id,
            "title": self.title,
            "level": self.level,
            "state": self.phase.as_str(),
            "reason": self.reason,
            "message": self.message,
            "cancel_requested": self.cancel_requested,
            "restarts": self.restarts,
            "submitted_at": rfc3339(self.submitted_at),
            "started_at": self.started_at.map(rfc3339),
            "finished_at": self.finished_at.map(rfc3339),
        });
        if self.epoch > 0 {
            v["epoch"] = json!(self.epoch);
        }
        if let Some(prefix) = &self.artifacts {
            v["artifacts_prefix"] = json!(prefix);
        }
        if with_summary {
            let summary = self
                .summary
                .as_deref()
                .and_then(|s| serde_json::from_str::<Value>(s).ok());
            v["summary"] = summary.unwrap_or(Value::Null);
        }
        v
    }
}
