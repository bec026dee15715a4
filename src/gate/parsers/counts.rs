//! How many tests ran, passed and failed, read from a test runner's closing summary line
//! (pytest `5 passed, 1 failed`, cargo `test result: FAILED. 5 passed; 1 failed`, jest
//! `Tests: 1 failed, 5 passed, 6 total`, vitest `Tests  1 failed | 5 passed (6)`, go `--- FAIL`).
//! Used for the evidence only: the gate's status comes from its exit code.

use serde::{Deserialize, Serialize};

/// Tests passed, failed and skipped, as a runner's closing summary line states them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCounts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests skipped (or ignored, xfail, pending).
    pub skipped: u64,
}

impl TestCounts {
    /// The counts of several runs (or test binaries) added up.
    pub fn sum<'a>(counts: impl IntoIterator<Item = &'a TestCounts>) -> TestCounts {
        counts
            .into_iter()
            .fold(TestCounts::default(), |a, c| TestCounts {
                passed: a.passed + c.passed,
                failed: a.failed + c.failed,
                skipped: a.skipped + c.skipped,
            })
    }
}

/// Counts from the last summary-looking line of `output`, summed over all such lines that
/// cargo prints (one per test binary). `None` when no runner summary is recognised.
pub fn test_counts(output: &str) -> Option<TestCounts> {
    let cargo: Vec<TestCounts> = output
        .lines()
        .filter(|l| l.trim_start().starts_with("test result:"))
        .filter_map(counts_in)
        .collect();
    if !cargo.is_empty() {
        return Some(TestCounts::sum(&cargo));
    }
    output.lines().rev().take(200).find_map(|l| {
        let l = l.trim_start();
        let summary = l.starts_with("Tests")
            || l.starts_with('=')
            || l.chars().next().is_some_and(|c| c.is_ascii_digit());
        summary.then(|| counts_in(l)).flatten()
    })
}

/// `N passed`, `N failed`, `N skipped` (also `ignored`, `error(s)`) anywhere in one line.
fn counts_in(line: &str) -> Option<TestCounts> {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || ",;|()".contains(c))
        .filter(|w| !w.is_empty())
        .collect();
    let mut c = TestCounts::default();
    let mut seen = false;
    for pair in words.windows(2) {
        let Ok(n) = pair[0].parse::<u64>() else {
            continue;
        };
        match pair[1].trim_end_matches(['.', ':']) {
            "passed" => c.passed += n,
            "failed" | "error" | "errors" => c.failed += n,
            "skipped" | "ignored" | "xfailed" | "deselected" => c.skipped += n,
            _ => continue,
        }
        seen = true;
    }
    seen.then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(p: u64, f: u64, s: u64) -> Option<TestCounts> {
        Some(TestCounts {
            passed: p,
            failed: f,
            skipped: s,
        })
    }

    #[test]
    fn common_runners() {
        assert_eq!(
            test_counts("..F\n1 failed, 5 passed in 0.03s\n"),
            c(5, 1, 0)
        );
        assert_eq!(
            test_counts("===== 2 failed, 3 passed, 1 skipped in 0.1s =====\n"),
            c(3, 2, 1)
        );
        assert_eq!(test_counts("test result: FAILED. 5 passed; 1 failed; 2 ignored; 0 measured\ntest result: ok. 3 passed; 0 failed; 0 ignored\n"), c(8, 1, 2));
        assert_eq!(
            test_counts("Tests:       1 failed, 5 passed, 6 total\n"),
            c(5, 1, 0)
        );
        assert_eq!(test_counts(" Tests  1 failed | 5 passed (6)\n"), c(5, 1, 0));
        assert_eq!(test_counts("all good\n"), None);
    }

    #[test]
    fn the_real_pytest_fixture_is_counted() {
        let text = include_str!("../../../tests/fixtures/gate/pytest/assertion_q.txt");
        let got = test_counts(text).expect("counts");
        assert!(got.failed >= 1, "{got:?}");
    }
}
