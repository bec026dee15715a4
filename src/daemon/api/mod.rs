//! The daemon's API: JSON over HTTP/1.1, on the unix socket and optionally on TCP (bearer
//! token required there).
//!
//! | route | success | errors |
//! |---|---|---|
//! | `GET /v1/health` | 200 | |
//! | `GET /metrics` | 200 Prometheus text | |
//! | `GET /v1/stats` | 200 `{"kinds": [...]}` per-kind outcomes | |
//! | `POST /v1/tasks[?name=FILE]` (TOML body) | 201 `{"id","state"}` | 400 (names the field), 413, 503 |
//! | `GET /v1/tasks[?state=S&limit=N]` | 200 `{"tasks": [...]}` | 400 |
//! | `GET /v1/tasks/{id}` | 200 (with `summary`) | 404 |
//! | `POST /v1/tasks/{id}/cancel` | 200 (was queued) / 202 (running) | 404, 409, 503 |
//! | `GET /v1/tasks/{id}/events[?follow=1]` | 200 NDJSON, chunked | 404, 503 (follower caps) |
//! | `GET /v1/tasks/{id}/bundle` | 200 `application/gzip` | 404, 409 |
//!
//! | `POST /v1/hooks/{github,gitea,gitlab}` (forge JSON) | 202 `{"id"}` / 200 `{"ignored"}` | 401 (signature), 400, 413, 503 |
//!
//! Every listener is bounded before auth (`[api]`; see `listen`): connections, header and body
//! timeouts (`408` for a late body), followers.
//!
//! Over TCP every route but the hooks answers 401 without `Authorization: Bearer <token>`; the
//! hooks are authenticated by the forge's signature instead (see `daemon::hooks`).

mod auth;
mod follow;
pub mod followers;
pub mod listen;
pub(crate) mod reply;
mod stats;
mod submit;
mod tasks;

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};

pub use auth::constant_time_eq;
pub use reply::Body;
pub use submit::{api_rules, body_timed_out, source_refused, spec_name, MAX_BODY};

use super::shared::Shared;

/// Answer one request. `tcp`: it came over TCP and needs the token.
pub async fn handle(
    req: Request<Incoming>,
    ctx: Arc<Shared>,
    tcp: bool,
) -> Result<Response<Body>, Infallible> {
    let hook = req.uri().path().starts_with("/v1/hooks/");
    if tcp && !hook && !token_ok(&req, &ctx) {
        let mut r = reply::error(StatusCode::UNAUTHORIZED, "a bearer token is required", None);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return Ok(r);
    }
    Ok(route(req, ctx).await)
}

fn token_ok(req: &Request<Incoming>, ctx: &Shared) -> bool {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    ctx.token
        .as_ref()
        .is_some_and(|t| auth::authorized(given, t))
}

async fn route(req: Request<Incoming>, ctx: Arc<Shared>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let q = query.as_deref();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    match (&method, segs.as_slice()) {
        (&Method::GET, ["v1", "health"]) => tasks::health(ctx).await,
        (&Method::GET, ["metrics"]) => tasks::metrics(ctx).await,
        (&Method::GET, ["v1", "stats"]) => stats::get(ctx).await,
        (&Method::POST, ["v1", "tasks"]) => submit::submit(req, ctx).await,
        (&Method::GET, ["v1", "tasks"]) => tasks::list(ctx, q).await,
        (&Method::GET, ["v1", "tasks", id]) => tasks::get(ctx, id).await,
        (&Method::POST, ["v1", "tasks", id, "cancel"]) => tasks::cancel(ctx, id).await,
        (&Method::GET, ["v1", "tasks", id, "events"]) => {
            let follow = reply::query_param(q, "follow").is_some_and(|v| v != "0" && v != "false");
            follow::events(ctx, id, follow).await
        }
        (&Method::GET, ["v1", "tasks", id, "bundle"]) => tasks::bundle(ctx, id).await,
        (&Method::POST, ["v1", "hooks", forge]) => super::hooks::handle(req, ctx, forge).await,
        (_, segs) if known(segs) => reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{method} is not allowed on {path}"),
            None,
        ),
        _ => reply::not_found(&format!("route {path}")),
    }
}

fn known(segs: &[&str]) -> bool {
    matches!(
        segs,
        ["v1", "health"]
            | ["metrics"]
            | ["v1", "stats"]
            | ["v1", "tasks"]
            | ["v1", "tasks", _]
            | ["v1", "tasks", _, "cancel" | "events" | "bundle"]
            | ["v1", "hooks", _]
    )
}
