//! The container engine (Docker via bollard) and the hardening every container gets.
//!
//! One connect helper ([`Engine::connect`]) negotiates the API version (the engine here is Docker
//! 20.10, API 1.41, or Podman 4.3's compatible service) and detects which engine answers, once
//! per process. Every container is labelled so a sweep can find what a crashed run left.

mod cleanup;
mod detect;
mod error;
pub mod hardening;
mod hostfs;
mod libpod;
mod oom;
mod run;

use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use tokio::sync::OnceCell;

pub use detect::{EngineInfo, EngineKind};
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
    info: EngineInfo,
    /// Registered runtimes and the default one, from `/info` (asked once: Podman takes ~0.3 s
    /// to answer).
    runtimes: Arc<OnceCell<(Vec<String>, String)>>,
}

impl Engine {
    /// Connect (honouring `DOCKER_HOST`), negotiate the API version and ask which engine this is
    /// (`/version`, which also proves it answers).
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
        let info = detect::classify(&docker.version().await.map_err(unreachable)?);
        tracing::debug!(engine = %info, endpoint = %endpoint, "connected");
        Ok(Engine {
            docker,
            endpoint,
            info,
            runtimes: Arc::new(OnceCell::new()),
        })
    }

    /// The bollard client, for calls the sandbox does not wrap.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Which engine answers, and its versions.
    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// The engine's address (`unix:///var/run/docker.sock`, or `DOCKER_HOST`).
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

    /// Fail closed unless `runtime` is registered with the engine and the engine will use it;
    /// never fall back to runc. Podman 4.3 ignores the requested runtime in both its APIs and
    /// runs its default one, so there only the default is accepted.
    pub async fn check_runtime(&self, runtime: &str) -> Result<(), SandboxError> {
        let (known, default) = self
            .runtimes
            .get_or_try_init(|| async {
                let info = self.docker.info().await.map_err(|e| SandboxError::Engine {
                    op: "info",
                    target: self.endpoint.clone(),
                    source: e,
                })?;
                let mut known: Vec<String> =
                    info.runtimes.unwrap_or_default().into_keys().collect();
                known.sort();
                Ok::<_, SandboxError>((known, info.default_runtime.unwrap_or_default()))
            })
            .await?;
        if self.info.kind == EngineKind::Podman && runtime != default {
            return Err(SandboxError::Unsupported {
                engine: "podman",
                setting: format!("runtime = {runtime}"),
                detail: format!(
                    "podman {} ignores the runtime an API client asks for and would run its default, `{default}`",
                    self.info.version
                ),
                fix: format!("make `{runtime}` podman's default (`runtime = \"{runtime}\"` under [engine] in /etc/containers/containers.conf, then restart `podman system service`), or run this task on dockerd"),
            });
        }
        if known.iter().any(|k| k == runtime) {
            return Ok(());
        }
        Err(SandboxError::RuntimeMissing {
            runtime: runtime.into(),
            known: known.clone(),
        })
    }
}
