//! The task's `[scope]` as the agent is told it in `prompt.md`.

use crate::spec::{Dependencies, RequestedScope};

/// Append a `## Scope` section when the task narrowed its scope.
pub(super) fn prompt_scope(p: &mut String, scope: &RequestedScope) {
    if scope.is_empty() {
        return;
    }
    p.push_str(
        "## Scope\n\nChanges outside these bounds stop the task and send it to a human:\n\n",
    );
    if !scope.allowed.is_empty() {
        p.push_str(&format!(
            "- Change only paths matching: {}\n",
            list(&scope.allowed)
        ));
    }
    if !scope.forbidden.is_empty() {
        p.push_str(&format!(
            "- Do not touch paths matching: {}\n",
            list(&scope.forbidden)
        ));
    }
    if let Some(n) = scope.max_files_changed {
        p.push_str(&format!("- Change at most {n} file(s).\n"));
    }
    if scope.dependencies == Some(Dependencies::Forbid) {
        p.push_str("- Do not add, remove or upgrade dependencies (manifests and lock files).\n");
    }
    p.push('\n');
}

fn list(patterns: &[String]) -> String {
    patterns
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
