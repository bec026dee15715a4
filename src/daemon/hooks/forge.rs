//! Per-forge dispatch for the hook routes: which forges a route serves, the header naming the
//! delivery, and the payload parser. A new event kind goes into the forge's parser in
//! `crate::trigger`; a new forge is one more arm here.

use serde_json::Value;

use crate::trigger::{gitea, github, gitlab, Forge, Headers, Parsed};

/// The forge dialect of a request on `/v1/hooks/<route>`, or `None` for an unknown route.
pub fn dialect(route: &str, h: &(impl Headers + ?Sized)) -> Option<Forge> {
    match route {
        "github" => Some(Forge::Github),
        "gitea" => Some(gitea::dialect(h)),
        "gitlab" => Some(Forge::Gitlab),
        _ => None,
    }
}

/// Whether a `[[trigger]]` for `configured` is served by a request in `dialect`.
pub fn serves(configured: Forge, dialect: Forge) -> bool {
    configured.route() == dialect.route()
}

/// The delivery id header's name, for messages.
pub fn delivery_header(f: Forge) -> &'static str {
    match f {
        Forge::Github => "X-GitHub-Delivery",
        Forge::Gitea => "X-Gitea-Delivery",
        Forge::Forgejo => "X-Forgejo-Delivery",
        Forge::Gitlab => "X-Gitlab-Event-UUID",
    }
}

/// The delivery id the forge keeps across redeliveries.
pub fn delivery(f: Forge, h: &(impl Headers + ?Sized)) -> Option<String> {
    let d = match f {
        Forge::Github => github::delivery(h),
        Forge::Gitea | Forge::Forgejo => gitea::delivery(f, h),
        Forge::Gitlab => gitlab::delivery(h),
    }?;
    let ok = (1..=128).contains(&d.len())
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    ok.then(|| d.to_string())
}

/// The event in the payload.
pub fn parse(f: Forge, h: &(impl Headers + ?Sized), v: &Value) -> Result<Parsed, String> {
    match f {
        Forge::Github => github::parse(h, v),
        Forge::Gitea | Forge::Forgejo => gitea::parse(f, h, v),
        Forge::Gitlab => gitlab::parse(h, v),
    }
}
