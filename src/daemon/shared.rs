//! What the API, the dispatcher and the workers share.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use secrecy::SecretString;
use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::config::Config;
use super::metrics::Metrics;
use super::notify::Notifier;
use crate::policy::Policies;
use crate::store::{CancelOutcome, LocalStore, Store, StoreError, TaskStore};

/// The queue: the embedded SQLite store, or the PostgreSQL one shared with other runners,
/// behind [`TaskStore`]. Pull-request outcomes (the statistics) are kept by the SQLite store
/// only ([`Db::call`]).
#[derive(Clone)]
pub struct Db {
    store: Arc<dyn TaskStore>,
    local: Option<LocalStore>,
}

impl Db {
    pub fn local(store: LocalStore) -> Db {
        Db {
            store: Arc::new(store.clone()),
            local: Some(store),
        }
    }

    pub fn shared(store: Arc<dyn TaskStore>) -> Db {
        Db { store, local: None }
    }

    /// Run `f` on the SQLite store (its own feature: pull-request outcomes for the statistics).
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.local {
            Some(l) => l.call(f).await,
            None => Err(StoreError::Unsupported {
                what: "pull-request outcomes (the statistics)",
            }),
        }
    }
}

impl std::ops::Deref for Db {
    type Target = dyn TaskStore;

    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
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
    /// `[artifacts]`: the store shared with other runners.
    pub artifacts: Option<super::publish::Artifacts>,
    pub metrics: Metrics,
    pub notifier: Notifier,
    /// Wakes the dispatcher (something was queued).
    pub wake: Notify,
    /// Bumped whenever events are stored (wakes followers).
    pub events: watch::Sender<u64>,
    /// Submissions are accepted while this is true.
    intake: AtomicBool,
    pub commands: mpsc::Sender<Command>,
    /// The phase of each task running on this daemon (`waiting_ci`, ...), for its status.
    pub phases: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Open event follow streams (`[api] max_followers`).
    pub followers: super::api::followers::Followers,
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
            artifacts: None,
            metrics: Metrics::default(),
            notifier: Notifier::new(config.notify.clone()),
            wake: Notify::new(),
            events: watch::channel(0).0,
            intake: AtomicBool::new(true),
            commands,
            phases: Default::default(),
            followers: super::api::followers::Followers::new(
                config.api.max_followers,
                config.api.max_followers_per_task,
            ),
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
