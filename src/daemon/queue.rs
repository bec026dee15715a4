//! The dispatcher's decisions, pure: how many queued tasks to start, what to cancel, when to
//! exit. The async loop in `dispatch` feeds it events and carries out the actions; the queue
//! itself (FIFO order, durability) is the store's.

use std::collections::BTreeSet;

/// Something the dispatcher learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Something may have been queued (a submission, start-up, a timer).
    Wake,
    /// The store handed these tasks to workers.
    Started(Vec<String>),
    /// A worker ended.
    Finished(String),
    /// A client asked to cancel this task.
    Cancel(String),
    /// SIGTERM/SIGINT: stop intake, then drain (`true`) or cancel. A second one cancels.
    Shutdown { drain: bool },
    /// The drain bound passed.
    DrainTimeout,
    /// The cancel bound passed: stop waiting for workers.
    GiveUp,
}

/// What the dispatcher must do next. `None` is explicit so no event goes unanswered.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    /// Claim up to this many of the oldest queued tasks and start them.
    Claim(usize),
    /// Cancel these running tasks (and arm the cancel bound when stopping).
    Cancel(Vec<String>),
    /// The task is not running here: cancel it in the store if it is still queued.
    CancelQueued(String),
    /// Arm the drain bound.
    Drain,
    /// Nothing left to wait for.
    Exit,
}

/// Where the dispatcher is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Running,
    Draining,
    Cancelling,
}

/// The running set and the mode.
#[derive(Debug)]
pub struct Queue {
    limit: usize,
    running: BTreeSet<String>,
    mode: Mode,
}

impl Queue {
    pub fn new(limit: usize) -> Queue {
        Queue {
            limit: limit.max(1),
            running: BTreeSet::new(),
            mode: Mode::Running,
        }
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The transition function.
    pub fn handle(&mut self, ev: Event) -> Action {
        match ev {
            Event::Wake => self.fill(),
            Event::Started(ids) => {
                self.running.extend(ids);
                Action::None
            }
            Event::Finished(id) => {
                self.running.remove(&id);
                self.after_finish()
            }
            Event::Cancel(id) if self.running.contains(&id) => Action::Cancel(vec![id]),
            Event::Cancel(id) => Action::CancelQueued(id),
            Event::Shutdown { drain } => self.shutdown(drain),
            Event::DrainTimeout if self.mode == Mode::Draining => self.cancel_all(),
            Event::DrainTimeout => Action::None,
            Event::GiveUp if self.mode == Mode::Running => Action::None,
            Event::GiveUp => Action::Exit,
        }
    }

    fn fill(&self) -> Action {
        let free = self.limit.saturating_sub(self.running.len());
        if self.mode != Mode::Running || free == 0 {
            return Action::None;
        }
        Action::Claim(free)
    }

    fn after_finish(&self) -> Action {
        match self.mode {
            Mode::Running => self.fill(),
            _ if self.running.is_empty() => Action::Exit,
            _ => Action::None,
        }
    }

    fn shutdown(&mut self, drain: bool) -> Action {
        if self.mode != Mode::Running {
            return self.cancel_all(); // a second signal: stop waiting politely
        }
        if self.running.is_empty() {
            self.mode = Mode::Cancelling;
            return Action::Exit;
        }
        if drain {
            self.mode = Mode::Draining;
            return Action::Drain;
        }
        self.cancel_all()
    }

    fn cancel_all(&mut self) -> Action {
        self.mode = Mode::Cancelling;
        Action::Cancel(self.running.iter().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fills_up_to_the_limit() {
        let mut q = Queue::new(2);
        assert_eq!(q.handle(Event::Wake), Action::Claim(2));
        assert_eq!(q.handle(Event::Started(ids(&["a"]))), Action::None);
        assert_eq!(q.handle(Event::Wake), Action::Claim(1));
        let _ = q.handle(Event::Started(ids(&["b"])));
        assert_eq!(q.handle(Event::Wake), Action::None);
        assert_eq!(q.handle(Event::Finished("a".into())), Action::Claim(1));
        assert_eq!(q.running(), 1);
    }

    #[test]
    fn a_zero_limit_is_one() {
        let mut q = Queue::new(0);
        assert_eq!(q.handle(Event::Wake), Action::Claim(1));
    }

    #[test]
    fn cancel_goes_to_the_worker_or_the_store() {
        let mut q = Queue::new(2);
        let _ = q.handle(Event::Started(ids(&["a"])));
        assert_eq!(
            q.handle(Event::Cancel("a".into())),
            Action::Cancel(ids(&["a"]))
        );
        assert_eq!(
            q.handle(Event::Cancel("b".into())),
            Action::CancelQueued("b".into())
        );
    }

    #[test]
    fn shutdown_with_nothing_running_exits() {
        let mut q = Queue::new(2);
        assert_eq!(q.handle(Event::Shutdown { drain: true }), Action::Exit);
        assert_eq!(
            q.handle(Event::Wake),
            Action::None,
            "no intake after shutdown"
        );
    }

    #[test]
    fn shutdown_cancels_then_exits_when_workers_end() {
        let mut q = Queue::new(2);
        let _ = q.handle(Event::Started(ids(&["a", "b"])));
        assert_eq!(
            q.handle(Event::Shutdown { drain: false }),
            Action::Cancel(ids(&["a", "b"]))
        );
        assert_eq!(q.handle(Event::Finished("a".into())), Action::None);
        assert_eq!(q.handle(Event::Wake), Action::None);
        assert_eq!(q.handle(Event::Finished("b".into())), Action::Exit);
    }

    #[test]
    fn drain_waits_then_cancels_at_the_bound() {
        let mut q = Queue::new(2);
        let _ = q.handle(Event::Started(ids(&["a", "b"])));
        assert_eq!(q.handle(Event::Shutdown { drain: true }), Action::Drain);
        assert_eq!(q.mode(), Mode::Draining);
        assert_eq!(
            q.handle(Event::Finished("a".into())),
            Action::None,
            "no new claims"
        );
        assert_eq!(q.handle(Event::DrainTimeout), Action::Cancel(ids(&["b"])));
        assert_eq!(q.handle(Event::GiveUp), Action::Exit);
    }

    #[test]
    fn a_second_signal_cancels_a_drain() {
        let mut q = Queue::new(1);
        let _ = q.handle(Event::Started(ids(&["a"])));
        assert_eq!(q.handle(Event::Shutdown { drain: true }), Action::Drain);
        assert_eq!(
            q.handle(Event::Shutdown { drain: true }),
            Action::Cancel(ids(&["a"]))
        );
    }

    #[test]
    fn timers_are_ignored_while_running() {
        let mut q = Queue::new(1);
        assert_eq!(q.handle(Event::DrainTimeout), Action::None);
        assert_eq!(q.handle(Event::GiveUp), Action::None);
    }
}
