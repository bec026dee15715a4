//! A forge event against the operator's `[[trigger]]` rule: the task it starts (source, level,
//! title, sanitised issue text), or why it starts none.
//!
//! The source is fixed by what happened (`webhook:issue_label`, `webhook:comment`); the level is
//! the template's, lowered to what operator.toml `[sources]` allows the source and, for an
//! untrusted author, to `[authors] untrusted_max`. Nothing in the event can raise it.

use super::{text, Actor, Event, Forge, Kind};
use crate::policy::Source;
use crate::vocab::Level;

/// GitHub `author_association` values that count as write access to the repository.
pub const TRUSTED_ASSOCIATIONS: [&str; 3] = ["OWNER", "MEMBER", "COLLABORATOR"];

/// The operator's rule for one repository on one forge.
#[derive(Debug, Clone)]
pub struct Rule<'a> {
    /// The forge the rule is for.
    pub forge: Forge,
    /// The repository (`owner/name`).
    pub repository: &'a str,
    /// The label that starts a task, if labels do.
    pub label: Option<&'a str>,
    /// The comment command that starts a task (`/airlock`), if comments do.
    pub command: Option<&'a str>,
    /// Accounts trusted on forges whose payloads carry no association (Gitea, GitLab).
    pub trusted: &'a [String],
}

/// The operator's ceilings (operator.toml).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Highest level a label may start (`None`: labels start nothing).
    pub label_max: Option<Level>,
    /// Highest level a comment command may start (`None`: comments start nothing).
    pub comment_max: Option<Level>,
    /// Highest level when the author is not trusted.
    pub untrusted_max: Level,
}

/// A task to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// How the task was triggered (for admission).
    pub source: Source,
    /// The level it runs at, after the caps.
    pub level: Level,
    /// Whether the author the trust rests on (issue author for a label, commenter for a
    /// command) has write access.
    pub trusted: bool,
    /// The issue's title (untrusted).
    pub title: String,
    /// The issue's body (untrusted).
    pub issue_text: String,
    /// The issue's web page, when known.
    pub issue_url: Option<String>,
    /// One live task per issue: `<forge>:<repository>#<number>`.
    pub issue_key: String,
    /// The issue's number.
    pub issue_number: u64,
    /// Who asked (the labeller or the commenter), for the status comment.
    pub requester: String,
    /// Which rules set the level, for the task's events.
    pub notes: Vec<String>,
}

/// Decide what `event` starts under `rule`, given the template's level and the caps.
pub fn plan(rule: &Rule, event: &Event, template: Level, caps: Caps) -> Result<Plan, String> {
    if !event.repository.eq_ignore_ascii_case(rule.repository) {
        return Err(format!(
            "repository `{}` has no [[trigger]] here",
            text::title(&event.repository)
        ));
    }
    let (source, trusted, instruction) = match &event.kind {
        Kind::Labeled { labels } => labeled(rule, event, labels)?,
        Kind::Comment { body } => commented(rule, event, body)?,
    };
    let max = match source {
        Source::Comment => caps.comment_max,
        _ => caps.label_max,
    }
    .ok_or_else(|| {
        format!(
            "operator.toml [sources] allows no task from `{}`",
            source.key()
        )
    })?;
    let mut level = template.min(max);
    let mut notes = vec![format!(
        "template {template}; source `{}` allows up to {max}",
        source.key()
    )];
    if !trusted {
        level = level.min(caps.untrusted_max);
        notes.push(format!(
            "untrusted author: capped at {} ([authors] untrusted_max)",
            caps.untrusted_max
        ));
    }
    Ok(Plan {
        source,
        level,
        trusted,
        title: text::title(&event.issue.title),
        issue_text: issue_text(&event.issue.body, instruction.as_deref(), &event.actor),
        issue_url: event
            .issue
            .url
            .clone()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        issue_key: format!(
            "{}:{}#{}",
            rule.forge.route(),
            rule.repository,
            event.issue.number
        ),
        issue_number: event.issue.number,
        requester: text::strip_controls(&event.actor.login)
            .chars()
            .take(100)
            .collect(),
        notes,
    })
}

type Decided = (Source, bool, Option<String>);

fn labeled(rule: &Rule, event: &Event, labels: &[String]) -> Result<Decided, String> {
    let Some(want) = rule.label else {
        return Err("this [[trigger]] starts no task from labels".into());
    };
    if !labels.iter().any(|l| l == want) {
        return Err(format!("the label `{want}` was not added"));
    }
    let trusted = event
        .issue
        .author
        .as_ref()
        .is_some_and(|a| is_trusted(rule, a));
    Ok((Source::IssueLabel, trusted, None))
}

fn commented(rule: &Rule, event: &Event, body: &str) -> Result<Decided, String> {
    let Some(command) = rule.command else {
        return Err("this [[trigger]] starts no task from comments".into());
    };
    let rest = body
        .trim_start()
        .strip_prefix(command)
        .filter(|r| r.is_empty() || r.starts_with(char::is_whitespace))
        .ok_or_else(|| format!("the comment does not start with `{command}`"))?;
    let trusted = is_trusted(rule, &event.actor);
    Ok((Source::Comment, trusted, Some(rest.trim().to_string())))
}

/// GitHub: the association; elsewhere: the operator's list of trusted accounts.
pub fn is_trusted(rule: &Rule, who: &Actor) -> bool {
    if who.login.is_empty() {
        return false;
    }
    match rule.forge {
        Forge::Github => who
            .association
            .as_deref()
            .is_some_and(|a| TRUSTED_ASSOCIATIONS.contains(&a)),
        _ => rule
            .trusted
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&who.login)),
    }
}

fn issue_text(body: &str, instruction: Option<&str>, requester: &Actor) -> String {
    let mut t = body.to_string();
    if let Some(i) = instruction {
        t.push_str(&format!(
            "\n\n---\nInstruction from {} (a comment on the issue):\n{i}\n",
            requester.login
        ));
    }
    text::issue_text(&t)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
