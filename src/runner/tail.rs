//! After the judge: the tail of the lifecycle as one pipeline, whose order is in one function
//! ([`TaskRun::tail`]) and whose final state comes from one rule ([`settle`]).
//!
//! The work steps run in the order of [`WORK`], each saying [`Flow::Continue`], [`Flow::Note`]
//! (a message for the end), [`Flow::Ends`] (how the task ends now; the next steps still run and
//! see it) or [`Flow::Stop`] (how the task ends, and the remaining work steps are skipped):
//! 1. risk: a green change classified `high` at a level with `stop_high_risk` stops
//!    `needs_human` / `high_risk` (`risk_step`);
//! 2. files: `diff.patch` and `out/`;
//! 3. branch: the local branch and `branch.bundle` (L2+, a non-empty change, not `error`);
//! 4. evidence: `evidence.md` (also the draft PR's body);
//! 5. cancel: a green task whose cancel has fired stops `cancelled`, just before the push;
//! 6. push: L3+ and green only (`push_step`); the push itself looks at the cancel again before
//!    the token is minted and once more before git pushes anything.
//!
//! A cancel does not cut the export short: a task cancelled in its tail keeps its diff, `out/`,
//! branch, evidence, logs and summary, like one cancelled during an attempt. It stops what
//! acts outside the host: the push and the wait for CI.
//!
//! The risk step's end still lets the export run (a change stopped for review keeps its diff,
//! branch and evidence); the push then declines, as it does for anything not green. A failed
//! export, the cancel point and a failed push stop. The closing steps always run, in this
//! order ([`TaskRun::close`]): the secret scan (every artifact, for every secret the task held;
//! a hit ends the task `error`, which beats any earlier end), the evidence again if what it
//! shows changed, then `summary.json` and the bundle. Nothing else writes the bundle, so no bundle is ever
//! written before the scan.
//!
//! Last, for a green task pushed to a remote with `[remote.ci]`: the wait for CI (`ci_step`).
//! Its end is one more word, settled by the same rule and closed the same way; or CI's failures
//! go back to the agent as feedback, and after those attempts the tail runs again.

use tokio_util::sync::CancellationToken;

use super::ci_step::CiNext;
use super::state_json;
use super::task::TaskRun;
use crate::artifacts::{Feedback, State, Summary};
use crate::vocab::Reason;

/// How the task ends: its state, the reason code and the message for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct End {
    pub state: State,
    pub reason: Reason,
    pub message: Option<String>,
}

impl End {
    /// An end with these parts.
    pub fn new(state: State, reason: Reason, message: Option<String>) -> End {
        End {
            state,
            reason,
            message,
        }
    }
}

/// What one step of the tail says about the end.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Flow {
    /// Nothing to change: the next step runs.
    Continue,
    /// The end keeps its state and reason and gets this message (the push's "pushed … to …").
    Note(String),
    /// The task now ends so; the next steps still run, and see this end.
    Ends(End),
    /// The task ends so; the remaining work steps are skipped, the closing steps still run.
    Stop(End),
}

/// The tail's work steps (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Risk,
    Files,
    Branch,
    Evidence,
    CancelBeforePush,
    Push,
}

/// The work steps, in the only order they run.
pub(super) const WORK: [Step; 6] = [
    Step::Risk,
    Step::Files,
    Step::Branch,
    Step::Evidence,
    Step::CancelBeforePush,
    Step::Push,
];

/// The single precedence rule for the final state: the judge's end, then each step's word in
/// the order the steps ran. An end or a stop replaces the whole end, so a later one beats an
/// earlier one (the secret scan speaks after every work step: its end beats all of theirs); a
/// note replaces only the message, and only while no step has changed the end.
pub(super) fn settle(judged: &End, words: &[Flow]) -> End {
    let mut end = judged.clone();
    let mut stopped = false;
    for word in words {
        match word {
            Flow::Continue => {}
            Flow::Note(m) if !stopped => end.message = Some(m.clone()),
            Flow::Note(_) => {}
            Flow::Ends(e) | Flow::Stop(e) => {
                end = e.clone();
                stopped = true;
            }
        }
    }
    end
}

/// What the export produced so far: the summary's branch, commit and push, and the evidence.
#[derive(Debug, Default)]
pub(super) struct Exported {
    pub branch: Option<String>,
    pub commit: Option<String>,
    /// The remote has the branch (pushed now or by an earlier run).
    pub pushed: bool,
    /// The evidence as written (the draft PR's body), with the state and the number of CI
    /// rounds it shows.
    pub evidence: Option<(String, State, usize)>,
}

/// One pass of the tail: the judge's end, the steps' words so far, what was exported.
pub(super) struct Tail {
    judged: End,
    words: Vec<Flow>,
    pub exported: Exported,
}

impl Tail {
    fn new(judged: End) -> Tail {
        Tail {
            judged,
            words: Vec::new(),
            exported: Exported::default(),
        }
    }

    /// The end as the words so far settle it.
    pub fn end(&self) -> End {
        settle(&self.judged, &self.words)
    }

    fn stopped(&self) -> bool {
        self.words.iter().any(|w| matches!(w, Flow::Stop(_)))
    }

    fn say(&mut self, word: Flow) {
        self.words.push(word);
    }
}

/// How one pass of the tail ended.
enum Next {
    /// The task is over; its summary is written.
    Done(Box<Summary>),
    /// CI failed and the judge wants another attempt, with CI's failures as feedback.
    Retry(Feedback),
}

impl TaskRun {
    /// Run attempts until the judge stops, then the tail; again while CI sends feedback.
    /// Always returns a summary (written).
    pub async fn execute(&mut self, cancel: CancellationToken) -> Summary {
        self.start_baseline(&cancel).await;
        let mut feedback = None;
        loop {
            let judged = self.attempt_loop(&cancel, feedback.take()).await;
            match self.tail(judged, &cancel).await {
                Next::Done(summary) => return *summary,
                Next::Retry(f) => feedback = Some(f),
            }
        }
    }

    /// The tail, in its only order (see the module doc).
    async fn tail(&mut self, judged: End, cancel: &CancellationToken) -> Next {
        let mut t = Tail::new(judged);
        for step in WORK {
            if t.stopped() {
                break;
            }
            let word = self.work(step, &mut t, cancel).await;
            t.say(word);
        }
        let ci = self.ci_follows(&t);
        let summary = self.close(&mut t, ci.is_none());
        let Some((remote, cfg, commit)) = ci else {
            return Next::Done(Box::new(summary));
        };
        let reason = t.end().reason;
        match self.ci_wait(&remote, &cfg, &commit, reason, cancel).await {
            CiNext::Retry(feedback) => Next::Retry(feedback),
            CiNext::End(end) => {
                t.say(Flow::Ends(end));
                Next::Done(Box::new(self.close(&mut t, true)))
            }
        }
    }

    async fn work(&mut self, step: Step, t: &mut Tail, cancel: &CancellationToken) -> Flow {
        let end = t.end();
        match step {
            Step::Risk => self.high_risk_stop(&end),
            Step::Files => self.export_files(),
            Step::Branch => self.export_branch(&end, &mut t.exported).await,
            Step::Evidence => self.write_evidence(&end, &mut t.exported),
            Step::CancelBeforePush => cancel_point(cancel, &end, "the push"),
            Step::Push => self.push_step(&end, &mut t.exported, cancel).await,
        }
    }

    /// The closing steps, always, in this order: the secret scan, the evidence again if what
    /// it shows changed, then the `finished` event (when nothing follows), `summary.json` and
    /// the bundle. This is the only place the summary and the bundle are written.
    fn close(&mut self, t: &mut Tail, last: bool) -> Summary {
        let held = std::mem::take(&mut self.ci.held);
        let (scan, scanned) = self.scan_for_secrets(&held.redactor);
        t.say(scan);
        let end = t.end();
        let summary = self.summary(&end, &t.exported);
        let shows = (end.state, self.ci.rounds.len());
        if let Some((_, state, rounds)) = &t.exported.evidence {
            if (*state, *rounds) != shows {
                self.rewrite_evidence(&summary, &held.redactor);
            }
        }
        self.ctx.progress.phase("export", &summary.artifacts);
        if last {
            self.events
                .emit("finished", state_json(end.state, end.reason));
        }
        self.write_summary_and_bundle(&summary, &held.redactor, scanned);
        self.ci.held = held;
        summary
    }
}

/// A green task whose cancel has fired stops here: what comes next (the push) does not
/// happen, and it ends `cancelled` with its artifacts written. A task that is not green has
/// nothing left to stop, and keeps its own end.
fn cancel_point(cancel: &CancellationToken, end: &End, before: &str) -> Flow {
    if !cancel.is_cancelled() || end.state != State::Green {
        return Flow::Continue;
    }
    Flow::Stop(End::new(
        State::Cancelled,
        Reason::Cancelled,
        Some(format!(
            "cancelled after the gate passed, before {before}; nothing was pushed"
        )),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn green() -> End {
        End::new(State::Green, Reason::GatePassed, None)
    }

    fn stop(state: State, reason: Reason) -> Flow {
        Flow::Stop(End::new(state, reason, Some(reason.as_str().into())))
    }

    #[test]
    fn the_judges_end_stands_when_no_step_speaks() {
        assert_eq!(settle(&green(), &[]), green());
        assert_eq!(settle(&green(), &[Flow::Continue, Flow::Continue]), green());
    }

    #[test]
    fn a_note_changes_only_the_message_and_only_before_a_stop() {
        let noted = settle(&green(), &[Flow::Note("pushed".into())]);
        assert_eq!(
            noted,
            End::new(State::Green, Reason::GatePassed, Some("pushed".into()))
        );
        let after = settle(
            &green(),
            &[
                stop(State::Error, Reason::PushFailed),
                Flow::Note("pushed".into()),
            ],
        );
        assert_eq!(after.message.as_deref(), Some("push_failed"));
    }

    #[test]
    fn a_later_stop_beats_an_earlier_one() {
        let secret = End::new(State::Error, Reason::SecretInArtifact, None);
        let words = [
            stop(State::Error, Reason::PushFailed),
            Flow::Continue,
            Flow::Ends(secret),
        ];
        let end = settle(&green(), &words);
        assert_eq!(
            (end.state, end.reason),
            (State::Error, Reason::SecretInArtifact)
        );
        let high = End::new(State::NeedsHuman, Reason::HighRisk, Some("high".into()));
        let risk = settle(
            &green(),
            &[Flow::Ends(high.clone()), Flow::Note("not pushed".into())],
        );
        assert_eq!(risk, high, "a note after an end changes nothing");
    }

    #[test]
    fn the_work_steps_keep_their_order_and_the_cancel_comes_just_before_the_push() {
        let at = |s: Step| WORK.iter().position(|w| *w == s).unwrap_or(usize::MAX);
        assert!(at(Step::Risk) < at(Step::Files), "{WORK:?}");
        assert!(at(Step::Branch) < at(Step::Evidence), "{WORK:?}");
        assert_eq!(at(Step::CancelBeforePush) + 1, at(Step::Push), "{WORK:?}");
        assert_eq!(
            WORK.last(),
            Some(&Step::Push),
            "the push is the last work step"
        );
    }

    #[test]
    fn a_cancel_stops_a_green_task_and_leaves_any_other_end_alone() {
        let cancel = CancellationToken::new();
        assert_eq!(cancel_point(&cancel, &green(), "the push"), Flow::Continue);
        cancel.cancel();
        match cancel_point(&cancel, &green(), "the push") {
            Flow::Stop(e) => assert_eq!((e.state, e.reason), (State::Cancelled, Reason::Cancelled)),
            other => panic!("expected a stop, got {other:?}"),
        }
        let red = End::new(State::NeedsHuman, Reason::RetryBudgetExhausted, None);
        assert_eq!(cancel_point(&cancel, &red, "the push"), Flow::Continue);
    }
}
