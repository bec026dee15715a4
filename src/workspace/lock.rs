//! Task locks: a task's work dir is live while its lock is held. A restarted runner recovers
//! the dirs whose lock nobody holds (their process died) and leaves live ones alone.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::view::mounts_under;
use super::{unmount, WorkspaceError};

/// An exclusive lock on `<state>/tasks/<id>.lock`, held for the task's whole life.
pub struct TaskLock {
    _flock: Flock<File>,
    path: PathBuf,
}

impl std::fmt::Debug for TaskLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskLock")
            .field("path", &self.path)
            .finish()
    }
}

fn lock_path(tasks: &Path, id: &str) -> PathBuf {
    tasks.join(format!("{id}.lock"))
}

impl TaskLock {
    /// Take the lock without waiting; `None` when another live process holds it.
    pub fn try_acquire(tasks: &Path, id: &str) -> Result<Option<TaskLock>, WorkspaceError> {
        let path = lock_path(tasks, id);
        let file = File::create(&path).map_err(WorkspaceError::io("create lock", &path))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(flock) => Ok(Some(TaskLock {
                _flock: flock,
                path,
            })),
            Err((_, nix::Error::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(WorkspaceError::io("lock", &path)(e.into())),
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Delete the lock file (while still holding the lock).
    pub fn remove(&self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether a live process holds the lock at `path` (a missing file is not held). Probing takes
/// the lock for an instant when it is free.
pub fn lock_is_held(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    matches!(
        Flock::lock(file, FlockArg::LockExclusiveNonblock),
        Err((_, nix::Error::EWOULDBLOCK))
    )
}

/// Work dirs under `<state>/tasks` whose lock no live process holds: unmount everything in
/// them and delete them. Returns the task ids recovered.
pub fn recover_stale(state_dir: &Path) -> Vec<String> {
    let tasks = state_dir.join("tasks");
    let Ok(entries) = fs::read_dir(&tasks) else {
        return vec![];
    };
    let mut recovered = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let id = name.strip_suffix(".lock").unwrap_or(&name).to_string();
        if recovered.contains(&id) || !crate::ids::valid_task_id(&id) {
            continue;
        }
        let Ok(Some(lock)) = TaskLock::try_acquire(&tasks, &id) else {
            continue;
        };
        let dir = tasks.join(&id);
        for m in mounts_under(&dir) {
            if let Err(e) = unmount(&m) {
                tracing::warn!(mount = %m.display(), error = %e, "recovery: unmount failed");
            }
        }
        if let Err(e) = fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), error = %e, "recovery: cannot remove");
                continue;
            }
        }
        lock.remove();
        recovered.push(id);
    }
    recovered
}
