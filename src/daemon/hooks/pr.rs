//! A verified webhook that reports a pull (merge) request of an airlock branch closed: the
//! task's outcome records merged or closed-unmerged, for the per-kind statistics.

use std::sync::Arc;

use hyper::{Response, StatusCode};
use serde_json::json;

use super::super::api::{reply, Body};
use super::super::config::triggers::TriggerRule;
use super::super::pr_closed::{parse, PrEvent};
use super::super::shared::Shared;
use super::{ignored, Map};
use crate::store::now_ms;
use crate::trigger::Forge;

/// `None` when the payload is not a pull-request event (the trigger intake answers it);
/// otherwise 200 with what was recorded or why nothing was.
pub async fn closed(
    ctx: &Arc<Shared>,
    dialect: Forge,
    h: &Map<'_>,
    body: &[u8],
    signed: &[&TriggerRule],
) -> Option<Response<Body>> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let c = match parse(dialect, h, &v) {
        PrEvent::NotPr => return None,
        PrEvent::Ignored(why) => return Some(ignored(&why)),
        PrEvent::Closed(c) => c,
    };
    // The secret that verified the request must belong to the PR's repository.
    if !signed
        .iter()
        .any(|t| t.repository.eq_ignore_ascii_case(&c.repository))
    {
        return Some(ignored(&format!(
            "repository `{}` has no [[trigger]] with this secret",
            crate::trigger::text::title(&c.repository)
        )));
    }
    let (id, branch, outcome) = (c.task_id.clone(), c.branch.clone(), c.outcome);
    let matched = ctx
        .db
        .call(move |s| s.pr_closed(&id, &branch, outcome, now_ms()))
        .await;
    Some(match matched {
        Ok(true) => {
            tracing::info!(task = %c.task_id, outcome = outcome.as_str(), "pull request closed");
            reply::json(
                StatusCode::OK,
                &json!({ "recorded": outcome.as_str(), "task": c.task_id }),
            )
        }
        Ok(false) => ignored("no finished task pushed this branch"),
        // A shared queue keeps no outcomes: answered (a 5xx would make the forge redeliver).
        Err(e @ crate::store::StoreError::Unsupported { .. }) => ignored(&e.to_string()),
        Err(e) => reply::internal(&e),
    })
}
