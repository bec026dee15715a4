//! A task's lifecycle in the queue, as a pure transition function.
//!
//! `queued → running → <final>`; a queued task can be cancelled before it starts; a task left
//! `running` by a daemon that died is either re-queued or ends `error` / `runner_restart`.
//! Final states never change.

use crate::vocab::State;

/// Where a task is in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a worker.
    Queued,
    /// A worker is running it.
    Running,
    /// Ended in a final state.
    Done(State),
}

/// Every final state, in a stable order (metrics, tables).
pub const FINAL_STATES: [State; 6] = [
    State::Green,
    State::NeedsHuman,
    State::Blocked,
    State::Refused,
    State::Cancelled,
    State::Error,
];

impl Phase {
    /// The name stored and shown (`queued`, `running`, or the final state).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Running => "running",
            Phase::Done(s) => s.as_str(),
        }
    }

    /// The phase named `text`, if there is one.
    pub fn parse(text: &str) -> Option<Phase> {
        match text {
            "queued" => Some(Phase::Queued),
            "running" => Some(Phase::Running),
            _ => FINAL_STATES
                .into_iter()
                .find(|s| s.as_str() == text)
                .map(Phase::Done),
        }
    }

    /// Whether the task has ended (a final phase never changes).
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Done(_))
    }
}

/// Something that happens to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// A worker takes it.
    Claim,
    /// Its run ended in this state.
    Finish(State),
    /// Cancelled before a worker took it.
    CancelQueued,
    /// The daemon that ran it is gone; re-queue it or end it.
    Interrupted {
        /// Whether it goes back to the queue (else it ends `error`).
        requeue: bool,
    },
}

/// The phase after `t`, or `None` if `t` is not allowed from `from`.
pub fn next(from: Phase, t: Transition) -> Option<Phase> {
    match (from, t) {
        (Phase::Queued, Transition::Claim) => Some(Phase::Running),
        (Phase::Queued, Transition::CancelQueued) => Some(Phase::Done(State::Cancelled)),
        (Phase::Running, Transition::Finish(s)) => Some(Phase::Done(s)),
        (Phase::Running, Transition::Interrupted { requeue: true }) => Some(Phase::Queued),
        (Phase::Running, Transition::Interrupted { requeue: false }) => {
            Some(Phase::Done(State::Error))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path() {
        let running = next(Phase::Queued, Transition::Claim).unwrap();
        assert_eq!(running, Phase::Running);
        let done = next(running, Transition::Finish(State::Green)).unwrap();
        assert_eq!(done, Phase::Done(State::Green));
        assert!(done.is_final());
    }

    #[test]
    fn final_states_never_change() {
        for s in FINAL_STATES {
            for t in [
                Transition::Claim,
                Transition::Finish(State::Green),
                Transition::CancelQueued,
                Transition::Interrupted { requeue: true },
                Transition::Interrupted { requeue: false },
            ] {
                assert_eq!(next(Phase::Done(s), t), None, "{s:?} {t:?}");
            }
        }
    }

    #[test]
    fn only_queued_tasks_are_cancelled_directly() {
        assert_eq!(
            next(Phase::Queued, Transition::CancelQueued),
            Some(Phase::Done(State::Cancelled))
        );
        assert_eq!(next(Phase::Running, Transition::CancelQueued), None);
        assert_eq!(next(Phase::Queued, Transition::Finish(State::Green)), None);
        assert_eq!(next(Phase::Running, Transition::Claim), None);
    }

    #[test]
    fn interrupted_tasks_are_requeued_or_errored() {
        let requeue = Transition::Interrupted { requeue: true };
        let end = Transition::Interrupted { requeue: false };
        assert_eq!(next(Phase::Running, requeue), Some(Phase::Queued));
        assert_eq!(next(Phase::Running, end), Some(Phase::Done(State::Error)));
        assert_eq!(next(Phase::Queued, end), None);
    }

    #[test]
    fn phases_round_trip_through_text() {
        let all = [Phase::Queued, Phase::Running]
            .into_iter()
            .chain(FINAL_STATES.map(Phase::Done));
        for p in all {
            assert_eq!(Phase::parse(p.as_str()), Some(p));
        }
        assert_eq!(Phase::parse("done"), None);
    }
}
