//! A cancel that arrives during the push of a green L3 task (SIGTERM to `airlock run` while the
//! token provider is minting) stops it before git pushes: no ref reaches the real git
//! smart-HTTP server on 127.0.0.1, the token is revoked, and the task ends `cancelled` with its
//! logs, diff, branch and summary written. Real engine; never skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::leaks::assert_tree_clean;
use support::world::{PushWorld, GATE};

/// The provider's mint, slowed down: it says it started (`minting`), then takes 5 s.
const SLOW_MINT: &str = r#"#!/bin/sh
d="$(dirname "$0")"
echo "task=$AIRLOCK_TASK_ID" >> "$d/calls.log"
touch "$d/minting"
sleep 5
cat "$d/token.json"
"#;

fn wait_for(path: &Path, limit: Duration) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < limit,
            "{} did not appear within {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_cancel_during_the_push_pushes_nothing_and_ends_cancelled() {
    let w = PushWorld::new();
    let (token, provider) = w.granted_provider();
    std::fs::write(provider.dir.join("mint.sh"), SLOW_MINT).unwrap();
    w.push_toml(&provider.toml(), "");
    let spec = w
        .world
        .spec("L3", &["sh", "-c", "echo feature > feature.txt"], GATE);
    let child = common::spawn(&mut w.world.command(&spec));
    wait_for(&provider.dir.join("minting"), Duration::from_secs(180));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let ran = common::ran(child.wait_with_output().unwrap());
    let id = ran.task_id();

    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(
        ran.state_reason(),
        ("cancelled".into(), "cancelled".into()),
        "{}",
        ran.summary()
    );
    let s = ran.summary();
    assert_eq!(s["pushed"].as_bool(), Some(false), "{s}");
    let branch = s["branch"].as_str().expect("the branch was exported");

    // Nothing reached the server; the token minted meanwhile was revoked.
    assert_eq!(
        w.git.ref_of("tasks.git", &format!("refs/heads/{branch}")),
        None
    );
    assert_eq!(w.git.receive_packs(), 0);
    assert_eq!(provider.calls().len(), 1, "{:?}", provider.calls());
    assert_eq!(provider.revokes(), vec!["revoked"]);
    let artifacts = w.world.artifacts.join(&id);
    assert!(!artifacts.join("push.json").exists(), "a push was recorded");
    let events = w.world.artifact(&ran, "events.jsonl");
    assert!(events.contains("\"token_minted\""), "{events}");
    assert!(!events.contains("\"event\":\"pushed\""), "{events}");

    // Its artifacts are all there, and hold no trace of the token.
    for f in [
        "logs/agent-1.log",
        "diff.patch",
        "branch.bundle",
        "evidence.md",
    ] {
        assert!(artifacts.join(f).exists(), "{f} missing");
    }
    assert!(w.world.artifact(&ran, "diff.patch").contains("feature"));
    assert!(assert_tree_clean(&w.world.artifacts, &token) > 5);
    w.world.assert_clean(&id);
}
