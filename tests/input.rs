//! Bad input: each gets its exit code and one message naming the file, the field or value and
//! what would be accepted; nothing is left behind (no container, work dir or artifacts).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use common::{containers_under, engine_now, toml_str, World};

fn base(world: &World) -> String {
    format!(
        "title = \"bad input\"\nlevel = \"L1\"\n[repo]\nurl = {}\nbase = \"main\"\n[issue]\ntext = \"x\"\n[agent]\nimage = \"airlock/sandbox-test:latest\"\ncommand = [\"true\"]\n",
        toml_str(&world.repo.display().to_string())
    )
}

/// Nothing of this run remains, and it never created a container: scoped to the containers
/// whose lock label points under this world's state dir, so other processes' containers on the
/// shared engine neither hide nor fake one.
fn assert_nothing_left(world: &World, since: &str) {
    assert_eq!(
        containers_under(&world.state, since),
        Vec::<String>::new(),
        "a container was created"
    );
    let tasks = world.state.join("tasks");
    let left: Vec<_> = std::fs::read_dir(&tasks)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "work dirs left: {left:?}");
    let arts: Vec<_> = std::fs::read_dir(&world.artifacts)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(arts.is_empty(), "artifacts left: {arts:?}");
}

fn check(edit: impl Fn(String) -> String, code: i32, wants: &[&str]) {
    let world = World::new();
    let since = engine_now();
    let spec = world.write_spec(&edit(base(&world)));
    let ran = world.run(&spec);
    assert_eq!(ran.code, code, "stderr: {}", ran.stderr);
    assert!(
        ran.stderr
            .contains(spec.file_name().unwrap().to_str().unwrap())
            || code == 4,
        "message does not name the file: {}",
        ran.stderr
    );
    for w in wants {
        assert!(ran.stderr.contains(w), "want `{w}` in: {}", ran.stderr);
    }
    // One message (a TOML error keeps its snippet and caret on lines of their own).
    assert_eq!(
        ran.stderr
            .lines()
            .filter(|l| l.starts_with("airlock:"))
            .count(),
        1,
        "one message: {}",
        ran.stderr
    );
    assert_nothing_left(&world, &since);
}

#[test]
fn unknown_key() {
    check(
        |s| s.replace("[issue]", "network = \"host\"\n[issue]"),
        2,
        &["network", "unknown field"],
    );
}

#[test]
fn missing_field() {
    check(
        |s| s.replace("title = \"bad input\"\n", ""),
        2,
        &["missing field", "title"],
    );
}

#[test]
fn invalid_level() {
    check(
        |s| s.replace("\"L1\"", "\"L7\""),
        2,
        &["level", "L7", "L0, L1, L2, L3, L4"],
    );
}

#[test]
fn empty_argv() {
    check(
        |s| s.replace("command = [\"true\"]", "command = []"),
        2,
        &["agent.command", "empty argv"],
    );
}

#[test]
fn unreadable_issue_file() {
    check(
        |s| s.replace("text = \"x\"", "file = \"missing-issue.md\""),
        2,
        &["issue.file", "missing-issue.md"],
    );
}

#[test]
fn nonexistent_repo() {
    check(
        |s| s.replacen("url = ", "url = \"/no/such/repo.git\"\n#", 1),
        2,
        &["repo.url", "/no/such/repo.git"],
    );
}

#[test]
fn nonexistent_base() {
    check(
        |s| s.replace("base = \"main\"", "base = \"no-such-branch\""),
        2,
        &["repo.base", "no-such-branch"],
    );
}

#[test]
fn nonexistent_image() {
    check(
        |s| s.replace("airlock/sandbox-test:latest", "airlock/no-such-image:1"),
        2,
        &["airlock/no-such-image:1", "make images"],
    );
}

#[test]
fn unreachable_engine_is_a_fault() {
    let world = World::new();
    let since = engine_now();
    let spec = world.write_spec(&base(&world));
    let out = world
        .command(&spec)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let ran = common::ran(out);
    assert_eq!(ran.code, 4, "{}", ran.stderr);
    assert!(ran.stderr.contains("make engine"), "{}", ran.stderr);
    assert_nothing_left(&world, &since);
}

#[test]
fn malformed_policy_file_names_file_and_field() {
    let world = World::new();
    world.edit_policies("network = \"none\"", "network = \"bridge\"");
    let ran = world.run(&world.write_spec(&base(&world)));
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("L0.toml")
            && ran.stderr.contains("network")
            && ran.stderr.contains("\"none\""),
        "{}",
        ran.stderr
    );
}

#[test]
fn the_scoped_container_check_sees_a_good_run_s_own_container() {
    // The control for `assert_nothing_left`: a run that does create a container is seen (from
    // the engine's create events, though the container is already removed), so the check can
    // fail.
    let world = World::new();
    let since = engine_now();
    let ran = world.run(&world.write_spec(&base(&world)));
    assert_eq!(ran.code, 0, "stderr: {}", ran.stderr);
    let seen = containers_under(&world.state, &since);
    assert!(!seen.is_empty(), "the run's own container was not seen");
    world.assert_clean(&ran.task_id());
}
