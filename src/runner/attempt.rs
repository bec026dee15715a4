//! The attempt loop: agent container, gate containers over a throwaway view, diff, scope, judge.

use std::time::Instant;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::containers::Ran;
use super::context::AirlockDir;
use super::engine_port::Containers;
use super::gate_run::GateResult;
use super::{event_log, state_json, Progress, RunOptions};
use crate::artifacts::{
    ArtifactDir, ArtifactError, AttemptRecord, AttemptVerdict, EventLog, Feedback, State, Summary,
};
use crate::gate::{self, Failure};
use crate::judge::{judge, AttemptFacts, Budget, ContainerFacts, GateFacts, Verdict};
use crate::policy::{scope, Admission, ScopeVerdict};
use crate::sandbox::SandboxError;
use crate::spec::TaskSpec;
use crate::vocab::Reason;
use crate::workspace::{mount_tmpfs, Diff, DiffLimits, Workspace};

/// Largest single file the diff will read.
const MAX_DIFF_FILE: u64 = 64 << 20;

/// One task in flight. Owns everything that must be cleaned up.
pub struct TaskRun {
    pub(super) spec: TaskSpec,
    pub(super) adm: Admission,
    pub(super) engine: std::sync::Arc<dyn Containers>,
    pub(super) ws: Workspace,
    pub(super) artifacts: ArtifactDir,
    pub(super) events: EventLog,
    pub(super) airlock: AirlockDir,
    pub(super) task_id: String,
    pub(super) session: String,
    pub(super) push_gate: Option<super::PushGate>,
    pub(super) progress: Progress,
    pub(super) started: Instant,
    pub(super) started_at: String,
    pub(super) attempts: Vec<AttemptRecord>,
    pub(super) facts: Vec<AttemptFacts>,
    pub(super) last_failures: Vec<Failure>,
    pub(super) last_diff: Diff,
    /// The tree of each attempt's result, to compare attempts with each other.
    pub(super) trees: Vec<String>,
    /// What the last container that could not start said (the stop's message).
    pub(super) not_runnable: Option<String>,
    /// Failure signatures that failed every flaky-check rerun: not rerun in later attempts.
    pub(super) deterministic: std::collections::BTreeSet<String>,
    /// Model egress (proxies on the host), when the task was granted providers.
    pub(super) egress: Option<crate::egress::Egress>,
    pub(super) state_dir: std::path::PathBuf,
    /// The gate on the untouched base (see `baseline`).
    pub(super) baseline: super::baseline::BaselineState,
    /// The forge's CI after the push (see `ci_step`).
    pub(super) ci: super::ci_step::CiState,
}

impl TaskRun {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        spec: TaskSpec,
        adm: Admission,
        engine: std::sync::Arc<dyn Containers>,
        ws: Workspace,
        opts: &RunOptions,
        task_id: String,
        progress: Progress,
        started: Instant,
    ) -> Result<TaskRun, ArtifactError> {
        let artifacts = ArtifactDir::create(&opts.artifacts_root, &task_id)?;
        let mut events = event_log(&artifacts).with_max_events(adm.policy.output.events);
        let airlock = AirlockDir::create(&ws.root)?;
        if let Err(e) = mount_tmpfs(
            &airlock.out,
            adm.limits.out,
            adm.limits.tmpfs_inodes,
            crate::sandbox::hardening::sandbox_uid(),
        ) {
            return Err(ArtifactError::io("mount out/ tmpfs at", &airlock.out)(
                std::io::Error::other(e.to_string()),
            ));
        }
        airlock.write_packet(&spec, &task_id, adm.level.as_str(), &ws.base_commit)?;
        let egress = super::model_egress::start(&ws.root, &airlock, &adm).map_err(|e| {
            ArtifactError::io("start model egress in", &ws.root)(std::io::Error::other(e))
        })?;
        events.emit("admitted", json!({ "level": adm.level, "runtime": adm.runtime, "limits": adm.limits, "rules": adm.rules }));
        events.emit(
            "prepared",
            json!({ "base": spec.repo.base, "base_commit": ws.base_commit }),
        );
        Ok(TaskRun {
            spec,
            adm,
            engine,
            ws,
            artifacts,
            events,
            airlock,
            task_id,
            session: opts.session.clone(),
            push_gate: opts.push_gate.clone(),
            progress,
            started,
            started_at: crate::artifacts::now_rfc3339(),
            attempts: Vec::new(),
            facts: Vec::new(),
            last_failures: Vec::new(),
            last_diff: Diff::default(),
            trees: Vec::new(),
            state_dir: opts.state_dir.clone(),
            baseline: Default::default(),
            ci: Default::default(),
            not_runnable: None,
            deterministic: Default::default(),
            egress,
        })
        .map(|mut t| {
            t.emit_egress_started();
            t
        })
    }

    /// Run attempts until the judge stops, then export. Always returns a summary.
    pub async fn execute(&mut self, cancel: CancellationToken) -> Summary {
        self.start_baseline(&cancel).await;
        let (state, reason, message) = self.attempt_loop(&cancel, None).await;
        let (state, reason, message) = self.high_risk_stop(state, reason, message);
        // A green task whose push waits for CI ends after the wait (`ci_step`).
        if state == State::Green && self.ci_remote().is_some() {
            let summary = self.export(state, reason, message).await;
            return self.ci_loop(summary, &cancel).await;
        }
        self.events.emit("finished", state_json(state, reason));
        self.export(state, reason, message).await
    }

    /// Attempts until the judge stops; the first gets `first` as its feedback (CI's).
    pub(super) async fn attempt_loop(
        &mut self,
        cancel: &CancellationToken,
        first: Option<Feedback>,
    ) -> (State, Reason, Option<String>) {
        let mut feedback: Option<Feedback> = first;
        loop {
            let n = self.attempts.len() as u32 + 1;
            if let Err(e) = self.attempt(n, feedback.as_ref(), cancel).await {
                self.events
                    .emit("error", json!({ "message": e.to_string() }));
                return (State::Error, Reason::EngineError, Some(e.to_string()));
            }
            if let Some(why) = self.model_budget_exhausted() {
                if let Some(a) = self.attempts.last_mut() {
                    a.verdict = crate::artifacts::AttemptVerdict::Stop;
                }
                return (State::NeedsHuman, Reason::ModelBudgetExhausted, Some(why));
            }
            let verdict = judge(&self.facts, self.budget());
            let verdict_name = match &verdict {
                Verdict::Retry => AttemptVerdict::Retry,
                Verdict::Stop {
                    state: State::Green,
                    ..
                } => AttemptVerdict::Green,
                Verdict::Stop { .. } => AttemptVerdict::Stop,
            };
            if let Some(a) = self.attempts.last_mut() {
                a.verdict = verdict_name;
            }
            self.events
                .emit("verdict", json!({ "attempt": n, "verdict": verdict }));
            self.progress
                .phase("judge", &format!("attempt {n}: {verdict_name}"));
            match verdict {
                Verdict::Retry => feedback = Some(self.feedback(n)),
                Verdict::Stop { state, reason } => {
                    let message = match reason {
                        Reason::GateNotRunnable | Reason::AgentNotRunnable => {
                            self.not_runnable.take()
                        }
                        _ => None,
                    };
                    return (state, reason, message);
                }
            }
        }
    }

    pub(super) fn budget(&self) -> Budget {
        // Another attempt needs at least a little time; below this it would only time out.
        let left = self
            .adm
            .limits
            .timeout
            .saturating_sub(self.started.elapsed());
        Budget {
            attempts: self.adm.limits.attempts,
            time_left: left.as_secs() >= 5,
            flaky_is_green: self.adm.policy.flaky_is_green,
        }
    }

    fn feedback(&self, n: u32) -> Feedback {
        Feedback {
            attempt: n,
            failures: self.last_failures.clone(),
            ci: None,
        }
    }

    async fn attempt(
        &mut self,
        n: u32,
        feedback: Option<&Feedback>,
        cancel: &CancellationToken,
    ) -> Result<(), SandboxError> {
        self.airlock
            .write_attempt(&self.spec, n, feedback)
            .map_err(|e| fault(&e))?;
        self.events.emit("attempt_started", json!({ "attempt": n }));
        let agent = self.run_agent(n, cancel).await?;
        let gate = if agent.facts.ok() && self.adm.run_gate {
            Some(self.run_gate(n, cancel).await?)
        } else {
            None
        };
        let diff = self.diff().map_err(|e| fault(&e))?;
        let scope = self.scope(&diff);
        let mut red_flags = self.red_flags(&diff).map_err(|e| fault(&e))?;
        let not_run = self.tests_not_run_flags(gate.as_ref(), &red_flags);
        red_flags.extend(not_run);
        self.record(n, agent, gate, &diff, scope, red_flags);
        self.last_diff = diff;
        Ok(())
    }

    /// Red flags in the diff from the base, and in the change from the previous attempt (a
    /// test the agent wrote in attempt 1 and deleted in attempt 2 to go green is never in the
    /// diff from the base).
    fn red_flags(
        &mut self,
        diff: &Diff,
    ) -> Result<Vec<gate::RedFlag>, crate::workspace::WorkspaceError> {
        let mut flags = gate::red_flags(&String::from_utf8_lossy(&diff.patch));
        let tree = tokio::task::block_in_place(|| self.ws.last_tree())?;
        if let Some(prev) = self.trees.last().filter(|p| **p != tree) {
            let between = tokio::task::block_in_place(|| self.ws.diff_trees(prev, &tree))?;
            for mut f in gate::red_flags(&String::from_utf8_lossy(&between)) {
                if !flags.contains(&f) {
                    f.since_previous_attempt = true;
                    flags.push(f);
                }
            }
        }
        self.trees.push(tree);
        Ok(flags)
    }

    fn record(
        &mut self,
        n: u32,
        agent: Ran,
        gate: Option<GateResult>,
        diff: &Diff,
        scope: ScopeVerdict,
        red_flags: Vec<gate::RedFlag>,
    ) {
        let failures: Vec<Failure> = gate.iter().flat_map(|g| g.failures.clone()).collect();
        let flaky: Vec<Failure> = gate.iter().flat_map(|g| g.flaky.clone()).collect();
        let blocking: Vec<Failure> = gate.iter().flat_map(|g| g.blocking.clone()).collect();
        let gate_facts = gate.as_ref().map(|g| GateFacts {
            containers: g.runs.iter().map(|r| r.facts).collect(),
            flaky_only: g.flaky_only(),
            preexisting_only: g.preexisting_only(),
        });
        let gate_passed = gate_facts
            .as_ref()
            .map(|g| g.containers.iter().all(ContainerFacts::ok));
        let mut signatures: Vec<String> = blocking.iter().map(|f| f.signature.clone()).collect();
        signatures.sort();
        signatures.dedup();
        self.facts.push(AttemptFacts {
            agent: agent.facts,
            gate: gate_facts,
            scope: scope.clone(),
            red_flags: red_flags.len(),
            signatures,
        });
        let tests = gate.as_ref().and_then(GateResult::test_counts);
        self.attempts.push(AttemptRecord {
            n,
            agent: Some(agent.record),
            gate: gate
                .into_iter()
                .flat_map(|g| g.runs.into_iter().chain(g.reruns))
                .map(|g| g.record)
                .collect(),
            gate_passed,
            tests,
            failures: failures.clone(),
            flaky: flaky.clone(),
            red_flags: red_flags.clone(),
            scope: scope.clone(),
            // Set by the loop once the judge has spoken.
            verdict: AttemptVerdict::Stop,
            files_changed: diff.files.len(),
        });
        let summary = json!({ "attempt": n, "gate_passed": gate_passed, "failures": failures.len(), "flaky": flaky.len(), "files_changed": diff.files.len(), "scope": scope, "red_flags": red_flags });
        self.events.emit("attempt_finished", summary);
        // Only what blocks is fed back: under `report`, failures the base has too are not the
        // agent's to fix.
        self.last_failures = blocking;
    }

    fn diff(&self) -> Result<Diff, crate::workspace::WorkspaceError> {
        let limits = DiffLimits {
            max_file_bytes: MAX_DIFF_FILE.min(self.adm.policy.scope.max_diff_bytes.max(1)),
            max_paths: self.adm.policy.scope.max_files_changed * 10 + 10,
        };
        tokio::task::block_in_place(|| self.ws.diff(limits))
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
        let level = scope::check(&self.adm.policy.scope, &diff.files, diff.patch.len() as u64);
        super::risk_step::with_task_scope(level, &self.adm.task_scope, &diff.files)
    }

    /// Remove every container of this task (whatever happened) and tear the workspace down.
    pub async fn finish(&mut self, keep: bool) {
        self.stop_egress();
        self.abort_baseline();
        if let Some(e) = self.engine.sweep_task(&self.task_id).await {
            tracing::warn!(error = %e, "sweep of the task's containers failed");
        }
        if let Err(e) = tokio::task::block_in_place(|| self.ws.tear_down(keep)) {
            tracing::warn!(error = %e, "workspace tear-down failed");
        }
    }
}

pub(super) fn fault(e: &dyn std::fmt::Display) -> SandboxError {
    SandboxError::Runner {
        message: e.to_string(),
    }
}
