//! CLI behaviour around the task: progress lines, --keep, and exports that must not follow
//! symlinks out of the sandbox. Real engine; never skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use common::World;

#[test]
fn progress_is_quiet_without_a_tty_unless_verbose() {
    let world = World::new();
    let spec = world.spec("L1", &["true"], "");
    let quiet = world.run(&spec);
    assert!(!quiet.stderr.contains("prepare"), "{}", quiet.stderr);
    let out = world.command(&spec).arg("-v").output().unwrap();
    let loud = String::from_utf8_lossy(&out.stderr);
    for phase in ["admit", "prepare", "agent", "judge", "export"] {
        assert!(loud.contains(phase), "no `{phase}` line in:\n{loud}");
    }
    assert!(
        loud.lines()
            .any(|l| l.trim_start().starts_with('[') && l.contains("s]")),
        "no elapsed time:\n{loud}"
    );
}

#[test]
fn keep_leaves_the_work_dir_and_default_removes_it() {
    let world = World::new();
    let spec = world.spec("L1", &["sh", "-c", "echo kept > kept.txt"], "");
    let out = world.command(&spec).arg("--keep").output().unwrap();
    let ran = common::ran(out);
    let dir = world.state.join("tasks").join(ran.task_id());
    assert!(
        dir.join("upper/kept.txt").exists(),
        "--keep removed {}",
        dir.display()
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&dir.display().to_string()),
        "--keep must still unmount"
    );
    let again = world.run(&spec);
    world.assert_clean(&again.task_id());
}

#[test]
fn symlinks_are_exported_as_links_never_followed() {
    let world = World::new();
    let script = "ln -s /etc/shadow leak && ln -s /etc/passwd /airlock/out/passwd-link && echo ok > /airlock/out/report.md";
    let ran = world.run(&world.spec("L1", &["sh", "-c", script], ""));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let patch = world.artifact(&ran, "diff.patch");
    assert!(
        patch.contains("new file mode 120000") && patch.contains("+/etc/shadow"),
        "{patch}"
    );
    assert!(
        !patch.contains("root:"),
        "a link target's content was exported"
    );
    let out = world.artifacts.join(ran.task_id()).join("out");
    assert!(out.join("report.md").exists());
    assert!(
        !out.join("passwd-link").exists(),
        "a symlink in out/ was exported"
    );
    let events = world.artifact(&ran, "events.jsonl");
    assert!(
        events.contains("out_skipped") && events.contains("passwd-link"),
        "{events}"
    );
}

/// The engine refuses to create the agent's container (Docker's minimum memory is 6 MB): the
/// task ends `error`, exit 4, with its summary and events written and nothing left behind.
#[test]
fn an_engine_error_mid_task_still_cleans_up_and_records() {
    let world = World::new();
    let ran = world.run(&world.spec("L1", &["true"], "[limits]\nmemory = \"4m\""));
    assert_eq!(ran.code, 4, "{}", ran.stderr);
    assert_eq!(ran.state_reason(), ("error".into(), "engine_error".into()));
    assert!(
        ran.summary()["message"]
            .as_str()
            .unwrap()
            .contains("create container"),
        "{}",
        ran.stdout
    );
    assert!(world.artifact(&ran, "events.jsonl").contains("\"error\""));
    world.assert_clean(&ran.task_id());
}

/// The container is removed behind airlock's back mid-run (the engine loses it): the task ends
/// `error`/`engine_error`, and what the agent printed before still reaches its log.
#[test]
fn an_engine_error_mid_container_keeps_the_output_captured_so_far() {
    let world = World::new();
    let script = "echo captured-before-the-fault; sleep 120";
    let (spec, marker) = world.marked_spec("L1", &["sh", "-c", script], "");
    let child = common::spawn(&mut world.command(&spec));
    let ctr = common::wait_for_container(&marker);
    let id = ctr["Id"].as_str().unwrap().to_string();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let logs = std::process::Command::new("docker")
            .args(["logs", &id])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&logs.stdout).contains("captured-before") {
            break;
        }
        assert!(std::time::Instant::now() < until, "the agent never printed");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let rm = std::process::Command::new("docker")
        .args(["rm", "-f", &id])
        .output()
        .unwrap();
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    let ran = common::ran(child.wait_with_output().unwrap());
    assert_eq!(ran.code, 4, "{}", ran.stderr);
    assert_eq!(ran.state_reason(), ("error".into(), "engine_error".into()));
    let log = world.artifact(&ran, "logs/agent-1.log");
    assert!(log.contains("captured-before-the-fault"), "{log}");
    assert!(log.contains("the engine failed"), "{log}");
    world.assert_clean(&ran.task_id());
}

#[test]
fn a_program_missing_from_the_image_is_agent_not_runnable() {
    let world = World::new();
    let ran = world.run(&world.spec("L1", &["/no/such/program"], ""));
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "agent_not_runnable".into())
    );
    assert_eq!(ran.summary()["attempts"][0]["agent"]["exit_code"], 127);
    world.assert_clean(&ran.task_id());
}

/// An artifacts root that others can write is refused before anything runs: exit 2, naming the
/// path, its mode and the fix; the state dir likewise.
#[test]
fn an_artifacts_root_others_can_write_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::new();
    let spec = world.spec("L1", &["true"], "");
    std::fs::create_dir_all(&world.artifacts).unwrap();
    std::fs::set_permissions(&world.artifacts, std::fs::Permissions::from_mode(0o777)).unwrap();
    let ran = world.run(&spec);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let root = world.artifacts.display().to_string();
    for part in [root.as_str(), "0777", "chmod go-w"] {
        assert!(ran.stderr.contains(part), "no `{part}` in: {}", ran.stderr);
    }
    assert!(!world.state.join("tasks").exists(), "something ran");
    std::fs::set_permissions(&world.artifacts, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(&world.state).unwrap();
    std::fs::set_permissions(&world.state, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let ran = world.run(&spec);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("--state-dir") && ran.stderr.contains("1777"),
        "{}",
        ran.stderr
    );
}

/// While the agent runs, `<root>/<id>/logs` and `<root>/<id>/out` are swapped for links to a
/// dir outside: the task's writes through them are refused, and nothing lands outside.
#[test]
fn links_planted_in_the_task_dir_mid_run_are_never_written_through() {
    let world = World::new();
    let outside = world.artifacts.parent().unwrap().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let script = "echo report > /airlock/out/report.md; sleep 3; echo done";
    let (spec, marker) = world.marked_spec("L1", &["sh", "-c", script], "");
    let child = common::spawn(&mut world.command(&spec));
    let task = common::wait_for_task(&marker);
    let dir = world.artifacts.join(&task);
    for sub in ["logs", "out"] {
        let p = dir.join(sub);
        std::fs::remove_dir_all(&p).unwrap();
        std::os::unix::fs::symlink(&outside, &p).unwrap();
    }
    let ran = common::ran(child.wait_with_output().unwrap());
    let left: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "written through a planted link: {left:?}");
    assert_ne!(
        ran.code, 0,
        "the export through a link passed: {}",
        ran.stderr
    );
    let summary = world.artifact(&ran, "summary.json");
    assert!(summary.contains("symbolic link"), "{summary}");
    world.assert_clean(&task);
}
