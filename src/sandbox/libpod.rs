//! Container create on Podman through its own (libpod) API. Podman 4.3's Docker-compatible
//! create ignores `HostConfig.CgroupnsMode` (the container would see the host's cgroup
//! namespace) and rejects `nr_inodes=`/`uid=` tmpfs options, so on Podman the same hardened
//! configuration is stated as a libpod spec instead. Everything after create (attach, start,
//! wait, inspect, remove) uses the compatible API. Podman 4.3 ignores the requested OCI runtime
//! in both APIs; [`super::Engine::check_runtime`] refuses any but its default.

use hyper::Method;
use serde_json::{json, Value};

use super::hardening::{labels, CPU_PERIOD, ENGINE_LOG_BYTES, HOME, NOFILE, NPROC, SHM_BYTES};
use super::{ContainerPlan, SandboxError};
use crate::unixhttp::Client;

/// The libpod create request for `plan`; `plan.mounts` must already hold the host-side scratch
/// binds (Podman has no capped tmpfs options).
pub fn spec(plan: &ContainerPlan) -> Value {
    let l = &plan.limits;
    let mut env: serde_json::Map<String, Value> = plan
        .env
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    env.insert("HOME".into(), HOME.into());
    let mounts: Vec<Value> = plan
        .mounts
        .iter()
        .map(|m| {
            json!({
                "destination": m.target,
                "source": m.source.to_string_lossy(),
                "type": "bind",
                "options": ["rbind", "rprivate", if m.read_only { "ro" } else { "rw" }],
            })
        })
        .collect();
    let rlimit = |t: &str, v: i64| json!({ "type": t, "soft": v, "hard": v });
    json!({
        "name": plan.name,
        "image": plan.image,
        "command": plan.argv,
        "entrypoint": [],
        "env": env,
        "user": format!("{uid}:{uid}", uid = super::hardening::sandbox_uid()),
        "work_dir": plan.workdir,
        "hostname": "airlock",
        "labels": labels(plan),
        "netns": { "nsmode": "none" },
        "ipcns": { "nsmode": "private" },
        "cgroupns": { "nsmode": "private" },
        "pidns": { "nsmode": "private" },
        "utsns": { "nsmode": "private" },
        "read_only_filesystem": true,
        "privileged": false,
        "cap_drop": ["ALL"],
        "cap_add": [],
        "no_new_privileges": true,
        "init": true,
        "oci_runtime": plan.runtime,
        "shm_size": SHM_BYTES,
        "resource_limits": {
            "memory": { "limit": l.memory, "swap": l.memory },
            "cpu": { "quota": (l.cpus * CPU_PERIOD as f64) as i64, "period": CPU_PERIOD },
            "pids": { "limit": l.pids },
        },
        "r_limits": [
            rlimit("core", 0),
            rlimit("nofile", NOFILE),
            rlimit("nproc", NPROC),
        ],
        "mounts": mounts,
        "log_configuration": { "driver": "k8s-file", "size": ENGINE_LOG_BYTES },
        "stdin": false,
        "terminal": false,
    })
}

/// Create the container on the Podman service at `endpoint` (`unix://PATH`); returns its id.
pub async fn create(endpoint: &str, plan: &ContainerPlan) -> Result<String, SandboxError> {
    let Some(socket) = endpoint.strip_prefix("unix://") else {
        return Err(SandboxError::Unsupported {
            engine: "podman",
            setting: format!("DOCKER_HOST={endpoint}"),
            detail: "airlock creates Podman containers through the libpod API on a unix socket"
                .into(),
            fix: "point DOCKER_HOST at Podman's socket (unix:///run/podman/podman.sock)".into(),
        });
    };
    let fail = |message: String| SandboxError::Runner {
        message: format!("podman: create container {}: {message}", plan.name),
    };
    let body = serde_json::to_vec(&spec(plan)).map_err(|e| fail(e.to_string()))?;
    let reply = Client::new(socket)
        .call(
            Method::POST,
            "/v4.0.0/libpod/containers/create",
            Some(("application/json", body)),
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
    let v = reply.json();
    if reply.status.is_success() {
        return v["Id"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| fail("no Id in the reply".into()));
    }
    let message = v["message"].as_str().unwrap_or("").to_string();
    if reply.status.as_u16() == 404 && message.contains("image") {
        return Err(SandboxError::ImageMissing {
            image: plan.image.clone(),
        });
    }
    if message.contains("catatonit") {
        return Err(SandboxError::Unsupported {
            engine: "podman",
            setting: "init (an init as PID 1 that reaps zombies)".into(),
            detail: message,
            fix: "install catatonit (`make engine ENGINE=podman` does, or `apt-get install catatonit`)".into(),
        });
    }
    Err(fail(format!("{}: {message}", reply.status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_libpod_spec_states_every_setting_the_compatible_api_would_drop() {
        let plan = crate::sandbox::hardening::tests::plan();
        let s = spec(&plan);
        assert_eq!(s["cgroupns"]["nsmode"], "private");
        assert_eq!(s["ipcns"]["nsmode"], "private");
        assert_eq!(s["netns"]["nsmode"], "none");
        assert_eq!(s["cap_drop"], json!(["ALL"]));
        assert_eq!(s["read_only_filesystem"], true);
        assert_eq!(s["no_new_privileges"], true);
        assert_eq!(s["init"], true);
        assert_eq!(s["resource_limits"]["cpu"]["quota"], 150_000);
        assert_eq!(s["resource_limits"]["memory"]["swap"], 256 << 20);
        assert_eq!(s["resource_limits"]["pids"]["limit"], 64);
        assert_eq!(
            s["r_limits"][1],
            json!({"type": "nofile", "soft": NOFILE, "hard": NOFILE})
        );
        assert_eq!(
            s["mounts"][0]["options"],
            json!(["rbind", "rprivate", "ro"])
        );
        assert_eq!(s["env"]["HOME"], HOME);
        assert!(s.get("tmpfs").is_none(), "no engine tmpfs on podman");
    }
}
