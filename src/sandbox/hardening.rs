//! The hardened container configuration, as a pure function of a [`ContainerPlan`].
//!
//! Every container airlock starts goes through [`create_body`]: no network, read-only root,
//! all capabilities dropped, no-new-privileges, the operator's sandbox uid (default 65532), an init, cgroup limits, capped tmpfs,
//! only declared environment values, and airlock's labels.
//!
//! Every mount and limit is stated, never left to an engine default (dockerd and Podman differ):
//!
//! | where          | what                           | exec     | caps                               |
//! |----------------|--------------------------------|----------|------------------------------------|
//! | `/`            | the image, read-only           | yes      | read-only                          |
//! | `/workspace`   | the task's checkout (bind)     | yes: the repo's own scripts and builds run there | policy `limits.workspace` (host tmpfs layer) |
//! | `/airlock`     | the task packet (bind)         | -        | read-only                          |
//! | `/airlock/out` | the agent's report (bind)      | noexec   | policy `limits.out` (host tmpfs)   |
//! | `/tmp`         | scratch, mode 1777             | noexec   | `limits.tmpfs` bytes, `tmpfs_inodes` |
//! | HOME           | scratch, mode 0700, sandbox uid | noexec   | `limits.tmpfs` bytes, `tmpfs_inodes` |
//! | `/dev/shm`     | shared memory                  | noexec   | [`SHM_BYTES`]                      |
//! | `/run`, `/var/tmp` | part of the read-only root (on Podman: an empty read-only bind, see [`READ_ONLY_OVER`]) | - | read-only |
//!
//! `/tmp` and HOME are noexec so that nothing an agent writes there runs in the gate (it gets
//! its own fresh ones anyway) and so a dropped binary cannot be run from scratch space; tools
//! that build and run binaries (e.g. `go test`) can point their temp dir into `/workspace`
//! (`GOTMPDIR=/workspace/.tmp`). On dockerd they are engine tmpfs mounts with these options; on
//! Podman, whose tmpfs options cannot carry `nr_inodes=` or `uid=`, they are host-side tmpfs
//! mounts with the same options, bound in ([`super::hostfs`]).
//!
//! Ulimits: `core` 0 (no dumps), `nofile` [`NOFILE`], `nproc` [`NPROC`]. The pids cgroup
//! (`limits.pids`) is the per-container process cap; `nproc` counts every process of the sandbox uid
//! on the host, so it is a backstop set high enough for concurrent tasks, never the cap.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigCgroupnsModeEnum, HostConfigLogConfig, Mount,
    MountBindOptions, MountBindOptionsPropagationEnum, MountType, ResourcesUlimits,
};

use super::detect::EngineKind;
use super::{LABEL_LOCK, LABEL_MANAGED, LABEL_ROLE, LABEL_SESSION, LABEL_TASK};

/// The sandbox uid when `operator.toml` sets none: 65532 (distroless's `nonroot`), from the
/// range Debian never gives host accounts.
pub const DEFAULT_SANDBOX_UID: u32 = 65532;

/// This process's sandbox uid (= gid): `operator.toml` `[sandbox] uid`, applied once the
/// policies are loaded ([`use_sandbox_uid`]); [`DEFAULT_SANDBOX_UID`] before that.
static SANDBOX_UID: std::sync::atomic::AtomicU32 =
    std::sync::atomic::AtomicU32::new(DEFAULT_SANDBOX_UID);

/// The sandbox user (and group). Work trees, HOME and the proxy sockets are owned by it.
pub fn sandbox_uid() -> u32 {
    SANDBOX_UID.load(std::sync::atomic::Ordering::Relaxed)
}

/// Run every later container of this process as `uid` (the operator's setting; one per
/// runner process, like its policy directory).
pub fn use_sandbox_uid(uid: u32) {
    SANDBOX_UID.store(uid, std::sync::atomic::Ordering::Relaxed);
}
/// HOME inside the container, on a tmpfs.
pub const HOME: &str = "/home/agent";
/// Bytes the engine may keep on disk for one container's log stream (airlock caps its own copy).
const ENGINE_LOG_MAX: &str = "16m";
/// [`ENGINE_LOG_MAX`] in bytes.
pub const ENGINE_LOG_BYTES: i64 = 16 << 20;
/// CFS period for CPU quotas (the engines' default, 100 ms).
pub const CPU_PERIOD: i64 = 100_000;
/// Size of `/dev/shm` (stated; both engines default to 64 MiB).
pub const SHM_BYTES: i64 = 64 << 20;
/// Open files per process (soft = hard).
pub const NOFILE: i64 = 8192;
/// Processes of the sandbox uid (soft = hard); see the module doc.
pub const NPROC: i64 = 16384;

/// One scratch mount (`/tmp`, HOME): where, its mode, and whether the sandbox uid owns it.
#[derive(Debug)]
pub struct ScratchMount {
    /// Directory name of its host-side mount (see [`super::hostfs`]).
    pub key: &'static str,
    /// Where it is mounted in the container.
    pub target: &'static str,
    /// Its permission bits.
    pub mode: u32,
    /// Owned by [`sandbox_uid`] (else root).
    pub owned: bool,
}

/// Paths an engine may mount writable tmpfs over a read-only root by itself (Podman's
/// `--read-only-tmpfs`); where the engine does, airlock binds a read-only dir there, empty but
/// for the mount points the engine itself needs inside (Podman binds its init at
/// `/run/podman-init`).
pub const READ_ONLY_OVER: [(&str, &str, &[&str]); 2] = [
    ("run", "/run", &["podman-init"]),
    ("var-tmp", "/var/tmp", &[]),
];

/// `/tmp` (shared, sticky) and HOME (private to the sandbox user).
pub const SCRATCH_MOUNTS: [ScratchMount; 2] = [
    ScratchMount {
        key: "tmp",
        target: "/tmp",
        mode: 0o1777,
        owned: false,
    },
    ScratchMount {
        key: "home",
        target: HOME,
        mode: 0o700,
        owned: true,
    },
];

/// A host directory bound into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// The host path.
    pub source: PathBuf,
    /// Where it appears in the container.
    pub target: String,
    /// Whether the container may only read it.
    pub read_only: bool,
}

/// Resource limits applied through cgroups and tmpfs options.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxLimits {
    /// CPUs (fractions allowed), as a CFS quota.
    pub cpus: f64,
    /// Memory in bytes; swap is not allowed beyond it.
    pub memory: u64,
    /// Most processes and threads at once.
    pub pids: i64,
    /// Bytes each scratch mount (`/tmp`, HOME) may hold.
    pub tmpfs: u64,
    /// Inodes each scratch mount may hold.
    pub tmpfs_inodes: u64,
}

/// Everything that varies between containers; the rest is fixed hardening.
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    /// The container's name (`airlock-<task>-<role><attempt>-...`).
    pub name: String,
    /// The image, which must already be on the engine.
    pub image: String,
    /// The command to run.
    pub argv: Vec<String>,
    /// Declared values only; the host's environment is never passed through.
    pub env: Vec<(String, String)>,
    /// The task it belongs to (a label).
    pub task_id: String,
    /// The runner session that created it (a label; sweeps remove other sessions' leftovers).
    pub session: String,
    /// `agent` or `gate` (a label).
    pub role: String,
    /// The OCI runtime (`runc`, `runsc`).
    pub runtime: String,
    /// Host directories bound in (the work tree, `out/`, sockets).
    pub mounts: Vec<MountPlan>,
    /// cgroup and tmpfs limits.
    pub limits: SandboxLimits,
    /// The working directory inside the container.
    pub workdir: String,
    /// The task's lock file (labelled, so a sweep can tell live containers from orphans).
    pub lock: Option<PathBuf>,
    /// A host directory inside the task's dir where the engine module may mount per-container
    /// scratch tmpfs (engines without capped tmpfs options, see [`engine_tmpfs`]); recovery of
    /// the task dir unmounts whatever a crash left there.
    pub scratch: PathBuf,
}

/// Whether `kind` mounts `/tmp` and HOME itself (dockerd) or needs them bound in from host-side
/// tmpfs mounts (Podman: no `nr_inodes=`/`uid=` tmpfs options).
pub fn engine_tmpfs(kind: EngineKind) -> bool {
    kind == EngineKind::Docker
}

/// The engine request for `plan` on an engine of `kind`. Where `kind` cannot carry the tmpfs
/// caps ([`engine_tmpfs`]), `plan.mounts` must already hold the host-side scratch binds.
pub fn create_body(plan: &ContainerPlan, kind: EngineKind) -> ContainerCreateBody {
    let mut env: Vec<String> = plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.push(format!("HOME={HOME}"));
    ContainerCreateBody {
        image: Some(plan.image.clone()),
        cmd: Some(plan.argv.clone()),
        // The image's entrypoint could wrap our argv in a shell; the argv is run as given.
        entrypoint: Some(vec![]),
        env: Some(env),
        user: Some(format!("{uid}:{uid}", uid = sandbox_uid())),
        working_dir: Some(plan.workdir.clone()),
        hostname: Some("airlock".into()),
        labels: Some(labels(plan)),
        network_disabled: Some(true),
        attach_stdin: Some(false),
        open_stdin: Some(false),
        tty: Some(false),
        host_config: Some(host_config(plan, kind)),
        ..Default::default()
    }
}

/// airlock's labels on every container.
pub fn labels(plan: &ContainerPlan) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_TASK.to_string(), plan.task_id.clone()),
        (LABEL_SESSION.to_string(), plan.session.clone()),
        (LABEL_ROLE.to_string(), plan.role.clone()),
    ]);
    if let Some(lock) = &plan.lock {
        labels.insert(LABEL_LOCK.to_string(), lock.to_string_lossy().into_owned());
    }
    labels
}

fn host_config(plan: &ContainerPlan, kind: EngineKind) -> HostConfig {
    let l = &plan.limits;
    HostConfig {
        network_mode: Some("none".into()),
        readonly_rootfs: Some(true),
        privileged: Some(false),
        cap_drop: Some(vec!["ALL".into()]),
        cap_add: Some(vec![]),
        security_opt: Some(vec!["no-new-privileges:true".into()]),
        init: Some(true),
        pids_limit: Some(l.pids),
        memory: Some(l.memory as i64),
        memory_swap: Some(l.memory as i64),
        memory_swappiness: None,
        nano_cpus: Some((l.cpus * 1e9) as i64),
        ulimits: Some(vec![
            ulimit("core", 0),
            ulimit("nofile", NOFILE),
            ulimit("nproc", NPROC),
        ]),
        shm_size: Some(SHM_BYTES),
        tmpfs: engine_tmpfs(kind).then(|| tmpfs(l)),
        mounts: Some(plan.mounts.iter().map(bind).collect()),
        ipc_mode: Some("private".into()),
        cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
        runtime: Some(plan.runtime.clone()),
        auto_remove: Some(false),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(HashMap::from([
                ("max-size".to_string(), ENGINE_LOG_MAX.to_string()),
                ("max-file".to_string(), "1".to_string()),
            ])),
        }),
        ..Default::default()
    }
}

fn ulimit(name: &str, value: i64) -> ResourcesUlimits {
    ResourcesUlimits {
        name: Some(name.into()),
        soft: Some(value),
        hard: Some(value),
    }
}

/// `/tmp` and HOME as engine tmpfs: size- and inode-capped, noexec, no devices, no setuid.
fn tmpfs(l: &SandboxLimits) -> HashMap<String, String> {
    SCRATCH_MOUNTS
        .iter()
        .map(|m| {
            let mut opts = format!(
                "rw,noexec,nosuid,nodev,size={},nr_inodes={},mode={:o}",
                l.tmpfs, l.tmpfs_inodes, m.mode
            );
            if m.owned {
                opts.push_str(&format!(",uid={uid},gid={uid}", uid = sandbox_uid()));
            }
            (m.target.to_string(), opts)
        })
        .collect()
}

fn bind(m: &MountPlan) -> Mount {
    Mount {
        target: Some(m.target.clone()),
        source: Some(m.source.to_string_lossy().into_owned()),
        typ: Some(MountType::BIND),
        read_only: Some(m.read_only),
        bind_options: Some(MountBindOptions {
            propagation: Some(MountBindOptionsPropagationEnum::RPRIVATE),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A plan with every setting a spec states (the libpod spec's test uses it too).
    pub(in crate::sandbox) fn plan() -> ContainerPlan {
        ContainerPlan {
            name: "airlock-t-agent1".into(),
            image: "img".into(),
            argv: vec!["true".into()],
            env: vec![("MODE".into(), "good".into())],
            task_id: "t".into(),
            session: "s".into(),
            role: "agent".into(),
            runtime: "runc".into(),
            mounts: vec![MountPlan {
                source: "/w".into(),
                target: "/workspace".into(),
                read_only: true,
            }],
            limits: SandboxLimits {
                cpus: 1.5,
                memory: 256 << 20,
                pids: 64,
                tmpfs: 1 << 20,
                tmpfs_inodes: 100,
            },
            workdir: "/workspace".into(),
            lock: None,
            scratch: "/s".into(),
        }
    }

    #[test]
    fn every_hardening_setting_is_present() {
        let b = create_body(&plan(), EngineKind::Docker);
        let h = b.host_config.as_ref().unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.privileged, Some(false));
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(h.cap_add, Some(vec![]));
        assert_eq!(h.init, Some(true));
        assert_eq!(h.memory, h.memory_swap);
        assert_eq!(h.nano_cpus, Some(1_500_000_000));
        assert_eq!(h.pids_limit, Some(64));
        assert!(h
            .security_opt
            .as_ref()
            .unwrap()
            .iter()
            .any(|s| s.starts_with("no-new-privileges")));
        assert_eq!(b.user.as_deref(), Some("65532:65532"));
        let t = h.tmpfs.as_ref().unwrap();
        assert_eq!(
            t["/tmp"],
            "rw,noexec,nosuid,nodev,size=1048576,nr_inodes=100,mode=1777"
        );
        assert_eq!(
            t[HOME],
            "rw,noexec,nosuid,nodev,size=1048576,nr_inodes=100,mode=700,uid=65532,gid=65532"
        );
        let limits: Vec<_> = h
            .ulimits
            .as_ref()
            .unwrap()
            .iter()
            .map(|u| (u.name.clone().unwrap(), u.soft.unwrap(), u.hard.unwrap()))
            .collect();
        assert_eq!(
            limits,
            vec![
                ("core".to_string(), 0, 0),
                ("nofile".to_string(), NOFILE, NOFILE),
                ("nproc".to_string(), NPROC, NPROC)
            ]
        );
        assert_eq!(h.shm_size, Some(SHM_BYTES));
        assert!(
            h.binds.is_none(),
            "no string binds: paths with ':' must not be parsed"
        );
    }

    #[test]
    fn podman_gets_no_engine_tmpfs_only_the_binds_in_the_plan() {
        let b = create_body(&plan(), EngineKind::Podman);
        let h = b.host_config.unwrap();
        assert!(h.tmpfs.is_none());
        assert_eq!(h.mounts.unwrap().len(), 1);
        assert_eq!(h.ulimits.unwrap().len(), 3);
    }

    #[test]
    fn environment_is_only_what_was_declared() {
        let b = create_body(&plan(), EngineKind::Docker);
        assert_eq!(
            b.env.unwrap(),
            vec!["MODE=good".to_string(), format!("HOME={HOME}")]
        );
        assert_eq!(b.labels.unwrap()[LABEL_MANAGED], "true");
    }
}
