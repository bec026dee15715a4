//! Errors of engine operations, each naming the operation and what it acted on.

/// An engine operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The engine's socket did not answer.
    #[error("cannot reach the Docker engine at {endpoint}: {source}; start it with `make engine` (Debian, as root) or `sudo systemctl start docker`, then check `docker info`")]
    Unreachable {
        /// Where it was looked for (`DOCKER_HOST` or the default socket).
        endpoint: String,
        /// The client's error.
        source: bollard::errors::Error,
    },
    /// The image is not on the engine (airlock never pulls).
    #[error("image `{image}` is not present on this engine (airlock never pulls); build it with `make images` or `docker build`/`docker import`")]
    ImageMissing {
        /// The image reference.
        image: String,
    },
    /// The requested OCI runtime is not registered with the engine.
    #[error("runtime `{runtime}` is not registered with the engine (registered: {known:?}); register it in /etc/docker/daemon.json (`make engine` does) — airlock never falls back to another runtime")]
    RuntimeMissing {
        /// The runtime asked for.
        runtime: String,
        /// The runtimes the engine has.
        known: Vec<String>,
    },
    /// The engine cannot apply a hardening setting; nothing weaker is run instead.
    #[error("the {engine} engine cannot apply `{setting}`: {detail}; {fix} (airlock never runs a weaker sandbox instead)")]
    Unsupported {
        /// `docker` or `podman`.
        engine: &'static str,
        /// The setting it cannot apply.
        setting: String,
        /// What the engine said or does.
        detail: String,
        /// How the operator can make it work.
        fix: String,
    },
    /// An engine call failed.
    #[error("engine failed to {op} {target}: {source}")]
    Engine {
        /// What was being done (`create`, `start`, `inspect`, ...).
        op: &'static str,
        /// The container or image it was done to.
        target: String,
        /// The client's error.
        source: bollard::errors::Error,
    },
    /// airlock's own fault while running a container (a bad plan, a stream that broke).
    #[error("runner fault: {message}")]
    Runner {
        /// What went wrong.
        message: String,
    },
    /// Removing a container or its scratch dirs failed.
    #[error("cleanup failed for {target}: {source}")]
    Cleanup {
        /// The container or path.
        target: String,
        /// The client's error.
        source: bollard::errors::Error,
    },
}

/// Whether the engine answered 404 (no such container / image).
pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
