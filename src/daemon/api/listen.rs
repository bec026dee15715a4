//! Listeners: the unix socket (mode 0660, optional group) and the optional TCP address, each
//! serving HTTP/1.1 until `stop`.
//!
//! Each listener holds at most `[api] max_connections` connections at once, counted from the
//! accept, before any authentication (#10 item 9): one more is answered `503` and closed at
//! once, without a task or a buffer of its own. A connection must send each request's headers
//! within `header_timeout` (hyper's timer; it also runs while a keep-alive connection is idle)
//! and its body within `body_timeout` (the routes that read one), so a slow or idle client
//! frees its slot instead of holding it.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use nix::sys::stat::{umask, Mode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::daemon::shared::Shared;

/// What a connection beyond the limit is told before it is closed (written without waiting:
/// if the socket cannot take it at once, the client just sees the close).
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: 72\r\n\r\n{\"error\": \"too many connections to the airlock daemon; try again later\"}\n";

/// A listener that cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The socket could not be set up.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The socket's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A live daemon answers on the socket.
    #[error("{path}: another airlock daemon is listening on this socket")]
    InUse {
        /// The socket's path.
        path: PathBuf,
    },
    /// Something that is not a socket has the socket's path.
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// The socket could not be given `socket_group`.
    #[error("socket_group `{group}`: {message}")]
    Group {
        /// The group.
        group: String,
        /// Why.
        message: String,
    },
    /// The TCP listener could not be bound.
    #[error("tcp.listen {addr}: {source}")]
    Tcp {
        /// `tcp.listen`.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ListenError {
    let path = path.to_path_buf();
    move |source| ListenError::Io { op, path, source }
}

/// Bind the socket with mode 0660 (never wider, not even for an instant) and its group.
pub fn bind_unix(path: &Path, group: Option<&str>) -> Result<UnixListener, ListenError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create dir", dir))?;
    }
    clear_stale(path)?;
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(old);
    let listener = bound.map_err(io("bind", path))?;
    if let Some(g) = group {
        set_group(path, g)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(io("chmod", path))?;
    Ok(listener)
}

/// A socket left by a dead daemon is removed; a live one, or any other file, is an error.
fn clear_stale(path: &Path) -> Result<(), ListenError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(ListenError::NotASocket { path: path.into() });
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ListenError::InUse { path: path.into() });
    }
    std::fs::remove_file(path).map_err(io("remove stale socket", path))
}

fn set_group(path: &Path, group: &str) -> Result<(), ListenError> {
    let err = |message: String| ListenError::Group {
        group: group.into(),
        message,
    };
    let g = nix::unistd::Group::from_name(group)
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err("no such group".into()))?;
    nix::unistd::chown(path, None, Some(g.gid)).map_err(|e| err(e.to_string()))
}

/// Bind the TCP listener at `addr` (warning when it is not loopback: the token travels in clear).
pub async fn bind_tcp(addr: std::net::SocketAddr) -> Result<TcpListener, ListenError> {
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the TCP listener is not on loopback; the bearer token travels in clear text");
    }
    TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError::Tcp { addr, source })
}

/// Serve the API on the unix socket until `stop`, at most `api.max_connections` at once.
pub async fn serve_unix(listener: UnixListener, ctx: Arc<Shared>, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(ctx.config.api.max_connections));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                    Ok(slot) => spawn_conn(stream, ctx.clone(), false, slot),
                    Err(_) => {
                        refused("unix", &ctx);
                        let _ = stream.try_write(BUSY);
                    }
                },
                Err(e) => accept_failed(e).await,
            },
        }
    }
}

/// Serve the API over TCP (bearer token required) until `stop`, at most `api.max_connections` at once.
pub async fn serve_tcp(listener: TcpListener, ctx: Arc<Shared>, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(ctx.config.api.max_connections));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                    Ok(slot) => spawn_conn(stream, ctx.clone(), true, slot),
                    Err(_) => {
                        refused("tcp", &ctx);
                        let _ = stream.try_write(BUSY);
                    }
                },
                Err(e) => accept_failed(e).await,
            },
        }
    }
}

/// A debug line only (a flood of refusals must not flood the log); the metric counts them.
fn refused(listener: &'static str, ctx: &Shared) {
    tracing::debug!(listener, "connection refused: at api.max_connections");
    ctx.metrics.connection_refused();
}

/// Out of file descriptors and the like: log and back off instead of spinning.
async fn accept_failed(e: std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Serve one connection; its slot is given back when it ends.
fn spawn_conn<S>(stream: S, ctx: Arc<Shared>, tcp: bool, slot: OwnedSemaphorePermit)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = ctx.config.api.header_timeout;
    tokio::spawn(async move {
        let _slot = slot;
        let service = service_fn(move |req| super::handle(req, ctx.clone(), tcp));
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    });
}
