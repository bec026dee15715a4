//! `push.json`: the durable record of a task's push, written (temp-then-rename, fsync) before
//! and after the push, so a task run again after a crash pushes at most once.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::PushError;
use super::forge::Opened;

/// The version of `push.json`'s shape.
pub const RECORD_FORMAT: u32 = 1;

/// How far a push got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Written just before `git push`: the push may or may not have landed.
    Pushing,
    /// The remote has the commit at the ref.
    Pushed,
}

/// `push.json`: a task's push, durable across crashes so a rerun never pushes twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// [`RECORD_FORMAT`].
    pub format_version: u32,
    /// The task's id.
    pub task_id: String,
    /// The push URL.
    pub remote: String,
    /// The ref pushed.
    pub refname: String,
    /// The commit this run pushes (or found already pushed).
    pub commit: String,
    /// How far it got.
    pub stage: Stage,
    /// The PR, once opened.
    pub pr: Option<Opened>,
    /// When the record was written (RFC 3339).
    pub updated_at: String,
}

/// What an earlier run of the same task left to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// No earlier push to this remote and ref.
    Fresh,
    /// An earlier run crashed mid-push: ask the remote whether the ref landed.
    CheckRemote,
    /// An earlier run pushed this commit: do not push again.
    Pushed {
        /// The commit it pushed.
        commit: String,
        /// The PR it opened, if it got that far.
        pr: Option<Opened>,
    },
}

/// Decide from the earlier record. Pure.
pub fn resume(prev: Option<&Record>, remote: &str, refname: &str) -> Resume {
    match prev {
        Some(r) if r.remote == remote && r.refname == refname => match r.stage {
            Stage::Pushed => Resume::Pushed {
                commit: r.commit.clone(),
                pr: r.pr.clone(),
            },
            Stage::Pushing => Resume::CheckRemote,
        },
        _ => Resume::Fresh,
    }
}

/// The record at `path`, if one is there and readable.
pub fn read(path: &Path) -> Option<Record> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice::<Record>(&bytes)
        .ok()
        .filter(|r| r.format_version == RECORD_FORMAT)
}

/// Write the record durably.
pub fn write(path: &Path, r: &Record) -> Result<(), PushError> {
    let bytes = serde_json::to_vec_pretty(r).unwrap_or_default();
    crate::nofollow::write_atomic(path, &bytes).map_err(|source| PushError::Io {
        op: "write",
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(stage: Stage) -> Record {
        Record {
            format_version: RECORD_FORMAT,
            task_id: "t".into(),
            remote: "https://h/r.git".into(),
            refname: "refs/heads/agent/t-x".into(),
            commit: "c1".into(),
            stage,
            pr: None,
            updated_at: "now".into(),
        }
    }

    #[test]
    fn a_pushed_record_is_never_pushed_again() {
        let (url, r) = ("https://h/r.git", "refs/heads/agent/t-x");
        assert_eq!(resume(None, url, r), Resume::Fresh);
        assert_eq!(
            resume(Some(&rec(Stage::Pushing)), url, r),
            Resume::CheckRemote
        );
        assert_eq!(
            resume(Some(&rec(Stage::Pushed)), url, r),
            Resume::Pushed {
                commit: "c1".into(),
                pr: None
            }
        );
        assert_eq!(
            resume(Some(&rec(Stage::Pushed)), "https://h/other.git", r),
            Resume::Fresh
        );
    }

    #[test]
    fn round_trips_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("push.json");
        assert!(read(&p).is_none());
        write(&p, &rec(Stage::Pushed)).unwrap();
        assert_eq!(read(&p).unwrap(), rec(Stage::Pushed));
    }
}
