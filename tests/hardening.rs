//! Every container airlock starts is hardened: checked from inside (what the process sees) and
//! from outside (`docker inspect`, `podman inspect`, the host's mount table). Real engine; these
//! tests never skip. `make test` runs them against dockerd and again against Podman
//! (`DOCKER_HOST=unix:///run/podman/podman.sock`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use std::net::TcpListener;
use std::process::Command;

use common::{container_runtime, is_podman, wait_for_container, World};

/// A host address the sandbox would reach if it had any network: the engine's bridge (docker0)
/// where it exists (Podman has none), else the host's first global IPv4 address. Traffic to it
/// never leaves the machine.
fn host_bridge_ip() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .expect("ip");
    let text = String::from_utf8_lossy(&out.stdout);
    let addr = |line: &str| {
        line.split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .and_then(|a| a.split('/').next())
            .map(str::to_string)
    };
    let mut lines = text.lines();
    text.lines()
        .find(|l| l.split_whitespace().nth(1) == Some("docker0"))
        .and_then(addr)
        .or_else(|| lines.find_map(addr))
        .expect("the host has a global IPv4 address (ip -4 addr show scope global)")
}

const PROBE: &str = r#"
echo "CapEff=$(grep CapEff /proc/self/status | awk '{print $2}')"
echo "NoNewPrivs=$(grep NoNewPrivs /proc/self/status | awk '{print $2}')"
echo "uid=$(id -u) gid=$(id -g)"
if touch /rootfs-write 2>/dev/null; then echo "rootwrite=ok"; else echo "rootwrite=denied"; fi
if touch /workspace/ws-write 2>/dev/null; then echo "wswrite=ok"; else echo "wswrite=denied"; fi
if touch /airlock/airlock-write 2>/dev/null; then echo "airlockwrite=ok"; else echo "airlockwrite=denied"; fi
if echo hi > /airlock/out/report.txt; then echo "outwrite=ok"; fi
echo "ifaces=$(ls /sys/class/net | tr '\n' ' ')"
if nc -w 3 "$TARGET_IP" "$TARGET_PORT" </dev/null 2>/dev/null; then echo "connect=ok"; else echo "connect=failed"; fi
if nslookup example.com >/dev/null 2>&1; then echo "dns=ok"; else echo "dns=failed"; fi
echo "home=$HOME"
if [ -S /var/run/docker.sock ]; then echo "sock=present"; else echo "sock=absent"; fi
echo "canary=${AIRLOCK_TEST_CANARY:-absent}"
echo "env=$(env | cut -d= -f1 | sort | tr '\n' ' ')"
"#;

fn probe(world: &World, level: &str, extra: &str) -> (common::Ran, String) {
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let spec = world.spec(
        level,
        &["sh", "-c", PROBE],
        &format!(
            "env = {{ TARGET_IP = \"{}\", TARGET_PORT = \"{port}\" }}\n{extra}",
            host_bridge_ip()
        ),
    );
    let out = world
        .command(&spec)
        .env("AIRLOCK_TEST_CANARY", "leaked-canary")
        .output()
        .unwrap();
    let ran = common::ran(out);
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "the sandbox reached a listener on the host"
    );
    let log = world.artifact(&ran, "logs/agent-1.log");
    (ran, log)
}

#[test]
fn inside_the_sandbox_there_are_no_privileges_no_network_and_no_host_env() {
    let world = World::new();
    let (ran, log) = probe(&world, "L1", "");
    assert_eq!(ran.code, 0, "{}\n{log}", ran.stderr);
    for want in [
        "CapEff=0000000000000000",
        "NoNewPrivs=1",
        "uid=65532 gid=65532",
        "rootwrite=denied",
        "wswrite=ok",
        "airlockwrite=denied",
        "outwrite=ok",
        "ifaces=lo ",
        "connect=failed",
        "dns=failed",
        "home=/home/agent",
        "sock=absent",
        "canary=absent",
    ] {
        assert!(log.contains(want), "want `{want}` in:\n{log}");
    }
    assert!(!log.contains("leaked-canary"));
    assert_eq!(world.artifact(&ran, "out/report.txt"), "hi\n");
    world.assert_clean(&ran.task_id());
}

#[test]
fn at_l0_the_checkout_is_read_only_and_only_out_is_exported() {
    let world = World::new();
    let (ran, log) = probe(&world, "L0", "");
    assert_eq!(ran.code, 0, "{}\n{log}", ran.stderr);
    assert!(log.contains("wswrite=denied"), "{log}");
    assert_eq!(world.artifact(&ran, "diff.patch"), "");
    assert_eq!(world.artifact(&ran, "out/report.txt"), "hi\n");
    world.assert_clean(&ran.task_id());
}

/// Inspect the running agent container from outside, found by a unique env value.
#[test]
fn outside_docker_inspect_shows_the_hardening() {
    let world = World::new();
    let limits = "[limits]\nmemory = \"128m\"\npids = 100\ncpus = 0.5";
    // The agent waits until the test releases it (a file in its out dir, written from the
    // host), so a loaded machine cannot end it before it has been inspected.
    let wait = "i=0; while [ ! -e /airlock/out/release ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done";
    let (spec, marker) = world.marked_spec("L1", &["sh", "-c", wait], limits);
    let child = common::spawn(
        world
            .command(&spec)
            .env("AIRLOCK_TEST_CANARY", "leaked-canary"),
    );
    let inspect = wait_for_container(&marker);
    // Asked while the container lives (it waits for the release file).
    let (runtime, scratch) = (
        container_runtime(&inspect),
        ["/tmp", "/home/agent"].map(|d| (d, scratch_options(&inspect, d))),
    );
    let podman = is_podman().then(|| {
        (
            podman_inspect(&inspect, "{{json .EffectiveCaps}}"),
            podman_inspect(&inspect, "{{.HostConfig.CgroupMode}}"),
        )
    });
    let task = inspect["Config"]["Labels"]["airlock.task"]
        .as_str()
        .unwrap();
    let out = world
        .state
        .join("tasks")
        .join(task)
        .join("airlock/out/release");
    std::fs::write(&out, "").unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    let ran = common::ran(child.wait_with_output().unwrap());
    let h = &inspect["HostConfig"];
    assert_eq!(h["NetworkMode"], "none");
    assert_eq!(h["Privileged"], false);
    assert_eq!(h["ReadonlyRootfs"], true);
    if let Some((caps, cgroupns)) = podman {
        // Podman's compatible inspect lists the dropped capabilities one by one; ask it directly.
        assert!(caps == "null" || caps == "[]", "effective caps: {caps}");
        assert_eq!(cgroupns, "private");
    } else {
        assert_eq!(h["CapDrop"], serde_json::json!(["ALL"]));
        assert_eq!(h["CgroupnsMode"], "private");
    }
    assert!(h["CapAdd"].is_null() || h["CapAdd"] == serde_json::json!([]));
    assert!(h["SecurityOpt"].to_string().contains("no-new-privileges"));
    assert_eq!(h["Init"], true);
    assert_eq!(h["Memory"], 128 << 20);
    assert_eq!(h["MemorySwap"], 128 << 20);
    assert_eq!(h["PidsLimit"], 100);
    assert_eq!(h["NanoCpus"], 500_000_000);
    assert_eq!(runtime, "runc");
    assert_eq!(h["ShmSize"], 64 << 20);
    let mut ulimits: Vec<String> = h["Ulimits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let name = u["Name"].as_str().unwrap().to_lowercase();
            let name = name.trim_start_matches("rlimit_").to_string();
            format!("{name}={}:{}", u["Soft"], u["Hard"])
        })
        .collect();
    ulimits.sort();
    assert_eq!(
        ulimits,
        ["core=0:0", "nofile=8192:8192", "nproc=16384:16384"]
    );
    for (dir, opts) in scratch {
        for want in ["noexec", "nosuid", "nodev", "nr_inodes=", "size="] {
            assert!(opts.contains(want), "{dir}: `{want}` missing in {opts}");
        }
    }
    assert_eq!(inspect["Config"]["User"], "65532:65532");
    let labels = &inspect["Config"]["Labels"];
    assert_eq!(labels["airlock.managed"], "true");
    assert!(labels["airlock.task"].is_string() && labels["airlock.session"].is_string());
    let env = inspect["Config"]["Env"].to_string();
    assert!(
        !env.contains("leaked-canary") && !env.contains("AIRLOCK_TEST_CANARY"),
        "{env}"
    );
    let mounts = inspect["Mounts"].as_array().unwrap();
    assert!(mounts
        .iter()
        .all(|m| !m["Source"].as_str().unwrap_or("").contains("docker.sock")));
    let ro = |dst: &str| {
        mounts
            .iter()
            .find(|m| m["Destination"] == dst)
            .map(|m| m["RW"] == false)
    };
    assert_eq!(ro("/airlock"), Some(true));
    assert_eq!(ro("/airlock/out"), Some(false));
    assert_eq!(ro("/workspace"), Some(false));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    world.assert_clean(&ran.task_id());
}

/// `podman inspect --format FORMAT` of the container in `inspect`.
fn podman_inspect(inspect: &serde_json::Value, format: &str) -> String {
    let out = Command::new("podman")
        .args([
            "inspect",
            "--format",
            format,
            inspect["Id"].as_str().unwrap(),
        ])
        .output()
        .expect("podman inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The mount options of the scratch dir `dir` as the engine applies them: dockerd's tmpfs
/// options, or (Podman) those of the host-side tmpfs bound there, read from the host's mounts.
fn scratch_options(inspect: &serde_json::Value, dir: &str) -> String {
    if let Some(opts) = inspect["HostConfig"]["Tmpfs"][dir].as_str() {
        assert!(!is_podman());
        return opts.to_string();
    }
    assert!(is_podman(), "dockerd must mount {dir} as an engine tmpfs");
    let mount = inspect["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == dir)
        .unwrap_or_else(|| panic!("no mount at {dir}: {}", inspect["Mounts"]));
    assert_eq!(mount["RW"], true);
    let source = mount["Source"].as_str().unwrap();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(source))
        .unwrap_or_else(|| panic!("{source} (bound at {dir}) is not a mount on the host"));
    assert_eq!(line.split(' ').nth(2), Some("tmpfs"), "{line}");
    line.split(' ').nth(3).unwrap().to_string()
}

const WRITABLE_PROBE: &str = r#"
while read -r dev mnt fs opts rest; do
  if touch "$mnt/.airlock-probe" 2>/dev/null; then rm -f "$mnt/.airlock-probe"; echo "writable $mnt $opts"; fi
done < /proc/mounts
for d in / /run /var/tmp /etc /usr /var /dev; do touch "$d/.probe" 2>/dev/null && echo "writable-dir $d"; done
cp /bin/busybox /tmp/true && { /tmp/true 2>/dev/null && echo "tmp-exec=ok" || echo "tmp-exec=denied"; }
cp /bin/busybox "$HOME/true" && { "$HOME/true" 2>/dev/null && echo "home-exec=ok" || echo "home-exec=denied"; }
cp /bin/busybox /workspace/true && { /workspace/true && echo "ws-exec=ok"; }; rm -f /workspace/true
i=0; while [ $i -lt 300 ]; do touch /tmp/f$i 2>/dev/null || break; i=$((i+1)); done; echo "tmp-files=$i"
echo "nofile=$(ulimit -n) nproc=$(ulimit -u) core=$(ulimit -c)"
echo "cgroup=$(head -n1 /proc/self/cgroup)"
"#;

/// Only the declared places are writable; scratch space is noexec and inode-capped; ulimits and
/// the cgroup namespace are airlock's, whichever engine runs the container.
#[test]
fn inside_only_declared_mounts_are_writable_and_scratch_is_noexec_and_capped() {
    let world = World::new();
    world.edit_policies("tmpfs_inodes = 16384", "tmpfs_inodes = 200");
    let ran = world.run(&world.spec("L1", &["sh", "-c", WRITABLE_PROBE], ""));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let log = world.artifact(&ran, "logs/agent-1.log");
    let mut writable: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("writable "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    writable.sort();
    writable.dedup();
    assert_eq!(
        writable,
        [
            "/airlock/out",
            "/dev/mqueue",
            "/dev/shm",
            "/home/agent",
            "/tmp",
            "/workspace"
        ],
        "{log}"
    );
    for l in log.lines().filter_map(|l| l.strip_prefix("writable ")) {
        let (mnt, opts) = l.split_once(' ').unwrap();
        if mnt != "/workspace" {
            assert!(opts.contains("noexec"), "{mnt} is exec: {opts}");
        }
        assert!(
            opts.contains("nosuid") && opts.contains("nodev"),
            "{mnt}: {opts}"
        );
    }
    assert!(!log.contains("writable-dir"), "{log}");
    for want in [
        "tmp-exec=denied",
        "home-exec=denied",
        "ws-exec=ok",
        "nofile=8192 nproc=16384 core=0",
        // a private cgroup namespace: the container's own cgroup is its root
        ":/
",
    ] {
        assert!(log.contains(want), "want `{want}` in:\n{log}");
    }
    let files: u32 = log
        .lines()
        .find_map(|l| l.strip_prefix("tmp-files="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(files < 200, "{files} files on a /tmp capped at 200 inodes");
    let engine = &ran.summary()["engine"];
    assert_eq!(
        engine["kind"],
        if is_podman() { "podman" } else { "docker" }
    );
    assert!(
        engine["version"].as_str().unwrap().contains('.'),
        "{engine}"
    );
    world.assert_clean(&ran.task_id());
}

#[test]
fn a_task_configured_for_runsc_runs_under_gvisor() {
    let world = World::new();
    let spec = world.spec("L1", &["dmesg"], "runtime = \"runsc\"");
    let ran = world.run(&spec);
    if is_podman() {
        // Podman 4.3 ignores an API client's runtime: airlock refuses rather than run runc.
        assert_eq!(ran.code, 4, "{}", ran.stderr);
        for want in ["podman", "runtime = runsc", "containers.conf", "weaker"] {
            assert!(ran.stderr.contains(want), "want `{want}` in {}", ran.stderr);
        }
        return;
    }
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(world.artifact(&ran, "logs/agent-1.log").contains("gVisor"));
    assert_eq!(ran.summary()["runtime"], "runsc");
    world.assert_clean(&ran.task_id());
}

#[test]
fn a_runtime_the_policy_does_not_allow_is_refused() {
    let world = World::new();
    world.edit_policies("allowed = [\"runc\", \"runsc\"]", "allowed = [\"runc\"]");
    let ran = world.run(&world.spec("L1", &["true"], "runtime = \"runsc\""));
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert_eq!(ran.summary()["reason"], "runtime_not_allowed");
}

/// `operator.toml` `[sandbox] uid`: the container runs as the operator's uid (inside: `id`,
/// the work tree writable by it; outside: inspect), and a uid that is a host account is refused
/// at start, naming the account.
#[test]
fn the_sandbox_uid_is_the_operators_and_never_a_host_account() {
    let world = World::new();
    let op = world.policies.join("operator.toml");
    let text = std::fs::read_to_string(&op).unwrap();
    assert!(text.contains("uid = 65532"), "{text}");
    std::fs::write(&op, text.replace("uid = 65532", "uid = 4242")).unwrap();
    let (ran, log) = probe(&world, "L1", "");
    assert_eq!(ran.code, 0, "{}\n{log}", ran.stderr);
    for want in ["uid=4242 gid=4242", "wswrite=ok", "outwrite=ok"] {
        assert!(log.contains(want), "want `{want}` in:\n{log}");
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let (name, uid) = passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let uid: u32 = f.get(2)?.parse().ok()?;
            (1..100_000).contains(&uid).then(|| (f[0].to_string(), uid))
        })
        .find(|(_, uid)| *uid != 65534)
        .expect("a host account with a uid from 1 to 99999 in /etc/passwd");
    std::fs::write(&op, text.replace("uid = 65532", &format!("uid = {uid}"))).unwrap();
    let ran = world.run(&world.spec("L1", &["true"], ""));
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("sandbox.uid") && ran.stderr.contains(&format!("`{name}`")),
        "{}",
        ran.stderr
    );
}
