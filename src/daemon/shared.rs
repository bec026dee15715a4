//! What the API, the dispatcher and the workers share.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use secrecy::SecretString;
use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::config::Config;
use super::metrics::Metrics;
use super::notify::Notifier;
use crate::policy::Policies;
use crate::store::{CancelOutcome, Store, StoreError};

/// The store, used from async code: every call runs on the blocking pool (writes fsync).
#[derive(Clone)]
pub struct Db(Arc<Mutex<Store>>);

impl Db {
    pub fn new(store: Store) -> Db {
        Db(Arc::new(Mutex::new(store)))
    }

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

/// A request to the dispatcher.
#[derive(Debug)]
pub enum Command {
    Cancel {
        id: String,
        reply: oneshot::Sender<Result<CancelOutcome, StoreError>>,
    },
}

/// Shared by every part of one daemon run.
pub struct Shared {
    pub config: Config,
    /// The TCP listener's bearer token.
    pub token: Option<SecretString>,
    pub policies: Policies,
    /// This run's id, on every container it creates (`airlock.session`).
    pub session: String,
    pub db: Db,
    pub metrics: Metrics,
    pub notifier: Notifier,
    /// Wakes the dispatcher (something was queued).
    pub wake: Notify,
    /// Bumped whenever events are stored (wakes followers).
    pub events: watch::Sender<u64>,
    /// Submissions are accepted while this is true.
    intake: AtomicBool,
    pub commands: mpsc::Sender<Command>,
}

impl Shared {
    pub fn new(
        config: Config,
        token: Option<SecretString>,
        policies: Policies,
        session: String,
        db: Db,
        commands: mpsc::Sender<Command>,
    ) -> Shared {
        Shared {
            token,
            policies,
            session,
            db,
            metrics: Metrics::default(),
            notifier: Notifier::new(config.notify.clone()),
            wake: Notify::new(),
            events: watch::channel(0).0,
            intake: AtomicBool::new(true),
            commands,
            config,
        }
    }

    pub fn events_stored(&self) {
        self.events.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn intake_open(&self) -> bool {
        self.intake.load(Ordering::SeqCst)
    }

    pub fn close_intake(&self) {
        self.intake.store(false, Ordering::SeqCst);
    }
}
