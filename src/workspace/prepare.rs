//! prepare: mirror the source, resolve the base, and give the task a work tree.

use std::fs;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::{Path, PathBuf};

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use nix::fcntl::{Flock, FlockArg};

use super::bounded::{run_bounded, Bounds, SizeWatch};
use super::git::{args, git, git_no_dir, run};
use super::mount::{mount_overlay, writable_layer};
use super::{TaskLock, Workspace, WorkspaceError};
use crate::policy::prepare_limits::PrepareLimits;
use crate::policy::repo_access::SshIdentity;
use crate::spec::RepoSpec;

/// Where and how to prepare.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// airlock's state dir (host-owned); caches and task dirs live under it.
    pub state_dir: PathBuf,
    /// The task the checkout is for (names its dir).
    pub task_id: String,
    /// L0: the pristine tree is mounted read-only, no overlay.
    pub read_only: bool,
    /// Bytes and inodes the agent (and, separately, the gate) may write.
    pub write_caps: (u64, u64),
    /// `operator.toml` `[prepare]`.
    pub limits: PrepareLimits,
    /// The operator's ssh identity for `ssh://` sources (none: ssh fails).
    pub ssh: Option<SshIdentity>,
    /// Set to stop the prepare (git is killed, the step fails [`WorkspaceError::Cancelled`]).
    pub cancel: Arc<AtomicBool>,
    /// The uid that owns the extracted tree (the sandbox user).
    pub sandbox_uid: u32,
    /// Told how far clone, fetch and checkout got (off by default).
    pub progress: super::StepProgress,
}

impl PrepareOptions {
    /// Default limits, no ssh, not cancelled, the default sandbox uid.
    pub fn new(state_dir: PathBuf, task_id: &str, read_only: bool, write_caps: (u64, u64)) -> Self {
        PrepareOptions {
            state_dir,
            task_id: task_id.into(),
            read_only,
            write_caps,
            limits: PrepareLimits::default(),
            ssh: None,
            cancel: Arc::new(AtomicBool::new(false)),
            sandbox_uid: crate::sandbox::hardening::sandbox_uid(),
            progress: Default::default(),
        }
    }
}

/// Prepare a checkout of `repo.base` for one task.
pub fn prepare(repo: &RepoSpec, opts: &PrepareOptions) -> Result<Workspace, WorkspaceError> {
    let cache = opts.state_dir.join("cache");
    private_dir(&opts.state_dir)?;
    private_dir(&cache)?;
    let bounds = Bounds {
        deadline: Instant::now() + opts.limits.git_timeout,
        budget: opts.limits.git_timeout,
        cancel: opts.cancel.clone(),
    };
    super::evict::evict_caches(&cache, &opts.limits, std::time::SystemTime::now());
    let mut holds = Vec::new();
    let git_dir = mirror(&repo.url, &cache.join("repos"), opts, &bounds, &mut holds)?;
    let base_commit = resolve(&git_dir, repo)?;
    let pristine = pristine_tree(
        &git_dir,
        &base_commit,
        &cache.join("trees"),
        opts,
        &bounds,
        &mut holds,
    )?;
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
    let (upper, work_tree) = if opts.read_only {
        (None, pristine.clone())
    } else {
        let (upper, merged) = overlay(&root, &pristine, opts.write_caps)?;
        (Some(upper), merged)
    };
    Ok(Workspace {
        root,
        git_dir,
        objects,
        work_tree,
        upper,
        pristine,
        write_caps: opts.write_caps,
        base_commit,
        lock,
        holds,
    })
}

fn private_dir(p: &Path) -> Result<(), WorkspaceError> {
    fs::create_dir_all(p).map_err(WorkspaceError::io("create dir", p))?;
    fs::set_permissions(p, fs::Permissions::from_mode(0o700))
        .map_err(WorkspaceError::io("chmod", p))
}

/// Take the mirror's lock, giving up when the prepare is cancelled or out of time (another
/// task's fetch holding it is itself bounded).
fn lock_mirror(path: &Path, bounds: &Bounds) -> Result<Flock<fs::File>, WorkspaceError> {
    let mut file = fs::File::create(path).map_err(WorkspaceError::io("create lock", path))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => return Ok(l),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) => file = f,
            Err((_, e)) => return Err(WorkspaceError::io("lock", path)(e.into())),
        }
        if bounds.cancel.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(WorkspaceError::Cancelled);
        }
        if Instant::now() >= bounds.deadline {
            return Err(WorkspaceError::PrepareTimeout {
                what: "waiting for the mirror lock".into(),
                limit: bounds.budget,
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A host-owned bare mirror of `url`: cloned once (`--no-local`, no hooks, no submodules), then
/// fetched. The URL always comes from the spec, never from repository config. Clone and fetch
/// are bounded in time and in the mirror's size, and cancellable.
fn mirror(
    url: &str,
    repos: &Path,
    opts: &PrepareOptions,
    bounds: &Bounds,
    holds: &mut Vec<Flock<fs::File>>,
) -> Result<PathBuf, WorkspaceError> {
    private_dir(repos)?;
    let dir = repos.join(format!("{}.git", short_hash(url)));
    let lock_path = repos.join(format!("{}.lock", short_hash(url)));
    let _lock = lock_mirror(&lock_path, bounds)?;
    holds.push(super::evict::hold(&dir)?);
    let source_err = |e: WorkspaceError| match e {
        e @ (WorkspaceError::TooLarge { .. }
        | WorkspaceError::PrepareTimeout { .. }
        | WorkspaceError::Cancelled) => e,
        e => WorkspaceError::Source {
            url: url.into(),
            message: e.to_string(),
        },
    };
    let limit = opts.limits.mirror_bytes;
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
        let mut clone = args(clone, [url.as_ref(), tmp.as_os_str()]);
        ssh_env(&mut clone, opts.ssh.as_ref());
        let watch = SizeWatch {
            dir: &tmp,
            limit,
            what: "mirror",
            progress: &opts.progress,
            total: None,
        };
        let cloned = run_bounded(clone, "clone", bounds, Some(watch));
        if let Err(e) = cloned {
            let _ = fs::remove_dir_all(&tmp);
            return Err(source_err(e));
        }
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
    let mut fetch = args(
        fetch,
        ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
    );
    ssh_env(&mut fetch, opts.ssh.as_ref());
    let watch = SizeWatch {
        dir: &dir,
        limit,
        what: "mirror",
        progress: &opts.progress,
        total: None,
    };
    run_bounded(fetch, "fetch", bounds, Some(watch)).map_err(source_err)?;
    super::evict::touch(&dir);
    Ok(dir)
}

/// `ssh://` sources use only the operator's key and known_hosts: no ssh config, no agent, no
/// `~/.ssh` of root, strict host key checking, no prompts.
fn ssh_env(cmd: &mut std::process::Command, ssh: Option<&SshIdentity>) {
    let Some(id) = ssh else {
        return;
    };
    cmd.env("GIT_SSH_COMMAND", ssh_command(id));
    cmd.env("GIT_SSH_VARIANT", "ssh");
}

/// The `GIT_SSH_COMMAND` for `id` (a shell string: paths are single-quoted).
pub fn ssh_command(id: &SshIdentity) -> String {
    let q = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    format!(
        "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none \
         -o IdentityFile={} -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null \
         -o StrictHostKeyChecking=yes -o ConnectTimeout=30 -o ServerAliveInterval=15",
        q(&id.key),
        q(&id.known_hosts)
    )
}

/// `repo.base` as a branch (`refs/heads/<base>`, never a tag or other ref of that name) or a
/// full 40-hex commit id (never an abbreviation a ref could shadow).
fn resolve(git_dir: &Path, repo: &RepoSpec) -> Result<String, WorkspaceError> {
    let base = &repo.base;
    let full_hex = base.len() == 40 && base.bytes().all(|b| b.is_ascii_hexdigit());
    let spec = if full_hex {
        format!("{}^{{commit}}", base.to_ascii_lowercase())
    } else {
        format!("refs/heads/{base}^{{commit}}")
    };
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
    let missing = || WorkspaceError::BaseMissing {
        url: repo.url.clone(),
        base: repo.base.clone(),
    };
    let out = run(cmd, "rev-parse").map_err(|_| missing())?;
    let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if full_hex && !commit.eq_ignore_ascii_case(base) {
        return Err(missing());
    }
    Ok(commit)
}

/// The base commit's files, extracted once, owned by the sandbox uid, shared read-only. The
/// tree is measured first (`ls-tree`): over `checkout_bytes` or `checkout_files` nothing is
/// written.
fn pristine_tree(
    git_dir: &Path,
    commit: &str,
    trees: &Path,
    opts: &PrepareOptions,
    bounds: &Bounds,
    holds: &mut Vec<Flock<fs::File>>,
) -> Result<PathBuf, WorkspaceError> {
    private_dir(trees)?;
    let uid = opts.sandbox_uid;
    let done = trees.join(format!("{commit}-u{uid}"));
    holds.push(super::evict::hold(&done)?);
    if done.is_dir() {
        super::evict::touch(&done);
        return Ok(done);
    }
    let bytes = super::tree_size::check(git_dir, commit, &opts.limits, bounds)?;
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
    let extracted = run_bounded(read, "read-tree", bounds, None).and_then(|_| {
        let mut co = args(git(git_dir), ["checkout-index", "--all", "--force"]);
        co.env("GIT_INDEX_FILE", &index)
            .env("GIT_WORK_TREE", &tmp)
            .current_dir(&tmp);
        let watch = SizeWatch {
            dir: &tmp,
            limit: opts.limits.checkout_bytes,
            what: "checkout",
            progress: &opts.progress,
            total: Some(bytes),
        };
        run_bounded(co, "checkout-index", bounds, Some(watch))
    });
    let _ = fs::remove_file(&index);
    if let Err(e) = extracted.and_then(|_| chown_tree(&tmp, uid)) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    super::evict::record_size(&done, bytes);
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
