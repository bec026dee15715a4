//! One task on a worker: the stored spec through `runner::run_task`, exactly as `airlock run`
//! runs it, with its events copied into the store as they happen. On a shared queue the
//! worker also holds the task's lease ([`super::lease`]), labels its containers with
//! `<runner>@<epoch>`, records the push in the queue before it starts, and publishes the
//! artifacts before the fenced finish.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

use super::fenced::Copier;
use super::lease::{self, Abandoned};
use super::shared::Shared;
use super::status::{self, Moment};
use super::synth::{self, Subject};
use super::tail::Tail;
use crate::artifacts::State;
use crate::policy::{Source, Trigger};
use crate::runner::{self, NotRun, Progress, PushGate, RunOptions};
use crate::store::{Claimed, End, Lease};
use crate::vocab::Reason;

/// How often the task's events are copied into the store while it runs.
const TAIL_EVERY: Duration = Duration::from_millis(200);

/// A worker's result.
pub struct Outcome {
    pub id: String,
    pub end: End,
    pub run_seconds: f64,
    /// The artifact prefix published for this run (shared artifact store only).
    pub artifacts: Option<String>,
    /// Shared queue: whether the worker recorded the fenced finish itself (`false`: the lease
    /// was lost, another runner owns the task, nothing is announced). `None`: the dispatcher
    /// records it (local store).
    pub recorded: Option<bool>,
}

/// Run `task` to a final state; never panics out (a panic becomes `error` / `runner_fault`).
pub async fn run(ctx: Arc<Shared>, task: Claimed, cancel: CancellationToken) -> Outcome {
    let started = Instant::now();
    let target = match task.trigger.starts_with("webhook:") {
        true => status::target_of(&ctx, &task.id).await,
        false => None,
    };
    let level = task.level.clone();
    status::post(&ctx, target.clone(), &task.id, Moment::Started { level });
    let lease = Lease {
        id: task.id.clone(),
        epoch: task.epoch,
    };
    let abandoned = Abandoned::default();
    let done = CancellationToken::new();
    if let Some(times) = ctx.db.leases() {
        let (c, l, a, d) = (ctx.clone(), lease.clone(), abandoned.clone(), done.clone());
        tokio::spawn(lease::hold(c, l, times, cancel.clone(), a, d));
    }
    let result = AssertUnwindSafe(run_task(&ctx, &task, &lease, cancel, &abandoned))
        .catch_unwind()
        .await;
    let (end, copier) = match result {
        Ok((end, copier)) => (end, copier),
        Err(_) => (
            fail(
                &ctx,
                &task,
                Reason::RunnerFault,
                "the worker panicked".into(),
            ),
            Copier::new(lease.clone()),
        ),
    };
    let published = match abandoned.is_set() {
        true => None,
        false => super::publish::after_run(&ctx, &task, &end).await,
    };
    let (end, artifacts) = match published {
        Some(Err(m)) => (fail(&ctx, &task, Reason::ArtifactStoreFailed, m), None),
        Some(Ok(prefix)) => (end, Some(prefix)),
        None => (end, None),
    };
    let recorded = record(&ctx, copier, &end, &artifacts, &abandoned).await;
    done.cancel();
    let pr_url = status::pr_url(&ctx.config.artifacts_dir, &task.id);
    status::post(
        &ctx,
        target,
        &task.id,
        Moment::Ended {
            end: end.clone(),
            pr_url,
        },
    );
    Outcome {
        id: task.id,
        end,
        run_seconds: started.elapsed().as_secs_f64(),
        artifacts,
        recorded,
    }
}

/// Shared queue: the remaining events and the fenced finish, while the lease is held (the
/// heartbeat runs until this returns); after an abandon, the late flush.
async fn record(
    ctx: &Arc<Shared>,
    mut copier: Copier,
    end: &End,
    artifacts: &Option<String>,
    abandoned: &Abandoned,
) -> Option<bool> {
    let times = ctx.db.leases()?;
    let recorded = copier
        .finish(ctx, times, end.clone(), artifacts.clone(), abandoned)
        .await;
    if !recorded {
        copier.late_flush(ctx.clone(), times);
    }
    Some(recorded)
}

async fn run_task(
    ctx: &Arc<Shared>,
    task: &Claimed,
    lease: &Lease,
    cancel: CancellationToken,
    abandoned: &Abandoned,
) -> (End, Copier) {
    let mut copier = Copier::new(lease.clone());
    let spec = match crate::spec::parse_submitted(&task.spec, Path::new(&task.source)) {
        Ok(s) => s,
        Err(e) => return (fail(ctx, task, Reason::InvalidInput, e.to_string()), copier),
    };
    let opts = options(ctx, task, lease);
    let events = opts.artifacts_root.join(&task.id).join("events.jsonl");
    let mut tail = Tail::from_end(events);
    let hook = {
        let (ctx, id) = (ctx.clone(), task.id.clone());
        std::sync::Arc::new(move |phase: &str| {
            if let Ok(mut p) = ctx.phases.lock() {
                p.insert(id.clone(), phase.to_string());
            }
        })
    };
    let run = runner::run_task(
        spec,
        &opts,
        cancel.clone(),
        Progress::silent().with_hook(hook),
    );
    tokio::pin!(run);
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            _ = tokio::time::sleep(TAIL_EVERY) => copier.copy(ctx, tail.read_lines(), &cancel, abandoned).await,
        }
    };
    copier
        .copy(ctx, tail.read_lines(), &cancel, abandoned)
        .await;
    if let Ok(mut p) = ctx.phases.lock() {
        p.remove(&task.id);
    }
    let end = match result {
        Ok(summary) => synth::end_of(&summary),
        Err(NotRun::Refused(summary)) | Err(NotRun::Cancelled(summary)) => synth::end_of(&summary),
        Err(NotRun::Invalid(m)) => fail(ctx, task, Reason::InvalidInput, m),
        Err(NotRun::Fault(m)) => fail(ctx, task, Reason::RunnerFault, m),
    };
    (end, copier)
}

fn options(ctx: &Arc<Shared>, task: &Claimed, lease: &Lease) -> RunOptions {
    let id = task.id.as_str();
    let source = Source::ALL
        .into_iter()
        .find(|s| s.key() == task.trigger)
        .unwrap_or(Source::Api);
    let c = &ctx.config;
    let shared = ctx.db.leases().is_some();
    RunOptions {
        artifacts_root: c.artifacts_dir.clone(),
        state_dir: c.state_dir.clone(),
        keep: false,
        trigger: Trigger {
            source,
            // Decided at intake: the API narrows `author_trusted` from airlock.toml, a webhook
            // takes it from the payload, a schedule is the operator's own.
            author_trusted: task.author_trusted,
        },
        policies: ctx.policies.clone(),
        session: match shared {
            true => super::sweep::session_label(&ctx.session, lease.epoch),
            false => ctx.session.clone(),
        },
        task_id: Some(id.to_string()),
        push_gate: shared.then(|| push_gate(ctx, lease)),
    }
}

/// Record the push in the queue, fenced, before it starts: a task whose push started is never
/// re-queued, and a runner that lost its lease never pushes.
fn push_gate(ctx: &Arc<Shared>, lease: &Lease) -> PushGate {
    let (db, lease) = (ctx.db.clone(), lease.clone());
    let handle = tokio::runtime::Handle::current();
    PushGate(Arc::new(move || {
        handle
            .block_on(db.push_started(&lease))
            .map_err(|e| e.to_string())
    }))
}

/// The task did not run: `error` with `reason`, summary written by the daemon.
pub(super) fn fail(ctx: &Shared, task: &Claimed, reason: Reason, message: String) -> End {
    tracing::warn!(task = %task.id, reason = %reason, message = %message, "task did not run");
    let who = Subject {
        id: &task.id,
        title: &task.title,
        level: &task.level,
    };
    let summary = synth::write(
        &ctx.config.artifacts_dir,
        &who,
        State::Error,
        reason,
        Some(message),
    );
    synth::end_of(&summary)
}
