//! `file:line:col: message` style linters and type checkers: ruff (concise and full), flake8,
//! eslint (stylish, unix, compact), tsc (plain and pretty), and a generic `path:l:c: error:`.
//!
//! Ruff's concise format and flake8's are the same shape; the tool is decided at the end of
//! the output by ruff's own summary lines (`Found 3 errors.`), so those findings are held back
//! until then instead of being streamed under a name that might change.

use super::classify::by_keywords;
use super::dispatch::{Finding, LineParser};
use super::text::{join_trimmed, leading_number, looks_like_file, split_location, Draft, Location};
use crate::gate::{Failure, FailureKind};

/// A concise finding kept until the end of the output.
struct Held {
    path: String,
    line: u32,
    message: String,
    raw: String,
}

#[derive(Default)]
pub(crate) struct Lint {
    /// Concise `path:l:c: CODE msg` findings whose tool (ruff or flake8) is not known yet.
    concise: Vec<Held>,
    ruff_seen: bool,
    /// A ruff full-format diagnostic being collected: `CODE msg` then ` --> path:l:c`.
    ruff_block: Option<Vec<String>>,
    /// The file of the eslint stylish block being read.
    stylish_file: Option<String>,
}

impl LineParser for Lint {
    fn line(&mut self, line: &str, out: &mut Vec<Finding>) {
        self.ruff_seen |= is_ruff_marker(line);
        if self.ruff_line(line, out) {
            return;
        }
        if let Some(finding) = one_line_diagnostic(line) {
            out.push(finding);
        } else if let Some(loc) = concise(line) {
            self.ruff_seen |= loc.rest.contains(" [*] ");
            self.concise.push(Held {
                path: loc.path.to_string(),
                line: loc.line,
                message: loc.rest.trim_start_matches(':').trim().to_string(),
                raw: line.to_string(),
            });
        } else {
            self.stylish_line(line, out);
        }
    }

    fn finish(&mut self, out: &mut Vec<Finding>) {
        self.close_ruff(out);
        let tool = if self.ruff_seen { "ruff" } else { "flake8" };
        for held in std::mem::take(&mut self.concise) {
            let failure = lint_failure(tool, &held.path, held.line, &held.message, &held.raw);
            out.push(Finding::error(failure));
        }
    }
}

impl Lint {
    /// Ruff's full format; returns whether the line was consumed.
    fn ruff_line(&mut self, line: &str, out: &mut Vec<Finding>) -> bool {
        if ruff_header(line) {
            self.close_ruff(out);
            self.ruff_block = Some(vec![line.to_string()]);
            return true;
        }
        let Some(block) = &mut self.ruff_block else {
            return false;
        };
        if line.trim().is_empty() {
            self.close_ruff(out);
            return true;
        }
        let has_location = block.iter().any(|l| l.trim_start().starts_with("--> "));
        if block.len() == 1 && !line.trim_start().starts_with("--> ") && !has_location {
            self.ruff_block = None;
            return false;
        }
        block.push(line.to_string());
        true
    }

    fn close_ruff(&mut self, out: &mut Vec<Finding>) {
        let Some(block) = self.ruff_block.take() else {
            return;
        };
        let loc = block
            .iter()
            .find_map(|l| l.trim_start().strip_prefix("--> "))
            .and_then(split_location);
        if let (Some(loc), Some(head)) = (loc, block.first()) {
            self.ruff_seen = true;
            let failure = lint_failure("ruff", loc.path, loc.line, head, &join_trimmed(&block));
            out.push(Finding::error(failure));
        }
    }

    /// eslint's default format: a file name line, then `  l:c  error  message  rule` lines.
    fn stylish_line(&mut self, line: &str, out: &mut Vec<Finding>) {
        let file = self.stylish_file.as_deref();
        if let Some(finding) = file.and_then(|f| stylish_problem(f, line)) {
            out.push(finding);
        } else if !line.starts_with(' ') && looks_like_file(line.trim()) && !line.contains(':') {
            self.stylish_file = Some(line.trim().to_string());
        } else {
            self.stylish_file = None;
        }
    }
}

/// ruff's summary lines, printed whenever it reports anything.
fn is_ruff_marker(line: &str) -> bool {
    let found = line
        .strip_prefix("Found ")
        .and_then(leading_number)
        .is_some_and(|(_, rest)| rest.starts_with(" error"));
    found || line.starts_with("[*] ") && line.contains(" fixable") || line == "All checks passed!"
}

/// A lint rule code: 1–4 capitals then 1–4 digits (`F401`, `E302`, `RUF100`, `PLR0913`).
fn is_code(word: &str) -> bool {
    let letters = word.chars().take_while(char::is_ascii_uppercase).count();
    let digits = word.len() - letters;
    (1..=4).contains(&letters)
        && (1..=4).contains(&digits)
        && word[letters..].chars().all(|c| c.is_ascii_digit())
}

/// `F401 [*] message` at column 0: the first line of a ruff full-format diagnostic.
fn ruff_header(line: &str) -> bool {
    line.split_once(' ').is_some_and(|(code, _)| is_code(code))
}

/// `path:l:c: CODE message` (ruff concise, flake8, pycodestyle, pylint).
fn concise(line: &str) -> Option<Location<'_>> {
    let loc = split_location(line)?;
    let rest = loc.rest.strip_prefix(": ")?;
    let code = rest.split_whitespace().next()?;
    let code = code.trim_end_matches(':');
    (loc.col.is_some() && looks_like_file(loc.path) && is_code(code)).then_some(loc)
}

/// Single-line formats whose tool is unambiguous.
fn one_line_diagnostic(line: &str) -> Option<Finding> {
    tsc(line)
        .or_else(|| eslint_unix(line))
        .or_else(|| eslint_compact(line))
        .or_else(|| generic_error(line))
}

/// `src/a.ts(3,5): error TS2322: msg` and pretty `src/a.ts:3:5 - error TS2322: msg`.
fn tsc(line: &str) -> Option<Finding> {
    let (path, l, message) = if let Some(loc) = split_location(line) {
        (loc.path, loc.line, loc.rest.strip_prefix(" - error ")?)
    } else {
        let (path, rest) = line.split_once('(')?;
        let (l, rest) = leading_number(rest)?;
        let rest = rest.split_once("): error ")?.1;
        (path, l, rest)
    };
    if !message.starts_with("TS") || !looks_like_file(path) {
        return None;
    }
    let kind = match by_keywords(message) {
        Some(FailureKind::Dependency) => FailureKind::Dependency,
        _ => FailureKind::Compile,
    };
    let failure = Draft::new("tsc", kind)
        .at(Some(path), Some(l))
        .message(message)
        .excerpt(line)
        .build();
    Some(Finding::error(failure))
}

/// `path:l:c: message [Error/rule]`.
fn eslint_unix(line: &str) -> Option<Finding> {
    let loc = split_location(line)?;
    let body = loc.rest.strip_prefix(": ")?.strip_suffix(']')?;
    let (message, tag) = body.rsplit_once(" [")?;
    let (severity, rule) = tag.split_once('/').unwrap_or((tag, ""));
    eslint_finding(loc.path, loc.line, severity, message, rule, line)
}

/// `path: line l, col c, Error - message (rule)`.
fn eslint_compact(line: &str) -> Option<Finding> {
    let (path, rest) = line.split_once(": line ")?;
    let (l, rest) = leading_number(rest)?;
    let (_, rest) = rest.split_once(", ")?.1.split_once(", ")?;
    let (severity, body) = rest.split_once(" - ")?;
    let (message, rule) = match body.strip_suffix(')').and_then(|b| b.rsplit_once(" (")) {
        Some((m, r)) => (m, r),
        None => (body, ""),
    };
    eslint_finding(path, l, severity, message, rule, line)
}

/// `  3:9  warning  Expected '===' and instead saw '=='  eqeqeq`.
fn stylish_problem(file: &str, line: &str) -> Option<Finding> {
    let trimmed = line.strip_prefix("  ")?.trim_start();
    let (pos, rest) = trimmed.split_once(char::is_whitespace)?;
    let (l, col) = pos.split_once(':')?;
    let (l, _) = leading_number(l).filter(|(_, r)| r.is_empty())?;
    leading_number(col).filter(|(_, r)| r.is_empty())?;
    let rest = rest.trim_start();
    let (severity, body) = rest.split_once(char::is_whitespace)?;
    let body = body.trim();
    let (message, rule) = body
        .rsplit_once("  ")
        .map_or((body, ""), |(m, r)| (m.trim(), r));
    eslint_finding(file, l, severity, message, rule, line.trim())
}

fn eslint_finding(
    path: &str,
    line: u32,
    severity: &str,
    message: &str,
    rule: &str,
    raw: &str,
) -> Option<Finding> {
    let warning = match severity.to_ascii_lowercase().as_str() {
        "error" => false,
        "warning" => true,
        _ => return None,
    };
    if !looks_like_file(path) {
        return None;
    }
    let message = match rule {
        "" => message.to_string(),
        r => format!("{r}: {message}"),
    };
    let failure = Draft::new("eslint", FailureKind::Lint)
        .at(Some(path), Some(line))
        .message(&message)
        .excerpt(raw)
        .build();
    Some(if warning {
        Finding::warning(failure)
    } else {
        Finding::error(failure)
    })
}

/// `path:l[:c]: error: message` (mypy, and other tools following the GNU convention).
fn generic_error(line: &str) -> Option<Finding> {
    let loc = split_location(line)?;
    let message = loc.rest.strip_prefix(": error: ")?;
    if !looks_like_file(loc.path) {
        return None;
    }
    let failure = lint_failure("lint", loc.path, loc.line, message, line);
    Some(Finding::error(failure))
}

fn lint_failure(tool: &'static str, path: &str, line: u32, message: &str, raw: &str) -> Failure {
    Draft::new(tool, FailureKind::Lint)
        .at(Some(path), Some(line))
        .message(message)
        .excerpt(raw)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::parse_output;

    #[test]
    fn recognises_codes() {
        for code in ["F401", "E302", "RUF100", "PLR0913", "I001"] {
            assert!(is_code(code), "{code}");
        }
        for word in ["F", "401", "Found", "TS2322x", "ABCDE1"] {
            assert!(!is_code(word), "{word}");
        }
    }

    #[test]
    fn concise_lines_are_flake8_unless_ruff_speaks() {
        let flake8 = parse_output("a.py:1:1: E302 expected 2 blank lines\n", 1);
        assert_eq!(flake8[0].tool, "flake8");
        let ruff = parse_output("a.py:1:8: F401 unused\nFound 1 error.\n", 1);
        assert_eq!(ruff[0].tool, "ruff");
        assert_eq!(
            (ruff[0].file.as_deref(), ruff[0].line),
            (Some("a.py"), Some(1))
        );
    }

    #[test]
    fn go_compile_errors_are_not_lint() {
        assert!(concise("./bad.go:4:13: undefined: factor").is_none());
    }

    #[test]
    fn mypy_style_errors_are_generic_lint() {
        let f = parse_output("pkg/a.py:3: error: Incompatible return value\n", 1);
        assert_eq!((f[0].tool.as_str(), f[0].line), ("lint", Some(3)));
    }
}
