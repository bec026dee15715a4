//! GitLab webhook payloads: `Issue Hook` whose `changes.labels` adds a label, and `Note Hook`
//! on an issue. Headers: `X-Gitlab-Event`, `X-Gitlab-Event-UUID`. GitLab names an issue's
//! author only by id: the author is known (by username) only when they are the acting user.

use serde_json::Value;

use super::{need, need_str, need_u64, s, Actor, Event, Headers, Issue, Kind, Parsed};

/// The delivery id (kept across redeliveries).
pub fn delivery(h: &(impl Headers + ?Sized)) -> Option<&str> {
    h.get("x-gitlab-event-uuid")
}

/// Parse a GitLab webhook into an issue event, or why it is ignored.
pub fn parse(h: &(impl Headers + ?Sized), v: &Value) -> Result<Parsed, String> {
    match h.get("x-gitlab-event").unwrap_or("") {
        "Issue Hook" => issue_hook(v),
        "Note Hook" => note_hook(v),
        "" => Err("the X-Gitlab-Event header is missing".into()),
        e => Ok(Parsed::Ignored(format!("`{e}` events start no task"))),
    }
}

fn titles(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|l| s(l, "title").to_string()).collect())
        .unwrap_or_default()
}

fn issue_hook(v: &Value) -> Result<Parsed, String> {
    let before = titles(&v["changes"]["labels"]["previous"]);
    let added: Vec<String> = titles(&v["changes"]["labels"]["current"])
        .into_iter()
        .filter(|t| !before.contains(t))
        .collect();
    if added.is_empty() {
        return Ok(Parsed::Ignored("no label was added to the issue".into()));
    }
    let user = need(v, "user")?;
    let attrs = need(v, "object_attributes")?;
    Ok(Parsed::Event(Box::new(Event {
        repository: need_str(v, "project.path_with_namespace")?.into(),
        issue: issue(attrs, user, &v["project"])?,
        kind: Kind::Labeled { labels: added },
        actor: actor(user),
    })))
}

fn note_hook(v: &Value) -> Result<Parsed, String> {
    let attrs = need(v, "object_attributes")?;
    if s(attrs, "noteable_type") != "Issue" {
        return Ok(Parsed::Ignored(
            "only comments on issues start tasks".into(),
        ));
    }
    if !matches!(s(attrs, "action"), "" | "create") {
        return Ok(Parsed::Ignored(format!(
            "note action `{}` starts no task",
            s(attrs, "action")
        )));
    }
    let user = need(v, "user")?;
    Ok(Parsed::Event(Box::new(Event {
        repository: need_str(v, "project.path_with_namespace")?.into(),
        issue: issue(need(v, "issue")?, user, &v["project"])?,
        kind: Kind::Comment {
            body: s(attrs, "note").into(),
        },
        actor: actor(user),
    })))
}

fn issue(v: &Value, user: &Value, project: &Value) -> Result<Issue, String> {
    let same = v["author_id"].as_u64().is_some() && v["author_id"] == user["id"];
    let number = need_u64(v, "iid")?;
    let url = v["url"].as_str().map(str::to_string).or_else(|| {
        project["web_url"]
            .as_str()
            .map(|w| format!("{w}/-/issues/{number}"))
    });
    Ok(Issue {
        number,
        title: s(v, "title").into(),
        body: s(v, "description").into(),
        url,
        author: same.then(|| actor(user)),
    })
}

fn actor(user: &Value) -> Actor {
    Actor {
        login: s(user, "username").into(),
        association: None,
    }
}
