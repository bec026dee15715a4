//! Listeners: the unix socket (mode 0660, optional group) and the optional TCP address, each
//! serving HTTP/1.1 until `stop`.

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
use tokio_util::sync::CancellationToken;

use crate::daemon::shared::Shared;

/// A client gets this long to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// A listener that cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: another airlock daemon is listening on this socket")]
    InUse { path: PathBuf },
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket { path: PathBuf },
    #[error("socket_group `{group}`: {message}")]
    Group { group: String, message: String },
    #[error("tcp.listen {addr}: {source}")]
    Tcp {
        addr: std::net::SocketAddr,
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

pub async fn bind_tcp(addr: std::net::SocketAddr) -> Result<TcpListener, ListenError> {
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the TCP listener is not on loopback; the bearer token travels in clear text");
    }
    TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError::Tcp { addr, source })
}

pub async fn serve_unix(listener: UnixListener, ctx: Arc<Shared>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => spawn_conn(stream, ctx.clone(), false),
                Err(e) => accept_failed(e).await,
            },
        }
    }
}

pub async fn serve_tcp(listener: TcpListener, ctx: Arc<Shared>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => spawn_conn(stream, ctx.clone(), true),
                Err(e) => accept_failed(e).await,
            },
        }
    }
}

/// Out of file descriptors and the like: log and back off instead of spinning.
async fn accept_failed(e: std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn spawn_conn<S>(stream: S, ctx: Arc<Shared>, tcp: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let service = service_fn(move |req| super::handle(req, ctx.clone(), tcp));
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    });
}
