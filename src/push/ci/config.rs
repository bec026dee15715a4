//! `[remote.ci]` in `push.toml`: wait for the forge's CI on the pushed commit.
//!
//! ```toml
//! [remote.ci]
//! wait = "30m"              # bounded wait for the pushed commit's CI (ci_timeout after it)
//! poll = "15s"              # between two reads of the commit's checks
//! required = ["test"]       # check / status / job names that must pass; absent or ["*"]: all
//! # forge, api_url, project default to [remote.pr]'s
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::super::config::{err, Forge, PrConfig, GITHUB_API};
use super::super::url::check_api_url;
use super::super::ConfigError;
use crate::units::parse_duration;

/// How long to wait for CI when `[remote.ci]` sets no `wait`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30 * 60);
/// The longest `wait` accepted.
pub const MAX_WAIT: Duration = Duration::from_secs(6 * 3600);
/// How often the forge is asked when `[remote.ci]` sets no `poll`.
pub const DEFAULT_POLL: Duration = Duration::from_secs(15);
/// The shortest `poll` accepted.
pub const MIN_POLL: Duration = Duration::from_millis(100);

/// Which checks must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Required {
    /// Every check the forge reports on the commit.
    All,
    /// Only the checks of these names.
    Names(Vec<String>),
}

impl Required {
    /// Whether a check of this name counts.
    pub fn covers(&self, name: &str) -> bool {
        match self {
            Required::All => true,
            Required::Names(n) => n.iter().any(|r| r == name),
        }
    }
}

/// The validated `[remote.ci]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CiConfig {
    /// How long to wait for the required checks to finish.
    pub wait: Duration,
    /// How often to ask the forge.
    pub poll: Duration,
    /// Which checks must pass.
    pub required: Required,
    /// Which forge's API to read.
    pub forge: Forge,
    /// The forge's API base URL.
    pub api_url: String,
    /// The repository (`owner/name`; GitLab: the project's full path).
    pub project: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::push) struct RawCi {
    wait: Option<String>,
    poll: Option<String>,
    required: Option<Vec<String>>,
    forge: Option<String>,
    api_url: Option<String>,
    project: Option<String>,
}

fn dur(field: &str, raw: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    raw.map_or(Ok(default), |s| {
        parse_duration(s).map_err(|m| err(field, m))
    })
}

/// Validate `[remote.ci]` (`f` is its field path); forge, API and project fall back to the PR's.
pub(in crate::push) fn parse_ci(
    f: &str,
    raw: RawCi,
    pr: Option<&PrConfig>,
) -> Result<CiConfig, ConfigError> {
    let wait = dur(&format!("{f}.wait"), raw.wait.as_deref(), DEFAULT_WAIT)?;
    if wait.is_zero() || wait > MAX_WAIT {
        return Err(err(
            &format!("{f}.wait"),
            format!(
                "must be more than 0 and at most {}h",
                MAX_WAIT.as_secs() / 3600
            ),
        ));
    }
    let poll = dur(&format!("{f}.poll"), raw.poll.as_deref(), DEFAULT_POLL)?;
    if poll < MIN_POLL || poll > wait {
        return Err(err(
            &format!("{f}.poll"),
            "must be at least 100ms and at most `wait`",
        ));
    }
    let required = match raw.required {
        None => Required::All,
        Some(v) if v == ["*"] => Required::All,
        Some(v) if v.is_empty() || v.iter().any(|n| n.trim().is_empty() || n == "*") => {
            return Err(err(
                &format!("{f}.required"),
                "list check names, or [\"*\"] for all; no empty names",
            ))
        }
        Some(v) => Required::Names(v),
    };
    let forge = match (raw.forge.as_deref(), pr) {
        (Some("github"), _) => Forge::Github,
        (Some("gitea" | "forgejo"), _) => Forge::Gitea,
        (Some("gitlab"), _) => Forge::Gitlab,
        (Some(v), _) => {
            return Err(err(
                &format!("{f}.forge"),
                format!("`{v}` is not accepted; use github, gitea, forgejo or gitlab"),
            ))
        }
        (None, Some(p)) => p.forge,
        (None, None) => return Err(err(&format!("{f}.forge"), "required without [remote.pr]")),
    };
    let api_url = match (raw.api_url, pr, forge) {
        (Some(u), _, _) => u,
        (None, Some(p), _) if p.forge == forge => p.api_url.clone(),
        (None, _, Forge::Github) => GITHUB_API.into(),
        (None, _, _) => {
            return Err(err(
                &format!("{f}.api_url"),
                "required for gitea, forgejo and gitlab",
            ))
        }
    };
    let api_url = check_api_url(&api_url).map_err(|m| err(&format!("{f}.api_url"), m))?;
    let project = match (raw.project, pr) {
        (Some(p), _) => p,
        (None, Some(p)) => p.project.clone(),
        (None, None) => return Err(err(&format!("{f}.project"), "required without [remote.pr]")),
    };
    if project.split('/').count() < 2
        || project.split('/').any(|s| {
            s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        })
    {
        return Err(err(
            &format!("{f}.project"),
            format!("`{project}` must be owner/name (GitLab: group/.../name)"),
        ));
    }
    Ok(CiConfig {
        wait,
        poll,
        required,
        forge,
        api_url,
        project,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(ci: &str) -> Result<Option<CiConfig>, ConfigError> {
        let text = format!(
            "[[remote]]\nrepo = \"/srv/r.git\"\npush_url = \"https://github.com/acme/r.git\"\n[remote.token]\nprovider = \"command\"\ncommand = [\"mint\"]\n[remote.pr]\nforge = \"github\"\nproject = \"acme/r\"\n{ci}"
        );
        crate::push::parse(&text, None).map(|c| c.remotes[0].ci.clone())
    }

    #[test]
    fn defaults_come_from_the_pr_table() {
        let ci = parse("[remote.ci]\n").unwrap().unwrap();
        assert_eq!((ci.wait, ci.poll), (DEFAULT_WAIT, DEFAULT_POLL));
        assert_eq!(ci.required, Required::All);
        assert_eq!((ci.forge, ci.project.as_str()), (Forge::Github, "acme/r"));
        assert_eq!(ci.api_url, GITHUB_API);
        assert_eq!(parse("").unwrap(), None);
        let named = parse("[remote.ci]\nwait = \"10m\"\npoll = \"5s\"\nrequired = [\"test\"]\n")
            .unwrap()
            .unwrap();
        assert_eq!(named.required, Required::Names(vec!["test".into()]));
        assert_eq!(named.wait, Duration::from_secs(600));
    }

    #[test]
    fn bad_values_name_their_field() {
        for (ci, field) in [
            ("wait = \"0s\"", "remote[0].ci.wait"),
            ("wait = \"7h\"", "remote[0].ci.wait"),
            ("poll = \"1ms\"", "remote[0].ci.poll"),
            ("required = []", "remote[0].ci.required"),
            ("forge = \"jenkins\"", "remote[0].ci.forge"),
            ("project = \"nope\"", "remote[0].ci.project"),
            (
                "api_url = \"http://example.com/api\"",
                "remote[0].ci.api_url",
            ),
        ] {
            let e = parse(&format!("[remote.ci]\n{ci}\n")).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{ci}: {e}");
        }
        let e = parse("[remote.ci]\nwiat = \"1m\"\n").unwrap_err();
        assert!(e.to_string().contains("wiat"), "{e}");
    }
}
