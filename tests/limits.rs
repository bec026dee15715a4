//! Limits are enforced by the engine and by airlock: pids, memory, time, output, tmpfs. After
//! each, no container of the task remains. Real engine; never skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use std::time::{Duration, Instant};

use common::World;

#[test]
fn fork_bomb_is_contained_by_the_pids_limit() {
    let world = World::new();
    // Each background sleep that forks prints a line; the loop's shell dies when fork fails.
    let script = "n=$( (i=0; while [ $i -lt 200 ]; do sleep 30 >/dev/null & echo x; i=$((i+1)); done) 2>/dev/null | wc -l ); \
                  echo started=$n";
    let ran = world.run(&world.spec(
        "L1",
        &["sh", "-c", script],
        "[limits]\npids = 40\ntimeout = \"60s\"",
    ));
    let log = world.artifact(&ran, "logs/agent-1.log");
    let started: u32 = log
        .lines()
        .find_map(|l| l.strip_prefix("started="))
        .unwrap_or_else(|| panic!("{log}"))
        .trim()
        .parse()
        .unwrap();
    assert!(
        started <= 41,
        "{started} processes started under pids=40:\n{log}"
    );
    world.assert_clean(&ran.task_id());
}

#[test]
fn a_real_fork_bomb_ends_at_the_timeout_and_leaves_nothing() {
    let world = World::new();
    let ran = world.run(&world.spec(
        "L1",
        // The bomb runs beside a main process that needs no fork of its own (`exec`): a
        // `sleep` after the bomb could not fork once the pids cap is full and would end the
        // agent early with sh's exit 2, racing the timeout this test is about.
        &["sh", "-c", "(b() { b | b & }; b) & exec sleep 100"],
        "[limits]\npids = 64\ntimeout = \"5s\"",
    ));
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "timeout".into()),
        "{}",
        ran.stderr
    );
    world.assert_clean(&ran.task_id());
}

#[test]
fn memory_hog_ends_as_oom() {
    let world = World::new();
    let ran = world.run(&world.spec(
        "L1",
        &["sh", "-c", "dd if=/dev/zero of=/dev/null bs=256M count=4"],
        "[limits]\nmemory = \"32m\"\ntimeout = \"60s\"",
    ));
    assert_eq!(ran.code, 1);
    let agent = &ran.summary()["attempts"][0]["agent"];
    if common::is_podman() {
        // The cap holds (the hog is killed), but Podman 4.3 on cgroup v1 does not report the
        // kill as an OOM: the task ends as a failed agent with SIGKILL's exit code.
        assert_eq!(agent["exit_code"], 137, "{agent}");
        assert_eq!(
            ran.state_reason(),
            ("needs_human".into(), "agent_failed".into())
        );
        world.assert_clean(&ran.task_id());
        return;
    }
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "oom".into()),
        "{}",
        ran.stdout
    );
    assert_eq!(agent["oom_killed"], true);
    world.assert_clean(&ran.task_id());
}

#[test]
fn term_ignoring_process_ends_as_timeout_within_timeout_plus_grace() {
    let world = World::new();
    let spec = world.spec(
        "L1",
        &["sh", "-c", "trap '' TERM; while true; do sleep 1; done"],
        "[limits]\ntimeout = \"3s\"",
    );
    let started = Instant::now();
    let ran = world.run(&spec);
    let took = started.elapsed();
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "timeout".into()),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.summary()["attempts"][0]["agent"]["ended"], "timeout");
    // timeout 3 s + grace 3 s + 5 s of slack
    assert!(took < Duration::from_secs(11), "took {took:?}");
    world.assert_clean(&ran.task_id());
}

#[test]
fn output_flood_is_capped_keeping_head_and_tail() {
    let world = World::new();
    world.edit_policies("log_bytes = \"1m\"", "log_bytes = \"64k\"");
    let script =
        "echo FIRST-LINE; yes 'flood flood flood' | head -c 20000000; echo; echo LAST-LINE";
    let ran = world.run(&world.spec("L1", &["sh", "-c", script], ""));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let log = world.artifact(&ran, "logs/agent-1.log");
    assert!(log.len() < 70 * 1024, "log is {} bytes", log.len());
    assert!(log.starts_with("FIRST-LINE"), "head lost");
    assert!(log.trim_end().ends_with("LAST-LINE"), "tail lost");
    assert!(log.contains("bytes omitted"));
    assert!(
        ran.summary()["attempts"][0]["agent"]["log_bytes_omitted"]
            .as_u64()
            .unwrap()
            > 19_000_000
    );
    world.assert_clean(&ran.task_id());
}

#[test]
fn terminal_escapes_in_output_are_neutralised() {
    let world = World::new();
    let ran = world.run(&world.spec(
        "L1",
        &["sh", "-c", "printf 'a\\033]0;pwned\\007b\\033[2Jc\\n'"],
        "",
    ));
    let log = world.artifact(&ran, "logs/agent-1.log");
    assert!(!log.contains('\x1b') && !log.contains('\x07'), "{log:?}");
    assert!(log.contains("\\x1b]0;pwned"), "{log:?}");
}

#[test]
fn filling_tmp_hits_enospc_at_the_cap() {
    let world = World::new();
    world.edit_policies("tmpfs = \"256m\"", "tmpfs = \"8m\"");
    let script = "dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1; echo size=$(wc -c < /tmp/fill); \
                  dd if=/dev/zero of=$HOME/fill bs=1M count=64 2>&1; echo home=$(wc -c < $HOME/fill)";
    let ran = world.run(&world.spec("L1", &["sh", "-c", script], ""));
    let log = world.artifact(&ran, "logs/agent-1.log");
    assert!(log.contains("No space left on device"), "{log}");
    assert!(log.contains(&format!("size={}", 8 << 20)), "{log}");
    assert!(log.contains(&format!("home={}", 8 << 20)), "{log}");
    world.assert_clean(&ran.task_id());
}

#[test]
fn out_dir_is_capped() {
    let world = World::new();
    world.edit_policies("out = \"16m\"", "out = \"1m\"");
    let ran = world.run(&world.spec(
        "L0",
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/airlock/out/big bs=1M count=8 2>&1; echo done",
        ],
        "",
    ));
    let log = world.artifact(&ran, "logs/agent-1.log");
    assert!(log.contains("No space left on device"), "{log}");
    world.assert_clean(&ran.task_id());
}

#[test]
fn filling_the_workspace_hits_enospc_at_the_cap_not_the_host_disk() {
    let world = World::new();
    world.edit_policies("workspace = \"1g\"", "workspace = \"16m\"");
    let script = "dd if=/dev/zero of=/workspace/fill bs=1M count=64 2>&1; echo size=$(wc -c < /workspace/fill)";
    let ran = world.run(&world.spec("L1", &["sh", "-c", script], ""));
    let log = world.artifact(&ran, "logs/agent-1.log");
    assert!(log.contains("No space left on device"), "{log}");
    let size: u64 = log
        .lines()
        .find_map(|l| l.strip_prefix("size="))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(size <= 16 << 20, "{size}");
    world.assert_clean(&ran.task_id());
}
