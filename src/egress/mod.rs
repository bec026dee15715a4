//! Model-API egress: the one narrow door a sandbox gets to a model provider, without a network
//! and without a key.
//!
//! For each provider a task is granted, [`Egress::start`] serves a [`proxy::ProviderProxy`] on
//! a unix socket in the task's dir. That dir is bind-mounted read-only at [`CONTAINER_DIR`] into
//! the agent's container (never the gate's), with the static forwarder `airlock-forward`, which
//! wraps the agent's argv: it listens on `127.0.0.1:<port>` inside the container (network
//! `none`) and copies each connection to the socket. The agent gets `AIRLOCK_MODEL_<NAME>_URL`
//! and `AIRLOCK_MODEL_<NAME>_KEY` (a random per-task placeholder). The real key stays on the
//! host, in a `SecretString`, and is injected by the proxy.

pub mod config;
pub mod key;
pub mod preset;
pub mod proxy;
pub mod route;
pub mod traffic;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

pub use config::{ConfigError, ModelBudget, ModelsConfig, Provider};
pub use traffic::{Traffic, TrafficReport};

/// Where the socket dir is mounted in the agent's container.
pub const CONTAINER_DIR: &str = "/airlock/model";
/// The forwarder inside the container.
pub const FORWARDER_PATH: &str = "/airlock/model/airlock-forward";
/// The first port the forwarder listens on; provider `i` (in grant order) gets `BASE_PORT + i`.
pub const BASE_PORT: u16 = 41100;

/// The forwarder, built statically by `build.rs` from `src/bin/airlock-forward.rs`.
pub static FORWARDER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/airlock-forward"));

/// Why egress could not be set up for a task.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// A provider's real key could not be read.
    #[error(transparent)]
    Key(#[from] key::KeyError),
    /// A file or socket of the egress could not be set up.
    #[error("model egress: {op} `{}`: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EgressError {
    let path = path.to_path_buf();
    move |source| EgressError::Io { op, path, source }
}

/// One granted provider as the sandbox sees it.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The provider's name.
    pub name: String,
    /// `NAME` in the contract's variable names.
    pub env_name: String,
    /// The loopback port its proxy listens on inside the container (`AIRLOCK_MODEL_<NAME>_URL`).
    pub port: u16,
    /// The per-task placeholder key (not a secret: the agent holds it).
    pub placeholder: String,
}

impl Grant {
    /// `http://127.0.0.1:<port>` (the contract's `AIRLOCK_MODEL_<NAME>_URL`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn socket_name(&self) -> String {
        format!("{}.sock", self.name)
    }
}

/// The grants a task will have, with fresh placeholders (pure apart from the randomness).
pub fn plan_grants(names: &[String]) -> Vec<Grant> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| Grant {
            name: n.clone(),
            env_name: n.to_ascii_uppercase(),
            port: BASE_PORT + i as u16,
            placeholder: format!("sk-airlock-{}", crate::ids::random_hex(16)),
        })
        .collect()
}

/// The contract's variables for `grants`.
pub fn contract_env(grants: &[Grant]) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for g in grants {
        env.push((format!("AIRLOCK_MODEL_{}_URL", g.env_name), g.url()));
        env.push((
            format!("AIRLOCK_MODEL_{}_KEY", g.env_name),
            g.placeholder.clone(),
        ));
    }
    env
}

/// `argv` wrapped by the forwarder.
pub fn wrap_argv(grants: &[Grant], argv: &[String]) -> Vec<String> {
    let mut out = vec![FORWARDER_PATH.to_string()];
    for g in grants {
        out.push("--map".into());
        out.push(format!("{}={CONTAINER_DIR}/{}", g.port, g.socket_name()));
    }
    out.push("--".into());
    out.extend(argv.iter().cloned());
    out
}

/// A task's running model egress. [`Egress::stop`] (or drop) ends every proxy.
pub struct Egress {
    /// The task's egress dir (the proxies' unix sockets, bound into the container).
    pub dir: PathBuf,
    /// One per granted provider.
    pub grants: Vec<Grant>,
    traffic: Traffic,
    stop: CancellationToken,
    keys: Vec<SecretString>,
}

impl Egress {
    /// Read each provider's key, write the forwarder and start one proxy per provider, each on
    /// `dir/<name>.sock` (owned by the sandbox uid, mode 0600).
    pub fn start(
        dir: &Path,
        providers: &[Provider],
        grants: Vec<Grant>,
    ) -> Result<Egress, EgressError> {
        std::fs::create_dir_all(dir).map_err(io("create dir", dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(io("chmod", dir))?;
        let fwd = dir.join("airlock-forward");
        std::fs::write(&fwd, FORWARDER).map_err(io("write", &fwd))?;
        std::fs::set_permissions(&fwd, std::fs::Permissions::from_mode(0o555))
            .map_err(io("chmod", &fwd))?;
        let traffic = Traffic::new();
        let stop = CancellationToken::new();
        let mut keys = Vec::new();
        for (p, g) in providers.iter().zip(&grants) {
            let key = key::read(&p.name, &p.key)?;
            keys.push(key.clone());
            let sock = dir.join(g.socket_name());
            let _ = std::fs::remove_file(&sock);
            let listener = tokio::net::UnixListener::bind(&sock).map_err(io("listen on", &sock))?;
            let uid = Some(crate::sandbox::hardening::sandbox_uid());
            std::os::unix::fs::chown(&sock, uid, uid).map_err(io("chown", &sock))?;
            std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))
                .map_err(io("chmod", &sock))?;
            let proxy = Arc::new(proxy::ProviderProxy::new(
                p.clone(),
                key,
                g.placeholder.clone(),
                traffic.clone(),
            ));
            tokio::spawn(proxy.serve(listener, stop.clone()));
        }
        Ok(Egress {
            dir: dir.to_path_buf(),
            grants,
            traffic,
            stop,
            keys,
        })
    }

    /// The running count of requests, bytes and refusals per provider.
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// The real keys (for scanning artifacts before they are written out).
    pub fn keys(&self) -> &[SecretString] {
        &self.keys
    }

    /// Stop every proxy; connections in flight are closed.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Egress {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
