//! The attempt loop's decisions, as a pure function: facts about the attempts so far in, a
//! verdict out. No I/O, no engine: every rule is testable over plain data.

use serde::Serialize;

use crate::vocab::{Ended, Reason, ScopeVerdict, State};

/// How one container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ContainerFacts {
    /// How the container ended.
    pub ended: Ended,
    /// Its exit code, when it exited.
    pub exit_code: Option<i64>,
    /// Whether the OOM killer ended it.
    pub oom_killed: bool,
    /// The command could not start (see [`Reason::GateNotRunnable`]); set by the runner from
    /// the exit code and the init's exec-failure line.
    pub not_runnable: bool,
}

impl ContainerFacts {
    /// Whether it exited on its own with code 0 and was not OOM-killed.
    pub fn ok(&self) -> bool {
        self.ended == Ended::Exited && !self.oom_killed && self.exit_code == Some(0)
    }
}

/// The gate's result for one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateFacts {
    /// Every gate container of the attempt, in order.
    pub containers: Vec<ContainerFacts>,
    /// Every failure passed when rerun: the gate failed only on flaky tests.
    pub flaky_only: bool,
    /// Every failure also fails on the base, and the policy only reports those.
    pub preexisting_only: bool,
}

/// What the judge knows about one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptFacts {
    /// The agent container.
    pub agent: ContainerFacts,
    /// `None` when no gate runs at this level.
    pub gate: Option<GateFacts>,
    /// The scope rules' verdict on the attempt's diff.
    pub scope: ScopeVerdict,
    /// How many red flags the diff raised.
    pub red_flags: usize,
    /// Signatures of the gate's failures (order does not matter).
    pub signatures: Vec<String>,
}

/// The limits the loop runs under.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Attempts allowed in all (the first included).
    pub attempts: u32,
    /// Whether the task's time budget has room for another attempt.
    pub time_left: bool,
    /// Whether a gate that failed only on flaky tests counts as green (policy).
    pub flaky_is_green: bool,
}

/// The judge's decision after an attempt.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Done: the task is finished in `state` for `reason`.
    Stop {
        /// The task's final state.
        state: State,
        /// Why it ends there.
        reason: Reason,
    },
    /// Run another attempt with the gate's failures as feedback.
    Retry,
}

fn stop(state: State, reason: Reason) -> Verdict {
    Verdict::Stop { state, reason }
}

/// Decide after the last attempt in `history` (which must not be empty).
pub fn judge(history: &[AttemptFacts], budget: Budget) -> Verdict {
    let Some(last) = history.last() else {
        return stop(State::Error, Reason::NoAttempt);
    };
    if let Some(v) = container_stop_abnormal(&last.agent) {
        return v;
    }
    if last.agent.not_runnable {
        return stop(State::NeedsHuman, Reason::AgentNotRunnable);
    }
    if let Some(v) = container_stop(&last.agent, Reason::AgentFailed) {
        return v;
    }
    if let Some(v) = scope_stop(last) {
        return v;
    }
    let Some(gate) = &last.gate else {
        return stop(State::Green, Reason::AgentFinished);
    };
    if let Some(v) = gate.containers.iter().find_map(container_stop_abnormal) {
        return v;
    }
    if gate.containers.iter().any(|c| c.not_runnable) {
        // Not a test failure: nothing the agent could fix, so no retry.
        return stop(State::NeedsHuman, Reason::GateNotRunnable);
    }
    if gate.containers.iter().all(ContainerFacts::ok) {
        return stop(State::Green, Reason::GatePassed);
    }
    if gate.flaky_only {
        // Only flaky tests failed: nothing for the agent to fix; the policy decides.
        return match budget.flaky_is_green {
            true => stop(State::Green, Reason::GatePassedFlaky),
            false => stop(State::NeedsHuman, Reason::FlakyGate),
        };
    }
    if gate.preexisting_only {
        // The base is red the same way: not this branch's doing (policy `report`).
        return stop(State::Green, Reason::GatePassedPreexisting);
    }
    after_red_gate(history, budget)
}

/// Cancel, timeout and OOM end the task whichever container hit them.
fn container_stop_abnormal(c: &ContainerFacts) -> Option<Verdict> {
    match (c.ended, c.oom_killed) {
        (Ended::Cancelled, _) => Some(stop(State::Cancelled, Reason::Cancelled)),
        (Ended::Timeout, _) => Some(stop(State::NeedsHuman, Reason::Timeout)),
        (_, true) => Some(stop(State::NeedsHuman, Reason::Oom)),
        _ => None,
    }
}

/// The agent must also exit 0; a crashed agent is not retried.
fn container_stop(c: &ContainerFacts, failed: Reason) -> Option<Verdict> {
    container_stop_abnormal(c)
        .or_else(|| (c.exit_code != Some(0)).then(|| stop(State::NeedsHuman, failed)))
}

/// Scope breaches and red flags, checked whatever the gate said.
fn scope_stop(last: &AttemptFacts) -> Option<Verdict> {
    match &last.scope {
        ScopeVerdict::Blocked { reason, .. } => return Some(stop(State::Blocked, *reason)),
        ScopeVerdict::NeedsHuman { reason, .. } if last.red_flags == 0 => {
            return Some(stop(State::NeedsHuman, *reason))
        }
        _ => {}
    }
    (last.red_flags > 0).then(|| stop(State::NeedsHuman, Reason::RedFlag))
}

/// The most specific reason wins: the same failures twice in a row is `no_progress` even when
/// that attempt was also the budget's last.
fn after_red_gate(history: &[AttemptFacts], budget: Budget) -> Verdict {
    if let [.., prev, last] = history {
        if same_failures(prev, last) {
            return stop(State::NeedsHuman, Reason::NoProgress);
        }
    }
    if history.len() as u32 >= budget.attempts {
        return stop(State::NeedsHuman, Reason::RetryBudgetExhausted);
    }
    if !budget.time_left {
        return stop(State::NeedsHuman, Reason::Timeout);
    }
    Verdict::Retry
}

fn same_failures(a: &AttemptFacts, b: &AttemptFacts) -> bool {
    let mut x = a.signatures.clone();
    let mut y = b.signatures.clone();
    x.sort();
    y.sort();
    !x.is_empty() && x == y
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: ContainerFacts = ContainerFacts {
        ended: Ended::Exited,
        exit_code: Some(0),
        oom_killed: false,
        not_runnable: false,
    };
    const FAIL: ContainerFacts = ContainerFacts {
        ended: Ended::Exited,
        exit_code: Some(1),
        oom_killed: false,
        not_runnable: false,
    };
    const NOT_RUNNABLE: ContainerFacts = ContainerFacts {
        ended: Ended::Exited,
        exit_code: Some(127),
        oom_killed: false,
        not_runnable: true,
    };
    const BUDGET: Budget = Budget {
        attempts: 3,
        time_left: true,
        flaky_is_green: false,
    };

    fn attempt(gate: ContainerFacts, sigs: &[&str]) -> AttemptFacts {
        AttemptFacts {
            agent: OK,
            gate: Some(GateFacts {
                containers: vec![gate],
                flaky_only: false,
                preexisting_only: false,
            }),
            scope: ScopeVerdict::Ok,
            red_flags: 0,
            signatures: sigs.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn reason(v: Verdict) -> String {
        match v {
            Verdict::Stop { state, reason } => format!("{}/{reason}", state.as_str()),
            Verdict::Retry => "retry".into(),
        }
    }

    #[test]
    fn green_gate_is_green() {
        assert_eq!(
            reason(judge(&[attempt(OK, &[])], BUDGET)),
            "green/gate_passed"
        );
    }

    #[test]
    fn red_gate_retries_then_exhausts_the_budget() {
        let h = vec![attempt(FAIL, &["a"]), attempt(FAIL, &["b"])];
        assert_eq!(reason(judge(&h[..1], BUDGET)), "retry");
        assert_eq!(reason(judge(&h, BUDGET)), "retry");
        let h3 = vec![
            attempt(FAIL, &["a"]),
            attempt(FAIL, &["b"]),
            attempt(FAIL, &["c"]),
        ];
        assert_eq!(
            reason(judge(&h3, BUDGET)),
            "needs_human/retry_budget_exhausted"
        );
    }

    #[test]
    fn same_failures_twice_is_no_progress() {
        let h = vec![attempt(FAIL, &["a", "b"]), attempt(FAIL, &["b", "a"])];
        assert_eq!(reason(judge(&h, BUDGET)), "needs_human/no_progress");
    }

    #[test]
    fn the_same_failures_in_the_budgets_last_attempt_are_no_progress() {
        let b = Budget {
            attempts: 2,
            ..BUDGET
        };
        let h = vec![attempt(FAIL, &["a"]), attempt(FAIL, &["a"])];
        assert_eq!(reason(judge(&h, b)), "needs_human/no_progress");
        let h = vec![attempt(FAIL, &["a"]), attempt(FAIL, &["b"])];
        assert_eq!(reason(judge(&h, b)), "needs_human/retry_budget_exhausted");
    }

    #[test]
    fn a_command_that_cannot_start_ends_the_task_at_once() {
        assert_eq!(
            reason(judge(&[attempt(NOT_RUNNABLE, &["x"])], BUDGET)),
            "needs_human/gate_not_runnable"
        );
        let mut a = attempt(OK, &[]);
        a.agent = NOT_RUNNABLE;
        assert_eq!(
            reason(judge(&[a], BUDGET)),
            "needs_human/agent_not_runnable"
        );
    }

    #[test]
    fn time_budget_spent_stops_with_timeout() {
        let b = Budget {
            time_left: false,
            ..BUDGET
        };
        assert_eq!(
            reason(judge(&[attempt(FAIL, &["a"])], b)),
            "needs_human/timeout"
        );
    }

    #[test]
    fn container_endings_map_to_reasons() {
        let t = ContainerFacts {
            ended: Ended::Timeout,
            exit_code: Some(137),
            oom_killed: false,
            not_runnable: false,
        };
        let o = ContainerFacts {
            ended: Ended::Exited,
            exit_code: Some(137),
            oom_killed: true,
            not_runnable: false,
        };
        let c = ContainerFacts {
            ended: Ended::Cancelled,
            exit_code: Some(143),
            oom_killed: false,
            not_runnable: false,
        };
        assert_eq!(
            reason(judge(&[attempt(t, &[])], BUDGET)),
            "needs_human/timeout"
        );
        assert_eq!(reason(judge(&[attempt(o, &[])], BUDGET)), "needs_human/oom");
        assert_eq!(
            reason(judge(&[attempt(c, &[])], BUDGET)),
            "cancelled/cancelled"
        );
        let mut a = attempt(OK, &[]);
        a.agent = o;
        assert_eq!(reason(judge(&[a.clone()], BUDGET)), "needs_human/oom");
        a.agent = FAIL;
        assert_eq!(reason(judge(&[a], BUDGET)), "needs_human/agent_failed");
    }

    #[test]
    fn scope_and_red_flags_beat_a_green_gate() {
        let mut a = attempt(OK, &[]);
        a.scope = ScopeVerdict::Blocked {
            reason: Reason::ForbiddenPath,
            paths: vec!["k.pem".into()],
        };
        assert_eq!(
            reason(judge(&[a.clone()], BUDGET)),
            "blocked/forbidden_path"
        );
        a.scope = ScopeVerdict::NeedsHuman {
            reason: Reason::ProtectedPath,
            paths: vec![".github/x".into()],
        };
        assert_eq!(
            reason(judge(&[a.clone()], BUDGET)),
            "needs_human/protected_path"
        );
        a.red_flags = 2;
        assert_eq!(reason(judge(&[a.clone()], BUDGET)), "needs_human/red_flag");
        a.scope = ScopeVerdict::Ok;
        assert_eq!(reason(judge(&[a], BUDGET)), "needs_human/red_flag");
    }

    #[test]
    fn no_gate_means_agent_finished_and_flaky_follows_policy() {
        let mut a = attempt(OK, &[]);
        a.gate = None;
        assert_eq!(reason(judge(&[a], BUDGET)), "green/agent_finished");
        let mut f = attempt(FAIL, &["x"]);
        f.gate.as_mut().unwrap().flaky_only = true;
        assert_eq!(
            reason(judge(&[f.clone()], BUDGET)),
            "needs_human/flaky_gate"
        );
        let b = Budget {
            flaky_is_green: true,
            ..BUDGET
        };
        assert_eq!(reason(judge(&[f], b)), "green/gate_passed_flaky");
    }

    #[test]
    fn only_preexisting_failures_are_green_but_not_a_red_flag() {
        let mut p = attempt(FAIL, &[]);
        p.gate.as_mut().unwrap().preexisting_only = true;
        assert_eq!(
            reason(judge(&[p.clone()], BUDGET)),
            "green/gate_passed_preexisting"
        );
        p.red_flags = 1;
        assert_eq!(reason(judge(&[p], BUDGET)), "needs_human/red_flag");
    }
}
