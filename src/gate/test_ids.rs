//! The ids of the tests a runner reports having run, where it prints them one per line:
//! pytest `-v` (`path::test PASSED`) and `-rA` (`PASSED path::test`), cargo test
//! (`test name ... ok`), go test `-v` (`--- PASS: TestX`). Runners that print only a count
//! (pytest `-q`) give `None`, and the count from their summary line is used instead.

use std::collections::BTreeSet;

/// More ids than this are not compared one by one (the counts still are).
pub const MAX_TEST_IDS: usize = 20_000;

const PYTEST_OUTCOMES: &[&str] = &["PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS"];

/// Sorted, deduplicated ids of every test `output` reports (passed, failed or skipped); `None`
/// when the runner printed none or more than [`MAX_TEST_IDS`].
pub fn reported_test_ids(output: &str) -> Option<Vec<String>> {
    let mut ids = BTreeSet::new();
    for line in output.lines() {
        if let Some(id) = id_in(line.trim()) {
            ids.insert(id.to_string());
            if ids.len() > MAX_TEST_IDS {
                return None;
            }
        }
    }
    (!ids.is_empty()).then(|| ids.into_iter().collect())
}

fn id_in(line: &str) -> Option<&str> {
    cargo(line)
        .or_else(|| go(line))
        .or_else(|| pytest_verbose(line))
        .or_else(|| pytest_summary(line))
}

/// `test tests::adds ... ok` (also `FAILED`, `ignored`).
fn cargo(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("test ")?;
    let (name, outcome) = rest.split_once(" ... ")?;
    let outcome = outcome.split_whitespace().next()?;
    (["ok", "FAILED", "ignored"].contains(&outcome) && !name.contains(' ')).then_some(name)
}

/// `--- PASS: TestX (0.00s)` (also `FAIL`, `SKIP`; subtests keep their `Parent/child` name).
fn go(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("--- ")?;
    let (outcome, rest) = rest.split_once(": ")?;
    ["PASS", "FAIL", "SKIP"]
        .contains(&outcome)
        .then(|| rest.split_whitespace().next())
        .flatten()
}

/// `tests/test_a.py::test_b PASSED [ 50%]`.
fn pytest_verbose(line: &str) -> Option<&str> {
    let (id, rest) = line.split_once(' ')?;
    let outcome = rest.split_whitespace().next()?;
    (id.contains("::") && PYTEST_OUTCOMES.contains(&outcome)).then_some(id)
}

/// `PASSED tests/test_a.py::test_b` and `FAILED tests/test_a.py::test_b - assert ...`.
fn pytest_summary(line: &str) -> Option<&str> {
    let (outcome, rest) = line.split_once(' ')?;
    let id = rest.split(' ').next()?;
    (PYTEST_OUTCOMES.contains(&outcome) && id.contains("::")).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_runner_style() {
        let out = "tests/test_a.py::test_x PASSED                [ 50%]\n\
                   tests/test_a.py::test_y FAILED                [100%]\n\
                   FAILED tests/test_a.py::test_y - assert 1 == 2\n\
                   PASSED tests/test_b.py::test_z\n\
                   test util::adds ... ok\ntest util::subs ... FAILED\n\
                   --- PASS: TestParse (0.00s)\n    --- FAIL: TestParse/empty (0.00s)\n";
        assert_eq!(
            reported_test_ids(out).unwrap(),
            [
                "TestParse",
                "TestParse/empty",
                "tests/test_a.py::test_x",
                "tests/test_a.py::test_y",
                "tests/test_b.py::test_z",
                "util::adds",
                "util::subs"
            ]
        );
    }

    #[test]
    fn counts_only_output_has_no_ids() {
        assert_eq!(
            reported_test_ids("...F\n1 failed, 3 passed in 0.1s\n"),
            None
        );
        assert_eq!(reported_test_ids("test result: ok. 3 passed\n"), None);
    }
}
