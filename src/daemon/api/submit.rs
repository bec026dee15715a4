//! `POST /v1/tasks`: a task spec (the TOML `airlock run` takes) in the body; its id in the
//! reply only once it is durably stored.
//!
//! API submissions carry no base dir, and the daemon must not read host files on a client's
//! behalf, so two rules apply before the spec's own: `issue.file` is refused (send
//! `issue.text`; `airlock submit` inlines the file client-side) and a local `repo.url` must be
//! absolute (`airlock submit` makes it so).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use super::reply::{self, Body};
use crate::daemon::shared::Shared;
use crate::runner::new_task_id;
use crate::spec::TaskSpec;
use crate::store::NewTask;

/// Largest body accepted (the issue text itself is capped lower by the spec).
pub const MAX_BODY: usize = 1 << 20;
/// The spec's name in messages when the client gives none.
pub const DEFAULT_NAME: &str = "submission.toml";

/// Why a submission is rejected: the message names the spec and the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub field: Option<String>,
    pub message: String,
}

pub async fn submit(req: Request<Incoming>, ctx: Arc<Shared>) -> Response<Body> {
    if !ctx.intake_open() {
        return reply::unavailable("the daemon is shutting down; submit again after it restarts");
    }
    let name = spec_name(reply::query_param(req.uri().query(), "name"));
    let (trigger, author_trusted) = match trigger(req.uri().query(), ctx.config.author_trusted) {
        Ok(t) => t,
        Err(r) => return reply::error(StatusCode::BAD_REQUEST, &r.message, r.field.as_deref()),
    };
    let text = match read_body(req, ctx.config.api.body_timeout).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let checked_name = name.clone();
    let checked =
        tokio::task::spawn_blocking(move || validate(&text, &checked_name).map(|s| (s, text)))
            .await;
    let (spec, text) = match checked {
        Ok(Ok(v)) => v,
        Ok(Err(r)) => return reply::error(StatusCode::BAD_REQUEST, &r.message, r.field.as_deref()),
        Err(e) => return reply::internal(&e),
    };
    if let Some(full) = queue_full(&ctx).await {
        return full;
    }
    let task = NewTask {
        id: String::new(),
        title: spec.title.clone(),
        level: spec.level.to_string(),
        source: name,
        spec: text,
        trigger,
        author_trusted,
    };
    let id = match store(&ctx, task).await {
        Ok(id) => id,
        Err(e) => return reply::internal(&e),
    };
    ctx.events_stored();
    ctx.wake.notify_one();
    tracing::info!(task = %id, title = %spec.title, "task queued");
    reply::json(StatusCode::CREATED, &json!({ "id": id, "state": "queued" }))
}

/// `[api] max_queued`: a client cannot grow the queue without end (each queued task is a row
/// holding a spec of up to [`MAX_BODY`], and work the runners owe). Counted over the whole
/// store, so on a shared queue over every runner's tasks.
async fn queue_full(ctx: &Shared) -> Option<Response<Body>> {
    let max = ctx.config.api.max_queued;
    let counts = match ctx.db.counts().await {
        Ok(c) => c,
        Err(e) => return Some(reply::internal(&e)),
    };
    let queued = counts
        .iter()
        .find(|(state, _)| state == "queued")
        .map_or(0, |c| c.1);
    if queued < max as i64 {
        return None;
    }
    let msg = format!(
        "{queued} tasks are queued, the daemon's limit (airlock.toml [api] max_queued = {max}); \
         submit again once some have run"
    );
    Some(reply::error(
        StatusCode::SERVICE_UNAVAILABLE,
        &msg,
        Some("api.max_queued"),
    ))
}

/// Insert under a fresh id; ids are random, so a collision is retried with another.
async fn store(ctx: &Shared, mut task: NewTask) -> Result<String, crate::store::StoreError> {
    let mut tries = 0;
    loop {
        task.id = new_task_id();
        let (t, id) = (task.clone(), task.id.clone());
        match ctx.db.insert(t).await {
            Ok(()) => return Ok(id),
            Err(e) if e.is_duplicate() && tries < 3 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The body, whole, within `timeout` (`[api] body_timeout`: a client trickling it cannot hold
/// its connection) and [`MAX_BODY`].
async fn read_body(req: Request<Incoming>, timeout: Duration) -> Result<String, Response<Body>> {
    let read = Limited::new(req.into_body(), MAX_BODY).collect();
    let Ok(read) = tokio::time::timeout(timeout, read).await else {
        return Err(body_timed_out(timeout));
    };
    let bytes = match read {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let msg = format!("the task spec is larger than {MAX_BODY} bytes");
            return Err(reply::error(StatusCode::PAYLOAD_TOO_LARGE, &msg, None));
        }
        Err(e) => return Err(reply::error(StatusCode::BAD_REQUEST, &e.to_string(), None)),
    };
    String::from_utf8(bytes.to_vec())
        .map_err(|_| reply::error(StatusCode::BAD_REQUEST, "the task spec is not UTF-8", None))
}

/// The trigger of an API submission: always `api` (the listener decides it, never the request;
/// operator.toml `[sources] api` caps it), and whether its issue author is trusted:
/// `?author=untrusted` narrows the daemon's `author_trusted`, never widens it. A `?source=` is
/// refused, naming the accepted ways to start other sources.
pub fn trigger(query: Option<&str>, config_trusted: bool) -> Result<(String, bool), Rejected> {
    if let Some(source) = reply::query_param(query, "source") {
        return Err(Rejected {
            field: Some("source".into()),
            message: source_refused(source),
        });
    }
    let trusted = match reply::query_param(query, "author") {
        None | Some("trusted") => config_trusted,
        Some("untrusted") => false,
        Some(other) => {
            let message = format!("author `{other}` is unknown; accepted: trusted, untrusted");
            return Err(Rejected {
                field: Some("author".into()),
                message,
            });
        }
    };
    Ok((crate::policy::Source::Api.key().to_string(), trusted))
}

/// Why a client-declared source is refused, and the accepted ways to start each source.
pub fn source_refused(given: &str) -> String {
    let given: String = given.chars().take(64).filter(|c| !c.is_control()).collect();
    format!(
        "source `{given}` cannot be declared by a client: a task submitted to the API has source \
         `api` (operator.toml [sources] api caps it); `webhook:issue_label` and `webhook:comment` \
         tasks start only from a forge event signed for a [[trigger]] (POST /v1/hooks/github, \
         /v1/hooks/gitea, /v1/hooks/gitlab), and `schedule` tasks only from a [[schedule]] in \
         airlock.toml"
    )
}

/// A safe display name for the spec: the client's file name, or the default.
pub fn spec_name(given: Option<&str>) -> String {
    match given {
        Some(n)
            if (1..=100).contains(&n.len())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
        {
            n.into()
        }
        _ => DEFAULT_NAME.into(),
    }
}

/// The API's rules, then the spec's own validation.
pub fn validate(text: &str, name: &str) -> Result<TaskSpec, Rejected> {
    if let Ok(table) = toml::from_str::<toml::Table>(text) {
        api_rules(&table).map_err(|(field, m)| Rejected {
            message: format!("{name}: field `{field}`: {m}"),
            field: Some(field.into()),
        })?;
    }
    crate::spec::parse_submitted(text, Path::new(name)).map_err(|e| Rejected {
        field: e.field.clone(),
        message: e.to_string(),
    })
}

/// Pure: what an API submission may not contain.
pub fn api_rules(spec: &toml::Table) -> Result<(), (&'static str, String)> {
    let issue_file = spec.get("issue").and_then(|i| i.get("file"));
    if issue_file.is_some() {
        return Err(("issue.file", "is not accepted over the API (the daemon reads no files for clients); send `issue.text` — `airlock submit` does this".into()));
    }
    let url = spec
        .get("repo")
        .and_then(|r| r.get("url"))
        .and_then(|u| u.as_str());
    if let Some(url) = url {
        let local = url.strip_prefix("file://").unwrap_or(url);
        let is_local = !url.contains("://") || url.starts_with("file://");
        if is_local && !local.starts_with('/') {
            return Err((
                "repo.url",
                format!(
                    "`{url}` is relative; over the API a local repository path must be absolute"
                ),
            ));
        }
    }
    Ok(())
}

/// `408`: the body did not arrive within `[api] body_timeout`.
pub fn body_timed_out(timeout: Duration) -> Response<Body> {
    let msg = format!(
        "the request body did not arrive within {} (api.body_timeout)",
        humantime::format_duration(timeout)
    );
    reply::error(StatusCode::REQUEST_TIMEOUT, &msg, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Result<(), &'static str> {
        api_rules(&toml::from_str(text).unwrap()).map_err(|(f, _)| f)
    }

    #[test]
    fn issue_files_and_relative_repos_are_refused() {
        assert_eq!(rules("[issue]\nfile = \"issue.md\""), Err("issue.file"));
        assert_eq!(rules("[repo]\nurl = \"src.git\""), Err("repo.url"));
        assert_eq!(rules("[repo]\nurl = \"file://src.git\""), Err("repo.url"));
        assert_eq!(
            rules("[repo]\nurl = \"/srv/git/src.git\"\n[issue]\ntext = \"x\""),
            Ok(())
        );
        assert_eq!(rules("[repo]\nurl = \"https://example.org/x.git\""), Ok(()));
        assert_eq!(rules("[repo]\nurl = \"file:///srv/x.git\""), Ok(()));
    }

    #[test]
    fn spec_errors_name_the_spec_and_field() {
        let text = "title = \"t\"\nlevel = \"L9\"\n[repo]\nurl = \"https://example.org/x.git\"\nbase = \"main\"\n[issue]\ntext = \"x\"\n[agent]\nimage = \"img\"\ncommand = [\"x\"]\n";
        let r = validate(text, "task.toml").unwrap_err();
        assert_eq!(r.field.as_deref(), Some("level"));
        assert!(
            r.message.starts_with("task.toml: field `level`"),
            "{}",
            r.message
        );
        let r = validate("title = \"t\"\nbogus = 1\n", "task.toml").unwrap_err();
        assert_eq!(r.field.as_deref(), Some("bogus"));
        let r = validate("[issue]\nfile = \"/etc/shadow\"\n", "t.toml").unwrap_err();
        assert_eq!(r.field.as_deref(), Some("issue.file"));
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(spec_name(Some("task.toml")), "task.toml");
        assert_eq!(spec_name(Some("../etc/x")), DEFAULT_NAME);
        assert_eq!(spec_name(Some("a%20b")), DEFAULT_NAME);
        assert_eq!(spec_name(None), DEFAULT_NAME);
    }
}
