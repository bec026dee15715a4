//! Which files are tests, which are code, which are snapshots — by path alone.
//!
//! Red-flag detection runs on a diff, without the repository, so conventions are all there is:
//! the ones pytest, cargo, go test, jest and vitest use to discover tests.

/// The language conventions a file follows, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Lang {
    Python,
    Rust,
    Go,
    Js,
    Other,
}

pub(crate) fn lang(path: &str) -> Lang {
    let ext = file_name(path).rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "py" | "pyi" => Lang::Python,
        "rs" => Lang::Rust,
        "go" => Lang::Go,
        "js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" | "mts" | "cts" => Lang::Js,
        _ => Lang::Other,
    }
}

pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

const TEST_DIRS: &[&str] = &["tests", "test", "__tests__", "spec", "specs"];

/// Whether test discovery would pick this path up (or it lives in a test directory).
pub(crate) fn is_test_path(path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('/').collect();
    let name = parts.pop().unwrap_or("");
    parts.iter().any(|d| TEST_DIRS.contains(d)) || is_test_file_name(name)
}

/// Test discovery by file name alone (pytest's `test_*.py`, go's `_test.go`, jest's `.test.js`).
pub(crate) fn is_test_file_name(name: &str) -> bool {
    let js_marked = [".test.", ".spec."].iter().any(|m| name.contains(m)) && lang(name) == Lang::Js;
    (name.starts_with("test_") && name.ends_with(".py"))
        || name.ends_with("_test.py")
        || name.ends_with("_test.go")
        || name == "tests.rs"
        || name.ends_with("_tests.rs")
        || name.ends_with("Test.java")
        || name.ends_with("Tests.java")
        || name.ends_with("_spec.rb")
        || js_marked
}

/// Source code (as opposed to data, fixtures, docs), where deleting a test file matters.
pub(crate) fn is_code_path(path: &str) -> bool {
    lang(path) != Lang::Other
        || [".java", ".kt", ".rb", ".c", ".cc", ".cpp", ".cs", ".swift"]
            .iter()
            .any(|ext| path.ends_with(ext))
}

/// Snapshot files: jest/vitest `__snapshots__/*.snap`, insta `*.snap`, syrupy `*.ambr`.
pub(crate) fn is_snapshot_path(path: &str) -> bool {
    path.starts_with("__snapshots__/")
        || path.contains("/__snapshots__/")
        || path.ends_with(".snap")
        || path.ends_with(".ambr")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_test_paths() {
        let tests = [
            "tests/test_x.py",
            "pkg/test_y.py",
            "pkg/y_test.py",
            "calc_test.go",
            "web/app.test.js",
            "web/app.spec.ts",
            "src/parser/tests.rs",
            "tests/api.rs",
            "src/__tests__/a.js",
        ];
        for path in tests {
            assert!(is_test_path(path), "{path}");
        }
        for path in [
            "src/lib.rs",
            "calc.py",
            "web/app.js",
            "testing.md",
            "latest/x.py",
        ] {
            assert!(!is_test_path(path), "{path}");
        }
    }

    #[test]
    fn recognises_snapshots_and_code() {
        assert!(is_snapshot_path("web/__snapshots__/app.test.js.snap"));
        assert!(is_snapshot_path("tests/snapshots/x__y.snap"));
        assert!(is_snapshot_path("tests/__snapshots__/test_calc.ambr"));
        assert!(!is_snapshot_path("snapshots.md"));
        assert!(is_code_path("a/b.tsx") && !is_code_path("tests/data.json"));
    }
}
