//! Golden test of `evidence.md`: a fixed task with hostile container output renders exactly
//! as `testdata/evidence.golden.md`. `UPDATE_GOLDEN=1 cargo test --lib evidence_golden`
//! rewrites the file (review the diff before committing it).

use std::path::Path;

use serde_json::json;

use super::evidence::{render, Evidence};
use crate::artifacts::Summary;
use crate::policy::risk::{classify, ChangeFacts};
use crate::policy::{admit, load_embedded, ChangedFile, Trigger};
use crate::workspace::Diff;

const GOLDEN: &str = "src/runner/export/testdata/evidence.golden.md";

const SPEC: &str = r#"
title = "Validate e-mail addresses @maintainers <b>now</b>"
level = "L2"
kind = "bugfix"
acceptance = ["`validate('a@b')` returns True", "Invalid | addresses are rejected"]
[repo]
url = "https://git.example/acme/app.git"
base = "main"
[issue]
text = "fix it"
[agent]
image = "airlock/demo:latest"
command = ["demo-agent", "--fix"]
[gate]
commands = [["python3", "-m", "pytest", "-q"]]
[scope]
allowed = ["src/auth/validators/**", "tests/**", "db/migrations/**"]
forbidden = ["src/auth/session/**"]
max_files_changed = 5
dependencies = "forbid"
"#;

fn file(path: &str, status: char) -> ChangedFile {
    ChangedFile {
        path: path.into(),
        old_path: None,
        status,
        binary: false,
    }
}

fn diff() -> Diff {
    Diff {
        patch: b"diff --git a/x b/x\n".to_vec(),
        files: vec![
            file("src/auth/validators/email.py", 'M'),
            file("tests/test_<script>alert(1)</script>.py", 'A'),
            file("db/migrations/0002_email.py", 'A'),
            file("src/auth/validators/old_regex.py", 'D'),
        ],
        skipped: vec![("tests/fixtures/big.bin".into(), "too_large".into())],
        insertions: 42,
        deletions: 17,
    }
}

fn summary(diff: &Diff, risk: crate::policy::Risk) -> Summary {
    let container = |log: &str, omitted: u64| json!({ "container": "c", "argv": ["x"], "ended": "exited", "exit_code": 0, "oom_killed": false, "duration_s": 1.5, "log": log, "log_bytes_omitted": omitted });
    let failure = |id: &str, message: &str, origin: Option<&str>| json!({ "tool": "pytest", "kind": "assertion", "file": null, "line": null, "test_id": id, "message": message, "excerpt": message, "signature": "0000000000000000", "origin": origin });
    let v = json!({
        "format_version": 1, "task_id": "20261201-230000-abcdef",
        "title": "Validate e-mail addresses @maintainers <b>now</b>",
        "state": "green", "reason": crate::vocab::Reason::GatePassed, "message": null, "level": "L2",
        "runtime": "runc",
        "repo": { "url": "https://git.example/acme/app.git", "base": "main", "base_commit": "0123456789abcdef0123456789abcdef01234567" },
        "attempts": [
            { "n": 1, "agent": container("logs/agent-1.log", 0), "gate": [container("logs/gate-1.log", 0)],
              "gate_passed": false, "tests": { "passed": 3, "failed": 1, "skipped": 0 },
              "failures": [failure("tests/test_email.py::test_plus", "assert **False** | @root\u{1b}[2J", Some("introduced")),
                           failure("tests/test_legacy.py::test_old", "broken on main too", Some("preexisting"))],
              "flaky": [], "red_flags": [], "scope": { "verdict": "ok" }, "verdict": "retry", "files_changed": 4 },
            { "n": 2, "agent": container("logs/agent-2.log", 0), "gate": [container("logs/gate-2.log", 2048)],
              "gate_passed": true, "tests": { "passed": 4, "failed": 0, "skipped": 1 },
              "failures": [], "flaky": [failure("tests/test_net.py::test_`retry`", "flaky", None)],
              "red_flags": [], "scope": { "verdict": "ok" }, "verdict": "green", "files_changed": 4 }
        ],
        "files_changed": diff.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>(),
        "diff": { "files": 4, "insertions": 42, "deletions": 17, "bytes": 19, "skipped": [["tests/fixtures/big.bin", "too_large"]] },
        "paths": [], "branch": "agent/20261201-230000-abcdef-validate-e-mail-addresses",
        "commit": "fedcba9876543210fedcba9876543210fedcba98", "pushed": false, "kind": "bugfix",
        "risk": risk, "task_scope": null,
        "started_at": "2026-12-01T23:00:00.000Z", "finished_at": "2026-12-01T23:01:00.000Z",
        "duration_s": 60.0, "artifacts": "/tmp/a"
    });
    serde_json::from_value(v).unwrap()
}

fn rendered() -> String {
    let spec = crate::spec::parse_str(SPEC, Path::new("/specs/task.toml")).unwrap();
    let policies = load_embedded().unwrap();
    let adm = admit(&spec, &policies, Trigger::cli()).unwrap();
    let diff = diff();
    let risk = classify(
        &adm.risk,
        &ChangeFacts {
            files: &diff.files,
            lines: 59,
        },
    );
    let summary = summary(&diff, risk);
    render(&Evidence {
        spec: &spec,
        summary: &summary,
        diff: &diff,
        adm: &adm,
    })
}

#[test]
fn evidence_matches_the_golden_file() {
    let got = rendered();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if got != want {
        let first = got.lines().zip(want.lines()).position(|(a, b)| a != b);
        panic!("evidence.md differs from {GOLDEN} (first differing line {first:?}); got:\n{got}");
    }
}

#[test]
fn every_reviewer_section_is_present_in_order() {
    let got = rendered();
    let mut at = 0;
    for h in [
        "## Summary",
        "## Acceptance criteria",
        "## Files changed",
        "## Tests run",
        "## Known limitations",
        "## Out of scope",
        "## Risk",
        "## Rollback",
        "## Reproduce the gate locally",
        "_AI-assistance disclosure:",
    ] {
        let i = got[at..]
            .find(h)
            .unwrap_or_else(|| panic!("{h} missing or out of order:\n{got}"));
        at += i + h.len();
    }
}

#[test]
fn nothing_from_the_container_is_live_markup() {
    let got = rendered();
    for bad in [
        "<script>",
        "<b>",
        "@maintainers",
        "@root",
        "\u{1b}",
        "**False**",
    ] {
        assert!(!got.contains(bad), "{bad:?} reached evidence.md:\n{got}");
    }
    assert!(got.contains("&lt;script&gt;"), "{got}");
    assert!(got.contains("git revert --no-edit fedcba9876543210fedcba9876543210fedcba98"));
    assert!(got.contains("Pre-existing failure in attempt 1"));
    assert!(got.contains("lost 2048 byte(s)"));
    assert!(got.contains("Classification: **high**"));
}
