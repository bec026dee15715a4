//! Helpers shared by the integration tests: git fixtures, the engine connection, sweeps.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Run a shell snippet, panicking with its output on failure.
pub fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("bash")
        .arg("-euc")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "script failed: {script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bare repo at `<dir>/src.git` whose `main` holds `files` (path, content).
pub fn make_repo(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let work = dir.join("src-work");
    std::fs::create_dir_all(&work).unwrap();
    for (p, c) in files {
        let path = work.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    }
    sh(&work, "git init -q -b main . && git add -A && git -c user.name=t -c user.email=t@t commit -qm init && git clone -q --bare . ../src.git");
    dir.join("src.git")
}

/// A unique name for this test run.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}
