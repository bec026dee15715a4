//! The per-provider reverse proxy: HTTP/1 on a unix socket, served on the host, reached from
//! the sandbox only through `airlock-forward`.
//!
//! Each request must carry the task's placeholder key; every client auth header is stripped and
//! the real key injected. Only origin-form targets matching the provider's routes go upstream,
//! to the one upstream the operator configured: no CONNECT, no absolute-form, no redirects
//! followed (a 3xx is handed back as is). Responses stream through frame by frame (SSE) under
//! an idle timeout; sizes, request count and total bytes are metered against the budget.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use super::config::{AuthStyle, Provider};
use super::route::{allowed, clean_path};
use super::traffic::Traffic;

/// Boxed error of a proxied body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;
type UpstreamClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Headers a client may use to present a key; all are removed before forwarding.
const AUTH_HEADERS: [&str; 4] = ["authorization", "x-api-key", "x-goog-api-key", "api-key"];
/// Hop-by-hop and identifying headers never forwarded in either direction.
const DROP_HEADERS: [&str; 14] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "cookie",
    "set-cookie",
    "forwarded",
];
/// Longest the proxy waits for a client's request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// One provider's proxy for one task.
pub struct ProviderProxy {
    provider: Provider,
    key: SecretString,
    placeholder: String,
    traffic: Traffic,
    client: UpstreamClient,
}

/// A request refused by airlock itself.
struct Refusal {
    status: StatusCode,
    why: &'static str,
    message: String,
}

impl ProviderProxy {
    /// A proxy for `provider` that swaps the agent's `placeholder` key for `key` and counts into `traffic`.
    pub fn new(
        provider: Provider,
        key: SecretString,
        placeholder: String,
        traffic: Traffic,
    ) -> Self {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        traffic.register(&provider.name);
        ProviderProxy {
            provider,
            key,
            placeholder,
            traffic,
            client,
        }
    }

    /// Serve `listener` until `stop` fires.
    pub async fn serve(self: Arc<Self>, listener: UnixListener, stop: CancellationToken) {
        loop {
            let stream = tokio::select! {
                _ = stop.cancelled() => return,
                acc = listener.accept() => match acc {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(provider = %self.provider.name, error = %e, "model proxy accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let me = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| me.clone().handle(req));
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), svc);
                tokio::select! {
                    _ = conn => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<ProxyBody>, Infallible> {
        let method = req.method().as_str().to_string();
        let path = req.uri().path().to_string();
        if let Err(r) = self.screen(req.method(), req.uri(), req.headers()) {
            self.traffic.refuse(
                &self.provider.name,
                &method,
                &path,
                r.status.as_u16(),
                r.why,
            );
            return Ok(json_reply(
                r.status,
                r.why,
                &r.message,
                &self.allowed_list(),
            ));
        }
        Ok(match self.forward(req).await {
            Ok(resp) => resp,
            Err(r) => {
                self.traffic.refuse(
                    &self.provider.name,
                    &method,
                    &path,
                    r.status.as_u16(),
                    r.why,
                );
                json_reply(r.status, r.why, &r.message, &[])
            }
        })
    }

    fn allowed_list(&self) -> Vec<String> {
        self.provider.routes.iter().map(|r| r.to_string()).collect()
    }

    /// Everything decided from the request line and headers, before a byte goes upstream.
    fn screen(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), Refusal> {
        let refuse = |status, why, message: String| {
            Err(Refusal {
                status,
                why,
                message,
            })
        };
        if method == Method::CONNECT {
            return refuse(
                StatusCode::FORBIDDEN,
                "connect",
                "CONNECT is not allowed; this proxy forwards the model API only".into(),
            );
        }
        if uri.scheme().is_some() || uri.authority().is_some() {
            return refuse(StatusCode::FORBIDDEN, "absolute_form", "absolute-form request targets are not allowed; the upstream is fixed by the operator".into());
        }
        if let Err(m) = clean_path(uri.path()) {
            return refuse(StatusCode::FORBIDDEN, "bad_path", format!("the path {m}"));
        }
        if allowed(&self.provider.routes, method.as_str(), uri.path()).is_none() {
            return refuse(
                StatusCode::FORBIDDEN,
                "route_not_allowed",
                format!(
                    "`{} {}` is not allowed for model provider `{}`; allowed: {}",
                    method,
                    uri.path(),
                    self.provider.name,
                    self.allowed_list().join(", ")
                ),
            );
        }
        if !presents_placeholder(headers, &self.placeholder) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "no_task_key",
                format!(
                    "missing or wrong key; send $AIRLOCK_MODEL_{}_KEY",
                    self.provider.env_name()
                ),
            );
        }
        Ok(())
    }

    fn exhaust(&self, why: String) -> Result<(), Refusal> {
        self.traffic.exhaust(why.clone());
        Err(Refusal {
            status: StatusCode::TOO_MANY_REQUESTS,
            why: crate::vocab::Reason::ModelBudgetExhausted.as_str(),
            message: why,
        })
    }

    async fn forward(
        self: &Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<ProxyBody>, Refusal> {
        let budget = &self.provider.budget;
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, budget.request_bytes as usize)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                self.exhaust(format!(
                    "model provider `{}`: a request body is above the request_bytes budget of {}",
                    self.provider.name, budget.request_bytes
                ))?;
                return Err(bad_gateway("unreachable".into()));
            }
            Err(e) => {
                return Err(Refusal {
                    status: StatusCode::BAD_REQUEST,
                    why: "bad_body",
                    message: format!("cannot read the request body: {e}"),
                })
            }
        };
        if let Err(why) = self
            .traffic
            .begin(&self.provider.name, budget, body.len() as u64)
        {
            self.exhaust(why)?;
        }
        let upstream = self.upstream_request(&parts, body)?;
        let started = Instant::now();
        let sent = tokio::time::timeout(budget.idle_timeout, self.client.request(upstream)).await;
        let resp = match sent {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(bad_gateway(format!("upstream request failed: {e}"))),
            Err(_) => {
                return Err(bad_gateway(
                    "upstream sent no response headers within the idle timeout".into(),
                ))
            }
        };
        self.traffic
            .status(&self.provider.name, resp.status().as_u16());
        let (mut rparts, rbody) = resp.into_parts();
        strip(&mut rparts.headers);
        let metered = Metered::new(rbody, self.clone(), started);
        Ok(Response::from_parts(rparts, metered.boxed()))
    }

    fn upstream_request(
        &self,
        parts: &hyper::http::request::Parts,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, Refusal> {
        let u = &self.provider.upstream;
        let pq = without_query_keys(parts.uri.path(), parts.uri.query());
        let scheme = if u.https { "https" } else { "http" };
        let uri: Uri = format!("{scheme}://{}:{}{}{pq}", u.host, u.port, u.base_path)
            .parse()
            .map_err(|e| bad_gateway(format!("cannot build the upstream URI: {e}")))?;
        let mut headers = parts.headers.clone();
        strip(&mut headers);
        for h in AUTH_HEADERS {
            headers.remove(h);
        }
        let (name, value) = self.auth_header().map_err(bad_gateway)?;
        headers.insert(name, value);
        let mut req = Request::builder()
            .method(parts.method.clone())
            .uri(uri)
            .body(Full::new(body))
            .map_err(|e| bad_gateway(format!("cannot build the upstream request: {e}")))?;
        *req.headers_mut() = headers;
        Ok(req)
    }

    /// The real key as a header, marked sensitive (never printed by hyper).
    fn auth_header(&self) -> Result<(HeaderName, HeaderValue), String> {
        let key = self.key.expose_secret();
        let (name, text) = match self.provider.auth {
            AuthStyle::XApiKey => ("x-api-key", key.to_string()),
            AuthStyle::Bearer => ("authorization", format!("Bearer {key}")),
            AuthStyle::XGoogApiKey => ("x-goog-api-key", key.to_string()),
        };
        let mut value = HeaderValue::from_str(&text)
            .map_err(|_| "the key is not a valid header value".to_string())?;
        value.set_sensitive(true);
        Ok((HeaderName::from_static(name), value))
    }
}

fn bad_gateway(message: String) -> Refusal {
    Refusal {
        status: StatusCode::BAD_GATEWAY,
        why: "upstream_failed",
        message,
    }
}

/// Remove hop-by-hop headers, those the `Connection` header names, and proxy identity headers.
fn strip(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    for h in DROP_HEADERS.iter().map(|s| s.to_string()).chain(named) {
        headers.remove(h.as_str());
    }
    let forwarded: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-forwarded-"))
        .cloned()
        .collect();
    for k in forwarded {
        headers.remove(k);
    }
}

/// Whether any auth header carries the task's placeholder (compared in constant time).
/// Query parameters that carry a key (Gemini's `?key=`): dropped like the auth headers, so a
/// key the client put in the URL never goes upstream; the real one travels in a header.
const QUERY_KEYS: [&str; 2] = ["key", "api_key"];

/// `path` and `query` for the upstream, without any [`QUERY_KEYS`] parameter (its name
/// percent-decoded, any case). Every other parameter is kept byte for byte, in order.
fn without_query_keys(path: &str, query: Option<&str>) -> String {
    let Some(q) = query else {
        return path.to_string();
    };
    let kept: Vec<&str> = q
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("").replace('+', " ");
            let name = percent_encoding::percent_decode_str(&name).decode_utf8_lossy();
            !QUERY_KEYS.iter().any(|k| name.eq_ignore_ascii_case(k))
        })
        .collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

fn presents_placeholder(headers: &HeaderMap, placeholder: &str) -> bool {
    AUTH_HEADERS.iter().any(|h| {
        headers.get_all(*h).iter().any(|v| {
            let v = v.as_bytes();
            let v = v
                .strip_prefix(b"Bearer ")
                .or_else(|| v.strip_prefix(b"bearer "))
                .unwrap_or(v);
            ct_eq(v, placeholder.as_bytes())
        })
    })
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A JSON error body both Anthropic- and OpenAI-style clients show: what happened and what is
/// allowed.
fn json_reply(
    status: StatusCode,
    why: &str,
    message: &str,
    allowed: &[String],
) -> Response<ProxyBody> {
    let body = serde_json::json!({
        "type": "error",
        "error": { "type": format!("airlock_{why}"), "code": why, "message": message, "allowed": allowed },
    });
    let mut resp = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The upstream response body, passed through frame by frame (no buffering: SSE streams as it
/// arrives), metered against the budget and cut when it is idle for too long.
struct Metered {
    inner: Incoming,
    proxy: Arc<ProviderProxy>,
    started: Instant,
    idle: Pin<Box<tokio::time::Sleep>>,
    seen: u64,
}

impl Metered {
    fn new(inner: Incoming, proxy: Arc<ProviderProxy>, started: Instant) -> Self {
        let idle = Box::pin(tokio::time::sleep(proxy.provider.budget.idle_timeout));
        Metered {
            inner,
            proxy,
            started,
            idle,
            seen: 0,
        }
    }

    fn count(&mut self, n: u64) -> Result<(), String> {
        let p = &self.proxy.provider;
        self.seen += n;
        self.proxy.traffic.down(&p.name, &p.budget, n)?;
        if self.seen > p.budget.response_bytes {
            return Err(format!(
                "model provider `{}`: a response is above the response_bytes budget of {}",
                p.name, p.budget.response_bytes
            ));
        }
        Ok(())
    }
}

impl Body for Metered {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                if let Err(why) = self.count(n) {
                    self.proxy.traffic.exhaust(why.clone());
                    return Poll::Ready(Some(Err(why.into())));
                }
                let next = tokio::time::Instant::now() + self.proxy.provider.budget.idle_timeout;
                self.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err("upstream idle timeout".into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.proxy
            .traffic
            .time(&self.proxy.provider.name, self.started.elapsed());
    }
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
