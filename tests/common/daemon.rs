//! One `airlock daemon` process for a test: its own dirs, socket and config; driven with the
//! CLI (`submit`, `status`) and raw HTTP over its socket.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::World;

pub struct Daemon {
    pub world: World,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub child: Child,
}

impl Daemon {
    /// `docker_host`: the engine (`None`: the shared one). `recovery` goes into `[recovery]`
    /// (say `sweep = "owned"` on the shared engine); `tables` after it (e.g. `[api]`, `[tcp]`).
    pub fn start(world: World, docker_host: Option<&str>, recovery: &str, tables: &str) -> Daemon {
        let dir = world.tmp.path().join("daemon");
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("airlock.sock");
        let config = dir.join("airlock.toml");
        let text = format!(
            "socket = {:?}\nstate_dir = {:?}\nartifacts_dir = {:?}\npolicies_dir = {:?}\n[recovery]\n{recovery}\n{tables}\n",
            socket.display().to_string(),
            world.state.display().to_string(),
            world.artifacts.display().to_string(),
            world.policies.display().to_string(),
        );
        std::fs::write(&config, text).unwrap();
        let log = dir.join("daemon.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlock"));
        cmd.args(["daemon", "--config"]).arg(&config);
        if let Some(h) = docker_host {
            cmd.env("DOCKER_HOST", h);
        }
        let child = cmd
            .env("AIRLOCK_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon {
            world,
            socket,
            log,
            child,
        };
        let until = Instant::now() + Duration::from_secs(30);
        while d.cli(&["status"]).is_none() {
            assert!(
                Instant::now() < until,
                "the daemon did not answer:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `airlock <args> --socket S --json`: its JSON output when it exits 0.
    pub fn cli(&self, args: &[&str]) -> Option<Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--json")
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
    }

    pub fn submit(&self, spec: &Path) -> String {
        let v = self
            .cli(&["submit", &spec.display().to_string()])
            .unwrap_or_else(|| panic!("submit failed:\n{}", self.log()));
        v["id"].as_str().unwrap().to_string()
    }

    /// The task once it is final (bounded wait).
    pub fn wait_final(&self, id: &str, within: Duration) -> Value {
        let until = Instant::now() + within;
        loop {
            let out = Command::new(env!("CARGO_BIN_EXE_airlock"))
                .args(["status", id, "--json", "--socket"])
                .arg(&self.socket)
                .output()
                .unwrap();
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            let state = v["state"].as_str().unwrap_or("");
            if !["", "queued", "running"].contains(&state) {
                return v;
            }
            assert!(
                Instant::now() < until,
                "task {id} not final after {within:?}: {v}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until && self.child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
