//! Outcome records for the daemon's per-kind statistics: one row per finished task, written in
//! the same transaction that ends it, kept when retention forgets the task, and updated when
//! the forge reports the task's pull request closed.

use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::Value;

use super::{Store, StoreError};
use crate::vocab::Reason;

/// Created with the rest of the schema (additive: no schema version bump).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outcomes (
    task_id     TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    duration_s  REAL NOT NULL,
    red_flags   INTEGER NOT NULL,
    branch      TEXT,
    pushed      INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    pr          TEXT,
    pr_at       INTEGER
);
CREATE INDEX IF NOT EXISTS outcomes_by_branch ON outcomes(branch);
";

/// How the forge closed a task's pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrOutcome {
    /// Merged.
    Merged,
    /// Closed without merging.
    ClosedUnmerged,
}

impl PrOutcome {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            PrOutcome::Merged => "merged",
            PrOutcome::ClosedUnmerged => "closed_unmerged",
        }
    }

    fn parse(text: &str) -> Option<PrOutcome> {
        match text {
            "merged" => Some(PrOutcome::Merged),
            "closed_unmerged" => Some(PrOutcome::ClosedUnmerged),
            _ => None,
        }
    }
}

/// One finished task, as the statistics see it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeRow {
    /// The task's id.
    pub task_id: String,
    /// Its kind (`docs`, `bugfix`, ...).
    pub kind: String,
    /// Its final state.
    pub state: String,
    /// Its reason code.
    pub reason: String,
    /// Attempts it took.
    pub attempts: u32,
    /// Seconds it ran.
    pub duration_s: f64,
    /// Any attempt raised a red flag.
    pub red_flags: bool,
    /// Its branch, when it made one.
    pub branch: Option<String>,
    /// Whether the branch was pushed.
    pub pushed: bool,
    /// What became of its pull request, once the forge said.
    pub pr: Option<PrOutcome>,
}

impl OutcomeRow {
    /// The row for a task that ended with `summary` (summary.json; absent for daemon-settled
    /// tasks). `spec_kind` is the kind the stored spec declares, used when the summary has none.
    pub fn from_summary(
        task_id: &str,
        state: &str,
        reason: Reason,
        summary: Option<&Value>,
        spec_kind: Option<String>,
    ) -> OutcomeRow {
        let null = Value::Null;
        let s = summary.unwrap_or(&null);
        let attempts = s["attempts"].as_array();
        let kind = s["kind"]
            .as_str()
            .filter(|k| *k != "other" && crate::spec::TaskKind::parse(k).is_some())
            .map(str::to_string)
            .or(spec_kind)
            .unwrap_or_else(|| "other".into());
        OutcomeRow {
            task_id: task_id.into(),
            kind,
            state: state.into(),
            reason: reason.as_str().into(),
            attempts: attempts.map_or(0, |a| a.len() as u32),
            duration_s: s["duration_s"].as_f64().unwrap_or(0.0),
            red_flags: reason == Reason::RedFlag
                || attempts
                    .into_iter()
                    .flatten()
                    .any(|a| a["red_flags"].as_array().is_some_and(|f| !f.is_empty())),
            branch: s["branch"].as_str().map(str::to_string),
            pushed: s["pushed"].as_bool().unwrap_or(false),
            pr: None,
        }
    }
}

/// Record (or replace) the outcome of task `id` inside the transaction that ends it.
pub(super) fn record(
    tx: &Transaction,
    id: &str,
    end: &super::End,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let summary: Option<Value> = end
        .summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    let spec: Option<String> = tx
        .query_row("SELECT spec FROM tasks WHERE id = ?1", params![id], |r| {
            r.get(0)
        })
        .optional()?;
    let row = OutcomeRow::from_summary(
        id,
        end.state.as_str(),
        end.reason,
        summary.as_ref(),
        spec.as_deref().and_then(spec_kind),
    );
    tx.execute(
        "INSERT OR REPLACE INTO outcomes(task_id, kind, state, reason, attempts, duration_s, \
         red_flags, branch, pushed, finished_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            row.task_id,
            row.kind,
            row.state,
            row.reason,
            row.attempts,
            row.duration_s,
            row.red_flags,
            row.branch,
            row.pushed,
            now_ms
        ],
    )
    .map(|_| ())
}

/// The `kind` a stored spec declares, if it parses and names a known kind.
fn spec_kind(spec: &str) -> Option<String> {
    let v: toml::Value = toml::from_str(spec).ok()?;
    let k = crate::spec::TaskKind::parse(v.get("kind")?.as_str()?)?;
    Some(k.as_str().into())
}

impl Store {
    /// Every recorded outcome, oldest first.
    pub fn outcomes(&self) -> Result<Vec<OutcomeRow>, StoreError> {
        let run = || -> rusqlite::Result<Vec<OutcomeRow>> {
            let mut stmt = self.conn.prepare(
                "SELECT task_id, kind, state, reason, attempts, duration_s, red_flags, branch, \
                 pushed, pr FROM outcomes ORDER BY finished_at, task_id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(OutcomeRow {
                    task_id: r.get(0)?,
                    kind: r.get(1)?,
                    state: r.get(2)?,
                    reason: r.get(3)?,
                    attempts: r.get(4)?,
                    duration_s: r.get(5)?,
                    red_flags: r.get(6)?,
                    branch: r.get(7)?,
                    pushed: r.get(8)?,
                    pr: r
                        .get::<_, Option<String>>(9)?
                        .as_deref()
                        .and_then(PrOutcome::parse),
                })
            })?;
            rows.collect()
        };
        run().map_err(self.err("read outcomes"))
    }

    /// The forge closed the pull request of `branch`, which task `task_id` pushed. Returns
    /// whether a task matched (its id and its recorded branch both must). A later report
    /// replaces an earlier one (a closed PR can be reopened and merged).
    pub fn pr_closed(
        &mut self,
        task_id: &str,
        branch: &str,
        outcome: PrOutcome,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write("record a closed pull request", |tx| {
            let n = tx.execute(
                "UPDATE outcomes SET pr = ?3, pr_at = ?4 WHERE task_id = ?1 AND branch = ?2",
                params![task_id, branch, outcome.as_str(), now_ms],
            )?;
            Ok(n > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{End, NewTask};
    use crate::vocab::State;

    fn new(id: &str, spec: &str) -> NewTask {
        NewTask {
            id: id.into(),
            title: "t".into(),
            level: "L3".into(),
            source: "task.toml".into(),
            spec: spec.into(),
            trigger: "api".into(),
            author_trusted: true,
        }
    }

    fn finish(
        s: &mut Store,
        id: &str,
        spec: &str,
        state: State,
        reason: Reason,
        summary: Option<Value>,
    ) {
        s.insert(&new(id, spec), 1).unwrap();
        s.claim(1, "sess", 2).unwrap();
        let end = End {
            state,
            reason,
            message: None,
            summary: summary.map(|v| v.to_string()),
        };
        assert!(s.finish(id, &end, 3).unwrap());
    }

    #[test]
    fn finishing_records_an_outcome_that_outlives_retention() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("a.db")).unwrap();
        let summary = serde_json::json!({ "kind": "docs", "duration_s": 4.5, "branch": "agent/x-y", "pushed": true,
            "attempts": [{ "red_flags": [] }, { "red_flags": [{ "kind": "test_deleted" }] }] });
        finish(
            &mut s,
            "t1",
            "",
            State::NeedsHuman,
            Reason::RedFlag,
            Some(summary),
        );
        // A daemon-settled task has no kind in its summary: the stored spec's counts.
        finish(
            &mut s,
            "t2",
            "kind = \"tests\"\ntitle = \"x\"",
            State::Error,
            Reason::RunnerFault,
            None,
        );
        s.delete_finished(&["t1".into(), "t2".into()]).unwrap();
        let rows = s.outcomes().unwrap();
        assert_eq!(rows.len(), 2);
        let r = &rows[0];
        assert_eq!(
            (
                r.kind.as_str(),
                r.state.as_str(),
                r.attempts,
                r.red_flags,
                r.pushed
            ),
            ("docs", "needs_human", 2, true, true)
        );
        assert_eq!(r.duration_s, 4.5);
        assert_eq!((rows[1].kind.as_str(), rows[1].attempts), ("tests", 0));
    }

    #[test]
    fn a_closed_pr_needs_the_task_and_its_branch() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("a.db")).unwrap();
        let summary = serde_json::json!({ "kind": "bugfix", "branch": "agent/t1-fix", "pushed": true, "attempts": [{}] });
        finish(
            &mut s,
            "t1",
            "",
            State::Green,
            Reason::GatePassed,
            Some(summary),
        );
        assert!(!s
            .pr_closed("t1", "agent/t1-other", PrOutcome::Merged, 5)
            .unwrap());
        assert!(!s
            .pr_closed("t2", "agent/t1-fix", PrOutcome::Merged, 5)
            .unwrap());
        assert!(s
            .pr_closed("t1", "agent/t1-fix", PrOutcome::ClosedUnmerged, 5)
            .unwrap());
        assert!(s
            .pr_closed("t1", "agent/t1-fix", PrOutcome::Merged, 6)
            .unwrap());
        assert_eq!(s.outcomes().unwrap()[0].pr, Some(PrOutcome::Merged));
    }
}
