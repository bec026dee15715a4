//! One task in flight ([`TaskRun`]): its fixed context, the history its attempts append to,
//! its event log, and the state of its background baseline and of the forge's CI. The lifecycle
//! verbs are in their own files: `attempt.rs` (the loop), `containers.rs`, `gate_run.rs`,
//! `tail.rs` (everything after the judge, in order), `export.rs`, `push_step.rs`, `ci_step.rs`.

use super::baseline::BaselineState;
use super::ci_step::CiState;
use super::context::{Start, TaskContext};
use super::history::History;
use super::RunOptions;
use crate::artifacts::{ArtifactError, EventLog};

/// One task in flight. Owns everything that must be cleaned up.
pub(super) struct TaskRun {
    /// What never changes after the start.
    pub ctx: TaskContext,
    /// The attempts so far (appended to by [`History::append`] only).
    pub history: History,
    pub events: EventLog,
    /// The gate on the untouched base (see `baseline`).
    pub baseline: BaselineState,
    /// The forge's CI after the push (see `ci_step`).
    pub ci: CiState,
}

impl TaskRun {
    /// Start the task: artifact dir, `/airlock`, packet, model egress (see
    /// [`TaskContext::start`]).
    pub fn new(start: Start, opts: &RunOptions) -> Result<TaskRun, ArtifactError> {
        let (ctx, events) = TaskContext::start(start, opts)?;
        let mut task = TaskRun {
            ctx,
            history: History::default(),
            events,
            baseline: BaselineState::default(),
            ci: CiState::default(),
        };
        task.emit_egress_started();
        // The agent's model keys are the task's secrets too: no artifact may hold one.
        for key in task.ctx.egress.iter().flat_map(|e| e.keys()) {
            task.ci.held.add(key);
        }
        Ok(task)
    }

    /// Remove every container of this task (whatever happened) and tear the workspace down.
    pub async fn finish(&mut self, keep: bool) {
        self.stop_egress();
        self.abort_baseline();
        if let Some(e) = self.ctx.engine.sweep_task(&self.ctx.task_id).await {
            tracing::warn!(error = %e, "sweep of the task's containers failed");
        }
        if let Err(e) = self.ctx.on_workspace(move |ws| ws.tear_down(keep)).await {
            tracing::warn!(error = %e, "workspace tear-down failed");
        }
    }
}
