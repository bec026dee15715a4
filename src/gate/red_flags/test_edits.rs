//! Removed tests, removed assertions and weakened assertions.
//!
//! Removed tests are matched by name across the whole diff, so a test moved to another file (or
//! renamed by a skip marker, which is flagged separately) is not "removed". Assertions are
//! compared within one change block (a run of `-`/`+` lines): removed assertions are paired in
//! order with added ones, and a pair whose new side is weaker is flagged as weakened; an
//! unpaired removal is flagged unless the same line reappears elsewhere (moved).

use std::collections::HashMap;

use super::diff::{Change, DiffLine, FileDiff, Hunk};
use super::testpath::{is_test_path, lang, Lang};
use super::{flag, Moved, RedFlag, RedFlagKind};

/// Lines searched after a Rust test attribute for the `fn` it applies to.
const RUST_ATTR_REACH: usize = 4;

/// Flag test definitions removed and not re-added anywhere in the diff.
pub(crate) fn removed_tests(files: &[FileDiff], flags: &mut Vec<RedFlag>) {
    let mut added: HashMap<(Lang, String), usize> = HashMap::new();
    let mut removed: Vec<(Lang, String, &str, Option<u32>)> = Vec::new();
    for file in files {
        for hunk in &file.hunks {
            for (i, line) in hunk.lines.iter().enumerate() {
                let path = match line.change {
                    Change::Context => continue,
                    Change::Added => file.new_path.as_deref(),
                    Change::Removed => file.old_path.as_deref(),
                };
                let Some(path) = path else { continue };
                let Some(name) = test_name(path, &hunk.lines, i) else {
                    continue;
                };
                let key = (lang(path), name);
                match line.change {
                    Change::Added => *added.entry(key).or_default() += 1,
                    _ if !file.deleted => removed.push((key.0, key.1, path, line.old)),
                    _ => {}
                }
            }
        }
    }
    for (lang, name, path, line) in removed {
        match added.get_mut(&(lang, name.clone())) {
            Some(n) if *n > 0 => *n -= 1,
            _ => flags.push(flag(
                RedFlagKind::TestRemoved,
                path,
                line,
                format!("test `{name}` removed"),
            )),
        }
    }
}

/// The name of the test defined at `lines[i]`, if it defines one.
fn test_name(path: &str, lines: &[DiffLine], i: usize) -> Option<String> {
    let t = lines.get(i)?.text.trim_start();
    match lang(path) {
        Lang::Rust => rust_test_name(lines, i),
        _ if !is_test_path(path) => None,
        Lang::Python => python_test_name(t),
        Lang::Go => go_test_name(t),
        Lang::Js => js_test_name(t),
        Lang::Other => None,
    }
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn python_test_name(t: &str) -> Option<String> {
    let t = t.strip_prefix("async ").unwrap_or(t);
    let name = t
        .strip_prefix("def ")
        .or_else(|| t.strip_prefix("class "))?;
    let name = ident(name);
    let is_test = name.starts_with("test") || t.starts_with("class ") && name.starts_with("Test");
    is_test.then_some(name)
}

fn go_test_name(t: &str) -> Option<String> {
    let rest = t.strip_prefix("func ")?;
    let rest = match rest.strip_prefix('(') {
        Some(r) => r.split_once(") ")?.1,
        None => rest,
    };
    let name = ident(rest);
    name.starts_with("Test").then_some(name)
}

/// `it('name', ...)`, `test.skip("name", ...)`, `it.only(`…`)`.
fn js_test_name(t: &str) -> Option<String> {
    let rest = ["it", "test"].iter().find_map(|f| t.strip_prefix(f))?;
    let rest = match rest.strip_prefix('.') {
        Some(r) => r.trim_start_matches(char::is_alphanumeric),
        None => rest,
    };
    let rest = rest.strip_prefix('(')?.trim_start();
    let quote = rest
        .chars()
        .next()
        .filter(|c| matches!(c, '\'' | '"' | '`'))?;
    let name = rest[1..].split(quote).next()?;
    Some(name.to_string())
}

/// A `#[test]`-like attribute line names the `fn` that follows it on the same side. Removing
/// only the attribute disables the test just as well as deleting it.
fn rust_test_name(lines: &[DiffLine], i: usize) -> Option<String> {
    let attr = lines.get(i)?;
    if !is_rust_test_attr(attr.text.trim_start()) {
        return None;
    }
    let opposite = match attr.change {
        Change::Added => Change::Removed,
        _ => Change::Added,
    };
    lines[i + 1..]
        .iter()
        .filter(|l| l.change != opposite)
        .take(RUST_ATTR_REACH)
        .find_map(|l| {
            let (_, after) = l.text.split_once("fn ")?;
            Some(ident(after)).filter(|n| !n.is_empty())
        })
        .or_else(|| Some("#[test]".to_string()))
}

fn is_rust_test_attr(t: &str) -> bool {
    [
        "#[test]",
        "#[tokio::test",
        "#[async_std::test",
        "#[rstest",
        "#[test_case",
    ]
    .iter()
    .any(|a| t.starts_with(a))
}

/// Flag removed and weakened assertions in test code.
pub(crate) fn assertions(files: &[FileDiff], moved: &Moved, flags: &mut Vec<RedFlag>) {
    for file in files.iter().filter(|f| !f.deleted && !f.added) {
        let path = file.path();
        for hunk in file.hunks.iter().filter(|h| in_test_context(path, h)) {
            for block in hunk.lines.split(|l| l.change == Change::Context) {
                check_block(path, block, moved, flags);
            }
        }
    }
}

fn in_test_context(path: &str, hunk: &Hunk) -> bool {
    const RUST_TEST: &[&str] = &["mod tests", "#[cfg(test)]", "#[test]"];
    let rust_test = |s: &str| RUST_TEST.iter().any(|m| s.contains(m));
    is_test_path(path)
        || lang(path) == Lang::Rust
            && (rust_test(&hunk.context) || hunk.lines.iter().any(|l| rust_test(&l.text)))
}

fn check_block(path: &str, block: &[DiffLine], moved: &Moved, flags: &mut Vec<RedFlag>) {
    let lang = lang(path);
    let removes_test = (0..block.len())
        .any(|i| block[i].change == Change::Removed && test_name(path, block, i).is_some());
    let asserts = |c: Change| -> Vec<&DiffLine> {
        block
            .iter()
            .filter(|l| l.change == c && is_assertion(lang, &l.text))
            .collect()
    };
    let (removed, added) = (asserts(Change::Removed), asserts(Change::Added));
    for (i, old) in removed.iter().enumerate() {
        let (old_text, cite) = (old.text.trim(), old.old);
        match added.get(i) {
            Some(new) => {
                if let Some(why) = weakened(lang, old_text, new.text.trim()) {
                    let detail = format!("{why}: `{old_text}` became `{}`", new.text.trim());
                    flags.push(flag(RedFlagKind::AssertionWeakened, path, new.new, detail));
                }
            }
            None if removes_test || moved.added_elsewhere(&old.text) => {}
            None => {
                let detail = format!("assertion removed: `{old_text}`");
                flags.push(flag(RedFlagKind::AssertionRemoved, path, cite, detail));
            }
        }
    }
}

pub(crate) fn is_assertion(lang: Lang, text: &str) -> bool {
    let t = text.trim_start();
    let any = |markers: &[&str]| markers.iter().any(|m| t.contains(m));
    match lang {
        Lang::Python => {
            [
                "assert ",
                "assert(",
                "self.assert",
                "self.fail(",
                "with pytest.raises",
                "pytest.raises(",
            ]
            .iter()
            .any(|p| t.starts_with(p))
                || t.starts_with("assert_")
                || any(&["np.testing.assert"])
        }
        Lang::Rust => any(&[
            "assert!(",
            "assert_eq!(",
            "assert_ne!(",
            "assert_matches!(",
            "prop_assert",
        ]),
        Lang::Go => any(&["t.Error", "t.Fatal", "t.Fail", "assert.", "require."]),
        Lang::Js => any(&["expect(", "assert(", "assert.", ".should."]),
        Lang::Other => false,
    }
}

/// Why `new` checks less than `old`, if it does.
fn weakened(lang: Lang, old: &str, new: &str) -> Option<&'static str> {
    if always_true(new) && !always_true(old) {
        return Some("assertion made always true");
    }
    let strength = match lang {
        Lang::Python | Lang::Rust => comparison_strength,
        Lang::Js => js_strength,
        Lang::Go | Lang::Other => return None,
    };
    (strength(new) < strength(old)).then_some("assertion weakened")
}

fn always_true(t: &str) -> bool {
    t == "assert True"
        || t.starts_with("assert True,")
        || [
            " or True",
            "|| true",
            "assert!(true",
            "expect(true)",
            "assert(true)",
        ]
        .iter()
        .any(|m| t.contains(m))
}

/// 3: equality, 2: ordering or membership, 1: truthiness.
fn comparison_strength(t: &str) -> u8 {
    const EQ: &[&str] = &[
        "==",
        "!=",
        "assert_eq!",
        "assert_ne!",
        " is ",
        "approx(",
        "assertEqual",
        "raises",
    ];
    const CMP: &[&str] = &[
        " < ",
        " > ",
        " <= ",
        " >= ",
        " in ",
        "isinstance(",
        "matches!(",
        ".contains(",
    ];
    if EQ.iter().any(|m| t.contains(m)) {
        3
    } else if CMP.iter().any(|m| t.contains(m)) {
        2
    } else {
        1
    }
}

/// Matchers by how much they pin down: strict equality > equality/throws > ordering > truthiness.
fn js_strength(t: &str) -> u8 {
    const STRICT: &[&str] = &[
        ".toStrictEqual(",
        "assert.strictEqual(",
        "assert.deepStrictEqual(",
    ];
    const EQUAL: &[&str] = &[
        ".toBe(",
        ".toEqual(",
        ".toMatchObject(",
        ".toThrow(",
        ".toHaveBeenCalledWith(",
        ".toHaveLength(",
        ".toMatchSnapshot(",
        ".toMatchInlineSnapshot(",
        ".toContain(",
        ".toHaveProperty(",
        ".toMatch(",
        ".toBeCloseTo(",
        "assert.equal(",
        "assert.deepEqual(",
        "assert.throws(",
        ".to.equal(",
        ".to.deep.equal(",
    ];
    const ORDER: &[&str] = &[".toBeGreaterThan", ".toBeLessThan", ".toBeNaN("];
    let has = |ms: &[&str]| ms.iter().any(|m| t.contains(m));
    if has(STRICT) {
        4
    } else if has(EQUAL) {
        3
    } else if has(ORDER) {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tests() {
        assert_eq!(
            python_test_name("async def test_x(a):").as_deref(),
            Some("test_x")
        );
        assert_eq!(python_test_name("class TestM:").as_deref(), Some("TestM"));
        assert_eq!(python_test_name("def helper():"), None);
        assert_eq!(
            go_test_name("func (s *S) TestY(t *testing.T) {").as_deref(),
            Some("TestY")
        );
        assert_eq!(
            js_test_name("test.only(\"b c\", () => {").as_deref(),
            Some("b c")
        );
        assert_eq!(js_test_name("items.forEach(x => {"), None);
    }

    #[test]
    fn judges_weakening() {
        assert!(weakened(Lang::Python, "assert x == 1", "assert x").is_some());
        assert!(weakened(Lang::Python, "assert x == 1", "assert x == 2").is_none());
        assert!(weakened(Lang::Python, "assert f() == 3", "assert f() == 3 or True").is_some());
        assert!(weakened(Lang::Rust, "assert_eq!(d(2), 4);", "assert!(d(2) > 0);").is_some());
        assert!(weakened(Lang::Rust, "assert!(a > 1);", "assert!(a >= 2);").is_none());
        assert!(weakened(Lang::Js, "expect(t).toBe(3);", "expect(t).toBeDefined();").is_some());
        assert!(weakened(
            Lang::Js,
            "expect(t).toStrictEqual(4);",
            "expect(t).toEqual(4);"
        )
        .is_some());
        assert!(weakened(
            Lang::Js,
            "expect(t).toEqual(4);",
            "expect(t).toStrictEqual(4);"
        )
        .is_none());
    }
}
