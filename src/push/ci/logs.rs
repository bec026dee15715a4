//! What CI logs add to a tool's output, removed so the gate's parsers see what they would see
//! locally: a timestamp at the start of every line (GitHub Actions, GitLab with timestamps),
//! ANSI colour and erase sequences, carriage-return redraws, and group/section markers
//! (`##[group]`, `::group::`, GitLab's `section_start:…`).

use crate::gate::{parse_output, Failure};

/// Largest log parsed (the tail is kept: failures are reported at the end).
pub const MAX_LOG_BYTES: usize = 4 << 20;

/// Clean a CI job log and parse it with the gate's parsers. A failed job with nothing
/// recognised still yields one `unknown` failure (its tail).
pub fn failures_in(log: &[u8]) -> Vec<Failure> {
    let start = log.len().saturating_sub(MAX_LOG_BYTES);
    parse_output(&strip(&String::from_utf8_lossy(&log[start..])), 1)
}

/// The log without CI additions.
pub fn strip(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    for line in log.split('\n') {
        let line = without_ansi(line.trim_end_matches('\r'));
        // A carriage return redraws the line: what follows the last one is what shows.
        let line = line.rsplit('\r').next().unwrap_or("");
        let line = without_timestamp(line);
        if let Some(kept) = without_markers(line) {
            out.push_str(kept);
            out.push('\n');
        }
    }
    out
}

/// `2024-01-15T10:30:45.1234567Z ` (GitHub), optionally followed by GitLab's stream tag
/// (`00O `, `01E+ `).
fn without_timestamp(line: &str) -> &str {
    let b = line.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let shaped = b.len() > 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':';
    if !shaped {
        return line;
    }
    let Some(end) = line.find(' ') else {
        return line;
    };
    if !line[..end].ends_with('Z') {
        return line;
    }
    let rest = &line[end + 1..];
    match rest.split_once(' ') {
        Some((tag, after)) if is_stream_tag(tag) => after,
        _ if is_stream_tag(rest) => "",
        _ => rest,
    }
}

fn is_stream_tag(t: &str) -> bool {
    let t = t.strip_suffix('+').unwrap_or(t);
    t.len() == 3 && t[..2].bytes().all(|c| c.is_ascii_digit()) && matches!(&t[2..], "O" | "E")
}

/// `None` for a line that is only a marker; the text after a marker otherwise.
fn without_markers(line: &str) -> Option<&str> {
    let t = line.trim_start();
    for m in ["##[group]", "##[endgroup]", "::group::", "::endgroup::"] {
        if t.starts_with(m) {
            return None;
        }
    }
    for m in [
        "##[error]",
        "##[warning]",
        "##[notice]",
        "##[debug]",
        "##[command]",
    ] {
        if let Some(rest) = t.strip_prefix(m) {
            return Some(rest);
        }
    }
    if t.starts_with("section_start:") || t.starts_with("section_end:") {
        return None;
    }
    Some(line)
}

/// Remove CSI (`ESC [ … final`) and OSC (`ESC ] … BEL|ESC \`) sequences and stray escapes.
fn without_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let p = format!("{}/tests/fixtures/ci/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn github_job_log_is_parsed_like_local_output() {
        let log = fixture("github/job-log.txt");
        let text = strip(&String::from_utf8_lossy(&log));
        assert!(
            !text.contains('\u{1b}') && !text.contains("##[group]") && !text.contains("Z "),
            "{text}"
        );
        let f = failures_in(&log);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            f[0].test_id.as_deref(),
            Some("tests/test_calc.py::test_add")
        );
        assert_eq!(f[0].tool, "pytest");
    }

    #[test]
    fn gitlab_trace_sections_and_stream_tags_go() {
        let log = fixture("gitlab/job-trace.txt");
        let text = strip(&String::from_utf8_lossy(&log));
        assert!(
            !text.contains("section_") && !text.contains('\u{1b}') && !text.contains(" 00O "),
            "{text}"
        );
        let f = failures_in(&log);
        assert_eq!(
            f[0].test_id.as_deref(),
            Some("tests/test_calc.py::test_add"),
            "{f:?}"
        );
    }

    #[test]
    fn pieces() {
        assert_eq!(
            without_timestamp("2024-01-15T10:30:45.1234567Z hello"),
            "hello"
        );
        assert_eq!(
            without_timestamp("2024-05-29T11:56:30.123456Z 01E+ err"),
            "err"
        );
        assert_eq!(without_timestamp("2024 was a year"), "2024 was a year");
        assert_eq!(
            without_ansi("\u{1b}[31mred\u{1b}[0m \u{1b}]8;;http://x\u{7}link"),
            "red link"
        );
    }
}
