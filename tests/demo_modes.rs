//! The demo agent's four modes through the real loop, and a flaky test detected as flaky.
//! Needs `make images demo-repo` (done by `make test`). Real engine; never skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{require_engine, toml_str, World};

fn demo(mode: &str) -> (common::Ran, tempfile::TempDir) {
    require_engine();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("examples/demo/tasks-app.git/HEAD").exists(),
        "run `make demo-repo` (make test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let spec = root.join(format!(
        "examples/demo/{}.toml",
        if mode == "fix-on-retry" {
            "task".to_string()
        } else {
            format!("task-{mode}")
        }
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .arg("run")
        .arg(&spec)
        .arg("--json")
        .arg("--artifacts")
        .arg(tmp.join("art"))
        .arg("--state-dir")
        .arg(tmp.join("state"))
        .output()
        .unwrap();
    (common::ran(out), dir)
}

fn verdicts(ran: &common::Ran) -> Vec<String> {
    ran.summary()["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["verdict"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn good_is_green_on_attempt_one() {
    let (ran, _) = demo("good");
    assert_eq!(
        ran.state_reason(),
        ("green".into(), "gate_passed".into()),
        "{}",
        ran.stderr
    );
    assert_eq!(verdicts(&ran), ["green"]);
    assert_eq!(ran.code, 0);
}

#[test]
fn fix_on_retry_reads_feedback_and_is_green_on_attempt_two() {
    let (ran, dir) = demo("fix-on-retry");
    let tmp = dir.path();
    assert_eq!(
        ran.state_reason(),
        ("green".into(), "gate_passed".into()),
        "{}",
        ran.stderr
    );
    assert_eq!(verdicts(&ran), ["retry", "green"]);
    let first = &ran.summary()["attempts"][0]["failures"][0];
    assert_eq!(first["tool"], "pytest");
    assert_eq!(first["test_id"], "tests/test_store.py::test_delete_unknown");
    let log = std::fs::read_to_string(tmp.join("art").join(ran.task_id()).join("logs/agent-2.log"))
        .unwrap();
    assert!(
        log.contains("test_delete_unknown"),
        "the agent did not get the feedback:\n{log}"
    );
    let events =
        std::fs::read_to_string(tmp.join("art").join(ran.task_id()).join("events.jsonl")).unwrap();
    assert!(
        events.contains("\"gate_failure\"") && events.contains("\"partial\":true"),
        "no partial feedback event"
    );
    let evidence =
        std::fs::read_to_string(tmp.join("art").join(ran.task_id()).join("evidence.md")).unwrap();
    assert!(
        evidence.contains("## Acceptance") && evidence.contains("Reproduce the gate"),
        "{evidence}"
    );
}

#[test]
fn stuck_stops_with_no_progress() {
    let (ran, _) = demo("stuck");
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "no_progress".into()),
        "{}",
        ran.stderr
    );
    assert_eq!(verdicts(&ran), ["retry", "stop"]);
    assert_eq!(ran.code, 1);
}

#[test]
fn cheat_is_caught_as_a_red_flag() {
    let (ran, _) = demo("cheat");
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "red_flag".into()),
        "{}",
        ran.stderr
    );
    let flags: Vec<String> = ran.summary()["attempts"][1]["red_flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(
        flags.contains(&"assertion_weakened".to_string()),
        "{flags:?}"
    );
    assert!(flags.contains(&"test_removed".to_string()), "{flags:?}");
    assert!(ran.summary()["paths"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "tests/test_store.py"));
}

/// Fails when the whole suite runs, passes when rerun alone (by its test id): each gate run and
/// rerun has its own throwaway view, so a flake cannot leave a marker for the rerun to find.
const FLAKY: &str = "import sys\n\ndef test_flaky():\n    assert any('::' in a for a in sys.argv), 'fails unless rerun by id'\n\ndef test_ok():\n    assert True\n";

fn flaky_world() -> (World, PathBuf) {
    let world = World::with_files(&[("tests/test_flaky.py", FLAKY), ("README.md", "x\n")]);
    let spec = world.write_spec(&format!(
        "title = \"flaky\"\nlevel = \"L2\"\n[repo]\nurl = {}\nbase = \"main\"\n[issue]\ntext = \"touch the readme\"\n[agent]\nimage = \"airlock/demo:latest\"\ncommand = [\"sh\", \"-c\", \"echo more >> README.md\"]\n[gate]\ncommands = [[\"python3\", \"-m\", \"pytest\", \"-q\", \"-p\", \"no:cacheprovider\"]]\n",
        toml_str(&world.repo.display().to_string())
    ));
    (world, spec)
}

#[test]
fn a_test_that_fails_once_is_flaky_and_not_fed_back() {
    let (world, spec) = flaky_world();
    let ran = world.run(&spec);
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "flaky_gate".into()),
        "{}",
        ran.stdout
    );
    let a = &ran.summary()["attempts"][0];
    assert_eq!(a["flaky"][0]["test_id"], "tests/test_flaky.py::test_flaky");
    assert_eq!(a["failures"], serde_json::json!([]));
    assert!(world.artifact(&ran, "evidence.md").contains("| 1 |"));
}

#[test]
fn the_policy_can_count_a_flaky_only_gate_as_green() {
    let (world, spec) = flaky_world();
    world.edit_policies("flaky_is_green = false", "flaky_is_green = true");
    let ran = world.run(&spec);
    assert_eq!(
        ran.state_reason(),
        ("green".into(), "gate_passed_flaky".into()),
        "{}",
        ran.stdout
    );
}
