//! Response helpers: JSON bodies, errors with a stable shape, streamed bodies.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{header, Response, StatusCode};
use serde_json::{json, Value};

/// Every response body: buffered or streamed.
pub type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn json(status: StatusCode, v: &Value) -> Response<Body> {
    let mut text = v.to_string();
    text.push('\n');
    with_type(status, "application/json", full(text))
}

/// `{"error": message, "field": field}`.
pub fn error(status: StatusCode, message: &str, field: Option<&str>) -> Response<Body> {
    json(status, &json!({ "error": message, "field": field }))
}

pub fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

pub fn not_found(what: &str) -> Response<Body> {
    error(StatusCode::NOT_FOUND, &format!("{what} not found"), None)
}

pub fn unavailable(message: &str) -> Response<Body> {
    error(StatusCode::SERVICE_UNAVAILABLE, message, None)
}

pub fn internal(e: &dyn std::fmt::Display) -> Response<Body> {
    tracing::error!(error = %e, "request failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), None)
}

/// The value of `key` in a query string (no percent-decoding: values are ids, numbers, names).
pub fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// A streamed body from a `Send` (not necessarily `Sync`) stream: it runs in a task of its own
/// and hands chunks over a small channel (so a slow client holds at most a few chunks); it
/// stops as soon as the client goes away, even while the stream is waiting for its next item.
pub fn spawned<S>(stream: S) -> Body
where
    S: futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    use futures_util::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            let item = tokio::select! {
                _ = tx.closed() => return,
                item = stream.next() => item,
            };
            let Some(item) = item else { return };
            if tx.send(item).await.is_err() {
                return;
            }
        }
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item.map(hyper::body::Frame::data), rx))
    });
    BodyExt::boxed(http_body_util::StreamBody::new(chunks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params() {
        assert_eq!(query_param(Some("a=1&follow=1"), "follow"), Some("1"));
        assert_eq!(query_param(Some("follow"), "follow"), Some(""));
        assert_eq!(query_param(Some("a=1"), "b"), None);
        assert_eq!(query_param(None, "b"), None);
    }
}
