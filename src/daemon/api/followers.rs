//! How many event follow streams (`logs -f`, `GET /v1/tasks/{id}/events?follow=1`) may be open:
//! each holds a store reader woken on every stored event, so their number is bounded, in all
//! and per task (`[api] max_followers`, `max_followers_per_task`; #10 item 9). One stream
//! buffers at most a few pages of events: it is pulled by the client's reads (a channel of four
//! pages, then hyper's bounded write buffer), so a slow reader makes its own stream lag, never
//! the daemon's memory grow.

use std::collections::HashMap;
use std::sync::Mutex;

/// Open follow streams, counted.
#[derive(Debug)]
pub struct Followers {
    max: usize,
    per_task: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_task: HashMap<String, usize>,
}

/// Why a follow stream was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Full {
    /// All tasks' streams are at `api.max_followers`, this many.
    Total(usize),
    /// This task's streams are at `api.max_followers_per_task`, this many.
    Task(usize),
}

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Full::Total(n) => write!(f, "{n} event streams are being followed (api.max_followers); try again later"),
            Full::Task(n) => write!(f, "this task's events are followed by {n} streams already (api.max_followers_per_task); try again later"),
        }
    }
}

impl Followers {
    /// Room for `max` streams in all and `per_task` per task.
    pub fn new(max: usize, per_task: usize) -> Followers {
        Followers {
            max,
            per_task,
            counts: Mutex::default(),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Count one more follower of `task`, or say which bound it would pass.
    pub fn take(&self, task: &str) -> Result<(), Full> {
        let mut c = self.counts();
        if c.total >= self.max {
            return Err(Full::Total(self.max));
        }
        let n = c.by_task.get(task).copied().unwrap_or(0);
        if n >= self.per_task {
            return Err(Full::Task(self.per_task));
        }
        c.total += 1;
        c.by_task.insert(task.to_string(), n + 1);
        Ok(())
    }

    /// A follower of `task` ended.
    pub fn give_back(&self, task: &str) {
        let mut c = self.counts();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_task.get_mut(task) {
            *n -= 1;
            if *n == 0 {
                c.by_task.remove(task);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_per_task_and_in_all_and_given_back() {
        let f = Followers::new(3, 2);
        assert_eq!(f.take("a"), Ok(()));
        assert_eq!(f.take("a"), Ok(()));
        assert_eq!(f.take("a"), Err(Full::Task(2)));
        assert_eq!(f.take("b"), Ok(()));
        assert_eq!(f.take("c"), Err(Full::Total(3)));
        f.give_back("a");
        assert_eq!(f.take("c"), Ok(()));
        f.give_back("a");
        f.give_back("b");
        f.give_back("c");
        assert!(f.counts().by_task.is_empty());
        assert_eq!(f.counts().total, 0);
    }
}
