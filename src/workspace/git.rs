//! Running the hardened host `git` ([`crate::hostgit`]) for the workspace: errors as
//! [`WorkspaceError`], argument helpers.

use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};

pub use crate::hostgit::{git, git_no_dir};

use super::WorkspaceError;

/// Run `cmd`; fail with its stderr if it exits non-zero.
pub fn run(mut cmd: Command, what: &str) -> Result<Output, WorkspaceError> {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| WorkspaceError::Git {
            op: what.into(),
            message: format!("cannot run git: {e}"),
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(WorkspaceError::Git {
            op: what.into(),
            message: stderr.trim().chars().take(2000).collect(),
        });
    }
    Ok(out)
}

/// Add `args` to a command.
pub fn args<I, S>(mut cmd: Command, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    cmd.args(args);
    cmd
}
