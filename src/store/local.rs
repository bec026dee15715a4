//! The SQLite [`Store`] behind the [`TaskStore`] trait: one machine, one daemon, no leases.
//! Every call runs on the blocking pool (writes fsync); fences always hold (epoch 0), so the
//! behaviour is exactly the store's.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use super::backend::{Lease, LeaseTimes, Reaped, Renewed, TaskStore};
use super::retention::Finished;
use super::triggers::{Key, Triggered};
use super::{now_ms, CancelOutcome, Claimed, End, NewTask, Phase, Store, StoreError, TaskRow};

/// The embedded store, shared by the daemon's tasks.
#[derive(Clone)]
pub struct LocalStore(Arc<Mutex<Store>>);

impl LocalStore {
    /// Share `store` between the daemon's tasks (calls run on blocking threads).
    pub fn new(store: Store) -> LocalStore {
        LocalStore(Arc::new(Mutex::new(store)))
    }

    /// Run `f` on the blocking pool with the store locked.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Worker {
            id: String::new(),
            message: e.to_string(),
        })?
    }
}

#[async_trait]
impl TaskStore for LocalStore {
    fn leases(&self) -> Option<LeaseTimes> {
        None
    }

    async fn insert(&self, t: NewTask) -> Result<(), StoreError> {
        self.call(move |s| s.insert(&t, now_ms())).await
    }

    async fn claim(&self, n: usize, runner: String) -> Result<Vec<Claimed>, StoreError> {
        self.call(move |s| s.claim(n, &runner, now_ms())).await
    }

    async fn renew(&self, _lease: &Lease) -> Result<Renewed, StoreError> {
        Ok(Renewed::default())
    }

    async fn append_events(&self, lease: &Lease, bodies: Vec<String>) -> Result<(), StoreError> {
        let id = lease.id.clone();
        self.call(move |s| s.append_events(&id, &bodies)).await
    }

    async fn push_started(&self, _lease: &Lease) -> Result<(), StoreError> {
        Ok(())
    }

    async fn finish(
        &self,
        lease: &Lease,
        end: End,
        _artifacts: Option<String>,
    ) -> Result<bool, StoreError> {
        let id = lease.id.clone();
        self.call(move |s| s.finish(&id, &end, now_ms())).await
    }

    async fn cancel(&self, id: String, end: End) -> Result<CancelOutcome, StoreError> {
        self.call(move |s| s.cancel(&id, &end, now_ms())).await
    }

    async fn recover(&self, id: String, requeue: bool, end: End) -> Result<bool, StoreError> {
        self.call(move |s| s.recover(&id, requeue, &end, now_ms()))
            .await
    }

    async fn reap(&self) -> Result<Reaped, StoreError> {
        Ok(Reaped::default())
    }

    async fn live_leases(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(Vec::new())
    }

    async fn set_summary(&self, id: String, summary: String) -> Result<(), StoreError> {
        self.call(move |s| s.set_summary(&id, &summary)).await
    }

    async fn get(&self, id: String) -> Result<Option<TaskRow>, StoreError> {
        self.call(move |s| s.get(&id)).await
    }

    async fn list(&self, phase: Option<Phase>, limit: usize) -> Result<Vec<TaskRow>, StoreError> {
        self.call(move |s| s.list(phase, limit)).await
    }

    async fn counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.call(|s| s.counts()).await
    }

    async fn events_after(&self, id: String, after: i64) -> Result<Vec<(i64, String)>, StoreError> {
        self.call(move |s| s.events_after(&id, after)).await
    }

    async fn finished(&self) -> Result<Vec<Finished>, StoreError> {
        self.call(|s| s.finished()).await
    }

    async fn delete_finished(&self, ids: Vec<String>) -> Result<usize, StoreError> {
        self.call(move |s| s.delete_finished(&ids)).await
    }

    async fn add_session(&self, session: String) -> Result<(), StoreError> {
        self.call(move |s| s.add_session(&session, now_ms())).await
    }

    async fn sessions(&self) -> Result<Vec<String>, StoreError> {
        self.call(|s| s.sessions()).await
    }

    async fn insert_triggered(
        &self,
        task: NewTask,
        key: Key,
        fields: serde_json::Value,
    ) -> Result<Triggered, StoreError> {
        self.call(move |s| s.insert_triggered(&task, &key, fields, now_ms()))
            .await
    }

    async fn issue_of(&self, task_id: String) -> Result<Option<String>, StoreError> {
        self.call(move |s| s.issue_of(&task_id)).await
    }

    async fn schedule_state(
        &self,
        schedule: String,
        now_ms: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        self.call(move |s| s.schedule_state(&schedule, now_ms))
            .await
    }
}
