//! A hardened `git` for the host: it never reads system or global config, never runs hooks,
//! fsmonitor, external diff or textconv drivers, and never discovers a repository by itself.
//! A leaf: `workspace` (checkouts, diffs, branches) and `push` (the one push) build on it.

use std::path::Path;
use std::process::{Command, Stdio};

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
