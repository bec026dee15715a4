//! Writes a worker makes for its task, through the fence: copied events (kept and retried while
//! the queue is unreachable, never lost to a short outage), the finish (retried while the lease
//! is still held), and after an abandon a late flush whose refusal is logged: once another
//! runner owns the task, nothing this runner says about it is accepted.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::lease::Abandoned;
use super::shared::Shared;
use crate::store::{End, Lease, LeaseTimes};

/// Most event lines kept while the queue is unreachable; older ones are dropped beyond it.
const MAX_PENDING: usize = 10_000;
/// How long after an abandon the late flush keeps trying (in leases).
const LATE_LEASES: u32 = 6;

/// A task's event lines on their way into the store.
pub struct Copier {
    lease: Lease,
    pending: Vec<String>,
}

impl Copier {
    pub fn new(lease: Lease) -> Copier {
        Copier {
            lease,
            pending: Vec::new(),
        }
    }

    /// Queue `lines` and try to store everything pending. A refusal abandons the task.
    pub async fn copy(
        &mut self,
        ctx: &Shared,
        lines: Vec<String>,
        cancel: &CancellationToken,
        abandoned: &Abandoned,
    ) {
        self.keep(lines);
        if self.pending.is_empty() || abandoned.is_set() {
            return;
        }
        match self.flush(ctx).await {
            Ok(()) => {}
            Err(true) => {
                tracing::error!(task = %self.lease.id, epoch = self.lease.epoch, "lease lost: the write was refused; stopping the task's containers and abandoning it");
                abandoned.set();
                cancel.cancel();
            }
            Err(false) => {}
        }
    }

    fn keep(&mut self, lines: Vec<String>) {
        self.pending.extend(lines);
        if self.pending.len() > MAX_PENDING {
            let drop = self.pending.len() - MAX_PENDING;
            tracing::warn!(task = %self.lease.id, dropped = drop, "the queue is unreachable: oldest unstored events dropped");
            self.pending.drain(..drop);
        }
    }

    /// `Err(true)`: refused by the fence; `Err(false)`: not reachable (kept for later).
    async fn flush(&mut self, ctx: &Shared) -> Result<(), bool> {
        let lines = self.pending.clone();
        match ctx.db.append_events(&self.lease, lines).await {
            Ok(()) => {
                self.pending.clear();
                ctx.events_stored();
                Ok(())
            }
            Err(e) if e.is_fenced() => {
                ctx.metrics.fenced_write();
                Err(true)
            }
            Err(e) => {
                tracing::warn!(task = %self.lease.id, error = %e, "cannot store the task's events yet");
                Err(false)
            }
        }
    }

    /// The end of a run on a shared queue: store the remaining events, then the finish, each
    /// retried every heartbeat while the lease is still held. `true`: recorded.
    pub async fn finish(
        &mut self,
        ctx: &Shared,
        times: LeaseTimes,
        end: End,
        artifacts: Option<String>,
        abandoned: &Abandoned,
    ) -> bool {
        while !self.pending.is_empty() && !abandoned.is_set() {
            match self.flush(ctx).await {
                Ok(()) => break,
                Err(true) => abandoned.set(),
                Err(false) => tokio::time::sleep(times.heartbeat).await,
            }
        }
        while !abandoned.is_set() {
            match ctx
                .db
                .finish(&self.lease, end.clone(), artifacts.clone())
                .await
            {
                Ok(_) => return true,
                Err(e) if e.is_fenced() => {
                    ctx.metrics.fenced_write();
                    tracing::warn!(task = %self.lease.id, epoch = self.lease.epoch, "lease lost: the finish was refused; another runner owns the task");
                    abandoned.set();
                }
                Err(e) => {
                    tracing::warn!(task = %self.lease.id, error = %e, "cannot record the end yet; retrying while the lease holds");
                    tokio::time::sleep(times.heartbeat).await;
                }
            }
        }
        false
    }

    /// After an abandon: try to store what is left (the run's last events) until the queue
    /// answers. It should refuse: the lease is gone.
    pub fn late_flush(mut self, ctx: Arc<Shared>, times: LeaseTimes) {
        if self.pending.is_empty() {
            return;
        }
        tokio::spawn(async move {
            let until = tokio::time::Instant::now() + times.ttl * LATE_LEASES;
            while tokio::time::Instant::now() < until {
                match self.flush(&ctx).await {
                    Ok(()) => {
                        return tracing::warn!(task = %self.lease.id, "late events stored: the lease had not expired yet")
                    }
                    Err(true) => {
                        return tracing::warn!(task = %self.lease.id, epoch = self.lease.epoch, "late write refused by the fence: another runner owns the task")
                    }
                    Err(false) => {
                        tokio::time::sleep(times.heartbeat.max(Duration::from_millis(500))).await
                    }
                }
            }
        });
    }
}
