//! The spec file as written: serde types that reject unknown keys.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    pub title: String,
    pub level: String,
    #[serde(default)]
    pub acceptance: Vec<String>,
    pub repo: RawRepo,
    pub issue: RawIssue,
    pub agent: RawAgent,
    pub gate: Option<RawGate>,
    pub limits: Option<RawLimits>,
    pub kind: Option<String>,
    pub scope: Option<RawScope>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScope {
    #[serde(default)]
    pub allowed: Vec<String>,
    #[serde(default)]
    pub forbidden: Vec<String>,
    pub max_files_changed: Option<i64>,
    pub dependencies: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRepo {
    pub url: String,
    pub base: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssue {
    pub file: Option<String>,
    pub text: Option<String>,
    /// Where the issue lives (linked from the draft PR). Optional.
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub image: String,
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub runtime: Option<String>,
    /// Model providers the agent asks for (granted by the level and `models.toml`).
    #[serde(default)]
    pub models: Vec<String>,
    /// A known agent CLI whose headless argv airlock builds (instead of `command`).
    pub preset: Option<String>,
    /// The model a preset asks its provider for.
    pub model: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGate {
    pub image: Option<String>,
    pub commands: Vec<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub timeout: Option<String>,
    pub attempts: Option<i64>,
    pub cpus: Option<f64>,
    pub memory: Option<String>,
    pub pids: Option<i64>,
}
