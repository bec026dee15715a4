//! The gate: each command in a fresh container over a throwaway view of the agent's tree, and
//! flake detection by rerunning only the failing tests.

use tokio_util::sync::CancellationToken;

use super::attempt::fault;
use super::containers::Ran;
use super::task::TaskRun;
use crate::gate::{mark_origins, rerun_argv, test_counts, Failure, FailureClass, TestCounts};
use crate::sandbox::{Ended, SandboxError};
use crate::spec::GateSpec;

/// Reruns are numbered from here in container names, after the gate's own commands.
const RERUN_STEP: usize = 100;

/// One attempt's gate.
pub(super) struct GateResult {
    /// The gate's commands, in order, up to the first one that failed for real.
    pub runs: Vec<Ran>,
    /// Reruns of failing tests (flake detection).
    pub reruns: Vec<Ran>,
    /// Failures that stayed failing: the agent's feedback.
    pub failures: Vec<Failure>,
    /// Failures that passed on a rerun: reported, not fed back as bugs.
    pub flaky: Vec<Failure>,
    /// The failures that block green (see `baseline::blocking`): the agent's feedback.
    pub blocking: Vec<Failure>,
}

impl GateResult {
    /// The gate failed, and only on flaky tests.
    pub fn flaky_only(&self) -> bool {
        !self.flaky.is_empty() && self.blocking.is_empty()
    }

    /// The gate failed, and only on failures the base has too (policy `report`).
    pub fn preexisting_only(&self) -> bool {
        self.flaky.is_empty() && self.blocking.is_empty() && !self.failures.is_empty()
    }

    /// Tests counted from the commands' own output (reruns are not double-counted).
    pub fn test_counts(&self) -> Option<TestCounts> {
        let counts: Vec<TestCounts> = self
            .runs
            .iter()
            .filter_map(|r| test_counts(&String::from_utf8_lossy(&r.log)))
            .collect();
        (!counts.is_empty()).then(|| TestCounts::sum(&counts))
    }
}

impl TaskRun {
    pub(super) async fn run_gate(
        &mut self,
        n: u32,
        cancel: &CancellationToken,
    ) -> Result<GateResult, SandboxError> {
        let gate = self
            .ctx
            .spec
            .gate
            .clone()
            .ok_or_else(|| fault(&"no gate in the spec"))?;
        let result = self.gate_commands(n, &gate, cancel).await?;
        let all: Vec<&Ran> = result.runs.iter().chain(&result.reruns).collect();
        self.write_log("gate", n, &all);
        Ok(result)
    }

    /// Like CI: commands run in order and stop at the first real failure. A command whose
    /// failures all pass on rerun counts as flaky, and the next command runs.
    async fn gate_commands(
        &mut self,
        n: u32,
        gate: &GateSpec,
        cancel: &CancellationToken,
    ) -> Result<GateResult, SandboxError> {
        let base = self.baseline().await;
        let policy = self.ctx.adm.policy.preexisting;
        let mut result = GateResult {
            runs: vec![],
            reruns: vec![],
            failures: vec![],
            flaky: vec![],
            blocking: vec![],
        };
        for (i, argv) in gate.commands.iter().enumerate() {
            self.ctx
                .progress
                .phase("gate", &format!("attempt {n}: {}", argv.join(" ")));
            let ran = self
                .gate_container(n, i, &gate.image, argv.clone(), cancel)
                .await?;
            let (ok, rerunnable) = (
                ran.facts.ok(),
                ran.facts.ended == Ended::Exited
                    && !ran.facts.oom_killed
                    && !ran.facts.not_runnable,
            );
            let failures = ran.failures.clone();
            let counts = test_counts(&String::from_utf8_lossy(&ran.log));
            result.runs.push(ran);
            if ok {
                continue;
            }
            let base_cmd = base
                .as_deref()
                .and_then(|b| b.commands.get(i))
                .filter(|c| c.argv == *argv);
            if !rerunnable {
                let mut failures = failures;
                mark_origins(&mut failures, base.as_deref());
                result.blocking.extend(failures.clone());
                result.failures.extend(failures);
                break;
            }
            // Every failure is rerun, the base's too: "flaky" is the more specific diagnosis (a
            // flaky test can fail on the base as well).
            let (mut still, flaky) = self
                .rerun_failing(n, gate, argv, failures, &mut result.reruns, cancel)
                .await?;
            result.flaky.extend(flaky.into_iter().map(|f| Failure {
                class: FailureClass::Flaky,
                ..f
            }));
            mark_origins(&mut still, base.as_deref());
            let blocking = super::baseline::blocking(&still, base_cmd, counts, policy);
            result.failures.extend(still);
            if !blocking.is_empty() {
                result.blocking.extend(blocking);
                break;
            }
        }
        Ok(result)
    }

    /// Rerun only the failing tests up to the policy's count; returns (still failing, flaky).
    /// A failure already confirmed deterministic earlier in this task (it failed every rerun)
    /// is not rerun again; one that fails every rerun now is remembered as such.
    #[allow(clippy::too_many_arguments)]
    async fn rerun_failing(
        &mut self,
        n: u32,
        gate: &GateSpec,
        argv: &[String],
        failures: Vec<Failure>,
        reruns: &mut Vec<Ran>,
        cancel: &CancellationToken,
    ) -> Result<(Vec<Failure>, Vec<Failure>), SandboxError> {
        let (known, mut remaining): (Vec<_>, Vec<_>) = failures
            .into_iter()
            .partition(|f| self.history.is_deterministic(&f.signature));
        let mut flaky = Vec::new();
        let total = self.ctx.adm.policy.flaky_reruns as usize;
        let mut completed = 0;
        for k in 0..total {
            if remaining.is_empty() {
                break;
            }
            let Some(rerun) = rerun_argv(argv, &remaining) else {
                break;
            };
            self.ctx.progress.phase(
                "gate",
                &format!("attempt {n}: flaky check: rerun {} of {total}", k + 1),
            );
            let ran = self
                .gate_container(n, RERUN_STEP + k, &gate.image, rerun, cancel)
                .await?;
            let usable = ran.facts.ended == Ended::Exited && !ran.facts.oom_killed;
            let still: Vec<String> = ran.failures.iter().map(|f| f.signature.clone()).collect();
            let unknown = ran
                .failures
                .iter()
                .any(|f| f.kind == crate::gate::FailureKind::Unknown);
            reruns.push(ran);
            if !usable || unknown {
                break; // the rerun itself broke: no conclusion about flakiness
            }
            completed += 1;
            let (passed, failing): (Vec<_>, Vec<_>) = remaining
                .into_iter()
                .partition(|f| !still.contains(&f.signature));
            flaky.extend(passed);
            remaining = failing;
            if remaining.is_empty() {
                break;
            }
        }
        if completed == total && total > 0 {
            self.history
                .confirm_deterministic(remaining.iter().map(|f| f.signature.clone()));
        }
        remaining.extend(known);
        Ok((remaining, flaky))
    }
}
