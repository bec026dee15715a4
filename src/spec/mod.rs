//! The work packet: a task spec (TOML) parsed, then validated into [`TaskSpec`].
//!
//! Parsing fails closed: unknown keys are errors, and every message names the file and the field
//! and says what would be accepted. Relative paths are relative to the spec file.

mod agent_models;
mod raw;
#[cfg(test)]
mod tests;
mod validate;
mod work;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use crate::vocab::Level;
pub use validate::{load, parse_str, parse_submitted};
pub use work::{Dependencies, RequestedScope, TaskKind};

/// Largest issue text accepted (the issue is untrusted and goes into the sandbox as a file).
pub const MAX_ISSUE_BYTES: u64 = 256 * 1024;
/// Largest title accepted.
pub const MAX_TITLE_CHARS: usize = 200;

/// Where the source comes from: a local path (made absolute) or a remote URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoSpec {
    /// The repository: an absolute local path or a remote URL.
    pub url: String,
    /// The branch or ref to start from.
    pub base: String,
}

/// The spec's `[agent]`: what runs in the sandbox to make the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentSpec {
    /// The agent's image (never pulled).
    pub image: String,
    /// The argv; empty when a preset builds it at run time.
    pub command: Vec<String>,
    /// Environment variables declared for the agent (nothing is inherited from the host).
    pub env: BTreeMap<String, String>,
    /// Model providers asked for (`[agent] models`); admission checks the level grants them.
    pub models: Vec<String>,
    /// `[agent] preset`: a known agent CLI (uses the first of `models`).
    pub preset: Option<crate::egress::preset::Preset>,
    /// `[agent] model`: the model a preset asks for.
    pub model: Option<String>,
}

/// The spec's `[gate]`: the checks that decide whether an attempt is green.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateSpec {
    /// The gate's image (never pulled).
    pub image: String,
    /// The commands to run, in order, each an argv.
    pub commands: Vec<Vec<String>>,
}

/// Limits a task asks for. Each may only tighten the policy's ceiling (checked at admission).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestedLimits {
    /// Wall-clock budget for the whole task.
    pub timeout: Option<Duration>,
    /// Attempts allowed in all.
    pub attempts: Option<u32>,
    /// CPUs per container.
    pub cpus: Option<f64>,
    /// Memory per container, in bytes.
    pub memory: Option<u64>,
    /// Processes per container.
    pub pids: Option<i64>,
}

/// A validated task spec.
#[derive(Debug, Clone, Serialize)]
pub struct TaskSpec {
    /// The spec file it came from (for messages).
    pub source: PathBuf,
    /// A one-line summary (the PR title, the branch slug).
    pub title: String,
    /// The permission level asked for.
    pub level: Level,
    /// What done looks like, one criterion a line (shown to the agent and in the PR).
    pub acceptance: Vec<String>,
    /// Where the source comes from.
    pub repo: RepoSpec,
    /// Untrusted text, never interpreted by airlock.
    #[serde(skip)]
    pub issue_text: String,
    /// A link to the issue (https), shown in the draft PR.
    pub issue_url: Option<String>,
    /// What runs in the sandbox.
    pub agent: AgentSpec,
    /// `None` when the spec has no `[gate]`.
    pub gate: Option<GateSpec>,
    /// Limits asked for (each only tightens the policy's).
    pub limits: RequestedLimits,
    /// What sort of change this is (`other` when the spec does not say).
    pub kind: TaskKind,
    /// The task's own `[scope]`, tightening the level's.
    pub scope: RequestedScope,
    /// Runtime requested by the spec (`runc` | `runsc`); the policy decides.
    pub runtime: Option<String>,
}

/// Why a spec was rejected. Always carries the file, and the field where there is one.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}{message}", file.display(), field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct SpecError {
    /// The spec file.
    pub file: PathBuf,
    /// The field at fault (`limits.timeout`), when there is one.
    pub field: Option<String>,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl SpecError {
    fn new(file: &Path, field: Option<&str>, message: impl Into<String>) -> Self {
        SpecError {
            file: file.to_path_buf(),
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
}
