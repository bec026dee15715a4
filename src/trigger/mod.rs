//! Forge events and schedules → task plans. Pure: no I/O, no clock, no tokio.
//!
//! A webhook request is authenticated first ([`verify`], over the raw body), then parsed per
//! forge into one normalised [`Event`] ([`github`], [`gitea`], [`gitlab`]), then matched against
//! the operator's `[[trigger]]` rule and turned into a [`plan::Plan`] (source, level, title,
//! sanitised issue text) or a reason to ignore it. Each forge's parser dispatches on the event
//! name in one `match`: a new kind of event is one more arm and one more [`Kind`] variant.

pub mod gitea;
pub mod github;
pub mod gitlab;
pub mod plan;
pub mod text;
pub mod verify;

/// Which forge sent an event (Forgejo speaks Gitea's dialect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    /// GitHub.
    Github,
    /// Gitea.
    Gitea,
    /// Forgejo (Gitea's dialect, its own event header).
    Forgejo,
    /// GitLab.
    Gitlab,
}

impl Forge {
    /// Every forge.
    pub const ALL: [Forge; 4] = [Forge::Github, Forge::Gitea, Forge::Forgejo, Forge::Gitlab];

    /// The forge named `text` (`github`, `gitea`, `forgejo`, `gitlab`), if there is one.
    pub fn parse(text: &str) -> Option<Forge> {
        Forge::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// The name as written in the daemon's config.
    pub fn as_str(self) -> &'static str {
        match self {
            Forge::Github => "github",
            Forge::Gitea => "gitea",
            Forge::Forgejo => "forgejo",
            Forge::Gitlab => "gitlab",
        }
    }

    /// The route segment its events arrive on (`/v1/hooks/<route>`).
    pub fn route(self) -> &'static str {
        match self {
            Forge::Github => "github",
            Forge::Gitea | Forge::Forgejo => "gitea",
            Forge::Gitlab => "gitlab",
        }
    }
}

/// Someone on the forge, as the payload names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Their login name.
    pub login: String,
    /// GitHub's `author_association` (OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE, ...).
    pub association: Option<String>,
}

/// The issue an event is about. Every text field is untrusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The issue's number in its repository.
    pub number: u64,
    /// Its title.
    pub title: String,
    /// Its body.
    pub body: String,
    /// Its web page, when the payload gives one.
    pub url: Option<String>,
    /// The author, when the payload identifies them (GitLab gives only an id).
    pub author: Option<Actor>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `label` was added to the issue (for Gitea: the issue's labels now include it).
    Labeled {
        /// The label added (for Gitea: the issue's labels now).
        labels: Vec<String>,
    },
    /// A new comment on the issue.
    Comment {
        /// The comment's text.
        body: String,
    },
}

/// One forge event, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The repository as the payload names it (`owner/name`, GitLab's `path_with_namespace`).
    pub repository: String,
    /// The issue.
    pub issue: Issue,
    /// What happened to it.
    pub kind: Kind,
    /// Who acted: the labeller or the commenter.
    pub actor: Actor,
}

/// A parsed payload: an event to consider, or why it is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// An issue event to match against the rules.
    Event(Box<Event>),
    /// Not an issue event airlock acts on; the reason, for the delivery log.
    Ignored(String),
}

/// The request headers a parser reads (names lower-case).
pub trait Headers {
    /// The value of header `name`, if present.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Headers for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// A string field of a JSON object, or "".
pub(crate) fn s<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// A required field, or a message naming it.
pub(crate) fn need<'a>(
    v: &'a serde_json::Value,
    path: &str,
) -> Result<&'a serde_json::Value, String> {
    let mut cur = v;
    for k in path.split('.') {
        cur = &cur[k];
    }
    if cur.is_null() {
        return Err(format!("the payload has no `{path}`"));
    }
    Ok(cur)
}

/// A required string field.
pub(crate) fn need_str<'a>(v: &'a serde_json::Value, path: &str) -> Result<&'a str, String> {
    need(v, path)?
        .as_str()
        .ok_or_else(|| format!("`{path}` is not a string"))
}

/// A required issue number.
pub(crate) fn need_u64(v: &serde_json::Value, path: &str) -> Result<u64, String> {
    need(v, path)?
        .as_u64()
        .ok_or_else(|| format!("`{path}` is not a number"))
}
