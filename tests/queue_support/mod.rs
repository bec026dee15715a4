//! Servers and processes for the shared-queue tests: a throwaway PostgreSQL cluster run as
//! `nobody` on a free loopback port, moto's S3 API, a loopback TCP proxy that can cut traffic,
//! and `airlock daemon` runner processes pointed at them. Nothing here skips: a missing server
//! fails with how to install it.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

const HOW: &str =
    "run `bash scripts/test-services.sh` (make test does) to install PostgreSQL, faketime and moto";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap_or_else(|_| panic!("PostgreSQL is not installed: {HOW}"))
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
        .filter(|p| p.exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .unwrap_or_else(|| panic!("{name} not found under /usr/lib/postgresql: {HOW}"))
}

fn as_nobody(bin: &Path) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "nobody", "--"]).arg(bin);
    c
}

fn check(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A PostgreSQL cluster of its own, as `nobody`, with scram-sha-256 password authentication.
pub struct Pg {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub password_file: PathBuf,
    password: String,
    /// Server options appended to the defaults (a later `-c` wins).
    options: String,
}

impl Pg {
    pub fn start() -> Pg {
        Pg::start_with("")
    }

    /// As [`Pg::start`], with extra server options (e.g. `-c fsync=on`).
    pub fn start_with(options: &str) -> Pg {
        let dir = tempfile::Builder::new()
            .prefix("airlock-pg")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let password = format!(
            "pw-{:x}",
            std::process::id() as u64 * 7919 + free_port() as u64
        );
        let initpw = dir.path().join("initpw");
        std::fs::write(&initpw, &password).unwrap();
        std::fs::set_permissions(&initpw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let data = dir.path().join("data");
        let run = dir.path().join("run");
        for d in [&data, &run] {
            std::fs::create_dir(d).unwrap();
            check(
                Command::new("chown")
                    .args(["nobody"])
                    .arg(d)
                    .output()
                    .unwrap(),
                "chown",
            );
        }
        let out = as_nobody(&pg_bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "airlock",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", initpw.display()))
            .output()
            .unwrap();
        check(out, "initdb");
        std::fs::remove_file(&initpw).unwrap();
        let password_file = dir.path().join("pgpass");
        std::fs::write(&password_file, format!("{password}\n")).unwrap();
        std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let pg = Pg {
            port: free_port(),
            dir,
            password_file,
            password,
            options: options.to_string(),
        };
        pg.up();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Start (again) on the same port.
    pub fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300 {}",
            self.port,
            self.dir.path().join("run").display(),
            self.options
        );
        let out = as_nobody(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("run").join("pg.log"))
            .args(["-o", &opts, "-w", "-t", "30", "start"])
            .output()
            .unwrap();
        check(out, "pg_ctl start");
    }

    /// Stop now (connections are cut).
    pub fn down(&self) {
        let out = as_nobody(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .unwrap();
        check(out, "pg_ctl stop");
    }

    pub fn url_on(&self, port: u16) -> String {
        format!("postgres://airlock@127.0.0.1:{port}/postgres")
    }

    pub fn url(&self) -> String {
        self.url_on(self.port)
    }

    /// One SQL statement through psql; rows as `a|b` lines.
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new(pg_bin("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "airlock",
                "-d",
                "postgres",
                "-At",
                "-c",
                sql,
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .env("PGPASSWORD", &self.password)
            .output()
            .unwrap();
        check(out, sql).trim().to_string()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = as_nobody(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// A loopback TCP proxy; while `cut`, no byte moves in either direction and new connections
/// are not forwarded (a black hole, as a partition looks to both ends).
pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (cut.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (c, s) = (c.clone(), s.clone());
                        std::thread::spawn(move || forward(client, target, c, s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Proxy { port, cut, stop }
    }

    pub fn cut(&self, on: bool) {
        self.cut.store(on, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn forward(client: TcpStream, target: u16, cut: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    while cut.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
        return;
    };
    let pairs = [
        (client.try_clone().unwrap(), server.try_clone().unwrap()),
        (server, client),
    ];
    let handles: Vec<_> = pairs
        .into_iter()
        .map(|(from, to)| {
            let (cut, stop) = (cut.clone(), stop.clone());
            std::thread::spawn(move || pump(from, to, cut, stop))
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, cut: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    from.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if cut.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// moto's S3 API on a free loopback port.
pub struct Moto {
    pub port: u16,
    child: Child,
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto_server ({e}): {HOW}"));
        let until = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "moto_server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { port, child }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Create a bucket (PUT /bucket; moto accepts unsigned requests).
    pub fn create_bucket(&self, bucket: &str) {
        let (code, body) = http_tcp(self.port, "PUT", &format!("/{bucket}"));
        assert_eq!(code, 200, "create bucket: {body}");
    }

    /// Keys under `prefix` (ListObjectsV2, unsigned).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let (code, body) = http_tcp(
            self.port,
            "GET",
            &format!("/{bucket}?list-type=2&prefix={prefix}"),
        );
        assert_eq!(code, 200, "list: {body}");
        body.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(String::from)
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

fn http_tcp(port: u16, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let code = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|p| p.1)
        .unwrap_or("")
        .to_string();
    (code, body)
}

/// One `airlock daemon` runner process of the shared queue.
pub struct Runner {
    pub name: String,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub artifacts: PathBuf,
    child: Option<Child>,
    pub session: String,
    starts: usize,
    /// Extra environment (e.g. libfaketime's, so the runner's own pid is the one killed).
    pub env: Vec<(String, String)>,
}

impl Runner {
    /// `extra` is appended (it may add `[artifacts]`); `[queue]` points at `url`.
    pub fn new(
        root: &Path,
        name: &str,
        policies: &Path,
        pg: &Pg,
        url: &str,
        queue: &str,
        extra: &str,
    ) -> Runner {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("run").join("airlock.sock");
        let artifacts = dir.join("artifacts");
        let config = dir.join("airlock.toml");
        let text = format!(
            "socket = {:?}\nstate_dir = {:?}\nartifacts_dir = {:?}\npolicies_dir = {:?}\nconcurrency = 2\n[recovery]\nsweep = \"owned\"\n[queue]\nurl = {url:?}\npassword_file = {:?}\n{queue}\n{extra}\n",
            socket.display().to_string(),
            dir.join("state").display().to_string(),
            artifacts.display().to_string(),
            policies.display().to_string(),
            pg.password_file.display().to_string(),
        );
        std::fs::write(&config, text).unwrap();
        Runner {
            name: name.into(),
            dir,
            socket,
            config,
            artifacts,
            child: None,
            session: String::new(),
            starts: 0,
            env: Vec::new(),
        }
    }

    pub fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path()).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlock"));
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(["daemon", "--config"])
            .arg(&self.config)
            .env("AIRLOCK_LOG", "info")
            .env_remove("PGPASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(cmd.spawn().unwrap());
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "runner {} exited at start ({status}):\n{}",
                    self.name,
                    self.log()
                );
            }
            if self.socket.exists() {
                if let Some((200, h)) = self.try_request("GET", "/v1/health", "") {
                    self.session = h["session"].as_str().unwrap().to_string();
                    return;
                }
            }
            assert!(
                Instant::now() < until,
                "runner {} not ready:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    pub fn kill9(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
        let mut c = self.child.take().unwrap();
        let _ = c.wait();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(format!("daemon-{}.log", self.starts))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// One request over the daemon's socket (`Connection: close`, 30 s read timeout): the status
    /// and the de-chunked body; `None` when the socket does not answer with a response.
    fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> Option<(u16, Vec<u8>)> {
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: airlock\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).ok()?;
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
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

    pub fn try_request(&self, method: &str, path: &str, body: &str) -> Option<(u16, Value)> {
        let (code, body) = self.exchange(method, path, &[], body)?;
        Some((
            code,
            serde_json::from_slice(&body)
                .unwrap_or(Value::String(String::from_utf8_lossy(&body).into_owned())),
        ))
    }

    /// A POST with extra headers (a webhook delivery, say).
    pub fn post(&self, path: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
        let (code, body) = self
            .exchange("POST", path, headers, body)
            .unwrap_or_else(|| panic!("POST {path}: no response\n{}", self.log()));
        (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// The raw body (de-chunked) of a GET.
    pub fn raw(&self, method: &str, path: &str) -> (u16, Vec<u8>) {
        self.exchange(method, path, &[], "")
            .unwrap_or_else(|| panic!("{method} {path}: no response\n{}", self.log()))
    }

    pub fn request(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        self.try_request(method, path, body).unwrap_or_else(|| {
            panic!(
                "runner {} did not answer {path}:\n{}",
                self.name,
                self.log()
            )
        })
    }

    pub fn submit(&self, spec: &str) -> String {
        let (code, body) = self.request("POST", "/v1/tasks?name=task.toml", spec);
        assert_eq!(code, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    pub fn task(&self, id: &str) -> Value {
        let (code, body) = self.request("GET", &format!("/v1/tasks/{id}"), "");
        assert_eq!(code, 200, "{body}");
        body
    }

    pub fn events(&self, id: &str) -> Vec<Value> {
        let (_, body) = self.request("GET", &format!("/v1/tasks/{id}/events"), "");
        body.as_str()
            .map(|t| {
                t.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            })
            .unwrap_or_else(|| vec![body.clone()])
    }

    pub fn metrics(&self) -> String {
        let (_, body) = self.request("GET", "/metrics", "");
        body.as_str().unwrap_or_default().to_string()
    }

    pub fn wait_final(&self, id: &str, secs: u64) -> Value {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            let t = self.task(id);
            let s = t["state"].as_str().unwrap_or("");
            if !matches!(s, "queued" | "running") {
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
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGCONT,
            );
            let _ = c.kill();
            let _ = c.wait();
        }
        if !self.session.is_empty() {
            remove_containers(&format!("label=airlock.session={}", self.session));
            for c in list_containers("label=airlock.managed=true") {
                let session = inspect_label(&c, "airlock.session");
                if session.starts_with(&format!("{}@", self.session)) {
                    let _ = Command::new("docker").args(["rm", "-f", &c]).output();
                }
            }
        }
        for m in airlock::workspace::mounts_under(&self.dir) {
            let _ = airlock::workspace::unmount(&m);
        }
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 || data.len() < nl + 2 + size {
            break;
        }
        out.extend_from_slice(&data[nl + 2..nl + 2 + size]);
        data = &data[(nl + 4 + size).min(data.len())..];
    }
    out
}

pub fn list_containers(filter: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", filter])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

pub fn inspect_label(container: &str, label: &str) -> String {
    let out = Command::new("docker")
        .args([
            "inspect",
            "-f",
            &format!("{{{{index .Config.Labels \"{label}\"}}}}"),
            container,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn remove_containers(filter: &str) {
    let ids = list_containers(filter);
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f"])
            .args(&ids)
            .output();
    }
}

/// Containers of task `id` (any runner).
pub fn task_containers(id: &str) -> Vec<String> {
    list_containers(&format!("label=airlock.task={id}"))
}
