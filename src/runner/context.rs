//! The task's context: everything fixed once the task has started (its spec and admission, the
//! engine, the workspace, its directories, ids, push gate, start times, model egress). Nothing
//! here changes while the task runs; what does lives in the attempt history
//! ([`super::history::History`]) and in the tail's own state.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::engine_port::Containers;
use super::packet::AirlockDir;
use super::{event_log, Progress, PushGate, RunOptions};
use crate::artifacts::{ArtifactDir, ArtifactError, EventLog};
use crate::egress::Egress;
use crate::policy::Admission;
use crate::spec::TaskSpec;
use crate::workspace::{mount_tmpfs, Workspace};

/// What a running task never changes.
pub(super) struct TaskContext {
    pub spec: TaskSpec,
    pub adm: Admission,
    pub engine: Arc<dyn Containers>,
    /// Shared so that its blocking git and mount work can run on the blocking pool.
    pub ws: Arc<Workspace>,
    pub artifacts: ArtifactDir,
    pub airlock: AirlockDir,
    pub task_id: String,
    /// Id of this `airlock run` / daemon session (container label).
    pub session: String,
    pub push_gate: Option<PushGate>,
    pub progress: Progress,
    pub started: Instant,
    pub started_at: String,
    pub state_dir: PathBuf,
    /// Model egress (proxies on the host), when the task was granted providers.
    pub egress: Option<Egress>,
}

/// The ids and options a task starts with (what [`TaskContext::start`] does not make itself).
pub(super) struct Start {
    pub spec: TaskSpec,
    pub adm: Admission,
    pub engine: Arc<dyn Containers>,
    pub ws: Workspace,
    pub task_id: String,
    pub progress: Progress,
    pub started: Instant,
}

impl TaskContext {
    /// Create the artifact dir, `/airlock` with its `out/` tmpfs and the packet, and start
    /// model egress; returns the context and the task's event log (`admitted`, `prepared`).
    pub fn start(s: Start, opts: &RunOptions) -> Result<(TaskContext, EventLog), ArtifactError> {
        let Start {
            spec,
            adm,
            engine,
            ws,
            task_id,
            progress,
            started,
        } = s;
        let artifacts = ArtifactDir::create(&opts.artifacts_root, &task_id)?;
        let mut events = event_log(&artifacts).with_max_events(adm.policy.output.events);
        let airlock = AirlockDir::create(&ws.root)?;
        if let Err(e) = mount_tmpfs(
            &airlock.out,
            adm.limits.out,
            adm.limits.tmpfs_inodes,
            crate::sandbox::hardening::sandbox_uid(),
        ) {
            return Err(ArtifactError::io("mount out/ tmpfs at", &airlock.out)(
                std::io::Error::other(e.to_string()),
            ));
        }
        airlock.write_packet(&spec, &task_id, adm.level.as_str(), &ws.base_commit)?;
        let egress = super::model_egress::start(&ws.root, &airlock, &adm).map_err(|e| {
            ArtifactError::io("start model egress in", &ws.root)(std::io::Error::other(e))
        })?;
        events.emit("admitted", json!({ "level": adm.level, "runtime": adm.runtime, "limits": adm.limits, "rules": adm.rules }));
        events.emit(
            "prepared",
            json!({ "base": spec.repo.base, "base_commit": ws.base_commit }),
        );
        let ctx = TaskContext {
            spec,
            adm,
            engine,
            ws: Arc::new(ws),
            artifacts,
            airlock,
            task_id,
            session: opts.session.clone(),
            push_gate: opts.push_gate.clone(),
            progress,
            started,
            started_at: crate::artifacts::now_rfc3339(),
            state_dir: opts.state_dir.clone(),
            egress,
        };
        Ok((ctx, events))
    }

    /// Run `f` over the workspace on tokio's blocking pool (git, mounts, file copies), so no
    /// worker thread blocks and any runtime flavour works. A panic in `f` goes on as a panic
    /// here.
    pub async fn on_workspace<T, F>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(&Workspace) -> T + Send + 'static,
    {
        let ws = self.ws.clone();
        blocking(move || f(&ws)).await
    }
}

/// `f` on tokio's blocking pool; a panic in it goes on as a panic here.
pub(super) async fn blocking<T, F>(f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
