//! `/tmp` and HOME as host-side tmpfs mounts, bound into the container: for engines whose tmpfs
//! options cannot carry an inode cap or an owner (Podman rejects `nr_inodes=` and `uid=`). The
//! mounts carry every cap the engine tmpfs would (size, inodes, mode, owner, noexec, nosuid,
//! nodev); a bind of a mount keeps its flags, so the container sees the same restrictions.
//!
//! Podman also puts writable, uncapped tmpfs mounts at `/run` and `/var/tmp` over a read-only
//! root (its `--read-only-tmpfs`, which the compatible API cannot turn off); a read-only
//! directory is bound at each of [`READ_ONLY_OVER`] instead, so they stay read-only as on dockerd.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::hardening::{SandboxLimits, ScratchMount, READ_ONLY_OVER, SCRATCH_MOUNTS};
use super::SandboxError;

/// `noexec,nosuid,nodev`: nothing written to scratch space runs, and no device or setuid file
/// placed there has any effect.
const FLAGS: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// The host-side mounts of one container; unmounted and removed by [`HostScratch::remove`].
#[derive(Debug)]
pub struct HostScratch {
    dir: PathBuf,
    mounted: Vec<(PathBuf, &'static str)>,
    read_only: Vec<(PathBuf, &'static str)>,
}

impl HostScratch {
    /// Mount one capped tmpfs per [`SCRATCH_MOUNTS`] entry under `<scratch>/<name>/`.
    pub fn create(
        scratch: &Path,
        name: &str,
        l: &SandboxLimits,
    ) -> Result<HostScratch, SandboxError> {
        let dir = scratch.join(name);
        let mut made = HostScratch {
            dir: dir.clone(),
            mounted: Vec::new(),
            read_only: Vec::new(),
        };
        let fail = |what: &str, p: &Path, e: String| {
            SandboxError::Runner {
            message: format!("cannot {what} {} for the container's scratch space: {e} (airlock needs root on the runner host to mount)", p.display()),
        }
        };
        for m in &SCRATCH_MOUNTS {
            let at = dir.join(m.key);
            if let Err(e) = std::fs::create_dir_all(&at) {
                made.remove();
                return Err(fail("create", &at, e.to_string()));
            }
            let opts = options(m, l);
            if let Err(e) = mount(
                Some("airlock-scratch"),
                &at,
                Some("tmpfs"),
                FLAGS,
                Some(opts.as_str()),
            ) {
                made.remove();
                return Err(fail("mount a tmpfs at", &at, e.to_string()));
            }
            made.mounted.push((at, m.target));
        }
        for (key, target, files) in READ_ONLY_OVER {
            let at = dir.join(format!("ro-{key}"));
            let made_dir = std::fs::create_dir(&at).and_then(|()| {
                files
                    .iter()
                    .try_for_each(|f| std::fs::write(at.join(f), b"").map(|_| ()))
            });
            if let Err(e) = made_dir {
                made.remove();
                return Err(fail("create", &at, e.to_string()));
            }
            made.read_only.push((at, target));
        }
        Ok(made)
    }

    /// (host path, container path, read-only) of each bind.
    pub fn binds(&self) -> impl Iterator<Item = (&Path, &'static str, bool)> {
        let scratch = self.mounted.iter().map(|(p, t)| (p.as_path(), *t, false));
        let ro = self.read_only.iter().map(|(p, t)| (p.as_path(), *t, true));
        scratch.chain(ro)
    }

    /// Unmount (lazily if busy) and remove the directory; failures are logged, and recovery
    /// of the task dir unmounts whatever remains.
    pub fn remove(&mut self) {
        for (p, _) in self.mounted.drain(..) {
            if let Err(e) = umount2(&p, MntFlags::UMOUNT_NOFOLLOW) {
                if let Err(e2) = umount2(&p, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
                    tracing::warn!(mount = %p.display(), error = %e, lazy = %e2, "cannot unmount scratch tmpfs");
                }
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove scratch dir");
            }
        }
    }
}

impl Drop for HostScratch {
    fn drop(&mut self) {
        if !self.mounted.is_empty() {
            self.remove();
        }
    }
}

/// The tmpfs data options (flags are [`FLAGS`]).
fn options(m: &ScratchMount, l: &SandboxLimits) -> String {
    format!(
        "size={},nr_inodes={},mode={:o},uid={uid},gid={uid}",
        l.tmpfs,
        l.tmpfs_inodes,
        m.mode,
        uid = if m.owned {
            super::hardening::sandbox_uid()
        } else {
            0
        }
    )
}
