//! The set-up scripts `make test` relies on: `make engine` merges runsc into an existing
//! daemon.json without clobbering it, and `make images` skips an image whose inputs are unchanged.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn register_runsc(daemon_json: &Path) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg("source scripts/engine.sh && register_runsc")
        .current_dir(repo())
        .env("AIRLOCK_DAEMON_JSON", daemon_json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn engine_setup_merges_runsc_into_daemon_json_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker").join("daemon.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let before = r#"{"log-level": "warn", "runtimes": {"kata": {"path": "/opt/kata"}}}"#;
    std::fs::write(&path, before).unwrap();
    assert_eq!(register_runsc(&path).trim(), "changed");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(cfg["log-level"], "warn");
    assert_eq!(cfg["runtimes"]["kata"]["path"], "/opt/kata");
    assert_eq!(
        cfg["runtimes"]["runsc"]["runtimeArgs"],
        serde_json::json!(["--network=none", "--host-uds=open"])
    );
    assert!(cfg["runtimes"]["runsc"]["path"]
        .as_str()
        .unwrap()
        .ends_with("runsc"));
    assert_eq!(
        register_runsc(&path).trim(),
        "",
        "a second run must change nothing"
    );
}

#[test]
fn images_with_unchanged_inputs_are_not_rebuilt() {
    common::require_engine();
    let out = Command::new("bash")
        .args(["scripts/images.sh", "sandbox-test"])
        .current_dir(repo())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("airlock/sandbox-test up to date"),
        "{stderr}"
    );
}

#[test]
fn podman_setup_registers_the_runsc_wrapper_and_keeps_the_rest_of_containers_conf() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("containers.conf");
    let wrapper = dir.path().join("runsc-podman");
    std::fs::write(&conf, "[containers]\nlog_size_max = 1000\n").unwrap();
    let run = || {
        let out = Command::new("bash")
            .arg("-c")
            .arg("source scripts/engine.sh && register_podman_runsc")
            .current_dir(repo())
            .env("AIRLOCK_CONTAINERS_CONF", &conf)
            .env("AIRLOCK_RUNSC_WRAPPER", &wrapper)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(run(), "changed");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("log_size_max = 1000"), "{text}");
    assert!(
        text.contains(&format!(
            "[engine.runtimes]\nrunsc = [\"{}\"]",
            wrapper.display()
        )),
        "{text}"
    );
    let script = std::fs::read_to_string(&wrapper).unwrap();
    assert!(script.contains("--network=none \"$@\""), "{script}");
    assert_eq!(run(), "", "a second run must change nothing");
}

/// `scripts/apt-mirror.sh` over an apt dir the test writes.
fn mirror(apt: &Path, over: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new("bash");
    cmd.arg("scripts/apt-mirror.sh")
        .current_dir(repo())
        .env("AIRLOCK_APT_DIR", apt)
        .env_remove("AIRLOCK_DEBIAN_MIRROR");
    if let Some(url) = over {
        cmd.env("AIRLOCK_DEBIAN_MIRROR", url);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_debian_mirror_comes_from_the_machines_apt_sources() {
    let dir = tempfile::tempdir().unwrap();
    let apt = dir.path();
    std::fs::create_dir_all(apt.join("sources.list.d")).unwrap();
    // Nothing configured: an error naming the dir and the override, never a guessed mirror.
    let (ok, out, err) = mirror(apt, None);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.contains(&apt.display().to_string()) && err.contains("AIRLOCK_DEBIAN_MIRROR"),
        "{err}"
    );
    // deb822: the security entry is skipped, a deb-src-and-deb entry counts.
    std::fs::write(
        apt.join("sources.list.d/debian.sources"),
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n\
         Types: deb-src deb\nURIs: https://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n",
    )
    .unwrap();
    assert_eq!(mirror(apt, None).1, "https://mirror.example/debian");
    // One-line sources.list comes first; options in brackets and -security lines are skipped.
    std::fs::write(
        apt.join("sources.list"),
        "# local\ndeb [arch=amd64 signed-by=/k.gpg] http://s.example/debian-security bookworm-security main\n\
         deb [signed-by=/k.gpg] http://one.example/debian bookworm main\n",
    )
    .unwrap();
    assert_eq!(mirror(apt, None).1, "http://one.example/debian");
    // The override wins.
    assert_eq!(
        mirror(apt, Some("http://override.example/debian")).1,
        "http://override.example/debian"
    );
}
