//! `events.jsonl`: one JSON object per line, appended as the task goes.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// The task's event log. Events are also kept in memory for the daemon and the summary.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    task_id: String,
    seq: u64,
    /// Called with every event, e.g. to stream it to a daemon client.
    listeners: Vec<std::sync::mpsc::Sender<Value>>,
}

impl EventLog {
    pub fn new(path: PathBuf, task_id: &str) -> Self {
        EventLog {
            path,
            task_id: task_id.into(),
            seq: 0,
            listeners: Vec::new(),
        }
    }

    /// Receive every event emitted from now on.
    pub fn subscribe(&mut self) -> std::sync::mpsc::Receiver<Value> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.listeners.push(tx);
        rx
    }

    /// Append `{"seq", "ts", "task_id", "event": kind, ...fields}`. An event that cannot be
    /// written is logged, not fatal: the summary is the record of truth.
    pub fn emit(&mut self, kind: &str, fields: Value) {
        self.seq += 1;
        let mut obj = Map::new();
        obj.insert("seq".into(), json!(self.seq));
        obj.insert("ts".into(), json!(now_rfc3339()));
        obj.insert("task_id".into(), json!(self.task_id));
        obj.insert("event".into(), json!(kind));
        if let Value::Object(f) = fields {
            obj.extend(f);
        }
        let value = Value::Object(obj);
        self.listeners.retain(|l| l.send(value.clone()).is_ok());
        if let Err(e) = self.append(&value) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot append event");
        }
    }

    fn append(&self, v: &Value) -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let mut line = serde_json::to_vec(v)?;
        line.push(b'\n');
        f.write_all(&line)
    }
}

/// Current UTC time as RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    humantime::format_rfc3339_millis(
        UNIX_EPOCH + std::time::Duration::from_millis(d.as_millis() as u64),
    )
    .to_string()
}
