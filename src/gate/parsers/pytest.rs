//! pytest's terminal report (`-q`, `-rA`, `-v`, default).
//!
//! The report has `=== FAILURES ===` / `=== ERRORS ===` sections made of `___ name ___` blocks
//! (traceback, `E   ` lines, `path:line: ExcType`), then a `short test summary info` with one
//! `FAILED node::id - message` line per failure. Blocks carry the detail and are complete when
//! the next one starts, so they are what gets streamed; summary and progress lines only add
//! failures that had no block (`--tb=no`, `-x` with `-p no:...`).

use std::collections::HashSet;

use super::classify::{by_keywords, test_failure};
use super::dispatch::{Finding, LineParser};
use super::text::{head_and_tail, split_location, Draft};
use crate::gate::{Failure, FailureKind, MAX_EXCERPT_CHARS};

const TOOL: &str = "pytest";

#[derive(Default, PartialEq, Eq, Clone, Copy)]
enum Section {
    #[default]
    Other,
    Failures,
    Summary,
}

#[derive(Default)]
pub(crate) struct Pytest {
    section: Section,
    block: Option<Block>,
    /// Node ids (and `Class::test` suffixes) already reported from blocks or summary lines.
    covered: HashSet<String>,
    /// `path::test FAILED` progress lines (`-v`), reported at the end if nothing else covers them.
    progress: Vec<String>,
}

struct Block {
    header: String,
    lines: Vec<String>,
}

impl LineParser for Pytest {
    fn line(&mut self, line: &str, out: &mut Vec<Finding>) {
        if let Some(title) = major_separator(line) {
            self.close(out);
            self.section = match title {
                "FAILURES" | "ERRORS" => Section::Failures,
                "short test summary info" => Section::Summary,
                _ => Section::Other,
            };
            return;
        }
        match self.section {
            Section::Failures => self.failures_line(line, out),
            Section::Summary => self.summary_line(line, out),
            Section::Other => self.progress_line(line),
        }
    }

    fn finish(&mut self, out: &mut Vec<Finding>) {
        self.close(out);
        for id in std::mem::take(&mut self.progress) {
            if !self.is_covered(&id) {
                self.covered.insert(id.clone());
                out.push(Finding::error(summary_failure(&id, "failed")));
            }
        }
    }
}

impl Pytest {
    fn failures_line(&mut self, line: &str, out: &mut Vec<Finding>) {
        if let Some(header) = block_header(line) {
            self.close(out);
            self.block = Some(Block {
                header: header.to_string(),
                lines: Vec::new(),
            });
        } else if let Some(block) = &mut self.block {
            block.lines.push(line.to_string());
        }
    }

    fn summary_line(&mut self, line: &str, out: &mut Vec<Finding>) {
        let Some((id, message)) = summary_entry(line) else {
            return;
        };
        if !self.is_covered(id) {
            self.covered.insert(id.to_string());
            out.push(Finding::error(summary_failure(id, message)));
        }
    }

    fn progress_line(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        if let (Some(id), Some("FAILED" | "ERROR")) = (words.next(), words.next()) {
            if id.contains("::") {
                self.progress.push(id.to_string());
            }
        }
    }

    fn close(&mut self, out: &mut Vec<Finding>) {
        let Some(block) = self.block.take() else {
            return;
        };
        let failure = block_failure(&block);
        self.covered.insert(header_to_node(&block.header));
        if let Some(id) = &failure.test_id {
            self.covered.insert(id.clone());
        }
        if let (Some(path), true) = (&failure.file, block.header.starts_with("ERROR collecting")) {
            self.covered.insert(path.clone());
        }
        out.push(Finding::error(failure));
    }

    /// A node id is covered if reported before, or if a block had the same `Class::test` part
    /// (blocks name tests without their file).
    fn is_covered(&self, id: &str) -> bool {
        let suffix = id.split_once("::").map_or(id, |(_, s)| s);
        self.covered.contains(id) || self.covered.contains(suffix)
    }
}

/// `==== title ====` (also the final `=== 2 failed in 0.1s ===`).
fn major_separator(line: &str) -> Option<&str> {
    let inner = line.strip_prefix("==")?.trim_start_matches('=');
    let inner = inner.trim_end_matches('=');
    line.ends_with("==").then(|| inner.trim())
}

/// `____ TestX.test_y[1-2] ____`; the traceback's `_ _ _ _` separators do not match.
fn block_header(line: &str) -> Option<&str> {
    let inner = line.strip_prefix("___")?.trim_start_matches('_');
    let inner = inner.strip_suffix("___")?.trim_end_matches('_');
    let name = inner.trim();
    (!name.is_empty() && inner.starts_with(' ')).then_some(name)
}

/// `FAILED tests/x.py::test_y - AssertionError: ...` or `ERROR tests/x.py`.
fn summary_entry(line: &str) -> Option<(&str, &str)> {
    let rest = line
        .strip_prefix("FAILED ")
        .or_else(|| line.strip_prefix("ERROR "))?;
    Some(match rest.split_once(" - ") {
        Some((id, message)) => (id.trim(), message.trim()),
        None => (rest.trim(), "failed"),
    })
}

/// `TestMath.test_square[3-10]` -> `TestMath::test_square[3-10]` (dots in parameters stay).
fn header_to_node(header: &str) -> String {
    let name = header
        .strip_prefix("ERROR at setup of ")
        .or_else(|| header.strip_prefix("ERROR at teardown of "))
        .unwrap_or(header);
    let (base, params) = name.split_at(name.find('[').unwrap_or(name.len()));
    format!("{}{params}", base.replace('.', "::"))
}

/// A traceback location: `path.py:12: ExcType` / `path.py:12: in func` (long and short
/// tracebacks) or `File "path.py", line 12, in func` (`--tb=native`).
struct Frame<'a> {
    path: &'a str,
    line: u32,
    rest: &'a str,
}

fn frame(line: &str) -> Option<Frame<'_>> {
    if let Some(native) = line.trim_start().strip_prefix("File \"") {
        let (path, rest) = native.split_once("\", line ")?;
        let (n, rest) = super::text::leading_number(rest)?;
        return Some(Frame {
            path,
            line: n,
            rest: rest.trim_start_matches(", "),
        });
    }
    let loc = split_location(line)?;
    let rest = loc.rest.strip_prefix(':')?;
    (loc.col.is_none() && loc.path.ends_with(".py")).then(|| Frame {
        path: loc.path,
        line: loc.line,
        rest: rest.trim(),
    })
}

/// Crash site: the innermost frame in the project (relative path, not an installed package).
fn crash_site<'a, 'f>(frames: &'f [Frame<'a>]) -> Option<&'f Frame<'a>> {
    frames
        .iter()
        .rev()
        .find(|f| !f.path.starts_with('/') && !f.path.contains("site-packages"))
        .or_else(|| frames.last())
}

/// The crash site of a pytest traceback given as text (used for JUnit reports written by pytest).
pub(crate) fn crash_location(text: &str) -> Option<(&str, u32)> {
    let frames: Vec<Frame<'_>> = text.lines().filter_map(frame).collect();
    crash_site(&frames).map(|f| (f.path, f.line))
}

fn block_failure(block: &Block) -> Failure {
    let frames: Vec<Frame<'_>> = block.lines.iter().filter_map(|l| frame(l)).collect();
    let e_lines: Vec<&str> = block
        .lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix('E')
                .filter(|r| r.is_empty() || r.starts_with(' '))
        })
        .map(str::trim)
        .collect();
    let exc_type = frames
        .last()
        .map(|f| f.rest)
        .filter(|r| !r.starts_with("in "));
    let message = e_lines
        .iter()
        .find(|l| !l.is_empty())
        .copied()
        .or(exc_type)
        .unwrap_or(&block.header);
    let detail = e_lines.join("\n");
    let crash = crash_site(&frames);
    let (kind, test_id) = match block.header.strip_prefix("ERROR collecting ") {
        Some(_) => (by_keywords(&detail).unwrap_or(FailureKind::Compile), None),
        None => {
            let as_assert = exc_type
                .filter(|t| *t == "AssertionError")
                .unwrap_or(message);
            let kind = match test_failure(as_assert, &detail, FailureKind::Error) {
                // `pytest.fail(...)` and `pytest.raises` that saw nothing: the test's own check.
                FailureKind::Error if message.starts_with("Failed: ") => FailureKind::Assertion,
                k => k,
            };
            let file = frames.first().map(|f| f.path);
            (kind, Some(node_id(file, &block.header)))
        }
    };
    let file = crash
        .map(|f| f.path)
        .or_else(|| block.header.strip_prefix("ERROR collecting "));
    Draft::new(TOOL, kind)
        .at(file, crash.map(|f| f.line))
        .test(test_id)
        .message(message)
        .excerpt(&head_and_tail(&block.lines, MAX_EXCERPT_CHARS))
        .build()
}

fn node_id(file: Option<&str>, header: &str) -> String {
    let node = header_to_node(header);
    match file {
        Some(f) if !f.starts_with('/') => format!("{f}::{node}"),
        _ => node,
    }
}

fn summary_failure(id: &str, message: &str) -> Failure {
    let (file, test_id) = match id.split_once("::") {
        Some((file, _)) => (file, Some(id.to_string())),
        None => (id, None),
    };
    let default = if test_id.is_some() {
        FailureKind::Error
    } else {
        FailureKind::Compile
    };
    Draft::new(TOOL, test_failure(message, message, default))
        .at(Some(file), None)
        .test(test_id)
        .message(message)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::parse_output;

    #[test]
    fn recognises_headers_and_separators() {
        assert_eq!(
            block_header("____ TestA.test_b[1.5] ____"),
            Some("TestA.test_b[1.5]")
        );
        assert_eq!(block_header("_ _ _ _ _ _ _"), None);
        assert_eq!(major_separator("==== FAILURES ===="), Some("FAILURES"));
        assert_eq!(header_to_node("TestA.test_b[1.5]"), "TestA::test_b[1.5]");
        assert_eq!(
            header_to_node("ERROR at setup of test_x"),
            "test_x".to_string()
        );
    }

    #[test]
    fn summary_only_output_is_still_parsed() {
        let out = "F\n=== short test summary info ===\n\
                   FAILED tests/test_a.py::test_b - assert 1 == 2\n1 failed in 0.01s\n";
        let f = parse_output(out, 1);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].test_id.as_deref(), Some("tests/test_a.py::test_b"));
        assert_eq!(f[0].kind, FailureKind::Assertion);
    }

    #[test]
    fn native_tracebacks_give_locations() {
        let out = "=== FAILURES ===\n___ test_x ___\nTraceback (most recent call last):\n  \
                   File \"tests/test_n.py\", line 4, in test_x\n    raise KeyError('k')\n\
                   E   KeyError: 'k'\n=== 1 failed ===\n";
        let f = parse_output(out, 1);
        assert_eq!(f[0].test_id.as_deref(), Some("tests/test_n.py::test_x"));
        assert_eq!((f[0].line, f[0].kind), (Some(4), FailureKind::Error));
    }

    #[test]
    fn did_not_raise_and_pytest_fail_are_assertions() {
        let out = concat!(
            "=== FAILURES ===\n___ test_r ___\n\n    def test_r():\n",
            ">       with pytest.raises(KeyError):\n",
            "E       Failed: DID NOT RAISE <class 'KeyError'>\n\ntests/test_r.py:5: Failed\n",
            "___ test_f ___\n\n    def test_f():\n>       pytest.fail('nope')\n",
            "E       Failed: nope\n\ntests/test_r.py:8: Failed\n=== 2 failed ===\n"
        );
        let f = parse_output(out, 1);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f.iter().all(|f| f.kind == FailureKind::Assertion), "{f:?}");
        assert!(f.iter().all(|f| f.class == crate::gate::FailureClass::Test));
    }

    #[test]
    fn verbose_progress_lines_are_a_last_resort() {
        let out = "tests/test_a.py::test_b FAILED [100%]\n";
        let f = parse_output(out, 1);
        assert_eq!(f[0].tool, "pytest");
        assert_eq!(f[0].test_id.as_deref(), Some("tests/test_a.py::test_b"));
    }
}
