//! Orphan containers on an engine shared by several runners of one queue. Each runner labels a
//! task's containers `airlock.session=<runner>@<epoch>`; a container is removed only when no
//! runner holds a live lease on its task at that epoch, so survivors clean up after a dead
//! runner and nobody touches a live task. Only containers of this queue's runners (recorded in
//! its `sessions`) are considered: another queue's runners, `airlock run` and daemons of a
//! local store may share the engine and are left to their own recovery.

use std::collections::HashSet;

use super::recover::Managed;

/// The session label of a task's containers on a shared queue.
pub fn session_label(runner: &str, epoch: i64) -> String {
    format!("{runner}@{epoch}")
}

/// `(runner, epoch)` of a shared-queue session label.
pub fn parse_label(label: &str) -> Option<(&str, i64)> {
    let (runner, epoch) = label.rsplit_once('@')?;
    let epoch = epoch.parse().ok().filter(|e| *e > 0)?;
    (!runner.is_empty()).then_some((runner, epoch))
}

/// The containers to remove: containers of this queue's `runners` whose `(task, epoch)` holds
/// no live lease. `live` must be read after `all` was listed (a task claimed in between has no
/// container in `all` yet).
pub fn orphans(
    all: &[Managed],
    runners: &HashSet<String>,
    live: &HashSet<(String, i64)>,
) -> Vec<String> {
    all.iter()
        .filter(|c| {
            let Some((runner, epoch)) = c.session.as_deref().and_then(parse_label) else {
                return false;
            };
            if !runners.contains(runner) {
                return false;
            }
            c.task
                .as_ref()
                .is_some_and(|t| !live.contains(&(t.clone(), epoch)))
        })
        .map(|c| c.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, session: &str, task: &str) -> Managed {
        Managed {
            id: id.into(),
            session: Some(session.into()),
            task: Some(task.into()),
            locked: true,
            live: false,
        }
    }

    #[test]
    fn labels_round_trip() {
        assert_eq!(
            parse_label(&session_label("daemon-ab12", 3)),
            Some(("daemon-ab12", 3))
        );
        assert_eq!(parse_label("daemon-ab12"), None);
        assert_eq!(parse_label("run-x@"), None);
        assert_eq!(parse_label("@4"), None);
        assert_eq!(parse_label("d@0"), None);
    }

    #[test]
    fn only_containers_without_a_live_lease_at_their_epoch_go() {
        let all = [
            m("live", "daemon-a@2", "t1"),
            m("stale-epoch", "daemon-b@1", "t1"),
            m("dead", "daemon-b@1", "t2"),
            m("local", "daemon-c", "t3"),
            m("run", "run-abc", "t4"),
            m("other-queue", "daemon-z@1", "t5"),
        ];
        let live: HashSet<(String, i64)> = [("t1".to_string(), 2)].into();
        let ours: HashSet<String> = ["daemon-a", "daemon-b", "daemon-c"]
            .map(String::from)
            .into();
        assert_eq!(orphans(&all, &ours, &live), ["stale-epoch", "dead"]);
    }
}
