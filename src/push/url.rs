//! URLs a token is sent to: https, or plain http only to this machine's loopback (tests, a local
//! forge behind a TLS proxy). Never credentials, a query or a fragment in them.

/// Validate a git push URL (`https://host/owner/repo.git`).
pub fn check_push_url(url: &str) -> Result<String, String> {
    let (_, rest) = split(url)?;
    if !rest.contains('/') || rest.ends_with('/') && rest.matches('/').count() == 1 {
        return Err(format!("`{url}` names no repository path"));
    }
    Ok(url.to_string())
}

/// Validate a forge API base URL; the trailing `/` is dropped.
pub fn check_api_url(url: &str) -> Result<String, String> {
    split(url)?;
    Ok(url.trim_end_matches('/').to_string())
}

/// `(host, rest after the scheme)`, after every check.
fn split(url: &str) -> Result<(String, &str), String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{url}` holds whitespace or control characters"));
    }
    let (https, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(r), _) => (true, r),
        (None, Some(r)) => (false, r),
        _ => {
            return Err(format!(
                "`{url}` must start with https:// (a token is never sent over another scheme)"
            ))
        }
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "`{url}` holds credentials; the token is minted per task, never written in a URL"
        ));
    }
    if url.contains('?') || url.contains('#') {
        return Err(format!("`{url}` must have no query or fragment"));
    }
    let host = host_of(authority);
    if host.is_empty() {
        return Err(format!("`{url}` names no host"));
    }
    if !https && !is_loopback(&host) {
        return Err(format!(
            "`{url}`: plain http is accepted only for 127.0.0.1, localhost or [::1]; use https://"
        ));
    }
    Ok((host, rest))
}

fn host_of(authority: &str) -> String {
    if let Some(v6) = authority.strip_prefix('[') {
        return format!("[{}]", v6.split(']').next().unwrap_or_default());
    }
    authority
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host == "[::1]"
        || host.starts_with("127.") && host.split('.').count() == 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_https_and_loopback_http() {
        assert!(check_push_url("https://github.com/acme/app.git").is_ok());
        assert!(check_push_url("http://127.0.0.1:8080/app.git").is_ok());
        assert!(check_push_url("http://[::1]:9/x/app.git").is_ok());
        assert_eq!(
            check_api_url("https://api.github.com/").unwrap(),
            "https://api.github.com"
        );
    }

    #[test]
    fn refuses_what_could_leak_a_token() {
        for bad in [
            "http://example.com/app.git",
            "http://127.0.0.1.evil.com/app.git",
            "https://user:pw@github.com/acme/app.git",
            "https://x-access-token@github.com/a/b.git",
            "ssh://git@github.com/a/b.git",
            "file:///srv/git/app.git",
            "ext::sh -c touch% /tmp/pwned",
            "https://github.com/a/b.git?x=1",
            "https://github.com/a/b.git#f",
            "https:///a.git",
            "https://github.com",
            "https://git hub.com/a.git",
        ] {
            assert!(check_push_url(bad).is_err(), "{bad}");
        }
    }
}
