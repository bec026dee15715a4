//! What the task's attempts left: one entry per attempt (its record for `summary.json`, the
//! facts the judge reads, the tree of its result), appended in one call that takes the whole
//! attempt, so the record, the facts and the tree can never disagree on which attempt they are.
//! Besides the entries: what the next attempt and the export need (the last diff, the failures
//! fed back, the failures already confirmed deterministic, why a command could not start).

use std::collections::BTreeSet;

use super::containers::Ran;
use super::gate_run::GateResult;
use crate::artifacts::{AttemptRecord, AttemptVerdict};
use crate::gate::{Failure, RedFlag};
use crate::judge::{AttemptFacts, ContainerFacts, GateFacts, Verdict};
use crate::policy::ScopeVerdict;
use crate::vocab::State;
use crate::workspace::Diff;

/// One finished attempt as the lifecycle keeps it.
pub(super) struct Attempt {
    /// What `summary.json` says about it (its verdict is set once the judge has spoken).
    pub record: AttemptRecord,
    /// What the judge reads.
    pub facts: AttemptFacts,
    /// The tree of its result, to compare attempts with each other.
    pub tree: String,
}

/// Everything one attempt produced, handed to [`History::append`] at once.
pub(super) struct AttemptResult {
    pub agent: Ran,
    /// `None` when the gate did not run (the agent failed, or the level runs none).
    pub gate: Option<GateResult>,
    pub diff: Diff,
    pub scope: ScopeVerdict,
    pub red_flags: Vec<RedFlag>,
    /// The tree of the attempt's result.
    pub tree: String,
}

/// The attempts so far and what they leave for the next one.
#[derive(Default)]
pub(super) struct History {
    attempts: Vec<Attempt>,
    /// The failures that blocked the last attempt: the next attempt's feedback.
    last_failures: Vec<Failure>,
    /// The diff of the last attempt's result from the base.
    last_diff: Diff,
    /// Failure signatures that failed every flaky-check rerun: not rerun in later attempts.
    deterministic: BTreeSet<String>,
    /// What the last container that could not start said (the stop's message).
    not_runnable: Option<String>,
}

impl History {
    /// The number the next attempt gets (the first is 1).
    pub fn next_n(&self) -> u32 {
        self.attempts.len() as u32 + 1
    }

    /// How many attempts ran.
    pub fn len(&self) -> usize {
        self.attempts.len()
    }

    /// The last attempt, if one ran.
    pub fn last(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    /// The judge's input: the facts of every attempt, in order.
    pub fn facts(&self) -> Vec<AttemptFacts> {
        self.attempts.iter().map(|a| a.facts.clone()).collect()
    }

    /// `summary.json`'s `attempts`.
    pub fn records(&self) -> Vec<AttemptRecord> {
        self.attempts.iter().map(|a| a.record.clone()).collect()
    }

    /// The failures fed back to the next attempt.
    pub fn last_failures(&self) -> &[Failure] {
        &self.last_failures
    }

    /// The diff of the last attempt's result (empty before the first).
    pub fn last_diff(&self) -> &Diff {
        &self.last_diff
    }

    /// Whether `signature` failed every rerun of an earlier flaky check.
    pub fn is_deterministic(&self, signature: &str) -> bool {
        self.deterministic.contains(signature)
    }

    /// These signatures failed every rerun of a flaky check: later attempts do not rerun them.
    pub fn confirm_deterministic(&mut self, signatures: impl IntoIterator<Item = String>) {
        self.deterministic.extend(signatures);
    }

    /// A container of the attempt could not start; `message` says why.
    pub fn set_not_runnable(&mut self, message: String) {
        self.not_runnable = Some(message);
    }

    /// Why the last container that could not start did not (once).
    pub fn take_not_runnable(&mut self) -> Option<String> {
        self.not_runnable.take()
    }

    /// The judge's verdict on the last attempt.
    pub fn set_verdict(&mut self, verdict: AttemptVerdict) {
        if let Some(a) = self.attempts.last_mut() {
            a.record.verdict = verdict;
        }
    }

    /// The forge's CI failed on the last attempt's commit: its result stands for that attempt's
    /// gate when the judge is asked again.
    pub fn set_ci_gate(&mut self, gate: GateFacts, signatures: Vec<String>) {
        if let Some(a) = self.attempts.last_mut() {
            a.facts.gate = Some(gate);
            a.facts.signatures = signatures;
        }
    }

    /// Append attempt [`History::next_n`] from everything it produced; returns its record.
    /// Its verdict is `stop` until [`History::set_verdict`].
    pub fn append(&mut self, r: AttemptResult) -> &AttemptRecord {
        let n = self.next_n();
        let gate = r.gate;
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
        let facts = AttemptFacts {
            agent: r.agent.facts,
            gate: gate_facts,
            scope: r.scope.clone(),
            red_flags: r.red_flags.len(),
            signatures,
        };
        let tests = gate.as_ref().and_then(GateResult::test_counts);
        let record = AttemptRecord {
            n,
            agent: Some(r.agent.record),
            gate: gate
                .into_iter()
                .flat_map(|g| g.runs.into_iter().chain(g.reruns))
                .map(|g| g.record)
                .collect(),
            gate_passed,
            tests,
            failures,
            flaky,
            red_flags: r.red_flags,
            scope: r.scope,
            verdict: AttemptVerdict::Stop,
            files_changed: r.diff.files.len(),
        };
        // Only what blocks is fed back: under `report`, failures the base has too are not the
        // agent's to fix.
        self.last_failures = blocking;
        self.last_diff = r.diff;
        self.attempts.push(Attempt {
            record,
            facts,
            tree: r.tree,
        });
        &self.attempts[self.attempts.len() - 1].record
    }
}

/// The name `summary.json` gives the judge's verdict.
pub(super) fn verdict_name(v: &Verdict) -> AttemptVerdict {
    match v {
        Verdict::Retry => AttemptVerdict::Retry,
        Verdict::Stop {
            state: State::Green,
            ..
        } => AttemptVerdict::Green,
        Verdict::Stop { .. } => AttemptVerdict::Stop,
    }
}
