//! The roots airlock writes under (the artifacts root, the state dir) must be its own: a root
//! that another account can write lets that account plant links or swap dirs under root's
//! writes (#10 item 7; CIS Docker Benchmark 3.x: runtime dirs owned by root, not writable by
//! others).

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A root that may not be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    /// The root could not be created or inspected.
    #[error("{what} {path}: {source}")]
    Io {
        /// Which root (`artifacts root`, `state dir`).
        what: String,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Group or others may write the root.
    #[error("{what} {path} has mode {mode:04o}: group or others can write it, and could plant links that redirect airlock's writes; fix: `chmod go-w {path}`")]
    Writable {
        /// Which root.
        what: String,
        /// Its path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The root belongs to neither root nor the runner's user.
    #[error("{what} {path} is owned by uid {owner}, not root or the runner (uid {runner}); fix: `chown {runner} {path}`")]
    Owner {
        /// Which root.
        what: String,
        /// Its path.
        path: PathBuf,
        /// The owner's uid.
        owner: u32,
        /// The runner's uid.
        runner: u32,
    },
    /// The root exists but is not a directory.
    #[error("{what} {path} is not a directory")]
    NotDir {
        /// Which root.
        what: String,
        /// Its path.
        path: PathBuf,
    },
}

/// Create `path` if missing (mode `mode`, before the umask), canonicalise it (links in an
/// operator's own path are resolved once, here) and check it: a directory owned by root or by
/// the runner's uid, writable by neither group nor others. `what` names it in errors
/// (`--artifacts`, `state dir`).
pub fn secure_root(what: &str, path: &Path, mode: u32) -> Result<PathBuf, RootError> {
    let io = |path: &Path| {
        let (what, path) = (what.to_string(), path.to_path_buf());
        move |source| RootError::Io { what, path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(io(path))?;
    let path = std::fs::canonicalize(path).map_err(io(path))?;
    let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
    let what = what.to_string();
    if !meta.is_dir() {
        return Err(RootError::NotDir { what, path });
    }
    let runner = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != runner {
        return Err(RootError::Owner {
            what,
            path,
            owner: meta.uid(),
            runner,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(RootError::Writable { what, path, mode });
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_root_others_can_write_is_refused_with_the_fix() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("art");
        let ok = secure_root("--artifacts", &root, 0o755).unwrap();
        assert_eq!(ok, std::fs::canonicalize(&root).unwrap());
        for bad in [0o777, 0o775, 0o1777] {
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(bad)).unwrap();
            let e = secure_root("--artifacts", &root, 0o755)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&root.display().to_string())
                    && e.contains(&format!("{bad:04o}"))
                    && e.contains("chmod go-w"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_link_to_a_root_is_resolved_once() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("link")).unwrap();
        let got = secure_root("state dir", &t.path().join("link"), 0o700).unwrap();
        assert_eq!(got, std::fs::canonicalize(&real).unwrap());
    }
}
