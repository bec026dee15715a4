//! Host-side git: prepare a task's checkout and compute its diff.
//!
//! The source is cloned once into a host-owned mirror (`--no-local`, no hooks, no submodules,
//! system and global config off) and fetched per task. Each base commit is extracted once into a
//! pristine tree owned by the sandbox uid; a task's work tree is an overlay on it whose upper dir
//! holds exactly what the agent changed. The host never runs git against anything the sandbox
//! could write: the git dir is host-owned, and the work tree is only read through explicit paths.

mod bounded;
mod branch;
mod diff;
mod evict;
pub mod git;
mod lock;
mod mount;
mod prepare;
mod source;
mod step_progress;
mod tree_size;
mod view;

use std::path::PathBuf;

pub use bounded::Bounds;
pub use diff::{Diff, DiffLimits};
pub use evict::evict_caches;
pub use lock::{lock_is_held, recover_stale, TaskLock};
pub use mount::{mount_tmpfs, unmount};
pub use prepare::{prepare, PrepareOptions};
pub use source::{resolve_source, SourceError};
pub use step_progress::{Stage, StepProgress, StepReport};
pub use view::mounts_under;

/// A prepared checkout.
#[derive(Debug)]
pub struct Workspace {
    /// The task's host-owned directory (mode 0700).
    pub root: PathBuf,
    /// The mirror's git dir (host-owned).
    pub git_dir: PathBuf,
    /// Objects written while diffing go here, not into the shared mirror.
    pub objects: PathBuf,
    /// What the container mounts at `/workspace`.
    pub work_tree: PathBuf,
    /// The overlay's upper dir, `None` for a read-only checkout.
    pub upper: Option<PathBuf>,
    /// The shared, read-only extraction of the base commit.
    pub pristine: PathBuf,
    /// Caps (bytes, inodes) of each writable layer (the agent's, each gate view's).
    pub write_caps: (u64, u64),
    /// The commit the checkout is at (full hex).
    pub base_commit: String,
    /// Held while the task lives; a restarted runner recovers dirs whose lock is free.
    pub lock: TaskLock,
    /// Shared locks on the cached mirror and tree this task uses: eviction skips them.
    pub holds: Vec<nix::fcntl::Flock<std::fs::File>>,
}

/// A host-side git or filesystem step that failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The repository could not be cloned or fetched.
    #[error("repo.url `{url}`: cannot clone or fetch: {message}")]
    Source {
        /// `repo.url`.
        url: String,
        /// git's error.
        message: String,
    },
    /// `repo.base` names neither a branch nor a full commit of the repository.
    #[error("repo.base `{base}` is not a branch (refs/heads/{base}) or a full 40-hex commit of `{url}`; tags, short ids and other revisions are not accepted")]
    BaseMissing {
        /// `repo.url`.
        url: String,
        /// `repo.base`.
        base: String,
    },
    /// The repository is over an operator limit (`operator.toml` `[prepare]`).
    #[error("the repository's {what} is {figure} bytes ({}), over the limit of {limit} bytes ({}) in operator.toml [prepare]", crate::units::format_bytes(*figure), crate::units::format_bytes(*limit))]
    TooLarge {
        /// What is too large (`mirror`, `checkout`).
        what: &'static str,
        /// Its size in bytes.
        figure: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The base commit has more files than `operator.toml` `[prepare] checkout_files`.
    #[error("the repository's checkout has {figure} files or more, over the limit of {limit} files in operator.toml [prepare] checkout_files")]
    TooManyFiles {
        /// Files counted (the count stops at the limit).
        figure: u64,
        /// The limit.
        limit: u64,
    },
    /// Prepare ran past `operator.toml` `[prepare] git_timeout`.
    #[error("prepare ({what}) ran past git_timeout = {} in operator.toml [prepare]", crate::units::format_duration(*limit))]
    PrepareTimeout {
        /// The step that ran over.
        what: String,
        /// The limit.
        limit: std::time::Duration,
    },
    /// The task was cancelled while it was being prepared.
    #[error("cancelled during prepare")]
    Cancelled,
    /// A host git command failed.
    #[error("git {op} failed: {message}")]
    Git {
        /// What git was doing.
        op: String,
        /// Its stderr (capped).
        message: String,
    },
    /// A filesystem step failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The overlay or a bind mount could not be set up.
    #[error("mount {target}: {message}")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// What failed.
        message: String,
    },
}

impl WorkspaceError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> WorkspaceError {
        let path = path.into();
        move |source| WorkspaceError::Io { op, path, source }
    }
}
