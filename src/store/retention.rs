//! Which finished tasks to forget: pure, with the clock passed in.

use std::time::Duration;

/// How long finished tasks (store rows and artifacts) are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Forget tasks that finished longer ago than this.
    pub max_age: Option<Duration>,
    /// Keep at most this many finished tasks (the newest).
    pub max_tasks: Option<usize>,
}

/// A finished task as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The task's id.
    pub id: String,
    /// When it finished (Unix ms).
    pub finished_at_ms: i64,
}

/// The ids to delete at `now_ms`, oldest first. Queued and running tasks are never passed in.
pub fn to_delete(finished: &[Finished], now_ms: i64, r: &Retention) -> Vec<String> {
    let mut newest_first: Vec<&Finished> = finished.iter().collect();
    newest_first.sort_by(|a, b| {
        b.finished_at_ms
            .cmp(&a.finished_at_ms)
            .then(b.id.cmp(&a.id))
    });
    let cutoff = r
        .max_age
        .map(|age| now_ms.saturating_sub(age.as_millis().min(i64::MAX as u128) as i64));
    let keep = r.max_tasks.unwrap_or(usize::MAX);
    let mut out: Vec<String> = newest_first
        .iter()
        .enumerate()
        .filter(|(i, f)| *i >= keep || cutoff.is_some_and(|c| f.finished_at_ms < c))
        .map(|(_, f)| f.id.clone())
        .collect();
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(id: &str, at: i64) -> Finished {
        Finished {
            id: id.into(),
            finished_at_ms: at,
        }
    }

    const DAY: i64 = 86_400_000;

    #[test]
    fn keeps_everything_without_limits() {
        let all = [f("a", 0), f("b", DAY)];
        assert!(to_delete(&all, 100 * DAY, &Retention::default()).is_empty());
    }

    #[test]
    fn deletes_by_age() {
        let r = Retention {
            max_age: Some(Duration::from_secs(7 * 86_400)),
            max_tasks: None,
        };
        let all = [f("old", 0), f("edge", 3 * DAY), f("new", 9 * DAY)];
        assert_eq!(to_delete(&all, 10 * DAY, &r), vec!["old".to_string()]);
    }

    #[test]
    fn keeps_the_newest_by_count() {
        let r = Retention {
            max_age: None,
            max_tasks: Some(2),
        };
        let all = [f("c", 3), f("a", 1), f("d", 4), f("b", 2)];
        assert_eq!(to_delete(&all, 5, &r), vec!["a".to_string(), "b".into()]);
    }

    #[test]
    fn both_limits_apply() {
        let r = Retention {
            max_age: Some(Duration::from_millis(10)),
            max_tasks: Some(3),
        };
        let all = [f("a", 1), f("b", 95), f("c", 96), f("d", 97), f("e", 98)];
        assert_eq!(to_delete(&all, 100, &r), vec!["a".to_string(), "b".into()]);
    }
}
