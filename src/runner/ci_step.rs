//! The forge's CI after the push (L3/L4 with `[remote.ci]`): the task stays open in the
//! `waiting_ci` phase while the pushed commit's CI runs, with a bounded wait. A failed required
//! job's log goes through the gate's parsers and the same judge (introduced vs pre-existing
//! against the base commit's CI; no progress; budget; time). When it says retry, a fresh
//! sandbox attempt gets `feedback.json` from CI, runs the agent and the local gate, and a green
//! gate leads to a new commit on top of the pushed one, pushed fast-forward (never forced) on
//! the same branch; then the wait starts again.
//!
//! The token that reads CI is minted per wait ([`MintedCi`]), read-only where the forge allows,
//! only while no container of the task exists, and revoked when the wait ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::task::TaskRun;
use crate::artifacts::{CiFeedback, Feedback, State, Summary};
use crate::judge::{judge, ContainerFacts, GateFacts, Verdict};
use crate::policy::Preexisting;
use crate::push::ci::{self, CiConfig, CiOutcome, CiRound, MintedCi};
use crate::push::Remote;
use crate::sandbox::Ended;
use crate::secrets::Held;
use crate::vocab::Reason;

/// What the CI loop carries between rounds.
#[derive(Debug, Default)]
pub(super) struct CiState {
    /// The commit last pushed (the parent of the next one).
    pub pushed: Option<String>,
    pub rounds: Vec<CiRound>,
    /// Every token the task minted (push and CI read): the artifacts are scanned for them.
    pub held: Held,
}

/// The gate facts of a CI run that failed.
const CI_FAILED: ContainerFacts = ContainerFacts {
    ended: Ended::Exited,
    exit_code: Some(1),
    oom_killed: false,
    not_runnable: false,
};

impl TaskRun {
    /// The remote and its `[remote.ci]`, when this task's pushes wait for CI.
    pub(super) fn ci_remote(&self) -> Option<(Remote, CiConfig)> {
        let config = self.ctx.adm.policy.push_config.as_ref()?;
        if config.dry_run
            || !self.ctx.adm.policy.push
            || self.ctx.adm.level < crate::spec::Level::L3
        {
            return None;
        }
        let remote = config.remote_for(&self.ctx.spec.repo.url)?;
        let ci = remote.ci.clone()?;
        Some((remote.clone(), ci))
    }

    /// Wait for CI on each pushed commit until it is green or the judge stops. Returns the
    /// final summary (written).
    pub(super) async fn ci_loop(
        &mut self,
        mut summary: Summary,
        cancel: &CancellationToken,
    ) -> Summary {
        let Some((remote, cfg)) = self.ci_remote() else {
            return summary;
        };
        loop {
            let commit = match (&summary.commit, summary.state, summary.pushed) {
                (Some(c), State::Green, true) => c.clone(),
                _ => {
                    // Not pushed (the push failed) or the attempt after CI's feedback did not
                    // go green: that is the end.
                    let (s, r, m) = (summary.state, summary.reason, summary.message.clone());
                    return self.ci_end(summary, s, r, m);
                }
            };
            self.ci.pushed = Some(commit.clone());
            let round_n = self.ci.rounds.len() + 1;
            self.events.emit(
                "waiting_ci",
                json!({ "phase": "waiting_ci", "round": round_n, "commit": commit, "wait_s": cfg.wait.as_secs(), "forge": cfg.forge, "project": cfg.project }),
            );
            self.ctx.progress.phase(
                "waiting_ci",
                &format!(
                    "CI on {} (up to {}s)",
                    &commit[..12.min(commit.len())],
                    cfg.wait.as_secs()
                ),
            );
            let round = match self.containers_gone().await {
                Ok(()) => self.wait_ci(&remote, &cfg, &commit, cancel).await,
                Err(e) => CiRound::new(
                    &commit,
                    &CiOutcome::Unreadable {
                        error: e.to_string(),
                    },
                    0,
                ),
            };
            self.events.emit("ci_result", json!(round));
            self.ci.rounds.push(round.clone());
            summary.ci = self.ci.rounds.clone();
            if cancel.is_cancelled() {
                return self.ci_end(summary, State::Cancelled, Reason::Cancelled, None);
            }
            let links = round.links();
            match round.result.as_str() {
                "green" => {
                    let m = format!("CI green on {commit}");
                    return self.ci_end(summary.clone(), State::Green, summary.reason, Some(m));
                }
                "timeout" => {
                    let m = format!(
                        "CI did not finish on {commit} within {}s; still pending: {links}",
                        cfg.wait.as_secs()
                    );
                    return self.ci_end(summary, State::NeedsHuman, Reason::CiTimeout, Some(m));
                }
                "unreadable" => {
                    let m = format!(
                        "CI on {commit} could not be read: {}",
                        round.error.as_deref().unwrap_or("")
                    );
                    return self.ci_end(summary, State::NeedsHuman, Reason::CiUnreadable, Some(m));
                }
                _ => {}
            }
            match self.judge_ci(&round) {
                Verdict::Stop {
                    state: State::Green,
                    ..
                } => {
                    let m = format!("CI on {commit} fails only the way the base commit's CI does (pre-existing): {links}");
                    return self.ci_end(
                        summary,
                        State::Green,
                        Reason::GatePassedPreexisting,
                        Some(m),
                    );
                }
                Verdict::Stop { state, reason } => {
                    let (reason, why) = match reason {
                        Reason::NoProgress => (reason, "the same failures as before"),
                        Reason::Timeout => (Reason::CiFailed, "no time left for another attempt"),
                        _ => (Reason::CiFailed, "no attempt left"),
                    };
                    let m = format!("CI failed on {commit} ({why}): {links}");
                    return self.ci_end(summary, state, reason, Some(m));
                }
                Verdict::Retry => {}
            }
            let feedback = Feedback {
                attempt: self.history.len() as u32,
                failures: round
                    .failures
                    .iter()
                    .filter(|f| {
                        f.origin != Some(crate::gate::FailureOrigin::Preexisting)
                            || self.ctx.adm.policy.preexisting == Preexisting::MustFix
                    })
                    .cloned()
                    .collect(),
                ci: Some(CiFeedback {
                    commit: commit.clone(),
                    job: round.jobs[0].clone(),
                }),
            };
            self.ctx.progress.phase(
                "judge",
                &format!("CI failed on {commit}: another attempt ({links})"),
            );
            let (state, reason, message) = self.attempt_loop(cancel, Some(feedback)).await;
            let (state, reason, message) = self.high_risk_stop(state, reason, message);
            summary = self.export(state, reason, message).await;
        }
    }

    /// The same judge: the attempt that produced the pushed commit now has CI's failures.
    fn judge_ci(&mut self, round: &CiRound) -> Verdict {
        let report = self.ctx.adm.policy.preexisting == Preexisting::Report;
        let signatures = if report {
            round.signatures()
        } else {
            let mut s: Vec<String> = round.failures.iter().map(|f| f.signature.clone()).collect();
            s.sort();
            s.dedup();
            s
        };
        let gate = GateFacts {
            containers: vec![CI_FAILED],
            flaky_only: false,
            preexisting_only: report && round.preexisting_only(),
        };
        self.history.set_ci_gate(gate, signatures);
        let verdict = judge(&self.history.facts(), self.budget());
        let n = self.history.len();
        self.history
            .set_verdict(super::history::verdict_name(&verdict));
        self.events.emit(
            "verdict",
            json!({ "attempt": n, "source": "ci", "verdict": verdict }),
        );
        verdict
    }

    /// One wait, on a blocking thread: mint, poll, read the failing job's log and the base
    /// commit's result for the same job, revoke.
    async fn wait_ci(
        &mut self,
        remote: &Remote,
        cfg: &CiConfig,
        commit: &str,
        cancel: &CancellationToken,
    ) -> CiRound {
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (stop, cancel) = (stop.clone(), cancel.clone());
            tokio::spawn(async move {
                cancel.cancelled().await;
                stop.store(true, Ordering::SeqCst);
            })
        };
        let held = std::mem::take(&mut self.ci.held);
        let (remote, cfg, commit) = (remote.clone(), cfg.clone(), commit.to_string());
        let (task_id, repo, base) = (
            self.ctx.task_id.clone(),
            self.ctx.spec.repo.url.clone(),
            self.ctx.ws.base_commit.clone(),
        );
        let joined = tokio::task::spawn_blocking(move || {
            let mut held = held;
            let (round, events) = {
                let mut source = MintedCi::new(&remote, &cfg, &task_id, &repo, &mut held);
                let round = wait_blocking(&mut source, &cfg, &commit, &base, &stop);
                source.revoke();
                (round, std::mem::take(&mut source.events))
            };
            (round, events, held)
        })
        .await;
        watcher.abort();
        match joined {
            Ok((round, events, held)) => {
                for (kind, fields) in events {
                    let text = held.redactor.redact(fields.to_string().as_bytes());
                    let fields = serde_json::from_slice(&text)
                        .unwrap_or_else(|_| json!({ "redacted": true }));
                    self.events.emit(&kind, fields);
                }
                self.ci.held = held;
                round
            }
            Err(e) => CiRound::new(
                &self.ctx.ws.base_commit,
                &CiOutcome::Unreadable {
                    error: format!("the CI wait failed: {e}"),
                },
                0,
            ),
        }
    }

    /// The task ends after CI: the summary and evidence are written again.
    fn ci_end(
        &mut self,
        mut summary: Summary,
        state: State,
        reason: Reason,
        message: Option<String>,
    ) -> Summary {
        summary.state = state;
        summary.reason = reason;
        summary.message = message.map(|m| crate::artifacts::neutralise(&m));
        summary.ci = self.ci.rounds.clone();
        summary.finished_at = crate::artifacts::now_rfc3339();
        summary.duration_s = (self.ctx.started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
        self.ctx
            .progress
            .phase("ci", &format!("{} ({})", state.as_str(), reason.as_str()));
        self.rewrite_after_ci(&mut summary);
        summary
    }
}

/// Poll until CI decides (or the wait or a cancel ends it); then, on a failure, read the same
/// job on the base commit and mark each failure's origin.
fn wait_blocking(
    source: &mut MintedCi,
    cfg: &CiConfig,
    commit: &str,
    base: &str,
    stop: &AtomicBool,
) -> CiRound {
    let started = Instant::now();
    let outcome = ci::wait_for_ci(
        source,
        commit,
        cfg,
        &mut || {
            if stop.load(Ordering::SeqCst) {
                Duration::MAX / 2
            } else {
                started.elapsed()
            }
        },
        &mut |d| {
            let until = Instant::now() + d;
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50).min(d));
            }
        },
    );
    let mut round = CiRound::new(commit, &outcome, started.elapsed().as_secs());
    if let CiOutcome::Failed { job, .. } = &outcome {
        let (b, base_failures) = ci::round::base_result(source, base, &job.name);
        ci::round::mark(&mut round, b, &base_failures);
    }
    round
}
