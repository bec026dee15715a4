//! `summary.json`: the contract's record of one task.

use serde::{Deserialize, Serialize};

use crate::gate::{Failure, RedFlag, TestCounts};
use crate::vocab::{Ended, Reason, ScopeVerdict};

pub use crate::vocab::State;

/// Bumped when a field changes meaning or is removed (adding fields does not bump it).
pub const SUMMARY_FORMAT: u32 = 1;

/// One container's run as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub container: String,
    pub argv: Vec<String>,
    pub ended: Ended,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub duration_s: f64,
    pub log: String,
    pub log_bytes_omitted: u64,
    /// What the gate parsers did not see or keep (lines cut, bytes not parsed, failures
    /// omitted); absent when nothing was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<crate::gate::Truncation>,
}

/// One attempt: the agent, the gate commands, and the judge's verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub n: u32,
    pub agent: Option<ContainerRecord>,
    pub gate: Vec<ContainerRecord>,
    pub gate_passed: Option<bool>,
    /// Tests passed / failed / skipped, from the gate's closing summary lines (evidence only).
    pub tests: Option<TestCounts>,
    /// Structured gate failures (see the gate module).
    pub failures: Vec<Failure>,
    /// Failures that passed on a rerun.
    pub flaky: Vec<Failure>,
    pub red_flags: Vec<RedFlag>,
    pub scope: ScopeVerdict,
    pub verdict: AttemptVerdict,
    pub files_changed: usize,
}

/// What the judge said after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptVerdict {
    /// Done, green.
    Green,
    /// Another attempt, with this one's failures as feedback.
    Retry,
    /// Done, not green.
    Stop,
}

impl AttemptVerdict {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptVerdict::Green => "green",
            AttemptVerdict::Retry => "retry",
            AttemptVerdict::Stop => "stop",
        }
    }
}

/// The repo a task ran against (`summary.repo`); a task that never ran has fewer fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RepoRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_commit: Option<String>,
}

/// `feedback.json`: what attempt `n + 1` is told about attempt `n`'s gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    /// The attempt whose gate failed.
    pub attempt: u32,
    /// Its failures (flaky ones are not fed back).
    pub failures: Vec<Failure>,
    /// Set when the failures come from the forge's CI on the pushed commit, not the local
    /// gate: which commit and which job (with its link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<CiFeedback>,
}

/// Where CI feedback comes from (`feedback.json` `ci`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiFeedback {
    /// The pushed commit CI ran on.
    pub commit: String,
    pub job: crate::push::ci::JobLink,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DiffStats {
    pub files: usize,
    pub insertions: u64,
    pub deletions: u64,
    pub bytes: u64,
    /// Paths left out of the diff and why.
    pub skipped: Vec<(String, String)>,
}

/// The whole summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub format_version: u32,
    pub task_id: String,
    pub title: String,
    pub state: State,
    /// Stable snake_case code.
    pub reason: Reason,
    /// Human-readable detail for the reason.
    pub message: Option<String>,
    pub level: String,
    pub runtime: Option<String>,
    /// The engine the task ran on (`kind` docker|podman, `version`, `api_version`); absent when
    /// nothing ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<crate::sandbox::EngineInfo>,
    pub repo: RepoRecord,
    pub attempts: Vec<AttemptRecord>,
    pub files_changed: Vec<String>,
    pub diff: DiffStats,
    /// Paths named by the rule that stopped the task (scope breaches, red flags).
    pub paths: Vec<String>,
    pub branch: Option<String>,
    /// The commit of `branch` (L2+ with a non-empty change).
    #[serde(default)]
    pub commit: Option<String>,
    pub pushed: bool,
    /// The task's kind (`docs`, `tests`, `bugfix`, ..., `other` when undeclared).
    #[serde(default = "other_kind")]
    pub kind: String,
    /// The change's risk classification and the rules that fired (`None` when nothing ran).
    #[serde(default)]
    pub risk: Option<crate::policy::Risk>,
    /// The task's own `[scope]` as admitted (`None` when nothing ran).
    #[serde(default)]
    pub task_scope: Option<crate::policy::TaskScope>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_s: f64,
    pub artifacts: String,
    /// Model egress: per provider requests, status counts, bytes, time, refused requests
    /// (method and path). Absent when the task was granted no provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_traffic: Option<crate::egress::TrafficReport>,
    /// The forge's CI on each pushed commit (`[remote.ci]`), in order; absent when not waited.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ci: Vec<crate::push::ci::CiRound>,
}

impl Summary {
    /// The summary of a task that ended before anything ran (refused, or settled by the
    /// daemon): no attempts, no diff, started and finished now.
    pub fn not_run(
        task_id: &str,
        title: &str,
        level: &str,
        state: State,
        reason: Reason,
        message: Option<String>,
        artifacts: String,
    ) -> Summary {
        let now = super::now_rfc3339();
        Summary {
            format_version: SUMMARY_FORMAT,
            task_id: task_id.into(),
            title: title.into(),
            state,
            reason,
            message,
            level: level.into(),
            runtime: None,
            engine: None,
            repo: RepoRecord::default(),
            attempts: vec![],
            files_changed: vec![],
            diff: DiffStats::default(),
            paths: vec![],
            branch: None,
            commit: None,
            pushed: false,
            kind: other_kind(),
            risk: None,
            task_scope: None,
            started_at: now.clone(),
            finished_at: now,
            duration_s: 0.0,
            artifacts,
            model_traffic: None,
            ci: vec![],
        }
    }
}

fn other_kind() -> String {
    crate::spec::TaskKind::Other.as_str().into()
}

impl std::fmt::Display for AttemptVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
