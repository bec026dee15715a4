//! Escaping for `evidence.md` (and so for the draft PR's body): everything that came from the
//! container, the repository or the issue is shown as text, never interpreted as Markdown or
//! HTML, never mentions anyone, never hides characters.

/// Characters that start Markdown (GFM) inline syntax or HTML anywhere in a line.
const MARKDOWN: &[char] = &['\\', '`', '*', '_', '[', ']', '|', '~', '$', '#', '!'];

/// Plain text, on one line: Markdown punctuation backslash-escaped, HTML specials as entities,
/// control, bidirectional and zero-width characters shown as `\u{..}`, and `@` kept from
/// forming a mention.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push(&mut out, c);
        if c == '@' {
            out.push_str("&#8203;");
        }
    }
    out
}

/// Inline code: `<code>` around escaped text (forges do not link mentions, issue references
/// or URLs inside code).
pub fn code(s: &str) -> String {
    let mut out = String::from("<code>");
    for c in s.chars() {
        push(&mut out, c);
    }
    out.push_str("</code>");
    out
}

/// At most `max` characters of `s` (an ellipsis marks the cut), before escaping.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max).collect();
    t.push('…');
    t
}

/// Lines for a fenced code block: the fence is longer than any run of backticks inside, and
/// hidden characters are shown.
pub fn fenced(info: &str, lines: &[String]) -> String {
    let longest = lines.iter().map(|l| longest_run(l, '`')).max().unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    let mut out = format!("{fence}{info}\n");
    for l in lines {
        for c in l.chars() {
            if hidden(c) {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            } else {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out.push_str(&fence);
    out.push('\n');
    out
}

fn push(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        c if hidden(c) => out.push_str(&format!("\\\\u{{{:x}}}", c as u32)),
        c if MARKDOWN.contains(&c) => {
            out.push('\\');
            out.push(c);
        }
        c => out.push(c),
    }
}

/// Control characters (newlines included), bidirectional overrides and isolates, zero-width
/// characters and the BOM: anything that would break a line or hide what a reader sees.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c as u32,
            0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2069 | 0xFEFF | 0x061C | 0x00AD)
}

fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for c in s.chars() {
        cur = if c == ch { cur + 1 } else { 0 };
        best = best.max(cur);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_html_are_inert() {
        assert_eq!(
            text("<img src=x onerror=alert(1)> **b** [l](http://x) `c` a|b"),
            "&lt;img src=x onerror=alert(1)&gt; \\*\\*b\\*\\* \\[l\\](http://x) \\`c\\` a\\|b"
        );
        assert_eq!(code("a_b<script>"), "<code>a\\_b&lt;script&gt;</code>");
    }

    #[test]
    fn hidden_characters_are_shown_and_lines_not_broken() {
        assert_eq!(
            text("a\nb\u{1b}[31m\u{202e}"),
            "a\\\\u{a}b\\\\u{1b}\\[31m\\\\u{202e}"
        );
        assert!(!code("x\r\ny").contains('\n'));
    }

    #[test]
    fn mentions_do_not_form_outside_code() {
        assert_eq!(text("@admin"), "@&#8203;admin");
        assert_eq!(code("@admin"), "<code>@admin</code>");
    }

    #[test]
    fn fences_outgrow_the_backticks_inside() {
        let f = fenced("sh", &["echo ````".into()]);
        assert!(
            f.starts_with("`````sh\n") && f.ends_with("\n`````\n"),
            "{f}"
        );
    }
}
