//! The gate on the untouched base: failures it has too are pre-existing, tests it ran must
//! still run, and it is computed once per base. Real engine and the demo image (python3 and
//! pytest); never skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use common::{toml_argv, toml_str, World};
use serde_json::Value;

const CALC: &str = "def add(a, b):\n    return a + b\n";
const TESTS: &str = "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\ndef test_two():\n    assert add(0, 0) == 0\n";
const RED_TEST: &str = "\n\ndef test_old():\n    assert add(2, 2) == 5\n";

fn world(red_base: bool) -> World {
    let tests = if red_base {
        format!("{TESTS}{RED_TEST}")
    } else {
        TESTS.to_string()
    };
    let w = World::with_files(&[
        ("README.md", "calc\n"),
        ("calc.py", CALC),
        ("tests/test_calc.py", &tests),
    ]);
    let demo = std::process::Command::new("docker")
        .args(["image", "inspect", "airlock/demo"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(demo, "image airlock/demo is missing: run `make images`");
    w
}

/// An L2 task in the demo image running `script` with `sh -c`, pytest as the gate.
fn spec(w: &World, script: &str, attempts: u32) -> std::path::PathBuf {
    let text = format!(
        "title = \"baseline\"\nlevel = \"L2\"\n[repo]\nurl = {}\nbase = \"main\"\n[issue]\ntext = \"x\"\n[agent]\nimage = \"airlock/demo:latest\"\ncommand = {}\n[gate]\ncommands = [[\"python3\", \"-m\", \"pytest\", \"-q\", \"-p\", \"no:cacheprovider\", \"tests\"]]\n[limits]\nattempts = {attempts}\n",
        toml_str(&w.repo.display().to_string()),
        toml_argv(&["sh", "-c", script]),
    );
    w.write_spec(&text)
}

fn events(w: &World, ran: &common::Ran) -> Vec<Value> {
    w.artifact(ran, "events.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn baseline_containers(evs: &[Value]) -> usize {
    evs.iter()
        .filter(|e| e["event"] == "container_finished" && e["role"] == "baseline")
        .count()
}

fn failures(ran: &common::Ran, attempt: usize) -> Vec<Value> {
    ran.summary()["attempts"][attempt]["failures"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_red_base_is_preexisting_and_only_introduced_failures_are_fed_back() {
    let w = world(true);
    // Attempt 1 breaks add(); attempt 2 restores it and keeps the feedback it was given.
    let script = "if [ \"$AIRLOCK_ATTEMPT\" = 1 ]; then sed -i 's/a + b/a - b/' calc.py; \
                  else sed -i 's/a - b/a + b/' calc.py; cp /airlock/feedback.json /airlock/out/; fi";
    let ran = w.run(&spec(&w, script, 3));
    assert_eq!(
        ran.state_reason(),
        ("green".into(), "gate_passed_preexisting".into()),
        "{}\n{}\n{}",
        ran.stderr,
        ran.summary()["attempts"],
        w.artifact(&ran, "events.jsonl")
    );
    assert_eq!(ran.code, 0);
    let first = failures(&ran, 0);
    let origin = |fs: &[Value], id: &str| {
        fs.iter()
            .find(|f| f["test_id"] == format!("tests/test_calc.py::{id}"))
            .map(|f| (f["origin"].clone(), f["class"].clone(), f["kind"].clone()))
    };
    assert_eq!(
        origin(&first, "test_add"),
        Some(("introduced".into(), "test".into(), "assertion".into())),
        "{first:?}"
    );
    assert_eq!(
        origin(&first, "test_old").map(|o| o.0),
        Some("preexisting".into())
    );
    let feedback: Value = serde_json::from_str(&w.artifact(&ran, "out/feedback.json")).unwrap();
    let fed: Vec<&str> = feedback["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["test_id"].as_str().unwrap())
        .collect();
    assert_eq!(fed, ["tests/test_calc.py::test_add"], "{feedback}");
    let second = failures(&ran, 1);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0]["origin"], "preexisting");
    let evidence = w.artifact(&ran, "evidence.md");
    assert!(
        evidence.contains("fail the same way on the untouched base")
            && evidence.contains("<code>tests/test\\_calc.py::test\\_old</code>"),
        "{evidence}"
    );
    assert!(w
        .artifact(&ran, "logs/baseline.log")
        .contains("1 failed, 2 passed"));
    w.assert_clean(&ran.task_id());
}

#[test]
fn under_must_fix_a_red_base_is_not_green() {
    let w = world(true);
    w.edit_policies("preexisting = \"report\"", "preexisting = \"must_fix\"");
    let ran = w.run(&spec(&w, "echo more >> README.md", 2));
    let (state, reason) = ran.state_reason();
    assert_eq!(state, "needs_human", "{reason} {}", ran.stderr);
    assert_eq!(ran.code, 1);
    let first = failures(&ran, 0);
    assert_eq!(first[0]["origin"], "preexisting", "{first:?}");
    assert_eq!(ran.summary()["attempts"][0]["verdict"], "retry");
}

#[test]
fn an_agent_that_exits_the_test_process_early_is_a_red_flag() {
    let w = world(false);
    let ran = w.run(&spec(
        &w,
        "printf 'import os\\nos._exit(0)\\n' >> calc.py",
        3,
    ));
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "red_flag".into()),
        "{}",
        ran.stderr
    );
    let a = &ran.summary()["attempts"][0];
    assert_eq!(a["gate_passed"], true, "pytest exited 0: {a}");
    let flags = a["red_flags"].as_array().unwrap();
    let f = flags
        .iter()
        .find(|f| f["kind"] == "tests_not_run")
        .unwrap_or_else(|| panic!("{flags:?}"));
    assert!(f["detail"].as_str().unwrap().contains("2 test(s)"), "{f}");
    assert!(w
        .artifact(&ran, "evidence.md")
        .contains("tests\\_not\\_run"));
}

#[test]
fn the_baseline_is_computed_once_per_base() {
    let w = world(false);
    let one = w.run(&spec(&w, "echo one >> README.md", 1));
    let two = w.run(&spec(&w, "echo two >> README.md", 1));
    for ran in [&one, &two] {
        assert_eq!(
            ran.state_reason(),
            ("green".into(), "gate_passed".into()),
            "{}",
            ran.stderr
        );
    }
    let (e1, e2) = (events(&w, &one), events(&w, &two));
    assert_eq!(baseline_containers(&e1), 1, "{e1:?}");
    assert_eq!(
        baseline_containers(&e2),
        0,
        "the second task ran the baseline again"
    );
    let cached = e2
        .iter()
        .find(|e| e["event"] == "baseline")
        .unwrap_or_else(|| panic!("{e2:?}"));
    assert_eq!(cached["status"], "cached");
    assert_eq!(cached["computed_by"], one.task_id());
    let files: Vec<_> = std::fs::read_dir(w.state.join("baseline"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
}
