//! Retention: forget finished tasks beyond the configured age or count (artifacts, then store
//! rows), at start and hourly.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::shared::Shared;
use crate::runner::valid_task_id;
use crate::store::{now_ms, retention};

const EVERY: Duration = Duration::from_secs(3600);

pub async fn hourly(ctx: Arc<Shared>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => once(&ctx).await,
        }
    }
}

pub async fn once(ctx: &Shared) {
    let policy = ctx.config.retention;
    if policy.max_age.is_none() && policy.max_tasks.is_none() {
        return;
    }
    let finished = match ctx.db.finished().await {
        Ok(f) => f,
        Err(e) => return tracing::warn!(error = %e, "retention: cannot list finished tasks"),
    };
    let ids = retention::to_delete(&finished, now_ms(), &policy);
    if ids.is_empty() {
        return;
    }
    let root = ctx.config.artifacts_dir.clone();
    let doomed = ids.clone();
    let _ = tokio::task::spawn_blocking(move || remove_artifacts(&root, &doomed)).await;
    match ctx.db.delete_finished(ids).await {
        Ok(n) => tracing::info!(tasks = n, "retention: forgot finished tasks"),
        Err(e) => tracing::warn!(error = %e, "retention: cannot delete tasks"),
    }
}

fn remove_artifacts(root: &std::path::Path, ids: &[String]) {
    for id in ids.iter().filter(|id| valid_task_id(id)) {
        let dir = root.join(id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), error = %e, "retention: cannot remove artifacts");
            }
        }
    }
}
