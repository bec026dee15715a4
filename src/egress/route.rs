//! Route allowlists: `METHOD /path-prefix`, matched against a request's method and path. Pure.

use std::fmt;

use serde::Serialize;

/// Methods a route may name. CONNECT and TRACE never.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
/// Longest request target accepted.
pub const MAX_TARGET: usize = 4096;

/// One allowed `METHOD /prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The HTTP method (upper case).
    pub method: String,
    /// The path prefix a request's path must start with (at a `/` boundary).
    pub prefix: String,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.prefix)
    }
}

impl Route {
    /// Parse `"POST /v1/messages"`.
    pub fn parse(text: &str) -> Result<Route, String> {
        let (method, prefix) = text
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("`{text}` is not `METHOD /path`, e.g. \"POST /v1/messages\""))?;
        if !METHODS.contains(&method) {
            return Err(format!(
                "method `{method}` is not accepted; use one of {}",
                METHODS.join(", ")
            ));
        }
        let prefix = prefix.trim();
        clean_path(prefix).map_err(|m| format!("`{prefix}`: {m}"))?;
        if prefix.contains('?') {
            return Err(format!(
                "`{prefix}`: a route is a path prefix, without a query"
            ));
        }
        Ok(Route {
            method: method.into(),
            prefix: prefix.trim_end_matches('/').to_string(),
        })
    }

    /// Whether `method` and `path` (no query) fall under this route: the path is the prefix or
    /// continues it after a `/`.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if method != self.method {
            return false;
        }
        if self.prefix.is_empty() {
            return true;
        }
        match path.strip_prefix(&self.prefix) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

/// Why a request target is refused before any route is tried, or `Ok` for a plain
/// origin-form path: starts with `/`, no dot segments, no empty segments, no backslashes, no
/// percent-encoded `.`, `/` or `\`, no control characters.
pub fn clean_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must start with `/`".into());
    }
    if path.len() > MAX_TARGET {
        return Err(format!("is longer than {MAX_TARGET} bytes"));
    }
    if path
        .chars()
        .any(|c| c.is_control() || c == '\\' || c == ' ')
    {
        return Err("holds control characters, spaces or backslashes".into());
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    let bad = segments
        .iter()
        .enumerate()
        .any(|(i, s)| *s == "." || *s == ".." || (s.is_empty() && i != last));
    if bad {
        return Err("holds empty, `.` or `..` segments".into());
    }
    let lower = path.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%00"]
        .iter()
        .any(|p| lower.contains(p))
    {
        return Err("holds percent-encoded dots, slashes or NULs".into());
    }
    Ok(())
}

/// The first route allowing `method path`, if any. `path` must already be clean.
pub fn allowed<'a>(routes: &'a [Route], method: &str, path: &str) -> Option<&'a Route> {
    routes.iter().find(|r| r.matches(method, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Route {
        Route::parse(s).unwrap()
    }

    #[test]
    fn prefix_matches_whole_segments_only() {
        let route = r("POST /v1/messages");
        assert!(route.matches("POST", "/v1/messages"));
        assert!(route.matches("POST", "/v1/messages/count_tokens"));
        assert!(!route.matches("POST", "/v1/messagesX"));
        assert!(!route.matches("GET", "/v1/messages"));
        assert!(!route.matches("POST", "/v1"));
    }

    #[test]
    fn bad_routes_are_refused() {
        for bad in [
            "CONNECT /",
            "TRACE /x",
            "POST v1",
            "POST",
            "POST /a/../b",
            "POST /a?b=1",
        ] {
            assert!(Route::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn traversal_and_encodings_are_not_clean() {
        for bad in [
            "/v1/../admin",
            "/v1/./messages",
            "/v1//messages",
            "/v1/%2e%2e/admin",
            "/v1%2Fmessages",
            "/v1\\messages",
            "v1/messages",
            "/v1/mess\u{7}ages",
        ] {
            assert!(clean_path(bad).is_err(), "{bad}");
        }
        assert!(clean_path("/v1/messages").is_ok());
        assert!(clean_path("/").is_ok());
    }
}
