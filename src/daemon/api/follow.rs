//! `GET /v1/tasks/{id}/events[?follow=1]`: the task's events as NDJSON (chunked). With
//! `follow`, the stream stays open and ends after the task's final event.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use tokio::sync::watch;

use super::reply::{self, Body};
use super::tasks::row;
use crate::daemon::shared::Shared;
use crate::store::StoreError;

/// Most bytes of events handed on in one chunk (a page is also at most `EVENTS_PAGE` rows);
/// the rest of the page is read again for the next chunk. With the stream's channel of four
/// chunks, this bounds what one follower holds however slowly it reads.
const CHUNK_BYTES: usize = 256 << 10;

/// Longest a follower sleeps without a wake-up before looking again.
const RECHECK: Duration = Duration::from_secs(1);

struct Cursor {
    /// Holds a follower slot while following (given back when the stream is dropped).
    _slot: Option<Slot>,
    ctx: Arc<Shared>,
    id: String,
    after: i64,
    follow: bool,
    final_seen: bool,
    changed: watch::Receiver<u64>,
}

pub async fn events(ctx: Arc<Shared>, id: &str, follow: bool) -> Response<Body> {
    if let Err(resp) = row(&ctx, id).await {
        return resp;
    }
    let slot = match follow.then(|| Slot::take(&ctx, id)).transpose() {
        Ok(s) => s,
        Err(full) => {
            ctx.metrics.follower_refused();
            return reply::unavailable(&full.to_string());
        }
    };
    let cursor = Cursor {
        _slot: slot,
        changed: ctx.events.subscribe(),
        ctx,
        id: id.into(),
        after: 0,
        follow,
        final_seen: false,
    };
    let lines = stream::unfold(Some(cursor), |c| async move {
        let mut c = c?;
        match c.next_batch().await {
            Ok(Some(bytes)) => Some((Ok(bytes), Some(c))),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
        }
    });
    reply::with_type(
        StatusCode::OK,
        "application/x-ndjson",
        reply::spawned(lines),
    )
}

/// One counted follower of a task.
struct Slot {
    ctx: Arc<Shared>,
    id: String,
}

impl Slot {
    fn take(ctx: &Arc<Shared>, id: &str) -> Result<Slot, crate::daemon::api::followers::Full> {
        ctx.followers.take(id)?;
        Ok(Slot {
            ctx: ctx.clone(),
            id: id.into(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.ctx.followers.give_back(&self.id);
    }
}

impl Cursor {
    /// The next events as NDJSON, waiting for them when following; `None` at the end.
    async fn next_batch(&mut self) -> Result<Option<Bytes>, StoreError> {
        loop {
            self.changed.borrow_and_update();
            let (id, after) = (self.id.clone(), self.after);
            let batch = self.ctx.db.events_after(id, after).await?;
            if !batch.is_empty() {
                let mut out = String::new();
                for (seq, body) in &batch {
                    if !out.is_empty() && out.len() + body.len() >= CHUNK_BYTES {
                        break;
                    }
                    out.push_str(body);
                    out.push('\n');
                    self.after = *seq;
                }
                return Ok(Some(Bytes::from(out)));
            }
            if !self.follow || self.final_seen {
                return Ok(None);
            }
            // Final state and its last event are committed together: one more read after
            // seeing it final catches everything.
            self.final_seen = self.is_final().await?;
            if !self.final_seen {
                let _ = tokio::time::timeout(RECHECK, self.changed.changed()).await;
            }
        }
    }

    async fn is_final(&self) -> Result<bool, StoreError> {
        let id = self.id.clone();
        let row = self.ctx.db.get(id).await?;
        Ok(row.map_or(true, |r| r.phase.is_final()))
    }
}
