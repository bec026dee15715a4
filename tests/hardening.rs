//! Every container airlock starts is hardened: checked from inside (what the process sees) and
//! from outside (`docker inspect`). Real engine; these tests never skip.

mod common;

use std::net::TcpListener;
use std::process::Command;

use common::{wait_for_container, World};

/// This machine's own docker0 address: reachable from a bridged container, never from one
/// with no network. Traffic to it never leaves the machine.
fn host_bridge_ip() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "docker0"])
        .output()
        .expect("ip");
    let text = String::from_utf8_lossy(&out.stdout);
    let ip = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .expect("docker0 has an IPv4 address");
    ip.split('/').next().unwrap().to_string()
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
        "uid=1000 gid=1000",
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
    let (spec, marker) = world.marked_spec("L1", &["sh", "-c", "sleep 4"], limits);
    let child = common::spawn(
        world
            .command(&spec)
            .env("AIRLOCK_TEST_CANARY", "leaked-canary"),
    );
    let inspect = wait_for_container(&marker);
    let ran = common::ran(child.wait_with_output().unwrap());
    let h = &inspect["HostConfig"];
    assert_eq!(h["NetworkMode"], "none");
    assert_eq!(h["Privileged"], false);
    assert_eq!(h["ReadonlyRootfs"], true);
    assert_eq!(h["CapDrop"], serde_json::json!(["ALL"]));
    assert!(h["CapAdd"].is_null() || h["CapAdd"] == serde_json::json!([]));
    assert!(h["SecurityOpt"].to_string().contains("no-new-privileges"));
    assert_eq!(h["Init"], true);
    assert_eq!(h["Memory"], 128 << 20);
    assert_eq!(h["MemorySwap"], 128 << 20);
    assert_eq!(h["PidsLimit"], 100);
    assert_eq!(h["NanoCpus"], 500_000_000);
    assert_eq!(h["Runtime"], "runc");
    assert!(h["Tmpfs"]["/tmp"].as_str().unwrap().contains("nr_inodes="));
    assert_eq!(inspect["Config"]["User"], "1000:1000");
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

#[test]
fn a_task_configured_for_runsc_runs_under_gvisor() {
    let world = World::new();
    let spec = world.spec("L1", &["dmesg"], "runtime = \"runsc\"");
    let ran = world.run(&spec);
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
