//! The line-driven engine behind [`parse_output`](crate::gate::parse_output) and
//! [`StreamParser`](crate::gate::StreamParser).
//!
//! Every parser sees every line; each only reacts to its own tool's shapes, which is how mixed
//! outputs (a `cargo clippy && cargo test` gate, a `ruff check && pytest` gate) are handled
//! without guessing the tool up front.

use std::collections::{HashSet, VecDeque};

use super::text::clean_line;
use super::{cargo_test, generic, go_test, js_test, junit, lint, pytest, rustc};
use crate::gate::Failure;

/// Lines kept for the fallback failure's excerpt.
const TAIL_LINES: usize = 40;

/// A parser's output: a failure, or a warning that only counts when nothing else explains a
/// non-zero exit (e.g. `eslint --max-warnings 0`).
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub failure: Failure,
    pub warning: bool,
}

impl Finding {
    pub(crate) fn error(failure: Failure) -> Self {
        Finding {
            failure,
            warning: false,
        }
    }

    pub(crate) fn warning(failure: Failure) -> Self {
        Finding {
            failure,
            warning: true,
        }
    }
}

/// A per-tool state machine. `line` receives cleaned lines (no CR, no ANSI escapes) and pushes
/// findings as soon as they are complete; `finish` flushes whatever the end of input completes.
pub(crate) trait LineParser: Send {
    fn line(&mut self, line: &str, out: &mut Vec<Finding>);
    fn finish(&mut self, _out: &mut Vec<Finding>) {}
}

/// Identity used to drop duplicates (the same diagnostic printed for a lib and its test target).
type Key = (String, Option<u32>, Option<String>);

pub(crate) struct Dispatcher {
    parsers: Vec<Box<dyn LineParser>>,
    errors: Vec<Failure>,
    warnings: Vec<Failure>,
    seen: HashSet<Key>,
    tail: VecDeque<String>,
    /// Errors and warnings kept, each; findings past it are counted in `omitted`.
    max_failures: usize,
    omitted: u64,
}

impl Dispatcher {
    pub(crate) fn new() -> Self {
        Dispatcher::with_max_failures(usize::MAX)
    }

    /// An engine that keeps at most `max` errors and `max` warnings.
    pub(crate) fn with_max_failures(max: usize) -> Self {
        Dispatcher {
            max_failures: max,
            omitted: 0,
            parsers: vec![
                Box::new(cargo_test::CargoTest::default()),
                Box::new(rustc::Rustc::default()),
                Box::new(pytest::Pytest::default()),
                Box::new(junit::Junit::default()),
                Box::new(go_test::GoTest::default()),
                Box::new(js_test::Jest::default()),
                Box::new(js_test::Vitest::default()),
                Box::new(lint::Lint::default()),
            ],
            errors: Vec::new(),
            warnings: Vec::new(),
            seen: HashSet::new(),
            tail: VecDeque::with_capacity(TAIL_LINES),
        }
    }

    /// Feed one raw line (without its `\n`); returns the failures it completed.
    pub(crate) fn push_line(&mut self, raw: &str) -> Vec<Failure> {
        let line = clean_line(raw);
        let mut found = Vec::new();
        for parser in &mut self.parsers {
            parser.line(&line, &mut found);
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
        self.accept(found)
    }

    /// Findings dropped at the cap.
    pub(crate) fn omitted(&self) -> u64 {
        self.omitted
    }

    /// As [`finish`](Self::finish), with the count of findings dropped at the cap.
    pub(crate) fn finish_counted(mut self, exit_code: i64) -> (Vec<Failure>, u64) {
        let mut found = Vec::new();
        for parser in &mut self.parsers {
            parser.finish(&mut found);
        }
        self.accept(found);
        let omitted = self.omitted;
        (self.finish(exit_code), omitted)
    }

    /// Flush all parsers and apply the "never empty on a non-zero exit" rule.
    pub(crate) fn finish(mut self, exit_code: i64) -> Vec<Failure> {
        let mut found = Vec::new();
        for parser in &mut self.parsers {
            parser.finish(&mut found);
        }
        self.accept(found);
        let mut result = std::mem::take(&mut self.errors);
        if result.is_empty() && exit_code != 0 {
            result = std::mem::take(&mut self.warnings);
        }
        if result.is_empty() && exit_code != 0 {
            result.push(generic::fallback(&self.tail, exit_code));
        }
        result
    }

    /// Record new findings, returning the errors not seen before (warnings are never streamed:
    /// whether they matter is only known at the end).
    fn accept(&mut self, found: Vec<Finding>) -> Vec<Failure> {
        let mut fresh = Vec::new();
        for finding in found {
            let f = &finding.failure;
            let key = (
                f.signature.clone(),
                f.line,
                finding.warning.then(|| "warning".to_string()),
            );
            if self.seen.contains(&key) {
                continue;
            }
            let list_len = if finding.warning {
                self.warnings.len()
            } else {
                self.errors.len()
            };
            if list_len >= self.max_failures {
                self.omitted += 1;
                continue;
            }
            if !self.seen.insert(key) {
                continue;
            }
            if finding.warning {
                self.warnings.push(finding.failure);
            } else {
                fresh.push(finding.failure.clone());
                self.errors.push(finding.failure);
            }
        }
        fresh
    }
}
