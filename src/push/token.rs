//! A minted token: a secret with an expiry, checked to be short-lived and safe to put in a header.

use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::error::MintError;
use crate::secrets::MIN_SECRET_LEN;

/// A token that expires sooner than this is refused: the push could outlive it.
pub const MIN_REMAINING: Duration = Duration::from_secs(60);
/// Tolerated clock skew between airlock and the token's issuer.
const SKEW: Duration = Duration::from_secs(60);
const MAX_TOKEN_LEN: usize = 4096;

/// A push token. Its value is reachable only through [`Token::secret`].
pub struct Token {
    secret: SecretString,
    /// When the forge stops accepting it.
    pub expires_at: SystemTime,
    /// `command` or `github_app`.
    pub provider: &'static str,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("provider", &self.provider)
            .field("expires_at", &rfc3339(self.expires_at))
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

impl Token {
    /// Check the value and the lifetime: `now + MIN_REMAINING <= expires_at <= now + max_ttl`.
    pub fn new(
        secret: SecretString,
        expires_at: &str,
        provider: &'static str,
        now: SystemTime,
        max_ttl: Duration,
    ) -> Result<Token, MintError> {
        let refused = |message: String| MintError::Refused {
            provider: provider.into(),
            message,
        };
        check_value(secret.expose_secret()).map_err(refused)?;
        let expires_at = humantime::parse_rfc3339_weak(expires_at.trim())
            .map_err(|e| refused(format!("expires_at `{expires_at}` is not RFC 3339: {e}")))?;
        if expires_at < now + MIN_REMAINING {
            return Err(refused(format!(
                "it expires at {} (now {}): already expired or about to",
                rfc3339(expires_at),
                rfc3339(now)
            )));
        }
        if expires_at > now + max_ttl + SKEW {
            return Err(refused(format!(
                "it lives until {}, longer than max_ttl ({}); only short-lived tokens are used",
                rfc3339(expires_at),
                crate::units::format_duration(max_ttl)
            )));
        }
        Ok(Token {
            secret,
            expires_at,
            provider,
        })
    }

    /// The token's value.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }
}

/// Printable ASCII a header can carry: no whitespace, quotes, backslashes or `%`.
fn check_value(v: &str) -> Result<(), String> {
    if !(MIN_SECRET_LEN..=MAX_TOKEN_LEN).contains(&v.len()) {
        return Err(format!(
            "its length is outside {MIN_SECRET_LEN}..={MAX_TOKEN_LEN} bytes"
        ));
    }
    let ok = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=:".contains(&b));
    if !ok {
        return Err("it holds characters outside [A-Za-z0-9-._~+/=:]".into());
    }
    Ok(())
}

/// What a provider prints. Unknown fields are ignored (wrapped tools print more).
#[derive(Deserialize)]
struct Output {
    token: SecretString,
    expires_at: String,
}

/// Parse a provider's stdout. Error details never quote the input (it may hold the token).
pub fn parse_output(
    stdout: &[u8],
    program: &str,
    now: SystemTime,
    max_ttl: Duration,
) -> Result<Token, MintError> {
    let out: Output = serde_json::from_slice(stdout).map_err(|e| MintError::Output {
        program: program.into(),
        detail: format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ),
    })?;
    Token::new(out.token, &out.expires_at, "command", now, max_ttl)
}

/// `t` as RFC 3339 (seconds, UTC).
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn accepts_a_short_lived_token() {
        let now = at("2026-01-01T00:00:00Z");
        let out = br#"{"token": "ghs_abcdefgh12345678", "expires_at": "2026-01-01T01:00:00Z", "extra": 1}"#;
        let t = parse_output(out, "mint", now, HOUR).unwrap();
        assert_eq!(t.secret().expose_secret(), "ghs_abcdefgh12345678");
        let dbg = format!("{t:?}");
        assert!(
            !dbg.contains("abcdefgh") && dbg.contains("REDACTED"),
            "{dbg}"
        );
    }

    #[test]
    fn refuses_expired_long_lived_and_unsafe_tokens() {
        let now = at("2026-01-01T00:00:00Z");
        let cases = [
            (
                r#"{"token": "ghs_abcdefgh1234", "expires_at": "2025-12-31T23:00:00Z"}"#,
                "expired",
            ),
            (
                r#"{"token": "ghs_abcdefgh1234", "expires_at": "2026-01-01T00:00:30Z"}"#,
                "about to",
            ),
            (
                r#"{"token": "ghs_abcdefgh1234", "expires_at": "2026-01-02T00:00:00Z"}"#,
                "max_ttl",
            ),
            (
                r#"{"token": "ghs_abc\r\nX-Evil: 1", "expires_at": "2026-01-01T00:30:00Z"}"#,
                "characters",
            ),
            (
                r#"{"token": "short", "expires_at": "2026-01-01T00:30:00Z"}"#,
                "length",
            ),
            (
                r#"{"token": "ghs_abcdefgh1234", "expires_at": "tomorrow"}"#,
                "RFC 3339",
            ),
        ];
        for (out, why) in cases {
            let e = parse_output(out.as_bytes(), "mint", now, HOUR)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{out}: {e}");
            assert!(!e.contains("abcdefgh"), "{e}");
        }
    }

    #[test]
    fn bad_json_is_reported_without_quoting_it() {
        let now = at("2026-01-01T00:00:00Z");
        for out in [
            &b"ghs_secretsecret"[..],
            br#"{"token": 12345678901}"#,
            br#"{"tok": "ghs_secretsecret"}"#,
        ] {
            let e = parse_output(out, "mint", now, HOUR)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("stdout is not") && !e.contains("secretsecret"),
                "{e}"
            );
        }
    }
}
