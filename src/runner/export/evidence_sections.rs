//! The evidence sections a reviewer of agent work expects beyond the run itself: summary,
//! known limitations, what was out of scope, risk, rollback, and the AI-assistance footer.

use std::fmt::Write;

use super::evidence::{shell_quote, Evidence};
use super::evidence_md as md;
use crate::artifacts::State;
use crate::gate::{Failure, FailureOrigin};
use crate::policy::task_scope::{dependency_changes, out_of_scope as outside};
use crate::policy::{RiskLevel, ScopeAction, ScopeVerdict};
use crate::spec::Dependencies;

pub(super) fn summary(out: &mut String, e: &Evidence) {
    let s = e.summary;
    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(
        out,
        "**Outcome:** `{}` ({}) after {} attempt(s) at level {} — task `{}`.\n",
        s.state.as_str(),
        s.reason,
        s.attempts.len(),
        s.level,
        md::text(&s.task_id)
    );
    if let Some(m) = &s.message {
        let _ = writeln!(out, "> {}\n", md::text(m));
    }
    let risk = s
        .risk
        .as_ref()
        .map_or("not classified", |r| r.level.as_str());
    let _ = writeln!(out, "- Kind: {}", md::text(&s.kind));
    let _ = writeln!(out, "- Risk: **{risk}**");
    let _ = writeln!(
        out,
        "- Change: {} file(s), +{} −{}",
        s.diff.files, s.diff.insertions, s.diff.deletions
    );
    if let Some(b) = &s.branch {
        let commit = s
            .commit
            .as_deref()
            .map(|c| format!(" at {}", md::code(c)))
            .unwrap_or_default();
        let pushed = if s.pushed { "pushed" } else { "not pushed" };
        let _ = writeln!(out, "- Branch: {}{commit} ({pushed})", md::code(b));
    }
    if !s.paths.is_empty() {
        let _ = writeln!(out, "- Paths named by `{}`: {}", s.reason, list(&s.paths));
    }
    let _ = writeln!(
        out,
        "- Took {:.1}s; base {}\n",
        s.duration_s,
        md::code(s.repo.base_commit.as_deref().unwrap_or(&e.spec.repo.base))
    );
}

/// What the gate could not cover, flaky and pre-existing failures, truncated output.
pub(super) fn limitations(out: &mut String, e: &Evidence) {
    let _ = writeln!(out, "## Known limitations\n");
    let mut items: Vec<String> = Vec::new();
    if !e.adm.run_gate {
        items.push("No gate ran: nothing in this change was built or tested by airlock.".into());
    } else {
        items.push("The gate checks only what its commands test; behaviour they do not exercise (other platforms, integration with live services, performance) is not covered.".into());
    }
    if !e.spec.acceptance.is_empty() {
        items.push("Acceptance criteria are not checked one by one; a green gate covers them only as far as its tests do.".into());
    }
    for a in &e.summary.attempts {
        for f in &a.flaky {
            items.push(format!(
                "Flaky in attempt {}: {} failed, then passed when rerun.",
                a.n,
                md::code(id_of(f))
            ));
        }
        for f in a
            .failures
            .iter()
            .filter(|f| f.origin == Some(FailureOrigin::Preexisting))
        {
            items.push(format!(
                "Pre-existing failure in attempt {}: {} fails on the base as well.",
                a.n,
                md::code(id_of(f))
            ));
        }
        if a.failures.len() > 10 {
            items.push(format!(
                "Attempt {}: {} failures, only the first 10 are listed.",
                a.n,
                a.failures.len()
            ));
        }
        let logs = a
            .agent
            .iter()
            .chain(a.gate.iter())
            .filter(|c| c.log_bytes_omitted > 0);
        for c in logs {
            items.push(format!(
                "Truncated output: {} lost {} byte(s) from its middle (head and tail kept).",
                md::code(&c.log),
                c.log_bytes_omitted
            ));
        }
    }
    for (p, why) in &e.summary.diff.skipped {
        items.push(format!(
            "Left out of the diff: {} ({}).",
            md::code(p),
            md::text(why)
        ));
    }
    for i in items {
        let _ = writeln!(out, "- {i}");
    }
    out.push('\n');
}

fn id_of(f: &Failure) -> &str {
    f.test_id.as_deref().or(f.file.as_deref()).unwrap_or("?")
}

/// What the agent was told not to touch, and whether it did.
pub(super) fn out_of_scope(out: &mut String, e: &Evidence) {
    let _ = writeln!(out, "## Out of scope\n");
    let ts = &e.adm.task_scope;
    let scope = &e.adm.policy.scope;
    let _ = writeln!(out, "The agent was told not to touch:\n");
    if !ts.allowed.is_empty() {
        let _ = writeln!(out, "- anything outside {}", list(&ts.allowed));
    }
    if !ts.forbidden.is_empty() {
        let _ = writeln!(out, "- {}", list(&ts.forbidden));
    }
    if ts.dependencies == Dependencies::Forbid {
        let _ = writeln!(out, "- dependency manifests and lock files");
    }
    for r in &scope.protected {
        let what = match r.action {
            ScopeAction::Blocked => "blocked",
            ScopeAction::RequestReview => "needs review",
        };
        let _ = writeln!(out, "- {} ({what}, level {})", list(&r.paths), e.adm.level);
    }
    let _ = writeln!(out, "- more than {} file(s)\n", scope.max_files_changed);
    let touched = touched(e);
    if touched.is_empty() {
        let _ = writeln!(out, "It touched none of them.\n");
    } else {
        let _ = writeln!(
            out,
            "It touched: {} (the task ended `{}` / {}).\n",
            list(&touched),
            e.summary.state.as_str(),
            e.summary.reason
        );
    }
}

/// Paths the change has outside the task scope, forbidden dependency files, and the paths a
/// scope rule stopped the task for.
fn touched(e: &Evidence) -> Vec<String> {
    let ts = &e.adm.task_scope;
    let mut paths = outside(ts, &e.diff.files);
    if ts.dependencies == Dependencies::Forbid {
        paths.extend(dependency_changes(&e.diff.files));
    }
    match e.summary.attempts.last().map(|a| &a.scope) {
        Some(ScopeVerdict::NeedsHuman { paths: named, .. })
        | Some(ScopeVerdict::Blocked { paths: named, .. }) => paths.extend(named.iter().cloned()),
        _ => {}
    }
    let mut seen = Vec::new();
    paths.retain(|p| {
        let new = !seen.contains(p);
        seen.push(p.clone());
        new
    });
    paths
}

/// The classification, the rules that fired, and the standing notes.
pub(super) fn risk(out: &mut String, e: &Evidence) {
    let _ = writeln!(out, "## Risk\n");
    match &e.summary.risk {
        None => {
            let _ = writeln!(out, "Not classified: nothing ran.\n");
        }
        Some(r) => {
            let _ = writeln!(
                out,
                "Classification: **{}** (rules from {}).\n",
                r.level.as_str(),
                md::code(&e.adm.risk.file)
            );
            if r.rules.is_empty() {
                let _ = writeln!(out, "No risk rule fired.\n");
            } else {
                let _ = writeln!(out, "| rule | risk | paths | note |\n|---|---|---|---|");
                for f in &r.rules {
                    let more = if f.more_paths > 0 {
                        format!(" and {} more", f.more_paths)
                    } else {
                        String::new()
                    };
                    let paths = if f.paths.is_empty() {
                        "whole diff".to_string()
                    } else {
                        list(&f.paths) + &more
                    };
                    let _ = writeln!(
                        out,
                        "| {} | {} | {paths} | {} |",
                        md::text(&f.name),
                        f.risk.as_str(),
                        md::text(&f.note)
                    );
                }
                out.push('\n');
            }
            if r.level == RiskLevel::High && e.summary.reason == super::super::risk_step::HIGH_RISK
            {
                let _ = writeln!(
                    out,
                    "Level {} stops high-risk changes before push: nothing was pushed.\n",
                    e.adm.level
                );
            }
        }
    }
    let deps = dependency_changes(&e.diff.files);
    let _ = writeln!(out, "Risk notes:\n");
    super::evidence::preexisting(out, e.summary);
    if !deps.is_empty() && e.adm.task_scope.dependencies == Dependencies::Review {
        let _ = writeln!(out, "- Dependency manifests or lock files changed ({}): the task's scope allows them for review; check every added or upgraded package.", list(&deps));
    }
    let _ = writeln!(out, "- The agent ran with no network, no secrets, a read-only root filesystem and all capabilities dropped; its output is untrusted until reviewed.");
    let _ = writeln!(out, "- The issue text was written by someone outside the runner; review the change against what the repository owners want, not only against the issue.\n");
}

/// How to undo the change, for a change that has files.
pub(super) fn rollback(out: &mut String, e: &Evidence) {
    let s = e.summary;
    let _ = writeln!(out, "## Rollback\n");
    if s.diff.files == 0 {
        let _ = writeln!(out, "Nothing to roll back: the task changed no file.\n");
        return;
    }
    let mut lines = Vec::new();
    match (&s.commit, &s.branch) {
        (Some(c), Some(b)) => {
            let unmerged = if s.pushed {
                "; before it is merged, delete the pushed branch instead"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "Once merged, revert the agent's commit on {}{unmerged}:\n",
                md::code(&e.spec.repo.base)
            );
            lines.push(format!("git revert --no-edit {}", shell_quote(c)));
            if s.pushed {
                lines.push(format!("git push origin --delete {}", shell_quote(b)));
            }
        }
        _ => {
            let _ = writeln!(
                out,
                "The change exists only as `diff.patch`; to undo it where it was applied:\n"
            );
            lines.push("git apply -R --binary diff.patch".into());
        }
    }
    out.push_str(&md::fenced("sh", &lines));
    out.push('\n');
}

/// The AI-assistance disclosure.
pub(super) fn footer(out: &mut String, e: &Evidence) {
    let _ = writeln!(out, "---\n");
    let verdict = if e.summary.state == State::Green {
        "The gate passed"
    } else {
        "The gate did not pass"
    };
    let _ = writeln!(
        out,
        "_AI-assistance disclosure: this change was written by an AI coding agent ({} running {}) inside airlock {}, a sandbox with no network and no secrets, from an issue written by a person. No human wrote or reviewed it before this record was made. {verdict}; a human must review it before it is merged._",
        md::code(&e.spec.agent.image),
        md::code(&e.spec.agent.command.join(" ")),
        env!("CARGO_PKG_VERSION")
    );
}

fn list(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| md::code(p))
        .collect::<Vec<_>>()
        .join(", ")
}
