//! GitHub (and GitHub Enterprise) webhook payloads: `issues` / `labeled` and
//! `issue_comment` / `created`. Headers: `X-GitHub-Event`, `X-GitHub-Delivery`.

use serde_json::Value;

use super::{need, need_str, need_u64, s, Actor, Event, Headers, Issue, Kind, Parsed};

/// The delivery id GitHub keeps across redeliveries.
pub fn delivery(h: &(impl Headers + ?Sized)) -> Option<&str> {
    h.get("x-github-delivery")
}

/// The event, or why it starts nothing; `Err` for a payload missing what its event promises.
pub fn parse(h: &(impl Headers + ?Sized), v: &Value) -> Result<Parsed, String> {
    let event = h.get("x-github-event").unwrap_or("");
    let action = s(v, "action");
    match (event, action) {
        ("issues", "labeled") => labeled(v),
        ("issue_comment", "created") => comment(v),
        ("ping", _) => Ok(Parsed::Ignored("ping: the webhook is set up".into())),
        ("issues" | "issue_comment", a) => Ok(Parsed::Ignored(format!(
            "`{event}` action `{a}` starts no task"
        ))),
        ("", _) => Err("the X-GitHub-Event header is missing".into()),
        (e, _) => Ok(Parsed::Ignored(format!("`{e}` events start no task"))),
    }
}

fn labeled(v: &Value) -> Result<Parsed, String> {
    let label = need_str(v, "label.name")?.to_string();
    Ok(Parsed::Event(Box::new(Event {
        repository: need_str(v, "repository.full_name")?.into(),
        issue: issue(need(v, "issue")?)?,
        kind: Kind::Labeled {
            labels: vec![label],
        },
        actor: actor(&v["sender"], None),
    })))
}

fn comment(v: &Value) -> Result<Parsed, String> {
    let issue_v = need(v, "issue")?;
    if !issue_v["pull_request"].is_null() {
        return Ok(Parsed::Ignored(
            "comments on pull requests start no task".into(),
        ));
    }
    let c = need(v, "comment")?;
    Ok(Parsed::Event(Box::new(Event {
        repository: need_str(v, "repository.full_name")?.into(),
        issue: issue(issue_v)?,
        kind: Kind::Comment {
            body: s(c, "body").into(),
        },
        actor: actor(&c["user"], c["author_association"].as_str()),
    })))
}

fn issue(v: &Value) -> Result<Issue, String> {
    Ok(Issue {
        number: need_u64(v, "number")?,
        title: s(v, "title").into(),
        body: s(v, "body").into(),
        url: v["html_url"].as_str().map(str::to_string),
        author: Some(actor(&v["user"], v["author_association"].as_str())),
    })
}

fn actor(user: &Value, association: Option<&str>) -> Actor {
    Actor {
        login: s(user, "login").into(),
        association: association.map(str::to_string),
    }
}
