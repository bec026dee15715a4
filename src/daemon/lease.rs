//! Holding a task's lease while it runs (shared queue only): renew every heartbeat; a renewal
//! refused by the fence, or no successful renewal for `ttl * 3/4` (by this runner's monotonic
//! clock, so a skewed wall clock changes nothing), abandons the task: its containers are
//! stopped and nothing more is written for it. A cancel requested on any runner arrives with
//! the renewal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::shared::Shared;
use crate::store::{Lease, LeaseTimes};

/// How long without a successful renewal before the task is abandoned.
pub fn give_up_after(t: LeaseTimes) -> Duration {
    t.ttl * 3 / 4
}

/// Set once the task is abandoned; read by the worker and the dispatcher.
#[derive(Debug, Clone, Default)]
pub struct Abandoned(Arc<AtomicBool>);

impl Abandoned {
    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Renew until `done`; on loss set `abandoned` and cancel `run` (which stops the containers).
pub async fn hold(
    ctx: Arc<Shared>,
    lease: Lease,
    times: LeaseTimes,
    run: CancellationToken,
    abandoned: Abandoned,
    done: CancellationToken,
) {
    let mut last_ok = Instant::now();
    loop {
        let deadline = last_ok + give_up_after(times);
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep_until(deadline) => return abandon(&ctx, &lease, &run, &abandoned, "no renewal for 3/4 of the lease"),
            _ = tokio::time::sleep(times.heartbeat) => {}
        }
        let asked = Instant::now();
        let renewed = tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep_until(deadline) => return abandon(&ctx, &lease, &run, &abandoned, "no renewal for 3/4 of the lease"),
            r = ctx.db.renew(&lease) => r,
        };
        match renewed {
            Ok(r) => {
                last_ok = asked;
                if r.cancel_requested && !run.is_cancelled() {
                    tracing::info!(task = %lease.id, "cancel requested through the queue");
                    run.cancel();
                }
            }
            Err(e) if e.is_fenced() => {
                // The worker's own fenced finish ends the lease too, so a renewal racing it is
                // refused: give the worker a moment to say it finished before reading the
                // refusal as a takeover (it said so within milliseconds; a real takeover is
                // abandoned at most a second later).
                let grace = times.heartbeat.min(std::time::Duration::from_secs(1));
                tokio::select! {
                    _ = done.cancelled() => return,
                    _ = tokio::time::sleep(grace) => {}
                }
                ctx.metrics.renew_failed();
                return abandon(&ctx, &lease, &run, &abandoned, "the lease was taken over");
            }
            Err(e) => {
                ctx.metrics.renew_failed();
                tracing::warn!(task = %lease.id, epoch = lease.epoch, error = %e, "cannot renew the lease");
            }
        }
    }
}

fn abandon(ctx: &Shared, lease: &Lease, run: &CancellationToken, abandoned: &Abandoned, why: &str) {
    ctx.metrics.abandoned();
    tracing::error!(task = %lease.id, epoch = lease.epoch, why, "lease lost: stopping the task's containers and abandoning it");
    abandoned.set();
    run.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runner_gives_up_at_three_quarters_of_the_lease() {
        let t = LeaseTimes {
            ttl: Duration::from_secs(60),
            heartbeat: Duration::from_secs(15),
            requeues: 2,
        };
        assert_eq!(give_up_after(t), Duration::from_secs(45));
    }
}
