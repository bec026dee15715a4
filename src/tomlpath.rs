//! Name the table a TOML error happened in, so "unknown field `x`" becomes `agent.x`.

/// The dotted path of `key` at byte offset `at` of `text`: the nearest `[table]` or
/// `[[array]]` header before it, then the key. Inline tables (`env = { .. }`) are not resolved.
pub fn qualify(text: &str, at: usize, key: &str) -> String {
    let before = text.get(..at.min(text.len())).unwrap_or(text);
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        });
    match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    }
}

/// The field a toml error names (`unknown field` / `missing field`), qualified by its table.
pub fn error_field(text: &str, e: &toml::de::Error) -> Option<String> {
    let msg = e.message();
    let key = msg.split('`').nth(1)?;
    if !(msg.starts_with("unknown field") || msg.starts_with("missing field")) {
        return None;
    }
    Some(match e.span() {
        Some(span) if msg.starts_with("unknown field") => qualify(text, span.start, key),
        Some(span) => {
            // A missing field is reported at the table that lacks it.
            let t = qualify(text, span.start + 1, "");
            let t = t.trim_end_matches('.');
            if t.is_empty() {
                key.to_string()
            } else {
                format!("{t}.{key}")
            }
        }
        None => key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_qualified_by_their_table() {
        let text =
            "title = \"x\"\n[agent]\nimage = \"i\"\nimage_typo = 1\n[[repos]]\nmatch = \"*\"\n";
        assert_eq!(
            qualify(text, text.find("image_typo").unwrap(), "image_typo"),
            "agent.image_typo"
        );
        assert_eq!(qualify(text, 0, "title"), "title");
        assert_eq!(
            qualify(text, text.find("match").unwrap(), "match"),
            "repos.match"
        );
    }
}
