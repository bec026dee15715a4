//! Crash recovery at start, before any task runs: remove the containers a dead daemon left,
//! tear down the work dirs of the tasks it was running, and settle those tasks: finished if
//! their summary was written, re-queued (once, if configured), or `error` / `runner_restart`.

use std::collections::HashSet;
use std::path::Path;

use super::config::{Config, Sweep};
use super::shared::Db;
use super::synth::{self, Subject};
use crate::artifacts::State;
use crate::sandbox::{Engine, SandboxError, LABEL_LOCK, LABEL_SESSION, LABEL_TASK};
use crate::store::{End, Lease, Phase, StoreError, TaskRow};
use crate::vocab::Reason;

/// A task is re-queued after a crash at most this many times.
pub const MAX_REQUEUES: i64 = 1;

/// A container labelled `airlock.managed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Managed {
    /// The container's id.
    pub id: String,
    /// The runner session that made it (`airlock.session`).
    pub session: Option<String>,
    /// The task it ran for (`airlock.task`).
    pub task: Option<String>,
    /// Whether it carries a task lock label (`airlock.lock`): its owner can be told.
    pub locked: bool,
    /// Whether a live process (another daemon or an `airlock run`) holds its task's lock.
    pub live: bool,
}

/// Which containers to remove. At start none of this daemon's tasks is live, so with
/// [`Sweep::All`] that is every managed container no live process owns (a foreground
/// `airlock run` holding its task lock keeps its containers); with [`Sweep::Owned`], those of
/// this store's sessions or tasks.
pub fn containers_to_remove(
    all: &[Managed],
    sweep: Sweep,
    sessions: &HashSet<String>,
    tasks: &HashSet<String>,
) -> Vec<String> {
    let owned = |c: &Managed| {
        c.session.as_ref().is_some_and(|s| sessions.contains(s))
            || c.task.as_ref().is_some_and(|t| tasks.contains(t))
    };
    all.iter()
        .filter(|c| !c.live && (sweep == Sweep::All || owned(c)))
        .map(|c| c.id.clone())
        .collect()
}

/// Which containers the running daemon's periodic sweep removes (local store): those whose
/// task lock no process holds, so never one of a task that is running here or in any other
/// live process; with [`Sweep::Owned`], only those of this store's sessions. Containers
/// without a lock label are left to the start-up sweep: while tasks run, their owner cannot
/// be told.
pub fn orphans_while_running(
    all: &[Managed],
    sweep: Sweep,
    sessions: &HashSet<String>,
) -> Vec<String> {
    let owned = |c: &Managed| c.session.as_ref().is_some_and(|s| sessions.contains(s));
    all.iter()
        .filter(|c| c.locked && !c.live && (sweep == Sweep::All || owned(c)))
        .map(|c| c.id.clone())
        .collect()
}

/// What becomes of a task a dead daemon was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Its summary was written: it ended; only the store missed it.
    FromSummary,
    /// Run it again: allowed by the config, not re-queued before, and its push had not started
    /// (no `push.json`), so nothing can be done twice.
    Requeue,
    /// `error` / `runner_restart`.
    RunnerRestart,
}

/// What is known of an interrupted task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted {
    /// Whether its `summary.json` was written (its run finished).
    pub has_summary: bool,
    /// Whether its push had started (`push.json` exists).
    pub push_started: bool,
    /// Times it was re-queued already.
    pub restarts: i64,
}

/// How to settle an interrupted task: from its summary, back to the queue, or as `runner_restart`.
pub fn settle(t: Interrupted, requeue_allowed: bool) -> Settle {
    if t.has_summary {
        Settle::FromSummary
    } else if requeue_allowed && !t.push_started && t.restarts < MAX_REQUEUES {
        Settle::Requeue
    } else {
        Settle::RunnerRestart
    }
}

/// What recovery did.
#[derive(Debug, Default)]
pub struct Report {
    /// Containers removed.
    pub containers_removed: usize,
    /// Each interrupted task and how it was settled.
    pub tasks: Vec<(String, Settle)>,
}

/// Errors that stop the daemon from starting: it will not run tasks over an unknown engine state.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The engine could not be listed or cleaned.
    #[error("recovery: {0}")]
    Engine(#[from] SandboxError),
    /// The store could not be read or written.
    #[error("recovery: {0}")]
    Store(#[from] StoreError),
}

/// Remove what a dead daemon left (containers, locks) and settle the tasks it was running.
pub async fn recover(engine: &Engine, db: &Db, config: &Config) -> Result<Report, RecoverError> {
    let interrupted = db.list(Some(Phase::Running), usize::MAX >> 1).await?;
    let sessions: HashSet<String> = db.sessions().await?.into_iter().collect();
    let tasks: HashSet<String> = interrupted.iter().map(|t| t.id.clone()).collect();
    let all = list_managed(engine).await?;
    let remove = containers_to_remove(&all, config.recovery.sweep, &sessions, &tasks);
    let mut report = Report::default();
    for id in remove {
        match engine.remove(&id).await {
            Ok(()) => report.containers_removed += 1,
            Err(e) => {
                tracing::error!(container = %id, error = %e, "recovery could not remove a container")
            }
        }
    }
    for row in interrupted {
        let how = settle_task(db, config, row.clone()).await?;
        tracing::warn!(task = %row.id, outcome = ?how, "recovered a task interrupted by a daemon restart");
        report.tasks.push((row.id, how));
    }
    Ok(report)
}

async fn settle_task(db: &Db, config: &Config, row: TaskRow) -> Result<Settle, StoreError> {
    let work = config.state_dir.join("tasks").join(&row.id);
    tokio::task::spawn_blocking(move || remove_work_dir(&work))
        .await
        .ok();
    let summary = synth::read(&config.artifacts_dir, &row.id);
    let push_started = config
        .artifacts_dir
        .join(&row.id)
        .join("push.json")
        .exists();
    let facts = Interrupted {
        has_summary: summary.is_some(),
        push_started,
        restarts: row.restarts,
    };
    let how = settle(facts, config.recovery.requeue_interrupted);
    let id = row.id.clone();
    match (how, summary) {
        (Settle::FromSummary, Some(summary)) => {
            let end = synth::end_of(&summary);
            db.finish(&Lease { id, epoch: 0 }, end, None).await?;
        }
        (Settle::Requeue, _) => {
            let end = End {
                state: State::Error,
                reason: Reason::RunnerRestart,
                message: None,
                summary: None,
            };
            db.recover(id, true, end).await?;
        }
        _ => {
            let end = synth::end_of(&restart_summary(config, &row, push_started));
            db.recover(id, false, end).await?;
        }
    }
    Ok(how)
}

fn restart_summary(
    config: &Config,
    row: &TaskRow,
    push_started: bool,
) -> crate::artifacts::Summary {
    let who = Subject {
        id: &row.id,
        title: &row.title,
        level: &row.level,
    };
    let msg = if push_started {
        "the daemon running this task stopped during its push; push.json records how far it got"
    } else {
        "the daemon running this task stopped before it finished; nothing was pushed"
    };
    synth::write(
        &config.artifacts_dir,
        &who,
        State::Error,
        Reason::RunnerRestart,
        Some(msg.into()),
    )
}

/// Unmount everything under a task's work dir (deepest first), then delete it.
pub fn remove_work_dir(work: &Path) {
    for m in crate::workspace::mounts_under(work) {
        if let Err(e) = crate::workspace::unmount(&m) {
            tracing::error!(mount = %m.display(), error = %e, "cannot unmount a leftover mount");
        }
    }
    if let Err(e) = std::fs::remove_dir_all(work) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::error!(dir = %work.display(), error = %e, "cannot remove a leftover work dir");
        }
    }
}

pub(super) async fn list_managed(engine: &Engine) -> Result<Vec<Managed>, SandboxError> {
    let list = engine.list_labelled(&[]).await?;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            let labels = c.labels.unwrap_or_default();
            let lock = labels.get(LABEL_LOCK).filter(|l| !l.is_empty());
            let live = lock.is_some_and(|l| crate::workspace::lock_is_held(Path::new(l)));
            Some(Managed {
                id: c.id?,
                session: labels.get(LABEL_SESSION).cloned(),
                task: labels.get(LABEL_TASK).cloned(),
                locked: lock.is_some(),
                live,
            })
        })
        .collect())
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

    fn set(v: &[&str]) -> HashSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sweep_all_removes_every_managed_container() {
        let all = [m("c1", "run-x", "t1"), m("c2", "daemon-a", "t2")];
        assert_eq!(
            containers_to_remove(&all, Sweep::All, &set(&[]), &set(&[])),
            ["c1", "c2"]
        );
    }

    #[test]
    fn sweep_all_keeps_containers_whose_task_lock_is_held() {
        let live = Managed {
            live: true,
            ..m("c2", "run-live", "t2")
        };
        let all = [m("c1", "run-x", "t1"), live];
        assert_eq!(
            containers_to_remove(&all, Sweep::All, &set(&[]), &set(&[])),
            ["c1"]
        );
    }

    #[test]
    fn sweep_owned_keeps_other_runs() {
        let all = [
            m("c1", "run-x", "t1"),
            m("c2", "daemon-a", "t2"),
            m("c3", "daemon-b", "t3"),
            m("c4", "run-y", "t9"),
        ];
        let got = containers_to_remove(
            &all,
            Sweep::Owned,
            &set(&["daemon-a", "daemon-b"]),
            &set(&["t9"]),
        );
        assert_eq!(got, ["c2", "c3", "c4"]);
    }

    #[test]
    fn the_periodic_sweep_never_takes_a_live_or_unlabelled_container() {
        let live = Managed {
            live: true,
            ..m("live", "daemon-a", "t1")
        };
        let unlabelled = Managed {
            locked: false,
            ..m("nolock", "run-y", "t4")
        };
        let all = [
            live,
            m("dead-run", "run-x", "t2"),
            m("ours", "daemon-a", "t3"),
            unlabelled,
        ];
        let ours = set(&["daemon-a"]);
        assert_eq!(
            orphans_while_running(&all, Sweep::All, &ours),
            ["dead-run", "ours"]
        );
        assert_eq!(orphans_while_running(&all, Sweep::Owned, &ours), ["ours"]);
    }

    #[test]
    fn settling_interrupted_tasks() {
        let t = |has_summary, push_started, restarts| Interrupted {
            has_summary,
            push_started,
            restarts,
        };
        assert_eq!(settle(t(true, false, 0), false), Settle::FromSummary);
        assert_eq!(settle(t(true, true, 5), true), Settle::FromSummary);
        assert_eq!(settle(t(false, false, 0), false), Settle::RunnerRestart);
        assert_eq!(settle(t(false, false, 0), true), Settle::Requeue);
        assert_eq!(
            settle(t(false, true, 0), true),
            Settle::RunnerRestart,
            "a started push is never repeated"
        );
        assert_eq!(
            settle(t(false, false, MAX_REQUEUES), true),
            Settle::RunnerRestart,
            "re-queued once only"
        );
    }
}
