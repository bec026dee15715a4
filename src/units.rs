//! Human units used in spec and policy files: durations ("90s", "10m") and byte sizes ("64m");
//! and the one timestamp format of airlock's records (RFC 3339, UTC, milliseconds).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parse a duration such as `"90s"`, `"10m"`, `"1h 30m"`. Zero is rejected: a zero limit is
/// never what an operator means.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        format!("`{text}` is not a duration ({e}); use e.g. \"90s\", \"10m\", \"1h\"")
    })?;
    if d.is_zero() {
        return Err(format!("`{text}` is zero; a duration must be positive"));
    }
    Ok(d)
}

/// Parse a byte size: a number with an optional binary suffix k, m, g (case-insensitive,
/// optional trailing "b" / "ib"). `"64m"` is 64 MiB.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (digits, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let bad = || format!("`{text}` is not a byte size; use e.g. \"512k\", \"64m\", \"2g\"");
    let n: u64 = digits.trim().parse().map_err(|_| bad())?;
    let v = n.checked_mul(mult).ok_or_else(bad)?;
    if v == 0 {
        return Err(format!("`{text}` is zero; a size must be positive"));
    }
    Ok(v)
}

/// Render a byte count the way an operator writes it.
pub fn format_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}g", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}m", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}k", n >> 10),
        n => n.to_string(),
    }
}

/// Render a duration compactly ("10m", "90s").
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Current UTC time as RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    humantime::format_rfc3339_millis(
        UNIX_EPOCH + std::time::Duration::from_millis(d.as_millis() as u64),
    )
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_parse_with_suffixes() {
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert_eq!(parse_bytes("512KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("lots").unwrap_err().contains("lots"));
        assert!(parse_bytes("99999999999999g").is_err());
    }

    #[test]
    fn durations_parse_and_reject_zero() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
    }

    #[test]
    fn bytes_format_round_trips() {
        for s in ["64m", "2g", "512k", "100"] {
            assert_eq!(format_bytes(parse_bytes(s).unwrap()), s);
        }
    }
}
