//! Summaries the daemon writes itself, for tasks the runner did not finish: cancelled while
//! queued, not runnable (invalid input, runner fault), or interrupted by a daemon crash
//! (`runner_restart`). Written like the runner's: temp-then-rename, then the bundle.

use std::path::Path;

use crate::artifacts::{bundle, write_atomic, ArtifactDir, State, Summary};
use crate::store::End;
use crate::vocab::Reason;

/// Who the summary is about.
pub struct Subject<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub level: &'a str,
}

/// Build and write `summary.json` and the bundle under `<artifacts_root>/<id>/`. Write failures
/// are logged; the summary is returned either way (the store keeps it too).
pub fn write(
    root: &Path,
    who: &Subject,
    state: State,
    reason: Reason,
    message: Option<String>,
) -> Summary {
    let artifacts = root.join(who.id).display().to_string();
    let summary = Summary::not_run(
        who.id, who.title, who.level, state, reason, message, artifacts,
    );
    if let Err(e) = write_files(root, &summary) {
        tracing::error!(task = who.id, error = %e, "cannot write the task's summary");
    }
    summary
}

fn write_files(root: &Path, summary: &Summary) -> Result<(), String> {
    let dir = ArtifactDir::create(root, &summary.task_id).map_err(|e| e.to_string())?;
    let bytes = crate::untrusted::to_json(summary, true).map_err(|e| e.to_string())?;
    write_atomic(&dir.path("summary.json"), bytes.as_bytes()).map_err(|e| e.to_string())?;
    bundle(&dir.dir, &dir.task_id)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The runner's `summary.json` of a task, if there is one.
pub fn read(root: &Path, id: &str) -> Option<Summary> {
    let bytes = std::fs::read(root.join(id).join("summary.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// How a summary is stored.
pub fn end_of(summary: &Summary) -> End {
    End {
        state: summary.state,
        reason: summary.reason,
        message: summary.message.clone(),
        summary: crate::untrusted::to_json(summary, false).ok(),
    }
}
