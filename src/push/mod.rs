//! push: tokens, push, PR proposal (L3 and above, green tasks only).
//!
//! This is the one moment airlock holds a credential. The runner calls [`flow::run`] after every
//! container of the task is gone; it mints a short-lived token scoped to one repository and the
//! task's `agent/` branch, hands it to host git through environment-only config, opens a draft
//! PR, and revokes the token. The remote comes from the operator's `push.toml` ([`PushConfig`]),
//! never from the repository. Pure parts (config, plan, outcome, forge requests, JWT, token
//! checks, the push record) are plain functions, unit-tested without a network.

pub mod ci;
pub mod config;
mod config_raw;
pub mod error;
pub mod flow;
pub mod forge;
pub mod git_push;
pub mod github_app;
pub mod http;
pub mod jwt;
pub mod mint;
pub mod outcome;
pub mod plan;
mod provider_cmd;
pub mod record;
pub mod token;
mod url;

pub use url::check_api_url;

pub use config::{ConfigError, Forge, PrConfig, Provider, PushConfig, Remote};
pub use config_raw::parse;
pub use error::{MintError, PushError};
pub use flow::{Job, Report};
pub use plan::{decide, Skip};
