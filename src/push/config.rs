//! `push.toml`: where a green L3/L4 task pushes and how its token is minted. Operator-owned;
//! nothing in a task, a repository or an issue can change it. Parsing fails closed: unknown keys
//! are errors and every message names the field.

use std::path::PathBuf;
use std::time::Duration;

/// Default and ceiling for how long a minted token may live.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(3600);
/// The longest token lifetime accepted (`max_ttl`).
pub const MAX_MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Default and ceiling for a token provider command's run time.
pub const DEFAULT_PROVIDER_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest token provider timeout accepted.
pub const MAX_PROVIDER_TIMEOUT: Duration = Duration::from_secs(300);
/// GitHub's API, when `api_url` is not set.
pub const GITHUB_API: &str = "https://api.github.com";

/// The validated `push.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct PushConfig {
    /// Write the PR request instead of sending it; mint nothing, push nothing.
    pub dry_run: bool,
    /// The pinned remotes, one per repository.
    pub remotes: Vec<Remote>,
}

/// One pinned remote: the tasks on `repo` push here and nowhere else.
#[derive(Debug, Clone, PartialEq)]
pub struct Remote {
    /// The task spec's `repo.url` this applies to (exact match).
    pub repo: String,
    /// Where the branch is pushed (https, or plain http to loopback only).
    pub push_url: String,
    /// Branch globs never pushed to (the task's base always is one).
    pub protected: Vec<String>,
    /// User name in the Basic authorization header git sends with the token.
    pub auth_user: String,
    /// How the push token is minted.
    pub token: TokenConfig,
    /// Where the draft PR is opened; `None`: push only.
    pub pr: Option<PrConfig>,
    /// Wait for the forge's CI on the pushed commit (`[remote.ci]`).
    pub ci: Option<super::ci::CiConfig>,
}

/// `[remote.token]`: how a push token is minted.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenConfig {
    /// Which provider mints it.
    pub provider: Provider,
    /// A token that lives longer than this is refused (short-lived tokens only).
    pub max_ttl: Duration,
}

/// A provider of short-lived push tokens.
#[derive(Debug, Clone, PartialEq)]
pub enum Provider {
    /// An operator command.
    Command(CommandProvider),
    /// A GitHub App installation token.
    GithubApp(GithubApp),
}

/// An operator argv that prints `{"token": ..., "expires_at": ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandProvider {
    /// The command (argv, run without a shell).
    pub argv: Vec<String>,
    /// Run after use with `{"token": ...}` on stdin.
    pub revoke: Option<Vec<String>>,
    /// How long it may run before it is killed.
    pub timeout: Duration,
}

/// A GitHub App installation token restricted to one repository.
#[derive(Debug, Clone, PartialEq)]
pub struct GithubApp {
    /// The App id or client id (the JWT's `iss`).
    pub app_id: String,
    /// The installation whose token is minted.
    pub installation_id: u64,
    /// The App's private key (PEM).
    pub private_key_file: PathBuf,
    /// The GitHub API base URL.
    pub api_url: String,
    /// The one repository (name, without owner) the token is restricted to.
    pub repository: String,
}

/// The forge a PR is opened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Forge {
    /// GitHub.
    Github,
    /// Gitea or Forgejo.
    Gitea,
    /// GitLab (a merge request).
    Gitlab,
}

/// Where and how the draft PR / MR is opened.
#[derive(Debug, Clone, PartialEq)]
pub struct PrConfig {
    /// Which forge's API.
    pub forge: Forge,
    /// The forge's API base URL.
    pub api_url: String,
    /// `owner/name` (GitLab: the project's full path).
    pub project: String,
    /// Labels put on the PR.
    pub labels: Vec<String>,
    /// The pushed branch lives in a fork owned by this account (`push_url` is the fork's): the
    /// PR's head is `<head_owner>:<branch>` (GitHub, Gitea/Forgejo).
    pub head_owner: Option<String>,
}

impl Provider {
    /// The provider's name as written in `push.toml` (`command`, `github_app`).
    pub fn name(&self) -> &'static str {
        match self {
            Provider::Command(_) => "command",
            Provider::GithubApp(_) => "github_app",
        }
    }
}

impl PushConfig {
    /// The remote pinned for a task whose `repo.url` is `repo_url`.
    pub fn remote_for(&self, repo_url: &str) -> Option<&Remote> {
        self.remotes.iter().find(|r| r.repo == repo_url)
    }
}

/// A `push.toml` that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct ConfigError {
    /// The field at fault, when there is one.
    pub field: Option<String>,
    /// What is wrong and what is accepted.
    pub message: String,
}

/// A [`ConfigError`] naming `field`.
pub(super) fn err(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: Some(field.into()),
        message: message.into(),
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
