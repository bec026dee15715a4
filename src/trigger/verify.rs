//! Each forge's request authentication, checked over the raw body before anything parses it.
//! HMAC verification is `ring::hmac::verify` (constant time); GitLab's shared token is compared
//! with `subtle` (constant time in the bytes compared).

use ring::hmac;
use subtle::ConstantTimeEq;

use super::{Forge, Headers};

/// Largest webhook body accepted (GitHub caps payloads at 25 MB, but an issue event with its
/// text capped by the forge at 65536 characters is far below this).
pub const MAX_BODY: usize = 1 << 20;

/// The header carrying the signature or token for `forge`.
pub fn header_name(forge: Forge) -> &'static str {
    match forge {
        Forge::Github => "x-hub-signature-256",
        Forge::Gitea => "x-gitea-signature",
        Forge::Forgejo => "x-forgejo-signature",
        Forge::Gitlab => "x-gitlab-token",
    }
}

/// The same header as the forge documents it, for messages.
pub fn header_display(forge: Forge) -> &'static str {
    match forge {
        Forge::Github => "X-Hub-Signature-256",
        Forge::Gitea => "X-Gitea-Signature",
        Forge::Forgejo => "X-Forgejo-Signature",
        Forge::Gitlab => "X-Gitlab-Token",
    }
}

/// Whether the request is authentic for a trigger of `forge` holding `secret`.
pub fn verify(forge: Forge, secret: &[u8], headers: &(impl Headers + ?Sized), body: &[u8]) -> bool {
    let Some(given) = headers.get(header_name(forge)) else {
        return false;
    };
    match forge {
        Forge::Github => given
            .strip_prefix("sha256=")
            .is_some_and(|hex| hmac_ok(secret, body, hex)),
        Forge::Gitea | Forge::Forgejo => hmac_ok(secret, body, given),
        Forge::Gitlab => !secret.is_empty() && bool::from(given.as_bytes().ct_eq(secret)),
    }
}

fn hmac_ok(secret: &[u8], body: &[u8], hex: &str) -> bool {
    let Some(tag) = decode_hex(hex.trim()) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, body, &tag).is_ok()
}

/// HMAC-SHA256 of `body` as lower-case hex (what the forges send; used by tests and tools).
pub fn sign_hex(secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::sign(&key, body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";

    #[test]
    fn githubs_documented_example_verifies() {
        // From GitHub's "Validating webhook deliveries" documentation.
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign_hex(SECRET, BODY), &sig[7..]);
        let h: &[(&str, &str)] = &[("X-Hub-Signature-256", sig)];
        assert!(verify(Forge::Github, SECRET, h, BODY));
        assert!(!verify(Forge::Github, SECRET, h, b"Hello, World?"));
        assert!(!verify(Forge::Github, b"other", h, BODY));
        let bare: &[(&str, &str)] = &[("X-Hub-Signature-256", &sig[7..])];
        assert!(
            !verify(Forge::Github, SECRET, bare, BODY),
            "the sha256= prefix is required"
        );
        let none: &[(&str, &str)] = &[];
        assert!(!verify(Forge::Github, SECRET, none, BODY));
    }

    #[test]
    fn gitea_and_forgejo_sign_with_bare_hex() {
        let hex = sign_hex(SECRET, BODY);
        let gitea: &[(&str, &str)] = &[("X-Gitea-Signature", &hex)];
        let forgejo: &[(&str, &str)] = &[("X-Forgejo-Signature", &hex)];
        assert!(verify(Forge::Gitea, SECRET, gitea, BODY));
        assert!(verify(Forge::Forgejo, SECRET, forgejo, BODY));
        assert!(
            !verify(Forge::Gitea, SECRET, forgejo, BODY),
            "each forge's own header"
        );
        let bad: &[(&str, &str)] = &[("X-Gitea-Signature", "zz")];
        assert!(!verify(Forge::Gitea, SECRET, bad, BODY));
    }

    #[test]
    fn gitlab_compares_the_token() {
        let ok: &[(&str, &str)] = &[("X-Gitlab-Token", "It's a Secret to Everybody")];
        let no: &[(&str, &str)] = &[("X-Gitlab-Token", "It's a Secret to Everybodz")];
        assert!(verify(Forge::Gitlab, SECRET, ok, BODY));
        assert!(!verify(Forge::Gitlab, SECRET, no, BODY));
        assert!(!verify(
            Forge::Gitlab,
            b"",
            &[("X-Gitlab-Token", "")][..],
            BODY
        ));
    }
}
