//! The daemon's API holds out against clients that never authenticate or never read (#10 item
//! 9), against the real daemon: connections are capped per listener before any auth (TCP and
//! the unix socket), idle and slow (slowloris) clients are closed after `header_timeout`, a
//! trickled webhook body gets `408` after `body_timeout`, followers are capped per task and in
//! all, slow followers of a flooding task do not grow the daemon's memory, and the queue is
//! capped (`max_queued`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::World;

const TOKEN: &str = "a-test-token-of-enough-length";
const MAX_CONNECTIONS: usize = 4;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon on the shared engine with a TCP listener and small `[api]` bounds.
fn daemon(world: World) -> (Daemon, u16) {
    let token = world.tmp.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = free_port();
    let tables = format!(
        "[tcp]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = {:?}\n[api]\nmax_connections = {MAX_CONNECTIONS}\nheader_timeout = \"5s\"\nbody_timeout = \"2s\"\nmax_followers = 3\nmax_followers_per_task = 2\n",
        token.display().to_string()
    );
    (
        Daemon::start(world, None, "sweep = \"owned\"", &tables),
        port,
    )
}

/// Everything the server sends until it closes (or `within` passes: then what came, and false).
fn read_until_closed<S: Read>(s: &mut S, within: Duration) -> (String, bool) {
    let until = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

fn tcp(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s
}

fn health_over_tcp(port: u16) -> String {
    let mut s = tcp(port);
    // Over the limit the server answers at accept, before any request: take that answer first
    // (writing into a socket it already closed could reset it and lose the answer).
    let (early, closed) = read_until_closed(&mut s, Duration::from_millis(500));
    if closed || !early.is_empty() {
        return early;
    }
    // A connection over the limit is answered 503 and closed without reading the request, so
    // the write may meet a closed socket (EPIPE): what the server sent is still there to read.
    let _ = write!(
        s,
        "GET /v1/health HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\nconnection: close\r\n\r\n"
    );
    read_until_closed(&mut s, Duration::from_secs(10)).0
}

#[test]
fn tcp_connections_are_capped_before_auth_and_idle_or_slow_ones_are_closed() {
    let (d, port) = daemon(World::new());
    assert!(health_over_tcp(port).starts_with("HTTP/1.1 200"));
    // The server gives that connection's slot back when its task ends, a moment after the
    // client saw the close; opened before that, the last idle connection would be the one over
    // the limit and the extra one below would get the freed slot.
    std::thread::sleep(Duration::from_secs(1));
    let mut idle: Vec<TcpStream> = (0..MAX_CONNECTIONS).map(|_| tcp(port)).collect();
    std::thread::sleep(Duration::from_millis(300));
    for (i, s) in idle.iter_mut().enumerate() {
        let (text, closed) = read_until_closed(s, Duration::from_millis(200));
        assert!(
            !closed && text.is_empty(),
            "idle connection {i} was answered: {text:?}"
        );
    }
    // One more, even a legitimate one with the token, is answered 503 and closed at once.
    let opened = Instant::now();
    let mut extra = tcp(port);
    let (text, closed) = read_until_closed(&mut extra, Duration::from_secs(3));
    assert!(closed, "the connection over the limit was kept open");
    assert!(text.starts_with("HTTP/1.1 503"), "{text:?}");
    assert!(
        opened.elapsed() < HEADER_TIMEOUT,
        "refused at once, not timed out"
    );
    let busy = health_over_tcp(port);
    assert!(busy.starts_with("HTTP/1.1 503"), "{busy}");
    // The idle ones are closed by the server after header_timeout, freeing their slots.
    for s in &mut idle {
        let (text, closed) = read_until_closed(s, HEADER_TIMEOUT + Duration::from_secs(3));
        assert!(closed, "an idle connection was kept past header_timeout");
        assert!(!text.contains("200"), "{text}");
    }
    assert!(health_over_tcp(port).starts_with("HTTP/1.1 200"));
    // Slowloris: headers trickled a byte at a time never complete a request; the connection is
    // closed once header_timeout has passed since it opened, though bytes keep coming.
    let mut slow = tcp(port);
    let started = Instant::now();
    let request =
        b"GET /v1/health HTTP/1.1\r\nhost: x\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut closed_after = None;
    for b in request.iter().cycle().take(200) {
        if slow.write_all(&[*b]).is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 512];
        if let Ok(0) = slow.read(&mut buf) {
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("a slowloris connection was kept open for 20 s");
    assert!(
        closed_after < HEADER_TIMEOUT + Duration::from_secs(3),
        "closed after {closed_after:?}"
    );
    // A webhook (no bearer token; the signature is checked over the body) with a trickled body
    // is answered 408 after body_timeout.
    let mut hook = tcp(port);
    write!(hook, "POST /v1/hooks/github HTTP/1.1\r\nhost: x\r\nx-github-event: issues\r\nx-hub-signature-256: sha256=00\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{").unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    while started.elapsed() < Duration::from_secs(10) {
        let _ = hook.write_all(b" ");
        let mut buf = [0u8; 4096];
        match hook.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.push_str(&String::from_utf8_lossy(&buf[..n]));
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("api.body_timeout"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let metrics = d.cli(&["status"]).map(|_| ());
    assert!(metrics.is_some());
}

#[test]
fn the_unix_socket_is_capped_too() {
    let (d, _) = daemon(World::new());
    let idle: Vec<UnixStream> = (0..MAX_CONNECTIONS)
        .map(|_| UnixStream::connect(&d.socket).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = UnixStream::connect(&d.socket).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let (text, closed) = read_until_closed(&mut extra, Duration::from_secs(1));
    assert!(closed && text.starts_with("HTTP/1.1 503"), "{text:?}");
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        d.cli(&["status"]).is_some(),
        "served once the slots are free"
    );
    let metrics = get(&d, "/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("airlock_api_connections_refused_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
}

/// `GET path` over the unix socket; the whole response.
fn get(d: &Daemon, path: &str) -> String {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    read_until_closed(&mut s, Duration::from_secs(10)).0
}

/// A follow stream that is opened and never read.
fn follow(d: &Daemon, id: &str) -> (UnixStream, String) {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    write!(
        s,
        "GET /v1/tasks/{id}/events?follow=1 HTTP/1.1\r\nhost: x\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    (s, String::from_utf8_lossy(&head).into_owned())
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Followers are bounded per task and in all; slow followers (never reading) of a task whose
/// gate floods its output do not make the daemon buffer for them: its peak RSS stays bounded.
#[test]
fn followers_are_bounded_and_slow_ones_cost_the_daemon_nothing() {
    let world = World::new();
    let (d, _) = daemon(world);
    let flood =
        "i=0; while :; do echo \"f$i.py:1:1: E302 $(printf '%0500d' $i)\"; i=$((i+1)); done";
    let spec = d.world.spec(
        "L1",
        &["true"],
        &format!(
            "[gate]\ncommands = [[\"sh\", \"-c\", {}]]\n[limits]\ntimeout = \"25s\"\nattempts = 1\n",
            common::toml_str(flood)
        ),
    );
    let before = vm_hwm_kib(d.pid());
    let id = d.submit(&spec);
    let (a, head_a) = follow(&d, &id);
    let (b, head_b) = follow(&d, &id);
    assert_eq!(
        (head_a.as_str(), head_b.as_str()),
        ("HTTP/1.1 200", "HTTP/1.1 200")
    );
    let (_, third) = follow(&d, &id);
    assert_eq!(third, "HTTP/1.1 503", "a third follower of one task");
    let other = d.submit(&d.world.spec("L1", &["sleep", "60"], ""));
    let (c, head_c) = follow(&d, &other);
    assert_eq!(head_c, "HTTP/1.1 200");
    let (_, fourth) = follow(&d, &other);
    assert_eq!(fourth, "HTTP/1.1 503", "over max_followers in all");
    let task = d.wait_final(&id, Duration::from_secs(120));
    assert_eq!(task["reason"], "timeout", "{task}");
    let after = vm_hwm_kib(d.pid());
    eprintln!("daemon VmHWM: {before} KiB before the flood, {after} KiB after");
    // The flood (hundreds of MB of gate output) went through the daemon while two followers
    // never read: the peak grew by less than 64 MiB.
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "VmHWM grew from {before} KiB to {after} KiB"
    );
    // A follower gone gives its slot back.
    drop(a);
    drop(c);
    std::thread::sleep(Duration::from_millis(500));
    let (_, again) = follow(&d, &other);
    assert_eq!(again, "HTTP/1.1 200", "a slot freed by a closed follower");
    let events = get(&d, &format!("/v1/tasks/{id}/events"));
    assert!(events.contains("\"event\":\"finished\""), "{events}");
    drop(b);
    let _ = d.cli(&["cancel", &other]);
}

/// `queued` and `running` from `GET /v1/health`.
fn queue_counts(d: &Daemon) -> (i64, i64) {
    let reply = get(d, "/v1/health");
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_default();
    (
        v["queued"].as_i64().unwrap_or(-1),
        v["running"].as_i64().unwrap_or(-1),
    )
}

/// `airlock submit` of `spec`: (exit code, stdout, stderr).
fn submit_raw(d: &Daemon, spec: &std::path::Path) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
        .arg("submit")
        .arg(spec)
        .arg("--socket")
        .arg(&d.socket)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The queue is bounded too (`[api] max_queued`): with the workers busy and two tasks queued, one
/// more submission is refused with 503 naming the key and stores nothing; a slot freed (a
/// queued task cancelled) takes submissions again.
#[test]
fn submissions_beyond_max_queued_are_refused_and_store_nothing() {
    let world = World::new();
    let d = Daemon::start(world, None, "sweep = \"owned\"", "[api]\nmax_queued = 2\n");
    let sleeper = || d.world.spec("L1", &["sleep", "120"], "");
    // The default concurrency is 2: two tasks run, then two wait.
    let mut ids: Vec<String> = (0..2).map(|_| d.submit(&sleeper())).collect();
    let until = Instant::now() + Duration::from_secs(90);
    while queue_counts(&d) != (0, 2) {
        assert!(
            Instant::now() < until,
            "{:?}\n{}",
            queue_counts(&d),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    ids.extend((0..2).map(|_| d.submit(&sleeper())));
    assert_eq!(queue_counts(&d), (2, 2));
    let (code, _, stderr) = submit_raw(&d, &sleeper());
    assert_ne!(code, Some(0), "a submission beyond max_queued was taken");
    assert!(
        stderr.contains("[api] max_queued = 2") && stderr.contains("2 tasks are queued"),
        "{stderr}"
    );
    assert_eq!(queue_counts(&d), (2, 2), "the refused task was stored");
    // A queued task cancelled frees its slot.
    let _ = d.cli(&["cancel", &ids[3]]);
    assert_eq!(
        d.wait_final(&ids[3], Duration::from_secs(30))["state"],
        "cancelled"
    );
    let (code, id, stderr) = submit_raw(&d, &sleeper());
    assert_eq!(code, Some(0), "{stderr}");
    ids.push(id);
    for id in &ids {
        let _ = d.cli(&["cancel", id]);
    }
    for id in ids.iter().filter(|id| **id != ids[3]) {
        let end = d.wait_final(id, Duration::from_secs(60));
        assert_eq!(end["state"], "cancelled", "{end}");
    }
}
