//! Host-side checkout and diff against a real overlay (needs root, like the runner itself).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use std::os::unix::fs::MetadataExt;

use airlock::spec::RepoSpec;
use airlock::workspace::{prepare, DiffLimits, PrepareOptions};
use common::{make_repo, sh};

const LIMITS: DiffLimits = DiffLimits {
    max_file_bytes: 1 << 20,
    max_paths: 1000,
};

fn setup(files: &[(&str, &str)]) -> (tempfile::TempDir, airlock::workspace::Workspace) {
    let tmp = tempfile::tempdir().unwrap();
    let url = make_repo(tmp.path(), files).to_string_lossy().into_owned();
    let repo = RepoSpec {
        url,
        base: "main".into(),
    };
    let opts = PrepareOptions::new(tmp.path().join("state"), "t1", false, (256 << 20, 100_000));
    let ws = prepare(&repo, &opts).unwrap();
    (tmp, ws)
}

#[test]
fn checkout_is_owned_by_the_sandbox_uid_and_diff_sees_every_kind_of_change() {
    let (_tmp, ws) = setup(&[
        ("a.txt", "one\n"),
        ("gone.txt", "bye\n"),
        ("old.txt", "rename me please, a long enough line\n"),
        ("d/x.txt", "x\n"),
    ]);
    let meta = std::fs::metadata(ws.work_tree.join("a.txt")).unwrap();
    assert_eq!(meta.uid(), 65532);
    assert!(
        ws.diff(LIMITS).unwrap().patch.is_empty(),
        "fresh checkout has no diff"
    );
    sh(
        &ws.work_tree,
        "echo two >> a.txt; rm gone.txt; mv old.txt new.txt; echo new > added.txt; \
        printf '\\x00\\x01\\x02' > bin.dat; ln -s a.txt link; rm -r d; mkfifo fifo",
    );
    let d = ws.diff(LIMITS).unwrap();
    let patch = String::from_utf8_lossy(&d.patch);
    assert!(patch.contains("+two"), "{patch}");
    assert!(
        patch.contains("deleted file mode") && patch.contains("gone.txt"),
        "{patch}"
    );
    assert!(
        patch.contains("rename from old.txt") && patch.contains("rename to new.txt"),
        "{patch}"
    );
    assert!(patch.contains("GIT binary patch"), "{patch}");
    assert!(
        patch.contains("new file mode 120000"),
        "symlink as a link: {patch}"
    );
    assert!(patch.contains("d/x.txt"), "{patch}");
    assert!(
        d.skipped
            .iter()
            .any(|(p, why)| p == "fifo" && why == "special_file"),
        "{:?}",
        d.skipped
    );
    let bin = d.files.iter().find(|f| f.path == "bin.dat").unwrap();
    assert!(bin.binary);
    ws.tear_down(false).unwrap();
}

#[test]
fn sparse_huge_file_is_skipped_not_read() {
    let (_tmp, ws) = setup(&[("a.txt", "one\n")]);
    sh(&ws.work_tree, "truncate -s 100G huge.bin");
    let started = std::time::Instant::now();
    let d = ws.diff(LIMITS).unwrap();
    assert!(started.elapsed().as_secs() < 5);
    assert!(d
        .skipped
        .iter()
        .any(|(p, why)| p == "huge.bin" && why == "too_large"));
    ws.tear_down(false).unwrap();
}

#[test]
fn planted_git_config_and_hooks_never_run_on_the_host() {
    let (tmp, ws) = setup(&[("a.txt", "one\n")]);
    let canary = tmp.path().join("canary");
    let c = canary.display();
    sh(&ws.work_tree, &format!("git() {{ command git -c safe.directory='*' \"$@\"; }}; git init -q . && git config core.fsmonitor 'touch {c}' && \
        printf '#!/bin/sh\\ntouch {c}\\n' > .git/hooks/post-index-change && chmod +x .git/hooks/*; \
        printf '#!/bin/sh\\ntouch {c}\\n' > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit; \
        git config diff.external 'touch {c}'; \
        echo '* diff=evil filter=evil' > .gitattributes; git config diff.evil.textconv 'touch {c}'; \
        git config filter.evil.clean 'touch {c}'; echo changed > a.txt"));
    let d = ws.diff(LIMITS).unwrap();
    assert!(String::from_utf8_lossy(&d.patch).contains("+changed"));
    assert!(
        !canary.exists(),
        "a hook, fsmonitor or driver planted by the agent ran on the host"
    );
    ws.tear_down(false).unwrap();
}

#[test]
fn replacing_a_directory_with_a_symlink_or_file_is_diffed_without_following_it() {
    let (_tmp, ws) = setup(&[("a/b.txt", "b\n"), ("c/d.txt", "d\n"), ("keep.txt", "k\n")]);
    sh(
        &ws.work_tree,
        "rm -r a && ln -s /etc a && rm -r c && echo now-a-file > c",
    );
    let d = ws.diff(LIMITS).unwrap();
    let patch = String::from_utf8_lossy(&d.patch);
    assert!(
        patch.contains("deleted file mode") && patch.contains("a/b.txt"),
        "{patch}"
    );
    assert!(
        patch.contains("new file mode 120000") && patch.contains("+/etc"),
        "{patch}"
    );
    assert!(
        patch.contains("c/d.txt") && patch.contains("+now-a-file"),
        "{patch}"
    );
    assert!(!patch.contains("root:"), "followed the symlink to the host");
    ws.tear_down(false).unwrap();
}

#[test]
fn a_path_that_cannot_be_shown_is_skipped_and_reported() {
    let (_tmp, ws) = setup(&[("a.txt", "a\n")]);
    sh(&ws.work_tree, "touch \"$(printf 'bad\\377name')\"");
    let d = ws.diff(LIMITS).unwrap();
    assert!(
        d.skipped.iter().any(|(_, why)| why == "invalid_name"),
        "{:?}",
        d.skipped
    );
    ws.tear_down(false).unwrap();
}
