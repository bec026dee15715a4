//! Task events: the daemon's own (`queued`, `started`, `cancel_requested`, `done`, ...) and the
//! runner's (copied from the task's `events.jsonl` as it is written), in one ordered table.

use rusqlite::{params, Transaction};
use serde_json::{json, Value};

use super::{rfc3339, Store, StoreError};

/// Most events returned by one read.
pub const EVENTS_PAGE: usize = 500;

impl Store {
    /// Append lines (JSON objects) to a task's events, in one transaction.
    pub fn append_events(&mut self, task_id: &str, bodies: &[String]) -> Result<(), StoreError> {
        if bodies.is_empty() {
            return Ok(());
        }
        self.write("append events", |tx| {
            bodies.iter().try_for_each(|b| insert_event(tx, task_id, b))
        })
    }

    /// Up to [`EVENTS_PAGE`] events of a task after cursor `after`, as `(cursor, body)`.
    pub fn events_after(
        &self,
        task_id: &str,
        after: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let run = || -> rusqlite::Result<Vec<(i64, String)>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, body FROM events WHERE task_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![task_id, after, EVENTS_PAGE as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect()
        };
        run().map_err(self.err("read events"))
    }
}

pub(super) fn insert_event(tx: &Transaction, task_id: &str, body: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO events(task_id, body) VALUES (?1, ?2)")?
        .execute(params![task_id, body])?;
    Ok(())
}

/// A daemon event: `{"ts", "task_id", "event", "origin": "daemon", ...fields}`.
pub fn daemon_event(task_id: &str, kind: &str, now_ms: i64, fields: Value) -> String {
    let mut v =
        json!({ "ts": rfc3339(now_ms), "task_id": task_id, "event": kind, "origin": "daemon" });
    if let (Some(obj), Value::Object(f)) = (v.as_object_mut(), fields) {
        obj.extend(f);
    }
    v.to_string()
}
