//! HTTP/1.1 over a unix socket: one request a connection, the reply buffered or streamed. A
//! leaf: the daemon's CLI uses it for the daemon's API and the sandbox for Podman's libpod API.

use std::path::PathBuf;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// A request over the socket failed.
#[derive(Debug, thiserror::Error)]
pub enum UnixHttpError {
    /// The socket could not be connected to (nothing listens, or no permission).
    #[error("cannot connect to {}: {source}", socket.display())]
    Connect {
        /// The socket's path.
        socket: PathBuf,
        /// Why `connect(2)` failed.
        source: std::io::Error,
    },
    /// Connected, but the HTTP exchange failed (handshake, request, or reading the body).
    #[error("{}: {message}", socket.display())]
    Http {
        /// The socket's path.
        socket: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// A connection factory for one socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

/// A buffered reply.
#[derive(Debug)]
pub struct Reply {
    /// The response status.
    pub status: StatusCode,
    /// The whole response body.
    pub body: Bytes,
}

impl Reply {
    /// The body parsed as JSON; `Null` when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `error` of an error reply, or the status.
    pub fn error_message(&self) -> String {
        self.json()["error"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| self.status.to_string())
    }
}

impl Client {
    /// A client for the socket at `socket` (nothing is connected until a request).
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
        }
    }

    fn http(&self, e: impl std::fmt::Display) -> UnixHttpError {
        UnixHttpError::Http {
            socket: self.socket.clone(),
            message: e.to_string(),
        }
    }

    /// Send one request; the response body is left to the caller (it may be a stream).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Response<Incoming>, UnixHttpError> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| UnixHttpError::Connect {
                socket: self.socket.clone(),
                source,
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.http(e))?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "airlock");
        let bytes = match body {
            Some((content_type, b)) => {
                req = req.header("content-type", content_type);
                Bytes::from(b)
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(bytes)).map_err(|e| self.http(e))?;
        sender.send_request(req).await.map_err(|e| self.http(e))
    }

    /// Send one request and read the whole reply.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Reply, UnixHttpError> {
        let resp = self.send(method, path, body).await?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| self.http(e))?
            .to_bytes();
        Ok(Reply { status, body })
    }

    /// Feed each chunk of a streamed body to `sink` until the stream ends.
    pub async fn drain(
        &self,
        resp: Response<Incoming>,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<(), UnixHttpError> {
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| self.http(e))?;
            if let Some(data) = frame.data_ref() {
                sink(data).map_err(|e| self.http(e))?;
            }
        }
        Ok(())
    }
}
