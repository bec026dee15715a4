//! make bench: what model egress costs. A model server on 127.0.0.1 answers a small JSON reply
//! and a streamed 10 MB SSE reply; the same requests go (1) straight to it, (2) through
//! airlock's per-task proxy on its unix socket (`Egress::start`: placeholder checked, real key
//! injected, budgets metered) and (3) through the static forwarder airlock ships
//! (`airlock-forward`, run here on the host: TCP 127.0.0.1 -> the socket) and the proxy, the
//! path an agent's requests take. Prints the median latency per request (one keep-alive
//! connection, sequential) and its p99, the latency the proxy adds, the throughput of the 10 MB
//! stream, and each as a ratio to the direct connection.
//!
//! `cargo bench --bench model_proxy` (BENCH_REQUESTS, BENCH_STREAMS change the counts).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: a panic is a failed run"
)]

use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use airlock::egress::{self, Egress};
use futures_util::stream;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const BIG: usize = 10 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
const KEY: &str = "sk-bench-real-key-0123456789";

fn env_n(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

type Body = BoxBody<Bytes, Infallible>;

/// The model server: `POST /v1/messages` answers a small JSON body; with `?big=1`, 10 MB of
/// SSE events in 64 KiB chunks. It checks the real key, as a provider would.
async fn upstream() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let mut event = format!("data: {}\n\n", "x".repeat(CHUNK - 8)).into_bytes();
    event.truncate(CHUNK);
    let event = Bytes::from(event);
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let event = event.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let event = event.clone();
                    async move {
                        let big = req.uri().query() == Some("big=1");
                        let authed = req.headers().get("x-api-key").map(|v| v.as_bytes())
                            == Some(KEY.as_bytes());
                        let _ = req.into_body().collect().await;
                        let body: Body = if !authed {
                            Full::new(Bytes::from_static(b"bad key")).boxed()
                        } else if big {
                            let chunks = (0..BIG / CHUNK)
                                .map(move |_| Ok::<_, Infallible>(Frame::data(event.clone())));
                            StreamBody::new(stream::iter(chunks)).boxed()
                        } else {
                            Full::new(Bytes::from_static(
                                br#"{"id":"msg_01","type":"message","role":"assistant","content":[{"type":"text","text":"Done."}],"stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":5}}"#,
                            ))
                            .boxed()
                        };
                        let status = if authed { 200 } else { 401 };
                        let mut resp = Response::new(body);
                        *resp.status_mut() = status.try_into().unwrap();
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    port
}

enum Via {
    Tcp(u16),
    Unix(std::path::PathBuf),
}

async fn connect(via: &Via) -> SendRequest<Full<Bytes>> {
    macro_rules! hs {
        ($io:expr) => {{
            let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new($io))
                .await
                .unwrap();
            tokio::spawn(conn);
            tx
        }};
    }
    match via {
        Via::Tcp(port) => {
            // The forwarder's listener may still be coming up.
            for _ in 0..200 {
                if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", *port)).await {
                    s.set_nodelay(true).unwrap();
                    return hs!(s);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("nothing listens on 127.0.0.1:{port}");
        }
        Via::Unix(p) => hs!(tokio::net::UnixStream::connect(p).await.unwrap()),
    }
}

/// One request; returns the body length.
async fn once(tx: &mut SendRequest<Full<Bytes>>, key: &str, big: bool) -> usize {
    let uri = if big {
        "/v1/messages?big=1"
    } else {
        "/v1/messages"
    };
    let req = Request::post(uri)
        .header("host", "127.0.0.1")
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        )))
        .unwrap();
    tx.ready().await.unwrap();
    let resp = tx.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200, "the request was not answered 200");
    let mut body = resp.into_body();
    let mut n = 0;
    while let Some(f) = body.frame().await {
        if let Ok(d) = f.unwrap().into_data() {
            n += d.len();
        }
    }
    n
}

struct Row {
    median_us: f64,
    p99_us: f64,
    mb_s: f64,
}

async fn measure(via: &Via, key: &str, requests: usize, streams: usize) -> Row {
    let mut tx = connect(via).await;
    for _ in 0..20 {
        once(&mut tx, key, false).await; // warm up
    }
    let mut lat = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        once(&mut tx, key, false).await;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mut rates = Vec::with_capacity(streams);
    for _ in 0..streams {
        let t = Instant::now();
        let n = once(&mut tx, key, true).await;
        assert_eq!(n, BIG / CHUNK * CHUNK, "the stream was cut");
        rates.push(n as f64 / 1e6 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Row {
        median_us: lat[lat.len() / 2],
        p99_us: lat[(lat.len() * 99 / 100).min(lat.len() - 1)],
        mb_s: rates[rates.len() / 2],
    }
}

fn models_toml(dir: &Path, port: u16) -> egress::Provider {
    let key_file = dir.join("bench.key");
    std::fs::write(&key_file, KEY).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!(
        "[[provider]]\nname = \"bench\"\nupstream = \"http://127.0.0.1:{port}\"\nauth = \"x-api-key\"\nkey_file = \"{}\"\nroutes = [\"POST /v1/messages\"]\n[provider.budget]\nrequests = 1000000\nresponse_bytes = \"64m\"\ntotal_bytes = \"100g\"\n",
        key_file.display()
    );
    let cfg = egress::config::parse(&text, "models.toml", dir).expect("models.toml");
    cfg.providers["bench"].clone()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let requests = env_n("BENCH_REQUESTS", 500);
    let streams = env_n("BENCH_STREAMS", 10);
    let tmp = tempfile::tempdir().unwrap();
    let port = upstream().await;
    let provider = models_toml(tmp.path(), port);
    let mut grants = egress::plan_grants(&["bench".to_string()]);
    // A free port for the forwarder on the host (41100 may be taken by another run).
    let fwd_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    grants[0].port = fwd_port;
    let placeholder = grants[0].placeholder.clone();
    let dir = tmp.path().join("model");
    let e = Egress::start(&dir, &[provider], grants).expect("start the proxy");
    let sock = dir.join("bench.sock");
    let mut fwd = std::process::Command::new(dir.join("airlock-forward"))
        .arg("--map")
        .arg(format!("{fwd_port}={}", sock.display()))
        .args(["--", "sleep", "3600"])
        .spawn()
        .expect("run airlock-forward");

    let direct = measure(&Via::Tcp(port), KEY, requests, streams).await;
    let proxy = measure(&Via::Unix(sock), &placeholder, requests, streams).await;
    let forwarded = measure(&Via::Tcp(fwd_port), &placeholder, requests, streams).await;
    // SIGTERM: the forwarder passes it on to its `sleep` and exits (a SIGKILL would leave
    // the sleep behind, holding our stdout).
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(fwd.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = fwd.wait();
    let t = e.traffic().report();
    e.stop();

    println!("== model egress: {requests} small requests (keep-alive, sequential), {streams} streamed 10 MB replies");
    println!(
        "{:<34} {:>12} {:>10} {:>12} {:>10} {:>11} {:>10}",
        "path", "median µs", "p99 µs", "added µs", "latency x", "MB/s", "thruput x"
    );
    for (name, r) in [
        ("direct TCP", &direct),
        ("proxy (unix socket)", &proxy),
        ("forwarder + proxy (agent's path)", &forwarded),
    ] {
        println!(
            "{:<34} {:>12.0} {:>10.0} {:>12.0} {:>10.2} {:>11.0} {:>10.2}",
            name,
            r.median_us,
            r.p99_us,
            r.median_us - direct.median_us,
            r.median_us / direct.median_us,
            r.mb_s,
            r.mb_s / direct.mb_s
        );
    }
    let p = &t.providers["bench"];
    println!(
        "(the proxy metered {} requests, {:.0} MB down)",
        p.requests,
        p.bytes_down as f64 / 1e6
    );
}
