//! Measuring a commit's tree before extracting it: entries and blob bytes, from a streamed
//! `git ls-tree -r -l -z`, stopped as soon as a limit is passed.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use super::bounded::Bounds;
use super::git::{args, git};
use super::WorkspaceError;
use crate::policy::prepare_limits::PrepareLimits;

/// The bytes of `commit`'s files, or the limit it passes.
pub fn check(
    git_dir: &Path,
    commit: &str,
    limits: &PrepareLimits,
    bounds: &Bounds,
) -> Result<u64, WorkspaceError> {
    let mut cmd = args(
        git(git_dir),
        ["ls-tree", "-r", "-l", "-z", "--full-tree", commit],
    );
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| WorkspaceError::Git {
            op: "ls-tree".into(),
            message: format!("cannot run git: {e}"),
        })?;
    let out = child.stdout.take();
    let result = out
        .map(|o| count(BufReader::new(o), limits, bounds))
        .unwrap_or(Ok(0));
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let status = child.wait();
    let bytes = result?;
    match status {
        Ok(s) if s.success() => Ok(bytes),
        _ => Err(WorkspaceError::Git {
            op: "ls-tree".into(),
            message: format!("cannot list the tree of {commit}"),
        }),
    }
}

fn count(r: impl BufRead, limits: &PrepareLimits, bounds: &Bounds) -> Result<u64, WorkspaceError> {
    let (mut files, mut bytes) = (0u64, 0u64);
    for entry in r.split(0) {
        let entry = entry.map_err(|e| WorkspaceError::Git {
            op: "ls-tree".into(),
            message: e.to_string(),
        })?;
        files += 1;
        bytes += entry_size(&entry);
        if files > limits.checkout_files {
            return Err(too_many(files, limits.checkout_files));
        }
        if bytes > limits.checkout_bytes {
            return Err(WorkspaceError::TooLarge {
                what: "checkout",
                figure: bytes,
                limit: limits.checkout_bytes,
            });
        }
        if files % 4096 == 0 && Instant::now() >= bounds.deadline {
            return Err(WorkspaceError::PrepareTimeout {
                what: "ls-tree".into(),
                limit: bounds.budget,
            });
        }
    }
    Ok(bytes)
}

fn too_many(files: u64, limit: u64) -> WorkspaceError {
    WorkspaceError::TooManyFiles {
        figure: files,
        limit,
    }
}

/// `<mode> <type> <object> <size>\t<path>`: the size field (`-` for submodules).
fn entry_size(entry: &[u8]) -> u64 {
    let head = entry.split(|b| *b == b'\t').next().unwrap_or_default();
    let text = String::from_utf8_lossy(head);
    text.split_whitespace()
        .nth(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts_stop_at_the_limit() {
        let listing = b"100644 blob aaaa     10\ta\x00100644 blob bbbb 20\tb c\x00160000 commit cccc       -\tsub\x00";
        let mut l = PrepareLimits::default();
        let b = Bounds::unbounded();
        assert_eq!(count(&listing[..], &l, &b).unwrap(), 30);
        l.checkout_files = 2;
        assert!(count(&listing[..], &l, &b)
            .unwrap_err()
            .to_string()
            .contains("3 files"));
        l.checkout_files = 10;
        l.checkout_bytes = 25;
        let m = count(&listing[..], &l, &b).unwrap_err().to_string();
        assert!(m.contains("30 bytes") && m.contains("25 bytes"), "{m}");
    }
}
