//! [`Reason`]: every stable reason code, in `summary.json` (`reason`), `events.jsonl`, the
//! daemon's API and `policy check`. The only place in `src/` that spells a code as a string
//! (a test greps for strays); add new codes here as variants.

use serde::{Deserialize, Serialize};

/// Defines [`Reason`] with its wire names, [`Reason::ALL`] and [`Reason::as_str`] from one list,
/// so the three cannot drift apart.
macro_rules! reasons {
    ($( $(#[doc = $doc:literal])+ $name:ident = $code:literal, )+) => {
        /// Why a task (or a step of it) ended as it did: a stable snake_case code (contract).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Reason {
            $( $(#[doc = $doc])+ $name, )+
        }

        impl Reason {
            /// Every code, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$name),+];

            /// The wire name (what serde writes).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Reason::$name => $code, )+
                }
            }
        }
    };
}

reasons! {
    // --- the judge: how the attempt loop ended ---
    /// The gate passed (green).
    GatePassed = "gate_passed",
    /// The gate failed only on tests that passed on rerun, and the policy counts that as green.
    GatePassedFlaky = "gate_passed_flaky",
    /// The gate failed only on failures the untouched base has too, and the level's policy
    /// (`preexisting = "report"`) lists them rather than blocking on them (green).
    GatePassedPreexisting = "gate_passed_preexisting",
    /// No gate runs at this level and the agent exited 0 (green).
    AgentFinished = "agent_finished",
    /// The gate failed only on flaky tests and the policy does not count that as green.
    FlakyGate = "flaky_gate",
    /// The agent exited non-zero.
    AgentFailed = "agent_failed",
    /// The agent's command could not start (not in the image, not executable: exit 126/127 or
    /// the init's exec failed).
    AgentNotRunnable = "agent_not_runnable",
    /// A gate command could not start (as [`Reason::AgentNotRunnable`]): not a test failure, so
    /// never fed back to the agent or retried.
    GateNotRunnable = "gate_not_runnable",
    /// Cancelled by a signal, `airlock cancel` or the daemon's shutdown.
    Cancelled = "cancelled",
    /// The task's time budget ran out.
    Timeout = "timeout",
    /// A container was killed for using too much memory.
    Oom = "oom",
    /// The diff has a red flag (a deleted test, a skip marker, an edited gate config, ...).
    RedFlag = "red_flag",
    /// The gate still failed after the last attempt the budget allows.
    RetryBudgetExhausted = "retry_budget_exhausted",
    /// Two attempts in a row failed the same way.
    NoProgress = "no_progress",
    /// The judge was asked about an empty history (a runner bug).
    NoAttempt = "no_attempt",
    // --- scope rules over the diff ---
    /// The diff touches a path the policy forbids.
    ForbiddenPath = "forbidden_path",
    /// The diff touches a path the policy protects (a human must look).
    ProtectedPath = "protected_path",
    /// The diff changes more files than the policy allows.
    TooManyFiles = "too_many_files",
    /// The diff is larger than the policy allows.
    DiffTooLarge = "diff_too_large",
    /// The diff changes a binary file and the policy forbids it.
    BinaryChange = "binary_change",
    /// The diff has a path that cannot be shown (an unrepresentable name).
    UnrepresentablePath = "unrepresentable_path",
    /// The diff touches a path outside the task's `[scope] allowed` or inside its `forbidden`.
    OutOfScope = "out_of_scope",
    /// The diff changes dependencies and the task's scope forbids it.
    DependencyChange = "dependency_change",
    /// The gate passed but the change is high risk and the level stops such changes before push.
    HighRisk = "high_risk",
    // --- admission (state `refused`, exit 3) ---
    /// The trigger's source may not start tasks.
    SourceNotAllowed = "source_not_allowed",
    /// The level is above what the trigger's source may start.
    LevelAboveSource = "level_above_source",
    /// The repo matches no `[[repos]]` rule of operator.toml.
    RepoNotAllowed = "repo_not_allowed",
    /// The level is above what the repo's rule allows.
    LevelAboveRepo = "level_above_repo",
    /// The issue author is untrusted and the level is above their cap.
    UntrustedAuthor = "untrusted_author",
    /// A task limit is above the policy's ceiling.
    LimitAboveCeiling = "limit_above_ceiling",
    /// The requested runtime is not allowed at this level.
    RuntimeNotAllowed = "runtime_not_allowed",
    /// The level requires a gate and the spec has none.
    GateRequired = "gate_required",
    /// The level runs no gate and the spec has one.
    GateNotAllowed = "gate_not_allowed",
    /// The task's `[scope]` is looser than the level's.
    ScopeAboveCeiling = "scope_above_ceiling",
    /// The task asks for a model provider its level does not grant (or models.toml lacks).
    ModelNotAllowed = "model_not_allowed",
    // --- prepare (state `refused`, exit 3): operator.toml [prepare] ---
    /// The repository is over a prepare limit (mirror bytes, checkout bytes or files).
    RepoTooLarge = "repo_too_large",
    /// Preparing the checkout ran past `git_timeout`.
    PrepareTimeout = "prepare_timeout",
    // --- runner, export and daemon ---
    /// A model budget (requests, bytes) of the task ran out; the agent was stopped.
    ModelBudgetExhausted = "model_budget_exhausted",
    /// The engine (or the runner around it) failed mid-task.
    EngineError = "engine_error",
    /// An artifact could not be written.
    ExportFailed = "export_failed",
    /// A held secret was found in an artifact (which was removed).
    SecretInArtifact = "secret_in_artifact",
    /// The daemon's runner failed before or around the task.
    RunnerFault = "runner_fault",
    /// The task spec was invalid.
    InvalidInput = "invalid_input",
    /// The daemon restarted while the task ran.
    RunnerRestart = "runner_restart",
    /// Shared queue: the task's runner stopped renewing its lease and the task was re-queued
    /// too often, or its push had started (a push is never repeated).
    RunnerLost = "runner_lost",
    /// Shared queue: this runner lost the task's lease; the push was not started.
    LeaseLost = "lease_lost",
    /// The run's artifacts could not be published to the shared artifact store.
    ArtifactStoreFailed = "artifact_store_failed",
    // --- push (L3+) ---
    /// The push token could not be minted.
    TokenMintFailed = "token_mint_failed",
    /// A container of the task still existed when the push was about to start.
    ContainersRemain = "containers_remain",
    /// The branch name is not one the push may write.
    ForbiddenRef = "forbidden_ref",
    /// The forge refused the token.
    PushUnauthorized = "push_unauthorized",
    /// The forge refused the push for lack of permission.
    PushForbidden = "push_forbidden",
    /// The forge rejected the push (a hook or a protected branch).
    PushRejected = "push_rejected",
    /// The branch already exists with other commits.
    PushConflict = "push_conflict",
    /// git push failed otherwise.
    PushFailed = "push_failed",
    // --- the forge's CI after the push (`[remote.ci]`) ---
    /// A required CI job failed on the pushed commit.
    CiFailed = "ci_failed",
    /// The forge's CI did not finish within `[remote.ci] wait`.
    CiTimeout = "ci_timeout",
    /// The forge's CI could not be read (HTTP errors until the wait ran out).
    CiUnreadable = "ci_unreadable",
    /// The draft PR could not be opened.
    PrFailed = "pr_failed",
    // --- why a push was skipped (events only) ---
    /// This level never pushes.
    LevelMayNotPush = "level_may_not_push",
    /// The task did not end green.
    NotGreen = "not_green",
    /// The task changed nothing.
    NoChanges = "no_changes",
    /// push.toml pins no remote for the repo.
    NoRemoteConfigured = "no_remote_configured",
}

impl Reason {
    /// The code named `code`, if there is one.
    pub fn parse(code: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.as_str() == code)
    }
}

/// Compares with a code as written on the wire (tests and JSON readers).
impl PartialEq<str> for Reason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_the_codes() {
        for r in Reason::ALL {
            let json = serde_json::to_value(r).unwrap();
            assert_eq!(json.as_str(), Some(r.as_str()), "{r:?}");
            assert_eq!(serde_json::from_value::<Reason>(json).unwrap(), *r);
            assert_eq!(Reason::parse(r.as_str()), Some(*r));
        }
        let mut codes: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Reason::ALL.len(), "a code is listed twice");
    }

    /// No reason code is spelled as a string literal in `src/` outside this file (and
    /// `vocab/state.rs` and `vocab/ended.rs`, whose names overlap `cancelled` and `timeout`):
    /// codes come from [`Reason`]. A literal used as a JSON key (`"gate_passed":`) is not a
    /// code. A few codes are also words of other vocabularies (`timeout` is a limit and a
    /// failure kind, `cancelled` a state, `push_failed` and `secret_in_artifact` event kinds):
    /// those count only on a line that speaks of a reason.
    // Also words of other vocabularies: "oom" is the Docker engine's event action too.
    const AMBIGUOUS: [&str; 5] = [
        "timeout",
        "cancelled",
        "push_failed",
        "secret_in_artifact",
        "oom",
    ];

    #[test]
    fn no_reason_code_literals_outside_the_reason_module() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut strays = Vec::new();
        let mut stack = vec![src.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path
                    .strip_prefix(&src)
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                if path.extension().map_or(true, |e| e != "rs")
                    || rel == "vocab/reason.rs"
                    || rel == "vocab/state.rs"
                    || rel == "vocab/ended.rs"
                {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, line) in text.lines().enumerate() {
                    for r in Reason::ALL {
                        let lit = format!("\"{}\"", r.as_str());
                        let elsewhere = AMBIGUOUS.contains(&r.as_str())
                            && !line.to_lowercase().contains("reason");
                        for (at, _) in line.match_indices(&lit) {
                            let after = line[at + lit.len()..].trim_start();
                            if !after.starts_with(':') && !elsewhere {
                                strays.push(format!("src/{rel}:{}: {lit}", i + 1));
                            }
                        }
                    }
                }
            }
        }
        assert!(
            strays.is_empty(),
            "reason codes spelled as strings (use crate::vocab::Reason):\n{}",
            strays.join("\n")
        );
    }
}
