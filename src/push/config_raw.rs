//! `push.toml` as written (raw serde types that reject unknown keys) and its validation into
//! [`super::config`] types. Every error names the field.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::config::*;
use super::url::{check_api_url, check_push_url};
use crate::units::parse_duration;

const MAX_LABELS: usize = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPush {
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub remote: Vec<RawRemote>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemote {
    repo: String,
    push_url: String,
    #[serde(default)]
    protected: Vec<String>,
    auth_user: Option<String>,
    token: RawToken,
    pr: Option<RawPr>,
    ci: Option<super::ci::config::RawCi>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    provider: String,
    max_ttl: Option<String>,
    command: Option<Vec<String>>,
    revoke_command: Option<Vec<String>>,
    timeout: Option<String>,
    app_id: Option<toml::Value>,
    installation_id: Option<i64>,
    private_key_file: Option<String>,
    api_url: Option<String>,
    repository: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPr {
    forge: String,
    api_url: Option<String>,
    project: String,
    #[serde(default)]
    labels: Vec<String>,
    head_owner: Option<String>,
}

fn toml_error(text: &str, e: toml::de::Error) -> ConfigError {
    let p = crate::tomlpath::describe(text, &e);
    ConfigError {
        field: p.field,
        message: p.message,
    }
}

pub(super) fn parse_remote(
    f: &str,
    r: RawRemote,
    base: Option<&Path>,
) -> Result<Remote, ConfigError> {
    if r.repo.trim().is_empty() {
        return Err(err(&format!("{f}.repo"), "must name the task's repo.url"));
    }
    for (j, p) in r.protected.iter().enumerate() {
        super::plan::compile_branch_glob(p).map_err(|m| err(&format!("{f}.protected[{j}]"), m))?;
    }
    let auth_user = r.auth_user.unwrap_or_else(|| "x-access-token".into());
    if auth_user.is_empty()
        || !auth_user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(err(
            &format!("{f}.auth_user"),
            format!("`{auth_user}` must be [A-Za-z0-9._-]+"),
        ));
    }
    let pr = r.pr.map(|p| parse_pr(&format!("{f}.pr"), p)).transpose()?;
    let ci =
        r.ci.map(|c| super::ci::config::parse_ci(&format!("{f}.ci"), c, pr.as_ref()))
            .transpose()?;
    Ok(Remote {
        ci,
        repo: r.repo,
        push_url: check_push_url(&r.push_url).map_err(|m| err(&format!("{f}.push_url"), m))?,
        protected: r.protected,
        auth_user,
        token: parse_token(&format!("{f}.token"), r.token, base)?,
        pr,
    })
}

fn duration(
    field: &str,
    v: Option<&str>,
    default: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let d = match v {
        Some(t) => parse_duration(t).map_err(|m| err(field, m))?,
        None => default,
    };
    if d > max {
        return Err(err(
            field,
            format!(
                "`{}` is above the ceiling of {}",
                crate::units::format_duration(d),
                crate::units::format_duration(max)
            ),
        ));
    }
    Ok(d)
}

fn parse_token(f: &str, t: RawToken, base: Option<&Path>) -> Result<TokenConfig, ConfigError> {
    let max_ttl = duration(
        &format!("{f}.max_ttl"),
        t.max_ttl.as_deref(),
        DEFAULT_MAX_TTL,
        MAX_MAX_TTL,
    )?;
    let provider = match t.provider.as_str() {
        "command" => Provider::Command(command_provider(f, &t)?),
        "github_app" => Provider::GithubApp(github_app(f, &t, base)?),
        v => {
            return Err(err(
                &format!("{f}.provider"),
                format!("`{v}` is not accepted; use command or github_app"),
            ))
        }
    };
    Ok(TokenConfig { provider, max_ttl })
}

/// Keys that belong to the other provider are errors, not silently ignored.
fn reject(f: &str, provider: &str, keys: &[(&str, bool)]) -> Result<(), ConfigError> {
    match keys.iter().find(|(_, set)| *set) {
        Some((k, _)) => Err(err(
            &format!("{f}.{k}"),
            format!("not used by provider `{provider}`"),
        )),
        None => Ok(()),
    }
}

fn argv(field: &str, v: &[String]) -> Result<Vec<String>, ConfigError> {
    if v.is_empty() || v[0].is_empty() {
        return Err(err(
            field,
            "must be a non-empty argv, e.g. [\"/usr/local/bin/mint-token\"]",
        ));
    }
    Ok(v.to_vec())
}

fn command_provider(f: &str, t: &RawToken) -> Result<CommandProvider, ConfigError> {
    reject(
        f,
        "command",
        &[
            ("app_id", t.app_id.is_some()),
            ("installation_id", t.installation_id.is_some()),
            ("private_key_file", t.private_key_file.is_some()),
            ("api_url", t.api_url.is_some()),
            ("repository", t.repository.is_some()),
        ],
    )?;
    let command = t
        .command
        .as_deref()
        .ok_or_else(|| err(&format!("{f}.command"), "required by provider `command`"))?;
    Ok(CommandProvider {
        argv: argv(&format!("{f}.command"), command)?,
        revoke: t
            .revoke_command
            .as_deref()
            .map(|r| argv(&format!("{f}.revoke_command"), r))
            .transpose()?,
        timeout: duration(
            &format!("{f}.timeout"),
            t.timeout.as_deref(),
            DEFAULT_PROVIDER_TIMEOUT,
            MAX_PROVIDER_TIMEOUT,
        )?,
    })
}

fn github_app(f: &str, t: &RawToken, base: Option<&Path>) -> Result<GithubApp, ConfigError> {
    reject(
        f,
        "github_app",
        &[
            ("command", t.command.is_some()),
            ("revoke_command", t.revoke_command.is_some()),
            ("timeout", t.timeout.is_some()),
        ],
    )?;
    let need = |k: &str| err(&format!("{f}.{k}"), "required by provider `github_app`");
    let app_id = match &t.app_id {
        Some(toml::Value::Integer(n)) if *n > 0 => n.to_string(),
        Some(toml::Value::String(s))
            if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') =>
        {
            s.clone()
        }
        Some(v) => {
            return Err(err(
                &format!("{f}.app_id"),
                format!("`{v}` is not an App id or client id"),
            ))
        }
        None => return Err(need("app_id")),
    };
    let installation_id = match t.installation_id {
        Some(n) if n > 0 => n as u64,
        Some(n) => {
            return Err(err(
                &format!("{f}.installation_id"),
                format!("`{n}` must be positive"),
            ))
        }
        None => return Err(need("installation_id")),
    };
    let key = t
        .private_key_file
        .as_deref()
        .ok_or_else(|| need("private_key_file"))?;
    let repository = t.repository.clone().ok_or_else(|| need("repository"))?;
    if !valid_name(&repository) {
        return Err(err(
            &format!("{f}.repository"),
            format!("`{repository}` must be a repository name without owner ([A-Za-z0-9._-]+)"),
        ));
    }
    Ok(GithubApp {
        app_id,
        installation_id,
        private_key_file: base.map_or_else(|| PathBuf::from(key), |b| b.join(key)),
        api_url: check_api_url(t.api_url.as_deref().unwrap_or(GITHUB_API))
            .map_err(|m| err(&format!("{f}.api_url"), m))?,
        repository,
    })
}

fn valid_name(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && s != "."
        && s != ".."
}

fn parse_pr(f: &str, p: RawPr) -> Result<PrConfig, ConfigError> {
    let forge = match p.forge.as_str() {
        "github" => Forge::Github,
        "gitea" | "forgejo" => Forge::Gitea,
        "gitlab" => Forge::Gitlab,
        v => {
            return Err(err(
                &format!("{f}.forge"),
                format!("`{v}` is not accepted; use github, gitea, forgejo or gitlab"),
            ))
        }
    };
    let api_url = match (p.api_url.as_deref(), forge) {
        (Some(u), _) => u,
        (None, Forge::Github) => GITHUB_API,
        (None, _) => return Err(err(&format!("{f}.api_url"), "required for gitea, forgejo and gitlab (e.g. https://host/api/v1, https://host/api/v4)")),
    };
    let parts: Vec<&str> = p.project.split('/').collect();
    let shape_ok = match forge {
        Forge::Gitlab => parts.len() >= 2,
        _ => parts.len() == 2,
    } && parts.iter().all(|s| valid_name(s));
    if !shape_ok {
        return Err(err(
            &format!("{f}.project"),
            format!(
                "`{}` must be owner/name (GitLab: group/.../name)",
                p.project
            ),
        ));
    }
    if p.labels.len() > MAX_LABELS {
        return Err(err(
            &format!("{f}.labels"),
            format!("at most {MAX_LABELS} labels"),
        ));
    }
    for (i, l) in p.labels.iter().enumerate() {
        if l.is_empty() || l.len() > 50 || l.contains(',') || l.chars().any(char::is_control) {
            return Err(err(
                &format!("{f}.labels[{i}]"),
                format!("`{l}` must be 1-50 characters, no commas or control characters"),
            ));
        }
    }
    let head_owner = match (p.head_owner, forge) {
        (None, _) => None,
        (Some(_), Forge::Gitlab) => {
            return Err(err(
                &format!("{f}.head_owner"),
                "not supported for gitlab (a merge request from a fork is opened in the fork's project); set it for github, gitea or forgejo only",
            ))
        }
        (Some(o), _) if valid_name(&o) && !o.contains('.') => Some(o),
        (Some(o), _) => {
            return Err(err(
                &format!("{f}.head_owner"),
                format!("`{o}` must be the fork's owner: letters, digits, `-` or `_`"),
            ))
        }
    };
    Ok(PrConfig {
        forge,
        api_url: check_api_url(api_url).map_err(|m| err(&format!("{f}.api_url"), m))?,
        project: p.project,
        labels: p.labels,
        head_owner,
    })
}

/// Parse `push.toml`. Relative key file paths are relative to `base_dir`.
pub fn parse(text: &str, base_dir: Option<&Path>) -> Result<PushConfig, ConfigError> {
    let raw: RawPush = toml::from_str(text).map_err(|e| toml_error(text, e))?;
    let mut remotes: Vec<Remote> = Vec::new();
    for (i, r) in raw.remote.into_iter().enumerate() {
        let remote = parse_remote(&format!("remote[{i}]"), r, base_dir)?;
        if remotes.iter().any(|o| o.repo == remote.repo) {
            return Err(err(
                &format!("remote[{i}].repo"),
                format!("`{}` has two remotes; pin exactly one", remote.repo),
            ));
        }
        remotes.push(remote);
    }
    Ok(PushConfig {
        dry_run: raw.dry_run,
        remotes,
    })
}
