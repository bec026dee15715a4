//! The hardened container configuration, as a pure function of a [`ContainerPlan`].
//!
//! Every container airlock starts goes through [`create_body`]: no network, read-only root,
//! all capabilities dropped, no-new-privileges, uid 1000, an init, cgroup limits, capped tmpfs,
//! only declared environment values, and airlock's labels.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigCgroupnsModeEnum, HostConfigLogConfig, Mount,
    MountBindOptions, MountBindOptionsPropagationEnum, MountType, ResourcesUlimits,
};

use super::{LABEL_LOCK, LABEL_MANAGED, LABEL_ROLE, LABEL_SESSION, LABEL_TASK};

/// The sandbox user. Work trees are owned by it.
pub const SANDBOX_UID: u32 = 1000;
/// The sandbox uid when `operator.toml` sets none.
pub const DEFAULT_SANDBOX_UID: u32 = SANDBOX_UID;
/// HOME inside the container, on a tmpfs.
pub const HOME: &str = "/home/agent";
/// Bytes the engine may keep on disk for one container's log stream (airlock caps its own copy).
const ENGINE_LOG_MAX: &str = "16m";

/// A host directory bound into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// Resource limits applied through cgroups and tmpfs options.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxLimits {
    pub cpus: f64,
    pub memory: u64,
    pub pids: i64,
    pub tmpfs: u64,
    pub tmpfs_inodes: u64,
}

/// Everything that varies between containers; the rest is fixed hardening.
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    pub name: String,
    pub image: String,
    pub argv: Vec<String>,
    /// Declared values only; the host's environment is never passed through.
    pub env: Vec<(String, String)>,
    pub task_id: String,
    pub session: String,
    pub role: String,
    pub runtime: String,
    pub mounts: Vec<MountPlan>,
    pub limits: SandboxLimits,
    pub workdir: String,
    /// The task's lock file (labelled, so a sweep can tell live containers from orphans).
    pub lock: Option<PathBuf>,
}

/// The engine request for `plan`.
pub fn create_body(plan: &ContainerPlan) -> ContainerCreateBody {
    let mut env: Vec<String> = plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.push(format!("HOME={HOME}"));
    ContainerCreateBody {
        image: Some(plan.image.clone()),
        cmd: Some(plan.argv.clone()),
        // The image's entrypoint could wrap our argv in a shell; the argv is run as given.
        entrypoint: Some(vec![]),
        env: Some(env),
        user: Some(format!("{SANDBOX_UID}:{SANDBOX_UID}")),
        working_dir: Some(plan.workdir.clone()),
        hostname: Some("airlock".into()),
        labels: Some(labels(plan)),
        network_disabled: Some(true),
        attach_stdin: Some(false),
        open_stdin: Some(false),
        tty: Some(false),
        host_config: Some(host_config(plan)),
        ..Default::default()
    }
}

fn labels(plan: &ContainerPlan) -> HashMap<String, String> {
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

fn host_config(plan: &ContainerPlan) -> HostConfig {
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
        ulimits: Some(vec![ResourcesUlimits {
            name: Some("core".into()),
            soft: Some(0),
            hard: Some(0),
        }]),
        tmpfs: Some(tmpfs(l)),
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

/// `/tmp` and HOME: size- and inode-capped, no devices, no setuid.
fn tmpfs(l: &SandboxLimits) -> HashMap<String, String> {
    let caps = format!(
        "rw,nosuid,nodev,size={},nr_inodes={}",
        l.tmpfs, l.tmpfs_inodes
    );
    HashMap::from([
        ("/tmp".to_string(), format!("{caps},mode=1777")),
        (
            HOME.to_string(),
            format!("{caps},mode=0700,uid={SANDBOX_UID},gid={SANDBOX_UID}"),
        ),
    ])
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
mod tests {
    use super::*;

    fn plan() -> ContainerPlan {
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
        }
    }

    #[test]
    fn every_hardening_setting_is_present() {
        let b = create_body(&plan());
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
        assert_eq!(b.user.as_deref(), Some("1000:1000"));
        assert!(h.tmpfs.as_ref().unwrap()["/tmp"].contains("nr_inodes=100"));
        assert!(
            h.binds.is_none(),
            "no string binds: paths with ':' must not be parsed"
        );
    }

    #[test]
    fn environment_is_only_what_was_declared() {
        let b = create_body(&plan());
        assert_eq!(
            b.env.unwrap(),
            vec!["MODE=good".to_string(), format!("HOME={HOME}")]
        );
        assert_eq!(b.labels.unwrap()[LABEL_MANAGED], "true");
    }
}
