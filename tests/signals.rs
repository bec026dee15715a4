//! SIGTERM / SIGINT to a running `airlock run`: its containers are stopped and removed, the
//! task ends `cancelled` with its logs and summary written.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{managed_containers, World};

fn signal_run(sig: nix::sys::signal::Signal) {
    let world = World::new();
    let (spec, marker) = world.marked_spec("L1", &["sh", "-c", "echo started; sleep 120"], "");
    let child = common::spawn(&mut world.command(&spec));
    let task = common::wait_for_task(&marker);
    let started = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
    let ran = common::ran(child.wait_with_output().unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(ran.state_reason(), ("cancelled".into(), "cancelled".into()));
    assert_eq!(ran.task_id(), task);
    assert!(world.artifact(&ran, "logs/agent-1.log").contains("started"));
    world.assert_clean(&task);
}

#[test]
fn sigterm_removes_the_containers_and_records_cancelled() {
    signal_run(nix::sys::signal::Signal::SIGTERM);
}

#[test]
fn sigint_removes_the_containers_and_records_cancelled() {
    signal_run(nix::sys::signal::Signal::SIGINT);
}

/// `airlock run` killed with SIGKILL leaves its container and mounts; the next `airlock run`
/// on the host recovers them (the dead task's lock is free) and leaves nothing behind.
#[test]
fn after_sigkill_the_next_run_recovers_what_was_left() {
    let world = World::new();
    let (spec, marker) = world.marked_spec("L1", &["sh", "-c", "sleep 120"], "");
    let mut child = world
        .command(&spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let task = common::wait_for_task(&marker);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !managed_containers(Some(&format!("airlock.task={task}"))).is_empty(),
        "SIGKILL cannot clean up"
    );
    assert!(world.state.join("tasks").join(&task).exists());
    let next = world.run(&world.spec("L1", &["true"], ""));
    assert_eq!(next.code, 0, "{}", next.stderr);
    world.assert_clean(&task);
    world.assert_clean(&next.task_id());
}

/// Recovery never touches a live task: a second `airlock run` leaves the first one's container
/// running (its task lock is held), and the first ends normally.
#[test]
fn recovery_leaves_a_live_run_alone() {
    let world = World::new();
    let (spec, marker) = world.marked_spec("L1", &["sh", "-c", "sleep 4; echo survived"], "");
    let child = common::spawn(&mut world.command(&spec));
    let task = common::wait_for_task(&marker);
    let other = world.run(&world.spec("L1", &["true"], ""));
    assert_eq!(other.code, 0, "{}", other.stderr);
    assert!(
        !managed_containers(Some(&format!("airlock.task={task}"))).is_empty(),
        "a live container was swept"
    );
    let first = common::ran(child.wait_with_output().unwrap());
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(world
        .artifact(&first, "logs/agent-1.log")
        .contains("survived"));
}
