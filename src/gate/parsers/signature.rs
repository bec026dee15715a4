//! Stable failure signatures.
//!
//! The judge compares attempts ("is the agent making progress, or failing the same way?") and
//! detects flakes ("same failure on rerun?") by signature, so a signature must not change when
//! only incidental details do: durations, addresses, thread ids, line numbers shifted by an
//! edit, temporary directories. Everything that *identifies* the failure stays in.

use crate::gate::FailureKind;

/// Hash tool, kind, file, test id and normalised message into 16 hex digits.
pub(crate) fn signature(
    tool: &str,
    kind: FailureKind,
    file: Option<&str>,
    test_id: Option<&str>,
    message: &str,
) -> String {
    let file = file.map(normalise_tmp).unwrap_or_default();
    let parts = [
        tool,
        kind.as_str(),
        &file,
        test_id.unwrap_or(""),
        &normalise(message),
    ];
    format!("{:016x}", fnv1a64(parts.join("\u{0}").as_bytes()))
}

/// Replace temporary paths, hex addresses and numbers with placeholders; collapse whitespace.
pub(crate) fn normalise(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let without_tmp = normalise_tmp(message);
    let mut chars = without_tmp.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '0' && matches!(chars.peek(), Some('x' | 'X')) {
            chars.next();
            while chars.peek().is_some_and(char::is_ascii_hexdigit) {
                chars.next();
            }
            out.push_str("0x#");
        } else if c.is_ascii_digit() {
            skip_number(&mut chars);
            out.push('#');
        } else if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out.trim().to_string()
}

/// Consume the rest of a number such as `20.093054` or `1,000` (the first digit is consumed).
fn skip_number(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    loop {
        match chars.peek() {
            Some(d) if d.is_ascii_digit() => {
                chars.next();
            }
            Some('.' | ',' | '_') => {
                let mut ahead = chars.clone();
                ahead.next();
                if !ahead.peek().is_some_and(char::is_ascii_digit) {
                    return;
                }
                chars.next();
            }
            _ => return,
        }
    }
}

const TMP_PREFIXES: &[&str] = &[
    "/tmp/",
    "/var/tmp/",
    "/private/var/folders/",
    "/var/folders/",
];

/// Replace every path under a temporary directory by `<tmp>` (pytest's `tmp_path`, mkdtemp).
fn normalise_tmp(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some((pos, _)) = TMP_PREFIXES
        .iter()
        .filter_map(|p| rest.find(p).map(|i| (i, p)))
        .min_by_key(|(i, _)| *i)
    {
        out.push_str(&rest[..pos]);
        out.push_str("<tmp>");
        let tail = &rest[pos..];
        let end = tail
            .find(|c: char| c.is_whitespace() || "'\"`)(<>,;".contains(c))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// FNV-1a, 64-bit: tiny, dependency-free and stable across Rust versions (unlike `DefaultHasher`).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn normalises_incidental_details() {
        assert_eq!(
            normalise("took 20.093054ms at 0x7fe2b51624e0"),
            normalise("took 1.5ms  at 0x7efd602684e0")
        );
        assert_eq!(
            normalise("thread 'a' (8451) panicked"),
            "thread 'a' (#) panicked"
        );
        assert_eq!(
            normalise("file /tmp/pytest-of-root/pytest-3/x0/data.txt missing"),
            "file <tmp> missing"
        );
        assert_eq!(normalise("end."), "end.");
    }

    #[test]
    fn signature_is_sixteen_hex_digits_and_discriminates() {
        let a = signature(
            "pytest",
            FailureKind::Assertion,
            Some("a.py"),
            None,
            "assert 1 == 2",
        );
        let b = signature(
            "pytest",
            FailureKind::Assertion,
            Some("a.py"),
            None,
            "assert 3 == 4",
        );
        let c = signature(
            "pytest",
            FailureKind::Assertion,
            Some("b.py"),
            None,
            "assert 1 == 2",
        );
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
