//! rustc and clippy diagnostics, human-readable and `--message-format=json`.
//!
//! Human diagnostics start with `error[E0308]: ...` / `warning: ...`, carry their primary
//! location on a ` --> file:line:col` line and end at a blank line. Cargo's own summary lines
//! (`error: could not compile ...`) share the prefix and are skipped. Clippy diagnostics are the
//! same format; they are told apart by their `clippy::` lint names.

use serde_json::Value;

use super::classify::by_keywords;
use super::dispatch::{Finding, LineParser};
use super::text::{join_trimmed, split_location, Draft};
use crate::gate::{Failure, FailureKind};

/// Cargo and rustc summaries that look like diagnostics but only repeat them.
const SUMMARIES: &[&str] = &[
    "could not compile",
    "aborting due to",
    "build failed",
    "test failed, to rerun",
    "target failed",
    "targets failed",
    "Some errors have detailed explanations",
];

#[derive(Default)]
pub(crate) struct Rustc {
    diag: Option<Vec<String>>,
}

impl LineParser for Rustc {
    fn line(&mut self, line: &str, out: &mut Vec<Finding>) {
        if line.starts_with('{') {
            out.extend(json_diagnostic(line));
            return;
        }
        if header(line).is_some() {
            self.close(out);
            self.diag = Some(vec![line.to_string()]);
        } else if let Some(diag) = &mut self.diag {
            if line.trim().is_empty() || is_cargo_status(line) || is_summary(line) {
                self.close(out);
            } else {
                diag.push(line.to_string());
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<Finding>) {
        self.close(out);
    }
}

impl Rustc {
    fn close(&mut self, out: &mut Vec<Finding>) {
        if let Some(lines) = self.diag.take() {
            out.extend(human_diagnostic(&lines));
        }
    }
}

struct Header<'a> {
    warning: bool,
    code: Option<&'a str>,
    message: &'a str,
}

/// `error[E0308]: msg`, `error: msg`, `warning: msg` — but not cargo's summaries.
fn header(line: &str) -> Option<Header<'_>> {
    let (warning, rest) = if let Some(rest) = line.strip_prefix("error") {
        (false, rest)
    } else {
        (true, line.strip_prefix("warning")?)
    };
    let (code, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (code, r) = r.split_once(']')?;
            (Some(code), r)
        }
        None => (None, rest),
    };
    let message = rest.strip_prefix(": ")?;
    let generated = message.starts_with('`') && message.contains(" generated ");
    if is_summary(line) || generated {
        return None;
    }
    Some(Header {
        warning,
        code,
        message,
    })
}

fn is_summary(line: &str) -> bool {
    (line.starts_with("error") || line.starts_with("warning") || line.starts_with("Some "))
        && SUMMARIES.iter().any(|s| line.contains(s))
}

fn is_cargo_status(line: &str) -> bool {
    let word = line.trim_start().split(' ').next().unwrap_or("");
    line.starts_with("  ")
        && matches!(
            word,
            "Compiling" | "Checking" | "Finished" | "Running" | "Doc-tests" | "Fresh"
        )
}

fn human_diagnostic(lines: &[String]) -> Option<Finding> {
    let first = lines.first()?;
    let head = header(first)?;
    let loc = lines
        .iter()
        .find_map(|l| l.trim_start().strip_prefix("--> "))
        .and_then(split_location);
    if loc.is_none() && head.code.is_none() {
        return None;
    }
    let text = join_trimmed(lines);
    let lint = clippy_lint_name(&text);
    let clippy = head.code.is_some_and(|c| c.starts_with("clippy::")) || lint.is_some();
    let title = match (head.code, lint) {
        (None, Some(name)) => {
            let level = if head.warning { "warning" } else { "error" };
            format!("{level}[clippy::{name}]: {}", head.message)
        }
        _ => first.clone(),
    };
    let failure = build(clippy, &text, &title, loc.map(|l| (l.path, l.line)));
    Some(finding(failure, head.warning))
}

/// Human clippy output names its lint only in the help URL (`.../index.html#ptr_arg`); putting
/// it in the title makes human and JSON output give the same message and signature.
fn clippy_lint_name(text: &str) -> Option<&str> {
    let (_, after) = text.split_once("rust-clippy/")?;
    let (_, fragment) = after.split_once("index.html#")?;
    let end = fragment
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(fragment.len());
    Some(&fragment[..end]).filter(|n| !n.is_empty())
}

/// One `{"reason":"compiler-message",...}` line from `--message-format=json`.
fn json_diagnostic(line: &str) -> Option<Finding> {
    if !line.contains("\"compiler-message\"") {
        return None;
    }
    let v: Value = serde_json::from_str(line).ok()?;
    let msg = v.get("message")?;
    let level = msg.get("level")?.as_str()?;
    let warning = match level {
        l if l.starts_with("error") => false,
        "warning" => true,
        _ => return None,
    };
    let code = msg.pointer("/code/code").and_then(Value::as_str);
    let text = msg.get("message")?.as_str()?;
    let title = match code {
        Some(c) => format!("{level}[{c}]: {text}"),
        None => format!("{level}: {text}"),
    };
    let rendered = msg
        .get("rendered")
        .and_then(Value::as_str)
        .unwrap_or(&title);
    let span = primary_span(msg);
    let clippy = code.is_some_and(|c| c.starts_with("clippy::"));
    Some(finding(build(clippy, rendered, &title, span), warning))
}

fn primary_span(msg: &Value) -> Option<(&str, u32)> {
    let spans = msg.get("spans")?.as_array()?;
    let span = spans
        .iter()
        .find(|s| s.get("is_primary").and_then(Value::as_bool) == Some(true))?;
    let file = span.get("file_name")?.as_str()?;
    let line = span.get("line_start")?.as_u64()?;
    Some((file, u32::try_from(line).ok()?))
}

fn build(clippy: bool, text: &str, title: &str, loc: Option<(&str, u32)>) -> Failure {
    let (tool, kind) = if clippy {
        ("clippy", FailureKind::Lint)
    } else {
        let kind = match by_keywords(text) {
            Some(FailureKind::Dependency) => FailureKind::Dependency,
            _ => FailureKind::Compile,
        };
        ("rustc", kind)
    };
    Draft::new(tool, kind)
        .at(loc.map(|l| l.0), loc.map(|l| l.1))
        .message(title)
        .excerpt(text)
        .build()
}

fn finding(failure: Failure, warning: bool) -> Finding {
    if warning {
        Finding::warning(failure)
    } else {
        Finding::error(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::parse_output;

    #[test]
    fn skips_cargo_summaries() {
        assert!(
            header("error: could not compile `x` (bin \"x\") due to 2 previous errors").is_none()
        );
        assert!(header("warning: `x` (lib) generated 1 warning").is_none());
        assert!(header("error[E0308]: mismatched types").is_some());
        assert!(header("errors: nope").is_none());
    }

    #[test]
    fn warnings_only_count_when_nothing_else_failed() {
        let out = "warning: unused variable: `x`\n --> src/a.rs:2:9\n  |\n\n";
        assert_eq!(parse_output(out, 0), vec![]);
        let f = parse_output(out, 101);
        assert_eq!((f[0].tool.as_str(), f[0].line), ("rustc", Some(2)));
    }

    #[test]
    fn missing_crate_is_a_dependency_problem() {
        let out = "error[E0463]: can't find crate for `serde`\n --> src/main.rs:1:1\n\n";
        assert_eq!(parse_output(out, 101)[0].kind, FailureKind::Dependency);
    }
}
