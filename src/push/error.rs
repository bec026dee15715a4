//! What can go wrong while minting, pushing and proposing. Every message names the operation and
//! its target, and none holds a secret: text from git, a provider or a forge is redacted first.

use std::path::PathBuf;

use crate::vocab::Reason;

/// A token that could not be had.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// The provider command could not be started.
    #[error("token provider `{program}`: cannot run it: {source}")]
    Spawn {
        /// The command.
        program: String,
        /// Why it could not be run.
        source: std::io::Error,
    },
    /// The provider ran past its timeout and was killed.
    #[error("token provider `{program}` did not finish within {secs}s; it was killed")]
    Timeout {
        /// The command.
        program: String,
        /// The timeout it ran past.
        secs: u64,
    },
    /// The provider exited with an error.
    #[error("token provider `{program}` failed ({status}): {stderr}")]
    Failed {
        /// The command.
        program: String,
        /// Its exit status.
        status: String,
        /// Its stderr (redacted, capped).
        stderr: String,
    },
    /// The provider's stdout is not the expected JSON.
    #[error("token provider `{program}`: stdout is not {{\"token\": ..., \"expires_at\": ...}}: {detail}")]
    Output {
        /// The command.
        program: String,
        /// What is wrong with its output.
        detail: String,
    },
    /// The minted token fails airlock's checks.
    #[error("token from {provider} refused: {message}")]
    Refused {
        /// The provider.
        provider: String,
        /// Why (expired, wrong repository, too long a lifetime, ...).
        message: String,
    },
    /// The GitHub App's private key cannot be used.
    #[error("GitHub App private key {}: {message}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A forge API call of the provider failed.
    #[error("{op} {url}: {message}")]
    Api {
        /// What was being done.
        op: &'static str,
        /// The URL called.
        url: String,
        /// What the forge said (redacted, capped).
        message: String,
    },
}

/// A push or proposal that did not happen. [`PushError::reason`] is the summary's code.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No token could be minted.
    #[error("minting the push token failed: {0}")]
    Mint(#[from] MintError),
    /// Containers of the task still exist: no token while any does.
    #[error("the task's containers still exist ({count}); no token is minted while any does")]
    ContainersRemain {
        /// How many.
        count: usize,
    },
    /// The engine could not say whether the task's containers are gone.
    #[error("cannot check that the task's containers are gone, so no token is minted: {message}")]
    Engine {
        /// The engine's error.
        message: String,
    },
    /// The branch is outside `agent/` or protected.
    #[error("airlock will not push `{branch}`: {message}")]
    ForbiddenRef {
        /// The branch.
        branch: String,
        /// Which rule forbids it.
        message: String,
    },
    /// The remote rejected the token (HTTP 401).
    #[error("{url} rejected the token (HTTP 401): it is expired, revoked or unknown. git said: {detail}")]
    Unauthorized {
        /// The push URL.
        url: String,
        /// git's message (redacted).
        detail: String,
    },
    /// The remote refused the token write access (HTTP 403).
    #[error("{url} refused the token (HTTP 403): it is not allowed to write this repository. git said: {detail}")]
    Forbidden {
        /// The push URL.
        url: String,
        /// git's message (redacted).
        detail: String,
    },
    /// The remote refused the ref (a hook, a protection rule).
    #[error("{url} rejected {refname}: {message}")]
    Rejected {
        /// The push URL.
        url: String,
        /// The ref.
        refname: String,
        /// The remote's message.
        message: String,
    },
    /// The remote has the ref at another commit.
    #[error("{url} already has {refname} at {found}, not this task's commit {commit}; airlock never forces")]
    Conflict {
        /// The push URL.
        url: String,
        /// The ref.
        refname: String,
        /// The commit the remote has.
        found: String,
        /// The commit this task would push.
        commit: String,
    },
    /// git failed otherwise.
    #[error("git {op} {url} failed: {message}")]
    Git {
        /// What git was doing.
        op: &'static str,
        /// The push URL.
        url: String,
        /// git's message (redacted).
        message: String,
    },
    /// The draft PR could not be opened.
    #[error("draft PR on {url}: {message}")]
    Pr {
        /// The forge's API URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// The task was cancelled before git pushed anything: not pushed.
    #[error("not pushed: the task was cancelled before the push")]
    Cancelled,
    /// The shared queue did not record the push (this runner's lease is lost): not pushed.
    #[error("not pushed: the queue did not record the push: {message}")]
    LeaseLost {
        /// The queue's error.
        message: String,
    },
    /// A push record or `pr.json` could not be written.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
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
            PushError::Cancelled => Reason::Cancelled,
        }
    }
}
