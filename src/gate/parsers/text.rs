//! Small text helpers shared by the parsers: line cleaning, locations, clipping.
//!
//! There is no regex dependency in this crate, so the recognisers below are hand-written and
//! deliberately strict: a false "failure" costs an agent a retry, a missed one falls back to the
//! log tail anyway.

use super::signature::signature;
use crate::gate::{Failure, FailureClass, FailureKind, MAX_EXCERPT_CHARS, MAX_MESSAGE_CHARS};

/// Make a raw output line comparable: drop a trailing CR, keep what a terminal would show after
/// carriage-return overwrites, and remove ANSI escape sequences (vitest and tsc colour output
/// even when not attached to a terminal).
pub(crate) fn clean_line(raw: &str) -> String {
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    let visible = raw.rsplit('\r').next().unwrap_or(raw);
    if visible.contains('\x1b') {
        strip_ansi(visible)
    } else {
        visible.to_string()
    }
}

/// Remove CSI (`ESC [ ... final`), OSC (`ESC ] ... BEL|ST`) and two-byte escape sequences.
pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(d) = chars.next() {
                    if d == '\x07' {
                        break;
                    }
                    if d == '\x1b' {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// A `path:line[:col]` location found at the start of a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location<'a> {
    pub path: &'a str,
    pub line: u32,
    pub col: Option<u32>,
    /// Everything after the numbers, untouched (e.g. `": undefined: x"` or `" - error TS2322"`).
    pub rest: &'a str,
}

/// Split `path:line[:col]rest` at the start of `s`. The path may not contain whitespace, which
/// keeps indented prose and `at ./x.rs:1:2` backtrace lines out.
pub(crate) fn split_location(s: &str) -> Option<Location<'_>> {
    for (i, _) in s.match_indices(':') {
        let path = &s[..i];
        if path.is_empty() || path.contains(char::is_whitespace) {
            return None;
        }
        let Some((line, after)) = leading_number(&s[i + 1..]) else {
            continue;
        };
        let (col, rest) = match after.strip_prefix(':').and_then(leading_number) {
            Some((col, rest)) => (Some(col), rest),
            None => (None, after),
        };
        return Some(Location {
            path,
            line,
            col,
            rest,
        });
    }
    None
}

/// Parse a run of ASCII digits at the start of `s`.
pub(crate) fn leading_number(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n = s[..end].parse().ok()?;
    Some((n, &s[end..]))
}

/// Whether a string plausibly names a source file (has an extension, no spaces, not a URL).
pub(crate) fn looks_like_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    !path.is_empty()
        && !path.contains(char::is_whitespace)
        && !path.contains("://")
        && name.contains('.')
        && !name.ends_with('.')
}

/// Report paths relative to the checkout: the sandbox mounts it at `/workspace`.
pub(crate) fn relativize(path: &str) -> String {
    let p = path.strip_prefix("/workspace/").unwrap_or(path);
    p.strip_prefix("./").unwrap_or(p).to_string()
}

/// Keep at most `max` characters from the start, marking the cut.
pub(crate) fn clip_end(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Keep at most `max` characters from the end (log tails), marking the cut.
pub(crate) fn clip_start(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        return s.to_string();
    }
    let mut out = String::from("…");
    out.extend(s.chars().skip(count - max.saturating_sub(1)));
    out
}

/// The first non-blank line, trimmed; messages must be a single line.
pub(crate) fn first_line(s: &str) -> &str {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// Join lines, trimming blank lines at both ends.
pub(crate) fn join_trimmed<S: AsRef<str>>(lines: &[S]) -> String {
    let blank = |l: &S| l.as_ref().trim().is_empty();
    let start = lines.iter().position(|l| !blank(l)).unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !blank(l))
        .map_or(start, |e| e + 1);
    lines[start..end]
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The lines from both ends when the whole does not fit in `max` characters: a traceback's
/// start names the test and its end holds the error; the library frames in between go.
pub(crate) fn head_and_tail<S: AsRef<str>>(lines: &[S], max: usize) -> String {
    let all = join_trimmed(lines);
    if all.chars().count() <= max {
        return all;
    }
    let lines: Vec<&str> = all.lines().collect();
    let head = fit(lines.iter().copied(), max / 2);
    let mut tail = fit(lines.iter().rev().copied(), max / 2);
    tail.reverse();
    if head.is_empty() || tail.is_empty() {
        return clip_start(&all, max);
    }
    clip_end(&format!("{}\n…\n{}", head.join("\n"), tail.join("\n")), max)
}

/// Take lines while their total length (with newlines) stays within `budget` characters.
fn fit<'a>(lines: impl Iterator<Item = &'a str>, budget: usize) -> Vec<&'a str> {
    let mut used = 0;
    lines
        .take_while(|l| {
            used += l.chars().count() + 1;
            used <= budget
        })
        .collect()
}

/// A failure under construction; `build` enforces the size limits and computes the signature
/// in one place so no parser can forget to.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub tool: &'static str,
    pub kind: FailureKind,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub test_id: Option<String>,
    pub message: String,
    pub excerpt: String,
}

impl Draft {
    pub(crate) fn new(tool: &'static str, kind: FailureKind) -> Self {
        Draft {
            tool,
            kind,
            file: None,
            line: None,
            test_id: None,
            message: String::new(),
            excerpt: String::new(),
        }
    }

    pub(crate) fn at(mut self, file: Option<&str>, line: Option<u32>) -> Self {
        self.file = file.filter(|f| !f.is_empty()).map(relativize);
        self.line = line;
        self
    }

    pub(crate) fn test(mut self, test_id: Option<String>) -> Self {
        self.test_id = test_id.filter(|t| !t.is_empty());
        self
    }

    pub(crate) fn message(mut self, message: &str) -> Self {
        self.message = clip_end(first_line(message), MAX_MESSAGE_CHARS);
        self
    }

    pub(crate) fn excerpt(mut self, excerpt: &str) -> Self {
        self.excerpt = clip_end(excerpt.trim_end(), MAX_EXCERPT_CHARS);
        self
    }

    pub(crate) fn build(self) -> Failure {
        let signature = signature(
            self.tool,
            self.kind,
            self.file.as_deref(),
            self.test_id.as_deref(),
            &self.message,
        );
        let excerpt = if self.excerpt.is_empty() {
            self.message.clone()
        } else {
            self.excerpt
        };
        Failure {
            tool: self.tool.to_string(),
            kind: self.kind,
            file: self.file,
            line: self.line,
            test_id: self.test_id,
            message: self.message,
            excerpt,
            signature,
            class: FailureClass::of(self.kind),
            origin: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colour_and_carriage_returns() {
        assert_eq!(clean_line("\x1b[31mFAIL\x1b[39m x\r"), "FAIL x".to_string());
        assert_eq!(clean_line("50%\r100% done"), "100% done");
        assert_eq!(strip_ansi("\x1b]8;;http://x\x07link\x1b]8;;\x07"), "link");
    }

    #[test]
    fn splits_locations() {
        let loc = split_location("./bad.go:4:13: undefined: factor").expect("location");
        assert_eq!(
            (loc.path, loc.line, loc.col, loc.rest),
            ("./bad.go", 4, Some(13), ": undefined: factor")
        );
        let loc = split_location("tests/test_calc.py:9: ").expect("location");
        assert_eq!((loc.line, loc.col, loc.rest), (9, None, ": "));
        assert!(split_location("    calc_test.go:7: x").is_none());
        assert!(split_location("make: *** [Makefile:3: test] Error 3").is_none());
    }

    #[test]
    fn clips_on_char_boundaries() {
        assert_eq!(clip_end("ééééé", 3), "éé…");
        assert_eq!(clip_start("abcdef", 3), "…ef");
        assert_eq!(clip_end("abc", 3), "abc");
    }

    #[test]
    fn relativizes_workspace_paths() {
        assert_eq!(relativize("/workspace/src/a.rs"), "src/a.rs");
        assert_eq!(relativize("./app.py"), "app.py");
        assert_eq!(relativize("/tmp/x.py"), "/tmp/x.py");
    }

    #[test]
    fn keeps_both_ends_of_long_excerpts() {
        let lines: Vec<String> = (0..100).map(|i| format!("line {i:03}")).collect();
        let out = head_and_tail(&lines, 100);
        assert!(
            out.starts_with("line 000\n") && out.ends_with("line 099"),
            "{out}"
        );
        assert!(out.contains("\n…\n") && out.chars().count() <= 100);
        assert_eq!(head_and_tail(&["a", "b"], 100), "a\nb");
    }

    #[test]
    fn joins_without_blank_edges() {
        assert_eq!(join_trimmed(&["", "a", "", "b", " "]), "a\n\nb");
        assert_eq!(join_trimmed::<&str>(&[]), "");
    }
}
