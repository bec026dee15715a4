//! The daemon as the API tests drive it: a process started from a config the test writes,
//! waited for until `/v1/health` answers, spoken to in raw HTTP/1.1 over its unix socket, and
//! cleaned up on drop (killed, its sessions' containers removed, mounts under its world undone).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{json, Value};

use super::{managed_containers, World};

/// Every final task state; `queued` and `running` are the others.
pub const FINAL: [&str; 6] = [
    "green",
    "needs_human",
    "blocked",
    "refused",
    "cancelled",
    "error",
];

/// One daemon of a test: its dir (`<world>/daemon`), config, socket and log. Not running until
/// [`ApiDaemon::spawn`]; each start's `/v1/health` session is kept for the cleanup. A test file
/// adds its own `start` (the config it writes) and helpers in an `impl ApiDaemon` of its own.
pub struct ApiDaemon {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub artifacts: PathBuf,
    /// The port of the `[tcp]` listener, when the test's config has one.
    pub tcp: Option<u16>,
    /// `AIRLOCK_LOG` of the process.
    pub log_level: &'static str,
    pub child: Option<Child>,
    pub sessions: Vec<String>,
    /// Mounts below it are undone on drop (the world's temp dir).
    root: PathBuf,
    /// The world, when the daemon owns it ([`ApiDaemon::owning`]): a field, so that it is
    /// removed only after the drop has stopped the daemon and cleaned up.
    world: Option<World>,
}

impl ApiDaemon {
    /// The paths for a daemon over `world`, which the test keeps; the test writes
    /// [`ApiDaemon::config`], starting with [`ApiDaemon::dirs_toml`], then calls
    /// [`ApiDaemon::spawn`].
    pub fn new(world: &World) -> ApiDaemon {
        let dir = world.tmp.path().join("daemon");
        std::fs::create_dir_all(&dir).unwrap();
        ApiDaemon {
            config: dir.join("airlock.toml"),
            socket: dir.join("run").join("airlock.sock"),
            dir,
            artifacts: world.artifacts.clone(),
            tcp: None,
            log_level: "info",
            child: None,
            sessions: vec![],
            root: world.tmp.path().to_path_buf(),
            world: None,
        }
    }

    /// As [`ApiDaemon::new`], the daemon owning the world.
    pub fn owning(world: World) -> ApiDaemon {
        let mut d = ApiDaemon::new(&world);
        d.world = Some(world);
        d
    }

    /// The world of an [`ApiDaemon::owning`] daemon.
    pub fn world(&self) -> &World {
        self.world
            .as_ref()
            .expect("the test keeps this daemon's world")
    }

    /// The config's first lines: the socket and the world's state, artifacts and policies dirs.
    pub fn dirs_toml(&self, world: &World) -> String {
        format!(
            "socket = {:?}\nstate_dir = {:?}\nartifacts_dir = {:?}\npolicies_dir = {:?}\n",
            self.socket.display().to_string(),
            world.state.display().to_string(),
            world.artifacts.display().to_string(),
            world.policies.display().to_string(),
        )
    }

    /// Start the process (stderr appended to `daemon.log`) and wait until its API answers.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("daemon.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(["daemon", "--config"])
            .arg(&self.config)
            .env("AIRLOCK_LOG", self.log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the daemon exited at start ({status}):\n{}", self.log());
            }
            if let Some((200, health)) = self.try_request("GET", "/v1/health") {
                let health: Value = serde_json::from_slice(&health).unwrap();
                let session = health["session"].as_str().unwrap();
                self.sessions.push(session.to_string());
                return;
            }
            assert!(
                Instant::now() < until,
                "the daemon did not become ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the process wrote to stderr, every start of it.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// The session of the last start.
    pub fn session(&self) -> String {
        self.sessions.last().unwrap().clone()
    }

    pub fn signal(&self, sig: Signal) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
    }

    pub fn wait_exit(&mut self, secs: u64) -> ExitStatus {
        let until = Instant::now() + Duration::from_secs(secs);
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < until, "the daemon did not exit in {secs}s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM and wait for the exit.
    pub fn stop(&mut self) {
        self.signal(Signal::SIGTERM);
        self.wait_exit(30);
    }

    /// A request over the socket: `None` when nothing answers (not listening yet).
    fn try_request(&self, method: &str, path: &str) -> Option<(u16, Vec<u8>)> {
        let s = UnixStream::connect(&self.socket).ok()?;
        parse_response(&send(s, method, path, &[], b""))
    }

    /// A request over the socket; the status and the (de-chunked) body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> (u16, Vec<u8>) {
        let s = UnixStream::connect(&self.socket).unwrap();
        exchange(s, method, path, headers, body.as_bytes())
    }

    /// A request whose reply is JSON (`{"raw": <text>}` when it is not).
    pub fn json(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> (u16, Value) {
        let (code, bytes) = self.request(method, path, headers, body);
        (code, json_or_raw(&bytes))
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.json("GET", path, &[], "")
    }

    pub fn post(&self, path: &str, body: &str) -> (u16, Value) {
        self.json("POST", path, &[], body)
    }

    pub fn post_with(&self, path: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
        self.json("POST", path, headers, body)
    }

    /// A POST to the `[tcp]` listener.
    pub fn post_tcp(&self, path: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
        let port = self.tcp.expect("the test's config has a [tcp] listener");
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (code, bytes) = exchange(s, "POST", path, headers, body.as_bytes());
        (code, json_or_raw(&bytes))
    }

    /// The body of a GET as text (metrics, event streams).
    pub fn text(&self, path: &str) -> String {
        String::from_utf8_lossy(&self.request("GET", path, &[], "").1).into_owned()
    }

    /// Submit a task spec over the API; the id.
    pub fn submit_toml(&self, spec: &str) -> String {
        let (code, body) = self.post("/v1/tasks?name=task.toml", spec);
        assert_eq!(code, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    pub fn task(&self, id: &str) -> Value {
        let (code, body) = self.get(&format!("/v1/tasks/{id}"));
        assert_eq!(code, 200, "{body}");
        body
    }

    /// The task once it is in a [`FINAL`] state (bounded wait).
    pub fn wait_final(&self, id: &str, secs: u64) -> Value {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            let t = self.task(id);
            if FINAL.contains(&t["state"].as_str().unwrap_or("")) {
                return t;
            }
            assert!(
                Instant::now() < until,
                "{id} never ended: {t}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn events(&self, id: &str) -> Vec<Value> {
        self.text(&format!("/v1/tasks/{id}/events"))
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn artifact(&self, id: &str, rel: &str) -> String {
        let p = self.artifacts.join(id).join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }
}

impl Drop for ApiDaemon {
    /// Kill the daemon, remove its sessions' containers and unmount what it left.
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for s in &self.sessions {
            let ids = managed_containers(Some(&format!("airlock.session={s}")));
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
        for m in airlock::workspace::mounts_under(&self.root) {
            let _ = airlock::workspace::unmount(&m);
        }
    }
}

/// The row of `kind` in a `/v1/stats` reply.
pub fn kind_row(stats: &Value, kind: &str) -> Value {
    stats["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} in {stats}"))
}

/// JSON, or `{"raw": <text>}` when the body is not JSON (so a message shows what came).
pub fn json_or_raw(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(bytes) }))
}

/// One HTTP/1.1 request (`Connection: close`) over `s`; the status and the de-chunked body.
pub fn exchange<S: Read + Write>(
    s: S,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let raw = send(s, method, path, headers, body);
    parse_response(&raw).unwrap_or_else(|| panic!("no response: {raw:?}"))
}

/// Write the request, read until the server closes; what came back.
fn send<S: Read + Write>(
    mut s: S,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: airlock\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The server may answer (and close) before reading the body, over a limit say.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    raw
}

/// The status and body of a raw response; `None` without a status line and head.
fn parse_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    let rest = &raw[split + 4..];
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Some((code, body))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        assert!(
            data.len() >= nl + 2 + size,
            "a chunk of {size} bytes cut short: {data:?}"
        );
        out.extend_from_slice(&data[nl + 2..nl + 2 + size]);
        data = data[nl + 2 + size..]
            .strip_prefix(b"\r\n")
            .unwrap_or(&data[nl + 2 + size..]);
    }
    out
}
