//! `GET /v1/stats`: per-kind outcome statistics, and their `/metrics` families.

use std::sync::Arc;

use hyper::{Response, StatusCode};
use serde_json::json;

use super::reply::{self, Body};
use crate::daemon::shared::Shared;
use crate::daemon::stats;

/// `{"kinds": [...]}`, one entry per kind that has a finished task.
pub async fn get(ctx: Arc<Shared>) -> Response<Body> {
    match ctx.db.call(|s| s.outcomes()).await {
        Ok(rows) => reply::json(StatusCode::OK, &json!({ "kinds": stats::compute(&rows) })),
        Err(e) => reply::internal(&e),
    }
}

/// The statistics families appended to `/metrics` (nothing when the store cannot be read:
/// a scrape never fails on them).
pub async fn metrics(ctx: &Shared) -> String {
    let mut out = String::new();
    match ctx.db.call(|s| s.outcomes()).await {
        Ok(rows) => stats::render_metrics(&stats::compute(&rows), &mut out),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read outcomes"),
    }
    out
}
