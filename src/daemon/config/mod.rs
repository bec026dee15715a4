//! The daemon's configuration (`airlock.toml`). Fails closed like the policies: unknown keys
//! are errors, every message names the file and the field, paths must be absolute, and limits
//! are checked against named constants. Parsed into [`raw`] types, then validated into
//! [`Config`].

mod raw;
mod shared;
#[cfg(test)]
mod tests;
pub mod triggers;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

use crate::store::retention::Retention;

pub use shared::{load_queue_password, ArtifactStore, Queue, S3Artifacts};
pub use validate::{load_token, parse_str};

/// Where the config is read from when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/airlock/airlock.toml";
/// The API socket when the config names none (also the CLI's default).
pub const DEFAULT_SOCKET: &str = "/run/airlock/airlock.sock";
/// The state dir when the config names none.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/airlock";
/// Most tasks run at once.
pub const MAX_CONCURRENCY: usize = 64;
/// Default tasks run at once.
pub const DEFAULT_CONCURRENCY: usize = 2;
/// Longest drain allowed at shutdown.
pub const MAX_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3600);
/// Default drain bound at shutdown.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a notify hook may take.
pub const MAX_NOTIFY_TIMEOUT: Duration = Duration::from_secs(300);
/// Default bound on a notify hook.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default period of the running daemon's orphan sweep (local store).
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Bounds of `recovery.sweep_interval`.
pub const MIN_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Longest `recovery.sweep_interval` accepted.
pub const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(3600);
/// Shortest bearer token accepted.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The file it was read from (for messages).
    pub file: PathBuf,
    /// The API's unix socket.
    pub socket: PathBuf,
    /// Group given the socket (mode 0660), e.g. `airlock`.
    pub socket_group: Option<String>,
    /// airlock's state dir (store, caches, task dirs).
    pub state_dir: PathBuf,
    /// Where task artifacts are written.
    pub artifacts_dir: PathBuf,
    /// `None`: the embedded policies.
    pub policies_dir: Option<PathBuf>,
    /// Tasks run at once.
    pub concurrency: usize,
    /// Whether API submitters count as trusted authors (see `operator.toml` `[authors]`).
    pub author_trusted: bool,
    /// `[tcp]`: the optional TCP listener.
    pub tcp: Option<Tcp>,
    /// `[api]`: connection and follower bounds.
    pub api: Api,
    /// `[retention]`: how long finished tasks are kept.
    pub retention: Retention,
    /// `[shutdown]`: what SIGTERM does to running tasks.
    pub shutdown: Shutdown,
    /// `[recovery]`: what a starting daemon sweeps and re-queues.
    pub recovery: Recovery,
    /// `[notify]`: hooks run on every final state.
    pub notify: Notify,
    /// `[[trigger]]`: forge events that start tasks (`/v1/hooks/...`).
    pub triggers: Vec<triggers::TriggerRule>,
    /// `[[schedule]]`: clock slots that start tasks.
    pub schedules: Vec<triggers::ScheduleRule>,
    /// `[queue]`: a PostgreSQL queue shared with other runners (`None`: the embedded SQLite).
    pub queue: Option<Queue>,
    /// `[artifacts]`: a store shared with other runners (`None`: `artifacts_dir` only).
    pub artifacts: Option<ArtifactStore>,
}

/// The optional TCP listener; every request on it needs the bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tcp {
    /// The address to listen on; off loopback the token travels in clear text.
    pub listen: SocketAddr,
    /// The file holding the bearer token (mode 0600).
    pub token_file: PathBuf,
}

/// Bounds on the API (#10 item 9). Connections are counted before any authentication, so an
/// unauthenticated client (a webhook route needs no bearer token) can hold at most a slot for
/// `header_timeout` + `body_timeout`; followers (`logs -f`, `events?follow=1`) are authenticated
/// but each holds a store reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Api {
    /// Connections open at once, per listener (the unix socket and TCP each); beyond it a new
    /// connection gets `503` and is closed.
    pub max_connections: usize,
    /// A connection must send a request's headers within this (also while idle between
    /// keep-alive requests), else it is closed.
    pub header_timeout: Duration,
    /// A request's body must arrive within this, else `408`.
    pub body_timeout: Duration,
    /// Event follow streams at once, all tasks; beyond it `503`.
    pub max_followers: usize,
    /// Event follow streams of one task at once; beyond it `503`.
    pub max_followers_per_task: usize,
    /// Tasks queued at once (all runners of the store); an API submission beyond it gets `503`.
    pub max_queued: usize,
}

/// The `[api]` bounds when the config sets none.
pub const DEFAULT_API: Api = Api {
    max_connections: 64,
    header_timeout: Duration::from_secs(10),
    body_timeout: Duration::from_secs(30),
    max_followers: 64,
    max_followers_per_task: 8,
    max_queued: 1000,
};
/// Upper bounds of the `[api]` counts and timeouts.
pub const MAX_API_CONNECTIONS: usize = 4096;
/// Longest `[api]` timeout accepted.
pub const MAX_API_TIMEOUT: Duration = Duration::from_secs(300);
/// Upper bound of `[api] max_queued`.
pub const MAX_API_QUEUED: usize = 1_000_000;

/// What happens to running tasks on SIGTERM/SIGINT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Let them finish, up to the timeout; then cancel what is left.
    Drain,
    /// Cancel them at once.
    Cancel,
}

/// `[shutdown]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shutdown {
    /// Drain or cancel.
    pub mode: ShutdownMode,
    /// How long a drain may take before what is left is cancelled.
    pub timeout: Duration,
}

/// Which containers a starting daemon removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// Every container labelled `airlock.managed` (the daemon owns the engine).
    All,
    /// Only those of this store's sessions and tasks (the engine is shared with `airlock run`s).
    Owned,
}

/// `[recovery]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Which containers a starting daemon removes.
    pub sweep: Sweep,
    /// How often the running daemon sweeps orphans (what a dead run left), besides at start.
    /// `None`: [`DEFAULT_SWEEP_INTERVAL`], or the heartbeat on a shared queue.
    pub sweep_interval: Option<Duration>,
    /// Re-queue (once) a task a dead daemon was running, instead of ending it `runner_restart`,
    /// if its push had not started (no `push.json` in its artifacts).
    pub requeue_interrupted: bool,
}

/// Notify hooks run on every final state; failures are logged, never block the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// argv; the summary JSON on stdin.
    pub command: Option<Vec<String>>,
    /// A plain-HTTP webhook POSTed the summary JSON.
    pub webhook: Option<Webhook>,
    /// How long a hook may take.
    pub timeout: Duration,
}

/// A plain-HTTP webhook (`http://host[:port]/path`); for HTTPS use `command` (e.g. curl).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The webhook's host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Its path.
    pub path: String,
}

impl fmt::Display for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.path)
    }
}

/// A config that cannot be used. Always names the file, and the field where there is one.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}{message}", file.display(), field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// The field at fault, when there is one.
    pub field: Option<String>,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl ConfigError {
    /// An error in `file` at `field` (if any) saying `message`.
    pub fn new(file: &Path, field: Option<&str>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
}

/// Read and validate the config at `path`, and the token file it names.
pub fn load(path: &Path) -> Result<(Config, Option<SecretString>), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, None, format!("cannot read the config: {e}")))?;
    let config = parse_str(&text, path)?;
    let mut config = config;
    let token = match &config.tcp {
        Some(tcp) => Some(load_token(&tcp.token_file, path)?),
        None => None,
    };
    if let Some(q) = config.queue.as_mut() {
        q.password = load_queue_password(q.password_file.as_deref(), path)?;
    }
    Ok((config, token))
}
