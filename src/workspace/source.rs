//! Resolving a local repository path on the host, after admission allowed it lexically.
//!
//! The path is canonicalised (symlinks followed) and checked again: still under an allowed
//! directory, and never the runner's state dir, where other tasks' mirrors and trees live.
//! Messages never say more about the host than the client already named.

use std::path::Path;

use crate::policy::repo_access::{locate, under_any, Location, RepoAccess};

/// Why a repository cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Refused by the operator's rules (exit 3, `repo_not_allowed`).
    #[error("repository `{url}`: {message}")]
    Refused {
        /// `repo.url`.
        url: String,
        /// Which rule refused it.
        message: String,
    },
    /// The path does not name a usable repository (exit 2).
    #[error("repository `{url}` cannot be opened: {message}")]
    Missing {
        /// `repo.url`.
        url: String,
        /// Why it cannot be opened.
        message: String,
    },
}

/// The canonical local path to clone from, or the URL unchanged if it is remote.
pub fn resolve_source(
    url: &str,
    access: &RepoAccess,
    source_is_cli: bool,
    state_dir: &Path,
) -> Result<String, SourceError> {
    let refused = |message: &str| SourceError::Refused {
        url: url.into(),
        message: message.into(),
    };
    let Ok(Location::Local(path)) = locate(url) else {
        return Ok(url.to_string());
    };
    let canonical = std::fs::canonicalize(&path).map_err(|e| SourceError::Missing {
        url: url.into(),
        message: e.kind().to_string(),
    })?;
    let state = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    if canonical.starts_with(&state) || state.starts_with(&canonical) {
        return Err(refused("the runner's state dir is never a repository"));
    }
    let anywhere = source_is_cli && access.cli_local_anywhere;
    if !anywhere && !under_any(&canonical, &access.local_dirs) {
        return Err(refused(
            "resolves outside operator.toml [repo_access] local_dirs",
        ));
    }
    Ok(canonical.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_and_links_out_of_allowed_dirs_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let allowed = tmp.path().join("git");
        let state = tmp.path().join("state");
        std::fs::create_dir_all(allowed.join("app.git")).unwrap();
        std::fs::create_dir_all(state.join("cache/repos/x.git")).unwrap();
        std::os::unix::fs::symlink(state.join("cache/repos/x.git"), allowed.join("link.git"))
            .unwrap();
        let access = RepoAccess {
            local_dirs: vec![allowed.clone()],
            cli_local_anywhere: true,
            ..RepoAccess::default()
        };
        let ok = allowed.join("app.git").display().to_string();
        assert!(resolve_source(&ok, &access, false, &state).is_ok());
        let link = allowed.join("link.git").display().to_string();
        for cli in [false, true] {
            let e = resolve_source(&link, &access, cli, &state).unwrap_err();
            assert!(matches!(e, SourceError::Refused { .. }), "{e}");
            let direct = state.join("cache/repos/x.git").display().to_string();
            let e = resolve_source(&direct, &access, cli, &state).unwrap_err();
            assert!(e.to_string().contains("state dir"), "{e}");
        }
        let missing = allowed.join("nope.git").display().to_string();
        let e = resolve_source(&missing, &access, false, &state).unwrap_err();
        assert!(!e.to_string().contains("os error"), "{e}");
    }
}
