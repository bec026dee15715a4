//! `airlock.toml` as written: serde types that reject unknown keys.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub socket: Option<String>,
    pub socket_group: Option<String>,
    pub state_dir: Option<String>,
    pub artifacts_dir: Option<String>,
    pub policies_dir: Option<String>,
    pub concurrency: Option<i64>,
    pub author_trusted: Option<bool>,
    pub tcp: Option<RawTcp>,
    pub api: Option<RawApi>,
    pub retention: Option<RawRetention>,
    pub shutdown: Option<RawShutdown>,
    pub recovery: Option<RawRecovery>,
    pub notify: Option<RawNotify>,
    pub trigger: Option<Vec<super::triggers::RawTrigger>>,
    pub schedule: Option<Vec<super::triggers::RawSchedule>>,
    pub queue: Option<RawQueue>,
    pub artifacts: Option<RawArtifacts>,
}

/// `[queue]`: a PostgreSQL queue shared by several runners.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    pub url: String,
    pub password_file: Option<String>,
    pub lease: Option<String>,
    pub heartbeat: Option<String>,
    pub requeues: Option<i64>,
}

/// `[artifacts]`: where finished tasks' artifacts are published for every runner.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArtifacts {
    pub url: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub credentials_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcp {
    pub listen: String,
    pub token_file: String,
}

/// `[api]`: bounds on the listeners and the event followers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub max_connections: Option<i64>,
    pub header_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub max_followers: Option<i64>,
    pub max_followers_per_task: Option<i64>,
    pub max_queued: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub max_age: Option<String>,
    pub max_tasks: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShutdown {
    pub mode: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecovery {
    pub sweep: Option<String>,
    pub sweep_interval: Option<String>,
    pub requeue_interrupted: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub command: Option<Vec<String>>,
    pub webhook: Option<String>,
    pub timeout: Option<String>,
}
