//! `[[trigger]]` and `[[schedule]]` in airlock.toml: which forge events and which clock slots
//! start tasks, from which template. Fails closed like the rest of the config: every message
//! names the file and the field (`trigger[0].secret_file`), secret files must be mode 0600,
//! templates must parse as task specs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use croner::parser::{CronParser, Seconds};
use croner::Cron;
use secrecy::SecretString;
use serde::Deserialize;

use super::ConfigError;
use crate::spec::Level;
use crate::trigger::Forge;

/// Shortest webhook secret accepted.
pub const MIN_SECRET_CHARS: usize = 16;

/// A `[[trigger]]` as written in the daemon's config, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrigger {
    /// `github`, `gitea`, `forgejo` or `gitlab`.
    pub forge: String,
    /// The file holding the webhook secret (mode 0600).
    pub secret_file: String,
    /// The repository (`owner/name`).
    pub repository: String,
    /// The label that starts a task.
    pub label: Option<String>,
    /// The comment command that starts a task.
    pub command: Option<String>,
    /// The task spec template file.
    pub template: String,
    /// Accounts trusted on forges whose payloads carry no association.
    pub trusted: Option<Vec<String>>,
}

/// A `[[schedule]]` as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// The cron expression (UTC).
    pub cron: String,
    /// The task spec template file.
    pub template: String,
    /// The key its slots are recorded under (default: the cron text and the template's path).
    pub name: Option<String>,
}

/// A task spec the event or the clock completes.
#[derive(Debug, Clone)]
pub struct Template {
    /// The template file.
    pub path: PathBuf,
    /// Its TOML, to be completed with the issue.
    pub table: toml::Table,
    /// Its level.
    pub level: Level,
    /// The spec's `repo.url` (for the push remote and status comments).
    pub repo_url: String,
}

/// One validated `[[trigger]]`.
#[derive(Debug)]
pub struct TriggerRule {
    /// The forge the events come from.
    pub forge: Forge,
    /// The webhook secret deliveries are verified with.
    pub secret: SecretString,
    /// The repository (`owner/name`).
    pub repository: String,
    /// The label that starts a task.
    pub label: Option<String>,
    /// The comment command that starts a task.
    pub command: Option<String>,
    /// Accounts trusted on forges whose payloads carry no association.
    pub trusted: Vec<String>,
    /// The task spec the event completes.
    pub template: Template,
}

/// One validated `[[schedule]]`.
#[derive(Debug, Clone)]
pub struct ScheduleRule {
    /// The key its slots are recorded under.
    pub name: String,
    /// The parsed cron expression.
    pub cron: Cron,
    /// The expression as written.
    pub cron_text: String,
    /// The task spec a slot runs.
    pub template: Template,
}

struct V<'a> {
    file: &'a Path,
}

impl V<'_> {
    fn err(&self, field: &str, m: impl Into<String>) -> ConfigError {
        ConfigError::new(self.file, Some(field), m)
    }
}

/// Validate every `[[trigger]]`.
pub fn triggers(file: &Path, raw: Vec<RawTrigger>) -> Result<Vec<TriggerRule>, ConfigError> {
    let v = V { file };
    let mut out: Vec<TriggerRule> = Vec::new();
    for (i, t) in raw.into_iter().enumerate() {
        let rule = v.trigger(&format!("trigger[{i}]"), t)?;
        let same = out.iter().any(|o| {
            o.forge.route() == rule.forge.route()
                && o.repository.eq_ignore_ascii_case(&rule.repository)
        });
        if same {
            return Err(v.err(
                &format!("trigger[{i}].repository"),
                format!(
                    "`{}` already has a [[trigger]] on /v1/hooks/{}; give each repository one",
                    rule.repository,
                    rule.forge.route()
                ),
            ));
        }
        out.push(rule);
    }
    Ok(out)
}

/// Validate every `[[schedule]]`.
pub fn schedules(file: &Path, raw: Vec<RawSchedule>) -> Result<Vec<ScheduleRule>, ConfigError> {
    let v = V { file };
    let mut out: Vec<ScheduleRule> = Vec::new();
    for (i, s) in raw.into_iter().enumerate() {
        let at = format!("schedule[{i}]");
        let cron = parse_cron(&s.cron).map_err(|m| v.err(&format!("{at}.cron"), m))?;
        let template = v.template(&format!("{at}.template"), &s.template, false)?;
        let name = s
            .name
            .unwrap_or_else(|| format!("{} {}", s.cron.trim(), template.path.display()));
        if out.iter().any(|o| o.name == name) {
            return Err(v.err(&format!("{at}.name"), format!("`{name}` is used twice")));
        }
        out.push(ScheduleRule {
            name,
            cron,
            cron_text: s.cron,
            template,
        });
    }
    Ok(out)
}

/// Standard 5-field cron (minute hour day-of-month month day-of-week), evaluated in UTC; a
/// leading sixth field for seconds is accepted.
pub fn parse_cron(text: &str) -> Result<Cron, String> {
    let fields = text.split_whitespace().count();
    if !text.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
        return Err(format!(
            "`{text}` has {fields} fields; accepted: 5 (minute hour day month weekday, UTC) or 6 (seconds first)"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(text)
        .map_err(|e| format!("`{text}` is not a cron expression: {e}"))
}

impl V<'_> {
    fn trigger(&self, at: &str, t: RawTrigger) -> Result<TriggerRule, ConfigError> {
        let forge = Forge::parse(&t.forge).ok_or_else(|| {
            self.err(
                &format!("{at}.forge"),
                format!(
                    "`{}` is not a forge; accepted: github, gitea, forgejo, gitlab",
                    t.forge
                ),
            )
        })?;
        let repository = t.repository.trim().to_string();
        if repository.is_empty()
            || repository
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(self.err(
                &format!("{at}.repository"),
                "must name the repository as the payload does, e.g. \"acme/tasks-app\"",
            ));
        }
        self.word(&format!("{at}.label"), t.label.as_deref(), false)?;
        self.word(&format!("{at}.command"), t.command.as_deref(), true)?;
        if t.label.is_none() && t.command.is_none() {
            return Err(self.err(
                at,
                "needs `label`, `command` or both: otherwise nothing starts a task",
            ));
        }
        let trusted = t.trusted.unwrap_or_default();
        if forge == Forge::Github && !trusted.is_empty() {
            return Err(self.err(&format!("{at}.trusted"), "GitHub payloads carry `author_association` (OWNER, MEMBER, COLLABORATOR are trusted); `trusted` applies to gitea, forgejo and gitlab"));
        }
        Ok(TriggerRule {
            forge,
            secret: self.secret(&format!("{at}.secret_file"), &t.secret_file)?,
            repository,
            label: t.label,
            command: t.command,
            trusted,
            template: self.template(&format!("{at}.template"), &t.template, true)?,
        })
    }

    fn word(&self, field: &str, w: Option<&str>, command: bool) -> Result<(), ConfigError> {
        let Some(w) = w else { return Ok(()) };
        let bad = w.is_empty()
            || w.len() > 64
            || w.chars()
                .any(|c| c.is_control() || (command && c.is_whitespace()));
        if bad {
            return Err(self.err(
                field,
                format!(
                    "`{w}` must be 1 to 64 characters without control characters{}",
                    if command { " or spaces" } else { "" }
                ),
            ));
        }
        Ok(())
    }

    fn secret(&self, field: &str, path: &str) -> Result<SecretString, ConfigError> {
        let p = Path::new(path);
        if !p.is_absolute() {
            return Err(self.err(field, format!("`{path}` must be an absolute path")));
        }
        let meta = std::fs::metadata(p).map_err(|e| self.err(field, format!("`{path}`: {e}")))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(self.err(
                field,
                format!("`{path}` is readable by group or others (mode {mode:o}); chmod 600 it"),
            ));
        }
        let text = secrecy::zeroize::Zeroizing::new(
            std::fs::read_to_string(p).map_err(|e| self.err(field, format!("`{path}`: {e}")))?,
        );
        let secret = text.lines().next().unwrap_or("").trim();
        if secret.chars().count() < MIN_SECRET_CHARS {
            return Err(self.err(field, format!("`{path}` must hold a secret of at least {MIN_SECRET_CHARS} characters on its first line")));
        }
        Ok(SecretString::from(secret.to_string()))
    }

    /// Read and check a template. Trigger templates have no `title` and no `[issue]` (the event
    /// fills them); schedule templates are complete specs.
    fn template(
        &self,
        field: &str,
        path: &str,
        event_fills: bool,
    ) -> Result<Template, ConfigError> {
        let p = PathBuf::from(path);
        if !p.is_absolute() {
            return Err(self.err(field, format!("`{path}` must be an absolute path")));
        }
        let text =
            std::fs::read_to_string(&p).map_err(|e| self.err(field, format!("`{path}`: {e}")))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            let p = crate::tomlpath::describe(&text, &e);
            self.err(field, format!("`{path}`: {}", p.message))
        })?;
        if event_fills {
            for key in ["title", "issue"] {
                if table.contains_key(key) {
                    return Err(self.err(field, format!("`{path}` has `{key}`: the forge event fills the title and [issue]; remove it")));
                }
            }
        }
        let table = if event_fills {
            table
        } else {
            complete(table, &p)
        };
        let filled = if event_fills {
            fill(&table, "template check", "x", None, None)
        } else {
            table.clone()
        };
        let spec_text = toml::to_string(&filled).map_err(|e| self.err(field, e.to_string()))?;
        let spec = crate::spec::parse_str(&spec_text, &p)
            .map_err(|e| self.err(field, format!("`{path}` is not a valid task spec: {e}")))?;
        Ok(Template {
            path: p,
            table,
            level: spec.level,
            repo_url: spec.repo.url,
        })
    }
}

/// A schedule template may leave out the title and the issue text.
fn complete(mut t: toml::Table, path: &Path) -> toml::Table {
    if !t.contains_key("title") {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        t.insert(
            "title".into(),
            toml::Value::String(format!("scheduled: {stem}")),
        );
    }
    if !t.contains_key("issue") {
        let mut issue = toml::Table::new();
        issue.insert(
            "text".into(),
            toml::Value::String("A scheduled run; there is no issue text.".into()),
        );
        t.insert("issue".into(), toml::Value::Table(issue));
    }
    t
}

/// The template with the event's (or the clock's) values filled in.
pub fn fill(
    template: &toml::Table,
    title: &str,
    issue_text: &str,
    issue_url: Option<&str>,
    level: Option<Level>,
) -> toml::Table {
    let mut t = template.clone();
    t.insert("title".into(), toml::Value::String(title.into()));
    let mut issue = toml::Table::new();
    issue.insert("text".into(), toml::Value::String(issue_text.into()));
    if let Some(u) = issue_url {
        issue.insert("url".into(), toml::Value::String(u.into()));
    }
    t.insert("issue".into(), toml::Value::Table(issue));
    if let Some(l) = level {
        t.insert("level".into(), toml::Value::String(l.as_str().into()));
    }
    t
}
