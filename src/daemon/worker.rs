//! One task on a worker: the stored spec through `runner::run_task`, exactly as `airlock run`
//! runs it, with its events copied into the store as they happen.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

use super::shared::Shared;
use super::status::{self, Moment};
use super::synth::{self, Subject};
use super::tail::Tail;
use crate::artifacts::State;
use crate::policy::{Source, Trigger};
use crate::runner::{self, NotRun, Progress, RunOptions};
use crate::store::{Claimed, End};
use crate::vocab::Reason;

/// How often the task's events are copied into the store while it runs.
const TAIL_EVERY: Duration = Duration::from_millis(200);

/// A worker's result.
pub struct Outcome {
    pub id: String,
    pub end: End,
    pub run_seconds: f64,
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
    let result = AssertUnwindSafe(run_task(&ctx, &task, cancel))
        .catch_unwind()
        .await;
    let end = match result {
        Ok(end) => end,
        Err(_) => fail(
            &ctx,
            &task,
            Reason::RunnerFault,
            "the worker panicked".into(),
        ),
    };
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
    }
}

async fn run_task(ctx: &Arc<Shared>, task: &Claimed, cancel: CancellationToken) -> End {
    let spec = match crate::spec::parse_submitted(&task.spec, Path::new(&task.source)) {
        Ok(s) => s,
        Err(e) => return fail(ctx, task, Reason::InvalidInput, e.to_string()),
    };
    let opts = options(ctx, task);
    let events = opts.artifacts_root.join(&task.id).join("events.jsonl");
    let mut tail = Tail::from_end(events);
    let run = runner::run_task(spec, &opts, cancel, Progress::silent());
    tokio::pin!(run);
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            _ = tokio::time::sleep(TAIL_EVERY) => copy_events(ctx, &task.id, &mut tail).await,
        }
    };
    copy_events(ctx, &task.id, &mut tail).await;
    match result {
        Ok(summary) => synth::end_of(&summary),
        Err(NotRun::Refused(summary)) | Err(NotRun::Cancelled(summary)) => synth::end_of(&summary),
        Err(NotRun::Invalid(m)) => fail(ctx, task, Reason::InvalidInput, m),
        Err(NotRun::Fault(m)) => fail(ctx, task, Reason::RunnerFault, m),
    }
}

fn options(ctx: &Shared, task: &Claimed) -> RunOptions {
    let id = task.id.as_str();
    let source = Source::ALL
        .into_iter()
        .find(|s| s.key() == task.trigger)
        .unwrap_or(Source::Api);
    let c = &ctx.config;
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
        session: ctx.session.clone(),
        task_id: Some(id.to_string()),
    }
}

async fn copy_events(ctx: &Shared, id: &str, tail: &mut Tail) {
    let lines = tail.read_lines();
    if lines.is_empty() {
        return;
    }
    let task = id.to_string();
    match ctx.db.call(move |s| s.append_events(&task, &lines)).await {
        Ok(()) => ctx.events_stored(),
        Err(e) => tracing::warn!(task = id, error = %e, "cannot store the task's events"),
    }
}

/// The task did not run: `error` with `reason`, summary written by the daemon.
fn fail(ctx: &Shared, task: &Claimed, reason: Reason, message: String) -> End {
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
