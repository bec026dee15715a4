//! What a person sees when a task ends: paths given relative to the working directory, and the
//! engine named in progress and summary.json. Real engine; never skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use std::process::Command;

use common::World;

#[test]
fn a_relative_state_dir_works_and_leaves_no_mount_behind() {
    let world = World::new();
    let spec = world.spec("L1", &["sh", "-c", "echo hi > hi.txt"], "");
    let out = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .current_dir(world.tmp.path())
        .args([
            "run",
            "--json",
            "-v",
            "--state-dir",
            "state",
            "--artifacts",
            "artifacts",
        ])
        .arg(&spec)
        .arg("--policies")
        .arg(&world.policies)
        .output()
        .unwrap();
    let ran = common::ran(out);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        ran.state_reason(),
        ("green".into(), "agent_finished".into())
    );
    assert!(world.artifact(&ran, "diff.patch").contains("+hi"));
    // world.state is <tmp>/state: the relative dir resolved against the working directory.
    world.assert_clean(&ran.task_id());
    let engine = &ran.summary()["engine"];
    let kind = engine["kind"].as_str().unwrap();
    assert!(kind == "docker" || kind == "podman", "{engine}");
    assert!(
        ran.stderr.contains(&format!("engine   {kind} ")),
        "no engine line in:\n{}",
        ran.stderr
    );
}

#[test]
fn a_gate_command_missing_from_the_image_ends_the_task_at_once() {
    let world = World::new();
    let spec = world.spec(
        "L2",
        &["sh", "-c", "echo change > f.txt"],
        "[gate]\nimage = \"airlock/sandbox-test:latest\"\ncommands = [[\"python4\", \"-m\", \"pytest\"]]\n[limits]\nattempts = 3",
    );
    let ran = world.run(&spec);
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "gate_not_runnable".into()),
        "{}",
        ran.stderr
    );
    let s = ran.summary();
    assert_eq!(s["attempts"].as_array().unwrap().len(), 1, "retried: {s}");
    assert_eq!(
        s["attempts"][0]["gate"].as_array().unwrap().len(),
        1,
        "rerun: {s}"
    );
    let msg = s["message"].as_str().unwrap();
    for want in [
        "python4 -m pytest",
        "airlock/sandbox-test:latest",
        "exit 127",
    ] {
        assert!(msg.contains(want), "want `{want}` in {msg}");
    }
    world.assert_clean(&ran.task_id());
}

#[test]
fn an_agent_command_missing_from_the_image_is_agent_not_runnable() {
    let world = World::new();
    let ran = world.run(&world.spec("L1", &["no-such-agent", "--go"], ""));
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "agent_not_runnable".into()),
        "{}",
        ran.stderr
    );
    let msg = ran.summary()["message"].as_str().unwrap().to_string();
    assert!(msg.contains("agent command `no-such-agent --go`"), "{msg}");
    world.assert_clean(&ran.task_id());
}

/// A failure that failed every flaky-check rerun in attempt 1 is known to be deterministic:
/// attempt 2 has the same failure and reruns nothing (counted in summary.json's gate containers,
/// in events.jsonl and in the progress lines).
#[test]
fn a_failure_confirmed_deterministic_is_not_rerun_in_a_later_attempt() {
    let world = World::new();
    let demo = Command::new("docker")
        .args(["image", "inspect", "airlock/demo"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(demo, "image airlock/demo is missing: run `make images`");
    let spec = world.write_spec(&format!(
        "title = \"memo\"\nlevel = \"L2\"\n[repo]\nurl = {}\nbase = \"main\"\n[issue]\ntext = \"x\"\n[agent]\nimage = \"airlock/demo:latest\"\ncommand = {}\n[gate]\ncommands = [[\"python3\", \"-m\", \"pytest\", \"-q\", \"-p\", \"no:cacheprovider\", \"tests\"]]\n[limits]\nattempts = 3\n",
        common::toml_str(&world.repo.display().to_string()),
        common::toml_argv(&[
            "sh",
            "-c",
            "printf 'def test_bad():\\n    assert 1 == 2\\n' > tests/test_bad.py",
        ]),
    ));
    let ran = common::ran(world.command(&spec).arg("-v").output().unwrap());
    let s = ran.summary();
    let attempts = s["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{}", ran.stderr);
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "no_progress".into())
    );
    let reruns = |a: &serde_json::Value| {
        a["gate"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                c["argv"]
                    .to_string()
                    .contains("tests/test_bad.py::test_bad")
            })
            .count()
    };
    assert_eq!(reruns(&attempts[0]), 2, "policy flaky_reruns = 2: {s}");
    assert_eq!(reruns(&attempts[1]), 0, "rerun again in attempt 2: {s}");
    let gate_containers = |n: u64| {
        world
            .artifact(&ran, "events.jsonl")
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|e| {
                e["event"] == "container_finished" && e["role"] == "gate" && e["attempt"] == n
            })
            .count()
    };
    assert_eq!(gate_containers(1), 3, "gate + 2 reruns in attempt 1");
    assert_eq!(gate_containers(2), 1, "only the gate in attempt 2");
    assert_eq!(
        ran.stderr.matches("attempt 1: flaky check: rerun").count(),
        2,
        "{}",
        ran.stderr
    );
    assert!(
        !ran.stderr.contains("attempt 2: flaky check"),
        "{}",
        ran.stderr
    );
    world.assert_clean(&ran.task_id());
}

/// Off a terminal, prepare of a repository with many files prints plain progress lines (no bar,
/// no escape codes): each step when it starts and when it ends, with its bytes and time.
#[test]
fn prepare_of_a_big_repository_prints_plain_progress_lines() {
    let files: Vec<(String, String)> = (0..3000)
        .map(|i| {
            (
                format!("src/d{}/f{i}.txt", i / 300),
                format!("{i}\n").repeat(200),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let world = World::with_files(&refs);
    let spec = world.spec("L1", &["true"], "");
    let ran = common::ran(world.command(&spec).arg("-v").output().unwrap());
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let err = &ran.stderr;
    let at = |needle: &str| {
        err.find(needle)
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{err}"))
    };
    let started = at("prepare  clone: started");
    let cloned = at("prepare  clone: done, ");
    let checkout = at("prepare  checkout-index: done, ");
    let agent = at("agent ");
    assert!(
        started < cloned && cloned < checkout && checkout < agent,
        "{err}"
    );
    // The checkout wrote the files' bytes (3000 files of 600-1000 bytes): the figure is real.
    let figure = &err[checkout..].lines().next().unwrap().to_string();
    assert!(figure.contains("MiB") || figure.contains("KiB"), "{figure}");
    assert!(
        !err.contains('\x1b'),
        "a terminal bar off a terminal:\n{err:?}"
    );
    world.assert_clean(&ran.task_id());
}
