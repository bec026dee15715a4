//! Golden tests: the shapes of `summary.json` and `feedback.json` are the contract; any change
//! to them shows up as a diff of the files in `golden/`. Regenerate with `UPDATE_GOLDEN=1` only
//! when the contract changes on purpose (and say so in docs/DESIGN.md).

use super::*;
use crate::gate::{Failure, FailureKind, RedFlag, RedFlagKind, TestCounts};
use crate::vocab::{Ended, Reason, ScopeVerdict};

fn failure() -> Failure {
    Failure {
        tool: "pytest".into(),
        kind: FailureKind::Assertion,
        file: Some("tests/test_x.py".into()),
        line: Some(12),
        test_id: Some("tests/test_x.py::test_add".into()),
        message: "assert 1 == 2".into(),
        excerpt: "    assert add(1, 1) == 3\nE   assert 2 == 3".into(),
        signature: "0123456789abcdef".into(),
        class: crate::gate::FailureClass::Test,
        origin: Some(crate::gate::FailureOrigin::Introduced),
    }
}

fn container(role: &str, n: u32, exit: i64) -> ContainerRecord {
    ContainerRecord {
        container: format!("airlock-t-{role}{n}-0-abcdef"),
        argv: vec!["python3".into(), "-m".into(), "pytest".into()],
        ended: Ended::Exited,
        exit_code: Some(exit),
        oom_killed: false,
        duration_s: 1.25,
        log: format!("logs/{role}-{n}.log"),
        log_bytes_omitted: 0,
        truncated: None,
    }
}

fn summary() -> Summary {
    let flag = RedFlag {
        kind: RedFlagKind::TestRemoved,
        file: "tests/test_x.py".into(),
        line: Some(3),
        detail: "test_sub removed".into(),
        since_previous_attempt: false,
    };
    let first = AttemptRecord {
        n: 1,
        agent: Some(container("agent", 1, 0)),
        gate: vec![container("gate", 1, 1)],
        gate_passed: Some(false),
        tests: Some(TestCounts {
            passed: 5,
            failed: 1,
            skipped: 0,
        }),
        failures: vec![failure()],
        flaky: vec![],
        red_flags: vec![],
        scope: ScopeVerdict::Ok,
        verdict: AttemptVerdict::Retry,
        files_changed: 1,
    };
    let second = AttemptRecord {
        n: 2,
        agent: Some(container("agent", 2, 0)),
        gate: vec![container("gate", 2, 0)],
        gate_passed: Some(true),
        tests: None,
        failures: vec![],
        flaky: vec![failure()],
        red_flags: vec![flag],
        scope: ScopeVerdict::NeedsHuman {
            reason: Reason::ProtectedPath,
            paths: vec![".github/workflows/ci.yml".into()],
        },
        verdict: AttemptVerdict::Stop,
        files_changed: 2,
    };
    Summary {
        format_version: SUMMARY_FORMAT,
        task_id: "20260101-000000-abcdef".into(),
        title: "Add a delete command".into(),
        state: State::NeedsHuman,
        reason: Reason::RedFlag,
        message: Some("detail".into()),
        level: "L2".into(),
        runtime: Some("runsc".into()),
        engine: None,
        repo: RepoRecord {
            url: Some("/srv/git/app.git".into()),
            base: Some("main".into()),
            base_commit: Some("0123abcd".into()),
        },
        attempts: vec![first, second],
        files_changed: vec!["src/app.py".into(), "tests/test_x.py".into()],
        diff: DiffStats {
            files: 2,
            insertions: 10,
            deletions: 3,
            bytes: 420,
            skipped: vec![("big.bin".into(), "too_large".into())],
        },
        paths: vec!["tests/test_x.py".into()],
        branch: Some("agent/20260101-000000-abcdef-add-a-delete-command".into()),
        commit: Some("89abcdef".into()),
        pushed: false,
        kind: "bugfix".into(),
        risk: None,
        task_scope: None,
        started_at: "2026-01-01T00:00:00.000Z".into(),
        finished_at: "2026-01-01T00:01:00.000Z".into(),
        duration_s: 60.0,
        artifacts: "/var/lib/airlock/artifacts/20260101-000000-abcdef".into(),
        model_traffic: None,
        ci: vec![],
    }
}

fn feedback() -> Feedback {
    Feedback {
        attempt: 1,
        failures: vec![failure()],
        ci: None,
    }
}

/// Compare `value` pretty-printed with `golden/<name>`; `UPDATE_GOLDEN=1` rewrites the file.
fn check(name: &str, value: &impl serde::Serialize) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/artifacts/golden")
        .join(name);
    // Through `Value`, whose keys are sorted: the shape is pinned, not the key order.
    let got = serde_json::to_string_pretty(&serde_json::to_value(value).unwrap()).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        got,
        want,
        "{} changed: a contract change must be deliberate (UPDATE_GOLDEN=1 rewrites it)",
        path.display()
    );
}

#[test]
fn summary_json_shape_is_pinned() {
    check("summary.json", &summary());
}

#[test]
fn feedback_json_shape_is_pinned() {
    check("feedback.json", &feedback());
}

#[test]
fn summary_json_reads_back() {
    let text = serde_json::to_string(&summary()).unwrap();
    let back: Summary = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
}
