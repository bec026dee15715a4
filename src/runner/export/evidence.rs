//! `evidence.md`: what a reviewer needs, ready to paste as a PR body. Every value that came
//! from the container, the repository or the issue goes through [`md`] first.

use std::fmt::Write;

use super::evidence_md as md;
use super::evidence_sections as sections;
use crate::artifacts::{State, Summary};
use crate::policy::Admission;
use crate::spec::TaskSpec;
use crate::workspace::Diff;

/// Most failures listed per attempt.
const FAILURES_SHOWN: usize = 10;
/// Longest failure message shown.
const MESSAGE_CHARS: usize = 120;

/// Everything the evidence is rendered from.
pub struct Evidence<'a> {
    pub spec: &'a TaskSpec,
    pub summary: &'a Summary,
    pub diff: &'a Diff,
    pub adm: &'a Admission,
}

/// Render the evidence.
pub fn render(e: &Evidence) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", md::text(&e.summary.title));
    sections::summary(&mut md, e);
    acceptance(&mut md, e);
    files(&mut md, e.summary, e.diff);
    tests_run(&mut md, e);
    super::evidence_ci::section(&mut md, e.summary);
    sections::limitations(&mut md, e);
    sections::out_of_scope(&mut md, e);
    red_flags(&mut md, e.summary);
    sections::risk(&mut md, e);
    super::evidence_models::section(&mut md, e.summary);
    sections::rollback(&mut md, e);
    reproduce(&mut md, e.spec, e.summary);
    sections::footer(&mut md, e);
    md
}

fn acceptance(md: &mut String, e: &Evidence) {
    let _ = writeln!(md, "## Acceptance criteria\n");
    if e.spec.acceptance.is_empty() {
        let _ = writeln!(md, "The task listed no acceptance criteria.\n");
        return;
    }
    let green = e.summary.state == State::Green;
    let how = match (&e.spec.gate, e.adm.run_gate) {
        (Some(g), true) => format!(
            "covered by the gate ({})",
            g.commands
                .iter()
                .map(|c| md::code(&c.join(" ")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "no gate ran".to_string(),
    };
    let _ = writeln!(
        md,
        "| criterion | status | how it was checked |\n|---|---|---|"
    );
    for a in &e.spec.acceptance {
        let status = if green {
            "✅ gate green"
        } else {
            "❌ not verified"
        };
        let _ = writeln!(md, "| {} | {status} | {how} |", md::text(a));
    }
    let _ = writeln!(md, "\nThe gate is the only check airlock ran; each criterion is covered only as far as the gate's tests cover it.\n");
}

fn files(md: &mut String, s: &Summary, diff: &Diff) {
    let _ = writeln!(
        md,
        "## Files changed ({}, +{} −{})\n",
        s.diff.files, s.diff.insertions, s.diff.deletions
    );
    if diff.files.is_empty() && s.diff.skipped.is_empty() {
        let _ = writeln!(md, "No file changed.");
    }
    for f in &diff.files {
        let from = f
            .old_path
            .as_ref()
            .map(|o| format!(" (from {})", md::code(o)))
            .unwrap_or_default();
        let bin = if f.binary { " (binary)" } else { "" };
        let _ = writeln!(
            md,
            "- {} {}{from}{bin}",
            md::code(&f.path),
            md::text(&f.status.to_string())
        );
    }
    for (p, why) in &s.diff.skipped {
        let _ = writeln!(
            md,
            "- {} left out of the diff: {}",
            md::code(p),
            md::text(why)
        );
    }
    md.push('\n');
}

fn tests_run(md: &mut String, e: &Evidence) {
    let _ = writeln!(md, "## Tests run\n");
    match (&e.spec.gate, e.adm.run_gate) {
        (Some(g), true) => {
            let _ = writeln!(
                md,
                "The gate ran in a fresh container after each attempt of the agent:\n"
            );
            for c in &g.commands {
                let _ = writeln!(md, "- {}", md::code(&c.join(" ")));
            }
            md.push('\n');
        }
        _ => {
            let _ = writeln!(md, "No gate ran at this level: nothing was tested.\n");
        }
    }
    let _ = writeln!(
        md,
        "| # | agent | gate | failures | flaky | verdict |\n|---|---|---|---|---|---|"
    );
    for a in &e.summary.attempts {
        let agent = a
            .agent
            .as_ref()
            .map(|c| {
                format!(
                    "{} exit {} ({:.1}s)",
                    md::text(c.ended.as_str()),
                    c.exit_code.map_or("-".into(), |e| e.to_string()),
                    c.duration_s
                )
            })
            .unwrap_or_default();
        let gate = match a.gate_passed {
            Some(true) => "passed".to_string(),
            Some(false) => gate_runs(a),
            None => "not run".to_string(),
        };
        let tests = a.tests.as_ref().map(|t| {
            format!(
                "; tests: {} passed, {} failed, {} skipped",
                t.passed, t.failed, t.skipped
            )
        });
        let gate = gate + &tests.unwrap_or_default();
        let _ = writeln!(
            md,
            "| {} | {agent} | {gate} | {} | {} | {} |",
            a.n,
            a.failures.len(),
            a.flaky.len(),
            md::text(a.verdict.as_str())
        );
        for f in a.failures.iter().take(FAILURES_SHOWN) {
            let msg = md::clip(&f.message, MESSAGE_CHARS);
            let _ = writeln!(
                md,
                "|  | | | {} {}{} | | |",
                md::code(&failure_at(f)),
                md::text(&origin_tag(f)),
                md::text(&msg)
            );
        }
    }
    md.push('\n');
}

/// `(test, pre-existing) ` before a failure's message.
fn origin_tag(f: &crate::gate::Failure) -> String {
    use crate::gate::FailureOrigin;
    let class = f.class.as_str();
    match f.origin {
        Some(FailureOrigin::Preexisting) => format!("({class}, pre-existing) "),
        Some(FailureOrigin::Introduced) => format!("({class}, introduced) "),
        None => format!("({class}) "),
    }
}

/// Failures of the last attempt that fail on the untouched base too.
pub(super) fn preexisting(md: &mut String, s: &Summary) {
    let Some(last) = s.attempts.last() else {
        return;
    };
    let pre: Vec<&str> = last
        .failures
        .iter()
        .filter(|f| f.origin == Some(crate::gate::FailureOrigin::Preexisting))
        .map(|f| f.test_id.as_deref().or(f.file.as_deref()).unwrap_or("?"))
        .collect();
    if pre.is_empty() {
        return;
    }
    let shown: Vec<String> = pre.iter().take(10).map(|p| md::code(p)).collect();
    let more = pre.len().saturating_sub(shown.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let _ = writeln!(md, "- {} failure(s) fail the same way on the untouched base (pre-existing, not caused by this change): {}{more}. The gate is not fully green; a reviewer should know the base is red.", pre.len(), shown.join(", "));
}

/// "failed (2 gate runs)", or "(3 gate runs, 1 a flaky-check rerun)": reruns are named only
/// when there were any.
fn gate_runs(a: &crate::artifacts::AttemptRecord) -> String {
    let reruns = a.gate.iter().filter(|c| is_rerun(&c.container)).count();
    let runs = a.gate.len();
    let plural = if runs == 1 { "" } else { "s" };
    match reruns {
        0 => format!("failed ({runs} gate run{plural})"),
        r => format!("failed ({runs} gate run{plural}, {r} of them flaky-check reruns)"),
    }
}

/// Container names are `airlock-<task>-gate<n>-<step>-<hex>`; reruns have steps from 100.
fn is_rerun(container: &str) -> bool {
    container
        .rsplit('-')
        .nth(1)
        .and_then(|s| s.parse::<usize>().ok())
        .is_some_and(|step| step >= 100)
}

/// The test id with its file:line, in one code span (`tests/t.py::test_a (tests/t.py:12)`).
pub(super) fn failure_at(f: &crate::gate::Failure) -> String {
    let at = match (&f.file, f.line) {
        (Some(file), Some(line)) => Some(format!("{file}:{line}")),
        (Some(file), None) => Some(file.clone()),
        _ => None,
    };
    match (&f.test_id, at) {
        (Some(id), Some(at)) => format!("{id} ({at})"),
        (Some(id), None) => id.clone(),
        (None, Some(at)) => at,
        (None, None) => "?".into(),
    }
}

fn red_flags(md: &mut String, s: &Summary) {
    let flags: Vec<_> = s.attempts.iter().flat_map(|a| a.red_flags.iter()).collect();
    if flags.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Red flags\n");
    for f in flags {
        let line = f.line.map(|l| format!(":{l}")).unwrap_or_default();
        let against = if f.since_previous_attempt {
            " (in the change from the previous attempt, not the diff from the base)"
        } else {
            ""
        };
        let _ = writeln!(
            md,
            "- **{}** {}: {}{against}",
            md::text(&wire_name(f.kind)),
            md::code(&format!("{}{line}", f.file)),
            md::text(&md::clip(&f.detail, 300))
        );
    }
    md.push('\n');
}

fn reproduce(md: &mut String, spec: &TaskSpec, s: &Summary) {
    let _ = writeln!(md, "## Reproduce the gate locally\n");
    let base = s.repo.base_commit.as_deref().unwrap_or(&spec.repo.base);
    let mut lines = vec![
        format!("git checkout {}", shell_quote(base)),
        "git apply --binary diff.patch".to_string(),
    ];
    if let Some(g) = &spec.gate {
        for c in &g.commands {
            lines.push(format!("docker run --rm --network none --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges --user {uid}:{uid} -v \"$PWD:/workspace\" -w /workspace {} {}", shell_quote(&g.image), c.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "), uid = crate::sandbox::hardening::sandbox_uid()));
        }
    }
    md.push_str(&md::fenced("sh", &lines));
    md.push('\n');
}

/// A unit enum's serde name (`test_removed`).
fn wire_name(v: impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| "?".into())
}

/// Quote `a` for a POSIX shell when it holds anything but safe characters.
pub(super) fn shell_quote(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}
