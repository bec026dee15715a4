//! The `github_app` provider: App JWT → installation token restricted to one repository with
//! `contents: write` and `pull_requests: write` → used → `DELETE /installation/token`.

use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use serde_json::json;

use super::config::GithubApp;
use super::error::MintError;
use super::http::{ApiRequest, ApiResponse};
use super::jwt::{app_jwt, AppKey};
use super::mint::Access;
use super::token::Token;

/// The GitHub REST API version asked for (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";
const ACCEPT: &str = "application/vnd.github+json";
/// The permissions asked for, and all an accepted token may carry (GitHub adds metadata: read).
const ASKED: &[(&str, &str)] = &[("contents", "write"), ("pull_requests", "write")];
/// Reading CI: check runs, Actions job logs, commit statuses; nothing written.
const ASKED_READ: &[(&str, &str)] = &[
    ("checks", "read"),
    ("actions", "read"),
    ("statuses", "read"),
];
const IMPLIED: (&str, &str) = ("metadata", "read");

/// Mint an installation token for the one repository.
pub fn mint(app: &GithubApp, now: SystemTime, max_ttl: Duration) -> Result<Token, MintError> {
    mint_for(app, now, max_ttl, Access::Write)
}

/// [`mint`] for `access`: `Read` asks for `checks`, `actions` and `statuses: read` only.
pub fn mint_for(
    app: &GithubApp,
    now: SystemTime,
    max_ttl: Duration,
    access: Access,
) -> Result<Token, MintError> {
    let asked = asked(access);
    let key = load_key(app)?;
    let jwt = app_jwt(&key, &app.app_id, now).map_err(|message| MintError::Key {
        path: app.private_key_file.clone(),
        message,
    })?;
    // The JWT is a credential too (it mints tokens for the whole installation).
    let _mask = crate::secrets::mask(&jwt);
    let req = mint_request_for(app, &jwt, asked);
    let resp = req.send().map_err(|message| MintError::Api {
        op: "POST",
        url: req.url.clone(),
        message,
    })?;
    let token = parse_mint_response(app, &req.url, &resp, now, max_ttl)?;
    if let Err(e) = check_grant_for(app, &resp, asked) {
        let _ = revoke(app, &token);
        return Err(e);
    }
    Ok(token)
}

fn load_key(app: &GithubApp) -> Result<AppKey, MintError> {
    let err = |message: String| MintError::Key {
        path: app.private_key_file.clone(),
        message,
    };
    let pem = secrecy::zeroize::Zeroizing::new(
        std::fs::read(&app.private_key_file).map_err(|e| err(format!("cannot read: {e}")))?,
    );
    AppKey::from_pem(&pem).map_err(err)
}

/// `POST /app/installations/{id}/access_tokens`, restricted to the repository.
pub fn mint_request(app: &GithubApp, jwt: &SecretString) -> ApiRequest {
    mint_request_for(app, jwt, ASKED)
}

fn asked(access: Access) -> &'static [(&'static str, &'static str)] {
    match access {
        Access::Write => ASKED,
        Access::Read => ASKED_READ,
    }
}

fn mint_request_for(app: &GithubApp, jwt: &SecretString, asked: &[(&str, &str)]) -> ApiRequest {
    let url = format!(
        "{}/app/installations/{}/access_tokens",
        app.api_url, app.installation_id
    );
    let permissions: serde_json::Map<String, serde_json::Value> =
        asked.iter().map(|(k, v)| ((*k).into(), json!(v))).collect();
    github(ApiRequest::new("POST", url), jwt).json(json!({
        "repositories": [app.repository],
        "permissions": permissions,
    }))
}

/// `DELETE /installation/token`, authenticated by the token itself.
pub fn revoke_request(api_url: &str, token: &SecretString) -> ApiRequest {
    github(
        ApiRequest::new("DELETE", format!("{api_url}/installation/token")),
        token,
    )
}

/// Revoke `token` (204 expected).
pub fn revoke(app: &GithubApp, token: &Token) -> Result<(), MintError> {
    let req = revoke_request(&app.api_url, token.secret());
    let resp = req.send().map_err(|message| MintError::Api {
        op: "DELETE",
        url: req.url.clone(),
        message,
    })?;
    match resp.status {
        204 => Ok(()),
        s => Err(MintError::Api {
            op: "DELETE",
            url: req.url.clone(),
            message: format!("HTTP {s}: {}", message(&resp)),
        }),
    }
}

fn github(req: ApiRequest, bearer: &SecretString) -> ApiRequest {
    req.header("Accept", ACCEPT)
        .header("X-GitHub-Api-Version", API_VERSION)
        .auth("Authorization", "Bearer", bearer)
}

fn parse_mint_response(
    app: &GithubApp,
    url: &str,
    resp: &ApiResponse,
    now: SystemTime,
    max_ttl: Duration,
) -> Result<Token, MintError> {
    let api = |message: String| MintError::Api {
        op: "POST",
        url: url.into(),
        message,
    };
    if resp.status != 201 {
        return Err(api(format!(
            "HTTP {} (installation {}): {}",
            resp.status,
            app.installation_id,
            message(resp)
        )));
    }
    let v = resp.json();
    let (Some(token), Some(expires_at)) = (v["token"].as_str(), v["expires_at"].as_str()) else {
        return Err(api("the response has no token and expires_at".into()));
    };
    Token::new(
        SecretString::from(token.to_string()),
        expires_at,
        "github_app",
        now,
        max_ttl,
    )
}

/// The token is no broader than asked: these permissions, this one repository.
#[cfg(test)]
fn check_grant(app: &GithubApp, resp: &ApiResponse) -> Result<(), MintError> {
    check_grant_for(app, resp, ASKED)
}

fn check_grant_for(
    app: &GithubApp,
    resp: &ApiResponse,
    asked: &[(&str, &str)],
) -> Result<(), MintError> {
    let v = resp.json();
    let refused = |message: String| MintError::Refused {
        provider: "github_app".into(),
        message,
    };
    for (k, level) in v["permissions"].as_object().into_iter().flatten() {
        let ok = asked
            .iter()
            .chain([&IMPLIED])
            .any(|(name, l)| name == k && level.as_str() == Some(l));
        if !ok {
            return Err(refused(format!(
                "it carries permission {k}: {level}, more than asked"
            )));
        }
    }
    if let Some(repos) = v["repositories"].as_array() {
        let names: Vec<&str> = repos.iter().filter_map(|r| r["name"].as_str()).collect();
        if names != [app.repository.as_str()] {
            return Err(refused(format!(
                "it is scoped to {names:?}, not only `{}`",
                app.repository
            )));
        }
    }
    Ok(())
}

/// GitHub's `message` field, or an excerpt of the body.
fn message(resp: &ApiResponse) -> String {
    resp.json()["message"]
        .as_str()
        .map(crate::untrusted::neutralise)
        .unwrap_or_else(|| resp.excerpt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> GithubApp {
        GithubApp {
            app_id: "42".into(),
            installation_id: 7,
            private_key_file: "/nonexistent.pem".into(),
            api_url: "https://api.github.com".into(),
            repository: "tasks-app".into(),
        }
    }

    #[test]
    fn a_ci_read_token_asks_for_read_permissions_only() {
        let req = mint_request_for(&app(), &SecretString::from("j.w.t"), asked(Access::Read));
        let v = req.redacted();
        assert_eq!(
            v["body"]["permissions"],
            json!({ "checks": "read", "actions": "read", "statuses": "read" })
        );
        let wider = ApiResponse {
            location: None,
            status: 201,
            body: br#"{"permissions": {"checks": "read", "contents": "write"}}"#.to_vec(),
        };
        assert!(check_grant_for(&app(), &wider, asked(Access::Read)).is_err());
    }

    #[test]
    fn mint_request_has_githubs_shape() {
        let req = mint_request(&app(), &SecretString::from("jwt.jwt.jwt"));
        let v = req.redacted();
        assert_eq!(v["method"], "POST");
        assert_eq!(
            v["url"],
            "https://api.github.com/app/installations/7/access_tokens"
        );
        assert_eq!(v["headers"]["Authorization"], "Bearer [REDACTED]");
        assert_eq!(v["headers"]["X-GitHub-Api-Version"], API_VERSION);
        assert_eq!(v["body"]["repositories"], json!(["tasks-app"]));
        assert_eq!(
            v["body"]["permissions"],
            json!({"contents": "write", "pull_requests": "write"})
        );
        let r = revoke_request("https://api.github.com", &SecretString::from("ghs_x"));
        assert_eq!(
            r.redacted()["url"],
            "https://api.github.com/installation/token"
        );
    }

    #[test]
    fn broader_grants_are_refused() {
        let resp = |body: serde_json::Value| ApiResponse {
            location: None,
            status: 201,
            body: body.to_string().into_bytes(),
        };
        let ok = resp(
            json!({"permissions": {"contents": "write", "pull_requests": "write", "metadata": "read"}, "repositories": [{"name": "tasks-app"}]}),
        );
        assert!(check_grant(&app(), &ok).is_ok());
        let admin = resp(json!({"permissions": {"contents": "write", "administration": "write"}}));
        assert!(check_grant(&app(), &admin)
            .unwrap_err()
            .to_string()
            .contains("administration"));
        let two = resp(
            json!({"permissions": {}, "repositories": [{"name": "tasks-app"}, {"name": "other"}]}),
        );
        assert!(check_grant(&app(), &two)
            .unwrap_err()
            .to_string()
            .contains("other"));
    }

    #[test]
    fn a_missing_key_is_named() {
        let e = mint(&app(), SystemTime::now(), Duration::from_secs(3600)).unwrap_err();
        assert!(e.to_string().contains("/nonexistent.pem"), "{e}");
    }
}
