//! Untrusted text from a forge, made safe to hand to an agent and to echo back to the forge:
//! size-capped, control and bidirectional-override characters removed, `@mentions`
//! neutralised (so neither the agent's output nor airlock's comments ping anyone).

/// Most bytes of issue text (body plus the requester's instruction) kept.
pub const MAX_ISSUE_TEXT: usize = 64 << 10;
/// Most characters of a title kept.
pub const MAX_TITLE_CHARS: usize = 200;
/// The marker appended where text was cut.
pub const CUT_MARKER: &str = "\n\n[airlock: the issue text was cut here]\n";

use crate::untrusted::is_hidden;

/// Keep newlines and tabs; drop every other control (C0, DEL, C1) and hidden character.
pub fn strip_controls(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !(c.is_control() || is_hidden(c)))
        .collect()
}

/// `@name` becomes `` `@name` ``: rendered as code, it notifies no one. Email addresses
/// (`a@b.c`, the `@` after a word character) are left as they are.
pub fn neutralise_mentions(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let after_word = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '`');
        let starts =
            c == '@' && !after_word && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if !starts {
            out.push(c);
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < chars.len() && (chars[j].is_alphanumeric() || "-_/.".contains(chars[j])) {
            j += 1;
        }
        while j > i + 2 && chars[j - 1] == '.' {
            j -= 1;
        }
        out.push('`');
        out.extend(&chars[i..j]);
        out.push('`');
        i = j;
    }
    out
}

/// Cut `text` to at most `max` bytes on a char boundary; whether it was cut.
pub fn cap(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_string(), false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_string(), true)
}

/// Issue text as the agent gets it.
pub fn issue_text(text: &str) -> String {
    let clean = neutralise_mentions(&strip_controls(text));
    let room = MAX_ISSUE_TEXT - CUT_MARKER.len();
    match cap(&clean, room) {
        (t, false) => t,
        (t, true) => t + CUT_MARKER,
    }
}

/// A title: one line, no controls, capped, never empty.
pub fn title(text: &str) -> String {
    let one_line = strip_controls(text).replace(['\n', '\t'], " ");
    let t: String = neutralise_mentions(one_line.trim())
        .chars()
        .take(MAX_TITLE_CHARS)
        .collect();
    if t.is_empty() {
        "untitled issue".into()
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_removed_newlines_kept() {
        let t = "a\u{1b}[31mred\u{7}\r\nline\u{202E}evil\u{2066}\u{85}\tend";
        assert_eq!(strip_controls(t), "a[31mred\nlineevil\tend");
    }

    #[test]
    fn mentions_are_neutralised_emails_left() {
        assert_eq!(
            neutralise_mentions("ping @octocat and @acme/team, mail me@x.org"),
            "ping `@octocat` and `@acme/team`, mail me@x.org"
        );
        assert_eq!(neutralise_mentions("@a"), "`@a`");
        assert_eq!(neutralise_mentions("thanks @a.b."), "thanks `@a.b`.");
        assert_eq!(neutralise_mentions("a @ b"), "a @ b");
        assert_eq!(neutralise_mentions("`@a`"), "`@a`", "already code");
    }

    #[test]
    fn long_text_is_cut_with_a_marker() {
        let long = "é".repeat(MAX_ISSUE_TEXT);
        let t = issue_text(&long);
        assert!(t.len() <= MAX_ISSUE_TEXT, "{}", t.len());
        assert!(t.ends_with(CUT_MARKER));
        assert_eq!(issue_text("short"), "short");
    }

    #[test]
    fn titles_are_one_short_line() {
        assert_eq!(title("  Fix\nthe\tbug \u{1b} "), "Fix the bug");
        assert_eq!(title(""), "untitled issue");
        assert_eq!(title(&"x".repeat(500)).chars().count(), MAX_TITLE_CHARS);
    }
}
