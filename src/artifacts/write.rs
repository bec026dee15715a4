//! Writing artifacts: every file temp-then-rename, copies that never follow links, the bundle.

use std::fs;
use std::path::{Path, PathBuf};

use super::{nofollow, ArtifactError};

/// Write `bytes` to `path` atomically (a temp file in the same dir, fsync, rename), creating
/// its dirs; no symbolic link in the path is followed (see [`super::nofollow`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ArtifactError> {
    nofollow::write_atomic(path, bytes).map_err(ArtifactError::io("write", path))
}

/// What a capped copy left out.
#[derive(Debug, Default)]
pub struct CopyReport {
    /// Bytes copied.
    pub copied_bytes: u64,
    /// Paths left out and why (a link, a device, over the size cap).
    pub skipped: Vec<(PathBuf, &'static str)>,
}

/// Copy regular files and dirs from `src` to `dst`; symlinks, devices, FIFOs and sockets are
/// skipped (never followed), and copying stops at `max_bytes` in total.
pub fn copy_tree(
    src: &Path,
    dst: &Path,
    max_bytes: u64,
    report: &mut CopyReport,
) -> Result<(), ArtifactError> {
    nofollow::create_dir_all(dst).map_err(ArtifactError::io("create dir", dst))?;
    // A link in the source path is refused before listing it (the agent that wrote it is gone
    // by export, so nothing can swap it between this check and the listing).
    nofollow::create_dir_all(src).map_err(ArtifactError::io("open dir", src))?;
    let entries = fs::read_dir(src).map_err(ArtifactError::io("read dir", src))?;
    for entry in entries {
        let entry = entry.map_err(ArtifactError::io("read dir", src))?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let meta = fs::symlink_metadata(&from).map_err(ArtifactError::io("stat", &from))?;
        if meta.is_dir() {
            copy_tree(&from, &to, max_bytes, report)?;
        } else if !meta.is_file() {
            report.skipped.push((from, "not a regular file"));
        } else if report.copied_bytes + meta.len() > max_bytes {
            report.skipped.push((from, "size cap reached"));
        } else {
            copy_file(&from, &to, meta.len())?;
            report.copied_bytes += meta.len();
        }
    }
    Ok(())
}

/// Copy at most `len` bytes, opening the source without following links.
fn copy_file(from: &Path, to: &Path, len: u64) -> Result<(), ArtifactError> {
    use std::io::Read;
    let src = nofollow::open_read(from).map_err(ArtifactError::io("open", from))?;
    let mut bytes = Vec::new();
    src.take(len)
        .read_to_end(&mut bytes)
        .map_err(ArtifactError::io("read", from))?;
    write_atomic(to, &bytes)
}

/// `<dir>/<name>.tar.gz` holding every file under `dir` (but itself), under the prefix `name/`.
/// Files are read and the bundle written without following links.
pub fn bundle(dir: &Path, name: &str) -> Result<PathBuf, ArtifactError> {
    let out = dir.join(format!("{name}.tar.gz"));
    let tmp = nofollow::TempFile::beside(&out)
        .map_err(ArtifactError::io("create temp file for", &out))?;
    let gz = flate2::write::GzEncoder::new(
        tmp.file
            .try_clone()
            .map_err(ArtifactError::io("open", &out))?,
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    let mut files = Vec::new();
    list_files(dir, Path::new(""), &mut files).map_err(ArtifactError::io("list", dir))?;
    for rel in files
        .iter()
        .filter(|r| r.as_os_str() != out.file_name().unwrap_or_default())
    {
        let path = dir.join(rel);
        let file = nofollow::open_read(&path).map_err(ArtifactError::io("add to bundle", &path))?;
        let meta = file.metadata().map_err(ArtifactError::io("stat", &path))?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata(&meta);
        tar.append_data(&mut header, Path::new(name).join(rel), file)
            .map_err(ArtifactError::io("add to bundle", &path))?;
    }
    let gz = tar
        .into_inner()
        .map_err(ArtifactError::io("finish bundle", &out))?;
    gz.finish()
        .map_err(ArtifactError::io("finish bundle", &out))?;
    tmp.persist()
        .map_err(ArtifactError::io("rename into", &out))?;
    Ok(out)
}

fn list_files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let r = rel.join(e.file_name());
        let ft = e.file_type()?;
        if ft.is_dir() {
            list_files(root, &r, out)?;
        } else if ft.is_file() && !e.file_name().to_string_lossy().starts_with(".tmp") {
            out.push(r);
        }
    }
    Ok(())
}
