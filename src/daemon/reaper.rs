//! Every runner of a shared queue, every heartbeat: re-queue tasks whose lease expired (or end
//! them `error` / `runner_lost`). Containers no live lease owns are removed by
//! [`sweep_orphans`], at start and from the periodic sweep (`daemon::orphans`), which runs
//! apart so a slow engine never delays the reaping.

use std::collections::HashSet;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::recover::list_managed;
use super::shared::Shared;
use super::sweep;
use crate::artifacts::{State, Summary};
use crate::sandbox::Engine;
use crate::store::pg::lost_message;
use crate::store::{LeaseTimes, LostTask};
use crate::vocab::Reason;

/// Until `stop`.
pub async fn run(ctx: Arc<Shared>, times: LeaseTimes, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(times.heartbeat) => {}
        }
        once(&ctx).await;
    }
}

/// One reaper pass.
pub async fn once(ctx: &Shared) {
    let reaped = match ctx.db.reap().await {
        Ok(r) => r,
        Err(e) => return tracing::warn!(error = %e, "reaper: cannot reap expired leases"),
    };
    for id in &reaped.requeued {
        tracing::warn!(task = %id, "reaper: lease expired; task re-queued");
    }
    ctx.metrics.requeued(reaped.requeued.len());
    for t in &reaped.lost {
        settle_lost(ctx, t).await;
    }
    if !reaped.requeued.is_empty() || !reaped.lost.is_empty() {
        ctx.events_stored();
        ctx.wake.notify_one();
    }
}

async fn settle_lost(ctx: &Shared, t: &LostTask) {
    tracing::error!(task = %t.id, push_started = t.push_started, "reaper: lease expired; task ended runner_lost");
    let summary = Summary::not_run(
        &t.id,
        &t.title,
        &t.level,
        State::Error,
        Reason::RunnerLost,
        Some(lost_message(t.push_started).into()),
        String::new(),
    );
    let json = crate::untrusted::to_json(&summary, false).unwrap_or_default();
    if let Err(e) = ctx.db.set_summary(t.id.clone(), json.clone()).await {
        tracing::warn!(task = %t.id, error = %e, "reaper: cannot store the summary");
    }
    ctx.metrics.finished(State::Error, None);
    ctx.notifier.send(&t.id, json);
}

/// Remove shared-queue containers whose task holds no live lease at their epoch.
pub async fn sweep_orphans(ctx: &Shared, engine: &Engine) -> usize {
    let all = match list_managed(engine).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "sweep: cannot list containers");
            return 0;
        }
    };
    let runners: HashSet<String> = match ctx.db.sessions().await {
        Ok(s) => s.into_iter().collect(),
        Err(e) => {
            tracing::warn!(error = %e, "sweep: cannot read the queue's runners; nothing removed");
            return 0;
        }
    };
    let live: HashSet<(String, i64)> = match ctx.db.live_leases().await {
        Ok(l) => l.into_iter().collect(),
        Err(e) => {
            tracing::warn!(error = %e, "sweep: cannot read live leases; nothing removed");
            return 0;
        }
    };
    let mut removed = 0;
    for id in sweep::orphans(&all, &runners, &live) {
        match engine.remove(&id).await {
            Ok(()) => {
                removed += 1;
                tracing::warn!(container = %id, "sweep: removed a container no live lease owns");
            }
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "sweep: cannot remove a container")
            }
        }
    }
    removed
}
