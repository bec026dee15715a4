//! export: the artifact directory of one task (`<artifacts>/<task-id>/`), per the contract.
//!
//! `summary.json` · `diff.patch` · `events.jsonl` · `evidence.md` · `logs/agent-<n>.log`,
//! `logs/gate-<n>.log` · `out/` · `<task-id>.tar.gz`. Every file is written temp-then-rename,
//! and no write follows a symbolic link (`nofollow`); the root must be airlock's own (`root`).

mod events;
pub mod logcap;
mod root;
mod summary;
mod write;

use std::path::{Path, PathBuf};

pub use crate::nofollow;
pub use crate::units::now_rfc3339;
pub use events::EventLog;
pub use logcap::{neutralise, CappedLog};
pub use root::{secure_root, RootError};
pub use summary::{
    AttemptRecord, AttemptVerdict, CiFeedback, ContainerRecord, DiffStats, Feedback, RepoRecord,
    State, Summary, SUMMARY_FORMAT,
};
pub use write::{bundle, copy_tree, write_atomic, CopyReport};

/// An artifact that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct ArtifactError {
    /// What was being done (`write`, `create dir`, ...).
    pub op: &'static str,
    /// The file or directory it was done to.
    pub path: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

impl ArtifactError {
    pub(crate) fn io(
        op: &'static str,
        path: impl AsRef<Path>,
    ) -> impl FnOnce(std::io::Error) -> ArtifactError {
        let path = path.as_ref().to_path_buf();
        move |source| ArtifactError { op, path, source }
    }
}

/// Paths inside one task's artifact dir.
#[derive(Debug, Clone)]
pub struct ArtifactDir {
    /// `<artifacts>/<task-id>/`.
    pub dir: PathBuf,
    /// The task the directory belongs to.
    pub task_id: String,
}

impl ArtifactDir {
    /// Create `<root>/<task_id>/` with its `logs/` and `out/`, following no link.
    pub fn create(root: &Path, task_id: &str) -> Result<ArtifactDir, ArtifactError> {
        let dir = root.join(task_id);
        for sub in ["logs", "out"] {
            nofollow::create_dir_all(&dir.join(sub))
                .map_err(ArtifactError::io("create dir", dir.join(sub)))?;
        }
        Ok(ArtifactDir {
            dir,
            task_id: task_id.into(),
        })
    }

    /// `logs/<role>-<attempt>.log` (`agent-1.log`, `gate-2.log`).
    pub fn log_path(&self, role: &str, attempt: u32) -> PathBuf {
        self.dir.join("logs").join(format!("{role}-{attempt}.log"))
    }

    /// `name` inside the task's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

#[cfg(test)]
mod golden_tests;
