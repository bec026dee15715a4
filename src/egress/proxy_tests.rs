use std::sync::Mutex;

use http_body_util::{BodyExt, Empty};
use tokio::net::{TcpListener, UnixStream};

use super::*;
use crate::egress::config::{KeySource, ModelBudget, Upstream};
use crate::egress::route::Route;

type Seen = Arc<Mutex<Vec<(String, String, HeaderMap)>>>;

/// A loopback upstream that records what it received and answers `body_len` bytes.
async fn upstream(body_len: usize) -> (u16, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let seen = s2.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let pq = req.uri().path_and_query().unwrap().to_string();
                        seen.lock().unwrap().push((
                            req.method().to_string(),
                            pq,
                            req.headers().clone(),
                        ));
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(vec![
                            b'x';
                            body_len
                        ]))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (port, seen)
}

fn provider(port: u16, budget: ModelBudget) -> Provider {
    Provider {
        name: "anthropic".into(),
        upstream: Upstream {
            url: format!("http://127.0.0.1:{port}"),
            https: false,
            host: "127.0.0.1".into(),
            port,
            base_path: String::new(),
        },
        auth: AuthStyle::XApiKey,
        key: KeySource::File("/dev/null".into()),
        routes: vec![Route::parse("POST /v1/messages").unwrap()],
        budget,
    }
}

struct Rig {
    sock: std::path::PathBuf,
    traffic: Traffic,
    seen: Seen,
    _dir: tempfile::TempDir,
    _stop: tokio_util::sync::DropGuard,
}

async fn rig(body_len: usize, budget: ModelBudget) -> Rig {
    let (port, seen) = upstream(body_len).await;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("p.sock");
    let traffic = Traffic::new();
    let proxy = Arc::new(ProviderProxy::new(
        provider(port, budget),
        SecretString::from("sk-real-key-0123456789".to_string()),
        "sk-airlock-placeholder".into(),
        traffic.clone(),
    ));
    let stop = CancellationToken::new();
    tokio::spawn(proxy.serve(UnixListener::bind(&sock).unwrap(), stop.clone()));
    Rig {
        sock,
        traffic,
        seen,
        _dir: dir,
        _stop: stop.drop_guard(),
    }
}

async fn send(sock: &std::path::Path, req: Request<Full<Bytes>>) -> (StatusCode, String) {
    let s = UnixStream::connect(sock).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = tx.send_request(req).await.unwrap();
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn post(path: &str, auth: Option<(&str, &str)>, body: &str) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method("POST")
        .uri(path)
        .header("host", "127.0.0.1:41100");
    if let Some((k, v)) = auth {
        b = b.header(k, v);
    }
    b.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

const PH: Option<(&str, &str)> = Some(("x-api-key", "sk-airlock-placeholder"));

#[tokio::test]
async fn the_real_key_replaces_the_placeholder_and_client_auth_is_stripped() {
    let r = rig(10, ModelBudget::default()).await;
    let mut req = post("/v1/messages?beta=true", PH, "{}");
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_static("Bearer sk-airlock-placeholder"),
    );
    req.headers_mut()
        .insert("cookie", HeaderValue::from_static("a=b"));
    let (status, body) = send(&r.sock, req).await;
    assert_eq!(status, 200);
    assert_eq!(body, "x".repeat(10));
    let seen = r.seen.lock().unwrap();
    let (m, pq, h) = &seen[0];
    assert_eq!(
        (m.as_str(), pq.as_str()),
        ("POST", "/v1/messages?beta=true")
    );
    assert_eq!(h["x-api-key"], "sk-real-key-0123456789");
    assert!(h.get("authorization").is_none() && h.get("cookie").is_none());
    let all = format!("{h:?}");
    assert!(!all.contains("placeholder"), "{all}");
    let t = r.traffic.report();
    assert_eq!(t.providers["anthropic"].requests, 1);
    assert_eq!(t.providers["anthropic"].status["200"], 1);
    assert_eq!(t.providers["anthropic"].bytes_down, 10);
}

#[tokio::test]
async fn a_key_in_the_query_is_stripped_like_an_auth_header() {
    let r = rig(1, ModelBudget::default()).await;
    let req = post(
        "/v1/messages?alt=sse&key=sk-airlock-placeholder&%6B%45y=x&api_key=y&keyed=1&a=%20b",
        PH,
        "{}",
    );
    assert_eq!(send(&r.sock, req).await.0, 200);
    let (s, _) = send(&r.sock, post("/v1/messages?key=sk-leak", PH, "{}")).await;
    assert_eq!(s, 200);
    let seen = r.seen.lock().unwrap();
    assert_eq!(seen[0].1, "/v1/messages?alt=sse&keyed=1&a=%20b");
    assert_eq!(seen[1].1, "/v1/messages");
    assert_eq!(seen[1].2["x-api-key"], "sk-real-key-0123456789");
    assert_eq!(
        without_query_keys("/p", Some("Key=1&x=2")),
        "/p?x=2",
        "any case"
    );
    assert_eq!(without_query_keys("/p", None), "/p");
}

#[tokio::test]
async fn refusals_name_what_is_allowed_and_are_recorded() {
    let r = rig(1, ModelBudget::default()).await;
    let (s, body) = send(&r.sock, post("/v1/messages", None, "{}")).await;
    assert_eq!(s, 401, "{body}");
    let (s, body) = send(&r.sock, post("/v1/files", PH, "{}")).await;
    assert_eq!(s, 403);
    assert!(
        body.contains("POST /v1/messages") && body.contains("route_not_allowed"),
        "{body}"
    );
    let get = Request::builder()
        .uri("/v1/messages")
        .header("x-api-key", "sk-airlock-placeholder")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(send(&r.sock, get).await.0, 403);
    let (s, _) = send(&r.sock, post("/v1/messages/../admin", PH, "{}")).await;
    assert_eq!(s, 403);
    let abs = post("http://evil.example/v1/messages", PH, "{}");
    let (s, body) = send(&r.sock, abs).await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("absolute_form"), "{body}");
    assert!(
        r.seen.lock().unwrap().is_empty(),
        "nothing refused reaches upstream"
    );
    let t = r.traffic.report();
    let p = &t.providers["anthropic"];
    assert_eq!(p.refused_count, 5);
    assert_eq!(p.refused[1].path, "/v1/files");
    assert_eq!(p.requests, 0);
    assert!(t.exhausted.is_none());
}

#[tokio::test]
async fn connect_is_refused() {
    let r = rig(1, ModelBudget::default()).await;
    let s = UnixStream::connect(&r.sock).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::builder()
        .method("CONNECT")
        .uri("evil.example:443")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = tx.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        r.traffic.report().providers["anthropic"].refused[0].why,
        "connect"
    );
}

#[tokio::test]
async fn budgets_end_the_task() {
    let budget = ModelBudget {
        requests: 1,
        ..ModelBudget::default()
    };
    let r = rig(1, budget).await;
    assert_eq!(send(&r.sock, post("/v1/messages", PH, "{}")).await.0, 200);
    let (s, body) = send(&r.sock, post("/v1/messages", PH, "{}")).await;
    assert_eq!(s, 429, "{body}");
    assert!(r
        .traffic
        .exhausted()
        .unwrap()
        .contains("request budget of 1"));
    assert!(r.traffic.exhausted_token().is_cancelled());

    let big = ModelBudget {
        request_bytes: 10,
        ..ModelBudget::default()
    };
    let r = rig(1, big).await;
    assert_eq!(
        send(&r.sock, post("/v1/messages", PH, &"y".repeat(11)))
            .await
            .0,
        429
    );
    assert!(r.traffic.exhausted().unwrap().contains("request_bytes"));

    let resp = ModelBudget {
        response_bytes: 1000,
        ..ModelBudget::default()
    };
    let r = rig(100_000, resp).await;
    // The cut may come before or after the headers went out: either way the body is short.
    let s = UnixStream::connect(&r.sock).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    if let Ok(resp) = tx.send_request(post("/v1/messages", PH, "{}")).await {
        assert!(resp.into_body().collect().await.is_err());
    }
    assert!(r.traffic.exhausted().unwrap().contains("response_bytes"));
}
