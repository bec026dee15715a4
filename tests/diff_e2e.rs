//! The diff exported after a real run, and an agent that plants git config and hooks in its work
//! tree: nothing it planted runs on the host.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use common::World;

#[test]
fn every_kind_of_change_appears_in_diff_patch() {
    let world = World::with_files(&[
        ("README.md", "hello\n"),
        ("src/app.py", "print('hi')\n"),
        ("docs/old.md", "obsolete\n"),
    ]);
    world.edit_policies("allow_binary = false", "allow_binary = true");
    let script = "echo more >> README.md && rm docs/old.md && mv src/app.py src/main.py && \
                  echo new > added.txt && printf '\\000\\001\\002' > blob.bin && ln -s README.md link && mkfifo pipe";
    let ran = world.run(&world.spec("L1", &["sh", "-c", script], ""));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let patch = world.artifact(&ran, "diff.patch");
    for want in [
        "+more",
        "deleted file mode",
        "docs/old.md",
        "rename from src/app.py",
        "rename to src/main.py",
        "added.txt",
        "GIT binary patch",
        "new file mode 120000",
    ] {
        assert!(patch.contains(want), "want `{want}` in:\n{patch}");
    }
    assert!(!patch.contains("pipe"), "a FIFO was exported");
    let files = ran.summary()["files_changed"].as_array().unwrap().len();
    assert_eq!(files, 6, "{}", ran.stdout);
    world.assert_clean(&ran.task_id());
}

#[test]
fn planted_git_config_and_hooks_never_run_on_the_host() {
    let world = World::new();
    let canary = format!("/tmp/{}", common::unique("airlock-canary"));
    let script = format!(
        "mkdir -p .git/hooks && printf '[core]\\n\\tfsmonitor = touch {canary}\\n\\thooksPath = .git/hooks\\n[diff]\\n\\texternal = touch {canary}\\n' > .git/config && \
         for h in pre-commit post-checkout post-index-change reference-transaction; do printf '#!/bin/sh\\ntouch {canary}\\n' > .git/hooks/$h; chmod +x .git/hooks/$h; done && \
         echo '* filter=evil diff=evil' > .gitattributes && echo changed >> README.md"
    );
    let ran = world.run(&world.spec(
        "L2",
        &["sh", "-c", &script],
        "[gate]\ncommands = [[\"true\"]]",
    ));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(world.artifact(&ran, "diff.patch").contains("+changed"));
    assert!(
        !std::path::Path::new(&canary).exists(),
        "something the agent planted ran on the host"
    );
    assert!(
        ran.summary()["branch"]
            .as_str()
            .unwrap()
            .starts_with("agent/"),
        "{}",
        ran.stdout
    );
    world.assert_clean(&ran.task_id());
}
