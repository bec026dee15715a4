//! The work packet's own bounds: its kind (for the daemon's outcome statistics) and the
//! task-level `[scope]` that may only tighten the level's (checked at admission).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What sort of change the task asks for. Declared by the spec (or its trigger's template);
/// the daemon counts outcomes per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// Documentation only.
    Docs,
    /// Tests only.
    Tests,
    /// A bug fix.
    Bugfix,
    /// Repairing a failing CI.
    CiRepair,
    /// A change of structure, not behaviour.
    Refactor,
    /// A dependency update.
    Dependency,
    /// New behaviour.
    Feature,
    /// Undeclared.
    Other,
}

impl TaskKind {
    /// Every kind, in the order statistics list them.
    pub const ALL: [TaskKind; 8] = [
        TaskKind::Docs,
        TaskKind::Tests,
        TaskKind::Bugfix,
        TaskKind::CiRepair,
        TaskKind::Refactor,
        TaskKind::Dependency,
        TaskKind::Feature,
        TaskKind::Other,
    ];

    /// The spelling in specs, summaries, statistics and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Docs => "docs",
            TaskKind::Tests => "tests",
            TaskKind::Bugfix => "bugfix",
            TaskKind::CiRepair => "ci-repair",
            TaskKind::Refactor => "refactor",
            TaskKind::Dependency => "dependency",
            TaskKind::Feature => "feature",
            TaskKind::Other => "other",
        }
    }

    /// Parse the spec's spelling.
    pub fn parse(text: &str) -> Option<TaskKind> {
        TaskKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// `docs, tests, ...` for messages.
    pub fn accepted() -> String {
        TaskKind::ALL.map(TaskKind::as_str).join(", ")
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a change to a dependency manifest or lock file does to the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dependencies {
    /// Allowed, with a risk note in the evidence (and whatever the level's rules say).
    Review,
    /// The task stops `needs_human` / `dependency_change`. Stricter than `review`.
    Forbid,
}

impl Dependencies {
    /// The setting written `text` (`review`, `forbid`), if there is one.
    pub fn parse(text: &str) -> Option<Dependencies> {
        match text {
            "review" => Some(Dependencies::Review),
            "forbid" => Some(Dependencies::Forbid),
            _ => None,
        }
    }

    /// The name as written in specs.
    pub fn as_str(self) -> &'static str {
        match self {
            Dependencies::Review => "review",
            Dependencies::Forbid => "forbid",
        }
    }
}

/// The spec's `[scope]`: every field optional, each only tightens the level's scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestedScope {
    /// When non-empty, a change to any path outside these patterns stops the task.
    pub allowed: Vec<String>,
    /// A change to any path inside these patterns stops the task.
    pub forbidden: Vec<String>,
    /// Most files the change may touch (only below the level's limit).
    pub max_files_changed: Option<usize>,
    /// How a change to dependency manifests or lock files is treated.
    pub dependencies: Option<Dependencies>,
}

impl RequestedScope {
    /// Whether the spec narrowed anything at all.
    pub fn is_empty(&self) -> bool {
        self == &RequestedScope::default()
    }
}

/// A problem in `kind` or `[scope]`: the field and the message.
pub(super) type FieldError = (String, String);

/// `kind = "..."`; absent is `other`.
pub(super) fn validate_kind(raw: Option<&str>) -> Result<TaskKind, FieldError> {
    let Some(text) = raw else {
        return Ok(TaskKind::Other);
    };
    TaskKind::parse(text).ok_or_else(|| {
        (
            "kind".into(),
            format!(
                "`{text}` is not a task kind; accepted: {}",
                TaskKind::accepted()
            ),
        )
    })
}

/// Most patterns one list may hold (each is matched against every changed path).
const MAX_PATTERNS: usize = 200;

/// `[scope]`: patterns compile, counts are in range, `dependencies` is known.
pub(super) fn validate_scope(
    raw: Option<super::raw::RawScope>,
) -> Result<RequestedScope, FieldError> {
    let Some(raw) = raw else {
        return Ok(RequestedScope::default());
    };
    patterns("scope.allowed", &raw.allowed)?;
    patterns("scope.forbidden", &raw.forbidden)?;
    let max_files_changed = match raw.max_files_changed {
        Some(n) if !(1..=1_000_000).contains(&n) => {
            return Err((
                "scope.max_files_changed".into(),
                format!("`{n}` is out of range; accepted: 1 to 1000000"),
            ))
        }
        n => n.map(|n| n as usize),
    };
    let dependencies = match raw.dependencies.as_deref() {
        None => None,
        Some(d) => Some(Dependencies::parse(d).ok_or_else(|| {
            (
                "scope.dependencies".into(),
                format!("`{d}` is not accepted; use forbid or review"),
            )
        })?),
    };
    Ok(RequestedScope {
        allowed: raw.allowed,
        forbidden: raw.forbidden,
        max_files_changed,
        dependencies,
    })
}

fn patterns(field: &str, list: &[String]) -> Result<(), FieldError> {
    if list.len() > MAX_PATTERNS {
        return Err((
            field.into(),
            format!(
                "has {} patterns; at most {MAX_PATTERNS} are accepted",
                list.len()
            ),
        ));
    }
    for (i, p) in list.iter().enumerate() {
        crate::pattern::compile(p).map_err(|m| (format!("{field}[{i}]"), m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const BASE: &str = "title = \"t\"\nlevel = \"L2\"\n[repo]\nurl = \"https://x.example/r.git\"\nbase = \"main\"\n[issue]\ntext = \"x\"\n[agent]\nimage = \"a:b\"\ncommand = [\"a\"]\n";

    fn parse(
        extra_top: &str,
        tables: &str,
    ) -> Result<crate::spec::TaskSpec, crate::spec::SpecError> {
        crate::spec::parse_str(
            &format!("{extra_top}\n{BASE}{tables}"),
            Path::new("/s/task.toml"),
        )
    }

    #[test]
    fn kind_and_scope_parse_and_default() {
        let s = parse("", "").unwrap();
        assert_eq!(s.kind, TaskKind::Other);
        assert!(s.scope.is_empty());
        let s = parse(
            "kind = \"ci-repair\"",
            "[scope]\nallowed = [\"src/**\"]\nforbidden = [\"src/x/**\"]\nmax_files_changed = 5\ndependencies = \"forbid\"\n",
        )
        .unwrap();
        assert_eq!(s.kind, TaskKind::CiRepair);
        assert_eq!(s.scope.max_files_changed, Some(5));
        assert_eq!(s.scope.dependencies, Some(Dependencies::Forbid));
        assert_eq!(s.scope.allowed, vec!["src/**".to_string()]);
    }

    #[test]
    fn bad_values_name_the_field_and_what_is_accepted() {
        for (top, tables, want) in [
            ("kind = \"chore\"", "", "field `kind`: `chore` is not a task kind; accepted: docs, tests, bugfix, ci-repair, refactor, dependency, feature, other"),
            ("", "[scope]\ndependencies = \"allow\"\n", "field `scope.dependencies`: `allow` is not accepted; use forbid or review"),
            ("", "[scope]\nmax_files_changed = 0\n", "field `scope.max_files_changed`"),
            ("", "[scope]\nallowed = [\"ok/**\", \"\"]\n", "field `scope.allowed[1]`: empty pattern"),
            ("", "[scope]\nforbidden = [\"a[\"]\n", "field `scope.forbidden[0]`"),
            ("", "[scope]\nalowed = [\"a\"]\n", "alowed"),
        ] {
            let e = parse(top, tables).unwrap_err().to_string();
            assert!(e.starts_with("/s/task.toml: ") && e.contains(want), "{e}");
        }
    }
}
