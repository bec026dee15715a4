//! Gate output parsing and diff inspection: pure functions over text.
//!
//! The judge needs two things from an attempt: *why* the gate failed, in a form an agent can act
//! on and the runner can compare across attempts (structured [`Failure`]s with stable
//! signatures), and *whether the diff cheated* to make the gate green ([`red_flags`]). Both are
//! computed here without I/O so they can be tested against real captured tool output.
//!
//! Parsing is line-oriented: every parser is a small state machine fed one line at a time, so the
//! batch entry point ([`parse_output`]) and the incremental one ([`StreamParser`]) share the same
//! code path and give the same result by construction.

mod class;
mod origin;
pub(crate) mod parsers;
mod red_flags;
mod rerun;
mod test_ids;

#[cfg(test)]
mod fixture_tests;

use serde::{Deserialize, Serialize};

pub use class::FailureClass;
pub use origin::{mark_origins, tests_not_run, BaseCommand, Baseline, CommandView};
pub use parsers::counts::{test_counts, TestCounts};
pub use parsers::stream::{ParseLimits, StreamParser, Truncation};
pub use red_flags::{red_flags, RedFlag, RedFlagKind};
pub use rerun::rerun_argv;
pub use test_ids::reported_test_ids;

/// One structured failure extracted from a gate's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Which tool reported it: "pytest", "cargo-test", "rustc", "clippy", "go-test", "jest",
    /// "vitest", "junit", "ruff", "flake8", "eslint", "tsc", "lint" or "unknown".
    pub tool: String,
    /// What kind of problem it is.
    pub kind: FailureKind,
    /// The source file it points at, when the tool names one.
    pub file: Option<String>,
    /// The line in `file`, when the tool names one.
    pub line: Option<u32>,
    /// The tool's own name for the failing test, e.g. `tests/test_x.py::test_add`.
    pub test_id: Option<String>,
    /// One line, at most [`MAX_MESSAGE_CHARS`] characters.
    pub message: String,
    /// A few lines of context, at most [`MAX_EXCERPT_CHARS`] characters.
    pub excerpt: String,
    /// 16 hex digits, stable across runs of the same failure (numbers, addresses and temporary
    /// paths are normalised away), so the judge can tell "same failure again" from "progress".
    pub signature: String,
    /// Which of the six classes a reviewer sorts failures into (derived from `kind`; `flaky`
    /// when a rerun passed).
    #[serde(default)]
    pub class: FailureClass,
    /// Whether the change introduced the failure or the base already had it (contract
    /// addition under way: `attempts[].failures[].origin`); absent until a baseline is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<FailureOrigin>,
}

/// Where a gate failure comes from (`attempts[].failures[].origin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureOrigin {
    /// It does not fail on the base (or the base's behaviour is unknown): the branch caused it.
    Introduced,
    /// The base fails this test too.
    Preexisting,
}

/// What kind of problem a failure is; drives the judge's retry policy and the agent's feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The code did not build (a compiler or type-checker error).
    Compile,
    /// A test's assertion failed.
    Assertion,
    /// A Rust or Go panic.
    Panic,
    /// An uncaught exception in a test (Python, JavaScript, JUnit `<error>`).
    Error,
    /// A test or the whole run exceeded its time limit.
    Timeout,
    /// A linter's finding.
    Lint,
    /// The environment is wrong (a missing tool, file or variable), not the code.
    Env,
    /// A dependency could not be resolved or installed.
    Dependency,
    /// The network was needed (the sandbox has none).
    Network,
    /// A failure the parsers could not classify.
    Unknown,
}

impl FailureKind {
    /// The serialised name; part of every signature, so it must never change.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Compile => "compile",
            FailureKind::Assertion => "assertion",
            FailureKind::Panic => "panic",
            FailureKind::Error => "error",
            FailureKind::Timeout => "timeout",
            FailureKind::Lint => "lint",
            FailureKind::Env => "env",
            FailureKind::Dependency => "dependency",
            FailureKind::Network => "network",
            FailureKind::Unknown => "unknown",
        }
    }
}

/// Upper bound on [`Failure::message`], in characters.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// Upper bound on [`Failure::excerpt`], in characters.
pub const MAX_EXCERPT_CHARS: usize = 2000;

/// Parse any gate output (stdout and stderr interleaved): detect the tools and return their
/// failures, in order of appearance, without duplicates.
///
/// A non-zero `exit_code` never yields an empty list: when nothing is recognised the result is a
/// single `unknown` failure whose excerpt is the tail of the log.
pub fn parse_output(output: &str, exit_code: i64) -> Vec<Failure> {
    let mut engine = parsers::dispatch::Dispatcher::new();
    let mut segments = output.split('\n').peekable();
    while let Some(segment) = segments.next() {
        let is_last = segments.peek().is_none();
        if is_last && segment.is_empty() {
            break;
        }
        engine.push_line(segment);
    }
    engine.finish(exit_code)
}
