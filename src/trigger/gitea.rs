//! Gitea and Forgejo webhook payloads: `issues` / `label_updated` (the issue's labels after the
//! change) and `issue_comment` / `created`. Headers: `X-Gitea-Event` / `X-Forgejo-Event`,
//! `X-Gitea-Delivery` / `X-Forgejo-Delivery`.

use serde_json::Value;

use super::{need, need_str, need_u64, s, Actor, Event, Forge, Headers, Issue, Kind, Parsed};

/// The delivery id (kept across redeliveries).
pub fn delivery(forge: Forge, h: &(impl Headers + ?Sized)) -> Option<&str> {
    match forge {
        Forge::Forgejo => h.get("x-forgejo-delivery"),
        _ => h.get("x-gitea-delivery"),
    }
}

/// Which dialect the request speaks: Forgejo's headers, else Gitea's.
pub fn dialect(h: &(impl Headers + ?Sized)) -> Forge {
    if h.get("x-forgejo-event").is_some() || h.get("x-forgejo-signature").is_some() {
        Forge::Forgejo
    } else {
        Forge::Gitea
    }
}

/// Parse a Gitea or Forgejo webhook (`forge` says which headers name the event) into an issue event, or why it is ignored.
pub fn parse(forge: Forge, h: &(impl Headers + ?Sized), v: &Value) -> Result<Parsed, String> {
    let event = match forge {
        Forge::Forgejo => h.get("x-forgejo-event"),
        _ => h.get("x-gitea-event"),
    }
    .unwrap_or("");
    let action = s(v, "action");
    match (event, action) {
        ("issues", "label_updated") => labeled(v),
        ("issue_comment", "created") => comment(v),
        ("issues" | "issue_comment", a) => Ok(Parsed::Ignored(format!(
            "`{event}` action `{a}` starts no task"
        ))),
        ("", _) => Err("the X-Gitea-Event (or X-Forgejo-Event) header is missing".into()),
        (e, _) => Ok(Parsed::Ignored(format!("`{e}` events start no task"))),
    }
}

fn labeled(v: &Value) -> Result<Parsed, String> {
    let issue_v = need(v, "issue")?;
    let labels = issue_v["labels"]
        .as_array()
        .map(|a| a.iter().map(|l| s(l, "name").to_string()).collect())
        .unwrap_or_default();
    Ok(Parsed::Event(Box::new(Event {
        repository: need_str(v, "repository.full_name")?.into(),
        issue: issue(issue_v)?,
        kind: Kind::Labeled { labels },
        actor: actor(&v["sender"]),
    })))
}

fn comment(v: &Value) -> Result<Parsed, String> {
    if v["is_pull"].as_bool() == Some(true) {
        return Ok(Parsed::Ignored(
            "comments on pull requests start no task".into(),
        ));
    }
    let c = need(v, "comment")?;
    Ok(Parsed::Event(Box::new(Event {
        repository: need_str(v, "repository.full_name")?.into(),
        issue: issue(need(v, "issue")?)?,
        kind: Kind::Comment {
            body: s(c, "body").into(),
        },
        actor: actor(&c["user"]),
    })))
}

fn issue(v: &Value) -> Result<Issue, String> {
    Ok(Issue {
        number: need_u64(v, "number")?,
        title: s(v, "title").into(),
        body: s(v, "body").into(),
        url: v["html_url"].as_str().map(str::to_string),
        author: Some(actor(&v["user"])),
    })
}

fn actor(user: &Value) -> Actor {
    let login = match s(user, "login") {
        "" => s(user, "username"),
        l => l,
    };
    Actor {
        login: login.into(),
        association: None,
    }
}
