//! A dockerd of the test's own, for tests that restart the engine (the shared one is never
//! restarted): its own `--data-root`, `--exec-root`, `--pidfile` and unix socket under a temp
//! dir, in its own network namespace with `--bridge=none --iptables=false`, its own config file (not /etc/docker/daemon.json) and
//! its own containerd namespace on the host's containerd. The images a test needs are copied in
//! from the shared engine (`docker save | docker load`; airlock never pulls).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PrivateEngine {
    pub dir: PathBuf,
    namespace: String,
    child: Option<Child>,
    starts: usize,
}

impl PrivateEngine {
    /// Start it and load `images` from the shared engine. Fails (never skips) with how to fix
    /// it when dockerd cannot start.
    pub fn start(images: &[&str]) -> PrivateEngine {
        super::require_engine();
        // Short: containerd's socket paths under the exec root must fit in sun_path.
        let dir = PathBuf::from(format!("/tmp/{}", super::unique("alk-engine")));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("daemon.json"), "{}\n").unwrap();
        let namespace = format!(
            "airlock-test-{}",
            dir.file_name().unwrap().to_string_lossy()
        );
        let mut e = PrivateEngine {
            dir,
            namespace,
            child: None,
            starts: 0,
        };
        e.spawn();
        for image in images {
            let script = format!(
                "docker -H unix:///var/run/docker.sock save {image} | docker -H {} load",
                e.host()
            );
            super::sh(&e.dir, &script);
        }
        e
    }

    /// `unix://<dir>/docker.sock`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    /// A `docker` command against this engine.
    pub fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", self.host());
        c
    }

    /// The ids of the airlock containers on this engine (any state).
    pub fn managed(&self) -> Vec<String> {
        let out = self
            .docker()
            .args(["ps", "-aq", "--filter", "label=airlock.managed=true"])
            .output()
            .unwrap();
        assert!(out.status.success(), "docker ps: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect()
    }

    /// Waits up to 90 s for a running airlock container whose env holds `marker`; its id.
    pub fn wait_for_marked(&self, marker: &str) -> String {
        let until = Instant::now() + Duration::from_secs(90);
        while Instant::now() < until {
            for id in self.managed() {
                let out = self
                    .docker()
                    .args([
                        "inspect",
                        "--format",
                        "{{.State.Running}} {{.Config.Env}}",
                        &id,
                    ])
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout);
                if text.starts_with("true") && text.contains(marker) {
                    return id;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "no running airlock container with {marker} on {}",
            self.host()
        );
    }

    /// SIGKILL dockerd (its containers' shims live on; it restores them when it comes back).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Start dockerd again on the same data root.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The engine's own log (all starts).
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                std::fs::read_to_string(self.dir.join(format!("dockerd-{n}.log")))
                    .unwrap_or_default()
            })
            .collect()
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log =
            std::fs::File::create(self.dir.join(format!("dockerd-{}.log", self.starts))).unwrap();
        let d = |p: &str| self.dir.join(p).display().to_string();
        // In a network namespace of its own: a dockerd started with `--bridge=none` deletes the
        // host's `docker0` (moby's removeDefaultBridgeInterface), which is the shared engine's
        // bridge. `unshare` execs dockerd, so the child's pid is dockerd's.
        let host_bridge = Path::new("/sys/class/net/docker0").exists();
        let child = Command::new("unshare")
            .arg("--net")
            .arg("dockerd")
            .arg(format!("--data-root={}", d("data")))
            .arg(format!("--exec-root={}", d("exec")))
            .arg(format!("--pidfile={}", d("docker.pid")))
            .arg(format!("--config-file={}", d("daemon.json")))
            .arg(format!("-H={}", self.host()))
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .arg(format!("--containerd-namespace={}", self.namespace))
            .arg(format!("--containerd-plugins-namespace={}-plugins", self.namespace))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dockerd ({e}): these tests need dockerd on PATH and root (Debian: `make engine`)"));
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = self
                .docker()
                .arg("info")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                assert!(
                    !host_bridge || Path::new("/sys/class/net/docker0").exists(),
                    "the test's dockerd removed the host's docker0"
                );
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the test's dockerd exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < until,
                "the test's dockerd did not answer in 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        for id in self.managed_quiet() {
            let _ = self.docker().args(["rm", "-f", &id]).output();
        }
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let until = Instant::now() + Duration::from_secs(20);
            while Instant::now() < until && c.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        unmount_under(&self.dir);
        for ns in [
            self.namespace.clone(),
            format!("{}-plugins", self.namespace),
        ] {
            let _ = Command::new("ctr").args(["namespaces", "rm", &ns]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl PrivateEngine {
    fn managed_quiet(&self) -> Vec<String> {
        if !self.socket().exists() {
            return vec![];
        }
        self.docker()
            .args(["ps", "-aq", "--filter", "label=airlock.managed=true"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// dockerd bind-mounts its data root (and leaves shm/overlay mounts if killed): unmount all of
/// them, deepest first, so the temp dir can go.
fn unmount_under(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
    }
}
