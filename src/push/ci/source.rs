//! The forge's CI read with a token minted for it: through the remote's provider, with
//! `read` access (a GitHub App token carries `checks`, `actions` and `statuses: read` only; a
//! `command` provider gets `AIRLOCK_TOKEN_ACCESS=read`), minted when first needed, minted
//! again shortly before it expires, and revoked when the wait is over. It exists only on the
//! host while no container of the task runs, and every token is added to the task's held
//! secrets (artifacts are scanned for it, logs masked).

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::config::CiConfig;
use super::fetch::{CiSource, ForgeCi};
use super::status::CiJob;
use crate::push::config::Remote;
use crate::push::mint::{self, Access, Revoked, Scope};
use crate::push::token::{rfc3339, Token};
use crate::secrets::Held;

/// A token this close to its expiry is replaced before the next read.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// One wait's reads.
pub struct MintedCi<'a> {
    /// The remote whose forge is read.
    pub remote: &'a Remote,
    /// Its `[remote.ci]`.
    pub cfg: &'a CiConfig,
    /// The task (for the token's scope).
    pub task_id: &'a str,
    /// The task spec's `repo.url`.
    pub repo: &'a str,
    /// The task's secrets: the minted read token joins them.
    pub held: &'a mut Held,
    token: Option<Token>,
    /// `(kind, fields)` to emit as events (no secret in them).
    pub events: Vec<(String, Value)>,
}

impl<'a> MintedCi<'a> {
    /// The reads of one wait; a read token is minted when first needed and held in `held`.
    pub fn new(
        remote: &'a Remote,
        cfg: &'a CiConfig,
        task_id: &'a str,
        repo: &'a str,
        held: &'a mut Held,
    ) -> MintedCi<'a> {
        MintedCi {
            remote,
            cfg,
            task_id,
            repo,
            held,
            token: None,
            events: vec![],
        }
    }

    fn scope(&self) -> Scope<'a> {
        Scope {
            task_id: self.task_id,
            repo: self.repo,
            push_url: &self.remote.push_url,
            refname: "",
            access: Access::Read,
        }
    }

    fn token(&mut self) -> Result<&Token, String> {
        let fresh = self.token.as_ref().is_some_and(|t| {
            t.expires_at
                .duration_since(SystemTime::now())
                .is_ok_and(|left| left > RENEW_BEFORE)
        });
        if !fresh {
            self.revoke();
            let t = mint::mint(&self.remote.token, self.scope(), SystemTime::now())
                .map_err(|e| format!("mint a CI-read token: {e}"))?;
            self.held.add(t.secret());
            self.events.push((
                "token_minted".into(),
                json!({ "provider": t.provider, "expires_at": rfc3339(t.expires_at), "scope": { "access": "read", "api_url": self.cfg.api_url, "project": self.cfg.project } }),
            ));
            self.token = Some(t);
        }
        #[allow(clippy::expect_used, reason = "set just above when it was None")]
        Ok(self.token.as_ref().expect("minted above"))
    }

    /// Revoke the current token, if any (called at the end of the wait, and before a renewal).
    pub fn revoke(&mut self) {
        let Some(t) = self.token.take() else {
            return;
        };
        let ev = match mint::revoke(&self.remote.token, self.scope(), &t, &self.held.redactor) {
            Revoked::Yes => (
                "token_revoked",
                json!({ "provider": t.provider, "access": "read" }),
            ),
            Revoked::LeftToExpire => (
                "token_left_to_expire",
                json!({ "expires_at": rfc3339(t.expires_at), "access": "read" }),
            ),
            Revoked::Failed(e) => (
                "token_revoke_failed",
                json!({ "error": e, "access": "read" }),
            ),
        };
        self.events.push((ev.0.into(), ev.1));
    }

    fn with_forge<T>(
        &mut self,
        f: impl FnOnce(&mut ForgeCi) -> Result<T, String>,
    ) -> Result<T, String> {
        let cfg = self.cfg;
        let token = self.token()?.secret().clone();
        let redactor = self.held.redactor.clone();
        let mut forge = ForgeCi { cfg, token: &token };
        f(&mut forge).map_err(|e| redactor.redact_str(&e))
    }
}

impl CiSource for MintedCi<'_> {
    fn jobs(&mut self, sha: &str) -> Result<Vec<CiJob>, String> {
        self.with_forge(|f| f.jobs(sha))
    }

    fn log(&mut self, job: &CiJob) -> Result<Option<Vec<u8>>, String> {
        self.with_forge(|f| f.log(job))
    }
}

impl Drop for MintedCi<'_> {
    fn drop(&mut self) {
        self.revoke();
    }
}
