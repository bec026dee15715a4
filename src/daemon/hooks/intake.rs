//! A verified, parsed forge event → the task it starts: plan (pure), fill the template,
//! validate the spec, store it with its delivery id in one transaction.

use std::sync::Arc;

use hyper::{Response, StatusCode};
use serde_json::json;

use super::super::api::{reply, Body};
use super::super::config::triggers::{fill, TriggerRule};
use super::super::shared::Shared;
use super::{forge, ignored, Map};
use crate::policy::Source;
use crate::runner::new_task_id;
use crate::store::triggers::{fields, Key, Triggered};
use crate::store::NewTask;
use crate::trigger::plan::{plan, Caps, Plan, Rule};
use crate::trigger::{Event, Forge};

/// A task the event started (for status comments).
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The task's id.
    pub id: String,
    /// The plan it was queued from.
    pub plan: Plan,
}

/// The caps operator.toml sets for forge-started tasks.
pub fn caps(ctx: &Shared) -> Caps {
    let op = &ctx.policies.operator;
    Caps {
        label_max: op.sources.get(Source::IssueLabel.key()).copied(),
        comment_max: op.sources.get(Source::Comment.key()).copied(),
        untrusted_max: op.untrusted_author_max,
    }
}

pub async fn accept(
    ctx: &Arc<Shared>,
    dialect: Forge,
    h: &Map<'_>,
    rule: &TriggerRule,
    event: &Event,
) -> Response<Body> {
    let Some(delivery) = forge::delivery(dialect, h) else {
        let m = format!(
            "the {} header is missing or malformed",
            forge::delivery_header(dialect)
        );
        return reply::error(StatusCode::BAD_REQUEST, &m, None);
    };
    let r = Rule {
        forge: rule.forge,
        repository: &rule.repository,
        label: rule.label.as_deref(),
        command: rule.command.as_deref(),
        trusted: &rule.trusted,
    };
    let p = match plan(&r, event, rule.template.level, caps(ctx)) {
        Ok(p) => p,
        Err(why) => return ignored(&why),
    };
    let task = match task_of(rule, &p) {
        Ok(t) => t,
        Err(m) => return reply::error(StatusCode::BAD_REQUEST, &m, None),
    };
    let key = Key::Delivery {
        delivery: format!("{}:{delivery}", dialect.route()),
        issue_key: p.issue_key.clone(),
    };
    let detail = json!({
        "forge": dialect.as_str(), "delivery": delivery, "issue": p.issue_key,
        "requester": p.requester, "author_trusted": p.trusted, "level": p.level.as_str(),
        "rules": p.notes,
    });
    let target = super::super::status::target(ctx, rule, p.issue_number);
    store(ctx, task, key, fields(p.source.key(), detail), p, target).await
}

/// The task spec: the template with the event's title, text and URL, at the planned level.
fn task_of(rule: &TriggerRule, p: &Plan) -> Result<NewTask, String> {
    let t = &rule.template;
    let table = fill(
        &t.table,
        &p.title,
        &p.issue_text,
        p.issue_url.as_deref(),
        Some(p.level),
    );
    let text = toml::to_string(&table).map_err(|e| e.to_string())?;
    crate::spec::parse_str(&text, &t.path)
        .map_err(|e| format!("the event does not make a valid task: {e}"))?;
    Ok(NewTask {
        id: String::new(),
        title: p.title.clone(),
        level: p.level.to_string(),
        source: t.path.display().to_string(),
        spec: text,
        trigger: p.source.key().into(),
        author_trusted: p.trusted,
    })
}

async fn store(
    ctx: &Arc<Shared>,
    mut task: NewTask,
    key: Key,
    fields: serde_json::Value,
    p: Plan,
    target: Option<super::super::status::Target>,
) -> Response<Body> {
    task.id = new_task_id();
    let id = task.id.clone();
    let r = ctx.db.insert_triggered(task, key, fields).await;
    match r {
        Ok(Triggered::Inserted) => {
            ctx.events_stored();
            ctx.wake.notify_one();
            tracing::info!(task = %id, source = p.source.key(), level = %p.level, issue = %p.issue_key, "task queued from a webhook");
            super::super::status::post(ctx, target, &id, super::super::status::Moment::Accepted);
            reply::json(StatusCode::ACCEPTED, &json!({ "id": id }))
        }
        Ok(Triggered::Redelivered { task_id }) => with_id(
            &format!("this delivery already started task {task_id}"),
            &task_id,
        ),
        Ok(Triggered::IssueBusy { task_id }) => with_id(
            &format!("the issue already has task {task_id} queued or running"),
            &task_id,
        ),
        Ok(Triggered::SlotTaken { task_id }) => with_id("slot taken", &task_id),
        Err(e) => reply::internal(&e),
    }
}

fn with_id(why: &str, id: &str) -> Response<Body> {
    tracing::info!(why, task = id, "webhook ignored");
    reply::json(StatusCode::OK, &json!({ "ignored": why, "id": id }))
}
