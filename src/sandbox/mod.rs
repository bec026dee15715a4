//! The container engine (Docker via bollard) and the hardening every container gets.
//!
//! One connect helper ([`Engine::connect`]) negotiates the API version (the engine here is Docker
//! 20.10, API 1.41). Every container is labelled so a sweep can find what a crashed run left.

mod cleanup;
mod error;
pub mod hardening;
mod run;

use std::time::Duration;

use bollard::Docker;

pub use error::SandboxError;
pub use hardening::{ContainerPlan, MountPlan, SandboxLimits};
pub use run::{Ended, RunOutcome};

/// Label on every container airlock creates.
pub const LABEL_MANAGED: &str = "airlock.managed";
/// Label carrying the task id.
pub const LABEL_TASK: &str = "airlock.task";
/// Label carrying the id of the `airlock run` / daemon session that created the container.
pub const LABEL_SESSION: &str = "airlock.session";
/// Label carrying the role (`agent` or `gate`).
pub const LABEL_ROLE: &str = "airlock.role";
/// Label carrying the path of the task's lock file: the container is live while a process holds
/// that lock, an orphan otherwise (see [`Engine::sweep_orphans`]).
pub const LABEL_LOCK: &str = "airlock.lock";

/// How long a container gets between SIGTERM and SIGKILL when airlock stops it.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// A connection to the engine.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    endpoint: String,
}

impl Engine {
    /// Connect (honouring `DOCKER_HOST`), negotiate the API version and ping.
    pub async fn connect() -> Result<Engine, SandboxError> {
        let endpoint =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let unreachable = |e: bollard::errors::Error| SandboxError::Unreachable {
            endpoint: endpoint.clone(),
            source: e,
        };
        let docker = Docker::connect_with_local_defaults()
            .map_err(unreachable)?
            .with_timeout(Duration::from_secs(120));
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        Ok(Engine { docker, endpoint })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Fail with [`SandboxError::ImageMissing`] unless `image` exists locally. Nothing is pulled.
    pub async fn check_image(&self, image: &str) -> Result<(), SandboxError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(()),
            Err(e) if error::is_not_found(&e) => Err(SandboxError::ImageMissing {
                image: image.into(),
            }),
            Err(e) => Err(SandboxError::Engine {
                op: "inspect image",
                target: image.into(),
                source: e,
            }),
        }
    }

    /// Fail closed unless `runtime` is registered with the engine; never fall back to runc.
    pub async fn check_runtime(&self, runtime: &str) -> Result<(), SandboxError> {
        let info = self.docker.info().await.map_err(|e| SandboxError::Engine {
            op: "info",
            target: self.endpoint.clone(),
            source: e,
        })?;
        let known: Vec<String> = info.runtimes.unwrap_or_default().into_keys().collect();
        if known.iter().any(|k| k == runtime) {
            return Ok(());
        }
        Err(SandboxError::RuntimeMissing {
            runtime: runtime.into(),
            known,
        })
    }
}
