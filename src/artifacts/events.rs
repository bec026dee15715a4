//! `events.jsonl`: one JSON object per line, appended as the task goes.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{json, Map, Value};

/// The task's event log. Events are also kept in memory for the daemon and the summary.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    task_id: String,
    seq: u64,
    /// Called with every event, e.g. to stream it to a daemon client.
    listeners: Vec<std::sync::mpsc::Sender<Value>>,
    /// Events written before only the final kinds ([`ALWAYS`]) are; then one marker.
    max_events: u64,
    dropped: u64,
}

/// Kinds written whatever the cap: how the task ended.
const ALWAYS: [&str; 5] = ["finished", "exported", "error", "refused", "verdict"];

/// Events per task when no policy says otherwise.
pub const DEFAULT_MAX_EVENTS: u64 = 5000;

impl EventLog {
    /// An event log appending to `path` for task `task_id`, capped at `DEFAULT_MAX_EVENTS` (5000) until a policy sets the cap.
    pub fn new(path: PathBuf, task_id: &str) -> Self {
        EventLog {
            path,
            task_id: task_id.into(),
            seq: 0,
            listeners: Vec::new(),
            max_events: DEFAULT_MAX_EVENTS,
            dropped: 0,
        }
    }

    /// At most `max` events (the final kinds are always written; a marker says what was cut).
    pub fn with_max_events(mut self, max: u64) -> Self {
        self.max_events = max.max(1);
        self
    }

    /// Events dropped at the cap so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Receive every event emitted from now on.
    pub fn subscribe(&mut self) -> std::sync::mpsc::Receiver<Value> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.listeners.push(tx);
        rx
    }

    /// Append `{"seq", "ts", "task_id", "event": kind, ...fields}`. An event that cannot be
    /// written is logged, not fatal: the summary is the record of truth.
    pub fn emit(&mut self, kind: &str, mut fields: Value) {
        if self.seq >= self.max_events && !ALWAYS.contains(&kind) {
            self.dropped += 1;
            if self.dropped == 1 {
                let note = json!({ "limit": self.max_events, "truncated": true,
                    "note": "the task's event cap ([output] events) was reached; later events are dropped, the final ones kept" });
                self.write("events_truncated", note);
            }
            return;
        }
        if kind == "finished" && self.dropped > 0 {
            if let Value::Object(f) = &mut fields {
                f.insert("events_dropped".into(), json!(self.dropped));
            }
        }
        self.write(kind, fields);
    }

    fn write(&mut self, kind: &str, mut fields: Value) {
        // Events carry container output (failure text, file names): one sanitiser for all.
        crate::untrusted::neutralise_json(&mut fields);
        self.seq += 1;
        let mut obj = Map::new();
        obj.insert("seq".into(), json!(self.seq));
        obj.insert("ts".into(), json!(crate::units::now_rfc3339()));
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
        let mut f = super::nofollow::open_append(&self.path)?;
        let mut line = serde_json::to_vec(v)?;
        line.push(b'\n');
        f.write_all(&line)
    }
}
