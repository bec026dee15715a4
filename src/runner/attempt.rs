//! The attempt loop: agent container, gate containers over a throwaway view, diff, scope, judge.

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::history::AttemptResult;
use super::tail::End;
use super::task::TaskRun;
use crate::artifacts::{AttemptVerdict, Feedback, State};
use crate::gate;
use crate::judge::{judge, Budget, Verdict};
use crate::policy::{scope, ScopeVerdict};
use crate::sandbox::SandboxError;
use crate::vocab::Reason;
use crate::workspace::{Diff, DiffLimits, WorkspaceError};

/// Largest single file the diff will read.
const MAX_DIFF_FILE: u64 = 64 << 20;

impl TaskRun {
    /// Attempts until the judge stops; the first gets `first` as its feedback (CI's).
    pub(super) async fn attempt_loop(
        &mut self,
        cancel: &CancellationToken,
        first: Option<Feedback>,
    ) -> End {
        let mut feedback: Option<Feedback> = first;
        loop {
            let n = self.history.next_n();
            if let Err(e) = self.attempt(n, feedback.as_ref(), cancel).await {
                self.events
                    .emit("error", json!({ "message": e.to_string() }));
                return End::new(State::Error, Reason::EngineError, Some(e.to_string()));
            }
            if let Some(why) = self.model_budget_exhausted() {
                self.history.set_verdict(AttemptVerdict::Stop);
                return End::new(State::NeedsHuman, Reason::ModelBudgetExhausted, Some(why));
            }
            let verdict = judge(&self.history.facts(), self.budget());
            let verdict_name = super::history::verdict_name(&verdict);
            self.history.set_verdict(verdict_name);
            self.events
                .emit("verdict", json!({ "attempt": n, "verdict": verdict }));
            self.ctx
                .progress
                .phase("judge", &format!("attempt {n}: {verdict_name}"));
            match verdict {
                Verdict::Retry => feedback = Some(self.feedback(n)),
                Verdict::Stop { state, reason } => {
                    let message = match reason {
                        Reason::GateNotRunnable | Reason::AgentNotRunnable => {
                            self.history.take_not_runnable()
                        }
                        _ => None,
                    };
                    return End::new(state, reason, message);
                }
            }
        }
    }

    pub(super) fn budget(&self) -> Budget {
        // Another attempt needs at least a little time; below this it would only time out.
        let adm = &self.ctx.adm;
        let left = adm
            .limits
            .timeout
            .saturating_sub(self.ctx.started.elapsed());
        Budget {
            attempts: adm.limits.attempts,
            time_left: left.as_secs() >= 5,
            flaky_is_green: adm.policy.flaky_is_green,
        }
    }

    fn feedback(&self, n: u32) -> Feedback {
        Feedback {
            attempt: n,
            failures: self.history.last_failures().to_vec(),
            ci: None,
        }
    }

    async fn attempt(
        &mut self,
        n: u32,
        feedback: Option<&Feedback>,
        cancel: &CancellationToken,
    ) -> Result<(), SandboxError> {
        self.ctx
            .airlock
            .write_attempt(&self.ctx.spec, n, feedback)
            .map_err(|e| fault(&e))?;
        self.events.emit("attempt_started", json!({ "attempt": n }));
        let agent = self.run_agent(n, cancel).await?;
        let gate = if agent.facts.ok() && self.ctx.adm.run_gate {
            Some(self.run_gate(n, cancel).await?)
        } else {
            None
        };
        let diff = self.diff().await.map_err(|e| fault(&e))?;
        let scope = self.scope(&diff);
        let (mut red_flags, tree) = self.red_flags(&diff).await.map_err(|e| fault(&e))?;
        let not_run = self.tests_not_run_flags(gate.as_ref(), &red_flags);
        red_flags.extend(not_run);
        let record = self.history.append(AttemptResult {
            agent,
            gate,
            diff,
            scope,
            red_flags,
            tree,
        });
        let finished = json!({ "attempt": record.n, "gate_passed": record.gate_passed, "failures": record.failures.len(), "flaky": record.flaky.len(), "files_changed": record.files_changed, "scope": record.scope, "red_flags": record.red_flags });
        self.events.emit("attempt_finished", finished);
        Ok(())
    }

    /// Red flags in the diff from the base, and in the change from the previous attempt (a
    /// test the agent wrote in attempt 1 and deleted in attempt 2 to go green is never in the
    /// diff from the base). Also returns the tree of this attempt's result.
    async fn red_flags(&self, diff: &Diff) -> Result<(Vec<gate::RedFlag>, String), WorkspaceError> {
        let mut flags = gate::red_flags(&String::from_utf8_lossy(&diff.patch));
        let tree = self.ctx.on_workspace(|ws| ws.last_tree()).await?;
        let prev = self.history.last().map(|a| a.tree.clone());
        if let Some(prev) = prev.filter(|p| *p != tree) {
            let to = tree.clone();
            let between = self
                .ctx
                .on_workspace(move |ws| ws.diff_trees(&prev, &to))
                .await?;
            for mut f in gate::red_flags(&String::from_utf8_lossy(&between)) {
                if !flags.contains(&f) {
                    f.since_previous_attempt = true;
                    flags.push(f);
                }
            }
        }
        Ok((flags, tree))
    }

    async fn diff(&self) -> Result<Diff, WorkspaceError> {
        let policy = &self.ctx.adm.policy.scope;
        let limits = DiffLimits {
            max_file_bytes: MAX_DIFF_FILE.min(policy.max_diff_bytes.max(1)),
            max_paths: policy.max_files_changed * 10 + 10,
        };
        self.ctx.on_workspace(move |ws| ws.diff(limits)).await
    }

    /// Paths the diff had to leave out block the task: a change airlock cannot show must not
    /// pass as reviewed. Then the policy's scope rules.
    fn scope(&self, diff: &Diff) -> ScopeVerdict {
        let skipped = |why: &str| -> Vec<String> {
            diff.skipped
                .iter()
                .filter(|(_, w)| w == why)
                .map(|(p, _)| p.clone())
                .collect()
        };
        for (why, reason) in [
            ("too_large", Reason::DiffTooLarge),
            ("too_many_paths", Reason::TooManyFiles),
            ("invalid_name", Reason::UnrepresentablePath),
        ] {
            let paths = skipped(why);
            if !paths.is_empty() {
                return ScopeVerdict::Blocked { reason, paths };
            }
        }
        let adm = &self.ctx.adm;
        let level = scope::check(&adm.policy.scope, &diff.files, diff.patch.len() as u64);
        super::risk_step::with_task_scope(level, &adm.task_scope, &diff.files)
    }
}

pub(super) fn fault(e: &dyn std::fmt::Display) -> SandboxError {
    SandboxError::Runner {
        message: e.to_string(),
    }
}
