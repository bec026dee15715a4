//! The seam between the lifecycle and the container engine: everything `runner/` asks of a
//! container engine, as one trait. [`Engine`] (bollard) is the implementation `airlock run` and
//! the daemon use; the unit tests in `runner/lifecycle_tests.rs` drive the whole lifecycle over
//! a recording fake (`runner/fake_engine.rs`), no Docker needed. The real-engine tests in
//! `tests/` stay the proof of isolation, limits and cleanup.

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::sandbox::{ContainerPlan, Engine, EngineInfo, RunOutcome, SandboxError, LABEL_TASK};

/// What the lifecycle needs from a container engine.
#[async_trait]
pub trait Containers: Send + Sync {
    /// Which engine this is (recorded in `summary.json`).
    fn info(&self) -> &EngineInfo;

    /// Run `plan` until it exits, `deadline` passes or `cancel` fires, feeding its output to
    /// `sink`; the container is gone when this returns (see [`Engine::run`]).
    async fn run<'s>(
        &self,
        plan: &ContainerPlan,
        deadline: tokio::time::Instant,
        cancel: &CancellationToken,
        sink: &'s mut (dyn for<'b> FnMut(&'b [u8]) + Send + 's),
    ) -> Result<RunOutcome, SandboxError>;

    /// The engine's id of `image` (a baseline cache key part).
    async fn image_id(&self, image: &str) -> Result<String, String>;

    /// Ids of the containers of task `task_id` that still exist.
    async fn task_containers(&self, task_id: &str) -> Result<Vec<String>, SandboxError>;

    /// Remove every container of task `task_id`; the first error, if any.
    async fn sweep_task(&self, task_id: &str) -> Option<SandboxError>;
}

#[async_trait]
impl Containers for Engine {
    fn info(&self) -> &EngineInfo {
        Engine::info(self)
    }

    async fn run<'s>(
        &self,
        plan: &ContainerPlan,
        deadline: tokio::time::Instant,
        cancel: &CancellationToken,
        sink: &'s mut (dyn for<'b> FnMut(&'b [u8]) + Send + 's),
    ) -> Result<RunOutcome, SandboxError> {
        Engine::run(self, plan, deadline, cancel, sink).await
    }

    async fn image_id(&self, image: &str) -> Result<String, String> {
        let img = self
            .docker()
            .inspect_image(image)
            .await
            .map_err(|e| format!("inspect image {image}: {e}"))?;
        img.id.ok_or_else(|| format!("image {image} has no id"))
    }

    async fn task_containers(&self, task_id: &str) -> Result<Vec<String>, SandboxError> {
        self.list_managed(Some((LABEL_TASK, task_id))).await
    }

    async fn sweep_task(&self, task_id: &str) -> Option<SandboxError> {
        self.sweep(Some((LABEL_TASK, task_id))).await.1
    }
}
