//! One task's lifecycle: admit → prepare → attempt 1..N → export. `airlock run` and the daemon
//! both run tasks through [`run_task`].

mod attempt;
mod baseline;
mod baseline_cache;
mod ci_step;
mod containers;
mod context;
mod context_scope;
pub mod engine_port;
mod export;
#[cfg(test)]
mod fake_engine;
mod final_lines;
mod gate_run;
mod gate_view;
mod history;
#[cfg(test)]
mod lifecycle_tests;
pub mod model_egress;
mod packet;
mod progress;
mod push_step;
mod risk_step;
mod startfail;
mod tail;
#[cfg(test)]
mod tail_tests;
mod task;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::artifacts::{ArtifactDir, EventLog, State, Summary};
use crate::policy::{admit, Admission, Policies, Trigger};
use crate::sandbox::{Engine, SandboxError};
use crate::spec::TaskSpec;
use crate::vocab::{Exit, Reason};
use engine_port::Containers;

use crate::workspace::{prepare, PrepareOptions, SourceError, Workspace, WorkspaceError};

pub use crate::ids::{branch_name, new_task_id, random_hex, slug, valid_task_id};
pub use final_lines::{describe, one_line};
pub use progress::Progress;

/// How to run a task.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Each task's artifacts go to `<artifacts_root>/<task id>/`.
    pub artifacts_root: PathBuf,
    /// Work dirs, locks, mirrors and caches (`<state_dir>/tasks/<task id>/`, ...).
    pub state_dir: PathBuf,
    /// Keep the task's work dir after it ends (for debugging).
    pub keep: bool,
    /// Where the task came from (CLI, API, webhook, schedule): admission caps its level.
    pub trigger: Trigger,
    /// The operator's policy files.
    pub policies: Policies,
    /// Id of this `airlock run` / daemon session (container label).
    pub session: String,
    /// Use this task id instead of generating one (the daemon assigns ids at submit).
    pub task_id: Option<String>,
    /// Asked just before a push starts (after the containers are gone); an `Err` stops the
    /// push. A shared queue records the push here, fenced, so it happens at most once.
    pub push_gate: Option<PushGate>,
}

/// See [`RunOptions::push_gate`].
#[derive(Clone)]
pub struct PushGate(pub std::sync::Arc<dyn Fn() -> Result<(), String> + Send + Sync>);

impl std::fmt::Debug for PushGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PushGate")
    }
}

/// Why a task did not run at all. Maps to the contract's exit codes.
#[derive(Debug, thiserror::Error)]
pub enum NotRun {
    /// Exit 2: invalid input (spec, repo, base, image).
    #[error("{0}")]
    Invalid(String),
    /// Exit 3: refused by policy. The summary is written.
    #[error("{}", .0.message.clone().unwrap_or_default())]
    Refused(Box<Summary>),
    /// Exit 4: runner or engine fault.
    #[error("{0}")]
    Fault(String),
    /// Exit 1: cancelled before any container ran (during prepare). The summary is written.
    #[error("{}", .0.message.clone().unwrap_or_default())]
    Cancelled(Box<Summary>),
}

impl NotRun {
    /// The contract's exit for this outcome.
    pub fn exit(&self) -> Exit {
        match self {
            NotRun::Invalid(_) => Exit::Invalid,
            NotRun::Refused(_) => Exit::Refused,
            NotRun::Fault(_) => Exit::Fault,
            NotRun::Cancelled(_) => Exit::NotGreen,
        }
    }

    /// The process exit code ([`NotRun::exit`]).
    pub fn exit_code(&self) -> i32 {
        self.exit().code()
    }
}

/// Run one task to a terminal state. `Ok` means it ran (whatever its state); the summary and
/// artifacts are written. `Err` means nothing ran.
pub async fn run_task(
    spec: TaskSpec,
    opts: &RunOptions,
    cancel: CancellationToken,
    progress: Progress,
) -> Result<Summary, NotRun> {
    run_task_on(spec, opts, cancel, progress, Connect::Engine).await
}

/// The engine the task's containers run on: connected, checked, and the orphans of dead runs
/// recovered, before anything of this task is created.
async fn connect_engine(
    spec: &TaskSpec,
    adm: &Admission,
    opts: &RunOptions,
    progress: &Progress,
) -> Result<Arc<dyn Containers>, NotRun> {
    let engine = preflight(spec, adm).await?;
    progress.phase(
        "engine",
        &format!("{} at {}", engine.info(), engine.endpoint()),
    );
    recover(&opts.state_dir, &engine, progress).await;
    Ok(Arc::new(engine))
}

/// Where a task's containers run.
enum Connect {
    /// The engine at `DOCKER_HOST` ([`connect_engine`]).
    Engine,
    /// Containers the caller made (the unit tests' recording fake).
    #[cfg(test)]
    Given(Arc<dyn Containers>),
}

/// [`run_task`] on the containers `connect` names.
async fn run_task_on(
    mut spec: TaskSpec,
    opts: &RunOptions,
    cancel: CancellationToken,
    progress: Progress,
    connect: Connect,
) -> Result<Summary, NotRun> {
    let started = Instant::now();
    let task_id = opts.task_id.clone().unwrap_or_else(new_task_id);
    let admission = match admit(&spec, &opts.policies, opts.trigger) {
        Ok(a) => a,
        Err(r) => {
            return Err(NotRun::Refused(Box::new(export::refused(
                &spec, &task_id, opts, &r,
            ))))
        }
    };
    spec.repo.url = resolve_repo(&spec, opts, &task_id)?;
    progress.phase(
        "admit",
        &format!(
            "{} {} runtime {} (task {task_id})",
            admission.level,
            spec.title,
            admission.runtime.as_str()
        ),
    );
    let engine = match connect {
        Connect::Engine => connect_engine(&spec, &admission, opts, &progress).await?,
        #[cfg(test)]
        Connect::Given(c) => c,
    };
    let ws = prepare_workspace(&spec, opts, &task_id, &admission, &cancel, &progress).await?;
    progress.phase(
        "prepare",
        &format!(
            "{} at {}",
            spec.repo.base,
            &ws.base_commit[..12.min(ws.base_commit.len())]
        ),
    );
    let start = context::Start {
        spec,
        adm: admission,
        engine,
        ws,
        task_id,
        progress,
        started,
    };
    let mut task = task::TaskRun::new(start, opts).map_err(|e| NotRun::Fault(e.to_string()))?;
    let summary = task.execute(cancel).await;
    task.finish(opts.keep).await;
    Ok(summary)
}

/// A local repository path, canonical and checked again now that admission allowed it.
fn resolve_repo(spec: &TaskSpec, opts: &RunOptions, task_id: &str) -> Result<String, NotRun> {
    let access = &opts.policies.operator.repo_access;
    let cli = opts.trigger.source == crate::policy::Source::Cli;
    crate::workspace::resolve_source(&spec.repo.url, access, cli, &opts.state_dir).map_err(|e| {
        match e {
            SourceError::Refused { .. } => {
                let r = crate::policy::Refusal {
                    reason: Reason::RepoNotAllowed,
                    message: e.to_string(),
                };
                NotRun::Refused(Box::new(export::refused(spec, task_id, opts, &r)))
            }
            SourceError::Missing { .. } => {
                NotRun::Invalid(format!("{}: field `repo.url`: {e}", spec.source.display()))
            }
        }
    })
}

/// Engine reachable, images present, runtime registered: checked before anything is created.
async fn preflight(spec: &TaskSpec, adm: &Admission) -> Result<Engine, NotRun> {
    let engine = Engine::connect()
        .await
        .map_err(|e| NotRun::Fault(e.to_string()))?;
    let mut images = vec![spec.agent.image.as_str()];
    if let (Some(g), true) = (&spec.gate, adm.run_gate) {
        images.push(g.image.as_str());
    }
    for image in images {
        engine.check_image(image).await.map_err(|e| match e {
            SandboxError::ImageMissing { .. } => NotRun::Invalid(format!(
                "{}: field `agent.image`/`gate.image`: {e}",
                spec.source.display()
            )),
            e => NotRun::Fault(e.to_string()),
        })?;
    }
    engine
        .check_runtime(adm.runtime.as_str())
        .await
        .map_err(|e| NotRun::Fault(e.to_string()))?;
    Ok(engine)
}

async fn prepare_workspace(
    spec: &TaskSpec,
    opts: &RunOptions,
    task_id: &str,
    adm: &Admission,
    cancel: &CancellationToken,
    progress: &Progress,
) -> Result<Workspace, NotRun> {
    let operator = &opts.policies.operator;
    let mut popts = PrepareOptions::new(
        opts.state_dir.clone(),
        task_id,
        adm.policy.checkout == crate::policy::Checkout::ReadOnly,
        (adm.limits.workspace, adm.limits.workspace_inodes),
    );
    popts.limits = operator.prepare.clone();
    popts.ssh = operator.repo_access.ssh.clone();
    popts.cancel = cancel_flag(cancel);
    popts.progress = progress.steps();
    let repo = spec.repo.clone();
    let root = opts.state_dir.join("tasks").join(task_id);
    let result = tokio::task::spawn_blocking(move || prepare(&repo, &popts))
        .await
        .map_err(|e| NotRun::Fault(e.to_string()))?;
    result.map_err(|e| {
        cleanup_failed_prepare(&root);
        let file = spec.source.display();
        match e {
            WorkspaceError::Source { .. } | WorkspaceError::BaseMissing { .. } => {
                NotRun::Invalid(format!("{file}: {e}"))
            }
            WorkspaceError::TooLarge { .. } | WorkspaceError::TooManyFiles { .. } => not_prepared(
                spec,
                opts,
                task_id,
                State::Refused,
                Reason::RepoTooLarge,
                &e,
            ),
            WorkspaceError::PrepareTimeout { .. } => not_prepared(
                spec,
                opts,
                task_id,
                State::Refused,
                Reason::PrepareTimeout,
                &e,
            ),
            WorkspaceError::Cancelled => {
                not_prepared(spec, opts, task_id, State::Cancelled, Reason::Cancelled, &e)
            }
            e => NotRun::Fault(format!("prepare: {e}")),
        }
    })
}

/// Work dirs and containers of tasks whose runner died (their lock is free) are removed; live
/// tasks of other runners on this host are left alone.
pub async fn recover(
    state_dir: &std::path::Path,
    engine: &Engine,
    progress: &Progress,
) -> Vec<String> {
    let dir = state_dir.to_path_buf();
    let stale = context::blocking(move || crate::workspace::recover_stale(&dir)).await;
    for id in &stale {
        progress.phase(
            "recover",
            &format!("task {id}: removed the work dir its dead runner left"),
        );
        tracing::warn!(task = %id, "recovered a task whose runner died");
    }
    let is_live = |lock: &str| crate::workspace::lock_is_held(std::path::Path::new(lock));
    match engine.sweep_orphans(is_live).await {
        Ok(0) => {}
        Ok(n) => progress.phase("recover", &format!("removed {n} container(s) of dead runs")),
        Err(e) => tracing::warn!(error = %e, "recovery: orphan sweep failed"),
    }
    stale
}

/// A flag the blocking prepare polls, set when `cancel` fires.
fn cancel_flag(cancel: &CancellationToken) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(cancel.is_cancelled()));
    let (f, c) = (flag.clone(), cancel.clone());
    tokio::spawn(async move {
        c.cancelled().await;
        f.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    flag
}

/// A task that ended at prepare: its summary and events are written like a refusal's.
fn not_prepared(
    spec: &TaskSpec,
    opts: &RunOptions,
    task_id: &str,
    state: State,
    reason: Reason,
    e: &WorkspaceError,
) -> NotRun {
    let r = crate::policy::Refusal {
        reason,
        message: e.to_string(),
    };
    let summary = Box::new(export::ended_before_run(spec, task_id, opts, &r, state));
    match state {
        State::Cancelled => NotRun::Cancelled(summary),
        _ => NotRun::Refused(summary),
    }
}

/// A prepare that failed half-way leaves nothing behind.
fn cleanup_failed_prepare(root: &std::path::Path) {
    for m in crate::workspace::mounts_under(root) {
        let _ = crate::workspace::unmount(&m);
    }
    let _ = std::fs::remove_dir_all(root);
}

/// The time left before `deadline`, as a tokio instant.
pub(crate) fn deadline_after(started: Instant, budget: Duration) -> tokio::time::Instant {
    tokio::time::Instant::from_std(started + budget)
}

pub(crate) fn event_log(dir: &ArtifactDir) -> EventLog {
    EventLog::new(dir.path("events.jsonl"), &dir.task_id)
}

/// `{"state": .., "reason": ..}` for events.
pub(crate) fn state_json(state: State, reason: Reason) -> serde_json::Value {
    json!({ "state": state.as_str(), "reason": reason })
}
