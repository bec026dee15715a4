//! Failure classification by well-known phrases.
//!
//! The sandbox has no network and a fixed image, so network, dependency and environment
//! failures are not the agent's fault in the usual sense: the judge treats them differently
//! from assertion failures (no point retrying an agent because DNS does not resolve). The
//! phrases are the ones the tools actually print.

use crate::gate::FailureKind;

const NETWORK: &[&str] = &[
    "Connection refused",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Could not resolve host",
    "Name or service not known",
    "Failed to establish a new connection",
    "No route to host",
    "Couldn't connect to server",
    "ECONNREFUSED",
    "ENOTFOUND",
    "EAI_AGAIN",
    "getaddrinfo failed",
];

const DEPENDENCY: &[&str] = &[
    "No module named",
    "ModuleNotFoundError",
    "cannot find crate",
    "can't find crate",
    "unlinked crate",
    "Cannot find module",
    "ERR_MODULE_NOT_FOUND",
    "no required module provides package",
    "cannot find package",
    "missing go.sum entry",
    "No matching distribution found",
    "Could not find a version that satisfies",
];

/// Phrases that mean "the command itself could not be started", not "a test failed".
const ENV: &[&str] = &[
    "command not found",
    "executable file not found",
    "exec format error",
    "OCI runtime exec failed",
];

const SHELLS: &[&str] = &[
    "sh: ",
    "bash: ",
    "/bin/sh: ",
    "/bin/bash: ",
    "zsh: ",
    "env: ",
];

/// Classify by phrases, most specific cause first. `None` when nothing is recognised.
pub(crate) fn by_keywords(text: &str) -> Option<FailureKind> {
    if contains_any(text, NETWORK) {
        Some(FailureKind::Network)
    } else if contains_any(text, DEPENDENCY) {
        Some(FailureKind::Dependency)
    } else if is_timeout(text) {
        Some(FailureKind::Timeout)
    } else if is_env(text) {
        Some(FailureKind::Env)
    } else {
        None
    }
}

/// Classify a failed test: an assertion message wins (it is the precise signal), then the
/// phrase lists, then the parser's default (a crash or uncaught exception is a `panic`).
pub(crate) fn test_failure(message: &str, detail: &str, default: FailureKind) -> FailureKind {
    if is_assertion(message) {
        return FailureKind::Assertion;
    }
    by_keywords(message)
        .or_else(|| by_keywords(detail))
        .unwrap_or(default)
}

/// Whether a failure message reads as an assertion (Python, Rust, Jest, Chai, JUnit styles).
pub(crate) fn is_assertion(message: &str) -> bool {
    let m = message.trim_start();
    let lower = m.to_ascii_lowercase();
    lower.starts_with("assert")
        || m.starts_with("expect(")
        || m.starts_with("expected ")
        || m.starts_with("Failed: DID NOT RAISE")
        || m.starts_with("Failed: DID NOT WARN")
        || m.contains("AssertionError")
        || m.contains("AssertionFailedError")
        || m.contains("ComparisonFailure")
}

fn is_timeout(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("timed out")
        || lower.contains("exceeded timeout")
        || lower.contains("deadline exceeded")
        || text.contains("Timeout")
        || text.contains("TIMEOUT")
}

/// "No such file or directory" and "Permission denied" count only when a shell reports them
/// about the command it tried to run; inside a test they are ordinary test failures.
fn is_env(text: &str) -> bool {
    contains_any(text, ENV)
        || text.lines().any(|line| {
            let line = line.trim_start();
            SHELLS.iter().any(|s| line.starts_with(s))
                && (line.ends_with(": not found")
                    || line.ends_with("Permission denied")
                    || line.ends_with("No such file or directory"))
        })
}

fn contains_any(text: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| text.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureKind::*;

    #[test]
    fn recognises_each_cause() {
        let cases = [
            (
                "E   ConnectionRefusedError: [Errno 111] Connection refused",
                Some(Network),
            ),
            ("curl: (6) Could not resolve host: x.invalid", Some(Network)),
            (
                "ModuleNotFoundError: No module named 'requests'",
                Some(Dependency),
            ),
            (
                "error[E0463]: can't find crate for `serde`",
                Some(Dependency),
            ),
            (
                "Cannot find module './nope' from 'x.test.js'",
                Some(Dependency),
            ),
            (
                "Failed: Timeout (>1.0s) from pytest-timeout.",
                Some(Timeout),
            ),
            ("panic: test timed out after 1s", Some(Timeout)),
            ("sh: 1: pytestx: not found", Some(Env)),
            ("sh: 1: ./run_tests.sh: Permission denied", Some(Env)),
            ("bash: pytest: command not found", Some(Env)),
            (
                "FileNotFoundError: No such file or directory: 'x.json'",
                None,
            ),
            ("assert 1 == 2", None),
        ];
        for (text, want) in cases {
            assert_eq!(by_keywords(text), want, "{text}");
        }
    }

    #[test]
    fn assertion_message_beats_keywords() {
        assert_eq!(test_failure("assert not timed_out", "", Panic), Assertion);
        assert_eq!(test_failure("TypeError: x", "", Panic), Panic);
        assert_eq!(
            test_failure("Failed: DID NOT RAISE <class 'KeyError'>", "", Error),
            Assertion
        );
        assert_eq!(
            test_failure("Failed: Timeout (>1.0s) from pytest-timeout.", "", Error),
            Timeout
        );
        assert_eq!(
            test_failure("Error: Test timed out in 100ms.", "", Panic),
            Timeout
        );
    }
}
