//! The dispatcher: a thin async loop around [`Queue::handle`]. It waits for a wake-up, a
//! cancel request, a worker ending, a signal or a timer, turns it into an [`Event`], and
//! carries out the [`Action`] the queue decides on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{self, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::ShutdownMode;
use super::queue::{Action, Event, Mode, Queue};
use super::shared::{Command, Shared};
use super::synth::{self, Subject};
use super::worker::{self, Outcome};
use crate::artifacts::State;
use crate::sandbox::STOP_GRACE;
use crate::store::{CancelOutcome, End, Lease, StoreError};
use crate::vocab::Reason;

/// A safety net: the queue is re-read this often even without a wake-up.
const POLL: Duration = Duration::from_secs(5);
/// After cancelling at shutdown, how long to wait for workers beyond the containers' grace.
const CANCEL_SLACK: Duration = Duration::from_secs(20);

/// The loop's state around the pure queue.
struct Dispatcher {
    ctx: Arc<Shared>,
    queue: Queue,
    tokens: HashMap<String, CancellationToken>,
    /// The fencing epoch each running task was claimed at.
    epochs: HashMap<String, i64>,
    workers: JoinSet<Outcome>,
    worker_ids: HashMap<task::Id, String>,
    timer: Option<(Instant, Event)>,
}

/// Run until shutdown (SIGTERM/SIGINT) has drained or cancelled every running task, or the
/// bound has passed. Returns the ids still running when it gave up.
pub async fn run(ctx: Arc<Shared>, mut commands: mpsc::Receiver<Command>) -> Vec<String> {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return Vec::new();
    };
    let mut d = Dispatcher {
        queue: Queue::new(ctx.config.concurrency),
        ctx,
        tokens: HashMap::new(),
        epochs: HashMap::new(),
        workers: JoinSet::new(),
        worker_ids: HashMap::new(),
        timer: None,
    };
    let mut exit = d.step(Event::Wake).await;
    while !exit {
        exit = match d.next_input(&mut commands, &mut term, &mut int).await {
            Input::Event(ev) => d.step(ev).await,
            Input::Cancel(id, reply) => d.cancel(id, reply).await,
            Input::Done(outcome) => d.finished(outcome).await,
        };
    }
    d.tokens.into_keys().collect()
}

enum Input {
    Event(Event),
    Cancel(String, oneshot::Sender<Result<CancelOutcome, StoreError>>),
    Done(Outcome),
}

impl Dispatcher {
    async fn next_input(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
        term: &mut Signal,
        int: &mut Signal,
    ) -> Input {
        let timer_at = self.timer.as_ref().map(|t| t.0);
        tokio::select! {
            _ = self.ctx.wake.notified() => Input::Event(Event::Wake),
            Some(Command::Cancel { id, reply }) = commands.recv() => Input::Cancel(id, reply),
            Some(done) = self.workers.join_next_with_id(), if !self.workers.is_empty() => {
                Input::Done(self.joined(done))
            }
            _ = term.recv() => self.signalled("SIGTERM"),
            _ = int.recv() => self.signalled("SIGINT"),
            _ = sleep_until(timer_at) => Input::Event(self.timer.take().map(|t| t.1).unwrap_or(Event::Wake)),
            _ = tokio::time::sleep(POLL) => Input::Event(Event::Wake),
        }
    }

    /// A worker's outcome; one that was lost (aborted or panicked past its guard) still ends its
    /// task, as `error` / `runner_fault`.
    fn joined(&mut self, done: Result<(task::Id, Outcome), task::JoinError>) -> Outcome {
        let (tid, outcome) = match done {
            Ok((tid, o)) => (tid, Some(o)),
            Err(e) => (e.id(), None),
        };
        let id = self.worker_ids.remove(&tid).unwrap_or_default();
        outcome.unwrap_or_else(|| {
            tracing::error!(task = %id, "a worker was lost");
            let end = End {
                state: State::Error,
                reason: Reason::RunnerFault,
                message: Some("the worker was lost".into()),
                summary: None,
            };
            Outcome {
                id,
                end,
                run_seconds: 0.0,
                artifacts: None,
                recorded: None,
            }
        })
    }

    fn signalled(&self, name: &str) -> Input {
        tracing::info!(
            signal = name,
            running = self.queue.running(),
            "shutting down: intake closed"
        );
        self.ctx.close_intake();
        let drain = self.ctx.config.shutdown.mode == ShutdownMode::Drain;
        Input::Event(Event::Shutdown { drain })
    }

    /// Feed one event to the queue and carry out its action. `true`: exit.
    async fn step(&mut self, ev: Event) -> bool {
        let action = self.queue.handle(ev);
        self.apply(action).await
    }

    async fn apply(&mut self, action: Action) -> bool {
        match action {
            Action::None => false,
            Action::Claim(n) => {
                self.claim(n).await;
                false
            }
            Action::Cancel(ids) => {
                self.cancel_running(&ids).await;
                false
            }
            Action::CancelQueued(id) => {
                let _ = self.cancel_queued(&id).await;
                false
            }
            Action::Drain => {
                self.timer = Some((
                    Instant::now() + self.ctx.config.shutdown.timeout,
                    Event::DrainTimeout,
                ));
                false
            }
            Action::Exit => true,
        }
    }

    async fn claim(&mut self, n: usize) {
        let asked = std::time::Instant::now();
        let claimed = match self.ctx.db.claim(n, self.ctx.session.clone()).await {
            Ok(c) => c,
            Err(e) => return tracing::error!(error = %e, "cannot claim queued tasks"),
        };
        self.ctx
            .metrics
            .claimed(asked.elapsed().as_secs_f64(), claimed.len());
        if claimed.is_empty() {
            return;
        }
        self.ctx.events_stored();
        let ids: Vec<String> = claimed.iter().map(|c| c.id.clone()).collect();
        for task in claimed {
            tracing::info!(task = %task.id, title = %task.title, "task started");
            let token = CancellationToken::new();
            self.tokens.insert(task.id.clone(), token.clone());
            self.epochs.insert(task.id.clone(), task.epoch);
            self.workers
                .spawn(worker::run(self.ctx.clone(), task, token));
        }
        let started = self.queue.handle(Event::Started(ids));
        debug_assert_eq!(started, Action::None);
    }

    async fn cancel_running(&mut self, ids: &[String]) {
        for id in ids {
            if let Some(t) = self.tokens.get(id) {
                t.cancel();
            }
            let _ = self.store_cancel(id).await;
        }
        if self.queue.mode() == Mode::Cancelling && !ids.is_empty() {
            self.timer = Some((Instant::now() + STOP_GRACE + CANCEL_SLACK, Event::GiveUp));
        }
    }

    /// A client's cancel: decided by the queue, answered with what the store found.
    async fn cancel(
        &mut self,
        id: String,
        reply: oneshot::Sender<Result<CancelOutcome, StoreError>>,
    ) -> bool {
        let outcome = match self.queue.handle(Event::Cancel(id.clone())) {
            Action::Cancel(ids) => {
                self.cancel_running(&ids).await;
                Ok(CancelOutcome::Running)
            }
            Action::CancelQueued(id) => self.cancel_queued(&id).await,
            other => return self.apply(other).await,
        };
        let _ = reply.send(outcome);
        false
    }

    async fn store_cancel(&self, id: &str) -> Result<CancelOutcome, StoreError> {
        let task = id.to_string();
        let end = End {
            state: State::Cancelled,
            reason: Reason::Cancelled,
            message: Some("cancelled before it started".into()),
            summary: None,
        };
        let r = self.ctx.db.cancel(task, end).await;
        self.ctx.events_stored();
        r
    }

    async fn cancel_queued(&self, id: &str) -> Result<CancelOutcome, StoreError> {
        let outcome = self.store_cancel(id).await?;
        if outcome == CancelOutcome::Cancelled {
            self.record_queued_cancel(id).await;
        }
        Ok(outcome)
    }

    /// A task cancelled before it ran gets a summary like any other.
    async fn record_queued_cancel(&self, id: &str) {
        let task = id.to_string();
        let Ok(Some(row)) = self.ctx.db.get(task).await else {
            return;
        };
        let who = Subject {
            id: &row.id,
            title: &row.title,
            level: &row.level,
        };
        let msg = Some("cancelled before it started".to_string());
        let summary = synth::write(
            &self.ctx.config.artifacts_dir,
            &who,
            State::Cancelled,
            Reason::Cancelled,
            msg,
        );
        let json = crate::untrusted::to_json(&summary, false).unwrap_or_default();
        let (task, stored) = (id.to_string(), json.clone());
        if let Err(e) = self.ctx.db.set_summary(task, stored).await {
            tracing::warn!(task = id, error = %e, "cannot store the summary");
        }
        self.ctx.metrics.finished(State::Cancelled, None);
        self.ctx.notifier.send(id, json);
        tracing::info!(task = id, "queued task cancelled");
    }

    async fn finished(&mut self, o: Outcome) -> bool {
        self.tokens.remove(&o.id);
        let epoch = self.epochs.remove(&o.id).unwrap_or(0);
        let lease = Lease {
            id: o.id.clone(),
            epoch,
        };
        let recorded = match o.recorded {
            Some(r) => r,
            None => self.record_end(&lease, &o).await,
        };
        if o.recorded == Some(false) {
            tracing::warn!(task = %o.id, "task abandoned after its lease was lost; nothing recorded for this run");
        }
        self.ctx.events_stored();
        if !recorded {
            return self.step(Event::Finished(o.id)).await;
        }
        self.ctx.metrics.finished(o.end.state, Some(o.run_seconds));
        if let Some(summary) = &o.end.summary {
            self.ctx.metrics.model_traffic_of(summary);
        }
        tracing::info!(task = %o.id, state = o.end.state.as_str(), reason = %o.end.reason, seconds = o.run_seconds, "task finished");
        if let Some(summary) = o.end.summary {
            self.ctx.notifier.send(&o.id, summary);
        }
        self.step(Event::Finished(o.id)).await
    }
}

impl Dispatcher {
    /// The fenced finish. `false`: the store refused it (the lease was lost: another runner
    /// owns the task now) or could not be reached; nothing is announced for it.
    async fn record_end(&self, lease: &Lease, o: &Outcome) -> bool {
        let (end, prefix) = (o.end.clone(), o.artifacts.clone());
        match self.ctx.db.finish(lease, end, prefix).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(task = %o.id, "finished task was not running in the store");
                true
            }
            Err(e) if e.is_fenced() => {
                self.ctx.metrics.fenced_write();
                tracing::warn!(task = %o.id, epoch = lease.epoch, "lease lost: the finish was refused; another runner owns the task");
                false
            }
            Err(e) => {
                tracing::error!(task = %o.id, error = %e, "cannot record the end of a task");
                self.ctx.db.leases().is_none()
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
