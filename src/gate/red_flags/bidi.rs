//! Trojan Source (CVE-2021-42574): bidirectional control characters make code read one way in
//! a review and compile another. Nothing an agent writes needs them in an added line or a file
//! name, so each one is a red flag citing the file and line.

use super::diff::{Change, FileDiff};
use super::{flag, RedFlag, RedFlagKind};

/// The embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The bidi controls in `text`, named by code point (never the raw character).
fn named(text: &str) -> Option<String> {
    let mut found: Vec<String> = Vec::new();
    for c in text.chars().filter(|c| is_bidi_control(*c)) {
        let name = format!("U+{:04X}", c as u32);
        if !found.contains(&name) {
            found.push(name);
        }
    }
    (!found.is_empty()).then(|| found.join(", "))
}

/// Flag bidi controls in the file's new name and in its added lines.
pub(crate) fn bidi_controls(file: &FileDiff, flags: &mut Vec<RedFlag>) {
    let path = file.path();
    if let Some(names) = file.new_path.as_deref().and_then(named) {
        let detail = format!("bidirectional control {names} in the file name");
        flags.push(flag(RedFlagKind::BidiControl, path, None, detail));
    }
    for line in file.lines().filter(|l| l.change == Change::Added) {
        if let Some(names) = named(&line.text) {
            let detail = format!("bidirectional control {names} in an added line");
            flags.push(flag(RedFlagKind::BidiControl, path, line.new, detail));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::red_flags;
    use super::*;

    #[test]
    fn trojan_source_in_a_line_or_a_name_is_flagged_at_file_and_line() {
        let line = "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,3 @@\n a = 1\n+if access_level != \"user\u{202e} \u{2066}# check if admin\u{2069} \u{2066}\":\n b = 2\n";
        let flags = red_flags(line);
        assert_eq!(flags.len(), 1, "{flags:?}");
        let f = &flags[0];
        assert_eq!(
            (f.kind, f.file.as_str(), f.line),
            (RedFlagKind::BidiControl, "app.py", Some(2))
        );
        assert!(
            f.detail.contains("U+202E") && f.detail.contains("U+2066"),
            "{}",
            f.detail
        );
        assert!(
            !f.detail.chars().any(is_bidi_control),
            "raw control in the detail"
        );
        // git quotes such a name in octal; the path is decoded before it is checked.
        let name = "diff --git \"a/x\\342\\200\\256yp.py\" \"b/x\\342\\200\\256yp.py\"\nnew file mode 100644\n--- /dev/null\n+++ \"b/x\\342\\200\\256yp.py\"\n@@ -0,0 +1 @@\n+ok\n";
        let flags = red_flags(name);
        assert_eq!(flags.len(), 1, "{flags:?}");
        assert_eq!(
            (flags[0].kind, flags[0].line),
            (RedFlagKind::BidiControl, None)
        );
        // Removed lines and plain text are not flagged.
        let removed = line.replace("+if", "-if");
        assert!(red_flags(&removed).is_empty());
        assert!(red_flags(&line.replace(['\u{202e}', '\u{2066}', '\u{2069}'], "")).is_empty());
    }
}
