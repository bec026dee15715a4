//! The GitHub App JWT: RS256 over `{"iat", "exp", "iss"}`, signed with the App's private key
//! (PKCS#1 `RSA PRIVATE KEY`, as GitHub issues it, or PKCS#8 `PRIVATE KEY`). Pure given the
//! key bytes and the clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use secrecy::zeroize::Zeroizing;
use secrecy::SecretString;

/// `iat` is backdated by this much against clock drift (GitHub's advice).
const BACKDATE: Duration = Duration::from_secs(60);
/// GitHub refuses JWTs that live longer than 10 minutes.
const LIFETIME: Duration = Duration::from_secs(9 * 60);

/// A parsed App private key.
pub struct AppKey(RsaKeyPair);

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppKey([REDACTED])")
    }
}

impl AppKey {
    /// Parse a PEM private key.
    pub fn from_pem(pem: &[u8]) -> Result<AppKey, String> {
        let text = std::str::from_utf8(pem).map_err(|_| "not a PEM text file".to_string())?;
        let (label, der) = pem_body(text)?;
        let key = match label {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            other => return Err(format!("a `{other}` PEM block is not an RSA private key")),
        };
        key.map(AppKey)
            .map_err(|e| format!("not a usable RSA private key: {e}"))
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER (to check a signature).
    pub fn public_der(&self) -> Vec<u8> {
        use ring::signature::KeyPair;
        self.0.public_key().as_ref().to_vec()
    }
}

/// The label and decoded body of the first PEM block.
fn pem_body(text: &str) -> Result<(&str, Zeroizing<Vec<u8>>), String> {
    let begin = text
        .find("-----BEGIN ")
        .ok_or("no -----BEGIN line: not a PEM file")?;
    let rest = &text[begin + 11..];
    let label_end = rest.find("-----").ok_or("malformed BEGIN line")?;
    let label = &rest[..label_end];
    let body = &rest[label_end + 5..];
    let end = body
        .find(&format!("-----END {label}-----"))
        .ok_or_else(|| format!("no -----END {label}----- line"))?;
    let b64: Zeroizing<String> =
        Zeroizing::new(body[..end].chars().filter(|c| !c.is_whitespace()).collect());
    let der = STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| format!("the PEM body is not base64: {e}"))?;
    Ok((label, Zeroizing::new(der)))
}

/// A JWT for App `app_id`, valid from a minute ago for nine minutes.
pub fn app_jwt(key: &AppKey, app_id: &str, now: SystemTime) -> Result<SecretString, String> {
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let iss = match app_id.parse::<u64>() {
        Ok(n) => serde_json::json!(n),
        Err(_) => serde_json::json!(app_id),
    };
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iat": secs(now - BACKDATE),
        "exp": secs(now + LIFETIME),
        "iss": iss,
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{claims}");
    let mut sig = vec![0u8; key.0.public().modulus_len()];
    key.0
        .sign(
            &RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .map_err(|_| "RS256 signing failed".to_string())?;
    Ok(SecretString::from(format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(sig)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
    use secrecy::ExposeSecret;

    /// A throwaway 2048-bit test key (PKCS#8), generated for these tests only.
    fn test_key() -> Option<Vec<u8>> {
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .output()
            .ok()?;
        out.status.success().then_some(out.stdout)
    }

    #[test]
    fn signs_a_verifiable_rs256_jwt() {
        let pem = test_key().expect("openssl is needed to generate a test key");
        let key = AppKey::from_pem(&pem).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let jwt = app_jwt(&key, "12345", now).unwrap();
        let parts: Vec<&str> = jwt.expose_secret().split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], 12345);
        assert_eq!(claims["iat"], 1_700_000_000 - 60);
        assert_eq!(claims["exp"], 1_700_000_000 + 540);
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_der())
            .verify(input.as_bytes(), &sig)
            .unwrap();
        assert_eq!(format!("{key:?}"), "AppKey([REDACTED])");
    }

    #[test]
    fn bad_pem_is_explained() {
        assert!(AppKey::from_pem(b"hello").unwrap_err().contains("BEGIN"));
        let e = AppKey::from_pem(
            b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        );
        assert!(e.unwrap_err().contains("not an RSA private key"));
        let e = AppKey::from_pem(
            b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        );
        assert!(e.unwrap_err().contains("not a usable"));
    }
}
