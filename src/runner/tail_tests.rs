//! The tail after the judge (`tail.rs`) over the recording fake engine: L3 tasks whose push
//! goes to a loopback port where nothing listens (git fails to connect), with a `command`
//! token provider that records each call. Each test pins one rule of the tail's order or of
//! its precedence; the real-engine tests (`tests/push*.rs`, `tests/cancel_tail.rs`) stay the
//! proof against a real git server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::fake_engine::{FakeContainers, Scripted};
use super::lifecycle_tests::{edit, World, PASSED};
use crate::artifacts::Summary;
use crate::vocab::{Reason, State};

/// The token the provider hands out.
const TOKEN: &str = "tok-tail-unit-5b7e91c4d2";

/// A provider script: records the call in `calls.log`, runs `before`, prints the token.
fn provider(dir: &Path, before: &str) -> PathBuf {
    let exp = crate::push::token::rfc3339(SystemTime::now() + Duration::from_secs(1800));
    let script = dir.join("mint.sh");
    let calls = dir.join("calls.log");
    let text = format!(
        "#!/bin/sh\necho called >> {calls:?}\n{before}\nprintf '{{\"token\":\"{TOKEN}\",\"expires_at\":\"{exp}\"}}'\n"
    );
    std::fs::write(&script, text).unwrap();
    script
}

/// `push.toml` for the world's repository, pushing to a port where nothing listens.
fn push_toml(world: &mut World, mint: &Path) {
    let repo = std::fs::canonicalize(&world.repo).unwrap();
    let text = format!(
        "[[remote]]\nrepo = {:?}\npush_url = \"http://127.0.0.1:9/tasks.git\"\nprotected = [\"main\"]\n[remote.token]\nprovider = \"command\"\ncommand = [\"sh\", {:?}]\nmax_ttl = \"1h\"\n",
        repo.display().to_string(),
        mint.display().to_string()
    );
    let policies = world.tmp.path().join("policies");
    std::fs::write(policies.join("push.toml"), text).unwrap();
    world.opts.policies = crate::policy::load_dir(&policies).unwrap();
}

fn calls(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("calls.log"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn artifact(world: &World, s: &Summary, rel: &str) -> PathBuf {
    world.opts.artifacts_root.join(&s.task_id).join(rel)
}

fn events(world: &World, s: &Summary) -> String {
    std::fs::read_to_string(artifact(world, s, "events.jsonl")).unwrap()
}

/// Everything in the task's bundle, as one string.
fn bundled(world: &World, s: &Summary) -> String {
    let path = artifact(world, s, &format!("{}.tar.gz", s.task_id));
    let out = Command::new("tar")
        .arg("-xzOf")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The agent changes `file`; the gate passes.
fn green_agent(file: &'static str) -> Arc<FakeContainers> {
    FakeContainers::new(move |plan| match plan.role.as_str() {
        "agent" => Scripted::ok().effect(move |ws, _| {
            std::fs::create_dir_all(ws.join(file).parent().unwrap()).unwrap();
            edit(ws, file, "print(1)\n");
        }),
        _ => Scripted::ok().output(PASSED),
    })
}

/// A green L3 task whose push fails ends `error` with the push's reason; the branch stays
/// exported and the evidence is rewritten to the final state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_push_ends_error_with_the_branch_exported() {
    let mut world = World::new();
    let mint = provider(world.tmp.path(), "");
    push_toml(&mut world, &mint);
    let fake = green_agent("src/app.py");
    let s = world
        .run(world.spec_at("L3", ""), &fake, CancellationToken::new())
        .await;
    assert_eq!(
        (s.state, s.reason),
        (State::Error, Reason::PushFailed),
        "{s:?}"
    );
    assert!(!s.pushed);
    assert!(s.branch.is_some() && s.commit.is_some(), "{s:?}");
    assert!(artifact(&world, &s, "branch.bundle").exists());
    assert_eq!(calls(world.tmp.path()), 1, "minted once");
    let evidence = std::fs::read_to_string(artifact(&world, &s, "evidence.md")).unwrap();
    assert!(evidence.contains("push_failed"), "{evidence}");
    let ev = events(&world, &s);
    let (failed, finished) = (ev.find("\"push_failed\""), ev.find("\"finished\""));
    assert!(failed.is_some() && failed < finished, "{ev}");
    let last: serde_json::Value = serde_json::from_str(ev.lines().last().unwrap()).unwrap();
    assert_eq!(
        (&last["event"], &last["state"], &last["reason"]),
        (&"exported".into(), &"error".into(), &"push_failed".into()),
        "{ev}"
    );
}

/// A secret found in an artifact beats the push's failure, its file is removed, and the
/// bundle (written after the scan) never holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_secret_in_an_artifact_beats_the_push_failure_and_is_never_bundled() {
    let mut world = World::new();
    let mint = provider(world.tmp.path(), "");
    push_toml(&mut world, &mint);
    let fake = FakeContainers::new(|plan| match plan.role.as_str() {
        // The agent saw the (static) token somewhere and copies it into out/.
        "agent" => Scripted::ok().effect(|ws, airlock| {
            edit(ws, "src/app.py", "print(1)\n");
            std::fs::write(airlock.join("out/leak.txt"), format!("t={TOKEN}\n")).unwrap();
        }),
        _ => Scripted::ok().output(PASSED),
    });
    let s = world
        .run(world.spec_at("L3", ""), &fake, CancellationToken::new())
        .await;
    assert_eq!(
        (s.state, s.reason),
        (State::Error, Reason::SecretInArtifact),
        "{s:?}"
    );
    assert!(s.message.as_deref().unwrap_or("").contains("out/leak.txt"));
    assert!(!artifact(&world, &s, "out/leak.txt").exists());
    let all = bundled(&world, &s);
    assert!(all.contains(&s.task_id), "the bundle holds the summary");
    assert!(!all.contains(TOKEN), "the bundle holds the secret");
}

/// A green high-risk change at a level that stops such changes ends `needs_human` /
/// `high_risk`: no token is minted and nothing is pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_risk_stop_beats_green_and_nothing_is_minted() {
    let mut world = World::new();
    let policies = world.tmp.path().join("policies");
    let l3 = std::fs::read_to_string(policies.join("L3.toml")).unwrap();
    let stopping = l3.replacen("stop_high_risk = false", "stop_high_risk = true", 1);
    assert_ne!(l3, stopping, "L3.toml has no stop_high_risk line");
    std::fs::write(policies.join("L3.toml"), stopping).unwrap();
    let mint = provider(world.tmp.path(), "");
    push_toml(&mut world, &mint);
    let fake = green_agent("src/auth/login.py");
    let s = world
        .run(world.spec_at("L3", ""), &fake, CancellationToken::new())
        .await;
    assert_eq!(
        (s.state, s.reason),
        (State::NeedsHuman, Reason::HighRisk),
        "{s:?}"
    );
    assert_eq!(calls(world.tmp.path()), 0, "a token was minted");
    assert!(!s.pushed);
    assert!(!artifact(&world, &s, "push.json").exists());
    assert!(artifact(&world, &s, "branch.bundle").exists());
}

/// A cancel that arrives after the gate passed (here: as the gate's container ends) stops
/// the task before the push: it ends `cancelled`, no token is minted, and its diff, branch,
/// evidence, logs and summary are all written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_after_the_gate_passed_stops_the_push_and_keeps_the_artifacts() {
    let mut world = World::new();
    let mint = provider(world.tmp.path(), "");
    push_toml(&mut world, &mint);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let fake = FakeContainers::new(move |plan| match plan.role.as_str() {
        "agent" => Scripted::ok().effect(|ws, _| edit(ws, "src/app.py", "print(1)\n")),
        _ => {
            let trigger = trigger.clone();
            Scripted::ok()
                .output(PASSED)
                .effect(move |_, _| trigger.cancel())
        }
    });
    let s = world.run(world.spec_at("L3", ""), &fake, cancel).await;
    assert_eq!(
        (s.state, s.reason),
        (State::Cancelled, Reason::Cancelled),
        "{s:?}"
    );
    assert_eq!(s.attempts[0].gate_passed, Some(true));
    assert_eq!(
        calls(world.tmp.path()),
        0,
        "a token was minted after the cancel"
    );
    assert!(!s.pushed);
    for f in [
        "diff.patch",
        "branch.bundle",
        "evidence.md",
        "logs/agent-1.log",
    ] {
        assert!(artifact(&world, &s, f).exists(), "{f} missing");
    }
    let evidence = std::fs::read_to_string(artifact(&world, &s, "evidence.md")).unwrap();
    assert!(evidence.contains("cancelled"), "{evidence}");
}

/// A cancel that arrives while the push token is being minted stops the push before git
/// runs: the task ends `cancelled`, nothing is recorded as pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_the_mint_stops_the_push_before_git_runs() {
    let mut world = World::new();
    let marker = world.tmp.path().join("minting");
    let mint = provider(
        world.tmp.path(),
        &format!("touch {:?}\nsleep 2", marker.display().to_string()),
    );
    push_toml(&mut world, &mint);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let watch = marker.clone();
    let watcher = tokio::spawn(async move {
        while !watch.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        trigger.cancel();
    });
    let fake = green_agent("src/app.py");
    let s = world.run(world.spec_at("L3", ""), &fake, cancel).await;
    watcher.abort();
    assert_eq!(
        (s.state, s.reason),
        (State::Cancelled, Reason::Cancelled),
        "{s:?}"
    );
    assert_eq!(calls(world.tmp.path()), 1, "minted once");
    assert!(!s.pushed);
    assert!(
        !artifact(&world, &s, "push.json").exists(),
        "a push was recorded"
    );
    let ev = events(&world, &s);
    assert!(ev.contains("\"token_minted\""), "{ev}");
    assert!(!ev.contains("\"pushed\""), "{ev}");
}
