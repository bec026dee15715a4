//! What makes forge events and schedules start a task exactly once: each webhook delivery id
//! and each schedule slot is recorded in the same transaction as the task it started, and an
//! issue with a queued or running task starts no second one.

use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::json;

use super::events::{daemon_event, insert_event};
use super::tasks::{insert_in, NewTask};
use super::{Store, StoreError};

/// Tables added beside the task tables (created if missing; no migration needed).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
    delivery    TEXT PRIMARY KEY,
    issue_key   TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_issue ON deliveries(issue_key);
CREATE TABLE IF NOT EXISTS schedules (
    schedule TEXT PRIMARY KEY,
    since    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS schedule_slots (
    schedule TEXT NOT NULL,
    slot     INTEGER NOT NULL,
    task_id  TEXT NOT NULL,
    PRIMARY KEY (schedule, slot)
);
";

/// What makes this start unique.
#[derive(Debug, Clone)]
pub enum Key {
    /// A forge delivery (`<forge>:<delivery id>`) about one issue (`<forge>:<repo>#<n>`).
    Delivery {
        /// `<forge>:<delivery id>`.
        delivery: String,
        /// `<forge>:<repository>#<number>`.
        issue_key: String,
    },
    /// One slot (Unix ms) of one schedule.
    Slot {
        /// The schedule's name.
        schedule: String,
        /// The slot's start (Unix ms).
        slot_ms: i64,
    },
}

/// The outcome of [`Store::insert_triggered`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Triggered {
    /// A new task was queued.
    Inserted,
    /// This delivery already started `task_id`.
    Redelivered {
        /// The task it started.
        task_id: String,
    },
    /// The issue already has `task_id` queued or running.
    IssueBusy {
        /// The task already live for the issue.
        task_id: String,
    },
    /// This slot already ran as `task_id`.
    SlotTaken {
        /// The task that slot ran as.
        task_id: String,
    },
}

impl Store {
    /// Insert `task` unless `key` already started one, durably, in one transaction.
    /// `fields` go into the task's `triggered` event (no secrets).
    pub fn insert_triggered(
        &mut self,
        task: &NewTask,
        key: &Key,
        fields: serde_json::Value,
        now_ms: i64,
    ) -> Result<Triggered, StoreError> {
        self.write("insert a triggered task", |tx| {
            if let Some(t) = already(tx, key)? {
                return Ok(t);
            }
            insert_in(tx, task, now_ms)?;
            record(tx, key, &task.id, now_ms)?;
            let ev = daemon_event(&task.id, "triggered", now_ms, fields);
            insert_event(tx, &task.id, &ev)?;
            Ok(Triggered::Inserted)
        })
    }

    /// The issue key (`<forge>:<repo>#<n>`) of a task a webhook started.
    pub fn issue_of(&self, task_id: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT issue_key FROM deliveries WHERE task_id = ?1",
                params![task_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err("read a delivery"))
    }

    /// When `schedule` was first seen (recorded as `now_ms` the first time), and its latest slot.
    pub fn schedule_state(
        &mut self,
        schedule: &str,
        now_ms: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        self.write("read a schedule", |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO schedules(schedule, since) VALUES (?1, ?2)",
                params![schedule, now_ms],
            )?;
            let since: i64 = tx.query_row(
                "SELECT since FROM schedules WHERE schedule = ?1",
                params![schedule],
                |r| r.get(0),
            )?;
            let last: Option<i64> = tx.query_row(
                "SELECT MAX(slot) FROM schedule_slots WHERE schedule = ?1",
                params![schedule],
                |r| r.get(0),
            )?;
            Ok((since, last))
        })
    }
}

fn already(tx: &Transaction, key: &Key) -> rusqlite::Result<Option<Triggered>> {
    match key {
        Key::Delivery {
            delivery,
            issue_key,
        } => {
            let seen: Option<String> = tx
                .query_row(
                    "SELECT task_id FROM deliveries WHERE delivery = ?1",
                    params![delivery],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(task_id) = seen {
                return Ok(Some(Triggered::Redelivered { task_id }));
            }
            let live: Option<String> = tx
                .query_row(
                    "SELECT d.task_id FROM deliveries d JOIN tasks t ON t.id = d.task_id \
                     WHERE d.issue_key = ?1 AND t.state IN ('queued', 'running') LIMIT 1",
                    params![issue_key],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(live.map(|task_id| Triggered::IssueBusy { task_id }))
        }
        Key::Slot { schedule, slot_ms } => {
            let taken: Option<String> = tx
                .query_row(
                    "SELECT task_id FROM schedule_slots WHERE schedule = ?1 AND slot = ?2",
                    params![schedule, slot_ms],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(taken.map(|task_id| Triggered::SlotTaken { task_id }))
        }
    }
}

fn record(tx: &Transaction, key: &Key, task_id: &str, now_ms: i64) -> rusqlite::Result<()> {
    match key {
        Key::Delivery {
            delivery,
            issue_key,
        } => tx.execute(
            "INSERT INTO deliveries(delivery, issue_key, task_id, received_at) VALUES (?1, ?2, ?3, ?4)",
            params![delivery, issue_key, task_id, now_ms],
        ),
        Key::Slot { schedule, slot_ms } => tx.execute(
            "INSERT INTO schedule_slots(schedule, slot, task_id) VALUES (?1, ?2, ?3)",
            params![schedule, slot_ms, task_id],
        ),
    }
    .map(|_| ())
}

/// The fields of a `triggered` event.
pub fn fields(source: &str, detail: serde_json::Value) -> serde_json::Value {
    let mut v = json!({ "source": source });
    if let (Some(o), serde_json::Value::Object(d)) = (v.as_object_mut(), detail) {
        o.extend(d);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::End;
    use crate::vocab::Reason;
    use crate::vocab::State;

    fn task(id: &str) -> NewTask {
        NewTask {
            id: id.into(),
            title: "t".into(),
            level: "L1".into(),
            source: "t.toml".into(),
            spec: "x".into(),
            trigger: "webhook:issue_label".into(),
            author_trusted: true,
        }
    }

    fn delivery(d: &str) -> Key {
        Key::Delivery {
            delivery: d.into(),
            issue_key: "github:a/b#1".into(),
        }
    }

    #[test]
    fn a_delivery_starts_one_task_and_an_issue_one_live_task() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        let f = || json!({});
        assert_eq!(
            s.insert_triggered(&task("t1"), &delivery("d1"), f(), 1)
                .unwrap(),
            Triggered::Inserted
        );
        assert_eq!(
            s.insert_triggered(&task("t2"), &delivery("d1"), f(), 2)
                .unwrap(),
            Triggered::Redelivered {
                task_id: "t1".into()
            }
        );
        assert_eq!(
            s.insert_triggered(&task("t3"), &delivery("d2"), f(), 3)
                .unwrap(),
            Triggered::IssueBusy {
                task_id: "t1".into()
            }
        );
        assert!(s.get("t2").unwrap().is_none() && s.get("t3").unwrap().is_none());
        s.claim(1, "s", 4).unwrap();
        let end = End {
            state: State::Green,
            reason: Reason::GatePassed,
            message: None,
            summary: None,
        };
        assert!(s.finish("t1", &end, 5).unwrap());
        assert_eq!(
            s.insert_triggered(&task("t4"), &delivery("d3"), f(), 6)
                .unwrap(),
            Triggered::Inserted
        );
    }

    #[test]
    fn a_slot_runs_once_and_the_schedule_remembers_when_it_was_first_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.schedule_state("nightly", 100).unwrap(), (100, None));
        let slot = Key::Slot {
            schedule: "nightly".into(),
            slot_ms: 60_000,
        };
        assert_eq!(
            s.insert_triggered(&task("t1"), &slot, json!({}), 1)
                .unwrap(),
            Triggered::Inserted
        );
        drop(s);
        let mut s = Store::open(&path).unwrap();
        assert_eq!(
            s.schedule_state("nightly", 999).unwrap(),
            (100, Some(60_000))
        );
        assert_eq!(
            s.insert_triggered(&task("t2"), &slot, json!({}), 2)
                .unwrap(),
            Triggered::SlotTaken {
                task_id: "t1".into()
            }
        );
    }
}
