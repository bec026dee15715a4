//! What a person sees when a task ends: paths given relative to the working directory, and the
//! engine named in progress and summary.json. Real engine; never skipped.

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
