//! The fallback failure for output no parser recognised.
//!
//! A red gate with no explanation must still reach the agent and the judge as *something*: the
//! log tail, the most error-looking line as the message, and a kind guessed from well-known
//! phrases and the shell's exit-code conventions.

use std::collections::VecDeque;

use super::classify::by_keywords;
use super::text::{clip_start, join_trimmed, Draft};
use crate::gate::{Failure, FailureKind, MAX_EXCERPT_CHARS};

/// Words that make a line a better message than merely "the last line".
const ERRORISH: &[&str] = &[
    "error",
    "Error",
    "ERROR",
    "failed",
    "FAILED",
    "FAIL",
    "fatal",
    "Fatal",
    "not found",
    "denied",
    "refused",
];

/// One `unknown` failure describing the tail of the log.
pub(crate) fn fallback(tail: &VecDeque<String>, exit_code: i64) -> Failure {
    let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
    let text = join_trimmed(&lines);
    let kind = by_keywords(&text).unwrap_or_else(|| kind_for_exit(exit_code));
    Draft::new("unknown", kind)
        .message(&pick_message(&lines, exit_code))
        .excerpt(&clip_start(&text, MAX_EXCERPT_CHARS))
        .build()
}

/// Shell conventions: 124 is `timeout(1)`, 126 "cannot execute", 127 "command not found".
fn kind_for_exit(exit_code: i64) -> FailureKind {
    match exit_code {
        124 => FailureKind::Timeout,
        126 | 127 => FailureKind::Env,
        _ => FailureKind::Unknown,
    }
}

fn pick_message(lines: &[&str], exit_code: i64) -> String {
    let non_blank = || {
        lines
            .iter()
            .rev()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
    };
    non_blank()
        .find(|l| ERRORISH.iter().any(|w| l.contains(w)))
        .or_else(|| non_blank().next())
        .map_or_else(
            || format!("exit code {exit_code} with no output"),
            str::to_string,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(lines: &[&str]) -> VecDeque<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn prefers_error_lines_and_exit_codes() {
        let f = fallback(&tail(&["building", "oops: something broke", "done"]), 2);
        assert_eq!((f.tool.as_str(), f.kind), ("unknown", FailureKind::Unknown));
        assert_eq!(f.message, "done");
        let f = fallback(&tail(&["x", "fatal: bad thing", "bye"]), 1);
        assert_eq!(f.message, "fatal: bad thing");
        assert_eq!(fallback(&tail(&[]), 124).kind, FailureKind::Timeout);
        assert_eq!(
            fallback(&tail(&[]), 3).message,
            "exit code 3 with no output"
        );
    }
}
