//! Minting and revoking through whichever provider the remote names.

use std::time::SystemTime;

use super::config::{Provider, TokenConfig};
use super::error::MintError;
use super::token::Token;
use super::{github_app, provider_cmd};
use crate::secrets::Redactor;

/// What the token is for; a `command` provider gets these as `AIRLOCK_*` environment variables.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The task the token is for.
    pub task_id: &'a str,
    /// The task spec's `repo.url`.
    pub repo: &'a str,
    /// Where it pushes.
    pub push_url: &'a str,
    /// `refs/heads/agent/...`: the only ref the token needs (empty: no ref).
    pub refname: &'a str,
    /// What the token is for: `write` (push, PR, comments) or `read` (reading CI).
    pub access: Access,
}

/// The access a token is minted for (`AIRLOCK_TOKEN_ACCESS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Push, open the PR, comment.
    Write,
    /// Reading CI: check runs, statuses, job logs. A GitHub App token asks for read
    /// permissions only; a `command` provider is told, and should mint read-only.
    Read,
}

impl Access {
    /// The name a `command` provider is given.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Write => "write",
            Access::Read => "read",
        }
    }
}

impl Scope<'_> {
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AIRLOCK_TASK_ID", self.task_id.into()),
            ("AIRLOCK_REPO", self.repo.into()),
            ("AIRLOCK_PUSH_URL", self.push_url.into()),
            ("AIRLOCK_PUSH_REF", self.refname.into()),
            ("AIRLOCK_TOKEN_ACCESS", self.access.as_str().into()),
        ]
    }
}

/// How revocation went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// Revoked.
    Yes,
    /// The provider has no revoke step: the token expires by itself.
    LeftToExpire,
    /// The revoke step failed; the token lives until it expires.
    Failed(String),
}

/// Mint a token for `scope` with the configured provider; `now` is the clock its expiry and lifetime are checked against.
pub fn mint(cfg: &TokenConfig, scope: Scope, now: SystemTime) -> Result<Token, MintError> {
    match &cfg.provider {
        Provider::Command(p) => provider_cmd::mint(p, &scope.env(), now, cfg.max_ttl),
        Provider::GithubApp(app) => github_app::mint_for(app, now, cfg.max_ttl, scope.access),
    }
}

/// Revoke `token`; failures are reported, never fatal (the token expires anyway).
pub fn revoke(cfg: &TokenConfig, scope: Scope, token: &Token, redactor: &Redactor) -> Revoked {
    let result = match &cfg.provider {
        Provider::Command(p) => provider_cmd::revoke(p, &scope.env(), token, redactor),
        Provider::GithubApp(app) => github_app::revoke(app, token).map(|()| true),
    };
    match result {
        Ok(true) => Revoked::Yes,
        Ok(false) => Revoked::LeftToExpire,
        Err(e) => Revoked::Failed(redactor.redact_str(&e.to_string())),
    }
}
