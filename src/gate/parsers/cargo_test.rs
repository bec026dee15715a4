//! `cargo test` (libtest human output).
//!
//! Each failing test gets a `---- name stdout ----` section holding its captured output and the
//! panic (`thread 'name' (tid) panicked at src/x.rs:3:5:` then the message). A section is
//! complete when the next one starts or the `failures:` list begins. Tests that fail without a
//! section (killed by a signal, say) are still reported from their `test x ... FAILED` line.

use std::collections::HashSet;

use super::classify::test_failure;
use super::dispatch::{Finding, LineParser};
use super::text::{join_trimmed, split_location, Draft};
use crate::gate::FailureKind;

const TOOL: &str = "cargo-test";

#[derive(Default)]
pub(crate) struct CargoTest {
    section: Option<Section>,
    failed: Vec<String>,
    reported: HashSet<String>,
}

struct Section {
    name: String,
    lines: Vec<String>,
}

impl LineParser for CargoTest {
    fn line(&mut self, line: &str, out: &mut Vec<Finding>) {
        if let Some(name) = section_start(line) {
            self.close(out);
            self.section = Some(Section {
                name: name.to_string(),
                lines: Vec::new(),
            });
        } else if line == "failures:" || is_binary_boundary(line) {
            self.close(out);
            if line.starts_with("test result: ") {
                self.flush_unreported(out);
            }
        } else if let Some(name) = failed_test(line) {
            self.failed.push(name.to_string());
        } else if let Some(section) = &mut self.section {
            section.lines.push(line.to_string());
        }
    }

    fn finish(&mut self, out: &mut Vec<Finding>) {
        self.close(out);
        self.flush_unreported(out);
    }
}

impl CargoTest {
    fn close(&mut self, out: &mut Vec<Finding>) {
        if let Some(section) = self.section.take() {
            self.reported.insert(section.name.clone());
            out.push(Finding::error(section_failure(&section)));
        }
    }

    /// `test x ... FAILED` without a section: report what little is known.
    fn flush_unreported(&mut self, out: &mut Vec<Finding>) {
        for name in std::mem::take(&mut self.failed) {
            if self.reported.insert(name.clone()) {
                let failure = Draft::new(TOOL, FailureKind::Unknown)
                    .test(Some(name.clone()))
                    .message(&format!("test {name} failed without output"))
                    .build();
                out.push(Finding::error(failure));
            }
        }
    }
}

fn section_start(line: &str) -> Option<&str> {
    line.strip_prefix("---- ")?.strip_suffix(" stdout ----")
}

fn is_binary_boundary(line: &str) -> bool {
    line.starts_with("test result: ")
        || line.starts_with("     Running ")
        || line.starts_with("   Doc-tests ")
}

fn failed_test(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("test ")?;
    let (name, status) = rest.split_once(" ... ")?;
    status.starts_with("FAILED").then_some(name)
}

/// A panic as libtest prints it: where, and the message lines that follow.
struct Panic<'a> {
    file: Option<&'a str>,
    line: Option<u32>,
    message: Vec<&'a str>,
}

/// Find the first panic in a section. Rust >= 1.73 prints `panicked at FILE:L:C:` with the
/// message on the next lines; older versions print `panicked at 'MSG', FILE:L:C`.
fn find_panic(lines: &[String]) -> Option<Panic<'_>> {
    let start = lines
        .iter()
        .position(|l| l.starts_with("thread '") && l.contains(" panicked at "))?;
    let (_, at) = lines[start].split_once(" panicked at ")?;
    if let Some(quoted) = at.strip_prefix('\'') {
        let (message, loc) = quoted.rsplit_once("', ")?;
        let loc = split_location(loc);
        return Some(Panic {
            file: loc.as_ref().map(|l| l.path),
            line: loc.map(|l| l.line),
            message: vec![message],
        });
    }
    let loc = split_location(at.trim_end_matches(':'));
    let message = lines[start + 1..]
        .iter()
        .map(String::as_str)
        .take_while(|l| !l.is_empty() && !is_panic_trailer(l))
        .collect();
    Some(Panic {
        file: loc.as_ref().map(|l| l.path),
        line: loc.map(|l| l.line),
        message,
    })
}

fn is_panic_trailer(line: &str) -> bool {
    line.starts_with("note: run with `RUST_BACKTRACE")
        || line.starts_with("stack backtrace:")
        || line.starts_with("thread '")
}

fn section_failure(section: &Section) -> crate::gate::Failure {
    let draft = Draft::new(TOOL, FailureKind::Panic).test(Some(section.name.clone()));
    let Some(panic) = find_panic(&section.lines) else {
        let text = join_trimmed(&section.lines);
        let kind = test_failure(&text, &text, FailureKind::Unknown);
        return Draft { kind, ..draft }
            .message(&text)
            .excerpt(&text)
            .build();
    };
    let text = panic.message.join("\n");
    let kind = test_failure(&text, &text, FailureKind::Panic);
    let excerpt = excerpt_until_backtrace(&section.lines);
    Draft { kind, ..draft }
        .at(panic.file, panic.line)
        .message(&text)
        .excerpt(&excerpt)
        .build()
}

/// The section minus the backtrace: the panic and any captured output is what helps.
fn excerpt_until_backtrace(lines: &[String]) -> String {
    let end = lines
        .iter()
        .position(|l| l.starts_with("stack backtrace:") || l.starts_with("note: run with"))
        .unwrap_or(lines.len());
    join_trimmed(&lines[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::parse_output;

    #[test]
    fn parses_modern_and_legacy_panics() {
        let out = "test a ... FAILED\ntest b ... FAILED\n\nfailures:\n\n---- a stdout ----\n\
                   thread 'a' (12) panicked at src/lib.rs:3:5:\nassertion failed: x\n\n\
                   ---- b stdout ----\nthread 'b' panicked at 'boom', src/b.rs:9:1\n\n\
                   failures:\n    a\n    b\n\ntest result: FAILED. 0 passed; 2 failed\n";
        let f = parse_output(out, 101);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].kind, FailureKind::Assertion);
        assert_eq!(
            (f[0].file.as_deref(), f[0].line),
            (Some("src/lib.rs"), Some(3))
        );
        assert_eq!(f[1].kind, FailureKind::Panic);
        assert_eq!((f[1].message.as_str(), f[1].line), ("boom", Some(9)));
    }

    #[test]
    fn reports_failed_tests_without_sections() {
        let out = "test slow ... FAILED\n\ntest result: FAILED. 0 passed; 1 failed\n";
        let f = parse_output(out, 101);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].test_id.as_deref(), Some("slow"));
    }
}
