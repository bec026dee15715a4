//! Added skip markers and lint suppressions.
//!
//! Both are single added lines with a recognisable marker. Skips only count in test context (a
//! test file, any Rust file for `#[ignore]`, `conftest.py`); suppressions count in any source
//! file but only inside a comment or attribute, so a string literal that mentions `# noqa`
//! (this crate has several) does not trip the detector.

use super::diff::{Change, FileDiff};
use super::testpath::{file_name, is_test_path, lang, Lang};
use super::{flag, Moved, RedFlag, RedFlagKind};

/// Flag added skip markers and lint suppressions that were not merely moved.
pub(crate) fn added_markers(file: &FileDiff, moved: &Moved, flags: &mut Vec<RedFlag>) {
    let path = file.path();
    let lang = lang(path);
    let test_context = is_test_path(path) || lang == Lang::Rust || file_name(path) == "conftest.py";
    for line in file.lines().filter(|l| l.change == Change::Added) {
        if moved.removed_elsewhere(&line.text) {
            continue;
        }
        let skip = test_context
            .then(|| skip_marker(lang, &line.text))
            .flatten();
        if let Some(marker) = skip {
            let detail = format!("{marker} added: {}", line.text.trim());
            flags.push(flag(RedFlagKind::SkipAdded, path, line.new, detail));
        }
        if let Some(marker) = lint_marker(lang, &line.text) {
            let detail = format!("{marker} added: {}", line.text.trim());
            flags.push(flag(RedFlagKind::LintDisabled, path, line.new, detail));
        }
    }
}

/// The skip/xfail/ignore/focus marker on a line, if any.
pub(crate) fn skip_marker(lang: Lang, text: &str) -> Option<&'static str> {
    let t = text.trim_start();
    match lang {
        Lang::Python => python_skip(t),
        Lang::Rust => {
            let ignore =
                t.starts_with("#[ignore") || t.starts_with("#[cfg_attr(") && t.contains("ignore");
            ignore.then_some("#[ignore]")
        }
        Lang::Go => [".Skip(", ".Skipf(", ".SkipNow()"]
            .iter()
            .any(|m| t.contains(m))
            .then_some("t.Skip"),
        Lang::Js => js_skip(t),
        Lang::Other => None,
    }
}

fn python_skip(t: &str) -> Option<&'static str> {
    const MARKERS: &[(&str, &str)] = &[
        ("@pytest.mark.skip", "@pytest.mark.skip"),
        ("@pytest.mark.xfail", "@pytest.mark.xfail"),
        ("@unittest.skip", "@unittest.skip"),
        ("@unittest.expectedFailure", "@unittest.expectedFailure"),
        ("pytest.skip(", "pytest.skip()"),
        ("pytest.xfail(", "pytest.xfail()"),
        ("self.skipTest(", "skipTest()"),
    ];
    if t.starts_with("pytestmark") && (t.contains("skip") || t.contains("xfail")) {
        return Some("module-level pytestmark skip");
    }
    MARKERS
        .iter()
        .find(|(m, _)| t.starts_with(m))
        .map(|(_, name)| *name)
}

fn js_skip(t: &str) -> Option<&'static str> {
    const SKIPS: &[&str] = &[".skip(", ".skipIf(", ".todo(", ".fixme("];
    let callee = |m: &str| {
        ["it", "test", "describe"]
            .iter()
            .any(|f| t.contains(&format!("{f}{m}")))
    };
    if SKIPS.iter().any(|m| callee(m)) {
        return Some("test skip");
    }
    if [".only("].iter().any(|m| callee(m)) {
        return Some("focused test (.only skips all others)");
    }
    ["xit(", "xtest(", "xdescribe("]
        .iter()
        .any(|m| t.starts_with(m))
        .then_some("x-prefixed (skipped) test")
}

/// The lint or type-check suppression on a line, if any.
pub(crate) fn lint_marker(lang: Lang, text: &str) -> Option<&'static str> {
    match lang {
        Lang::Python => {
            let comment = comment_part(text, "#")?.to_ascii_lowercase();
            const MARKERS: &[&str] =
                &["noqa", "type: ignore", "pylint: disable", "pyright: ignore"];
            MARKERS.iter().find(|m| comment.contains(*m)).copied()
        }
        Lang::Rust => {
            let t = text.trim_start();
            let allow = ["#[allow(", "#![allow(", "#[expect(", "#![expect("]
                .iter()
                .any(|m| t.starts_with(m))
                || t.starts_with("#[cfg_attr(") && t.contains("allow(");
            allow.then_some("#[allow]")
        }
        Lang::Js => {
            let comment = comment_part(text, "//").or_else(|| comment_part(text, "/*"))?;
            const MARKERS: &[&str] = &[
                "eslint-disable",
                "@ts-ignore",
                "@ts-nocheck",
                "@ts-expect-error",
                "biome-ignore",
            ];
            MARKERS.iter().find(|m| comment.contains(*m)).copied()
        }
        Lang::Go => {
            let comment = comment_part(text, "//")?;
            (comment.contains("nolint") || comment.contains("lint:ignore")).then_some("//nolint")
        }
        Lang::Other => None,
    }
}

/// The text after the first `opener` that is not inside a string literal.
fn comment_part<'a>(text: &'a str, opener: &str) -> Option<&'a str> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, '"' | '\'' | '`') => quote = Some(c),
            None if text[i..].starts_with(opener) => return Some(&text[i + opener.len()..]),
            None => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_skips_per_language() {
        assert!(skip_marker(Lang::Python, "@pytest.mark.skipif(sys.platform == 'x')").is_some());
        assert!(skip_marker(Lang::Python, "    pytest.skip('later')").is_some());
        assert!(skip_marker(Lang::Rust, "    #[ignore = \"slow\"]").is_some());
        assert!(skip_marker(Lang::Go, "\tif testing.Short() { t.Skip(\"x\") }").is_some());
        assert!(skip_marker(Lang::Js, "  it.skip('sums', () => {").is_some());
        assert!(skip_marker(Lang::Js, "describe.only('x', () => {").is_some());
        assert!(skip_marker(Lang::Js, "xit('x', () => {").is_some());
        assert!(skip_marker(Lang::Js, "  it('skips nothing', () => {").is_none());
        assert!(skip_marker(Lang::Python, "def test_skip_logic():").is_none());
    }

    #[test]
    fn suppressions_only_count_in_comments() {
        assert_eq!(
            lint_marker(Lang::Python, "x = 1  # noqa: F841"),
            Some("noqa")
        );
        assert_eq!(lint_marker(Lang::Python, "s = '# noqa'"), None);
        assert_eq!(
            lint_marker(Lang::Js, "// eslint-disable-next-line no-undef"),
            Some("eslint-disable")
        );
        assert_eq!(
            lint_marker(Lang::Js, "const s = \"// eslint-disable\";"),
            None
        );
        assert_eq!(
            lint_marker(Lang::Rust, "#[allow(clippy::all)]"),
            Some("#[allow]")
        );
        assert_eq!(lint_marker(Lang::Rust, "let s = \"#[allow(x)]\";"), None);
        assert_eq!(
            lint_marker(Lang::Go, "x := 1 //nolint:errcheck"),
            Some("//nolint")
        );
    }
}
