//! The task's own `[scope]`: tightened against the level's at admission, then checked on every
//! attempt's diff after the level's own scope rules. Pure.

use globset::GlobMatcher;
use serde::Serialize;

use super::admit::Refusal;
use super::scope::{compile, ChangedFile, ScopeVerdict};
use super::Scope;
use crate::spec::{Dependencies, RequestedScope};
use crate::vocab::Reason;

/// Dependency manifests and lock files of the common ecosystems (matched on the file name, in
/// any directory).
pub const DEPENDENCY_FILES: &[&str] = &[
    "requirements*.txt",
    "requirements/*.txt",
    "constraints*.txt",
    "pyproject.toml",
    "poetry.lock",
    "Pipfile",
    "Pipfile.lock",
    "setup.py",
    "setup.cfg",
    "uv.lock",
    "Cargo.toml",
    "Cargo.lock",
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lockb",
    "go.mod",
    "go.sum",
    "Gemfile",
    "Gemfile.lock",
    "*.gemspec",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "settings.gradle",
    "settings.gradle.kts",
    "gradle.lockfile",
    "composer.json",
    "composer.lock",
    "mix.exs",
    "mix.lock",
    "Package.swift",
    "Package.resolved",
    "*.csproj",
    "packages.lock.json",
];

/// The effective task scope (after admission).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TaskScope {
    /// Patterns a change must stay within (empty: anywhere the level allows).
    pub allowed: Vec<String>,
    /// Patterns a change may not touch.
    pub forbidden: Vec<String>,
    /// How a dependency change is treated.
    pub dependencies: Dependencies,
    /// Whether the task narrowed the level at all (for the evidence).
    pub declared: bool,
}

impl Default for TaskScope {
    fn default() -> Self {
        TaskScope {
            allowed: vec![],
            forbidden: vec![],
            dependencies: Dependencies::Review,
            declared: false,
        }
    }
}

/// The reason a path outside `allowed` or inside `forbidden` stops a task.
pub const OUT_OF_SCOPE: Reason = Reason::OutOfScope;
/// The reason a dependency change stops a task whose scope forbids it.
pub const DEPENDENCY_CHANGE: Reason = Reason::DependencyChange;
/// Admission's reason for a `[scope]` looser than the level's.
pub const SCOPE_ABOVE_CEILING: Reason = Reason::ScopeAboveCeiling;

/// Apply the spec's `[scope]` to the level's: `level` gets the tighter file count, the task
/// scope is returned. A looser value is refused, naming the ceiling.
pub fn tighten(level: &mut Scope, req: &RequestedScope) -> Result<TaskScope, Refusal> {
    if let Some(n) = req.max_files_changed {
        if n > level.max_files_changed {
            return Err(refusal(format!("scope.max_files_changed = {n} is above the policy's ceiling {}; a task may only tighten its scope", level.max_files_changed)));
        }
        level.max_files_changed = n;
    }
    let dependencies = match req.dependencies {
        Some(d) if d < level.dependencies => {
            return Err(refusal(format!("scope.dependencies = \"{}\" is looser than the policy's \"{}\"; a task may only tighten its scope", d.as_str(), level.dependencies.as_str())));
        }
        Some(d) => d,
        None => level.dependencies,
    };
    Ok(TaskScope {
        allowed: req.allowed.clone(),
        forbidden: req.forbidden.clone(),
        dependencies,
        declared: !req.is_empty(),
    })
}

fn refusal(message: String) -> Refusal {
    Refusal {
        reason: SCOPE_ABOVE_CEILING,
        message,
    }
}

/// The task scope's verdict on a diff: paths outside `allowed` or inside `forbidden` first
/// (`needs_human` / `out_of_scope`), then forbidden dependency changes.
pub fn check(ts: &TaskScope, files: &[ChangedFile]) -> ScopeVerdict {
    let outside = out_of_scope(ts, files);
    if !outside.is_empty() {
        return ScopeVerdict::NeedsHuman {
            reason: OUT_OF_SCOPE,
            paths: outside,
        };
    }
    let deps = dependency_changes(files);
    if ts.dependencies == Dependencies::Forbid && !deps.is_empty() {
        return ScopeVerdict::NeedsHuman {
            reason: DEPENDENCY_CHANGE,
            paths: deps,
        };
    }
    ScopeVerdict::Ok
}

/// Every path (and rename source) the task scope does not allow, in diff order.
pub fn out_of_scope(ts: &TaskScope, files: &[ChangedFile]) -> Vec<String> {
    let allowed = matchers(&ts.allowed);
    let forbidden = matchers(&ts.forbidden);
    let mut hits = Vec::new();
    for name in names(files) {
        let outside = !ts.allowed.is_empty() && !allowed.iter().any(|m| m.is_match(name));
        let inside = forbidden.iter().any(|m| m.is_match(name));
        if (outside || inside) && !hits.iter().any(|h| h == name) {
            hits.push(name.to_string());
        }
    }
    hits
}

/// The changed paths that are dependency manifests or lock files.
pub fn dependency_changes(files: &[ChangedFile]) -> Vec<String> {
    let mut hits: Vec<String> = Vec::new();
    for name in names(files) {
        if is_dependency_file(name) && !hits.iter().any(|h| h == name) {
            hits.push(name.to_string());
        }
    }
    hits
}

/// Whether `path` (relative, `/`-separated) is a dependency manifest or lock file.
pub fn is_dependency_file(path: &str) -> bool {
    static MATCHERS: std::sync::OnceLock<Vec<GlobMatcher>> = std::sync::OnceLock::new();
    let ms = MATCHERS.get_or_init(|| {
        DEPENDENCY_FILES
            .iter()
            .filter_map(|p| compile(&format!("**/{p}")).ok())
            .collect()
    });
    ms.iter().any(|m| m.is_match(path))
}

fn names(files: &[ChangedFile]) -> impl Iterator<Item = &str> {
    files
        .iter()
        .flat_map(|f| std::iter::once(f.path.as_str()).chain(f.old_path.as_deref()))
}

fn matchers(patterns: &[String]) -> Vec<GlobMatcher> {
    // Patterns were compiled when the spec was validated; one that fails here matches nothing
    // in `allowed` (so everything is outside) and nothing in `forbidden`.
    patterns.iter().filter_map(|p| compile(p).ok()).collect()
}

#[cfg(test)]
#[path = "task_scope_tests.rs"]
mod tests;
