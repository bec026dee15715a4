//! What can go wrong while minting, pushing and proposing. Every message names the operation and
//! its target, and none holds a secret: text from git, a provider or a forge is redacted first.

use std::path::PathBuf;

use crate::vocab::Reason;

/// A token that could not be had.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("token provider `{program}`: cannot run it: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("token provider `{program}` did not finish within {secs}s; it was killed")]
    Timeout { program: String, secs: u64 },
    #[error("token provider `{program}` failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("token provider `{program}`: stdout is not {{\"token\": ..., \"expires_at\": ...}}: {detail}")]
    Output { program: String, detail: String },
    #[error("token from {provider} refused: {message}")]
    Refused { provider: String, message: String },
    #[error("GitHub App private key {}: {message}", path.display())]
    Key { path: PathBuf, message: String },
    #[error("{op} {url}: {message}")]
    Api {
        op: &'static str,
        url: String,
        message: String,
    },
}

/// A push or proposal that did not happen. [`PushError::reason`] is the summary's code.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("minting the push token failed: {0}")]
    Mint(#[from] MintError),
    #[error("the task's containers still exist ({count}); no token is minted while any does")]
    ContainersRemain { count: usize },
    #[error("cannot check that the task's containers are gone, so no token is minted: {message}")]
    Engine { message: String },
    #[error("airlock will not push `{branch}`: {message}")]
    ForbiddenRef { branch: String, message: String },
    #[error("{url} rejected the token (HTTP 401): it is expired, revoked or unknown. git said: {detail}")]
    Unauthorized { url: String, detail: String },
    #[error("{url} refused the token (HTTP 403): it is not allowed to write this repository. git said: {detail}")]
    Forbidden { url: String, detail: String },
    #[error("{url} rejected {refname}: {message}")]
    Rejected {
        url: String,
        refname: String,
        message: String,
    },
    #[error("{url} already has {refname} at {found}, not this task's commit {commit}; airlock never forces")]
    Conflict {
        url: String,
        refname: String,
        found: String,
        commit: String,
    },
    #[error("git {op} {url} failed: {message}")]
    Git {
        op: &'static str,
        url: String,
        message: String,
    },
    #[error("draft PR on {url}: {message}")]
    Pr { url: String, message: String },
    /// The shared queue did not record the push (this runner's lease is lost): not pushed.
    #[error("not pushed: the queue did not record the push: {message}")]
    LeaseLost { message: String },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl PushError {
    /// The summary's `reason` for a task that ends `error` because of this.
    pub fn reason(&self) -> Reason {
        match self {
            PushError::Mint(_) => Reason::TokenMintFailed,
            PushError::ContainersRemain { .. } => Reason::ContainersRemain,
            PushError::Engine { .. } => Reason::EngineError,
            PushError::ForbiddenRef { .. } => Reason::ForbiddenRef,
            PushError::Unauthorized { .. } => Reason::PushUnauthorized,
            PushError::Forbidden { .. } => Reason::PushForbidden,
            PushError::Rejected { .. } => Reason::PushRejected,
            PushError::Conflict { .. } => Reason::PushConflict,
            PushError::Git { .. } | PushError::Io { .. } => Reason::PushFailed,
            PushError::Pr { .. } => Reason::PrFailed,
            PushError::LeaseLost { .. } => Reason::LeaseLost,
        }
    }
}
