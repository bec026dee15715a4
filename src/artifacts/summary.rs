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
    /// The container's name.
    pub container: String,
    /// The command it ran.
    pub argv: Vec<String>,
    /// How it ended (exited, timeout, oom, cancelled, ...).
    pub ended: Ended,
    /// Its exit code, when it exited.
    pub exit_code: Option<i64>,
    /// Whether the kernel's OOM killer ended it.
    pub oom_killed: bool,
    /// Wall-clock seconds from start to end.
    pub duration_s: f64,
    /// Its captured log, relative to the artifact dir (`logs/agent-1.log`).
    pub log: String,
    /// Bytes the capped log left out between head and tail.
    pub log_bytes_omitted: u64,
    /// What the gate parsers did not see or keep (lines cut, bytes not parsed, failures
    /// omitted); absent when nothing was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<crate::gate::Truncation>,
}

/// One attempt: the agent, the gate commands, and the judge's verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The attempt's number, from 1.
    pub n: u32,
    /// The agent container (`None` when the attempt failed before it ran).
    pub agent: Option<ContainerRecord>,
    /// The gate containers, in order (a rerun of flaky tests is one more).
    pub gate: Vec<ContainerRecord>,
    /// Whether the gate passed (`None` when no gate ran).
    pub gate_passed: Option<bool>,
    /// Tests passed / failed / skipped, from the gate's closing summary lines (evidence only).
    pub tests: Option<TestCounts>,
    /// Structured gate failures (see the gate module).
    pub failures: Vec<Failure>,
    /// Failures that passed on a rerun.
    pub flaky: Vec<Failure>,
    /// Red flags the diff raised (test edits, config edits, hidden characters, ...).
    pub red_flags: Vec<RedFlag>,
    /// The scope rules' verdict on the attempt's diff.
    pub scope: ScopeVerdict,
    /// What the judge decided after this attempt.
    pub verdict: AttemptVerdict,
    /// Files the attempt's diff touched.
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
    /// The repository's URL (or local path) as the spec named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The base branch or ref the checkout started from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The commit `base` resolved to.
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
    /// The CI job this feedback is about, with its link.
    pub job: crate::push::ci::JobLink,
}

/// Size of the final diff.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DiffStats {
    /// Files changed.
    pub files: usize,
    /// Lines added.
    pub insertions: u64,
    /// Lines removed.
    pub deletions: u64,
    /// Bytes of `diff.patch`.
    pub bytes: u64,
    /// Paths left out of the diff and why.
    pub skipped: Vec<(String, String)>,
}

/// The whole summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The shape's version, [`SUMMARY_FORMAT`].
    pub format_version: u32,
    /// The task's id (its artifact dir's name).
    pub task_id: String,
    /// The task spec's title.
    pub title: String,
    /// The final state.
    pub state: State,
    /// Stable snake_case code.
    pub reason: Reason,
    /// Human-readable detail for the reason.
    pub message: Option<String>,
    /// The permission level it ran at (`L0`..`L4`).
    pub level: String,
    /// The OCI runtime the containers ran under (`runc`, `runsc`), when any ran.
    pub runtime: Option<String>,
    /// The engine the task ran on (`kind` docker|podman, `version`, `api_version`); absent when
    /// nothing ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<crate::sandbox::EngineInfo>,
    /// Where the source came from.
    pub repo: RepoRecord,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptRecord>,
    /// Paths the final diff touches.
    pub files_changed: Vec<String>,
    /// Size of the final diff.
    pub diff: DiffStats,
    /// Paths named by the rule that stopped the task (scope breaches, red flags).
    pub paths: Vec<String>,
    /// The local branch holding the result (L2+ with a non-empty change).
    pub branch: Option<String>,
    /// The commit of `branch` (L2+ with a non-empty change).
    #[serde(default)]
    pub commit: Option<String>,
    /// Whether the branch was pushed to the forge.
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
    /// When the task started (RFC 3339, UTC).
    pub started_at: String,
    /// When it finished (RFC 3339, UTC).
    pub finished_at: String,
    /// Seconds from start to finish.
    pub duration_s: f64,
    /// The artifact dir's path.
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
