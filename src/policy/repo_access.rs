//! Which repositories the host may clone for a task: URL normalisation and the operator's
//! `[repo_access]` rules (schemes, local directories, the ssh identity).
//!
//! Pure: the URL and the rules in, a [`Location`] (normalised by [`crate::repo_url`]) or a
//! refusal message out. Patterns in `[[repos]]` are matched against [`Location::key`], never
//! against the text the client sent, so `https://h/acme/../evil.git` cannot pass a
//! `https://h/acme/**` rule (dot segments are refused outright, as are encoded ones).

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

pub use crate::repo_url::{locate, Location};

/// Schemes accepted when `operator.toml` names none.
pub const DEFAULT_SCHEMES: [&str; 2] = ["https", "ssh"];
/// Every scheme an operator may allow (`file://` is a local path).
pub const KNOWN_SCHEMES: [&str; 4] = ["https", "ssh", "http", "git"];

/// The ssh identity the host uses for `ssh://` repositories: an operator key and an
/// operator known_hosts file, never root's own `~/.ssh`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshIdentity {
    /// The private key file.
    pub key: PathBuf,
    /// The known_hosts file the host key must be in.
    pub known_hosts: PathBuf,
}

/// `operator.toml` `[repo_access]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoAccess {
    /// URL schemes a task may name.
    pub schemes: Vec<String>,
    /// Directories under which a local repository path may be used (absolute, normalised).
    pub local_dirs: Vec<PathBuf>,
    /// Whether `airlock run` at the runner's shell may use a local path anywhere (the state
    /// dir excepted): the operator is root there already.
    pub cli_local_anywhere: bool,
    /// The ssh identity for `ssh://` repositories; `None`: ssh is refused.
    pub ssh: Option<SshIdentity>,
}

impl Default for RepoAccess {
    fn default() -> Self {
        RepoAccess {
            schemes: DEFAULT_SCHEMES.iter().map(|s| s.to_string()).collect(),
            local_dirs: Vec::new(),
            cli_local_anywhere: true,
            ssh: None,
        }
    }
}

/// Whether `loc` may be used by a task from `source_is_cli`, per `access`. Local paths are
/// checked lexically here; the runner checks the canonical path again before cloning.
pub fn allowed(loc: &Location, access: &RepoAccess, source_is_cli: bool) -> Result<(), String> {
    match loc {
        Location::Local(p) => {
            if source_is_cli && access.cli_local_anywhere {
                return Ok(());
            }
            if under_any(p, &access.local_dirs) {
                return Ok(());
            }
            Err("local repository paths are accepted only under a directory in operator.toml [repo_access] local_dirs".into())
        }
        Location::Remote { scheme, .. } => {
            if !access.schemes.iter().any(|s| s == scheme) {
                return Err(format!(
                    "scheme `{scheme}` is not allowed; operator.toml [repo_access] schemes = {:?}",
                    access.schemes
                ));
            }
            if scheme == "ssh" && access.ssh.is_none() {
                return Err("ssh repositories need an operator key: set ssh_key and ssh_known_hosts in operator.toml [repo_access]".into());
            }
            Ok(())
        }
    }
}

/// `p` is `dir` or below it, component-wise (so `/srv/git2` is not under `/srv/git`).
pub fn under_any(p: &Path, dirs: &[PathBuf]) -> bool {
    dirs.iter().any(|d| p.starts_with(d))
}

/// Validate an operator-given directory: absolute, no dot segments.
pub fn clean_dir(text: &str) -> Result<PathBuf, String> {
    let p = Path::new(text);
    if !p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("`{text}` must be an absolute path without `..`"));
    }
    Ok(p.components().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_local_dirs_and_ssh_are_the_operators() {
        let mut a = RepoAccess::default();
        let https = locate("https://h/a/b.git").unwrap();
        let http = locate("http://h/a/b.git").unwrap();
        let ssh = locate("ssh://git@h/a/b.git").unwrap();
        let local = locate("/srv/git/app.git").unwrap();
        assert!(allowed(&https, &a, false).is_ok());
        assert!(allowed(&http, &a, false).unwrap_err().contains("schemes"));
        assert!(allowed(&ssh, &a, false).unwrap_err().contains("ssh_key"));
        assert!(allowed(&local, &a, false)
            .unwrap_err()
            .contains("local_dirs"));
        assert!(allowed(&local, &a, true).is_ok(), "cli_local_anywhere");
        a.cli_local_anywhere = false;
        assert!(allowed(&local, &a, true).is_err());
        a.local_dirs = vec![PathBuf::from("/srv/git")];
        assert!(allowed(&local, &a, false).is_ok());
        let sibling = locate("/srv/git2/app.git").unwrap();
        assert!(allowed(&sibling, &a, false).is_err());
        a.ssh = Some(SshIdentity {
            key: "/etc/airlock/id".into(),
            known_hosts: "/etc/airlock/kh".into(),
        });
        assert!(allowed(&ssh, &a, false).is_ok());
    }
}
