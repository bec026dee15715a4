//! The forms a secret takes when something encodes it: as is, URL-encoded, and base64 (both
//! alphabets) at each of the three alignments it can have inside a longer encoded value, such as
//! the `user:token` of a Basic authorization header.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Secrets shorter than this are refused: their forms would mask ordinary text.
pub const MIN_SECRET_LEN: usize = 8;

/// Characters left as they are by URL encoding (RFC 3986 unreserved).
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Every form of `secret` to look for, longest first, without duplicates.
pub fn forms(secret: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut add = |f: String| {
        let encoded = url_encode(&f);
        for v in [f.clone(), encoded.clone(), encoded.to_ascii_lowercase_hex()] {
            if v.len() >= MIN_SECRET_LEN && !out.iter().any(|o| o == v.as_bytes()) {
                out.push(v.into_bytes());
            }
        }
    };
    add(secret.to_string());
    for shift in 0..3 {
        for engine in [&STANDARD, &URL_SAFE] {
            add(base64_core(engine, secret.as_bytes(), shift));
        }
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.len()));
    out
}

/// `s` URL-encoded (every byte but the unreserved ones as `%XX`).
pub fn url_encode(s: &str) -> String {
    utf8_percent_encode(s, ENCODED).to_string()
}

/// The base64 characters that depend on `secret` alone when it follows `shift` other bytes.
fn base64_core(engine: &impl Engine, secret: &[u8], shift: usize) -> String {
    let mut input = vec![0u8; shift];
    input.extend_from_slice(secret);
    let encoded = engine.encode(&input);
    let start = (8 * shift).div_ceil(6);
    let end = (8 * (shift + secret.len())) / 6;
    encoded.get(start..end).unwrap_or_default().to_string()
}

trait LowerHex {
    fn to_ascii_lowercase_hex(&self) -> String;
}

impl LowerHex for String {
    /// `%2F` → `%2f`: some encoders write lowercase hex digits.
    fn to_ascii_lowercase_hex(&self) -> String {
        let mut out = String::with_capacity(self.len());
        let mut rest = 0;
        for c in self.chars() {
            if c == '%' {
                rest = 2;
                out.push(c);
            } else if rest > 0 {
                rest -= 1;
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(hay: &str, forms: &[Vec<u8>]) -> bool {
        forms
            .iter()
            .any(|f| hay.as_bytes().windows(f.len()).any(|w| w == f.as_slice()))
    }

    #[test]
    fn base64_inside_longer_values_is_found_at_every_alignment() {
        let token = "ghs_16C7e42F292c6912E7710c838347Ae178B4a+/=";
        let f = forms(token);
        for prefix in ["", "x", "xy", "x-access-token:", "oauth2:", "ab:"] {
            for suffix in ["", "!", "??"] {
                let raw = format!("{prefix}{token}{suffix}");
                assert!(contains(&STANDARD.encode(&raw), &f), "{raw}");
                assert!(contains(&URL_SAFE.encode(&raw), &f), "{raw}");
                assert!(contains(&url_encode(&STANDARD.encode(&raw)), &f), "{raw}");
            }
        }
    }

    #[test]
    fn url_encoded_forms_in_both_cases() {
        let f = forms("tok+en/with=chars");
        assert!(contains("a=tok%2Ben%2Fwith%3Dchars&b", &f));
        assert!(contains("a=tok%2ben%2fwith%3dchars&b", &f));
        assert!(contains("tok+en/with=chars", &f));
    }

    #[test]
    fn ordinary_text_is_not_a_form() {
        let f = forms("ghs_abcdefghijklmnop");
        assert!(!contains("the quick brown fox jumps over the lazy dog", &f));
        assert!(f.windows(2).all(|w| w[0].len() >= w[1].len()));
    }
}
