//! Helpers shared by the integration tests: git fixtures, the engine connection, sweeps.
#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

pub mod api;
pub mod daemon;
pub mod private_engine;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Run a shell snippet, panicking with its output on failure.
pub fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("bash")
        .arg("-euc")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "script failed: {script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `git -C <dir> <args>` (a work tree or a bare repo), panicking with git's stderr on failure;
/// its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bare repo at `<dir>/src.git` whose `main` holds `files` (path, content).
pub fn make_repo(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let work = dir.join("src-work");
    std::fs::create_dir_all(&work).unwrap();
    for (p, c) in files {
        let path = work.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    }
    sh(&work, "git init -q -b main . && git add -A && git -c user.name=t -c user.email=t@t commit -qm init && git clone -q --bare . ../src.git");
    dir.join("src.git")
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Write `text` to `p` with mode 0600 (a secret or token file the daemon accepts); `p`.
pub fn write_0600(p: &Path, text: &str) -> PathBuf {
    std::fs::write(p, text).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o600);
    std::fs::set_permissions(p, mode).unwrap();
    p.to_path_buf()
}

/// A unique name for this test run.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// The engine under test: `DOCKER_HOST` when set (e.g. Podman's
/// `unix:///run/podman/podman.sock`), else dockerd's socket. The `docker` CLI the helpers run
/// honours it too, so every outside check asks the same engine airlock uses.
pub fn engine_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// Whether the engine under test is Podman (its `/version` names a "Podman Engine").
pub fn is_podman() -> bool {
    static PODMAN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PODMAN.get_or_init(|| {
        let out = Command::new("docker")
            .args([
                "version",
                "--format",
                "{{range .Server.Components}}{{.Name}};{{end}}",
            ])
            .output()
            .expect("docker version");
        String::from_utf8_lossy(&out.stdout).contains("Podman")
    })
}

/// The OCI runtime a container really runs under. dockerd reports it in `HostConfig.Runtime`;
/// Podman's compatible inspect says only "oci", so Podman is asked with `podman inspect`.
pub fn container_runtime(inspect: &serde_json::Value) -> String {
    if !is_podman() {
        return inspect["HostConfig"]["Runtime"]
            .as_str()
            .unwrap()
            .to_string();
    }
    let id = inspect["Id"].as_str().unwrap();
    let out = Command::new("podman")
        .args(["inspect", "--format", "{{.OCIRuntime}}", id])
        .output()
        .expect("podman inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Fail (never skip) when the engine is unreachable, saying how to start it.
pub fn require_engine() {
    let (start, images) = if engine_host().contains("podman") {
        ("make engine ENGINE=podman", "make images ENGINE=podman")
    } else {
        ("make engine", "make images")
    };
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "the engine at {} is not reachable: run `{start}` (Debian, as root), then `{images}`; these tests never skip", engine_host());
    let img = Command::new("docker")
        .args(["image", "inspect", "airlock/sandbox-test"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        img,
        "image airlock/sandbox-test is missing on {}: run `{images}`",
        engine_host()
    );
}

/// Ids of containers labelled airlock.managed=true plus `filter` (e.g. "airlock.task=ID").
pub fn managed_containers(filter: Option<&str>) -> Vec<String> {
    let mut cmd = Command::new("docker");
    cmd.args(["ps", "-aq", "--filter", "label=airlock.managed=true"]);
    if let Some(f) = filter {
        cmd.args(["--filter", &format!("label={f}")]);
    }
    let out = cmd.output().expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// An engine timestamp (`<unix seconds>.<nanoseconds>`) for now, for `docker events --since`.
pub fn engine_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// Airlock containers belonging to runs under `state` (their `airlock.lock` label points under
/// it): those the engine created since `since` (an [`engine_now`] taken before the run, from
/// `docker events`, so one created and already removed counts too) and those that exist now.
/// Other processes' containers on the shared engine never count.
pub fn containers_under(state: &Path, since: &str) -> Vec<String> {
    let state = state.display().to_string();
    let ours = |lock: &str| Path::new(lock).starts_with(&state);
    let format = "{{.Actor.ID}} {{index .Actor.Attributes \"airlock.lock\"}}";
    let out = Command::new("docker")
        .args(["events", "--since", since, "--until", &engine_now()])
        .args(["--filter", "type=container", "--filter", "event=create"])
        .args(["--filter", "label=airlock.managed=true", "--format", format])
        .output()
        .expect("docker events");
    assert!(
        out.status.success(),
        "docker events: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, lock)| ours(lock))
        .map(|(id, _)| id.to_string())
        .collect();
    for id in managed_containers(None) {
        let out = Command::new("docker")
            .args([
                "inspect",
                "--format",
                "{{index .Config.Labels \"airlock.lock\"}}",
                &id,
            ])
            .output()
            .expect("docker inspect");
        if ours(String::from_utf8_lossy(&out.stdout).trim())
            && !ids.iter().any(|i| i.starts_with(&id))
        {
            ids.push(id);
        }
    }
    ids
}

/// A TOML string literal.
pub fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A TOML array of strings.
pub fn toml_argv(argv: &[&str]) -> String {
    format!(
        "[{}]",
        argv.iter()
            .map(|a| toml_str(a))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// One airlock run's results.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub summary: Option<serde_json::Value>,
}

impl Ran {
    pub fn summary(&self) -> &serde_json::Value {
        self.summary
            .as_ref()
            .unwrap_or_else(|| panic!("no summary; exit {} stderr:\n{}", self.code, self.stderr))
    }

    pub fn task_id(&self) -> String {
        self.summary()["task_id"].as_str().unwrap().to_string()
    }

    pub fn state_reason(&self) -> (String, String) {
        let s = self.summary();
        (
            s["state"].as_str().unwrap().into(),
            s["reason"].as_str().unwrap().into(),
        )
    }
}

/// A scratch world for CLI runs: a source repo, a policies dir, state and artifacts dirs.
pub struct World {
    pub tmp: tempfile::TempDir,
    pub repo: PathBuf,
    pub policies: PathBuf,
    pub state: PathBuf,
    pub artifacts: PathBuf,
}

impl World {
    pub fn new() -> World {
        World::with_files(&[
            ("README.md", "hello\n"),
            ("src/app.py", "print('hi')\n"),
            ("tests/test_app.py", "def test_x():\n    assert 1 == 1\n"),
        ])
    }

    /// A world whose source repo holds `files`.
    pub fn with_files(files: &[(&str, &str)]) -> World {
        require_engine();
        let tmp = tempfile::tempdir().unwrap();
        let repo = make_repo(tmp.path(), files);
        let policies = tmp.path().join("policies");
        std::fs::create_dir(&policies).unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        for e in std::fs::read_dir(shipped).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), policies.join(e.file_name())).unwrap();
        }
        allow_local_dir(&policies, tmp.path());
        World {
            repo,
            policies,
            state: tmp.path().join("state"),
            artifacts: tmp.path().join("artifacts"),
            tmp,
        }
    }

    /// Replace `from` with `to` in every level file (e.g. to shrink a ceiling for a test).
    pub fn edit_policies(&self, from: &str, to: &str) {
        for l in 0..5 {
            let p = self.policies.join(format!("L{l}.toml"));
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.contains(from), "{} lacks {from}", p.display());
            std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
        }
    }

    /// A task spec running `argv` in airlock/sandbox-test at `level`, with `extra` TOML appended.
    pub fn spec(&self, level: &str, argv: &[&str], extra: &str) -> PathBuf {
        let name = unique("task");
        let text = format!(
            "title = \"test {name}\"\nlevel = \"{level}\"\n[repo]\nurl = {}\nbase = \"main\"\n[issue]\ntext = \"do the thing\"\n[agent]\nimage = \"airlock/sandbox-test:latest\"\ncommand = {}\n{extra}\n",
            toml_str(&self.repo.display().to_string()),
            toml_argv(argv)
        );
        self.write_spec(&text)
    }

    /// As [`World::spec`], with a unique `MARKER` in the agent's env so the test can find its
    /// running container ([`wait_for_container`]). Returns the spec and the marker.
    pub fn marked_spec(&self, level: &str, argv: &[&str], extra: &str) -> (PathBuf, String) {
        let marker = unique("marker");
        let spec = self.spec(
            level,
            argv,
            &format!("env = {{ MARKER = \"{marker}\" }}\n{extra}"),
        );
        (spec, marker)
    }

    pub fn write_spec(&self, text: &str) -> PathBuf {
        let p = self.tmp.path().join(format!("{}.toml", unique("spec")));
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn command(&self, spec: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlock"));
        cmd.arg("run")
            .arg(spec)
            .arg("--json")
            .arg("--artifacts")
            .arg(&self.artifacts)
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--policies")
            .arg(&self.policies);
        cmd
    }

    pub fn run(&self, spec: &Path) -> Ran {
        let out = self.command(spec).output().expect("run airlock");
        ran(out)
    }

    /// The text of an artifact of a finished task.
    pub fn artifact(&self, ran: &Ran, rel: &str) -> String {
        let p = self.artifacts.join(ran.task_id()).join(rel);
        String::from_utf8_lossy(
            &std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .into_owned()
    }

    /// Nothing of the task remains: no container with its label, no work dir, no mount.
    pub fn assert_clean(&self, task_id: &str) {
        assert_eq!(
            managed_containers(Some(&format!("airlock.task={task_id}"))),
            Vec::<String>::new(),
            "containers of {task_id} remain"
        );
        let work = self.state.join("tasks").join(task_id);
        assert!(!work.exists(), "work dir {} remains", work.display());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&self.state.display().to_string()),
            "a mount under the state dir remains"
        );
    }
}

/// The shipped operator.toml lets no API or webhook task use any repository: allow the test's
/// own scratch dir (local paths under it, for every source), as an operator would name theirs.
pub fn allow_local_dir(policies: &Path, dir: &Path) {
    let p = policies.join("operator.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let dir = dir.display().to_string();
    assert!(
        text.contains("local_dirs = []"),
        "{} lacks local_dirs",
        p.display()
    );
    let text = text.replacen(
        "local_dirs = []",
        &format!("local_dirs = [{}]", toml_str(&dir)),
        1,
    ) + &format!(
        "\n[[repos]]\nmatch = {}\nmax_level = \"L4\"\n",
        toml_str(&format!("{dir}/**"))
    );
    std::fs::write(&p, text).unwrap();
}

/// Start `cmd` in the background with its output captured (read it with `wait_with_output`).
pub fn spawn(cmd: &mut Command) -> std::process::Child {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn airlock")
}

pub fn ran(out: std::process::Output) -> Ran {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let summary = serde_json::from_str(&stdout).ok();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        summary,
    }
}

/// `docker inspect` of the running airlock container whose environment holds `marker` (a
/// unique value the test put in the agent's env); waits up to 90 s for it to appear (a loaded machine).
pub fn wait_for_container(marker: &str) -> serde_json::Value {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while std::time::Instant::now() < until {
        for id in managed_containers(None) {
            let out = Command::new("docker")
                .args(["inspect", &id])
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            if v[0]["Config"]["Env"].to_string().contains(marker) {
                return v[0].clone();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no running airlock container with {marker} in its environment");
}

/// The task id of the running container found by [`wait_for_container`].
pub fn wait_for_task(marker: &str) -> String {
    let v = wait_for_container(marker);
    v["Config"]["Labels"]["airlock.task"]
        .as_str()
        .unwrap()
        .to_string()
}
