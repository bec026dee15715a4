//! Errors of engine operations, each naming the operation and what it acted on.

/// An engine operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot reach the Docker engine at {endpoint}: {source}; start it with `make engine` (Debian, as root) or `sudo systemctl start docker`, then check `docker info`")]
    Unreachable {
        endpoint: String,
        source: bollard::errors::Error,
    },
    #[error("image `{image}` is not present on this engine (airlock never pulls); build it with `make images` or `docker build`/`docker import`")]
    ImageMissing { image: String },
    #[error("runtime `{runtime}` is not registered with the engine (registered: {known:?}); register it in /etc/docker/daemon.json (`make engine` does) — airlock never falls back to another runtime")]
    RuntimeMissing { runtime: String, known: Vec<String> },
    #[error("the {engine} engine cannot apply `{setting}`: {detail}; {fix} (airlock never runs a weaker sandbox instead)")]
    Unsupported {
        engine: &'static str,
        setting: String,
        detail: String,
        fix: String,
    },
    #[error("engine failed to {op} {target}: {source}")]
    Engine {
        op: &'static str,
        target: String,
        source: bollard::errors::Error,
    },
    #[error("runner fault: {message}")]
    Runner { message: String },
    #[error("cleanup failed for {target}: {source}")]
    Cleanup {
        target: String,
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
