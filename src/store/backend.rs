//! The store as the daemon sees it: one trait, two implementations. [`super::local`] is the
//! embedded SQLite queue of one machine (unchanged behaviour: no leases, every fence holds);
//! [`super::pg`] is a PostgreSQL queue shared by many runners, where every claim takes a lease
//! with a fencing epoch and every later write for the task is conditional on it.

use async_trait::async_trait;

use super::retention::Finished;
use super::triggers::{Key, Triggered};
use super::{CancelOutcome, Claimed, End, NewTask, Phase, StoreError, TaskRow};

/// What a runner holds after a claim: the task at one fencing epoch. Writes carrying an older
/// epoch are refused ([`StoreError::Fenced`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The task's id.
    pub id: String,
    /// The fencing epoch of the claim.
    pub epoch: i64,
}

/// What a successful lease renewal learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Renewed {
    /// A client (on any runner) asked to cancel the task.
    pub cancel_requested: bool,
}

/// What one reaper pass did to tasks whose lease expired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Put back in the queue (their runner is gone; nothing was pushed).
    pub requeued: Vec<String>,
    /// Ended `error` / `runner_lost`: re-queued too often, or their push had started.
    pub lost: Vec<LostTask>,
}

/// A task the reaper ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostTask {
    /// The task's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its level.
    pub level: String,
    /// Whether its push had started (so re-running it could push twice).
    pub push_started: bool,
}

/// Lease settings of a shared store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimes {
    /// How long a lease lives without a heartbeat.
    pub ttl: std::time::Duration,
    /// How often a runner renews its leases.
    pub heartbeat: std::time::Duration,
    /// Re-queues of a task whose runner was lost before it ends `runner_lost`.
    pub requeues: i64,
}

/// The durable queue and task state. Times of record come from the store's own clock.
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// `Some` for a queue shared by several runners (leases, heartbeats, the reaper).
    fn leases(&self) -> Option<LeaseTimes>;
    /// Store a new queued task (and its `queued` event) durably.
    async fn insert(&self, t: NewTask) -> Result<(), StoreError>;
    /// Take up to `n` of the oldest queued tasks for `runner`, FIFO.
    async fn claim(&self, n: usize, runner: String) -> Result<Vec<Claimed>, StoreError>;
    /// Extend the lease; [`StoreError::Fenced`] if it is no longer ours.
    async fn renew(&self, lease: &Lease) -> Result<Renewed, StoreError>;
    /// Append runner events, fenced.
    async fn append_events(&self, lease: &Lease, bodies: Vec<String>) -> Result<(), StoreError>;
    /// Record that the task's push starts, fenced: after this it is never re-queued.
    async fn push_started(&self, lease: &Lease) -> Result<(), StoreError>;
    /// Record the end of a running task, fenced, with the artifact prefix it published.
    /// `Ok(false)`: it was not running (nothing changed).
    async fn finish(
        &self,
        lease: &Lease,
        end: End,
        artifacts: Option<String>,
    ) -> Result<bool, StoreError>;
    /// Cancel a queued task now, or mark a running one (its runner stops it).
    async fn cancel(&self, id: String, end: End) -> Result<CancelOutcome, StoreError>;
    /// Settle a task left `running` by a dead daemon of this store (local store only).
    async fn recover(&self, id: String, requeue: bool, end: End) -> Result<bool, StoreError>;
    /// Re-queue or end tasks whose lease expired (shared store only).
    async fn reap(&self) -> Result<Reaped, StoreError>;
    /// Tasks with a live lease now, as `(id, epoch)` (shared store only).
    async fn live_leases(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Store `summary.json` with the task's row (the finish stores it too).
    async fn set_summary(&self, id: String, summary: String) -> Result<(), StoreError>;
    /// The task `id`, if there is one.
    async fn get(&self, id: String) -> Result<Option<TaskRow>, StoreError>;
    /// Tasks, newest first, optionally in one phase.
    async fn list(&self, phase: Option<Phase>, limit: usize) -> Result<Vec<TaskRow>, StoreError>;
    /// Number of tasks in each phase.
    async fn counts(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Up to one page of a task's events after cursor `after`.
    async fn events_after(&self, id: String, after: i64) -> Result<Vec<(i64, String)>, StoreError>;
    /// Finished tasks, for the retention sweep.
    async fn finished(&self) -> Result<Vec<Finished>, StoreError>;
    /// Delete these finished tasks and their events; returns how many went.
    async fn delete_finished(&self, ids: Vec<String>) -> Result<usize, StoreError>;
    /// Record a runner session (for sweeping its containers once it is gone).
    async fn add_session(&self, session: String) -> Result<(), StoreError>;
    /// Every recorded runner session.
    async fn sessions(&self) -> Result<Vec<String>, StoreError>;
    /// Insert `task` (queued) unless `key` already started one (a webhook delivery seen
    /// before, or whose issue has a queued or running task; a schedule slot that ran), in one
    /// transaction with the record of `key`. Safe when several runners get the same key at
    /// once: exactly one inserts. `fields` go into the task's `triggered` event (no secrets).
    async fn insert_triggered(
        &self,
        task: NewTask,
        key: Key,
        fields: serde_json::Value,
    ) -> Result<Triggered, StoreError>;
    /// The issue key (`<forge>:<repo>#<n>`) of a task a webhook started.
    async fn issue_of(&self, task_id: String) -> Result<Option<String>, StoreError>;
    /// When `schedule` was first seen (recorded as `now_ms` the first time, by whichever
    /// runner saw it first) and its latest slot that started a task.
    async fn schedule_state(
        &self,
        schedule: String,
        now_ms: i64,
    ) -> Result<(i64, Option<i64>), StoreError>;
}
