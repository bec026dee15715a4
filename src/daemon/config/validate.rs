//! Turn a [`RawConfig`] into a [`Config`], naming the file and field of every problem.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

use super::raw::{RawApi, RawConfig, RawNotify, RawRecovery, RawRetention, RawShutdown, RawTcp};
use super::*;
use crate::units::parse_duration;

/// Validate config text as if read from `path`.
pub fn parse_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    V { file: path }.config(raw)
}

/// The bearer token: the file's first line, which must be long enough; the file must not be
/// readable by group or others.
pub fn load_token(token_file: &Path, config: &Path) -> Result<SecretString, ConfigError> {
    let field = Some("tcp.token_file");
    let err = |m: String| ConfigError::new(config, field, m);
    let shown = token_file.display();
    let meta = std::fs::metadata(token_file).map_err(|e| err(format!("`{shown}`: {e}")))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(err(format!(
            "`{shown}` is readable by group or others (mode {:o}); chmod 600 it",
            meta.permissions().mode() & 0o777
        )));
    }
    let text = std::fs::read_to_string(token_file).map_err(|e| err(format!("`{shown}`: {e}")))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.chars().count() < MIN_TOKEN_CHARS || token.chars().any(char::is_whitespace) {
        return Err(err(format!(
            "`{shown}` must hold one token of at least {MIN_TOKEN_CHARS} characters without spaces"
        )));
    }
    Ok(SecretString::from(token))
}

fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let p = crate::tomlpath::describe(text, e);
    ConfigError {
        file: path.to_path_buf(),
        field: p.field,
        message: p.message,
    }
}

pub(super) struct V<'a> {
    pub(super) file: &'a Path,
}

impl V<'_> {
    pub(super) fn err(&self, field: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.file, Some(field), message)
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let state_dir = self.abs("state_dir", raw.state_dir)?;
        let state_dir = state_dir.unwrap_or_else(|| DEFAULT_STATE_DIR.into());
        let artifacts = self.abs("artifacts_dir", raw.artifacts_dir)?;
        Ok(Config {
            file: self.file.to_path_buf(),
            socket: self
                .abs("socket", raw.socket)?
                .unwrap_or_else(|| DEFAULT_SOCKET.into()),
            socket_group: self.group(raw.socket_group)?,
            artifacts_dir: artifacts.unwrap_or_else(|| state_dir.join("artifacts")),
            state_dir,
            policies_dir: self.abs("policies_dir", raw.policies_dir)?,
            concurrency: self.concurrency(raw.concurrency)?,
            author_trusted: raw.author_trusted.unwrap_or(false),
            tcp: raw.tcp.map(|t| self.tcp(t)).transpose()?,
            api: self.api(raw.api.unwrap_or_default())?,
            retention: self.retention(raw.retention.unwrap_or_default())?,
            shutdown: self.shutdown(raw.shutdown.unwrap_or_default())?,
            recovery: self.recovery(raw.recovery.unwrap_or_default())?,
            notify: self.notify(raw.notify.unwrap_or_default())?,
            triggers: super::triggers::triggers(self.file, raw.trigger.unwrap_or_default())?,
            schedules: super::triggers::schedules(self.file, raw.schedule.unwrap_or_default())?,
            queue: raw.queue.map(|q| self.queue(q)).transpose()?,
            artifacts: raw.artifacts.map(|a| self.artifacts(a)).transpose()?,
        })
    }

    pub(super) fn abs(
        &self,
        field: &str,
        p: Option<String>,
    ) -> Result<Option<PathBuf>, ConfigError> {
        let Some(p) = p else { return Ok(None) };
        let path = PathBuf::from(&p);
        if !path.is_absolute() || p.contains('\0') {
            return Err(self.err(field, format!("`{p}` must be an absolute path")));
        }
        Ok(Some(path))
    }

    fn group(&self, g: Option<String>) -> Result<Option<String>, ConfigError> {
        match g {
            Some(g)
                if g.is_empty()
                    || !g
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
            {
                Err(self.err("socket_group", format!("`{g}` is not a group name")))
            }
            g => Ok(g),
        }
    }

    fn concurrency(&self, n: Option<i64>) -> Result<usize, ConfigError> {
        match n {
            None => Ok(DEFAULT_CONCURRENCY),
            Some(n) if (1..=MAX_CONCURRENCY as i64).contains(&n) => Ok(n as usize),
            Some(n) => Err(self.err(
                "concurrency",
                format!("{n} is out of range; accepted: 1 to {MAX_CONCURRENCY}"),
            )),
        }
    }

    fn tcp(&self, t: RawTcp) -> Result<Tcp, ConfigError> {
        let listen = t.listen.parse().map_err(|_| {
            self.err(
                "tcp.listen",
                format!(
                    "`{}` is not an address such as \"127.0.0.1:7878\"",
                    t.listen
                ),
            )
        })?;
        let token_file = self
            .abs("tcp.token_file", Some(t.token_file))?
            .unwrap_or_default();
        Ok(Tcp { listen, token_file })
    }

    fn api(&self, a: RawApi) -> Result<Api, ConfigError> {
        let d = DEFAULT_API;
        let count = |field: &str, n: Option<i64>, default: usize| match n {
            None => Ok(default),
            Some(n) if (1..=MAX_API_CONNECTIONS as i64).contains(&n) => Ok(n as usize),
            Some(n) => Err(self.err(
                field,
                format!("{n} is out of range; accepted: 1 to {MAX_API_CONNECTIONS}"),
            )),
        };
        let time = |field: &str, t: Option<String>, default: Duration| match self.duration(
            field,
            t,
            MAX_API_TIMEOUT,
        )? {
            Some(t) if t.is_zero() => Err(self.err(field, "must be longer than 0s")),
            t => Ok(t.unwrap_or(default)),
        };
        let api = Api {
            max_connections: count("api.max_connections", a.max_connections, d.max_connections)?,
            header_timeout: time("api.header_timeout", a.header_timeout, d.header_timeout)?,
            body_timeout: time("api.body_timeout", a.body_timeout, d.body_timeout)?,
            max_followers: count("api.max_followers", a.max_followers, d.max_followers)?,
            max_followers_per_task: count(
                "api.max_followers_per_task",
                a.max_followers_per_task,
                d.max_followers_per_task,
            )?,
            max_queued: self.max_queued(a.max_queued, d.max_queued)?,
        };
        if api.max_followers_per_task > api.max_followers {
            return Err(self.err(
                "api.max_followers_per_task",
                format!(
                    "{} is more than api.max_followers ({})",
                    api.max_followers_per_task, api.max_followers
                ),
            ));
        }
        Ok(api)
    }

    fn max_queued(&self, n: Option<i64>, default: usize) -> Result<usize, ConfigError> {
        match n {
            None => Ok(default),
            Some(n) if (1..=MAX_API_QUEUED as i64).contains(&n) => Ok(n as usize),
            Some(n) => Err(self.err(
                "api.max_queued",
                format!("{n} is out of range; accepted: 1 to {}", MAX_API_QUEUED),
            )),
        }
    }

    pub(super) fn duration(
        &self,
        field: &str,
        text: Option<String>,
        max: Duration,
    ) -> Result<Option<Duration>, ConfigError> {
        let Some(text) = text else { return Ok(None) };
        let d = parse_duration(&text).map_err(|m| self.err(field, m))?;
        if d > max {
            return Err(self.err(
                field,
                format!(
                    "`{text}` is longer than the maximum {}",
                    humantime::format_duration(max)
                ),
            ));
        }
        Ok(Some(d))
    }

    fn retention(&self, r: RawRetention) -> Result<Retention, ConfigError> {
        let max_tasks = match r.max_tasks {
            Some(n) if n < 1 => {
                return Err(self.err("retention.max_tasks", format!("{n} must be at least 1")))
            }
            n => n.map(|n| n as usize),
        };
        let max_age = self.duration("retention.max_age", r.max_age, Duration::MAX)?;
        Ok(Retention { max_age, max_tasks })
    }

    fn shutdown(&self, s: RawShutdown) -> Result<Shutdown, ConfigError> {
        let mode = match s.mode.as_deref() {
            None | Some("cancel") => ShutdownMode::Cancel,
            Some("drain") => ShutdownMode::Drain,
            Some(m) => {
                return Err(self.err(
                    "shutdown.mode",
                    format!("`{m}` is not a mode; accepted: drain, cancel"),
                ))
            }
        };
        let timeout = self.duration("shutdown.timeout", s.timeout, MAX_SHUTDOWN_TIMEOUT)?;
        Ok(Shutdown {
            mode,
            timeout: timeout.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT),
        })
    }

    fn recovery(&self, r: RawRecovery) -> Result<Recovery, ConfigError> {
        let sweep = match r.sweep.as_deref() {
            None | Some("all") => Sweep::All,
            Some("owned") => Sweep::Owned,
            Some(s) => {
                return Err(self.err(
                    "recovery.sweep",
                    format!("`{s}` is not accepted; accepted: all, owned"),
                ))
            }
        };
        let field = "recovery.sweep_interval";
        let sweep_interval = self.duration(field, r.sweep_interval, MAX_SWEEP_INTERVAL)?;
        if sweep_interval.is_some_and(|d| d < MIN_SWEEP_INTERVAL) {
            return Err(self.err(field, "must be at least 1s"));
        }
        Ok(Recovery {
            sweep,
            sweep_interval,
            requeue_interrupted: r.requeue_interrupted.unwrap_or(false),
        })
    }

    fn notify(&self, n: RawNotify) -> Result<Notify, ConfigError> {
        if let Some(c) = &n.command {
            if c.is_empty() || c[0].is_empty() || c.iter().any(|a| a.contains('\0')) {
                return Err(self.err(
                    "notify.command",
                    "must be a non-empty argv without NUL bytes",
                ));
            }
            if !Path::new(&c[0]).is_absolute() {
                return Err(self.err(
                    "notify.command",
                    format!(
                        "`{}` must be an absolute path (the daemon's PATH is not searched)",
                        c[0]
                    ),
                ));
            }
        }
        let webhook = n
            .webhook
            .map(|w| parse_webhook(&w).map_err(|m| self.err("notify.webhook", m)))
            .transpose()?;
        let timeout = self.duration("notify.timeout", n.timeout, MAX_NOTIFY_TIMEOUT)?;
        Ok(Notify {
            command: n.command,
            webhook,
            timeout: timeout.unwrap_or(DEFAULT_NOTIFY_TIMEOUT),
        })
    }
}

/// `http://host[:port][/path]`; anything else is refused with what to do instead.
pub(crate) fn parse_webhook(url: &str) -> Result<Webhook, String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!("`{url}` is not accepted: only http:// URLs are posted to directly; for https, use notify.command (e.g. curl)"));
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let bad = || format!("`{url}` is not a URL such as \"http://127.0.0.1:9000/hook\"");
    if authority.is_empty()
        || authority.contains('@')
        || path.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| bad())?)
        }
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    let path = if path.is_empty() { "/" } else { path };
    Ok(Webhook {
        host: host.into(),
        port,
        path: path.into(),
    })
}
