//! Repository URL normalisation: a task's `repo.url` (a local path or a remote URL) as one
//! [`Location`] whose [`Location::key`] the operator's `[[repos]]` patterns are matched against.
//! A leaf: `spec` validates with it, `policy` admits with it, `workspace` clones by it.

use std::path::{Path, PathBuf};

/// A repository location after normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An absolute, lexically clean host path.
    Local(PathBuf),
    /// `scheme://host[:port]/path`: lower-case scheme and host, no user, no dot segments.
    Remote {
        /// The lower-case scheme (`https`, `ssh`, ...).
        scheme: String,
        /// `scheme://host[:port]/path`, what `[[repos]]` patterns match.
        key: String,
    },
}

impl Location {
    /// What `[[repos]]` patterns are matched against.
    pub fn key(&self) -> String {
        match self {
            Location::Local(p) => p.display().to_string(),
            Location::Remote { key, .. } => key.clone(),
        }
    }
}

/// Normalise a repository URL or path (as the spec validated it: local paths are absolute).
pub fn locate(url: &str) -> Result<Location, String> {
    if url.chars().any(|c| c.is_control() || c == '\\') {
        return Err("contains control characters or backslashes".into());
    }
    match url.split_once("://") {
        None => local(url),
        Some(("file", rest)) => local(rest),
        Some(_) => remote(url),
    }
}

fn local(path: &str) -> Result<Location, String> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err("a local repository path must be absolute".into());
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return Err("a local repository path may not contain `.` or `..` segments".into());
    }
    let clean: PathBuf = p.components().collect();
    Ok(Location::Local(clean))
}

fn remote(text: &str) -> Result<Location, String> {
    let (_, after) = text.split_once("://").unwrap_or(("", text));
    let (authority, path_part) = after.split_once('/').unwrap_or((after, ""));
    if authority.is_empty() {
        return Err("names no host".into());
    }
    let lower = path_part.to_ascii_lowercase();
    if path_part
        .split('/')
        .any(|s| s == "." || s == ".." || s.is_empty())
        || lower.contains("%2e")
        || lower.contains("%2f")
        || lower.contains("%5c")
    {
        return Err(
            "the path may not contain `.`/`..` or empty segments, nor encoded dots or slashes"
                .into(),
        );
    }
    let u = url::Url::parse(text).map_err(|e| format!("is not a valid URL: {e}"))?;
    if u.password().is_some() {
        return Err("credentials in the URL are not accepted".into());
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err("a query or fragment is not accepted".into());
    }
    let Some(host) = u.host_str().filter(|h| !h.is_empty()) else {
        return Err("names no host".into());
    };
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    let scheme = u.scheme().to_ascii_lowercase();
    let key = format!("{scheme}://{}{port}{}", host.to_ascii_lowercase(), u.path());
    Ok(Location::Remote { scheme, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(u: &str) -> Result<String, String> {
        locate(u).map(|l| l.key())
    }

    #[test]
    fn remote_urls_are_normalised() {
        assert_eq!(
            key("https://Git.Example.COM/acme/app.git").unwrap(),
            "https://git.example.com/acme/app.git"
        );
        assert_eq!(
            key("ssh://git@host.example:2222/acme/app.git").unwrap(),
            "ssh://host.example:2222/acme/app.git"
        );
        assert_eq!(
            key("https://h.example:443/a/b.git").unwrap(),
            "https://h.example/a/b.git"
        );
    }

    #[test]
    fn dot_segments_and_tricks_are_refused() {
        for u in [
            "https://h/acme/../evil.git",
            "https://h/acme/./x.git",
            "https://h/acme/%2e%2e/evil.git",
            "https://h/acme/%2E./evil.git",
            "https://h/acme%2f..%2fevil.git",
            "https://h/acme//evil.git",
            "https://u:pw@h/acme/x.git",
            "https://h/acme/x.git?x=1",
            "https://h/acme/x.git#f",
            "https:///acme/x.git",
            "https://h/a\\..\\b",
            "/srv/git/../../var/lib/airlock/cache",
            "/srv/git/./x",
            "file:///srv/git/../x",
            "relative/path",
        ] {
            assert!(locate(u).is_err(), "{u} should be refused");
        }
    }
}
