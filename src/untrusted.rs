//! The one sanitiser for text that came from a container, a repository or a stranger, applied
//! before it reaches a terminal, `summary.json`, `events.jsonl`, `--json` output, the daemon's
//! API or `evidence.md` (#10 item 10). A leaf: imports nothing from the crate.
//!
//! Control characters are rendered as visible text rather than dropped, so a reader sees that
//! they were there: C0 (but newline and tab) and DEL as `\xNN`, C1 (U+0080–U+009F, which a
//! terminal may read as CSI/OSC) and the characters that reorder or hide text (bidi embedding,
//! override and isolate controls — Trojan Source — zero-width and BOM) as `\u{NNNN}`. A lone
//! carriage return becomes a newline so it cannot overwrite what was printed.

use serde_json::Value;

/// Characters that reorder or hide text: bidi embeddings, overrides and isolates (U+202A–202E,
/// U+2066–2069), marks (U+200E/F, U+061C), zero-width characters and the BOM.
pub fn is_hidden(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}'..='\u{200F}'
        | '\u{061C}' | '\u{2060}' | '\u{FEFF}')
}

/// `text` with every control and hidden character rendered visible (see the module doc).
pub fn neutralise(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' => out.push('\n'),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || is_hidden(c)
}

/// Every string in `value` (object keys too) passed through [`neutralise`].
pub fn neutralise_json(value: &mut Value) {
    match value {
        Value::String(s) if s.chars().any(needs_escape) => *s = neutralise(s),
        Value::Array(items) => items.iter_mut().for_each(neutralise_json),
        Value::Object(map) => {
            let dirty = map.keys().any(|k| k.chars().any(needs_escape));
            if dirty {
                let old = std::mem::take(map);
                map.extend(old.into_iter().map(|(k, v)| (neutralise(&k), v)));
            }
            map.values_mut().for_each(neutralise_json);
        }
        _ => {}
    }
}

/// `value` as JSON (pretty when asked) with every string neutralised.
pub fn to_json<T: serde::Serialize>(value: &T, pretty: bool) -> serde_json::Result<String> {
    let mut v = serde_json::to_value(value)?;
    neutralise_json(&mut v);
    if pretty {
        serde_json::to_string_pretty(&v)
    } else {
        serde_json::to_string(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_c1_and_bidi_are_rendered_visible() {
        let s = neutralise("a\x1b[31mred\x1b]0;title\x07\u{9b}2J\rover\r\nok\tx\u{202e}y\u{2066}");
        assert!(!s.chars().any(needs_escape), "{s:?}");
        assert_eq!(
            s,
            "a\\x1b[31mred\\x1b]0;title\\x07\\u{9b}2J\nover\nok\tx\\u{202e}y\\u{2066}"
        );
        assert_eq!(neutralise("café ü — ok"), "café ü — ok");
    }

    #[test]
    fn every_string_in_json_is_neutralised() {
        let mut v = serde_json::json!({"m\u{85}": ["x\u{9b}", {"f": "n\u{202e}"}], "n": 1});
        neutralise_json(&mut v);
        let text = v.to_string();
        assert!(!text.chars().any(needs_escape), "{text}");
        assert!(
            text.contains("\\\\u{9b}") && text.contains("m\\\\u{85}"),
            "{text}"
        );
    }
}
