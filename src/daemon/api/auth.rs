//! Bearer-token check for the TCP listener: constant-time comparison, no early exit on the
//! first differing byte or on a length mismatch.

use secrecy::{ExposeSecret, SecretString};

/// Whether the `Authorization` header value carries `token`.
pub fn authorized(header: Option<&[u8]>, token: &SecretString) -> bool {
    let Some(value) = header else { return false };
    let Some(given) = value.strip_prefix(b"Bearer ") else {
        return false;
    };
    constant_time_eq(given, token.expose_secret().as_bytes())
}

/// Compare in time that depends only on the lengths, not on where the bytes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= u64::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_and_unequal() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn bearer_headers() {
        let t = SecretString::from("s3cret-token-0123456");
        assert!(authorized(Some(b"Bearer s3cret-token-0123456"), &t));
        assert!(!authorized(Some(b"Bearer s3cret-token-0123457"), &t));
        assert!(!authorized(Some(b"bearer s3cret-token-0123456"), &t));
        assert!(!authorized(Some(b"s3cret-token-0123456"), &t));
        assert!(!authorized(None, &t));
    }
}
