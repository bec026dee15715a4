//! Removal and sweeps: remove one container, or every container carrying a given airlock
//! label, whatever state it is in. An engine that is restarting (its socket gone, or answering
//! 5xx while it restores) is waited for, with backoff, up to [`CLEANUP_PATIENCE`]: a container
//! is never left behind because the engine blinked while its task ended (#10 item 8).

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::ContainerSummary;
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use tokio::time::Instant;

use super::error::is_not_found;
use super::{Engine, SandboxError, LABEL_LOCK, LABEL_MANAGED};

/// Longest one removal or one sweep keeps retrying while the engine does not answer.
pub const CLEANUP_PATIENCE: Duration = Duration::from_secs(60);
/// First wait between tries; doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// Whether a failed engine call may succeed if tried again: the engine was unreachable or
/// failed on its side (5xx), or the container is busy (409, e.g. a removal already under way).
/// Other 4xx answers are final.
pub fn is_transient(e: &bollard::errors::Error) -> bool {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => {
            *status_code >= 500 || *status_code == 409
        }
        _ => true,
    }
}

/// Waits between the tries of one cleanup, until a deadline.
struct Backoff {
    next: Duration,
    until: Instant,
}

impl Backoff {
    fn until(until: Instant) -> Backoff {
        Backoff {
            next: FIRST_BACKOFF,
            until,
        }
    }

    /// Sleep before the next try; `false` (at once) when it would pass the deadline.
    async fn wait(&mut self) -> bool {
        if Instant::now() + self.next > self.until {
            return false;
        }
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        true
    }
}

impl Engine {
    /// All containers (running or not) labelled `airlock.managed=true` and matching every
    /// filter in `labels` (`key=value`, or `key` for "has the label").
    pub async fn list_labelled(
        &self,
        labels: &[String],
    ) -> Result<Vec<ContainerSummary>, SandboxError> {
        let mut filters = vec![format!("{LABEL_MANAGED}=true")];
        filters.extend(labels.iter().cloned());
        let opts = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_string(), filters)])),
            ..Default::default()
        };
        self.docker()
            .list_containers(Some(opts))
            .await
            .map_err(|e| SandboxError::Engine {
                op: "list containers",
                target: self.endpoint().into(),
                source: e,
            })
    }

    /// As [`Engine::list_labelled`], retried while the engine is away, until `until`.
    pub async fn list_labelled_by(
        &self,
        labels: &[String],
        until: Instant,
    ) -> Result<Vec<ContainerSummary>, SandboxError> {
        let mut backoff = Backoff::until(until);
        loop {
            match self.list_labelled(labels).await {
                Err(SandboxError::Engine { source, .. })
                    if is_transient(&source) && backoff.wait().await =>
                {
                    tracing::warn!(error = %source, "cannot list containers; the engine may be restarting; retrying");
                }
                r => return r,
            }
        }
    }

    /// Force-remove a container and its anonymous volumes; a 404 means it is already gone.
    /// Retried while the engine is away, for up to [`CLEANUP_PATIENCE`].
    pub async fn remove(&self, id: &str) -> Result<(), SandboxError> {
        self.remove_by(id, Instant::now() + CLEANUP_PATIENCE).await
    }

    /// As [`Engine::remove`], retrying until `until`.
    pub async fn remove_by(&self, id: &str, until: Instant) -> Result<(), SandboxError> {
        let mut backoff = Backoff::until(until);
        loop {
            let e = match self.remove_once(id).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if !is_transient(&e) || !backoff.wait().await {
                return Err(SandboxError::Cleanup {
                    target: id.into(),
                    source: e,
                });
            }
            tracing::warn!(container = %id, error = %e, "cannot remove a container; the engine may be restarting; retrying");
        }
    }

    async fn remove_once(&self, id: &str) -> Result<(), bollard::errors::Error> {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        match self.docker().remove_container(id, Some(opts)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            r => r,
        }
    }

    /// Ids of all managed containers and, if given, labelled `key=value`.
    pub async fn list_managed(
        &self,
        label: Option<(&str, &str)>,
    ) -> Result<Vec<String>, SandboxError> {
        let labels: Vec<String> = label.map(|(k, v)| format!("{k}={v}")).into_iter().collect();
        let list = self.list_labelled(&labels).await?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    /// Remove every managed container matching `label`. Tries all of them, waiting for an
    /// engine that is away for up to [`CLEANUP_PATIENCE`] in all; returns how many were removed
    /// and the first error, if any (the others are logged).
    pub async fn sweep(&self, label: Option<(&str, &str)>) -> (usize, Option<SandboxError>) {
        let until = Instant::now() + CLEANUP_PATIENCE;
        let labels: Vec<String> = label.map(|(k, v)| format!("{k}={v}")).into_iter().collect();
        let ids = match self.list_labelled_by(&labels, until).await {
            Ok(list) => list.into_iter().filter_map(|c| c.id),
            Err(e) => return (0, Some(e)),
        };
        let mut first = None;
        let mut removed = 0;
        for id in ids {
            match self.remove_by(&id, until).await {
                Ok(()) => removed += 1,
                Err(e) if first.is_none() => first = Some(e),
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "sweep could not remove a container")
                }
            }
        }
        (removed, first)
    }

    /// Remove every managed container whose task lock (label `airlock.lock`) `is_live` says no
    /// process holds: what crashed runners left, on this host, whatever their state dir.
    /// Containers without the label are left alone (their owner cannot be told). Returns how
    /// many were removed.
    pub async fn sweep_orphans(
        &self,
        is_live: impl Fn(&str) -> bool,
    ) -> Result<usize, SandboxError> {
        let list = self.list_labelled(&[LABEL_LOCK.to_string()]).await?;
        let mut removed = 0;
        for c in list {
            let lock = c
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_LOCK))
                .cloned()
                .unwrap_or_default();
            let Some(id) = c.id else { continue };
            if lock.is_empty() || is_live(&lock) {
                continue;
            }
            match self.remove(&id).await {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "orphan sweep could not remove a container")
                }
            }
        }
        Ok(removed)
    }
}
