//! `[queue]` and `[artifacts]`: what runners sharing one queue need. Absent, nothing changes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

use super::raw::{RawArtifacts, RawQueue};
use super::validate::V;
use super::ConfigError;

/// Default lease of a claimed task.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// Shortest lease accepted (tests use seconds).
pub const MIN_LEASE: Duration = Duration::from_secs(2);
/// Longest lease accepted.
pub const MAX_LEASE: Duration = Duration::from_secs(3600);
/// Default re-queues of a task whose runner was lost.
pub const DEFAULT_REQUEUES: i64 = 2;
/// Most re-queues accepted.
pub const MAX_REQUEUES: i64 = 100;

/// The shared PostgreSQL queue.
#[derive(Debug, Clone)]
pub struct Queue {
    /// `postgres://user@host:port/db`, without a password.
    pub url: String,
    /// A file holding the password (first line, mode 0600).
    pub password_file: Option<PathBuf>,
    /// Read at load: the file's first line, or `PGPASSWORD`.
    pub password: Option<SecretString>,
    /// How long a claim lives without a heartbeat.
    pub lease: Duration,
    /// How often a runner renews its leases.
    pub heartbeat: Duration,
    /// Re-queues of a lost task before it ends `runner_lost`.
    pub requeues: i64,
}

/// Where finished tasks' artifacts are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactStore {
    /// A directory every runner shares (`file:///dir`).
    File(PathBuf),
    /// An S3 bucket (or a compatible store).
    S3(S3Artifacts),
}

/// `s3://bucket/prefix` with its endpoint, region and credentials file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Artifacts {
    /// The bucket.
    pub bucket: String,
    /// The key prefix under which tasks are published.
    pub prefix: String,
    /// `None`: the provider's default endpoint.
    pub endpoint: Option<String>,
    /// The bucket's region.
    pub region: String,
    /// TOML with `access_key_id`, `secret_access_key` (mode 0600).
    pub credentials_file: Option<PathBuf>,
}

impl V<'_> {
    pub(super) fn queue(&self, q: RawQueue) -> Result<Queue, ConfigError> {
        check_queue_url(&q.url).map_err(|m| self.err("queue.url", m))?;
        let lease = self.duration("queue.lease", q.lease, MAX_LEASE)?;
        let lease = lease.unwrap_or(DEFAULT_LEASE);
        if lease < MIN_LEASE {
            return Err(self.err(
                "queue.lease",
                format!("must be at least {}s", MIN_LEASE.as_secs()),
            ));
        }
        let heartbeat = self.duration("queue.heartbeat", q.heartbeat, MAX_LEASE)?;
        let heartbeat = heartbeat.unwrap_or(lease / 4);
        if heartbeat * 3 > lease {
            return Err(self.err(
                "queue.heartbeat",
                "must be at most a third of queue.lease (a runner renews several times per lease)",
            ));
        }
        let requeues = match q.requeues {
            None => DEFAULT_REQUEUES,
            Some(n) if (0..=MAX_REQUEUES).contains(&n) => n,
            Some(n) => {
                return Err(self.err(
                    "queue.requeues",
                    format!("{n} is out of range; accepted: 0 to {MAX_REQUEUES}"),
                ))
            }
        };
        Ok(Queue {
            url: q.url,
            password_file: self.abs("queue.password_file", q.password_file)?,
            password: None,
            lease,
            heartbeat,
            requeues,
        })
    }

    pub(super) fn artifacts(&self, a: RawArtifacts) -> Result<ArtifactStore, ConfigError> {
        if let Some(dir) = a.url.strip_prefix("file://") {
            if a.endpoint.is_some() || a.region.is_some() || a.credentials_file.is_some() {
                return Err(self.err(
                    "artifacts.url",
                    "endpoint, region and credentials_file apply to s3:// only",
                ));
            }
            let dir = self.abs("artifacts.url", Some(dir.to_string()))?;
            return Ok(ArtifactStore::File(dir.unwrap_or_default()));
        }
        let Some(rest) = a.url.strip_prefix("s3://") else {
            return Err(self.err(
                "artifacts.url",
                format!(
                    "`{}` is not accepted; accepted: s3://bucket/prefix, file:///dir",
                    a.url
                ),
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let ok_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !ok_bucket {
            return Err(self.err(
                "artifacts.url",
                format!("`{bucket}` is not an S3 bucket name"),
            ));
        }
        if let Some(e) = &a.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) || e.contains('@') {
                return Err(self.err(
                    "artifacts.endpoint",
                    format!("`{e}` is not a URL such as \"https://s3.example.org\""),
                ));
            }
        }
        if a.credentials_file.is_none() {
            return Err(self.err(
                "artifacts.credentials_file",
                "is required for s3:// (airlock never asks an instance metadata service)",
            ));
        }
        Ok(ArtifactStore::S3(S3Artifacts {
            bucket: bucket.into(),
            prefix: prefix.trim_matches('/').into(),
            endpoint: a.endpoint,
            region: a.region.unwrap_or_else(|| "us-east-1".into()),
            credentials_file: self.abs("artifacts.credentials_file", a.credentials_file)?,
        }))
    }
}

/// `postgres://` or `postgresql://`, parseable, and with no password in it.
fn check_queue_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(format!(
            "`{}` is not accepted; use e.g. \"postgres://airlock@127.0.0.1:5432/airlock\"",
            crate::artifacts::neutralise(url.split('@').next_back().unwrap_or(""))
        ));
    }
    let parsed: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("is not a PostgreSQL URL: {e}"))?;
    if parsed.get_password().is_some() {
        return Err(
            "must not contain a password (it would be in logs and process listings); \
                    use queue.password_file (mode 0600) or PGPASSWORD"
                .into(),
        );
    }
    Ok(())
}

/// The database password: the first line of `file` (which must not be readable by group or
/// others), else `PGPASSWORD`, else none (trust or peer authentication).
pub fn load_queue_password(
    file: Option<&Path>,
    config: &Path,
) -> Result<Option<SecretString>, ConfigError> {
    let Some(file) = file else {
        return Ok(std::env::var("PGPASSWORD").ok().map(SecretString::from));
    };
    let err = |m: String| ConfigError::new(config, Some("queue.password_file"), m);
    let shown = file.display();
    let meta = std::fs::metadata(file).map_err(|e| err(format!("`{shown}`: {e}")))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(err(format!(
            "`{shown}` is readable by group or others (mode {mode:o}); chmod 600 it"
        )));
    }
    let text = std::fs::read_to_string(file).map_err(|e| err(format!("`{shown}`: {e}")))?;
    let line = text.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        return Err(err(format!("`{shown}` is empty")));
    }
    Ok(Some(SecretString::from(line)))
}
