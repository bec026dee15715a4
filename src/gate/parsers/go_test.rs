//! `go test`, plain, `-v` and `-json`.
//!
//! `-json` events carry the very lines `-v` prints in their `Output` field, so they are decoded
//! and fed to the plain parser. The plain parser keeps a stack of open `--- FAIL: name` results
//! (subtests are indented under their parent); a result closes when a line at its indentation
//! or shallower arrives. Without `-v` a test's log lines follow its `--- FAIL` line; with `-v`
//! they precede it, under `=== RUN name`, so they are collected per running test. A parent
//! whose only problem is a failed subtest is not reported: the subtest is the failure.

use std::collections::HashMap;

use serde_json::Value;

use super::classify::{by_keywords, test_failure};
use super::dispatch::{Finding, LineParser};
use super::text::{clip_end, join_trimmed, split_location, Draft};
use crate::gate::{Failure, FailureKind, MAX_EXCERPT_CHARS};

const TOOL: &str = "go-test";
/// Bound on log lines kept per running test (`-v` output of passing tests is discarded).
const MAX_TEST_LINES: usize = 200;

#[derive(Default)]
pub(crate) struct GoTest {
    running: Option<String>,
    run_output: HashMap<String, Vec<String>>,
    open: Vec<Open>,
    panic: Option<PanicBlock>,
    build: bool,
}

struct Open {
    name: String,
    indent: usize,
    lines: Vec<String>,
    failed_children: bool,
}

struct PanicBlock {
    test: Option<String>,
    lines: Vec<String>,
}

impl LineParser for GoTest {
    fn line(&mut self, line: &str, out: &mut Vec<Finding>) {
        if !line.starts_with('{') {
            return self.plain(line, out);
        }
        if let Some(text) = json_output(line) {
            for l in text.lines() {
                self.plain(l, out);
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<Finding>) {
        self.finish_panic(out);
        self.close_open(0, out);
    }
}

/// The `Output` of an `output` / `build-output` event.
fn json_output(line: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line).ok()?;
    let action = v.get("Action")?.as_str()?;
    if action != "output" && action != "build-output" {
        return None;
    }
    Some(v.get("Output")?.as_str()?.to_string())
}

impl GoTest {
    fn plain(&mut self, line: &str, out: &mut Vec<Finding>) {
        if let Some(panic) = &mut self.panic {
            if !is_package_result(line) {
                panic.lines.push(line.to_string());
                return;
            }
            self.finish_panic(out);
        }
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(name) = marker(trimmed, &["=== RUN ", "=== CONT ", "=== NAME "]) {
            self.close_open(indent, out);
            self.running = Some(name.to_string());
        } else if let Some(name) = marker(trimmed, &["--- FAIL: "]) {
            self.start_failure(name, indent, out);
        } else if let Some(name) = marker(trimmed, &["--- PASS: ", "--- SKIP: "]) {
            self.close_open(indent, out);
            self.run_output.remove(name);
        } else if line.starts_with("panic: ") {
            self.start_panic(line, out);
        } else if is_package_result(line) || line.starts_with("# ") {
            self.close_open(0, out);
            self.running = None;
            self.build = line.starts_with("# ");
        } else if let Some(f) = self.build.then(|| compile_error(line)).flatten() {
            out.push(Finding::error(f));
        } else if let Some(f) = go_command_error(line) {
            out.push(Finding::error(f));
        } else {
            self.log_line(trimmed, indent, out);
        }
    }

    fn start_failure(&mut self, name: &str, indent: usize, out: &mut Vec<Finding>) {
        self.close_open(indent, out);
        if let Some(parent) = self.open.last_mut() {
            parent.failed_children = true;
        }
        self.open.push(Open {
            name: name.to_string(),
            indent,
            lines: Vec::new(),
            failed_children: false,
        });
    }

    /// A log line: under an open `--- FAIL` (plain mode) or under `=== RUN` (`-v` mode).
    fn log_line(&mut self, trimmed: &str, indent: usize, out: &mut Vec<Finding>) {
        match self.open.last_mut() {
            Some(top) if indent > top.indent => return top.lines.push(trimmed.to_string()),
            Some(_) => self.close_open(indent, out),
            None => {}
        }
        if let (Some(test), true) = (&self.running, indent >= 4) {
            let lines = self.run_output.entry(test.clone()).or_default();
            if lines.len() < MAX_TEST_LINES {
                lines.push(trimmed.to_string());
            }
        }
    }

    fn close_open(&mut self, indent: usize, out: &mut Vec<Finding>) {
        while self.open.last().is_some_and(|top| top.indent >= indent) {
            let Some(top) = self.open.pop() else { break };
            let mut lines = self.run_output.remove(&top.name).unwrap_or_default();
            lines.extend(top.lines);
            if !(top.failed_children && lines.is_empty()) {
                out.push(Finding::error(test_failure_of(&top.name, &lines)));
            }
        }
    }

    /// A panic belongs to the innermost open failure, else to whatever test the trace names.
    fn start_panic(&mut self, line: &str, out: &mut Vec<Finding>) {
        let test = self.open.pop().map(|t| t.name);
        self.close_open(0, out);
        let test = test.or_else(|| self.running.clone());
        self.panic = Some(PanicBlock {
            test,
            lines: vec![line.to_string()],
        });
    }

    fn finish_panic(&mut self, out: &mut Vec<Finding>) {
        if let Some(panic) = self.panic.take() {
            out.push(Finding::error(panic_failure(&panic)));
        }
    }
}

fn marker<'a>(trimmed: &'a str, prefixes: &[&str]) -> Option<&'a str> {
    let rest = prefixes.iter().find_map(|p| trimmed.strip_prefix(p))?;
    let rest = rest.trim();
    let name = rest.split_once(" (").map_or(rest, |(name, _)| name);
    (!name.is_empty()).then_some(name)
}

fn is_package_result(line: &str) -> bool {
    line == "FAIL"
        || line == "PASS"
        || line.starts_with("FAIL\t")
        || line.starts_with("ok  \t")
        || line.starts_with("ok \t")
        || line.starts_with("exit status ")
}

/// `./x.go:3:5: undefined: y` after a `# package` header.
fn compile_error(line: &str) -> Option<Failure> {
    let loc = split_location(line)?;
    let message = loc.rest.strip_prefix(": ")?;
    if !loc.path.ends_with(".go") || loc.col.is_none() {
        return None;
    }
    let kind = match by_keywords(message) {
        Some(k @ (FailureKind::Dependency | FailureKind::Network)) => k,
        _ => FailureKind::Compile,
    };
    Some(
        Draft::new(TOOL, kind)
            .at(Some(loc.path), Some(loc.line))
            .message(message)
            .excerpt(line)
            .build(),
    )
}

/// `go: downloading ...: dial tcp: lookup proxy.golang.org: ...` and similar toolchain errors.
fn go_command_error(line: &str) -> Option<Failure> {
    let rest = line.strip_prefix("go: ")?;
    let kind = by_keywords(rest)
        .filter(|k| matches!(k, FailureKind::Network | FailureKind::Dependency))?;
    Some(Draft::new(TOOL, kind).message(line).excerpt(line).build())
}

/// A `t.Errorf`-style failure: the first log line is `file_test.go:12: message`.
fn test_failure_of(name: &str, lines: &[String]) -> Failure {
    let first = lines.first().map_or("", String::as_str);
    let located = split_location(first)
        .filter(|l| l.path.ends_with(".go"))
        .and_then(|l| Some((l.path, l.line, l.rest.strip_prefix(": ")?)));
    let message = match (located, first) {
        (Some((_, _, m)), _) => m,
        (None, "") => "test failed",
        (None, f) => f,
    };
    let text = join_trimmed(lines);
    Draft::new(TOOL, test_failure(message, &text, FailureKind::Assertion))
        .at(located.map(|l| l.0), located.map(|l| l.1))
        .test(Some(name.to_string()))
        .message(message)
        .excerpt(&text)
        .build()
}

fn panic_failure(panic: &PanicBlock) -> Failure {
    let first = panic.lines.first().map_or("panic", String::as_str);
    let message = first.trim_end_matches(" [recovered]");
    let kind = by_keywords(message).unwrap_or(FailureKind::Panic);
    let test = panic.test.clone().or_else(|| traced_test(&panic.lines));
    let loc = panic_location(&panic.lines);
    let excerpt = clip_end(&join_trimmed(&panic.lines), MAX_EXCERPT_CHARS);
    Draft::new(TOOL, kind)
        .at(loc.map(|l| l.0), loc.map(|l| l.1))
        .test(test)
        .message(message)
        .excerpt(&excerpt)
        .build()
}

/// The test named in a panic's goroutine dump (`pkg.TestX(0x0?)`) or in Go >= 1.21's
/// `running tests:` list printed on timeout.
fn traced_test(lines: &[String]) -> Option<String> {
    if let Some(i) = lines.iter().position(|l| l.trim() == "running tests:") {
        let next = lines.get(i + 1)?.trim();
        return Some(next.split_once(" (").map_or(next, |(n, _)| n).to_string());
    }
    lines.iter().find_map(|l| {
        let func = l.split_once('(')?.0;
        let name = func.rsplit('.').next()?;
        name.starts_with("Test").then(|| name.to_string())
    })
}

/// The innermost frame of the dump that is neither the Go runtime nor a module dependency.
fn panic_location(lines: &[String]) -> Option<(&str, u32)> {
    lines.iter().find_map(|l| {
        let frame = l.strip_prefix('\t')?;
        let loc = split_location(frame)?;
        (loc.path.ends_with(".go") && !is_go_internal(loc.path)).then_some((loc.path, loc.line))
    })
}

fn is_go_internal(path: &str) -> bool {
    path.starts_with("/usr/lib/go")
        || path.starts_with("/usr/local/go/")
        || path.contains("/go/src/")
        || path.contains("/pkg/mod/")
        || path.contains("/src/runtime/")
        || path.contains("/src/testing/")
        || path.ends_with("_testmain.go")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::parse_output;

    #[test]
    fn reports_leaf_subtests_not_parents() {
        let out = "--- FAIL: TestT (0.00s)\n    --- FAIL: TestT/a (0.00s)\n        \
                   x_test.go:9: got 1\nFAIL\nFAIL\tpkg\t0.01s\n";
        let f = parse_output(out, 1);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].test_id.as_deref(), Some("TestT/a"));
        assert_eq!(
            (f[0].file.as_deref(), f[0].line),
            (Some("x_test.go"), Some(9))
        );
        assert_eq!(f[0].message, "got 1");
    }

    #[test]
    fn a_parent_with_its_own_error_is_reported() {
        let out = "--- FAIL: TestT (0.00s)\n    x_test.go:3: setup broke\n    \
                   --- FAIL: TestT/a (0.00s)\nFAIL\n";
        let ids: Vec<_> = parse_output(out, 1)
            .into_iter()
            .filter_map(|f| f.test_id)
            .collect();
        assert_eq!(ids, ["TestT/a", "TestT"]);
    }

    #[test]
    fn names_tests_from_traces() {
        let lines: Vec<String> = [
            "panic: x",
            "",
            "example.com/p.TestZ(0xc0?)",
            "\t/w/p/z_test.go:4 +0x1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(traced_test(&lines).as_deref(), Some("TestZ"));
        assert_eq!(panic_location(&lines), Some(("/w/p/z_test.go", 4)));
    }
}
