//! The final lines of `airlock run` on stderr: what happened, for a person at a terminal. A red
//! or stopped task says why in its own words: the failing tests with file:line (the first few,
//! then a count), the red flags with file:line, or the scope rule and the paths it names. Every
//! string from a container or the repository is escaped onto one line.

use crate::artifacts::{AttemptRecord, State, Summary};
use crate::gate::{Failure, FailureOrigin, RedFlag};
use crate::vocab::{Reason, ScopeVerdict};

/// Failures, red flags and paths listed before "and N more".
const SHOWN: usize = 5;
/// Characters kept of one field (a test id, a message, a path).
const FIELD_CHARS: usize = 160;

/// A short human summary for the end of `airlock run` (`--json` prints the summary instead,
/// unchanged, on stdout).
pub fn describe(summary: &Summary) -> String {
    let d = &summary.diff;
    let mut s = format!(
        "{} ({}) after {} attempt(s) in {:.1}s: {} file(s) changed, +{} -{}",
        summary.state.as_str(),
        summary.reason,
        summary.attempts.len(),
        summary.duration_s,
        d.files,
        d.insertions,
        d.deletions
    );
    for a in &summary.attempts {
        s.push_str(&format!("\n  {}", attempt_line(a)));
    }
    if let Some(m) = &summary.message {
        s.push_str(&format!("\n  {}", one_line(m)));
    }
    if summary.state != State::Green {
        if let Some(last) = summary.attempts.last() {
            what_happened(&mut s, summary, last);
        }
    }
    if let Some(r) = &summary.risk {
        let rules: Vec<&str> = r.rules.iter().map(|f| f.name.as_str()).collect();
        s.push_str(&format!(
            "\n  risk: {} ({})",
            r.level.as_str(),
            if rules.is_empty() {
                "no rule fired".to_string()
            } else {
                rules.join(", ")
            }
        ));
    }
    s.push_str(&format!("\n  artifacts: {}", one_line(&summary.artifacts)));
    s
}

/// `attempt 2: agent exit 0 1.0s, gate passed, 1 red flag -> stop`.
fn attempt_line(a: &AttemptRecord) -> String {
    let mut parts = Vec::new();
    if let Some(c) = &a.agent {
        parts.push(format!(
            "agent exit {} {:.1}s",
            c.exit_code.unwrap_or(-1),
            c.duration_s
        ));
    }
    parts.push(match a.gate_passed {
        Some(true) => "gate passed".to_string(),
        Some(false) => format!("gate failed ({} failure(s))", a.failures.len()),
        None => "no gate".to_string(),
    });
    if !a.flaky.is_empty() {
        parts.push(format!("{} flaky", a.flaky.len()));
    }
    if !a.red_flags.is_empty() {
        parts.push(format!("{} red flag(s)", a.red_flags.len()));
    }
    if let Some((reason, _)) = scope_rule(&a.scope) {
        parts.push(format!("scope: {reason}"));
    }
    format!("attempt {}: {} -> {}", a.n, parts.join(", "), a.verdict)
}

/// The lines that say why a task that is not green ended where it did.
fn what_happened(s: &mut String, summary: &Summary, last: &AttemptRecord) {
    if !last.failures.is_empty() {
        s.push_str(&format!(
            "\n  failing in attempt {} ({}):",
            last.n,
            last.failures.len()
        ));
        let lines: Vec<String> = last.failures.iter().map(failure_line).collect();
        list(s, &lines);
    }
    if !last.red_flags.is_empty() {
        s.push_str(&format!(
            "\n  red flags in attempt {} ({}):",
            last.n,
            last.red_flags.len()
        ));
        let lines: Vec<String> = last.red_flags.iter().map(red_flag_line).collect();
        list(s, &lines);
    }
    if let Some((reason, paths)) = scope_rule(&last.scope) {
        scope_lines(s, reason, paths);
    } else if !summary.paths.is_empty() && last.red_flags.is_empty() {
        // A task-level rule (the task's own [scope]) names its paths in the summary.
        scope_lines(s, summary.reason, &summary.paths);
    }
}

/// `out_of_scope (the task's [scope] allowed/forbidden) paths: a, b and 3 more`.
fn scope_lines(s: &mut String, reason: Reason, paths: &[String]) {
    let rule = scope_rule_text(reason)
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    if paths.is_empty() {
        s.push_str(&format!("\n  {reason}{rule}"));
        return;
    }
    let shown: Vec<String> = paths.iter().take(SHOWN).map(|p| one_line(p)).collect();
    let more = paths.len().saturating_sub(SHOWN);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    s.push_str(&format!(
        "\n  {reason} paths: {}{tail}{rule}",
        shown.join(", ")
    ));
}

/// Which policy rule a scope reason stands for, in the words of the policy file.
fn scope_rule_text(reason: Reason) -> Option<&'static str> {
    Some(match reason {
        Reason::OutOfScope => "outside the task's [scope] allowed, or in its forbidden",
        Reason::ProtectedPath => "a protected path: a human must look",
        Reason::ForbiddenPath => "a path the policy forbids",
        Reason::TooManyFiles => "more files than [scope] max_files_changed",
        Reason::DiffTooLarge => "a diff larger than [scope] max_diff_bytes",
        Reason::BinaryChange => "a binary change, and the policy allows none",
        Reason::DependencyChange => "a dependency change, and the task's scope allows none",
        _ => return None,
    })
}

fn scope_rule(v: &ScopeVerdict) -> Option<(Reason, &[String])> {
    match v {
        ScopeVerdict::Ok => None,
        ScopeVerdict::NeedsHuman { reason, paths } | ScopeVerdict::Blocked { reason, paths } => {
            Some((*reason, paths))
        }
    }
}

/// The first few lines, then `and N more`.
fn list(s: &mut String, lines: &[String]) {
    for l in lines.iter().take(SHOWN) {
        s.push_str(&format!("\n    {l}"));
    }
    if lines.len() > SHOWN {
        s.push_str(&format!("\n    and {} more", lines.len() - SHOWN));
    }
}

/// `tests/test_x.py::test_add at tests/test_x.py:12: assert 1 == 2`.
fn failure_line(f: &Failure) -> String {
    let what = f
        .test_id
        .as_deref()
        .map(one_line)
        .unwrap_or_else(|| format!("{} {}", f.tool, f.kind.as_str()));
    let at = location(f.file.as_deref(), f.line)
        .map(|l| format!(" at {l}"))
        .unwrap_or_default();
    let base = if f.origin == Some(FailureOrigin::Preexisting) {
        " (fails on the base too)"
    } else {
        ""
    };
    let msg = if f.message.is_empty() {
        String::new()
    } else {
        format!(": {}", one_line(&f.message))
    };
    format!("{what}{at}{base}{msg}")
}

/// `test_file_deleted at tests/test_app.py:1: the whole file`.
fn red_flag_line(r: &RedFlag) -> String {
    let kind = serde_json::to_value(r.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let at = location(Some(&r.file), r.line).unwrap_or_default();
    let since = if r.since_previous_attempt {
        " (since the previous attempt)"
    } else {
        ""
    };
    let detail = if r.detail.is_empty() {
        String::new()
    } else {
        format!(": {}", one_line(&r.detail))
    };
    format!("{kind} at {at}{since}{detail}")
}

fn location(file: Option<&str>, line: Option<u32>) -> Option<String> {
    let file = one_line(file?);
    Some(match line {
        Some(l) => format!("{file}:{l}"),
        None => file,
    })
}

/// One line of terminal text from hostile input: controls (newlines too), C1 codes,
/// bidirectional and zero-width characters shown as escapes, at most [`FIELD_CHARS`] characters.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(FIELD_CHARS * 2));
    for (i, c) in s.chars().enumerate() {
        if i == FIELD_CHARS {
            out.push('…');
            break;
        }
        let n = c as u32;
        let hidden = n < 0x20
            || n == 0x7f
            || (0x80..=0x9f).contains(&n)
            || (0x200b..=0x200f).contains(&n)
            || (0x202a..=0x202e).contains(&n)
            || (0x2066..=0x2069).contains(&n)
            || n == 0xfeff;
        if hidden {
            out.push_str(&format!("\\u{{{n:x}}}"));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_escapes_what_a_terminal_would_act_on() {
        assert_eq!(
            one_line("a\nb\x1b[2Jc\u{202e}d\u{9b}"),
            "a\\u{a}b\\u{1b}[2Jc\\u{202e}d\\u{9b}"
        );
        let long = "x".repeat(500);
        assert_eq!(one_line(&long).chars().count(), FIELD_CHARS + 1);
    }

    #[test]
    fn a_list_stops_after_the_first_few_and_counts_the_rest() {
        let mut s = String::new();
        let lines: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
        list(&mut s, &lines);
        assert_eq!(s.matches("\n    t").count(), SHOWN);
        assert!(s.ends_with("\n    and 3 more"), "{s}");
    }
}
