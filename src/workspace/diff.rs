//! The diff from the base commit to the task's work tree, computed by the host.
//!
//! The overlay's upper dir holds exactly what the sandbox changed, so only those paths are read.
//! The walk never follows a symlink, skips devices, FIFOs and sockets, and never reads a file
//! larger than the cap (a sparse 100 GB file is skipped by its size, not read).

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Stdio};

use super::git::{args, git, run};
use super::{Workspace, WorkspaceError};
use crate::policy::ChangedFile;

/// Caps on what the diff reads.
#[derive(Debug, Clone, Copy)]
pub struct DiffLimits {
    /// Files larger than this are not read; they are listed in [`Diff::skipped`].
    pub max_file_bytes: u64,
    /// Stop walking after this many changed paths.
    pub max_paths: usize,
}

/// The exported diff and what it touches.
#[derive(Debug, Default, Clone)]
pub struct Diff {
    /// `git diff --binary` output.
    pub patch: Vec<u8>,
    /// Every path the diff touches.
    pub files: Vec<ChangedFile>,
    /// Paths left out of the patch and why (`too_large`, `special_file`, `too_many_paths`).
    pub skipped: Vec<(String, String)>,
    /// Lines added.
    pub insertions: u64,
    /// Lines removed.
    pub deletions: u64,
}

/// What the walk of the upper dir found.
#[derive(Default)]
struct Changes {
    /// Files and symlinks present in the work tree.
    present: Vec<String>,
    /// Paths (files or whole dirs) removed or replaced from the base.
    gone: Vec<String>,
    skipped: Vec<(String, String)>,
}

impl Workspace {
    /// Diff the base commit against the work tree.
    pub fn diff(&self, limits: DiffLimits) -> Result<Diff, WorkspaceError> {
        let Some(upper) = &self.upper else {
            return Ok(Diff::default());
        };
        let mut changes = Changes::default();
        walk(upper, "", limits, &mut changes)?;
        let index = self.root.join("diff.index");
        let _ = fs::remove_file(&index);
        run(
            self.git_index(&index, ["read-tree", &self.base_commit]),
            "read-tree",
        )?;
        let gone = self.expand_gone(&index, &changes.gone)?;
        let mut paths: Vec<String> = changes.present.iter().chain(gone.iter()).cloned().collect();
        paths.sort();
        paths.dedup();
        let (add, remove): (Vec<_>, Vec<_>) = paths.into_iter().partition(|p| self.is_present(p));
        self.update_index(&index, &["--force-remove"], &remove)?;
        self.update_index(&index, &["--add", "--remove", "--replace"], &add)?;
        let mut diff = self.render(&index)?;
        diff.skipped = changes.skipped;
        Ok(diff)
    }

    /// A git command over this workspace's index, objects and work tree.
    fn git_index<const N: usize>(&self, index: &Path, a: [&str; N]) -> Command {
        let mut cmd = args(git(&self.git_dir), a);
        cmd.env("GIT_INDEX_FILE", index)
            .env("GIT_WORK_TREE", &self.work_tree)
            .env("GIT_OBJECT_DIRECTORY", &self.objects)
            .env(
                "GIT_ALTERNATE_OBJECT_DIRECTORIES",
                self.git_dir.join("objects"),
            )
            .current_dir(&self.root);
        cmd
    }

    /// A file or symlink at `rel` in the work tree (a dir or nothing means removed).
    /// Every ancestor must be a real directory: a path "beyond" a symlink is not present (it
    /// would resolve on the host, outside the work tree).
    fn is_present(&self, rel: &str) -> bool {
        let mut at = self.work_tree.clone();
        let parts: Vec<&str> = rel.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            let Ok(m) = fs::symlink_metadata(&at) else {
                return false;
            };
            let last = i + 1 == parts.len();
            if (!last && !m.is_dir()) || (last && m.is_dir()) {
                return false;
            }
        }
        true
    }

    /// Every base path at or under the removed/replaced paths.
    fn expand_gone(&self, index: &Path, gone: &[String]) -> Result<Vec<String>, WorkspaceError> {
        let mut out = Vec::new();
        for chunk in gone.chunks(500) {
            let mut cmd = self.git_index(index, ["ls-files", "-z", "--"]);
            cmd.args(chunk);
            let o = run(cmd, "ls-files")?;
            out.extend(
                o.stdout
                    .split(|b| *b == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned()),
            );
        }
        Ok(out)
    }

    fn update_index(
        &self,
        index: &Path,
        flags: &[&str],
        paths: &[String],
    ) -> Result<(), WorkspaceError> {
        if paths.is_empty() {
            return Ok(());
        }
        let mut cmd = self.git_index(index, ["update-index", "-z"]);
        cmd.args(flags)
            .arg("--stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| WorkspaceError::Git {
            op: "update-index".into(),
            message: e.to_string(),
        })?;
        let mut input = Vec::new();
        for p in paths {
            input.extend_from_slice(p.as_bytes());
            input.push(0);
        }
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(&input).map_err(|e| WorkspaceError::Git {
                op: "update-index".into(),
                message: e.to_string(),
            })?;
        }
        let out = child.wait_with_output().map_err(|e| WorkspaceError::Git {
            op: "update-index".into(),
            message: e.to_string(),
        })?;
        if !out.status.success() {
            return Err(WorkspaceError::Git {
                op: "update-index".into(),
                message: String::from_utf8_lossy(&out.stderr).trim().into(),
            });
        }
        Ok(())
    }

    /// `git diff --binary` plus the name-status and numstat listings.
    fn render(&self, index: &Path) -> Result<Diff, WorkspaceError> {
        let base = self.base_commit.as_str();
        let common = [
            "--cached",
            "--no-ext-diff",
            "--no-textconv",
            "-M",
            "--no-color",
        ];
        let mut patch = self.git_index(index, ["diff", "--binary", "--full-index"]);
        patch.args(common).args([base, "--"]);
        let patch = run(patch, "diff")?.stdout;
        let mut status = self.git_index(index, ["diff", "--name-status", "-z"]);
        status.args(common).args([base, "--"]);
        let status = run(status, "diff --name-status")?.stdout;
        let mut numstat = self.git_index(index, ["diff", "--numstat", "-z"]);
        numstat.args(common).args([base, "--"]);
        let numstat = run(numstat, "diff --numstat")?.stdout;
        let (files, insertions, deletions) = listing(&status, &numstat);
        Ok(Diff {
            patch,
            files,
            skipped: vec![],
            insertions,
            deletions,
        })
    }
}

/// Walk the overlay upper dir. `rel` is the path relative to the work tree root.
fn walk(
    dir: &Path,
    rel: &str,
    limits: DiffLimits,
    out: &mut Changes,
) -> Result<(), WorkspaceError> {
    if rel.is_empty() || !is_opaque(dir) {
        // fall through: a non-opaque dir merges with the base below it
    } else {
        out.gone.push(rel.to_string());
    }
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(WorkspaceError::io("read dir", dir))?
        .collect::<Result<_, _>>()
        .map_err(WorkspaceError::io("read dir", dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let raw = entry.file_name();
        let name = raw.to_string_lossy();
        let path = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        if raw.to_str().is_none() {
            // Such a path could not be shown in the diff faithfully: never hide a change.
            out.skipped.push((path, "invalid_name".into()));
            continue;
        }
        if name == ".git" {
            continue; // the agent's own git dir is its business; git refuses such paths anyway
        }
        if out.present.len() + out.gone.len() >= limits.max_paths {
            out.skipped.push((path, "too_many_paths".into()));
            return Ok(());
        }
        let meta =
            fs::symlink_metadata(entry.path()).map_err(WorkspaceError::io("stat", entry.path()))?;
        classify(&entry.path(), path, &meta, limits, out)?;
    }
    Ok(())
}

fn classify(
    full: &Path,
    path: String,
    meta: &fs::Metadata,
    limits: DiffLimits,
    out: &mut Changes,
) -> Result<(), WorkspaceError> {
    let ft = meta.file_type();
    if ft.is_char_device() && meta.rdev() == 0 {
        out.gone.push(path); // overlay whiteout: deleted from the base
    } else if ft.is_dir() {
        walk(full, &path, limits, out)?;
    } else if ft.is_file() && meta.len() > limits.max_file_bytes {
        out.skipped.push((path, "too_large".into()));
    } else if ft.is_file() || ft.is_symlink() {
        out.gone.push(path.clone()); // it may replace a base directory: drop what was below
        out.present.push(path);
    } else {
        out.skipped.push((path, "special_file".into()));
    }
    Ok(())
}

/// An overlay opaque dir hides everything the base had below it.
fn is_opaque(dir: &Path) -> bool {
    let (Ok(path), Ok(name)) = (
        CString::new(dir.as_os_str().as_bytes()),
        CString::new("trusted.overlay.opaque"),
    ) else {
        return false;
    };
    let mut buf = [0u8; 4];
    // SAFETY: both strings are NUL-terminated and `buf` outlives the call with its length given.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

/// Parse `--name-status -z` and `--numstat -z` output (same order, same renames).
fn listing(status: &[u8], numstat: &[u8]) -> (Vec<ChangedFile>, u64, u64) {
    let mut files = Vec::new();
    let mut fields = status
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned());
    while let Some(code) = fields.next().filter(|c| !c.is_empty()) {
        let letter = code.chars().next().unwrap_or('M');
        let first = fields.next().unwrap_or_default();
        let (old_path, path) = if matches!(letter, 'R' | 'C') {
            (Some(first), fields.next().unwrap_or_default())
        } else {
            (None, first)
        };
        files.push(ChangedFile {
            path,
            old_path,
            status: letter,
            binary: false,
        });
    }
    let (mut ins, mut del) = (0, 0);
    let mut parts = numstat.split(|b| *b == 0);
    let mut i = 0;
    while let Some(rec) = parts.next().filter(|r| !r.is_empty()) {
        let text = String::from_utf8_lossy(rec);
        let mut cols = text.splitn(3, '\t');
        let (a, d, name) = (
            cols.next().unwrap_or(""),
            cols.next().unwrap_or(""),
            cols.next().unwrap_or(""),
        );
        if name.is_empty() {
            parts.next(); // rename: old and new path follow as separate fields
            parts.next();
        }
        if let Some(f) = files.get_mut(i) {
            f.binary = a == "-" && d == "-";
        }
        ins += a.parse::<u64>().unwrap_or(0);
        del += d.parse::<u64>().unwrap_or(0);
        i += 1;
    }
    (files, ins, del)
}
