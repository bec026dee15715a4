//! The runner daemon: a durable queue (the store), a local API, FIFO workers under a
//! concurrency limit, cancel, shutdown and crash recovery. Tasks run through
//! `runner::run_task`, exactly as `airlock run` runs them.
//!
//! Start-up order matters: config and policies (fail closed) → state-dir lock → store →
//! engine → recovery (no task is live yet) → a new session → listeners → dispatcher.

pub mod api;
pub mod client;
pub mod config;
mod dispatch;
mod engine_events;
mod fenced;
pub mod hooks;
mod lease;
mod metrics;
mod notify;
mod orphans;
pub mod pr_closed;
pub(crate) mod publish;
mod queue;
mod reaper;
pub mod recover;
mod retain;
pub mod schedule;
mod shared;
pub mod stats;
pub mod status;
pub mod sweep;
mod synth;
pub mod table;
mod tail;
mod worker;

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{Flock, FlockArg};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use self::config::{Config, ConfigError};
use self::shared::{Db, Shared};
use crate::policy::{Policies, PolicyError};
use crate::sandbox::{Engine, SandboxError, LABEL_SESSION, LABEL_TASK};
use crate::store::pg::{PgSettings, PgStore, CHANNEL_QUEUE};
use crate::store::{LeaseTimes, LocalStore, Store, StoreError};
use crate::vocab::Exit;

/// Why the daemon did not start (or stopped abnormally).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The daemon's config is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The policies are invalid.
    #[error("{0}; the daemon does not start without valid policies")]
    Policies(PolicyError),
    /// A file or directory step failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another daemon holds the state dir.
    #[error("{path}: another airlock daemon uses this state dir")]
    Locked {
        /// The state dir's lock file.
        path: PathBuf,
    },
    /// The task store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The engine is unreachable or unfit.
    #[error("{0}")]
    Engine(#[from] SandboxError),
    /// Recovering what a dead daemon left failed.
    #[error("{0}")]
    Recover(#[from] recover::RecoverError),
    /// The API could not listen.
    #[error("{0}")]
    Listen(#[from] api::listen::ListenError),
    /// The shared artifact store failed.
    #[error("{0}")]
    Publish(#[from] publish::PublishError),
    /// The artifacts root is unsafe or unusable.
    #[error("{0}")]
    Root(#[from] crate::artifacts::RootError),
}

impl DaemonError {
    /// 2: the operator's input (config, policies) is invalid · 4: anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            DaemonError::Config(_) | DaemonError::Policies(_) => Exit::Invalid.code(),
            DaemonError::Root(e) if !matches!(e, crate::artifacts::RootError::Io { .. }) => {
                Exit::Invalid.code()
            }
            _ => Exit::Fault.code(),
        }
    }
}

/// `airlock daemon --config FILE`: run until SIGTERM/SIGINT. Returns the exit code.
pub fn main(config_path: &Path) -> i32 {
    let result = config::load(config_path)
        .map_err(DaemonError::from)
        .and_then(|(config, token)| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| DaemonError::Io {
                    op: "start the async runtime",
                    path: PathBuf::new(),
                    source: e,
                })?;
            let r = rt.block_on(serve(config, token));
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
            r
        });
    match result {
        Ok(()) => Exit::Ok.code(),
        Err(e) => {
            tracing::error!(error = %e, "daemon stopped");
            eprintln!(
                "airlock daemon: {}",
                crate::artifacts::neutralise(&e.to_string())
            );
            e.exit_code()
        }
    }
}

/// Start, serve until shutdown, clean up.
pub async fn serve(mut config: Config, token: Option<SecretString>) -> Result<(), DaemonError> {
    let policies = load_policies(config.policies_dir.as_deref())?;
    prepare_dirs(&mut config)?;
    let _lock = lock_state_dir(&config.state_dir)?;
    let (db, listen) = open_store(&config).await?;
    let artifacts = config.artifacts.as_ref().map(publish::open).transpose()?;
    let engine = Engine::connect().await?;
    let report = match db.leases() {
        None => recover::recover(&engine, &db, &config).await?,
        Some(_) => recover::Report::default(),
    };
    let session = format!("daemon-{}", crate::runner::random_hex(6));
    db.add_session(session.clone()).await?;
    tracing::info!(%session, containers_removed = report.containers_removed, tasks_recovered = report.tasks.len(), "recovery done");
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let mut shared = Shared::new(config, token, policies, session, db, tx);
    shared.artifacts = artifacts;
    let ctx = Arc::new(shared);
    retain::once(&ctx).await;
    let stop = CancellationToken::new();
    if let (Some(times), Some(pg)) = (ctx.db.leases(), listen) {
        start_shared(&ctx, &engine, times, pg, &stop).await;
    }
    start_listeners(&ctx, &stop).await?;
    tokio::spawn(engine_events::watch(
        engine.clone(),
        ctx.clone(),
        stop.clone(),
    ));
    tokio::spawn(retain::hourly(ctx.clone(), stop.clone()));
    let every = orphans::interval(&ctx);
    tokio::spawn(orphans::run(
        ctx.clone(),
        engine.clone(),
        every,
        stop.clone(),
    ));
    tokio::spawn(schedule::run(ctx.clone(), stop.clone()));
    tracing::info!(socket = %ctx.config.socket.display(), concurrency = ctx.config.concurrency, "daemon ready");
    let left = dispatch::run(ctx.clone(), rx).await;
    stop.cancel();
    clean_up(&engine, &ctx, &left).await;
    Ok(())
}

/// The embedded SQLite store, or the shared PostgreSQL queue of `[queue]` (with the settings
/// of its LISTEN connection).
async fn open_store(config: &Config) -> Result<(Db, Option<tokio_postgres::Config>), DaemonError> {
    let Some(q) = &config.queue else {
        let store = Store::open(&config.state_dir.join("airlock.db"))?;
        return Ok((Db::local(LocalStore::new(store)), None));
    };
    let settings = PgSettings {
        url: q.url.clone(),
        password: q.password.clone(),
        times: LeaseTimes {
            ttl: q.lease,
            heartbeat: q.heartbeat,
            requeues: q.requeues,
        },
    };
    let pg = PgStore::connect(&settings).await?;
    let listen = pg.client_config().clone();
    tracing::info!(lease = ?q.lease, heartbeat = ?q.heartbeat, "shared queue ready");
    Ok((Db::shared(Arc::new(pg)), Some(listen)))
}

/// A shared queue: sweep what no live lease owns, then reap every heartbeat (the periodic sweep
/// is [`orphans::run`]); wake on the queue's notifications.
async fn start_shared(
    ctx: &Arc<Shared>,
    engine: &Engine,
    times: LeaseTimes,
    listen: tokio_postgres::Config,
    stop: &CancellationToken,
) {
    let removed = reaper::sweep_orphans(ctx, engine).await;
    tracing::info!(
        containers_removed = removed,
        "shared queue: orphan sweep done"
    );
    tokio::spawn(reaper::run(ctx.clone(), times, stop.clone()));
    let c = ctx.clone();
    let on = move |channel: &str, _: &str| {
        if channel == CHANNEL_QUEUE {
            c.wake.notify_one();
        } else {
            c.events_stored();
        }
    };
    tokio::spawn(crate::store::pg::listen(listen, on, stop.clone()));
}

fn load_policies(dir: Option<&Path>) -> Result<Policies, DaemonError> {
    let p = match dir {
        Some(d) => crate::policy::load_dir(d),
        None => crate::policy::load_embedded(),
    }
    .map_err(DaemonError::Policies)?;
    p.apply_sandbox_user().map_err(DaemonError::Policies)?;
    Ok(p)
}

/// The state dir is the daemon's own (0700); artifacts may be shared with readers. Both must
/// be airlock's own (owner, no group/other write) and are used by their canonical paths, so
/// writes beneath them can refuse every link (#10 item 7).
fn prepare_dirs(config: &mut Config) -> Result<(), DaemonError> {
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| DaemonError::Io { op, path, source }
    };
    let state = &config.state_dir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state)
        .map_err(io("create dir", state))?;
    std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o700))
        .map_err(io("chmod", state))?;
    config.state_dir = crate::artifacts::secure_root("state dir", state, 0o700)?;
    config.artifacts_dir =
        crate::artifacts::secure_root("artifacts dir", &config.artifacts_dir, 0o755)?;
    Ok(())
}

/// One daemon per state dir: an exclusive, non-blocking flock held for the daemon's life.
fn lock_state_dir(state: &Path) -> Result<Flock<File>, DaemonError> {
    let path = state.join("daemon.lock");
    let file = File::create(&path).map_err(|source| DaemonError::Io {
        op: "create",
        path: path.clone(),
        source,
    })?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| DaemonError::Locked { path })
}

async fn start_listeners(ctx: &Arc<Shared>, stop: &CancellationToken) -> Result<(), DaemonError> {
    let unix = api::listen::bind_unix(&ctx.config.socket, ctx.config.socket_group.as_deref())?;
    tokio::spawn(api::listen::serve_unix(unix, ctx.clone(), stop.clone()));
    if let Some(tcp) = &ctx.config.tcp {
        let listener = api::listen::bind_tcp(tcp.listen).await?;
        tokio::spawn(api::listen::serve_tcp(listener, ctx.clone(), stop.clone()));
    }
    Ok(())
}

/// After the dispatcher: remove this session's containers and the work dirs of tasks that did
/// not stop in time (they stay `running` in the store and are recovered at the next start),
/// and the socket.
async fn clean_up(engine: &Engine, ctx: &Shared, left: &[String]) {
    let (removed, err) = engine.sweep(Some((LABEL_SESSION, &ctx.session))).await;
    if let Some(e) = err {
        tracing::error!(error = %e, "shutdown could not remove every container");
    }
    for id in left {
        if ctx.db.leases().is_some() {
            let _ = engine.sweep(Some((LABEL_TASK, id))).await;
        }
        recover::remove_work_dir(&ctx.config.state_dir.join("tasks").join(id));
    }
    let _ = std::fs::remove_file(&ctx.config.socket);
    tracing::info!(
        containers_removed = removed,
        unfinished = left.len(),
        "daemon stopped"
    );
}
