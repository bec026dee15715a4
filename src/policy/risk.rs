//! Risk classification of a task's change, from the operator's `risk.toml` (embedded default:
//! the shipped `policies/risk.toml`). Loading fails closed; classifying is pure.

use std::path::Path;

use globset::GlobMatcher;
use serde::{Deserialize, Serialize};

use super::scope::{compile, ChangedFile};
use super::PolicyError;

/// The shipped rules, used when the policies directory has no `risk.toml`.
pub const EMBEDDED_RISK: &str = include_str!("../../policies/risk.toml");

/// Most paths listed per fired rule (the count of the rest is kept).
const MAX_PATHS_SHOWN: usize = 20;

/// How risky a change is. Ordered: `High` is the greatest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// Nothing the rules flag.
    #[default]
    Low,
    /// Worth a reviewer's attention.
    Medium,
    /// Needs a careful review; may stop a task before it pushes (`stop_high_risk`).
    High,
}

impl RiskLevel {
    /// The name as written in `risk.toml` and `summary.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }

    fn parse(text: &str) -> Option<RiskLevel> {
        match text {
            "low" => Some(RiskLevel::Low),
            "medium" => Some(RiskLevel::Medium),
            "high" => Some(RiskLevel::High),
            _ => None,
        }
    }
}

/// Which kind of change a path rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Any change.
    Any,
    /// A file added (or copied).
    Added,
    /// A file's content or type changed.
    Modified,
    /// A file deleted.
    Deleted,
    /// A file renamed.
    Renamed,
}

impl ChangeKind {
    fn parse(text: &str) -> Option<ChangeKind> {
        match text {
            "any" => Some(ChangeKind::Any),
            "added" => Some(ChangeKind::Added),
            "modified" => Some(ChangeKind::Modified),
            "deleted" => Some(ChangeKind::Deleted),
            "renamed" => Some(ChangeKind::Renamed),
            _ => None,
        }
    }

    /// git's status letter against this kind (`T`, a type change, counts as modified).
    fn matches(self, status: char) -> bool {
        match self {
            ChangeKind::Any => true,
            ChangeKind::Added => matches!(status, 'A' | 'C'),
            ChangeKind::Modified => matches!(status, 'M' | 'T'),
            ChangeKind::Deleted => status == 'D',
            ChangeKind::Renamed => status == 'R',
        }
    }
}

/// What makes a rule fire.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "on", rename_all = "snake_case")]
pub enum Condition {
    /// A changed file matching `paths` (all files when empty) with a change of `change`.
    Files {
        /// Path patterns; empty matches every file.
        paths: Vec<String>,
        /// Which kind of change counts.
        change: ChangeKind,
    },
    /// The whole diff reaches a size.
    Size {
        /// Fires at this many changed lines or more.
        min_lines: Option<u64>,
        /// Fires at this many changed files or more.
        min_files: Option<usize>,
    },
}

/// One operator rule.
#[derive(Debug, Clone, Serialize)]
pub struct RiskRule {
    /// The rule's name (shown in the evidence).
    pub name: String,
    /// The risk it assigns when it fires.
    pub risk: RiskLevel,
    /// Why it matters, for the reviewer.
    pub note: String,
    /// What makes it fire.
    pub when: Condition,
}

/// Every rule, with the file they came from.
#[derive(Debug, Clone, Serialize)]
pub struct RiskRules {
    /// The file (`risk.toml`, or the embedded default).
    pub file: String,
    /// The rules, in file order.
    pub rules: Vec<RiskRule>,
}

/// A rule that fired on a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired {
    /// The rule's name.
    pub name: String,
    /// The risk it assigned.
    pub risk: RiskLevel,
    /// Its note.
    pub note: String,
    /// The paths that made it fire (at most 20; empty for size rules).
    pub paths: Vec<String>,
    /// Paths that fired it beyond those listed.
    #[serde(default)]
    pub more_paths: usize,
}

/// The classification of one change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Risk {
    /// The highest risk of the rules that fired (`low` when none did).
    pub level: RiskLevel,
    /// Every rule that fired.
    pub rules: Vec<Fired>,
}

/// The diff facts classification looks at.
pub struct ChangeFacts<'a> {
    /// The files the diff changes.
    pub files: &'a [ChangedFile],
    /// Lines added and removed.
    pub lines: u64,
}

/// Classify a change: the highest risk of the rules that fire, `low` when none does.
pub fn classify(rules: &RiskRules, change: &ChangeFacts) -> Risk {
    let fired: Vec<Fired> = rules.rules.iter().filter_map(|r| fire(r, change)).collect();
    Risk {
        level: fired.iter().map(|f| f.risk).max().unwrap_or_default(),
        rules: fired,
    }
}

fn fire(rule: &RiskRule, change: &ChangeFacts) -> Option<Fired> {
    let paths = match &rule.when {
        Condition::Files {
            paths,
            change: kind,
        } => {
            let hits = file_hits(paths, *kind, change.files);
            if hits.is_empty() {
                return None;
            }
            hits
        }
        Condition::Size {
            min_lines,
            min_files,
        } => {
            let lines = min_lines.is_some_and(|n| change.lines >= n);
            let files = min_files.is_some_and(|n| change.files.len() >= n);
            if !(lines || files) {
                return None;
            }
            vec![]
        }
    };
    let more_paths = paths.len().saturating_sub(MAX_PATHS_SHOWN);
    Some(Fired {
        name: rule.name.clone(),
        risk: rule.risk,
        note: rule.note.clone(),
        paths: paths.into_iter().take(MAX_PATHS_SHOWN).collect(),
        more_paths,
    })
}

fn file_hits(patterns: &[String], kind: ChangeKind, files: &[ChangedFile]) -> Vec<String> {
    let ms: Vec<GlobMatcher> = patterns.iter().filter_map(|p| compile(p).ok()).collect();
    let mut hits: Vec<String> = Vec::new();
    for f in files.iter().filter(|f| kind.matches(f.status)) {
        let names = std::iter::once(&f.path).chain(f.old_path.as_ref());
        for n in names {
            let hit = patterns.is_empty() || ms.iter().any(|m| m.is_match(n));
            if hit && !hits.contains(n) {
                hits.push(n.clone());
            }
        }
    }
    hits
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRisk {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    risk: String,
    note: String,
    #[serde(default)]
    paths: Vec<String>,
    change: Option<String>,
    min_lines: Option<i64>,
    min_files: Option<i64>,
}

/// `risk.toml` from `dir`, or the embedded defaults when `dir` is `None` or has none. A file
/// that exists but cannot be read or parsed is an error.
pub fn load(dir: Option<&Path>) -> Result<RiskRules, PolicyError> {
    let Some(d) = dir else {
        return parse(EMBEDDED_RISK, "<embedded>/risk.toml");
    };
    let p = d.join("risk.toml");
    let file = p.display().to_string();
    match std::fs::read_to_string(&p) {
        Ok(text) => parse(&text, &file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            parse(EMBEDDED_RISK, "<embedded>/risk.toml")
        }
        Err(e) => Err(PolicyError {
            file,
            field: None,
            message: format!("cannot read: {e}"),
        }),
    }
}

/// Parse and validate risk rules; `file` names them in errors.
pub fn parse(text: &str, file: &str) -> Result<RiskRules, PolicyError> {
    let err = |field: String, message: String| PolicyError {
        file: file.into(),
        field: Some(field),
        message,
    };
    let raw: RawRisk = toml::from_str(text).map_err(|e| {
        let p = crate::tomlpath::describe(text, &e);
        PolicyError {
            file: file.into(),
            field: p.field,
            message: p.message,
        }
    })?;
    let mut rules: Vec<RiskRule> = Vec::new();
    for (i, r) in raw.rule.into_iter().enumerate() {
        let rule = validate_rule(r).map_err(|(f, m)| err(format!("rule[{i}].{f}"), m))?;
        if rules.iter().any(|x| x.name == rule.name) {
            return Err(err(
                format!("rule[{i}].name"),
                format!("`{}` is used by another rule", rule.name),
            ));
        }
        rules.push(rule);
    }
    Ok(RiskRules {
        file: file.into(),
        rules,
    })
}

fn validate_rule(r: RawRule) -> Result<RiskRule, (String, String)> {
    let e = |f: &str, m: String| (f.to_string(), m);
    let name_ok = !r.name.is_empty()
        && r.name.len() <= 64
        && r.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        return Err(e(
            "name",
            format!("`{}` is not a rule name ([a-z0-9_], at most 64)", r.name),
        ));
    }
    let risk = RiskLevel::parse(&r.risk).ok_or_else(|| {
        e(
            "risk",
            format!("`{}` is not accepted; use low, medium or high", r.risk),
        )
    })?;
    if r.note.trim().is_empty() || r.note.chars().any(char::is_control) {
        return Err(e("note", "must be one non-empty line".into()));
    }
    let size = r.min_lines.is_some() || r.min_files.is_some();
    let files = !r.paths.is_empty() || r.change.is_some();
    let when =
        match (files, size) {
            (true, true) => return Err(e(
                "min_lines",
                "a rule is on files (paths, change) or on size (min_lines, min_files), not both"
                    .into(),
            )),
            (false, false) => {
                return Err(e(
                    "paths",
                    "give paths, change, min_lines or min_files".into(),
                ))
            }
            (true, false) => {
                for p in &r.paths {
                    compile(p).map_err(|m| e("paths", m))?;
                }
                let change = match r.change.as_deref() {
                    None => ChangeKind::Any,
                    Some(c) => ChangeKind::parse(c).ok_or_else(|| {
                        e(
                            "change",
                            format!(
                            "`{c}` is not accepted; use added, modified, deleted, renamed or any"
                        ),
                        )
                    })?,
                };
                Condition::Files {
                    paths: r.paths,
                    change,
                }
            }
            (false, true) => Condition::Size {
                min_lines: positive(r.min_lines).map_err(|m| e("min_lines", m))?,
                min_files: positive(r.min_files)
                    .map_err(|m| e("min_files", m))?
                    .map(|n| n as usize),
            },
        };
    Ok(RiskRule {
        name: r.name,
        risk,
        note: r.note,
        when,
    })
}

fn positive(v: Option<i64>) -> Result<Option<u64>, String> {
    match v {
        Some(n) if n < 1 => Err(format!("`{n}` must be at least 1")),
        n => Ok(n.map(|n| n as u64)),
    }
}

#[cfg(test)]
#[path = "risk_tests.rs"]
mod tests;
