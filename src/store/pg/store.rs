//! [`PgStore`] behind the [`TaskStore`] trait.

use async_trait::async_trait;

use super::PgStore;
use crate::store::backend::{Lease, LeaseTimes, Reaped, Renewed, TaskStore};
use crate::store::retention::Finished;
use crate::store::triggers::{Key, Triggered};
use crate::store::{CancelOutcome, Claimed, End, NewTask, Phase, StoreError, TaskRow};

#[async_trait]
impl TaskStore for PgStore {
    fn leases(&self) -> Option<LeaseTimes> {
        Some(self.times())
    }

    async fn insert(&self, t: NewTask) -> Result<(), StoreError> {
        self.insert_task(t).await
    }

    async fn claim(&self, n: usize, runner: String) -> Result<Vec<Claimed>, StoreError> {
        self.claim_tasks(n, runner).await
    }

    async fn renew(&self, lease: &Lease) -> Result<Renewed, StoreError> {
        self.renew_lease(lease).await
    }

    async fn append_events(&self, lease: &Lease, bodies: Vec<String>) -> Result<(), StoreError> {
        self.append_fenced(lease, bodies).await
    }

    async fn push_started(&self, lease: &Lease) -> Result<(), StoreError> {
        self.record_push(lease).await
    }

    async fn finish(
        &self,
        lease: &Lease,
        end: End,
        artifacts: Option<String>,
    ) -> Result<bool, StoreError> {
        self.finish_fenced(lease, end, artifacts).await
    }

    async fn cancel(&self, id: String, end: End) -> Result<CancelOutcome, StoreError> {
        self.cancel_task(id, end).await
    }

    /// Runners of a shared queue never settle each other's tasks at start: the reaper does,
    /// once a lease has expired.
    async fn recover(&self, _id: String, _requeue: bool, _end: End) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn reap(&self) -> Result<Reaped, StoreError> {
        self.reap_expired().await
    }

    async fn live_leases(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.leases_live().await
    }

    async fn set_summary(&self, id: String, summary: String) -> Result<(), StoreError> {
        self.store_summary(id, summary).await
    }

    async fn get(&self, id: String) -> Result<Option<TaskRow>, StoreError> {
        self.get_task(id).await
    }

    async fn list(&self, phase: Option<Phase>, limit: usize) -> Result<Vec<TaskRow>, StoreError> {
        self.list_tasks(phase, limit).await
    }

    async fn counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.count_tasks().await
    }

    async fn events_after(&self, id: String, after: i64) -> Result<Vec<(i64, String)>, StoreError> {
        self.events_page(id, after).await
    }

    async fn finished(&self) -> Result<Vec<Finished>, StoreError> {
        self.finished_tasks().await
    }

    async fn delete_finished(&self, ids: Vec<String>) -> Result<usize, StoreError> {
        self.delete_tasks(ids).await
    }

    async fn add_session(&self, session: String) -> Result<(), StoreError> {
        self.record_session(session).await
    }

    async fn sessions(&self) -> Result<Vec<String>, StoreError> {
        self.list_sessions().await
    }

    async fn insert_triggered(
        &self,
        task: NewTask,
        key: Key,
        fields: serde_json::Value,
    ) -> Result<Triggered, StoreError> {
        self.insert_triggered_task(task, key, fields).await
    }

    async fn issue_of(&self, task_id: String) -> Result<Option<String>, StoreError> {
        self.delivery_issue(task_id).await
    }

    async fn schedule_state(
        &self,
        schedule: String,
        now_ms: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        self.schedule_since(schedule, now_ms).await
    }
}
