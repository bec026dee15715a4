//! Masking secrets in bytes: whole buffers, and streams whose writes may split a secret.

use secrecy::zeroize::Zeroize;

use super::forms::forms;

/// What a masked secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// The forms of one or more secrets, indexed by first byte.
#[derive(Clone, Default)]
pub struct Redactor {
    patterns: Vec<Vec<u8>>,
    /// For each byte value, the patterns starting with it (longest first).
    by_first: Vec<Vec<usize>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} patterns)", self.patterns.len())
    }
}

enum At {
    /// A whole pattern of this length starts here.
    Match(usize),
    /// The rest of the input is the start of a pattern: wait for more.
    Partial,
    None,
}

impl Redactor {
    /// A redactor that masks nothing yet.
    pub fn new() -> Self {
        Redactor::default()
    }

    /// Mask `secret` and its encoded forms from now on.
    pub fn add(&mut self, secret: &str) {
        for f in forms(secret) {
            if !self.patterns.contains(&f) {
                self.patterns.push(f);
            }
        }
        self.patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        self.by_first = vec![Vec::new(); 256];
        for (i, p) in self.patterns.iter().enumerate() {
            self.by_first[p[0] as usize].push(i);
        }
    }

    /// Whether no secret was added.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `bytes` holds any form of any secret.
    pub fn contains(&self, bytes: &[u8]) -> bool {
        !self.is_empty()
            && (0..bytes.len()).any(|i| matches!(self.at(bytes, i, true), At::Match(_)))
    }

    /// `bytes` with every form masked.
    pub fn redact(&self, bytes: &[u8]) -> Vec<u8> {
        let mut s = self.stream();
        let mut out = s.push(bytes);
        out.extend(s.finish());
        out
    }

    /// `text` with every form of every secret masked.
    pub fn redact_str(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.redact(text.as_bytes())).into_owned()
    }

    /// A streaming redactor: feed it chunks split anywhere.
    pub fn stream(&self) -> StreamRedactor<'_> {
        StreamRedactor {
            redactor: self,
            pending: Vec::new(),
        }
    }

    /// Whether a pattern starts at `i`. With `eof`, a partial match is no match.
    fn at(&self, bytes: &[u8], i: usize, eof: bool) -> At {
        let Some(candidates) = self.by_first.get(bytes[i] as usize) else {
            return At::None;
        };
        let rest = &bytes[i..];
        // Longest first: a longer pattern that may still match wins over a shorter one that does.
        for &p in candidates {
            let pat = &self.patterns[p];
            if rest.starts_with(pat) {
                return At::Match(pat.len());
            }
            if !eof && rest.len() < pat.len() && pat.starts_with(rest) {
                return At::Partial;
            }
        }
        At::None
    }
}

impl Drop for Redactor {
    fn drop(&mut self) {
        for p in &mut self.patterns {
            p.zeroize();
        }
    }
}

/// Holds back the bytes that might be the start of a secret until the next chunk decides.
pub struct StreamRedactor<'a> {
    redactor: &'a Redactor,
    pending: Vec<u8>,
}

impl StreamRedactor<'_> {
    /// Masked bytes that are safe to write now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        self.drain(false)
    }

    /// Everything still held back.
    pub fn finish(mut self) -> Vec<u8> {
        self.drain(true)
    }

    fn drain(&mut self, eof: bool) -> Vec<u8> {
        let bytes = std::mem::take(&mut self.pending);
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match self.redactor.at(&bytes, i, eof) {
                At::Match(len) => {
                    out.extend_from_slice(REDACTED.as_bytes());
                    i += len;
                }
                At::Partial => {
                    self.pending = bytes[i..].to_vec();
                    break;
                }
                At::None => {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
        }
        out
    }
}

impl Drop for StreamRedactor<'_> {
    fn drop(&mut self) {
        self.pending.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    const TOKEN: &str = "ghs_Zx9Qm2Lr8Tt4Vv6Ww0Yy1Aa3Bb5Cc7Dd";

    fn redactor() -> Redactor {
        let mut r = Redactor::new();
        r.add(TOKEN);
        r
    }

    #[test]
    fn masks_every_form() {
        let r = redactor();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("x:{TOKEN}"));
        let text = format!("a {TOKEN} b Authorization: Basic {basic} c");
        let out = r.redact_str(&text);
        assert!(!out.contains(TOKEN) && !out.contains(&basic[4..]), "{out}");
        assert!(
            out.starts_with("a [REDACTED] b Authorization: Basic"),
            "{out}"
        );
        assert!(r.contains(text.as_bytes()));
        assert!(!r.contains(b"nothing secret here"));
    }

    #[test]
    fn stream_split_anywhere_equals_whole() {
        let r = redactor();
        let text = format!("line one {TOKEN}\nline {TOKEN}{TOKEN} ghs_Zx9 end ghs_");
        let whole = r.redact(text.as_bytes());
        assert!(!String::from_utf8_lossy(&whole).contains("Zx9Qm"));
        for split in 0..text.len() {
            for size in [1, 3, 7] {
                let mut s = r.stream();
                let mut out = s.push(&text.as_bytes()[..split]);
                for c in text.as_bytes()[split..].chunks(size) {
                    out.extend(s.push(c));
                }
                out.extend(s.finish());
                assert_eq!(out, whole, "split at {split} by {size}");
            }
        }
    }

    #[test]
    fn a_stream_releases_what_cannot_be_a_secret() {
        let r = redactor();
        let mut s = r.stream();
        assert_eq!(s.push(b"hello gh"), b"hello ");
        assert_eq!(s.push(b"x"), b"ghx");
        assert_eq!(s.finish(), b"");
        assert_eq!(
            format!("{r:?}"),
            format!("Redactor({} patterns)", r.patterns.len())
        );
    }

    #[test]
    fn empty_redactor_passes_everything() {
        let r = Redactor::new();
        assert_eq!(r.redact(b"abc"), b"abc");
        assert!(!r.contains(b"abc"));
    }
}
