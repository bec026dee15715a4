//! Forge API requests as data: built by pure functions, written as they are (secrets masked)
//! for `--dry-run`, or sent with a blocking client that follows no redirects.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};

use crate::secrets::REDACTED;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read.
const MAX_BODY: u64 = 1 << 20;

/// A header value, either plain or `<scheme> <secret>`.
pub enum Header {
    /// Sent as is.
    Plain(String),
    /// Sent as `<scheme> <secret>`, the secret never logged.
    Secret {
        /// `Bearer`, `token`, ...
        scheme: &'static str,
        /// The secret.
        secret: SecretString,
    },
}

/// One HTTP request to a forge.
pub struct ApiRequest {
    /// `GET`, `POST`, ...
    pub method: &'static str,
    /// The URL (https, or plain http to loopback only).
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(&'static str, Header)>,
    /// A JSON body.
    pub body: Option<Value>,
}

impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.redacted())
    }
}

/// A response: status and (capped) body.
#[derive(Debug)]
pub struct ApiResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body (capped).
    pub body: Vec<u8>,
    /// The `Location` header of a redirect (redirects are never followed here).
    pub location: Option<String>,
}

impl ApiResponse {
    /// The body as JSON; `Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A short, neutralised excerpt of the body for an error message.
    pub fn excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        crate::untrusted::neutralise(&text.chars().take(300).collect::<String>())
    }
}

impl ApiRequest {
    /// A `method` request to `url` with no headers or body.
    pub fn new(method: &'static str, url: String) -> Self {
        ApiRequest {
            method,
            url,
            headers: vec![(
                "User-Agent",
                Header::Plain(concat!("airlock/", env!("CARGO_PKG_VERSION")).into()),
            )],
            body: None,
        }
    }

    /// Add a plain header.
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, Header::Plain(value.into())));
        self
    }

    /// `name: <scheme> <secret>` (e.g. `Authorization: Bearer …`).
    pub fn auth(mut self, name: &'static str, scheme: &'static str, secret: &SecretString) -> Self {
        let secret = SecretString::from(secret.expose_secret().to_string());
        self.headers.push((name, Header::Secret { scheme, secret }));
        self
    }

    /// Set the JSON body.
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self.header("Content-Type", "application/json")
    }

    /// The request exactly as it would be sent, every secret header value masked.
    pub fn redacted(&self) -> Value {
        let mut headers = Map::new();
        for (k, v) in &self.headers {
            let text = match v {
                Header::Plain(p) => p.clone(),
                Header::Secret { scheme, .. } => format!("{scheme} {REDACTED}").trim().to_string(),
            };
            headers.insert((*k).into(), json!(text));
        }
        json!({ "method": self.method, "url": self.url, "headers": headers, "body": self.body })
    }

    /// Send it. Errors are transport failures; any HTTP status is a response.
    pub fn send(&self) -> Result<ApiResponse, String> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(TIMEOUT));
        // Plain http is only ever loopback (see `url`): never through a proxy from the env.
        if self.url.starts_with("http://") {
            config = config.proxy(None);
        }
        let config = config.build();
        let agent: ureq::Agent = config.into();
        let mut req = ureq::http::Request::builder()
            .method(self.method)
            .uri(&self.url);
        for (k, v) in &self.headers {
            req = match v {
                Header::Plain(p) => req.header(*k, p.as_str()),
                Header::Secret { scheme, secret } => {
                    let value = format!("{scheme} {}", secret.expose_secret());
                    req.header(*k, value.trim())
                }
            };
        }
        let body = self
            .body
            .as_ref()
            .map(|b| b.to_string().into_bytes())
            .unwrap_or_default();
        let req = req
            .body(body)
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let mut resp = agent.run(req).map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| format!("reading the response: {e}"))?;
        Ok(ApiResponse {
            status,
            body,
            location,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_form_hides_secret_headers_only() {
        let req = ApiRequest::new("POST", "https://api.example/x".into())
            .header("Accept", "application/json")
            .auth(
                "Authorization",
                "Bearer",
                &SecretString::from("ghs_topsecret123"),
            )
            .json(json!({ "a": 1 }));
        let v = req.redacted();
        assert_eq!(v["headers"]["Authorization"], "Bearer [REDACTED]");
        assert_eq!(v["headers"]["Accept"], "application/json");
        assert_eq!(v["body"]["a"], 1);
        assert!(!format!("{req:?}").contains("topsecret"));
    }
}
