//! Permission levels as operator policies: one file per level plus `operator.toml`.
//!
//! Loading fails closed (unknown keys, bad values, a missing level file). The shipped files are
//! embedded as defaults. Admission ([`admit`]) and scope checks ([`scope`]) are pure functions.

mod access_file;
pub mod admit;
#[cfg(test)]
#[path = "admit_tests.rs"]
mod admit_tests;
mod files;
pub mod output_limits;
pub mod prepare_limits;
pub mod red_flag_rules;
pub mod repo_access;
pub mod risk;
pub mod sandbox_user;
pub mod scope;
pub mod task_scope;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::spec::Level;

pub use admit::{admit, Admission, Refusal, Source, Trigger};
pub use files::{load_dir, load_embedded};
pub use risk::{Risk, RiskLevel, RiskRules};
pub use scope::{ChangedFile, ScopeVerdict};
pub use task_scope::TaskScope;

/// How the checkout is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Checkout {
    /// The agent sees the base, read-only (L0).
    ReadOnly,
    /// The agent writes into an overlay over the base.
    Writable,
}

/// Whether a level runs the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateRule {
    /// No gate runs.
    None,
    /// The spec's gate runs if it has one.
    Optional,
    /// The spec must have a gate, and it must pass.
    Required,
}

/// Container runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// The engine's default runtime.
    Runc,
    /// gVisor.
    Runsc,
}

impl Runtime {
    /// The runtime named `s` (`runc`, `runsc`), if there is one.
    pub fn parse(s: &str) -> Option<Runtime> {
        match s {
            "runc" => Some(Runtime::Runc),
            "runsc" => Some(Runtime::Runsc),
            _ => None,
        }
    }

    /// The name as written in policies and specs.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Runsc => "runsc",
        }
    }
}

/// What a protected path does to a task that changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeAction {
    /// The task ends `needs_human`.
    RequestReview,
    /// The task ends `blocked`.
    Blocked,
}

/// Resource limits: ceilings in a level file, effective values after admission.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    /// Wall-clock budget for the whole task.
    #[serde(with = "duration_text")]
    pub timeout: Duration,
    /// Attempts in all.
    pub attempts: u32,
    /// CPUs per container.
    pub cpus: f64,
    /// Memory per container, in bytes.
    pub memory: u64,
    /// Processes per container.
    pub pids: i64,
    /// Bytes of each scratch tmpfs (`/tmp`, HOME).
    pub tmpfs: u64,
    /// Inodes of each scratch tmpfs.
    pub tmpfs_inodes: u64,
    /// Bytes of `out/` exported.
    pub out: u64,
    /// Bytes of each container log kept.
    pub log_bytes: u64,
    /// What the agent may write into /workspace (and the gate into its view), in bytes.
    pub workspace: u64,
    /// Inodes the agent may create in /workspace (and the gate in its view).
    pub workspace_inodes: u64,
}

/// A `[[scope.protected]]` rule: paths a change may not touch without consequence.
#[derive(Debug, Clone, Serialize)]
pub struct ProtectedRule {
    /// What touching them does.
    pub action: ScopeAction,
    /// The path patterns.
    pub paths: Vec<String>,
}

/// A level's `[scope]`: what a diff may be and touch.
#[derive(Debug, Clone, Serialize)]
pub struct Scope {
    /// Most files one diff may change.
    pub max_files_changed: usize,
    /// Most bytes one diff may be.
    pub max_diff_bytes: u64,
    /// Whether binary files may change.
    pub allow_binary: bool,
    /// Protected paths and what touching them does.
    pub protected: Vec<ProtectedRule>,
    /// The loosest `[scope] dependencies` a task of this level may ask for (default review).
    pub dependencies: crate::spec::Dependencies,
}

/// One level's rules, as loaded from `L<n>.toml`.
#[derive(Debug, Clone, Serialize)]
pub struct LevelPolicy {
    /// The level the file is for.
    pub level: Level,
    /// Read-only or writable checkout.
    pub checkout: Checkout,
    /// Whether the gate runs.
    pub gate: GateRule,
    /// Whether a green task pushes its branch (L3+ only).
    pub push: bool,
    /// Reruns of only the failing tests when the gate fails (flake detection).
    pub flaky_reruns: u32,
    /// Whether a gate that failed only on flaky tests counts as green.
    pub flaky_is_green: bool,
    /// What failures that also fail on the untouched base mean for this level.
    pub preexisting: Preexisting,
    /// The runtime when the spec names none.
    pub runtime_default: Runtime,
    /// The runtimes a spec may ask for.
    pub runtime_allowed: Vec<Runtime>,
    /// The ceilings of every limit.
    pub limits: Limits,
    /// `[output]`: what the host keeps of container output.
    pub output: output_limits::OutputLimits,
    /// What a diff may be and touch.
    pub scope: Scope,
    /// A green task whose change classifies `high` stops `needs_human` / `high_risk` before
    /// it pushes (only levels that push may set it).
    pub stop_high_risk: bool,
    /// Model providers (from `models.toml`) tasks at this level may use.
    pub models: Vec<String>,
    /// The operator's `push.toml`, attached only to levels with `push = true`: a level that may
    /// not push cannot even reach the token provider's configuration.
    #[serde(skip)]
    pub push_config: Option<crate::push::PushConfig>,
}

/// What a gate failure that also fails on the base (same signature) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Preexisting {
    /// They do not block green; they are listed as a risk note and not fed back.
    Report,
    /// They block green like any failure (CI-repair tasks, whose point is a red base).
    MustFix,
}

/// A repository pattern and the highest level tasks on it may have.
#[derive(Debug, Clone, Serialize)]
pub struct RepoRule {
    /// The repository pattern, matched against the normalised location.
    pub pattern: String,
    /// The highest level allowed there.
    pub max_level: Level,
    /// The trigger sources (`operator.toml` `[sources]` keys) the rule applies to; `None`: all.
    pub sources: Option<Vec<String>>,
}

/// `operator.toml`: who and what may start which level.
#[derive(Debug, Clone, Serialize)]
pub struct Operator {
    /// Highest level per trigger source (`cli`, `api`, `webhook:issue_label`, ...).
    pub sources: BTreeMap<String, Level>,
    /// Highest level when the author has no write access.
    pub untrusted_author_max: Level,
    /// Per-repository ceilings, first match wins.
    pub repos: Vec<RepoRule>,
    /// `[repo_access]`: schemes, local directories, the ssh identity.
    pub repo_access: repo_access::RepoAccess,
    /// `[prepare]`: mirror and checkout sizes, git time, cache eviction.
    pub prepare: prepare_limits::PrepareLimits,
    /// `[sandbox]`: the uid every container runs as.
    pub sandbox: sandbox_user::SandboxUser,
}

/// Every rule the operator set, with where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Policies {
    /// The directory, or `None` for the embedded defaults.
    pub dir: Option<PathBuf>,
    /// Every level's rules.
    pub levels: BTreeMap<Level, LevelPolicy>,
    /// `operator.toml`.
    pub operator: Operator,
    /// `risk.toml` (the embedded default when the directory has none).
    pub risk: RiskRules,
    /// `push.toml` (optional; without it no task pushes).
    #[serde(skip)]
    pub push: Option<crate::push::PushConfig>,
    /// `models.toml` (optional; without it no task reaches a model).
    pub models: Option<crate::egress::ModelsConfig>,
}

impl Policies {
    /// The rules of `level` (every level is always loaded).
    pub fn level(&self, level: Level) -> &LevelPolicy {
        // Loading guarantees all five levels exist.
        &self.levels[&level]
    }

    /// Refuse a sandbox uid that is a host account, then run this process's containers as it.
    pub fn apply_sandbox_user(&self) -> Result<(), PolicyError> {
        let file = match &self.dir {
            Some(d) => d.join("operator.toml").display().to_string(),
            None => "operator.toml (embedded)".into(),
        };
        self.operator.sandbox.check_host(&file)?;
        crate::sandbox::hardening::use_sandbox_uid(self.operator.sandbox.uid);
        Ok(())
    }

    /// `--dry-run`: write the PR request instead of pushing, for every level that pushes.
    pub fn set_push_dry_run(&mut self) {
        let configs = self.push.iter_mut();
        let attached = self
            .levels
            .values_mut()
            .filter_map(|l| l.push_config.as_mut());
        for c in configs.chain(attached) {
            c.dry_run = true;
        }
    }
}

/// A policy file that cannot be used. Names the file and the field.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {}{message}", field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct PolicyError {
    /// The file at fault.
    pub file: String,
    /// The field, when there is one.
    pub field: Option<String>,
    /// What is wrong and what is accepted.
    pub message: String,
}

mod duration_text {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::units::format_duration(*d))
    }
}
