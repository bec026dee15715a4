//! Red flags in real `git diff --binary` output (`tests/fixtures/gate/diffs/`).

use super::fixture;
use crate::gate::{red_flags, RedFlag};

pub(super) const DIFFS: &[&str] = &[
    "diffs/assertion_removed.diff",
    "diffs/assertion_weakened.diff",
    "diffs/benign.diff",
    "diffs/benign_refactor.diff",
    "diffs/gate_config_edited.diff",
    "diffs/lint_disabled.diff",
    "diffs/skip_added.diff",
    "diffs/snapshot_rewritten.diff",
    "diffs/test_file_deleted.diff",
    "diffs/tests_removed.diff",
    "diffs/timeout_raised.diff",
];

/// `kind file:line` (or `kind file`) per flag, in the order `red_flags` returns them.
fn check(rel: &str, want: &[&str]) -> Vec<String> {
    let flags = red_flags(&fixture(rel));
    let got: Vec<String> = flags.iter().map(describe).collect();
    assert_eq!(got, want, "{rel}: {flags:#?}");
    flags.into_iter().map(|f| f.detail).collect()
}

fn describe(flag: &RedFlag) -> String {
    let kind = serde_json::to_value(flag.kind).unwrap_or_default();
    let kind = kind.as_str().unwrap_or("?");
    match flag.line {
        Some(line) => format!("{kind} {}:{line}", flag.file),
        None => format!("{kind} {}", flag.file),
    }
}

#[test]
fn benign_changes_raise_nothing() {
    check("diffs/benign.diff", &[]);
    check("diffs/benign_refactor.diff", &[]);
}

#[test]
fn deleted_test_file() {
    let details = check(
        "diffs/test_file_deleted.diff",
        &["test_file_deleted tests/test_extra.py"],
    );
    assert_eq!(details, ["test file tests/test_extra.py deleted"]);
}

#[test]
fn removed_tests_in_four_languages() {
    let details = check(
        "diffs/tests_removed.diff",
        &[
            "test_removed go/calc_test.go:11",
            "test_removed src/lib.rs:16",
            "test_removed tests/test_calc.py:11",
            "test_removed web/app.test.js:8",
        ],
    );
    assert_eq!(details[1], "test `doubles_negative` removed");
}

#[test]
fn removed_assertions() {
    check(
        "diffs/assertion_removed.diff",
        &[
            "assertion_removed go/calc_test.go:7",
            "assertion_removed src/parser/tests.rs:5",
            "assertion_removed tests/test_calc.py:8",
            "assertion_removed web/app.spec.ts:4",
        ],
    );
}

#[test]
fn weakened_assertions() {
    let details = check(
        "diffs/assertion_weakened.diff",
        &[
            "assertion_weakened src/lib.rs:13",
            "assertion_weakened tests/test_calc.py:7",
            "assertion_weakened tests/test_calc.py:13",
            "assertion_weakened web/app.spec.ts:4",
            "assertion_weakened web/app.test.js:5",
        ],
    );
    assert_eq!(
        details[2],
        "assertion weakened: `assert x == 1` became `assert x`"
    );
}

#[test]
fn skips_added() {
    check(
        "diffs/skip_added.diff",
        &[
            "skip_added go/calc_test.go:12",
            "skip_added src/lib.rs:12",
            "skip_added tests/test_calc.py:6",
            "skip_added tests/test_calc.py:12",
            "skip_added web/app.test.js:4",
        ],
    );
}

#[test]
fn timeouts_raised() {
    let details = check(
        "diffs/timeout_raised.diff",
        &[
            "timeout_raised pytest.ini:3",
            "gate_config_edited pytest.ini:3",
            "timeout_raised tests/test_calc.py:16",
        ],
    );
    assert_eq!(
        details[0],
        "timeout raised: `timeout = 5` became `timeout = 500`"
    );
}

#[test]
fn lint_disabled() {
    check(
        "diffs/lint_disabled.diff",
        &[
            "lint_disabled app.py:9",
            "lint_disabled src/lib.rs:3",
            "lint_disabled web/app.js:1",
        ],
    );
}

#[test]
fn snapshots_rewritten() {
    check(
        "diffs/snapshot_rewritten.diff",
        &[
            "snapshot_rewritten tests/__snapshots__/test_calc.ambr:4",
            "snapshot_rewritten web/__snapshots__/app.test.js.snap:3",
        ],
    );
}

#[test]
fn gate_configuration_edited() {
    let details = check(
        "diffs/gate_config_edited.diff",
        &[
            "gate_config_edited conftest.py:5",
            "gate_config_edited package.json:5",
            "gate_config_edited pyproject.toml:8",
            "gate_config_edited pytest.ini:4",
            "gate_config_edited setup.cfg:10",
            "gate_config_edited tox.ini:6",
        ],
    );
    assert!(details[1].contains("\"scripts\""), "{}", details[1]);
    assert!(details[4].contains("[tool:pytest]"), "{}", details[4]);
}

#[test]
fn flags_serialise_in_snake_case() {
    let flags = red_flags(&fixture("diffs/test_file_deleted.diff"));
    let json = serde_json::to_value(&flags[0]).expect("serialise");
    assert_eq!(json["kind"], "test_file_deleted");
    assert_eq!(json["line"], serde_json::Value::Null);
}
