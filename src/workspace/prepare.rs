//! prepare: mirror the source, resolve the base, and give the task a work tree.

use std::fs;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::{Path, PathBuf};

use super::git::{args, git, git_no_dir, run};
use super::mount::{mount_overlay, writable_layer};
use super::{TaskLock, Workspace, WorkspaceError};
use crate::sandbox::hardening::SANDBOX_UID;
use crate::spec::RepoSpec;

/// Where and how to prepare.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// airlock's state dir (host-owned); caches and task dirs live under it.
    pub state_dir: PathBuf,
    pub task_id: String,
    /// L0: the pristine tree is mounted read-only, no overlay.
    pub read_only: bool,
    /// Bytes and inodes the agent (and, separately, the gate) may write.
    pub write_caps: (u64, u64),
}

/// Prepare a checkout of `repo.base` for one task.
pub fn prepare(repo: &RepoSpec, opts: &PrepareOptions) -> Result<Workspace, WorkspaceError> {
    let cache = opts.state_dir.join("cache");
    private_dir(&opts.state_dir)?;
    private_dir(&cache)?;
    let git_dir = mirror(&repo.url, &cache.join("repos"))?;
    let base_commit = resolve(&git_dir, repo)?;
    let pristine = pristine_tree(&git_dir, &base_commit, &cache.join("trees"))?;
    let root = opts.state_dir.join("tasks").join(&opts.task_id);
    private_dir(&opts.state_dir.join("tasks"))?;
    let lock =
        TaskLock::try_acquire(&opts.state_dir.join("tasks"), &opts.task_id)?.ok_or_else(|| {
            WorkspaceError::io("lock", &root)(std::io::Error::other("task is already running"))
        })?;
    fs::create_dir(&root).map_err(WorkspaceError::io("create task dir", &root))?;
    fs::set_permissions(&root, fs::Permissions::from_mode(0o700))
        .map_err(WorkspaceError::io("chmod", &root))?;
    let objects = root.join("objects");
    fs::create_dir(&objects).map_err(WorkspaceError::io("create dir", &objects))?;
    if opts.read_only {
        return Ok(Workspace {
            root,
            git_dir,
            objects,
            work_tree: pristine.clone(),
            upper: None,
            pristine,
            write_caps: opts.write_caps,
            base_commit,
            lock,
        });
    }
    let (upper, work_tree) = overlay(&root, &pristine, opts.write_caps)?;
    Ok(Workspace {
        root,
        git_dir,
        objects,
        work_tree,
        upper: Some(upper),
        pristine,
        write_caps: opts.write_caps,
        base_commit,
        lock,
    })
}

fn private_dir(p: &Path) -> Result<(), WorkspaceError> {
    fs::create_dir_all(p).map_err(WorkspaceError::io("create dir", p))?;
    fs::set_permissions(p, fs::Permissions::from_mode(0o700))
        .map_err(WorkspaceError::io("chmod", p))
}

/// A host-owned bare mirror of `url`: cloned once (`--no-local`, no hooks, no submodules), then
/// fetched. The URL always comes from the spec, never from repository config.
fn mirror(url: &str, repos: &Path) -> Result<PathBuf, WorkspaceError> {
    private_dir(repos)?;
    let dir = repos.join(format!("{}.git", short_hash(url)));
    let lock_path = repos.join(format!("{}.lock", short_hash(url)));
    let lock_file =
        fs::File::create(&lock_path).map_err(WorkspaceError::io("create lock", &lock_path))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| WorkspaceError::io("lock", &lock_path)(e.into()))?;
    let source_err = |e: WorkspaceError| WorkspaceError::Source {
        url: url.into(),
        message: e.to_string(),
    };
    if !dir.join("HEAD").exists() {
        let tmp = repos.join(format!("{}.tmp-{}", short_hash(url), std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let clone = args(
            git_no_dir(),
            [
                "clone",
                "--bare",
                "--no-local",
                "--no-hardlinks",
                "--template=",
                "--no-recurse-submodules",
                "--quiet",
                "--",
            ],
        );
        run(args(clone, [url.as_ref(), tmp.as_os_str()]), "clone").map_err(source_err)?;
        fs::rename(&tmp, &dir).map_err(WorkspaceError::io("rename", &dir))?;
        return Ok(dir);
    }
    let fetch = args(
        git(&dir),
        [
            "fetch",
            "--quiet",
            "--prune",
            "--force",
            "--no-recurse-submodules",
            "--no-write-fetch-head",
            "--",
            url,
        ],
    );
    run(
        args(
            fetch,
            ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
        ),
        "fetch",
    )
    .map_err(source_err)?;
    Ok(dir)
}

fn resolve(git_dir: &Path, repo: &RepoSpec) -> Result<String, WorkspaceError> {
    let spec = format!("{}^{{commit}}", repo.base);
    let cmd = args(
        git(git_dir),
        [
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
    );
    let out = run(cmd, "rev-parse").map_err(|_| WorkspaceError::BaseMissing {
        url: repo.url.clone(),
        base: repo.base.clone(),
    })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The base commit's files, extracted once, owned by the sandbox uid, shared read-only.
fn pristine_tree(git_dir: &Path, commit: &str, trees: &Path) -> Result<PathBuf, WorkspaceError> {
    private_dir(trees)?;
    let done = trees.join(commit);
    if done.is_dir() {
        return Ok(done);
    }
    let tmp = trees.join(
        format!(
            "{commit}.tmp-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        )
        .replace(['(', ')'], ""),
    );
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp).map_err(WorkspaceError::io("create dir", &tmp))?;
    let index = tmp.with_extension("index");
    let mut read = args(git(git_dir), ["read-tree", commit]);
    read.env("GIT_INDEX_FILE", &index);
    run(read, "read-tree")?;
    let mut co = args(git(git_dir), ["checkout-index", "--all", "--force"]);
    co.env("GIT_INDEX_FILE", &index)
        .env("GIT_WORK_TREE", &tmp)
        .current_dir(&tmp);
    run(co, "checkout-index")?;
    let _ = fs::remove_file(&index);
    chown_tree(&tmp, SANDBOX_UID)?;
    match fs::rename(&tmp, &done) {
        Ok(()) => Ok(done),
        // Another task extracted the same commit first.
        Err(_) if done.is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(done)
        }
        Err(e) => Err(WorkspaceError::io("rename", &done)(e)),
    }
}

/// chown every entry under `dir` without following symlinks.
fn chown_tree(dir: &Path, uid: u32) -> Result<(), WorkspaceError> {
    lchown(dir, Some(uid), Some(uid)).map_err(WorkspaceError::io("chown", dir))?;
    for entry in fs::read_dir(dir).map_err(WorkspaceError::io("read dir", dir))? {
        let entry = entry.map_err(WorkspaceError::io("read dir", dir))?;
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(WorkspaceError::io("stat", &path))?;
        if ft.is_dir() {
            chown_tree(&path, uid)?;
        } else {
            lchown(&path, Some(uid), Some(uid)).map_err(WorkspaceError::io("chown", &path))?;
        }
    }
    Ok(())
}

/// Mount the task's overlay: pristine lower, task-owned upper.
fn overlay(
    root: &Path,
    pristine: &Path,
    caps: (u64, u64),
) -> Result<(PathBuf, PathBuf), WorkspaceError> {
    let (upper, work) = writable_layer(&root.join("rw"), caps)?;
    let merged = root.join("workspace");
    fs::create_dir(&merged).map_err(WorkspaceError::io("create dir", &merged))?;
    mount_overlay(pristine, &upper, &work, &merged)?;
    Ok((upper, merged))
}

/// First 16 hex chars of FNV-1a 64 over `s`: a stable, path-safe cache key.
pub fn short_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}
