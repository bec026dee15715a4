//! The runner daemon as a real process against the real engine: the concurrency limit, crash
//! recovery after SIGKILL, cancel, SIGTERM shutdown (cancel and drain), the socket's mode, the
//! TCP token, malformed submissions, notify hooks and the fail-closed config.
//!
//! Each test runs its own daemon with its own temp dir, socket and store. The engine may be
//! shared with other airlock runs, so the daemons here sweep with `recovery.sweep = "owned"`
//! and every container count is filtered by the daemon's session label.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{json, Value};

use common::api::{exchange, kind_row, ApiDaemon};
use common::{free_port, managed_containers, World};

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn twenty_tasks_at_concurrency_two_all_end_and_never_exceed_two_containers() {
    let d = Daemon::start(2, "[notify]\ncommand = [\"/bin/false\"]\nwebhook = \"http://127.0.0.1:9/never\"\ntimeout = \"2s\"\n");
    let ids: Vec<String> = (0..20)
        .map(|_| d.submit(&["sh", "-c", "sleep 1"]))
        .collect();
    let sampler = Sampler::start(&d.session());
    let ends: Vec<Value> = ids.iter().map(|id| d.wait_final(id, 120)).collect();
    let (max, samples) = sampler.stop();
    for (id, t) in ids.iter().zip(&ends) {
        assert_eq!(t["state"], "green", "{id}: {t}\n{}", d.log());
    }
    assert!(samples >= 20, "only {samples} samples");
    assert!(max <= 2, "{max} containers of the session existed at once");
    assert!(max >= 1, "the sampler never saw a container");
    assert_fifo(&ends);
    let metrics = d.text("/metrics");
    for line in [
        "airlock_tasks_finished_total{state=\"green\"} 20",
        "airlock_queue_depth 0",
        "airlock_tasks_running 0",
        "airlock_task_duration_seconds_count 20",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing `{line}` in\n{metrics}"
        );
    }
    let out = d.cli(&["logs", "-f", &ids[19]]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("agent_finished"));
}

#[test]
fn sigkill_mid_task_then_restart_leaves_no_orphan_and_loses_nothing() {
    let mut d = Daemon::start(2, "");
    let long: Vec<String> = (0..2)
        .map(|_| d.submit(&["sh", "-c", "echo started; sleep 60"]))
        .collect();
    let queued: Vec<String> = (0..2).map(|_| d.submit(&["sh", "-c", "sleep 1"])).collect();
    for id in &long {
        d.wait_container(id);
    }
    let old_session = d.session();
    d.signal(Signal::SIGKILL);
    d.wait_exit(10);
    assert_eq!(
        d.session_containers(&old_session).len(),
        2,
        "the killed daemon's containers should still be there"
    );
    d.spawn();
    assert_eq!(
        d.session_containers(&old_session),
        Vec::<String>::new(),
        "orphans of the killed daemon remain"
    );
    for id in &long {
        let t = d.wait_final(id, 30);
        assert_eq!(
            (t["state"].as_str(), t["reason"].as_str()),
            (Some("error"), Some("runner_restart")),
            "{t}"
        );
        let summary = d.artifact(id, "summary.json");
        assert!(summary.contains("runner_restart"), "{summary}");
        assert_no_work_dir(&d, id);
    }
    for id in &queued {
        assert_eq!(d.wait_final(id, 60)["state"], "green", "{}", d.log());
    }
    let (_, list) = d.get("/v1/tasks");
    assert_eq!(list["tasks"].as_array().unwrap().len(), 4, "{list}");
    let events = d.events(&long[0]);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "container_finished" || e["event"] == "attempt_started"),
        "runner events were stored: {events:?}"
    );
    assert!(events
        .iter()
        .any(|e| e["event"] == "done" && e["reason"] == "runner_restart"));
}

#[test]
fn requeue_interrupted_runs_a_killed_task_once_more() {
    let mut d = Daemon::start(1, "");
    let config = std::fs::read_to_string(&d.config).unwrap(); // it ends in [recovery]
    std::fs::write(&d.config, config + "requeue_interrupted = true\n").unwrap();
    let id = d.submit(&["sh", "-c", "sleep 2"]);
    d.wait_container(&id);
    d.signal(Signal::SIGKILL);
    d.wait_exit(10);
    d.spawn();
    let t = d.wait_final(&id, 60);
    assert_eq!(
        (t["state"].as_str(), t["restarts"].as_i64()),
        (Some("green"), Some(1)),
        "{t}"
    );
    let events = d.events(&id);
    assert!(
        events.iter().any(|e| e["event"] == "requeued"),
        "{events:?}"
    );
    assert_eq!(events.iter().filter(|e| e["event"] == "started").count(), 2);
}

#[test]
fn cancel_stops_a_running_task_within_the_grace_and_a_queued_one_at_once() {
    let d = Daemon::start(1, &notify_hooks_into_dir());
    let hook = WebhookSink::start(d.notify_port());
    let running = d.submit(&["sh", "-c", "echo started; sleep 60"]);
    let queued = d.submit(&["sh", "-c", "sleep 1"]);
    d.wait_container(&running);
    let out = d.cli(&["cancel", &queued]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(d.task(&queued)["state"], "cancelled");
    let asked = Instant::now();
    let out = d.cli(&["cancel", &running, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("cancel_requested"));
    while !managed_containers(Some(&format!("airlock.task={running}"))).is_empty() {
        assert!(
            asked.elapsed() < Duration::from_secs(6),
            "containers outlived the grace"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = d.wait_final(&running, 30);
    assert_eq!(
        (t["state"].as_str(), t["reason"].as_str()),
        (Some("cancelled"), Some("cancelled")),
        "{t}"
    );
    assert!(
        d.artifact(&running, "logs/agent-1.log").contains("started"),
        "artifacts kept"
    );
    assert_no_work_dir(&d, &running);
    assert_eq!(
        d.cli(&["cancel", &running]).status.code(),
        Some(1),
        "cancelling a finished task"
    );
    let bundle = d.world().tmp.path().join("bundle.tar.gz");
    let out = d.cli(&["artifacts", &running, "-o", bundle.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let listing = common::sh(
        d.world().tmp.path(),
        &format!("tar tzf {}", bundle.display()),
    );
    assert!(listing.contains("summary.json"), "{listing}");
    for id in [&running, &queued] {
        let notified = wait_for_file(&d.dir.join(format!("notify-{id}.json")));
        assert!(notified.contains("\"cancelled\""), "{notified}");
    }
    let posts = hook.received(2);
    assert!(
        posts.iter().all(|p| p.contains("\"state\":\"cancelled\"")),
        "{posts:?}"
    );
}

#[test]
fn sigterm_cancels_running_tasks_removes_containers_and_keeps_the_queue() {
    let mut d = Daemon::start(2, "[shutdown]\nmode = \"cancel\"\ntimeout = \"30s\"\n");
    let running: Vec<String> = (0..2)
        .map(|_| d.submit(&["sh", "-c", "sleep 60"]))
        .collect();
    let queued = d.submit(&["sh", "-c", "sleep 1"]);
    for id in &running {
        d.wait_container(id);
    }
    let session = d.session();
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(15);
    assert!(status.success(), "{status:?}\n{}", d.log());
    assert_eq!(d.session_containers(&session), Vec::<String>::new());
    assert!(!d.socket.exists(), "the socket is removed at exit");
    d.spawn();
    for id in &running {
        assert_eq!(d.task(id)["state"], "cancelled");
    }
    assert_eq!(
        d.wait_final(&queued, 60)["state"],
        "green",
        "the queued task runs after the restart"
    );
}

#[test]
fn sigterm_drain_lets_running_tasks_finish_and_refuses_new_ones() {
    let mut d = Daemon::start(1, "[shutdown]\nmode = \"drain\"\ntimeout = \"30s\"\n");
    let id = d.submit(&["sh", "-c", "sleep 3"]);
    d.wait_container(&id);
    d.signal(Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    let (code, body) = d.post("/v1/tasks", &d.spec_text(&["true"]));
    assert_eq!(code, 503, "{body}");
    let status = d.wait_exit(20);
    assert!(status.success(), "{status:?}\n{}", d.log());
    d.spawn();
    assert_eq!(d.task(&id)["state"], "green");
    let (_, list) = d.get("/v1/tasks");
    assert_eq!(
        list["tasks"].as_array().unwrap().len(),
        1,
        "the refused submission was not stored"
    );
}

#[test]
fn the_socket_is_mode_0660_and_a_second_daemon_is_refused() {
    use std::os::unix::fs::MetadataExt;
    let d = Daemon::start(1, "socket_group = \"daemon\"\n");
    let meta = std::fs::metadata(&d.socket).unwrap();
    let mode = meta.permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "socket mode {mode:o}");
    let group = nix::unistd::Group::from_name("daemon").unwrap().unwrap();
    assert_eq!(meta.gid(), group.gid.as_raw(), "socket_group applied");
    let out = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["daemon", "--config"])
        .arg(&d.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another airlock daemon"),
        "{out:?}"
    );
    let out = d.cli(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("no tasks"));
}

#[test]
fn tcp_needs_the_right_bearer_token() {
    let port = free_port();
    let token = "t0ken-for-the-daemon-test-0123456789";
    let d = Daemon::start_with(
        1,
        &format!("[tcp]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"TOKEN\"\n"),
        Some(token),
    );
    let tcp = |method: &str, path: &str, auth: Option<&str>, body: &str| {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let headers: Vec<(&str, String)> = auth
            .map(|a| vec![("Authorization", a.to_string())])
            .unwrap_or_default();
        exchange(s, method, path, &headers, body.as_bytes()).0
    };
    assert_eq!(tcp("GET", "/v1/health", None, ""), 401);
    assert_eq!(
        tcp(
            "GET",
            "/v1/health",
            Some("Bearer wrong-token-wrong-token-123"),
            ""
        ),
        401
    );
    assert_eq!(
        tcp("GET", "/v1/health", Some(&format!("Bearer {token}x")), ""),
        401
    );
    assert_eq!(
        tcp("GET", "/v1/health", Some(&format!("Basic {token}")), ""),
        401
    );
    assert_eq!(tcp("GET", "/metrics", None, ""), 401);
    assert_eq!(
        tcp(
            "POST",
            "/v1/tasks",
            Some("Bearer nope"),
            &d.spec_text(&["true"])
        ),
        401
    );
    assert_eq!(
        tcp("GET", "/v1/health", Some(&format!("Bearer {token}")), ""),
        200
    );
    assert_eq!(
        tcp("GET", "/v1/tasks", Some(&format!("Bearer {token}")), ""),
        200
    );
    let (_, list) = d.get("/v1/tasks");
    assert_eq!(list["tasks"], json!([]), "nothing was stored");
}

#[test]
fn malformed_submissions_are_400_naming_the_field_and_nothing_is_stored() {
    let d = Daemon::start(1, "");
    let good = d.spec_text(&["true"]);
    let cases = [
        (good.replace("level = \"L1\"", "level = \"L9\""), "level"),
        (
            good.replace("[agent]", "[agent]\nimage_typo = \"x\""),
            "agent.image_typo",
        ),
        (
            good.replace("text = \"do the thing\"", "file = \"/etc/shadow\""),
            "issue.file",
        ),
        (
            good.replace(&d.world().repo.display().to_string(), "src.git"),
            "repo.url",
        ),
        (
            good.replace("command = [\"true\"]", "command = []"),
            "agent.command",
        ),
    ];
    for (text, field) in &cases {
        let (code, body) = d.post("/v1/tasks?name=task.toml", text);
        assert_eq!(code, 400, "{field}: {body}");
        assert_eq!(body["field"], *field, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains(&format!("field `{field}`")),
            "{body}"
        );
    }
    let (code, body) = d.post("/v1/tasks", "this is [not toml");
    assert_eq!(code, 400, "{body}");
    let (code, _) = d.post("/v1/tasks", &"x".repeat(2 << 20));
    assert_eq!(code, 413);
    let bad = d.world().write_spec(&cases[0].0);
    let out = d.cli(&["submit", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("field `level`"),
        "{out:?}"
    );
    let (_, list) = d.get("/v1/tasks");
    assert_eq!(list["tasks"], json!([]), "nothing was stored");
    assert_eq!(d.get("/v1/tasks/20990101-000000-abcdef").0, 404);
    assert_eq!(d.get("/v1/tasks/..%2F..%2Fetc").0, 404);
    assert_eq!(d.get("/v1/nope").0, 404);
}

#[test]
fn a_bad_config_or_bad_policies_stop_the_daemon_naming_file_and_field() {
    let world = World::new();
    let cfg = world.tmp.path().join("airlock.toml");
    let run = |text: &str| {
        std::fs::write(&cfg, text).unwrap();
        Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(["daemon", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let out = run("concurrency = 2\nsokcet = \"/tmp/x.sock\"\n");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&cfg.display().to_string()) && err.contains("field `sokcet`"),
        "{err}"
    );
    let out = run("concurrency = 0\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("field `concurrency`"),
        "{out:?}"
    );
    let state = world.tmp.path().join("state");
    std::fs::write(world.policies.join("L1.toml"), "garbage = true\n").unwrap();
    let text = format!(
        "state_dir = {:?}\npolicies_dir = {:?}\nsocket = {:?}\n",
        state,
        world.policies,
        world.tmp.path().join("s.sock")
    );
    let out = run(&text);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("L1.toml") && err.contains("does not start"),
        "{err}"
    );
    assert!(!world.tmp.path().join("s.sock").exists());
}

/// An artifacts dir that others can write stops the daemon at start (exit 2), naming the path,
/// its mode and the fix, before it listens (#10 item 7).
#[test]
fn an_artifacts_dir_others_can_write_stops_the_daemon() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::new();
    let art = world.tmp.path().join("shared-artifacts");
    std::fs::create_dir(&art).unwrap();
    std::fs::set_permissions(&art, std::fs::Permissions::from_mode(0o777)).unwrap();
    let cfg = world.tmp.path().join("airlock.toml");
    let sock = world.tmp.path().join("s.sock");
    let text = format!(
        "state_dir = {:?}\nartifacts_dir = {:?}\npolicies_dir = {:?}\nsocket = {:?}\n",
        world.tmp.path().join("state"),
        art,
        world.policies,
        sock
    );
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["daemon", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for part in [art.display().to_string().as_str(), "0777", "chmod go-w"] {
        assert!(err.contains(part), "no `{part}` in: {err}");
    }
    assert!(!sock.exists(), "the daemon listened");
}

// ---------------------------------------------------------------------------------------------
// The harness

/// One daemon process with its own world (repo, policies), dirs and socket.
type Daemon = ApiDaemon;

impl Daemon {
    fn start(concurrency: usize, extra: &str) -> Daemon {
        Daemon::start_with(concurrency, extra, None)
    }

    /// `extra` goes between the top-level keys and `[recovery]`; `TOKEN` in it becomes a
    /// token file, `NOTIFY_DIR` the daemon's dir.
    fn start_with(concurrency: usize, extra: &str, token: Option<&str>) -> Daemon {
        Daemon::start_in(World::new(), concurrency, extra, token)
    }

    /// As [`Daemon::start_with`], in a world the test has prepared (policies edited, ...).
    fn start_in(world: World, concurrency: usize, extra: &str, token: Option<&str>) -> Daemon {
        let mut d = Daemon::owning(world);
        let mut extra = extra.replace("NOTIFY_DIR", &d.dir.display().to_string());
        if let Some(t) = token {
            let file = common::write_0600(&d.dir.join("token"), &format!("{t}\n"));
            extra = extra.replace("\"TOKEN\"", &format!("{:?}", file.display().to_string()));
        }
        let text = format!(
            "{}concurrency = {concurrency}\n{extra}\n[recovery]\nsweep = \"owned\"\n",
            d.dirs_toml(d.world())
        );
        std::fs::write(&d.config, text).unwrap();
        d.spawn();
        d
    }

    fn spec_text(&self, argv: &[&str]) -> String {
        std::fs::read_to_string(self.world().spec("L1", argv, "")).unwrap()
    }

    /// Submit over the API; the id.
    fn submit(&self, argv: &[&str]) -> String {
        self.submit_toml(&self.spec_text(argv))
    }

    /// Wait until the task's agent container is running.
    fn wait_container(&self, id: &str) {
        let until = Instant::now() + Duration::from_secs(60);
        while running_containers(&format!("airlock.task={id}")).is_empty() {
            assert!(
                Instant::now() < until,
                "{id} never got a container:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn session_containers(&self, session: &str) -> Vec<String> {
        managed_containers(Some(&format!("airlock.session={session}")))
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(args)
            .env("AIRLOCK_SOCKET", &self.socket)
            .output()
            .unwrap()
    }

    /// The port of the webhook in [`notify_hooks_into_dir`].
    fn notify_port(&self) -> u16 {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let url = text
            .lines()
            .find_map(|l| l.strip_prefix("webhook = \"http://127.0.0.1:"))
            .unwrap();
        url.split('/').next().unwrap().parse().unwrap()
    }
}

/// Containers running now (not merely created) with `label`.
fn running_containers(label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            "label=airlock.managed=true",
            "--filter",
            &format!("label={label}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Samples `docker ps -a` for the session's containers on a thread; the most seen at once.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(usize, usize)>,
}

impl Sampler {
    fn start(session: &str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, label) = (stop.clone(), format!("airlock.session={session}"));
        let handle = std::thread::spawn(move || {
            let (mut max, mut samples) = (0, 0);
            while !flag.load(Ordering::SeqCst) {
                max = max.max(managed_containers(Some(&label)).len());
                samples += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            (max, samples)
        });
        Sampler { stop, handle }
    }

    fn stop(self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }
}

/// Tasks start in the order they were submitted.
fn assert_fifo(tasks: &[Value]) {
    let started: Vec<&str> = tasks
        .iter()
        .map(|t| t["started_at"].as_str().unwrap())
        .collect();
    let mut sorted = started.clone();
    sorted.sort();
    assert_eq!(started, sorted, "not FIFO");
}

fn assert_no_work_dir(d: &Daemon, id: &str) {
    let work = d.world().state.join("tasks").join(id);
    assert!(!work.exists(), "work dir {} remains", work.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&work.display().to_string()),
        "a mount of {id} remains"
    );
}

/// A notify command writing each summary to `<daemon dir>/notify-<id>.json`, and a webhook.
fn notify_hooks_into_dir() -> String {
    let port = free_port();
    format!(
        "[notify]\ncommand = [\"/bin/sh\", \"-c\", \"cat > NOTIFY_DIR/notify-$AIRLOCK_TASK_ID.json\"]\nwebhook = \"http://127.0.0.1:{port}/hook\"\ntimeout = \"5s\"\n"
    )
}

fn wait_for_file(p: &Path) -> String {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::read_to_string(p) {
            Ok(t) if t.ends_with('}') || t.ends_with("}\n") => return t,
            _ => assert!(Instant::now() < until, "{} never written", p.display()),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A webhook receiver on loopback: answers 200 and keeps each request's body.
struct WebhookSink {
    bodies: std::sync::mpsc::Receiver<String>,
}

impl WebhookSink {
    fn start(port: u16) -> WebhookSink {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(16) {
                let Ok(mut s) = stream else { return };
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let body = read_request_body(&mut s);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                if tx.send(body).is_err() {
                    return;
                }
            }
        });
        WebhookSink { bodies: rx }
    }

    fn received(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                self.bodies
                    .recv_timeout(Duration::from_secs(10))
                    .expect("webhook not called")
            })
            .collect()
    }
}

fn read_request_body(s: &mut std::net::TcpStream) -> String {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap_or(0));
        if raw.len() >= split + 4 + len {
            return String::from_utf8_lossy(&raw[split + 4..split + 4 + len]).into_owned();
        }
    }
    String::from_utf8_lossy(&raw).into_owned()
}

/// The trigger of an API submission is fixed by the listener: with `api = "L1"` in
/// operator.toml, a client claiming `?source=schedule` (or `airlock submit --source`) is refused
/// with 400 naming the accepted ways and nothing is stored; without the claim, an L4 spec is
/// refused by `[sources] api`, an untrusted author is capped, and an L1 spec runs green.
#[test]
fn the_plain_api_is_source_api_whatever_the_request_claims() {
    let world = World::new();
    let op = world.policies.join("operator.toml");
    let text = std::fs::read_to_string(&op).unwrap();
    assert!(text.contains("api = \"L3\""), "{text}");
    std::fs::write(&op, text.replace("api = \"L3\"", "api = \"L1\"")).unwrap();
    let d = Daemon::start_in(world, 2, "author_trusted = true", None);
    let gate = "[gate]\ncommands = [[\"true\"]]";
    let l4 = std::fs::read_to_string(d.world().spec("L4", &["true"], gate)).unwrap();
    let l1 = std::fs::read_to_string(d.world().spec("L1", &["true"], gate)).unwrap();
    let submit =
        |text: &str, query: &str| d.post(&format!("/v1/tasks?name=task.toml{query}"), text);
    for claim in ["schedule", "webhook:issue_label", "api", "telepathy"] {
        let (code, body) = submit(&l4, &format!("&source={claim}"));
        assert_eq!(code, 400, "?source={claim}: {body}");
        assert_eq!(body["field"], "source", "{body}");
        let msg = body["error"].as_str().unwrap();
        assert!(
            msg.contains("/v1/hooks/github") && msg.contains("[[schedule]]"),
            "{msg}"
        );
    }
    let (_, list) = d.get("/v1/tasks");
    assert_eq!(list["tasks"].as_array().unwrap().len(), 0, "stored: {list}");
    let spec = d.world().spec("L4", &["true"], gate);
    let out = d.cli(&["submit", spec.to_str().unwrap(), "--source", "schedule"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/v1/hooks/"),
        "{out:?}"
    );
    let id = |r: (u16, Value)| {
        assert_eq!(r.0, 201, "{}", r.1);
        r.1["id"].as_str().unwrap().to_string()
    };
    let plain_l4 = id(submit(&l4, ""));
    let untrusted = id(submit(&l1, "&author=untrusted"));
    let plain_l1 = id(submit(&l1, ""));
    let end = |id: &str| {
        let t = d.wait_final(id, 60);
        let s = |k: &str| t[k].as_str().unwrap_or("").to_string();
        (s("state"), s("reason"))
    };
    assert_eq!(
        end(&plain_l4),
        ("refused".into(), "level_above_source".into())
    );
    assert_eq!(end(&plain_l1).0, "green");
    assert_eq!(end(&untrusted).0, "green", "L1 is within untrusted_max");
    let cli_ok = d.cli(&[
        "submit",
        d.world().spec("L1", &["true"], gate).to_str().unwrap(),
    ]);
    assert_eq!(cli_ok.status.code(), Some(0), "{cli_ok:?}");
}

/// Issue 10 item 4: an API client may clone only what operator.toml names. The state dir (other
/// tasks' mirrors) is refused even under an allowed dir; paths outside `local_dirs` are refused
/// without the daemon saying anything about them; dot segments are a 400.
#[test]
fn api_tasks_cannot_clone_the_state_dir_or_host_paths_outside_local_dirs() {
    let d = Daemon::start(1, "");
    let first = d.submit(&["true"]);
    assert_eq!(d.wait_final(&first, 60)["state"], "green");
    let mirror = std::fs::read_dir(d.world().state.join("cache/repos"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "git"))
        .unwrap();
    let good = d.spec_text(&["true"]);
    let repo = d.world().repo.display().to_string();
    let with_url = |url: &str| good.replace(&repo, url);
    let refused = |url: &str| {
        let (code, body) = d.post("/v1/tasks?name=task.toml", &with_url(url));
        assert_eq!(code, 201, "{url}: {body}");
        let t = d.wait_final(body["id"].as_str().unwrap(), 60);
        assert_eq!(
            (t["state"].as_str(), t["reason"].as_str()),
            (Some("refused"), Some("repo_not_allowed")),
            "{url}: {t}"
        );
        t
    };
    let t = refused(&mirror.display().to_string());
    assert!(t.to_string().contains("state dir"), "{t}");
    for url in ["/etc/no-such-repo.git", "/root", "file:///var/lib"] {
        let t = refused(url).to_string();
        assert!(
            !t.contains("No such file") && !t.contains("os error"),
            "{url}: {t}"
        );
    }
    let dotted = format!("{}/../{}", d.world().tmp.path().display(), "x.git");
    let (code, body) = d.post("/v1/tasks?name=task.toml", &with_url(&dotted));
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["field"], "repo.url", "{body}");
}

/// A spec for the stats test: top-level `kind`, an L1 agent, optional extra tables.
fn kind_spec(d: &Daemon, kind: &str, argv: &[&str], tables: &str) -> String {
    format!(
        "title = \"stats {kind}\"\nlevel = \"L1\"\nkind = \"{kind}\"\n[repo]\nurl = {}\nbase = \"main\"\n[issue]\ntext = \"x\"\n[agent]\nimage = \"airlock/sandbox-test:latest\"\ncommand = {}\n{tables}\n",
        common::toml_str(&d.world().repo.display().to_string()),
        common::toml_argv(argv)
    )
}

#[test]
fn stats_count_a_run_of_mixed_outcomes_per_kind() {
    let d = Daemon::start(2, "");
    let gate = "[gate]\ncommands = [[\"true\"]]\n";
    let runs: [(&str, &[&str], &str, &str); 6] = [
        ("docs", &["sh", "-c", "echo more >> README.md"], "", "green"),
        ("docs", &["sh", "-c", "exit 3"], "", "needs_human"),
        ("tests", &["sh", "-c", "echo k > id.key"], "", "blocked"),
        (
            "bugfix",
            &["sh", "-c", "rm tests/test_app.py"],
            gate,
            "needs_human",
        ),
        (
            "bugfix",
            &["sh", "-c", "echo x >> README.md"],
            "[scope]\nallowed = [\"src/**\"]\n",
            "needs_human",
        ),
        (
            "bugfix",
            &["true"],
            "[scope]\nmax_files_changed = 999\n",
            "refused",
        ),
    ];
    for (kind, argv, tables, want) in runs {
        let (code, body) = d.post(
            "/v1/tasks?name=task.toml",
            &kind_spec(&d, kind, argv, tables),
        );
        assert_eq!(code, 201, "{body}");
        let t = d.wait_final(body["id"].as_str().unwrap(), 120);
        assert_eq!(t["state"], want, "{kind} {argv:?}: {t}\n{}", d.log());
    }
    let (code, stats) = d.get("/v1/stats");
    assert_eq!(code, 200, "{stats}");
    let kind = |k: &str| kind_row(&stats, k);
    let docs = kind("docs");
    assert_eq!(
        (
            docs["tasks"].as_u64(),
            docs["green"].as_u64(),
            docs["needs_human"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{docs}"
    );
    assert_eq!(docs["median_attempts"], 1.0, "{docs}");
    let tests = kind("tests");
    assert_eq!(
        (tests["blocked"].as_u64(), tests["scope_stops"].as_u64()),
        (Some(1), Some(1)),
        "{tests}"
    );
    let bugfix = kind("bugfix");
    assert_eq!(
        (
            bugfix["tasks"].as_u64(),
            bugfix["needs_human"].as_u64(),
            bugfix["other"].as_u64(),
            bugfix["red_flags"].as_u64(),
            bugfix["scope_stops"].as_u64()
        ),
        (Some(3), Some(2), Some(1), Some(1), Some(1)),
        "{bugfix}"
    );
    assert!(
        bugfix["median_duration_s"].as_f64().unwrap() > 0.0,
        "{bugfix}"
    );
    assert_eq!(
        (
            bugfix["merged"].as_u64(),
            bugfix["closed_unmerged"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let metrics = d.text("/metrics");
    for line in [
        "airlock_kind_tasks_total{kind=\"docs\",state=\"green\"} 1",
        "airlock_kind_tasks_total{kind=\"bugfix\",state=\"needs_human\"} 2",
        "airlock_kind_red_flag_tasks_total{kind=\"bugfix\"} 1",
        "airlock_kind_scope_stops_total{kind=\"tests\"} 1",
        "airlock_kind_median_attempts{kind=\"docs\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing `{line}` in\n{metrics}"
        );
    }
    let out = d.cli(&["stats", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli, stats);
    let out = d.cli(&["stats"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("kind ") && text.lines().any(|l| l.starts_with("bugfix ")),
        "{text}"
    );
}
