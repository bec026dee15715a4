//! File operations that never follow a symbolic link (#10 item 7).
//!
//! airlock runs as root and writes names and bytes chosen by hostile code (the agent's report
//! files, failure text) under the artifacts root and the state dir. A link planted anywhere on
//! the way (`<root>/<task>`, `<root>/<task>/logs`, a file name) would redirect those writes
//! anywhere on the host. Every path here is resolved by `openat2(2)` with
//! `RESOLVE_NO_SYMLINKS` (any link in the path is `ELOOP`), each created directory is opened
//! beneath its parent's fd with `RESOLVE_BENEATH`, and files are created `O_EXCL | O_NOFOLLOW`
//! and renamed into place relative to that fd.
//!
//! `nix`'s `openat2` (already a dependency, a thin wrapper over the syscall) is used rather than
//! `cap-std`: cap-std confines resolution to a root but follows links that stay inside it, and
//! here no link is wanted at all. The roots themselves are canonicalised once at start
//! (`artifacts::secure_root`), so every path below them is link-free when nothing is wrong.
//!
//! A leaf: `artifacts` and `push` (its records) write through it.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat2, renameat, OFlag, OpenHow, ResolveFlag, AT_FDCWD};
use nix::sys::stat::{fchmod, mkdirat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// Files are readable by the sandbox user and operators, never executable; dirs likewise.
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

fn how(flags: OFlag, mode: u32, resolve: ResolveFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(Mode::from_bits_truncate(mode))
        .resolve(resolve)
}

/// An `Errno` as an `io::Error`; a link in the path gets a message that says so.
fn io_err(e: Errno) -> io::Error {
    match e {
        Errno::ELOOP => io::Error::other(
            "a symbolic link is in the path; artifacts are never written through links",
        ),
        Errno::ENOSYS => io::Error::other(
            "openat2(2) is not available (Linux 5.6 or later is needed to write without following links)",
        ),
        e => io::Error::from(e),
    }
}

/// Open `path` (absolute, or relative to the working dir) for `flags`, refusing any link.
fn open_path(path: &Path, flags: OFlag, mode: u32) -> io::Result<OwnedFd> {
    openat2(
        AT_FDCWD,
        path,
        how(flags, mode, ResolveFlag::RESOLVE_NO_SYMLINKS),
    )
    .map_err(io_err)
}

/// Open `name` (one component) beneath the directory `dir`, refusing any link.
fn open_beneath(dir: &OwnedFd, name: &OsStr, flags: OFlag, mode: u32) -> io::Result<OwnedFd> {
    let resolve = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS;
    openat2(
        dir,
        Path::new(name),
        how(flags | OFlag::O_NOFOLLOW, mode, resolve),
    )
    .map_err(io_err)
}

fn split(path: &Path) -> io::Result<(&Path, &OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => Ok((
            if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            },
            name,
        )),
        _ => Err(io::Error::other("not a file name (no final component)")),
    }
}

/// Open the directory `path`, creating it and its missing parents; no link is followed.
pub fn create_dir_all(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY;
    match open_path(path, flags, 0) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let (parent, name) = split(path)?;
            let dir = create_dir_all(parent)?;
            match mkdirat(&dir, Path::new(name), Mode::from_bits_truncate(DIR_MODE)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(io_err(e)),
            }
            open_beneath(&dir, name, flags, 0)
        }
        other => other,
    }
}

/// Open a regular file for reading; a link anywhere in `path` is refused, and a FIFO cannot
/// block the open.
pub fn open_read(path: &Path) -> io::Result<File> {
    open_path(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW,
        0,
    )
    .map(File::from)
}

/// Open `path` for appending, creating it (and its dirs) if missing; no link is followed.
pub fn open_append(path: &Path) -> io::Result<File> {
    let (dir, name) = split(path)?;
    let dir = create_dir_all(dir)?;
    let flags = OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT;
    open_beneath(&dir, name, flags, FILE_MODE).map(File::from)
}

/// A new file beside its final name, renamed over it by [`TempFile::persist`]; removed if
/// dropped unpersisted.
pub struct TempFile {
    dir: OwnedFd,
    tmp: String,
    name: std::ffi::OsString,
    /// The open temp file, to write into before persisting.
    pub file: File,
    done: bool,
}

impl TempFile {
    /// A temp file in `path`'s directory (created if missing) that will become `path`.
    pub fn beside(path: &Path) -> io::Result<TempFile> {
        let (dir, name) = split(path)?;
        let dir = create_dir_all(dir)?;
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| io::Error::other(e.to_string()))?;
        let tmp: String = raw
            .iter()
            .fold(".tmp".into(), |s, b| s + &format!("{b:02x}"));
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
        let fd = open_beneath(&dir, OsStr::new(&tmp), flags, FILE_MODE)?;
        // The umask may have narrowed the mode; set it exactly.
        fchmod(&fd, Mode::from_bits_truncate(FILE_MODE)).map_err(io_err)?;
        Ok(TempFile {
            dir,
            tmp,
            name: name.to_owned(),
            file: File::from(fd),
            done: false,
        })
    }

    /// fsync, then rename over the final name (a link there is replaced, never followed).
    pub fn persist(mut self) -> io::Result<()> {
        self.file.sync_all()?;
        renameat(
            &self.dir,
            self.tmp.as_str(),
            &self.dir,
            self.name.as_os_str(),
        )
        .map_err(io_err)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = unlinkat(&self.dir, self.tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

/// Write `bytes` to `path` atomically: a temp file beside it, fsync, rename; no link followed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = TempFile::beside(path)?;
    tmp.file.write_all(bytes)?;
    tmp.persist()
}
