//! Artifact writes never follow a symbolic link (#10 item 7): a link planted at the task dir,
//! at `logs/`, at a file name or in a copied tree is refused, and nothing lands outside the root.
//! Real file system, as root (the runner's own user); no engine needed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::os::unix::fs::symlink;
use std::path::Path;

use airlock::artifacts::{bundle, copy_tree, write_atomic, ArtifactDir, CopyReport, EventLog};

/// A scratch root and an "outside" dir a planted link points to.
struct Scene {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn scene() -> Scene {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("artifacts");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(&outside).unwrap();
    Scene {
        root,
        outside,
        _tmp: tmp,
    }
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "written outside the root: {left:?}");
}

#[test]
fn a_task_dir_planted_as_a_link_is_refused() {
    let s = scene();
    symlink(&s.outside, s.root.join("t1")).unwrap();
    let e = ArtifactDir::create(&s.root, "t1").unwrap_err().to_string();
    assert!(e.contains("symbolic link") && e.contains("t1"), "{e}");
    assert_empty(&s.outside);
}

#[test]
fn a_logs_dir_planted_as_a_link_is_refused_for_every_writer() {
    let s = scene();
    let dir = ArtifactDir::create(&s.root, "t2").unwrap();
    std::fs::remove_dir(dir.path("logs")).unwrap();
    symlink(&s.outside, dir.path("logs")).unwrap();
    let e = write_atomic(&dir.log_path("gate", 1), b"hostile").unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    let mut events = EventLog::new(dir.path("logs/events.jsonl"), "t2");
    events.emit("x", serde_json::json!({}));
    assert!(ArtifactDir::create(&s.root, "t2").is_err());
    assert_empty(&s.outside);
}

#[test]
fn a_file_planted_as_a_link_is_replaced_not_followed() {
    let s = scene();
    let dir = ArtifactDir::create(&s.root, "t3").unwrap();
    let target = s.outside.join("victim");
    std::fs::write(&target, "original").unwrap();
    symlink(&target, dir.path("summary.json")).unwrap();
    symlink(&target, dir.path("events.jsonl")).unwrap();
    write_atomic(&dir.path("summary.json"), b"{}").unwrap();
    let meta = std::fs::symlink_metadata(dir.path("summary.json")).unwrap();
    assert!(meta.is_file(), "the link was not replaced");
    let mut events = EventLog::new(dir.path("events.jsonl"), "t3");
    events.emit("x", serde_json::json!({}));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "original");
}

#[test]
fn copy_and_bundle_never_follow_links() {
    let s = scene();
    let src = s.root.parent().unwrap().join("agent-out");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("report.md"), "ok").unwrap();
    std::fs::write(s.outside.join("secret"), "root-only").unwrap();
    symlink(s.outside.join("secret"), src.join("leak")).unwrap();
    symlink(&s.outside, src.join("sub/escape")).unwrap();
    let dir = ArtifactDir::create(&s.root, "t4").unwrap();
    // A link planted where the copy will write a dir: refused, nothing written through it.
    symlink(&s.outside, dir.path("out/sub")).unwrap();
    let mut report = CopyReport::default();
    let e = copy_tree(&src, &dir.path("out"), 1 << 20, &mut report).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(
        std::fs::read_dir(&s.outside).unwrap().count(),
        1,
        "only the secret"
    );
    std::fs::remove_file(dir.path("out/sub")).unwrap();
    let mut report = CopyReport::default();
    copy_tree(&src, &dir.path("out"), 1 << 20, &mut report).unwrap();
    assert!(!dir.path("out/leak").exists() && !dir.path("out/sub/escape").exists());
    // A link beside the bundle's files is left out; the link's target never enters it.
    symlink(s.outside.join("secret"), dir.path("linked.txt")).unwrap();
    let tgz = bundle(&dir.dir, "t4").unwrap();
    let mut names = vec![];
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&tgz).unwrap(),
    ));
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut body = String::new();
        std::io::Read::read_to_string(&mut e, &mut body).unwrap();
        assert!(!body.contains("root-only"), "a link's target was bundled");
        names.push(e.path().unwrap().display().to_string());
    }
    assert!(names.contains(&"t4/out/report.md".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("linked")), "{names:?}");
}
