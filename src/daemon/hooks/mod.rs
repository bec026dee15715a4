//! `POST /v1/hooks/{github,gitea,gitlab}`: forge webhooks that start tasks.
//!
//! No bearer token: each request is authenticated by its forge's own scheme over the raw body
//! (capped) before anything parses it; a request no `[[trigger]]` secret verifies is 401 and
//! stores nothing. Then: 200 `{"ignored": why}` for anything that starts no task (another
//! event, another label, a redelivery, an issue that already has a live task), or 202
//! `{"id": ...}` once the task and its delivery id are durably stored together. A closed pull
//! request of an `agent/<task>-<slug>` branch records the task merged or closed-unmerged
//! (200 `{"recorded", "task"}`), for `airlock stats`.

mod forge;
mod intake;
mod pr;

use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, Response, StatusCode};
use secrecy::ExposeSecret;
use serde_json::json;

use super::api::Body;
use super::config::triggers::TriggerRule;
use super::shared::Shared;
use crate::trigger::{verify, Forge, Headers, Kind, Parsed};

pub use intake::Accepted;

struct Map<'a>(&'a HeaderMap);

impl Headers for Map<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Answer one webhook request on `/v1/hooks/<route>`.
pub async fn handle(req: Request<Incoming>, ctx: Arc<Shared>, route: &str) -> Response<Body> {
    use super::api::reply;
    let Some(dialect) = forge::dialect(route, &Map(req.headers())) else {
        return reply::not_found(&format!("hook route /v1/hooks/{route}"));
    };
    if !ctx.intake_open() {
        return reply::unavailable("the daemon is shutting down; the forge will redeliver");
    }
    let headers = req.headers().clone();
    let body = match read_body(req, ctx.config.api.body_timeout).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let h = Map(&headers);
    let signed: Vec<&TriggerRule> = ctx
        .config
        .triggers
        .iter()
        .filter(|t| forge::serves(t.forge, dialect))
        .filter(|t| verify::verify(dialect, t.secret.expose_secret().as_bytes(), &h, &body))
        .collect();
    if signed.is_empty() {
        tracing::warn!(route, "webhook refused: no [[trigger]] secret verifies it");
        let msg = format!(
            "the {} header is missing or matches no [[trigger]] secret for this route",
            verify::header_display(dialect)
        );
        return reply::error(StatusCode::UNAUTHORIZED, &msg, None);
    }
    // A closed pull request carries no issue, so it is no trigger `Event`: it is recognised
    // first, and records the task's PR outcome for the statistics.
    if let Some(r) = pr::closed(&ctx, dialect, &h, &body, &signed).await {
        return r;
    }
    match event(dialect, &h, &body, &signed) {
        // One arm per kind of event: a kind that starts no task (a closed pull request for
        // statistics, say) gets its own handler here, and the compiler asks for it.
        Ok((rule, e)) => match e.kind {
            Kind::Labeled { .. } | Kind::Comment { .. } => {
                intake::accept(&ctx, dialect, &h, rule, &e).await
            }
        },
        Err(Stop::Ignored(why)) => ignored(&why),
        Err(Stop::Bad(m)) => reply::error(StatusCode::BAD_REQUEST, &m, None),
    }
}

enum Stop {
    Ignored(String),
    Bad(String),
}

/// The parsed event and the trigger (among those whose secret verified) for its repository.
fn event<'a>(
    dialect: Forge,
    h: &Map,
    body: &[u8],
    signed: &[&'a TriggerRule],
) -> Result<(&'a TriggerRule, crate::trigger::Event), Stop> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Stop::Bad(format!("the payload is not JSON: {e}")))?;
    let e = match forge::parse(dialect, h, &v).map_err(Stop::Bad)? {
        Parsed::Event(e) => *e,
        Parsed::Ignored(why) => return Err(Stop::Ignored(why)),
    };
    let rule = signed
        .iter()
        .find(|t| t.repository.eq_ignore_ascii_case(&e.repository))
        .ok_or_else(|| {
            Stop::Ignored(format!(
                "repository `{}` has no [[trigger]] with this secret",
                crate::trigger::text::title(&e.repository)
            ))
        })?;
    Ok((rule, e))
}

/// 200 `{"ignored": why}`.
pub fn ignored(why: &str) -> Response<Body> {
    let why = crate::trigger::text::title(why);
    tracing::info!(why, "webhook ignored");
    super::api::reply::json(StatusCode::OK, &json!({ "ignored": why }))
}

/// The raw body within `[api] body_timeout` (before the signature can be checked, the sender
/// is anyone: a trickled body must not hold the connection) and the size limit.
async fn read_body(
    req: Request<Incoming>,
    timeout: std::time::Duration,
) -> Result<Vec<u8>, Response<Body>> {
    use super::api::reply;
    let read = Limited::new(req.into_body(), verify::MAX_BODY).collect();
    let Ok(read) = tokio::time::timeout(timeout, read).await else {
        return Err(super::api::body_timed_out(timeout));
    };
    match read {
        Ok(b) => Ok(b.to_bytes().to_vec()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let msg = format!("the payload is larger than {} bytes", verify::MAX_BODY);
            Err(reply::error(StatusCode::PAYLOAD_TOO_LARGE, &msg, None))
        }
        Err(e) => Err(reply::error(StatusCode::BAD_REQUEST, &e.to_string(), None)),
    }
}
