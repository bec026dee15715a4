//! `operator.toml` `[prepare]`: what a repository may cost the host before any container runs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::files::Ctx;
use super::PolicyError;
use crate::units::{parse_bytes, parse_duration};

/// Host-side limits on preparing a checkout, and on the caches prepare keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrepareLimits {
    /// Bytes of the host-owned mirror of one repository.
    pub mirror_bytes: u64,
    /// Bytes of the files of the base commit (what is extracted).
    pub checkout_bytes: u64,
    /// Entries of the base commit's tree.
    pub checkout_files: u64,
    /// The whole prepare (clone or fetch, extraction).
    #[serde(with = "secs")]
    pub git_timeout: Duration,
    /// Cached mirrors and trees unused this long are evicted.
    #[serde(with = "secs")]
    pub cache_max_age: Duration,
    /// Past this many bytes of cache, the least recently used entries go first.
    pub cache_bytes: u64,
}

impl Default for PrepareLimits {
    fn default() -> Self {
        PrepareLimits {
            mirror_bytes: 2 << 30,
            checkout_bytes: 1 << 30,
            checkout_files: 200_000,
            git_timeout: Duration::from_secs(600),
            cache_max_age: Duration::from_secs(14 * 86400),
            cache_bytes: 20 << 30,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrepare {
    mirror_bytes: String,
    checkout_bytes: String,
    checkout_files: i64,
    git_timeout: String,
    cache_max_age: String,
    cache_bytes: String,
}

pub(super) fn prepare_limits(
    c: &Ctx,
    raw: Option<RawPrepare>,
) -> Result<PrepareLimits, PolicyError> {
    let Some(r) = raw else {
        return Ok(PrepareLimits::default());
    };
    let bytes = |f: &str, v: &str| parse_bytes(v).map_err(|m| c.err(&format!("prepare.{f}"), m));
    let dur = |f: &str, v: &str| parse_duration(v).map_err(|m| c.err(&format!("prepare.{f}"), m));
    if r.checkout_files < 1 {
        return Err(c.err("prepare.checkout_files", "must be at least 1"));
    }
    Ok(PrepareLimits {
        mirror_bytes: bytes("mirror_bytes", &r.mirror_bytes)?,
        checkout_bytes: bytes("checkout_bytes", &r.checkout_bytes)?,
        checkout_files: r.checkout_files as u64,
        git_timeout: dur("git_timeout", &r.git_timeout)?,
        cache_max_age: dur("cache_max_age", &r.cache_max_age)?,
        cache_bytes: bytes("cache_bytes", &r.cache_bytes)?,
    })
}

mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::units::format_duration(*d))
    }
}
