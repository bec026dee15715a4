//! Reading and cancelling tasks: list, get, cancel, bundle; health and metrics.

use std::sync::Arc;

use futures_util::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Response, StatusCode};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

use super::reply::{self, Body};
use crate::daemon::shared::{Command, Shared};
use crate::store::{CancelOutcome, Phase, TaskRow};
use crate::vocab::State;

/// Rows returned by a list when the client names no limit, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;
/// Bundle download chunk size.
const CHUNK: usize = 64 * 1024;

pub async fn list(ctx: Arc<Shared>, query: Option<&str>) -> Response<Body> {
    let phase = match reply::query_param(query, "state") {
        None => None,
        Some(s) => match Phase::parse(s) {
            Some(p) => Some(p),
            None => {
                return reply::error(
                    StatusCode::BAD_REQUEST,
                    &format!("`{s}` is not a task state"),
                    Some("state"),
                )
            }
        },
    };
    let limit = match reply::query_param(query, "limit").map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return reply::error(
                StatusCode::BAD_REQUEST,
                &format!("limit must be 1 to {MAX_LIMIT}"),
                Some("limit"),
            )
        }
    };
    match ctx.db.list(phase, limit).await {
        Ok(rows) => {
            let tasks: Vec<_> = rows.iter().map(|r| r.to_json(false)).collect();
            reply::json(StatusCode::OK, &json!({ "tasks": tasks }))
        }
        Err(e) => reply::internal(&e),
    }
}

/// The row of a task, or the response to send instead (404).
pub async fn row(ctx: &Shared, id: &str) -> Result<TaskRow, Response<Body>> {
    if !crate::runner::valid_task_id(id) {
        return Err(reply::not_found("task"));
    }
    let task = id.to_string();
    match ctx.db.get(task).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(reply::not_found(&format!("task {id}"))),
        Err(e) => Err(reply::internal(&e)),
    }
}

pub async fn get(ctx: Arc<Shared>, id: &str) -> Response<Body> {
    match row(&ctx, id).await {
        Ok(r) => {
            let mut v = r.to_json(true);
            if r.phase == Phase::Running {
                let phase = ctx.phases.lock().ok().and_then(|p| p.get(id).cloned());
                if let Some(phase) = phase {
                    v["phase"] = serde_json::Value::String(phase);
                }
            }
            reply::json(StatusCode::OK, &v)
        }
        Err(resp) => resp,
    }
}

/// 200 cancelled (it was queued) · 202 cancel requested (running) · 409 already final · 404.
pub async fn cancel(ctx: Arc<Shared>, id: &str) -> Response<Body> {
    if let Err(resp) = row(&ctx, id).await {
        return resp;
    }
    let (tx, rx) = oneshot::channel();
    let cmd = Command::Cancel {
        id: id.to_string(),
        reply: tx,
    };
    if ctx.commands.send(cmd).await.is_err() {
        return reply::unavailable("the daemon is shutting down");
    }
    match rx.await {
        Ok(Ok(CancelOutcome::Cancelled)) => reply::json(
            StatusCode::OK,
            &json!({ "id": id, "state": State::Cancelled }),
        ),
        Ok(Ok(CancelOutcome::Running)) => reply::json(
            StatusCode::ACCEPTED,
            &json!({ "id": id, "state": "running", "cancel_requested": true }),
        ),
        Ok(Ok(CancelOutcome::AlreadyFinal(p))) => reply::error(
            StatusCode::CONFLICT,
            &format!("task {id} already ended: {}", p.as_str()),
            None,
        ),
        Ok(Ok(CancelOutcome::NotFound)) => reply::not_found(&format!("task {id}")),
        Ok(Err(e)) => reply::internal(&e),
        Err(_) => reply::unavailable("the daemon is shutting down"),
    }
}

/// The task's `<id>.tar.gz`, streamed. 409 until the task has ended.
pub async fn bundle(ctx: Arc<Shared>, id: &str) -> Response<Body> {
    let r = match row(&ctx, id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if !r.phase.is_final() {
        let msg = format!(
            "task {id} is {}; its bundle is written when it ends",
            r.phase.as_str()
        );
        return reply::error(StatusCode::CONFLICT, &msg, None);
    }
    if let (Some(prefix), Some(store)) = (&r.artifacts, &ctx.artifacts) {
        return shared_bundle(store, prefix, id).await;
    }
    let path = ctx
        .config
        .artifacts_dir
        .join(id)
        .join(format!("{id}.tar.gz"));
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => return reply::not_found(&format!("the bundle of task {id}")),
    };
    let chunks = stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    reply::with_type(
        StatusCode::OK,
        "application/gzip",
        BodyExt::boxed(StreamBody::new(chunks)),
    )
}

/// The bundle the task's fenced finish published to the shared artifact store.
async fn shared_bundle(
    a: &crate::daemon::publish::Artifacts,
    prefix: &str,
    id: &str,
) -> Response<Body> {
    use futures_util::StreamExt;
    let key = object_store::path::Path::from(format!("{prefix}/{id}.tar.gz"));
    match a.store.get(&key).await {
        Ok(got) => {
            let chunks = got
                .into_stream()
                .map(|r| r.map_err(|e| std::io::Error::other(e.to_string())));
            reply::with_type(StatusCode::OK, "application/gzip", reply::spawned(chunks))
        }
        Err(object_store::Error::NotFound { .. }) => {
            reply::not_found(&format!("the bundle of task {id}"))
        }
        Err(e) => reply::unavailable(&format!("the artifact store: {e}")),
    }
}

async fn counts(ctx: &Shared) -> (i64, i64) {
    let counts = ctx.db.counts().await.unwrap_or_default();
    let get = |k: &str| counts.iter().find(|(s, _)| s == k).map_or(0, |c| c.1);
    (get("queued"), get("running"))
}

pub async fn health(ctx: Arc<Shared>) -> Response<Body> {
    let (queued, running) = counts(&ctx).await;
    let v = json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "session": ctx.session,
        "intake": if ctx.intake_open() { "open" } else { "closed" },
        "concurrency": ctx.config.concurrency,
        "queued": queued,
        "running": running,
    });
    reply::json(StatusCode::OK, &v)
}

pub async fn metrics(ctx: Arc<Shared>) -> Response<Body> {
    let (queued, running) = counts(&ctx).await;
    let mut text = ctx.metrics.render(queued, running);
    text.push_str(&super::stats::metrics(&ctx).await);
    reply::with_type(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        reply::full(text),
    )
}
