//! `evidence.md`: what a reviewer needs, ready to paste as a PR body.

use std::fmt::Write;

use crate::artifacts::Summary;
use crate::spec::TaskSpec;
use crate::workspace::Diff;

/// Render the evidence for `summary`.
pub fn render(spec: &TaskSpec, s: &Summary, diff: &Diff) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", s.title);
    let _ = writeln!(
        md,
        "**Outcome:** `{}` ({}) after {} attempt(s) at level {} — task `{}`.\n",
        s.state.as_str(),
        s.reason,
        s.attempts.len(),
        s.level,
        s.task_id
    );
    if let Some(m) = &s.message {
        let _ = writeln!(md, "> {}\n", m.replace('\n', " "));
    }
    acceptance(&mut md, spec, s);
    files(&mut md, s, diff);
    attempts(&mut md, s);
    red_flags(&mut md, s);
    risks(&mut md, s);
    reproduce(&mut md, spec, s);
    md
}

fn acceptance(md: &mut String, spec: &TaskSpec, s: &Summary) {
    if spec.acceptance.is_empty() {
        return;
    }
    let green = s.state == crate::artifacts::State::Green;
    let _ = writeln!(md, "## Acceptance\n");
    for a in &spec.acceptance {
        let mark = if green { "gate green" } else { "not verified" };
        let _ = writeln!(md, "- [{}] {a} — {mark}", if green { "x" } else { " " });
    }
    let _ = writeln!(md, "\nThe gate is the only check airlock ran; each item above is covered only as far as the gate's tests cover it.\n");
}

fn files(md: &mut String, s: &Summary, diff: &Diff) {
    let _ = writeln!(
        md,
        "## Files changed ({}, +{} −{})\n",
        s.diff.files, s.diff.insertions, s.diff.deletions
    );
    for f in &diff.files {
        let from = f
            .old_path
            .as_ref()
            .map(|o| format!(" (from `{o}`)"))
            .unwrap_or_default();
        let bin = if f.binary { " (binary)" } else { "" };
        let _ = writeln!(md, "- `{}` {}{from}{bin}", f.path, f.status);
    }
    for (p, why) in &s.diff.skipped {
        let _ = writeln!(md, "- `{p}` left out of the diff: {why}");
    }
    md.push('\n');
}

fn attempts(md: &mut String, s: &Summary) {
    let _ = writeln!(md, "## Attempts\n\n| # | agent | gate | failures | flaky | verdict |\n|---|---|---|---|---|---|");
    for a in &s.attempts {
        let agent = a
            .agent
            .as_ref()
            .map(|c| {
                format!(
                    "{} exit {} ({:.1}s)",
                    c.ended,
                    c.exit_code.map_or("-".into(), |e| e.to_string()),
                    c.duration_s
                )
            })
            .unwrap_or_default();
        let gate = match a.gate_passed {
            Some(true) => "passed".to_string(),
            Some(false) => format!("failed ({} gate run(s), reruns included)", a.gate.len()),
            None => "not run".to_string(),
        };
        let tests = a.tests.as_ref().map(|t| {
            format!(
                "; tests: {} passed, {} failed, {} skipped",
                t["passed"], t["failed"], t["skipped"]
            )
        });
        let gate = gate + &tests.unwrap_or_default();
        let _ = writeln!(
            md,
            "| {} | {agent} | {gate} | {} | {} | {} |",
            a.n,
            a.failures.len(),
            a.flaky.len(),
            a.verdict
        );
        for f in a.failures.iter().take(10) {
            let _ = writeln!(
                md,
                "|  | | | `{}` {} | | |",
                f["test_id"].as_str().or(f["file"].as_str()).unwrap_or("?"),
                f["message"]
                    .as_str()
                    .unwrap_or("")
                    .replace('|', "\\|")
                    .chars()
                    .take(120)
                    .collect::<String>()
            );
        }
    }
    md.push('\n');
}

fn red_flags(md: &mut String, s: &Summary) {
    let flags: Vec<_> = s.attempts.iter().flat_map(|a| a.red_flags.iter()).collect();
    if flags.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Red flags\n");
    for f in flags {
        let _ = writeln!(
            md,
            "- **{}** `{}`{}: {}",
            f["kind"].as_str().unwrap_or("?"),
            f["file"].as_str().unwrap_or("?"),
            f["line"]
                .as_u64()
                .map(|l| format!(":{l}"))
                .unwrap_or_default(),
            f["detail"].as_str().unwrap_or("")
        );
    }
    md.push('\n');
}

fn risks(md: &mut String, s: &Summary) {
    let _ = writeln!(md, "## Risk notes\n");
    if !s.paths.is_empty() {
        let _ = writeln!(
            md,
            "- The rule that stopped this task (`{}`) names: {}",
            s.reason,
            s.paths
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(md, "- The agent ran with no network, no secrets, a read-only root filesystem and all capabilities dropped; its output is untrusted until reviewed.");
    let _ = writeln!(md, "- The issue text was written by someone outside the runner; review the change against what the repository owners want, not only against the issue.\n");
}

fn reproduce(md: &mut String, spec: &TaskSpec, s: &Summary) {
    let _ = writeln!(md, "## Reproduce the gate locally\n\n```sh");
    let base = s.repo["base_commit"].as_str().unwrap_or(&spec.repo.base);
    let _ = writeln!(md, "git checkout {base}\ngit apply --binary diff.patch");
    if let Some(g) = &spec.gate {
        for c in &g.commands {
            let _ = writeln!(md, "docker run --rm --network none --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges --user 1000:1000 -v \"$PWD:/workspace\" -w /workspace {} {}", g.image, c.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "));
        }
    }
    let _ = writeln!(md, "```");
}

fn shell_quote(a: &str) -> String {
    if a.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}
