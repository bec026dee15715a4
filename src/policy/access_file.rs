//! `operator.toml` `[repo_access]`: validated into [`RepoAccess`].

use super::files::{Ctx, RawRepoAccess};
use super::repo_access::{clean_dir, RepoAccess, SshIdentity, KNOWN_SCHEMES};
use super::PolicyError;

/// The table as written, or the defaults (https and ssh, no local dirs, the CLI anywhere).
pub(super) fn repo_access(c: &Ctx, raw: Option<RawRepoAccess>) -> Result<RepoAccess, PolicyError> {
    let mut access = RepoAccess::default();
    let Some(raw) = raw else {
        return Ok(access);
    };
    if let Some(schemes) = raw.schemes {
        if let Some(bad) = schemes
            .iter()
            .find(|s| !KNOWN_SCHEMES.contains(&s.as_str()))
        {
            return Err(c.err(
                "repo_access.schemes",
                format!(
                    "`{bad}` is not accepted; use some of {} (local paths: local_dirs)",
                    KNOWN_SCHEMES.join(", ")
                ),
            ));
        }
        access.schemes = schemes;
    }
    access.local_dirs = raw
        .local_dirs
        .iter()
        .map(|d| clean_dir(d).map_err(|m| c.err("repo_access.local_dirs", m)))
        .collect::<Result<_, _>>()?;
    if let Some(b) = raw.cli_local_anywhere {
        access.cli_local_anywhere = b;
    }
    access.ssh = match (raw.ssh_key, raw.ssh_known_hosts) {
        (None, None) => None,
        (Some(key), Some(kh)) => Some(SshIdentity {
            key: clean_dir(&key).map_err(|m| c.err("repo_access.ssh_key", m))?,
            known_hosts: clean_dir(&kh).map_err(|m| c.err("repo_access.ssh_known_hosts", m))?,
        }),
        (Some(_), None) => {
            return Err(c.err(
                "repo_access.ssh_known_hosts",
                "is required with ssh_key: the host verifies ssh servers only against it",
            ))
        }
        (None, Some(_)) => {
            return Err(c.err("repo_access.ssh_key", "is required with ssh_known_hosts"))
        }
    };
    Ok(access)
}
