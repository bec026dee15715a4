//! Host mounts: the overlay a task's work tree lives on, and size-capped tmpfs dirs.

use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::sandbox::hardening::sandbox_uid;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::WorkspaceError;

fn merr(target: &Path, e: nix::Error) -> WorkspaceError {
    WorkspaceError::Mount {
        target: target.to_path_buf(),
        message: format!("{e} (airlock needs root on the runner host to mount)"),
    }
}

const SAFE: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV);

/// Overlay `lower` (read-only, pristine) with `upper` at `target`. Options that would let the
/// upper dir point into the lower one (redirects, metacopy) are off, so upper holds whole files.
pub fn mount_overlay(
    lower: &Path,
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), WorkspaceError> {
    mount_overlay_layers(&[lower], upper, work, target)
}

/// As [`mount_overlay`] with several lower layers, topmost first.
pub fn mount_overlay_layers(
    lowers: &[&Path],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), WorkspaceError> {
    let lower: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off,index=off,xino=off",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    mount(
        Some("airlock-overlay"),
        target,
        Some("overlay"),
        SAFE,
        Some(opts.as_str()),
    )
    .map_err(|e| merr(target, e))
}

/// A tmpfs of at most `bytes` and `inodes` at `target`, owned by `uid`.
pub fn mount_tmpfs(target: &Path, bytes: u64, inodes: u64, uid: u32) -> Result<(), WorkspaceError> {
    tmpfs(target, bytes, inodes, uid, SAFE | MsFlags::MS_NOEXEC)
}

fn tmpfs(
    target: &Path,
    bytes: u64,
    inodes: u64,
    uid: u32,
    flags: MsFlags,
) -> Result<(), WorkspaceError> {
    let opts = format!("size={bytes},nr_inodes={inodes},mode=0755,uid={uid},gid={uid}");
    mount(
        Some("airlock-tmpfs"),
        target,
        Some("tmpfs"),
        flags,
        Some(opts.as_str()),
    )
    .map_err(|e| merr(target, e))
}

/// A writable overlay layer under `base`: a size- and inode-capped tmpfs (so an agent cannot
/// fill the host's disk) holding `upper` (owned by the sandbox user: the merged root takes its
/// owner) and overlay's `work`. Returns (upper, work).
pub fn writable_layer(base: &Path, caps: (u64, u64)) -> Result<(PathBuf, PathBuf), WorkspaceError> {
    std::fs::create_dir_all(base).map_err(WorkspaceError::io("create dir", base))?;
    tmpfs(base, caps.0, caps.1, 0, SAFE)?;
    let (upper, work) = (base.join("upper"), base.join("work"));
    for d in [&upper, &work] {
        std::fs::create_dir(d).map_err(WorkspaceError::io("create dir", d))?;
    }
    lchown(&upper, Some(sandbox_uid()), Some(sandbox_uid()))
        .map_err(WorkspaceError::io("chown", &upper))?;
    std::fs::set_permissions(&upper, std::fs::Permissions::from_mode(0o755))
        .map_err(WorkspaceError::io("chmod", &upper))?;
    Ok((upper, work))
}

/// Unmount `target` (lazily if busy). Not mounted is not an error.
pub fn unmount(target: &Path) -> Result<(), WorkspaceError> {
    match umount2(target, MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(nix::Error::EBUSY) => umount2(target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)
            .map_err(|e| merr(target, e)),
        Err(e) => Err(merr(target, e)),
    }
}
