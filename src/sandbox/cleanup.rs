//! Sweeps: remove every container carrying a given airlock label, whatever state it is in.

use std::collections::HashMap;

use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptions;

use super::{Engine, SandboxError, LABEL_LOCK, LABEL_MANAGED};

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

    /// Ids of all managed containers and, if given, labelled `key=value`.
    pub async fn list_managed(
        &self,
        label: Option<(&str, &str)>,
    ) -> Result<Vec<String>, SandboxError> {
        let labels: Vec<String> = label.map(|(k, v)| format!("{k}={v}")).into_iter().collect();
        let list = self.list_labelled(&labels).await?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    /// Remove every managed container matching `label`. Tries all of them; returns how many
    /// were removed and the first error, if any (the others are logged).
    pub async fn sweep(&self, label: Option<(&str, &str)>) -> (usize, Option<SandboxError>) {
        let ids = match self.list_managed(label).await {
            Ok(ids) => ids,
            Err(e) => return (0, Some(e)),
        };
        let mut first = None;
        let mut removed = 0;
        for id in ids {
            match self.remove(&id).await {
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
