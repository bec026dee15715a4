//! Turn a [`RawSpec`] into a [`TaskSpec`], naming the file and field of every problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::raw::{RawAgent, RawGate, RawIssue, RawLimits, RawSpec};
use super::{
    AgentSpec, GateSpec, Level, RepoSpec, RequestedLimits, SpecError, TaskSpec, MAX_ISSUE_BYTES,
    MAX_TITLE_CHARS,
};
use crate::units::{parse_bytes, parse_duration};

/// Read and validate the spec at `path`.
pub fn load(path: &Path) -> Result<TaskSpec, SpecError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SpecError::new(path, None, format!("cannot read the task spec: {e}")))?;
    parse_str(&text, path)
}

/// Validate spec text as if it were read from `path` (relative paths resolve against its dir).
pub fn parse_str(text: &str, path: &Path) -> Result<TaskSpec, SpecError> {
    let raw: RawSpec = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let v = Validator {
        file: path,
        dir,
        resolve_local: true,
    };
    v.spec(raw)
}

/// Validate spec text sent by an API client: nothing on the host is read or resolved on its
/// behalf, so a local `repo.url` must be an absolute, lexically clean path; the runner resolves
/// it only after admission has allowed it (and checks the resolved path again).
pub fn parse_submitted(text: &str, name: &Path) -> Result<TaskSpec, SpecError> {
    let raw: RawSpec = toml::from_str(text).map_err(|e| toml_error(name, text, &e))?;
    let v = Validator {
        file: name,
        dir: PathBuf::from("/"),
        resolve_local: false,
    };
    v.spec(raw)
}

fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> SpecError {
    let p = crate::tomlpath::describe(text, e);
    SpecError {
        file: path.to_path_buf(),
        field: p.field,
        message: p.message,
    }
}

struct Validator<'a> {
    file: &'a Path,
    dir: PathBuf,
    /// Canonicalise local repository paths (a spec file at the operator's shell).
    resolve_local: bool,
}

impl Validator<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> SpecError {
        SpecError::new(self.file, Some(field), message)
    }

    fn spec(&self, raw: RawSpec) -> Result<TaskSpec, SpecError> {
        let (agent, runtime) = self.agent(raw.agent)?;
        let gate = raw.gate.map(|g| self.gate(g, &agent.image)).transpose()?;
        Ok(TaskSpec {
            source: self.file.to_path_buf(),
            title: self.title(raw.title)?,
            level: self.level(&raw.level)?,
            acceptance: self.acceptance(raw.acceptance)?,
            repo: self.repo(raw.repo.url, raw.repo.base)?,
            issue_url: raw
                .issue
                .url
                .clone()
                .map(|u| self.issue_url(u))
                .transpose()?,
            issue_text: self.issue(raw.issue)?,
            runtime,
            agent,
            gate,
            limits: self.limits(raw.limits)?,
            kind: super::work::validate_kind(raw.kind.as_deref())
                .map_err(|(f, m)| self.err(&f, m))?,
            scope: super::work::validate_scope(raw.scope).map_err(|(f, m)| self.err(&f, m))?,
        })
    }

    fn title(&self, title: String) -> Result<String, SpecError> {
        let t = title.trim();
        if t.is_empty() {
            return Err(self.err("title", "is empty; give the task a short title"));
        }
        if t.chars().count() > MAX_TITLE_CHARS || t.chars().any(char::is_control) {
            return Err(self.err(
                "title",
                format!("must be one line of at most {MAX_TITLE_CHARS} characters"),
            ));
        }
        Ok(t.to_string())
    }

    fn level(&self, level: &str) -> Result<Level, SpecError> {
        Level::parse(level).ok_or_else(|| {
            self.err(
                "level",
                format!("`{level}` is not a level; accepted: L0, L1, L2, L3, L4"),
            )
        })
    }

    fn acceptance(&self, items: Vec<String>) -> Result<Vec<String>, SpecError> {
        if items.iter().any(|a| a.trim().is_empty()) {
            return Err(self.err("acceptance", "has an empty entry"));
        }
        Ok(items)
    }

    fn repo(&self, url: String, base: String) -> Result<RepoSpec, SpecError> {
        let url = self.repo_url(url)?;
        valid_ref(&base).map_err(|m| self.err("repo.base", m))?;
        Ok(RepoSpec { url, base })
    }

    fn repo_url(&self, url: String) -> Result<String, SpecError> {
        let u = url.trim();
        if u.is_empty() || u.starts_with('-') {
            return Err(self.err("repo.url", format!("`{u}` is not a repository path or URL")));
        }
        if let Some((scheme, _)) = u.split_once("://") {
            return match scheme {
                "https" | "http" | "ssh" | "git" => Ok(u.to_string()),
                "file" => self.local_repo(&u["file://".len()..]),
                other => Err(self.err(
                    "repo.url",
                    format!("scheme `{other}` is not accepted; use https, http, ssh, git, file or a path"),
                )),
            };
        }
        if u.contains("::") {
            return Err(self.err("repo.url", "git remote helpers (`x::...`) are not accepted"));
        }
        self.local_repo(u)
    }

    fn local_repo(&self, path: &str) -> Result<String, SpecError> {
        if !self.resolve_local {
            return crate::repo_url::locate(path)
                .map(|l| l.key())
                .map_err(|m| self.err("repo.url", format!("`{path}`: {m}")));
        }
        let p = self.dir.join(path);
        let abs = std::fs::canonicalize(&p).map_err(|e| {
            self.err(
                "repo.url",
                format!("repository `{}` cannot be opened: {e}", p.display()),
            )
        })?;
        Ok(abs.to_string_lossy().into_owned())
    }

    fn issue(&self, issue: RawIssue) -> Result<String, SpecError> {
        match (issue.file, issue.text) {
            (Some(_), Some(_)) => Err(self.err("issue", "give either `file` or `text`, not both")),
            (None, None) => {
                Err(self.err("issue", "needs `file = \"issue.md\"` or `text = \"...\"`"))
            }
            (None, Some(text)) => self
                .issue_size(text.len() as u64, "issue.text")
                .map(|_| text),
            (Some(file), None) => self.issue_file(&file),
        }
    }

    fn issue_url(&self, url: String) -> Result<String, SpecError> {
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && url.len() <= 2048
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(self.err("issue.url", format!("`{url}` is not an http(s) URL")));
        }
        Ok(url)
    }

    fn issue_file(&self, file: &str) -> Result<String, SpecError> {
        let path = self.dir.join(file);
        let meta = std::fs::metadata(&path).map_err(|e| {
            self.err(
                "issue.file",
                format!("cannot read `{}`: {e}", path.display()),
            )
        })?;
        if !meta.is_file() {
            return Err(self.err(
                "issue.file",
                format!("`{}` is not a regular file", path.display()),
            ));
        }
        self.issue_size(meta.len(), "issue.file")?;
        let bytes = std::fs::read(&path).map_err(|e| {
            self.err(
                "issue.file",
                format!("cannot read `{}`: {e}", path.display()),
            )
        })?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn issue_size(&self, len: u64, field: &str) -> Result<(), SpecError> {
        if len > MAX_ISSUE_BYTES {
            return Err(self.err(
                field,
                format!("is {len} bytes; at most {MAX_ISSUE_BYTES} are accepted"),
            ));
        }
        Ok(())
    }

    fn agent(&self, a: RawAgent) -> Result<(AgentSpec, Option<String>), SpecError> {
        valid_image(&a.image).map_err(|m| self.err("agent.image", m))?;
        self.env(&a.env)?;
        let runtime = a.runtime.map(|r| self.runtime(r)).transpose()?;
        let models =
            super::agent_models::models(&a.models).map_err(|m| self.err("agent.models", m))?;
        let preset = a
            .preset
            .as_deref()
            .map(|p| {
                super::agent_models::preset(p, &models).map_err(|m| self.err("agent.preset", m))
            })
            .transpose()?;
        let command = match (a.command, preset) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    "agent.command",
                    "give either `command` or `preset`, not both",
                ))
            }
            (None, None) => {
                return Err(self.err("agent.command", "is missing; give an argv, or a `preset`"))
            }
            (Some(c), None) => c,
            (None, Some(_)) => Vec::new(),
        };
        if preset.is_none() {
            valid_argv(&command).map_err(|m| self.err("agent.command", m))?;
        }
        let model = a
            .model
            .map(|m| super::agent_models::model(&m, preset.is_some()).map(|_| m))
            .transpose()
            .map_err(|m| self.err("agent.model", m))?;
        Ok((
            AgentSpec {
                image: a.image,
                command,
                env: a.env,
                models,
                preset,
                model,
            },
            runtime,
        ))
    }

    fn runtime(&self, r: String) -> Result<String, SpecError> {
        match r.as_str() {
            "runc" | "runsc" => Ok(r),
            _ => Err(self.err(
                "agent.runtime",
                format!("`{r}` is not a runtime; accepted: runc, runsc"),
            )),
        }
    }

    fn env(&self, env: &BTreeMap<String, String>) -> Result<(), SpecError> {
        for (k, v) in env {
            let field = format!("agent.env.{k}");
            valid_env_name(k).map_err(|m| self.err(&field, m))?;
            if v.contains('\0') {
                return Err(self.err(&field, "value contains a NUL byte"));
            }
        }
        Ok(())
    }

    fn gate(&self, g: RawGate, agent_image: &str) -> Result<GateSpec, SpecError> {
        let image = g.image.unwrap_or_else(|| agent_image.to_string());
        valid_image(&image).map_err(|m| self.err("gate.image", m))?;
        if g.commands.is_empty() {
            return Err(self.err(
                "gate.commands",
                "is empty; give at least one argv, or omit [gate]",
            ));
        }
        for (i, argv) in g.commands.iter().enumerate() {
            valid_argv(argv).map_err(|m| self.err(&format!("gate.commands[{i}]"), m))?;
        }
        Ok(GateSpec {
            image,
            commands: g.commands,
        })
    }

    fn limits(&self, l: Option<RawLimits>) -> Result<RequestedLimits, SpecError> {
        let Some(l) = l else {
            return Ok(RequestedLimits::default());
        };
        let timeout = l.timeout.map(|t| parse_duration(&t)).transpose();
        let memory = l.memory.map(|m| parse_bytes(&m)).transpose();
        Ok(RequestedLimits {
            timeout: timeout.map_err(|m| self.err("limits.timeout", m))?,
            memory: memory.map_err(|m| self.err("limits.memory", m))?,
            attempts: l
                .attempts
                .map(|a| self.positive("limits.attempts", a, 100))
                .transpose()?
                .map(|a| a as u32),
            pids: l
                .pids
                .map(|p| self.positive("limits.pids", p, 1 << 20))
                .transpose()?,
            cpus: l.cpus.map(|c| self.cpus(c)).transpose()?,
        })
    }

    fn positive(&self, field: &str, v: i64, max: i64) -> Result<i64, SpecError> {
        if v < 1 || v > max {
            return Err(self.err(
                field,
                format!("`{v}` is out of range; accepted: 1 to {max}"),
            ));
        }
        Ok(v)
    }

    fn cpus(&self, c: f64) -> Result<f64, SpecError> {
        if !(c.is_finite() && (0.01..=1024.0).contains(&c)) {
            return Err(self.err(
                "limits.cpus",
                format!("`{c}` is out of range; accepted: 0.01 to 1024"),
            ));
        }
        Ok(c)
    }
}

fn valid_argv(argv: &[String]) -> Result<(), String> {
    match argv.first() {
        None => Err(
            "is an empty argv; give the program and its arguments, e.g. [\"demo-agent\"]".into(),
        ),
        Some(p) if p.trim().is_empty() => Err("has an empty program name (argv[0])".into()),
        _ if argv.iter().any(|a| a.contains('\0')) => Err("contains a NUL byte".into()),
        _ => Ok(()),
    }
}

/// Docker image references: `[registry/]name[:tag][@digest]`, no whitespace or leading dash.
fn valid_image(image: &str) -> Result<(), String> {
    let ok = !image.is_empty()
        && !image.starts_with('-')
        && image.len() <= 255
        && image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{image}` is not an image reference such as \"airlock/demo:latest\""
        ))
    }
}

/// Names airlock sets itself, or that would let a value reach the host's view of the sandbox.
const RESERVED_ENV: &[&str] = &["HOME", "PATH", "LD_PRELOAD", "LD_LIBRARY_PATH"];
/// Words in a name that mean the value is a secret; secrets never go into a sandbox.
const SECRET_WORDS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "API_KEY",
    "PRIVATE_KEY",
];

fn valid_env_name(k: &str) -> Result<(), String> {
    let shape = !k.is_empty()
        && k.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !shape {
        return Err("is not a variable name ([A-Za-z_][A-Za-z0-9_]*)".into());
    }
    let upper = k.to_ascii_uppercase();
    if upper.starts_with("AIRLOCK_") || RESERVED_ENV.contains(&upper.as_str()) {
        return Err("is set by airlock itself and cannot be overridden".into());
    }
    if SECRET_WORDS.iter().any(|w| upper.contains(w)) {
        return Err("looks like a secret; the sandbox gets non-secret values only".into());
    }
    Ok(())
}

/// A git ref name for `repo.base`: no option injection, no revision syntax.
fn valid_ref(base: &str) -> Result<(), String> {
    let bad = base.is_empty()
        || base.starts_with('-')
        || base.starts_with('/')
        || base.ends_with('/')
        || base.ends_with(".lock")
        || base.contains("..")
        || base.contains("@{")
        || base
            .chars()
            .any(|c| c.is_ascii_control() || " ~^:?*[\\".contains(c));
    if bad {
        return Err(format!("`{base}` is not a branch, tag or commit name"));
    }
    Ok(())
}
