//! Scope rules run on every attempt's diff: protected paths, file count, diff size, binaries.

use globset::GlobMatcher;
use serde::Serialize;

use super::{Scope, ScopeAction};
use crate::vocab::Reason;

pub use crate::pattern::compile;

/// One path the diff touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedFile {
    /// The path after the change.
    pub path: String,
    /// For renames and copies: where it came from.
    pub old_path: Option<String>,
    /// git's status letter: A, M, D, R, C, T.
    pub status: char,
    /// Whether git sees it as binary.
    pub binary: bool,
}

pub use crate::vocab::ScopeVerdict;

/// Apply `scope` to the files a diff changes and the diff's size in bytes. `blocked` wins over
/// `needs_human`; the paths that triggered the rule are listed.
pub fn check(scope: &Scope, files: &[ChangedFile], diff_bytes: u64) -> ScopeVerdict {
    let (blocked, review) = protected_hits(scope, files);
    if !blocked.is_empty() {
        return ScopeVerdict::Blocked {
            reason: Reason::ForbiddenPath,
            paths: blocked,
        };
    }
    if files.len() > scope.max_files_changed {
        let paths = files.iter().map(|f| f.path.clone()).collect();
        return ScopeVerdict::Blocked {
            reason: Reason::TooManyFiles,
            paths,
        };
    }
    if diff_bytes > scope.max_diff_bytes {
        return ScopeVerdict::Blocked {
            reason: Reason::DiffTooLarge,
            paths: vec![],
        };
    }
    let binaries: Vec<String> = files
        .iter()
        .filter(|f| f.binary)
        .map(|f| f.path.clone())
        .collect();
    if !scope.allow_binary && !binaries.is_empty() {
        return ScopeVerdict::Blocked {
            reason: Reason::BinaryChange,
            paths: binaries,
        };
    }
    if !review.is_empty() {
        return ScopeVerdict::NeedsHuman {
            reason: Reason::ProtectedPath,
            paths: review,
        };
    }
    ScopeVerdict::Ok
}

/// Paths matched by `blocked` rules and by `request_review` rules.
fn protected_hits(scope: &Scope, files: &[ChangedFile]) -> (Vec<String>, Vec<String>) {
    let mut blocked = Vec::new();
    let mut review = Vec::new();
    for rule in &scope.protected {
        let matchers: Vec<GlobMatcher> =
            rule.paths.iter().filter_map(|p| compile(p).ok()).collect();
        for f in files {
            let names = std::iter::once(&f.path).chain(f.old_path.as_ref());
            for name in names.filter(|n| matchers.iter().any(|m| m.is_match(n.as_str()))) {
                let list = match rule.action {
                    ScopeAction::Blocked => &mut blocked,
                    ScopeAction::RequestReview => &mut review,
                };
                if !list.contains(name) {
                    list.push(name.clone());
                }
            }
        }
    }
    (blocked, review)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load_embedded;
    use crate::spec::Level;

    fn file(path: &str) -> ChangedFile {
        ChangedFile {
            path: path.into(),
            old_path: None,
            status: 'M',
            binary: false,
        }
    }

    fn verdict(paths: &[&str]) -> ScopeVerdict {
        let p = load_embedded().unwrap();
        let files: Vec<_> = paths.iter().map(|p| file(p)).collect();
        check(&p.level(Level::L2).scope, &files, 100)
    }

    #[test]
    fn ordinary_source_changes_pass() {
        assert_eq!(
            verdict(&["src/lib.rs", "tasks_app/store.py", "tests/test_store.py"]),
            ScopeVerdict::Ok
        );
    }

    #[test]
    fn default_protected_paths_need_review() {
        for p in [
            ".github/workflows/x.yml",
            ".gitlab-ci.yml",
            ".ci/run",
            "CODEOWNERS",
            "docs/CODEOWNERS",
            "AGENTS.md",
            "CLAUDE.md",
            ".githooks/pre-commit",
            ".husky/pre-push",
            "Cargo.toml",
            "crates/a/Cargo.lock",
            "package.json",
            "web/package-lock.json",
            "pyproject.toml",
            "requirements-dev.txt",
            "go.mod",
            "go.sum",
            ".vscode/settings.json",
        ] {
            assert!(
                matches!(verdict(&[p]), ScopeVerdict::NeedsHuman { ref reason, .. } if *reason == Reason::ProtectedPath),
                "{p}"
            );
        }
    }

    #[test]
    fn key_material_is_blocked_and_wins() {
        let v = verdict(&[".github/x.yml", "certs/server.pem", "id.key"]);
        assert_eq!(
            v,
            ScopeVerdict::Blocked {
                reason: Reason::ForbiddenPath,
                paths: vec!["certs/server.pem".into(), "id.key".into()]
            }
        );
    }

    #[test]
    fn rename_out_of_a_protected_path_counts() {
        let p = load_embedded().unwrap();
        let f = ChangedFile {
            path: "moved.yml".into(),
            old_path: Some(".github/workflows/ci.yml".into()),
            status: 'R',
            binary: false,
        };
        assert!(matches!(
            check(&p.level(Level::L2).scope, &[f], 10),
            ScopeVerdict::NeedsHuman { .. }
        ));
    }

    #[test]
    fn too_many_files_too_many_bytes_and_binaries_are_blocked() {
        let p = load_embedded().unwrap();
        let scope = &p.level(Level::L2).scope;
        let many: Vec<_> = (0..=scope.max_files_changed)
            .map(|i| file(&format!("src/f{i}.rs")))
            .collect();
        assert!(
            matches!(check(scope, &many, 10), ScopeVerdict::Blocked { ref reason, .. } if *reason == Reason::TooManyFiles)
        );
        assert!(
            matches!(check(scope, &[file("a")], scope.max_diff_bytes + 1), ScopeVerdict::Blocked { ref reason, .. } if *reason == Reason::DiffTooLarge)
        );
        let bin = ChangedFile {
            binary: true,
            ..file("img.png")
        };
        assert!(
            matches!(check(scope, &[bin], 10), ScopeVerdict::Blocked { ref reason, .. } if *reason == Reason::BinaryChange)
        );
    }
}
