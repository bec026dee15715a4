//! Throwaway views for the gate, and tearing a workspace down.

use std::fs;
use std::path::PathBuf;

use super::mount::{mount_overlay_layers, unmount, writable_layer};
use super::{Workspace, WorkspaceError};

impl Workspace {
    /// A fresh overlay over the agent's tree (its upper dir over the pristine base). The gate
    /// sees exactly what the agent left, and whatever the gate writes is thrown away, so build
    /// outputs and anything a test rewrites never reach the diff.
    pub fn gate_view(&self, name: &str) -> Result<PathBuf, WorkspaceError> {
        let base = self.root.join(name);
        let (upper, work) = writable_layer(&base.join("rw"), self.write_caps)?;
        let merged = base.join("workspace");
        fs::create_dir(&merged).map_err(WorkspaceError::io("create dir", &merged))?;
        let mut lowers: Vec<&std::path::Path> = Vec::new();
        if let Some(agent_upper) = &self.upper {
            lowers.push(agent_upper);
        }
        lowers.push(&self.pristine);
        mount_overlay_layers(&lowers, &upper, &work, &merged)?;
        Ok(merged)
    }

    /// A throwaway overlay over the pristine base alone: what the baseline gate sees.
    pub fn base_view(&self, name: &str) -> Result<PathBuf, WorkspaceError> {
        let base = self.root.join(name);
        let (upper, work) = writable_layer(&base.join("rw"), self.write_caps)?;
        let merged = base.join("workspace");
        fs::create_dir(&merged).map_err(WorkspaceError::io("create dir", &merged))?;
        mount_overlay_layers(&[&self.pristine], &upper, &work, &merged)?;
        Ok(merged)
    }

    /// Unmount and delete a gate view.
    pub fn drop_view(&self, name: &str) -> Result<(), WorkspaceError> {
        let base = self.root.join(name);
        unmount(&base.join("workspace"))?;
        unmount(&base.join("rw"))?;
        fs::remove_dir_all(&base).map_err(WorkspaceError::io("remove", &base))
    }

    /// Unmount everything under the task dir and delete it (unless `keep`). Runs every step and
    /// returns the first error.
    pub fn tear_down(&self, keep: bool) -> Result<(), WorkspaceError> {
        let mut first = None;
        if keep {
            if let Err(e) = self.keep_upper() {
                first.get_or_insert(e);
            }
        }
        for m in mounts_under(&self.root) {
            if let Err(e) = unmount(&m) {
                tracing::warn!(mount = %m.display(), error = %e, "unmount failed");
                first.get_or_insert(e);
            }
        }
        if !keep {
            self.lock.remove();
            if let Err(e) = fs::remove_dir_all(&self.root) {
                first.get_or_insert(WorkspaceError::io("remove", &self.root)(e));
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Workspace {
    /// The agent's layer lives on a tmpfs that is about to go: copy it to `<root>/upper`.
    fn keep_upper(&self) -> Result<(), WorkspaceError> {
        let Some(upper) = &self.upper else {
            return Ok(());
        };
        let dest = self.root.join("upper");
        let out = std::process::Command::new("cp")
            .arg("-a")
            .arg("--")
            .arg(upper)
            .arg(&dest)
            .output()
            .map_err(WorkspaceError::io("copy", &dest))?;
        if !out.status.success() {
            let message = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(WorkspaceError::Io {
                op: "copy",
                path: dest,
                source: std::io::Error::other(message),
            });
        }
        Ok(())
    }
}

/// Mount points at or below `root`, deepest first (from /proc/self/mountinfo).
pub fn mounts_under(root: &std::path::Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|p| p.starts_with(root))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount_path(s: &str) -> PathBuf {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}
