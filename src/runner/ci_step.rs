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

use super::tail::{End, Tail};
use super::task::TaskRun;
use crate::artifacts::{CiFeedback, Feedback, State};
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
    /// Every secret the task holds (the agent's model keys, every token minted for the push
    /// and CI reads): the artifacts are scanned for them before each bundle.
    pub held: Held,
}

/// What the wait for CI leads to.
pub(super) enum CiNext {
    /// The task ends so.
    End(End),
    /// Another attempt, with CI's failures as its feedback.
    Retry(Feedback),
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

    /// What the tail waits for CI on: the remote, its `[remote.ci]` and the pushed commit,
    /// when the task is green, pushed, and its remote has CI.
    pub(super) fn ci_follows(&self, t: &Tail) -> Option<(Remote, CiConfig, String)> {
        if t.end().state != State::Green || !t.exported.pushed {
            return None;
        }
        let commit = t.exported.commit.clone()?;
        let (remote, cfg) = self.ci_remote()?;
        Some((remote, cfg, commit))
    }

    /// The last step of the tail, for a green task pushed to a remote with `[remote.ci]`: wait
    /// for CI on `commit`. Its end (green, failed, timed out, unreadable, cancelled) or CI's
    /// failures as the next attempt's feedback, when the judge says retry. `reason` is the
    /// green end's reason (it stays when CI is green).
    pub(super) async fn ci_wait(
        &mut self,
        remote: &Remote,
        cfg: &CiConfig,
        commit: &str,
        reason: Reason,
        cancel: &CancellationToken,
    ) -> CiNext {
        self.ci.pushed = Some(commit.to_string());
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
            Ok(()) => self.wait_ci(remote, cfg, commit, cancel).await,
            Err(e) => CiRound::new(
                commit,
                &CiOutcome::Unreadable {
                    error: e.to_string(),
                },
                0,
            ),
        };
        self.events.emit("ci_result", json!(round));
        self.ci.rounds.push(round.clone());
        if cancel.is_cancelled() {
            return self.ci_end(State::Cancelled, Reason::Cancelled, None);
        }
        let links = round.links();
        match round.result.as_str() {
            "green" => {
                let m = format!("CI green on {commit}");
                return self.ci_end(State::Green, reason, Some(m));
            }
            "timeout" => {
                let m = format!(
                    "CI did not finish on {commit} within {}s; still pending: {links}",
                    cfg.wait.as_secs()
                );
                return self.ci_end(State::NeedsHuman, Reason::CiTimeout, Some(m));
            }
            "unreadable" => {
                let m = format!(
                    "CI on {commit} could not be read: {}",
                    round.error.as_deref().unwrap_or("")
                );
                return self.ci_end(State::NeedsHuman, Reason::CiUnreadable, Some(m));
            }
            _ => {}
        }
        match self.judge_ci(&round) {
            Verdict::Stop {
                state: State::Green,
                ..
            } => {
                let m = format!("CI on {commit} fails only the way the base commit's CI does (pre-existing): {links}");
                return self.ci_end(State::Green, Reason::GatePassedPreexisting, Some(m));
            }
            Verdict::Stop { state, reason } => {
                let (reason, why) = match reason {
                    Reason::NoProgress => (reason, "the same failures as before"),
                    Reason::Timeout => (Reason::CiFailed, "no time left for another attempt"),
                    _ => (Reason::CiFailed, "no attempt left"),
                };
                let m = format!("CI failed on {commit} ({why}): {links}");
                return self.ci_end(state, reason, Some(m));
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
                commit: commit.to_string(),
                job: round.jobs[0].clone(),
            }),
        };
        self.ctx.progress.phase(
            "judge",
            &format!("CI failed on {commit}: another attempt ({links})"),
        );
        CiNext::Retry(feedback)
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

    /// How the task ends after CI (the tail settles it and writes the summary again).
    fn ci_end(&mut self, state: State, reason: Reason, message: Option<String>) -> CiNext {
        self.ctx
            .progress
            .phase("ci", &format!("{} ({})", state.as_str(), reason.as_str()));
        let message = message.map(|m| crate::artifacts::neutralise(&m));
        CiNext::End(End::new(state, reason, message))
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
