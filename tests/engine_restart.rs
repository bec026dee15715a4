//! The engine restarting mid-task (#10 item 8), against a REAL dockerd restart: each test
//! starts its own dockerd (`common::private_engine`; the shared engine is never restarted),
//! points airlock at it with `DOCKER_HOST`, SIGKILLs it mid-task and starts it again on the
//! same data root. No airlock container may be left once it is back, and the task ends
//! `error` with its logs and summary. Then: the running daemon's periodic sweep removes what a
//! dead `airlock run` left, and leaves a live run's container alone.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::private_engine::PrivateEngine;
use common::World;

const IMAGE: &str = "airlock/sandbox-test:latest";

/// Kill the engine under a running task, start it again, and return once it answers.
fn restart_mid_task(engine: &mut PrivateEngine, marker: &str) {
    engine.wait_for_marked(marker);
    std::thread::sleep(Duration::from_millis(500));
    engine.kill();
    std::thread::sleep(Duration::from_secs(2));
    engine.restart();
}

/// Waits (bounded) until no airlock container is left on `engine`.
fn assert_none_left(engine: &PrivateEngine, within: Duration) {
    let until = Instant::now() + within;
    loop {
        let left = engine.managed();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < until,
            "airlock containers left on the restarted engine after {within:?}: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn wait_child(child: Child, within: Duration) -> common::Ran {
    let pid = child.id();
    let until = Instant::now() + within;
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !waiter.is_finished() {
        if Instant::now() > until {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("airlock did not end within {within:?} of the engine restart");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    common::ran(waiter.join().unwrap())
}

#[test]
fn airlock_run_leaves_no_container_when_the_engine_restarts_mid_task() {
    let mut engine = PrivateEngine::start(&[IMAGE]);
    let world = World::new();
    let argv = ["sh", "-c", "echo before-the-restart; sleep 120"];
    let (spec, marker) = world.marked_spec("L1", &argv, "");
    let child = common::spawn(world.command(&spec).env("DOCKER_HOST", engine.host()));
    restart_mid_task(&mut engine, &marker);
    let ran = wait_child(child, Duration::from_secs(150));
    assert_eq!(ran.code, 4, "{}", ran.stderr);
    assert_eq!(ran.state_reason(), ("error".into(), "engine_error".into()));
    // What the run itself removed: nothing waits for a later sweep.
    assert_eq!(
        engine.managed(),
        Vec::<String>::new(),
        "the run left containers: {}",
        ran.stderr
    );
    let log = world.artifact(&ran, "logs/agent-1.log");
    assert!(log.contains("before-the-restart"), "{log}");
    let summary = world.artifact(&ran, "summary.json");
    assert!(summary.contains("engine failed"), "{summary}");
    let events = world.artifact(&ran, "events.jsonl");
    assert!(events.contains("\"event\":\"finished\""), "{events}");
    let task = ran.task_id();
    assert!(!world.state.join("tasks").join(&task).exists());
}

#[test]
fn the_daemon_leaves_no_container_when_the_engine_restarts_mid_task() {
    let mut engine = PrivateEngine::start(&[IMAGE]);
    let d = Daemon::start(World::new(), Some(&engine.host()), "sweep = \"all\"\n", "");
    let argv = ["sh", "-c", "echo before-the-restart; sleep 120"];
    let (spec, marker) = d.world.marked_spec("L1", &argv, "");
    let id = d.submit(&spec);
    restart_mid_task(&mut engine, &marker);
    let task = d.wait_final(&id, Duration::from_secs(150));
    assert_eq!(task["state"], "error", "{task}");
    assert_eq!(task["reason"], "engine_error", "{task}");
    assert_eq!(task["summary"]["state"], "error", "{task}");
    assert_none_left(&engine, Duration::from_secs(5));
    let dir = d.world.artifacts.join(&id);
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    assert!(events.contains("\"event\":\"finished\""), "{events}");
    let log = std::fs::read_to_string(dir.join("logs/agent-1.log")).unwrap();
    assert!(log.contains("before-the-restart"), "{log}");
    let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    assert!(summary.contains("engine_error"), "{summary}");
}

/// `airlock run` SIGKILLed mid-task leaves its container; the running daemon's periodic sweep
/// (every 2 s here) removes it within a few intervals, and never a live run's container.
#[test]
fn the_periodic_sweep_removes_what_a_dead_run_left_and_keeps_a_live_one() {
    let engine = PrivateEngine::start(&[IMAGE]);
    let d = Daemon::start(
        World::new(),
        Some(&engine.host()),
        "sweep = \"all\"\nsweep_interval = \"2s\"\n",
        "",
    );
    let runs = World::new();
    let start = |argv: &[&str]| {
        let (spec, marker) = runs.marked_spec("L1", argv, "");
        let mut cmd = runs.command(&spec);
        cmd.env("DOCKER_HOST", engine.host())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().unwrap();
        (child, engine.wait_for_marked(&marker))
    };
    let (mut dead, dead_id) = start(&["sleep", "120"]);
    let (mut live, live_id) = start(&["sleep", "120"]);
    dead.kill().unwrap();
    dead.wait().unwrap();
    let killed = Instant::now();
    let exists = |id: &str| engine.managed().iter().any(|m| id.starts_with(m.as_str()));
    assert!(exists(&dead_id), "SIGKILL cannot clean up");
    while exists(&dead_id) {
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the dead run's container is still there after 30 s (sweep every 2 s):\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Several more sweeps: the live run's container (its task lock held) stays.
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        exists(&live_id),
        "the sweep removed a live task's container"
    );
    assert!(
        d.log().contains("sweep: removed a container"),
        "{}",
        d.log()
    );
    live.kill().unwrap();
    live.wait().unwrap();
    // The next run on that state dir recovers both dead runs' work dirs and mounts.
    let next = runs
        .command(&runs.spec("L1", &["true"], ""))
        .env("DOCKER_HOST", engine.host())
        .output()
        .unwrap();
    assert!(next.status.success(), "{next:?}");
}
