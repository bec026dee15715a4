//! The running daemon's periodic orphan sweep (#10 item 8): what a dead run left (an
//! `airlock run` killed mid-task, a crashed runner of the shared queue, a container the engine
//! kept through a restart) is removed while the daemon runs, not only at its next start.
//!
//! Local store: a container goes when no process holds its task lock (`airlock.lock`), so a
//! task running here or in any other live process is never touched ([`orphans_while_running`]).
//! Shared queue: the lease rule of [`super::sweep`] (this queue's runners only).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::config::DEFAULT_SWEEP_INTERVAL;
use super::reaper;
use super::recover::{list_managed, orphans_while_running};
use super::shared::Shared;
use crate::sandbox::Engine;

/// The sweep's period: `recovery.sweep_interval`, else the heartbeat on a shared queue, else
/// [`DEFAULT_SWEEP_INTERVAL`].
pub fn interval(ctx: &Shared) -> Duration {
    let heartbeat = ctx.db.leases().map(|t| t.heartbeat);
    ctx.config
        .recovery
        .sweep_interval
        .or(heartbeat)
        .unwrap_or(DEFAULT_SWEEP_INTERVAL)
}

/// Every `every`, until `stop`.
pub async fn run(ctx: Arc<Shared>, engine: Engine, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = once(&ctx, &engine) => {}
        }
    }
}

/// One pass; how many containers it removed.
pub async fn once(ctx: &Shared, engine: &Engine) -> usize {
    if ctx.db.leases().is_some() {
        return reaper::sweep_orphans(ctx, engine).await;
    }
    let all = match list_managed(engine).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "sweep: cannot list containers");
            return 0;
        }
    };
    let sessions: HashSet<String> = match ctx.db.sessions().await {
        Ok(s) => s.into_iter().collect(),
        Err(e) => {
            tracing::warn!(error = %e, "sweep: cannot read the store's sessions; nothing removed");
            return 0;
        }
    };
    let mut removed = 0;
    for id in orphans_while_running(&all, ctx.config.recovery.sweep, &sessions) {
        match engine.remove(&id).await {
            Ok(()) => {
                removed += 1;
                tracing::warn!(container = %id, "sweep: removed a container whose task lock no process holds");
            }
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "sweep: cannot remove a container")
            }
        }
    }
    removed
}
