//! A hardened `git` for the host: it never reads system or global config, never runs hooks,
//! fsmonitor, external diff or textconv drivers, and never discovers a repository by itself.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::WorkspaceError;

/// Config forced on every host git invocation (`-c` beats any repository config).
const HARDENING: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.untrackedCache=false",
    // ssh only with the operator's identity (GIT_SSH_COMMAND, set per clone), never root's.
    "core.sshCommand=false",
    "core.askPass=",
    "credential.helper=",
    "diff.external=",
    "protocol.ext.allow=never",
    "protocol.allow=user",
    "protocol.file.allow=always",
    "protocol.https.allow=always",
    "protocol.http.allow=always",
    "protocol.ssh.allow=always",
    "protocol.git.allow=always",
    "transfer.fsckObjects=true",
    "submodule.recurse=false",
    "core.symlinks=true",
    "core.autocrlf=false",
    "gc.auto=0",
];

/// `git` with `git_dir` explicit, a scrubbed environment and the hardening config.
pub fn git(git_dir: &Path) -> Command {
    let mut cmd = git_no_dir();
    cmd.env("GIT_DIR", git_dir);
    cmd
}

/// Hardened `git` without a repository (for `clone`).
pub fn git_no_dir() -> Command {
    let mut cmd = Command::new("git");
    cmd.env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("HOME", "/nonexistent")
        .env("LC_ALL", "C")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_LITERAL_PATHSPECS", "1")
        .env("GIT_CEILING_DIRECTORIES", "/")
        .stdin(Stdio::null());
    for c in HARDENING {
        cmd.arg("-c").arg(c);
    }
    cmd
}

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
