//! Edits to the gate's configuration, and raised or removed timeouts.
//!
//! Some files are configuration as a whole (`conftest.py`, `pytest.ini`, `tox.ini`, jest and
//! eslint configs); others only in part (`[tool:pytest]` in `setup.cfg`, `[tool.pytest.*]` in
//! `pyproject.toml`, `"scripts"` in `package.json`). For the latter the enclosing section is
//! read from the hunk; when the hunk does not show it, the changed key decides.

use super::diff::{Change, DiffLine, FileDiff, Hunk};
use super::testpath::{file_name, is_test_path};
use super::{flag, Moved, RedFlag, RedFlagKind};

/// Files that configure test discovery, test running or linting in their entirety.
const WHOLE_FILES: &[&str] = &[
    "conftest.py",
    "pytest.ini",
    "tox.ini",
    "noxfile.py",
    ".flake8",
    "ruff.toml",
    ".ruff.toml",
    "mypy.ini",
    ".mypy.ini",
    ".pylintrc",
    "pylintrc",
    "clippy.toml",
    ".clippy.toml",
    "nextest.toml",
    ".golangci.yml",
    ".golangci.yaml",
    ".golangci.toml",
    ".golangci.json",
];
/// Prefixes of JS tool config file names (`jest.config.ts`, `.eslintrc.json`, ...).
const WHOLE_PREFIXES: &[&str] = &[
    "jest.config.",
    "vitest.config.",
    "vitest.workspace.",
    "eslint.config.",
    ".eslintrc",
    ".mocharc",
    "karma.conf.",
];
const INI_SECTIONS: &[(&str, &[&str])] = &[
    (
        "setup.cfg",
        &[
            "tool:pytest",
            "flake8",
            "mypy",
            "pycodestyle",
            "pylint",
            "coverage:",
        ],
    ),
    (
        "pyproject.toml",
        &[
            "tool.pytest",
            "tool.ruff",
            "tool.mypy",
            "tool.pylint",
            "tool.coverage",
            "tool.pyright",
        ],
    ),
    ("Cargo.toml", &["lints", "workspace.lints"]),
];
/// Keys that configure pytest or a linter even when their section is not visible.
const GATE_KEYS: &[&str] = &[
    "addopts",
    "testpaths",
    "python_files",
    "python_classes",
    "python_functions",
    "timeout",
    "filterwarnings",
    "markers",
    "xfail_strict",
    "norecursedirs",
    "required_plugins",
    "per-file-ignores",
    "extend-ignore",
    "ignore",
    "select",
    "extend-select",
    "fail_under",
];
const JSON_SECTIONS: &[&str] = &[
    "scripts",
    "jest",
    "eslintConfig",
    "vitest",
    "mocha",
    "ava",
    "c8",
    "nyc",
];
const JSON_KEYS: &[&str] = &["test", "pretest", "posttest", "lint", "typecheck", "check"];

/// Flag the first gate-relevant change in a file.
pub(crate) fn gate_config(file: &FileDiff, flags: &mut Vec<RedFlag>) {
    let path = file.path();
    let name = file_name(path);
    let whole = WHOLE_FILES.contains(&name) || WHOLE_PREFIXES.iter().any(|p| name.starts_with(p));
    let found = if whole {
        first_change(file).map(|l| (l.cite(), name.to_string()))
    } else if name == "package.json" {
        find_change(file, json_gate_key)
    } else if let Some((_, sections)) = INI_SECTIONS.iter().find(|(n, _)| *n == name) {
        find_change(file, |hunk, i| ini_gate_section(hunk, i, sections))
    } else {
        None
    };
    if let Some((line, what)) = found {
        let detail = format!("gate configuration edited: {what}");
        flags.push(flag(RedFlagKind::GateConfigEdited, path, line, detail));
    }
}

fn first_change(file: &FileDiff) -> Option<&DiffLine> {
    file.lines().find(|l| l.change != Change::Context)
}

/// The first changed line for which `relevant` names what it configures.
fn find_change(
    file: &FileDiff,
    relevant: impl Fn(&Hunk, usize) -> Option<String>,
) -> Option<(Option<u32>, String)> {
    file.hunks.iter().find_map(|hunk| {
        hunk.lines.iter().enumerate().find_map(|(i, line)| {
            if line.change == Change::Context {
                return None;
            }
            relevant(hunk, i).map(|what| (line.cite(), what))
        })
    })
}

/// Lines on the same side as `lines[i]`, from `i` back to the start of the hunk.
fn same_side_before(hunk: &Hunk, i: usize) -> impl Iterator<Item = &DiffLine> {
    let side = hunk.lines[i].change;
    hunk.lines[..=i]
        .iter()
        .rev()
        .filter(move |l| l.change == Change::Context || l.change == side)
}

fn ini_gate_section(hunk: &Hunk, i: usize, sections: &[&str]) -> Option<String> {
    let header = same_side_before(hunk, i).find_map(|l| {
        let t = l.text.trim();
        t.strip_prefix('[')?.strip_suffix(']').map(str::to_string)
    });
    match header {
        Some(section) => sections
            .iter()
            .any(|s| section.starts_with(s))
            .then(|| format!("[{section}]")),
        None => {
            let key = hunk.lines[i].text.split('=').next().unwrap_or("").trim();
            GATE_KEYS
                .contains(&key)
                .then(|| format!("`{key}` (section not shown)"))
        }
    }
}

/// The enclosing top-level object of a changed `package.json` line, by brace depth.
fn json_gate_key(hunk: &Hunk, i: usize) -> Option<String> {
    let own = json_key(&hunk.lines[i].text);
    if let Some(key) = own.filter(|k| JSON_SECTIONS.contains(k)) {
        return Some(format!("\"{key}\""));
    }
    let mut depth = 0i32;
    for line in same_side_before(hunk, i).skip(1) {
        let count = |cs: &[char]| line.text.chars().filter(|c| cs.contains(c)).count() as i32;
        depth += count(&['}', ']']) - count(&['{', '[']);
        if depth < 0 {
            let key = json_key(&line.text)?;
            return JSON_SECTIONS.contains(&key).then(|| format!("\"{key}\""));
        }
    }
    let key = own?;
    (JSON_KEYS.contains(&key) || key.starts_with("test:")).then(|| format!("\"{key}\" script"))
}

fn json_key(text: &str) -> Option<&str> {
    let rest = text.trim_start().strip_prefix('"')?;
    let (key, after) = rest.split_once('"')?;
    after.trim_start().starts_with(':').then_some(key)
}

/// Flag raised timeouts (paired `-`/`+` lines in one change block) and removed ones, in test
/// files and gate configuration.
pub(crate) fn timeouts(file: &FileDiff, moved: &Moved, flags: &mut Vec<RedFlag>) {
    let path = file.path();
    let name = file_name(path);
    let relevant = is_test_path(path)
        || WHOLE_FILES.contains(&name)
        || WHOLE_PREFIXES.iter().any(|p| name.starts_with(p))
        || INI_SECTIONS.iter().any(|(n, _)| *n == name)
        || name == "package.json";
    if !relevant || file.deleted {
        return;
    }
    for hunk in &file.hunks {
        for block in hunk.lines.split(|l| l.change == Change::Context) {
            block_timeouts(path, block, moved, flags);
        }
    }
}

fn block_timeouts(path: &str, block: &[DiffLine], moved: &Moved, flags: &mut Vec<RedFlag>) {
    let with_timeout = |c: Change| -> Vec<(&DiffLine, Duration)> {
        block
            .iter()
            .filter(|l| l.change == c)
            .filter_map(|l| timeout_value(&l.text).map(|d| (l, d)))
            .collect()
    };
    let (removed, added) = (with_timeout(Change::Removed), with_timeout(Change::Added));
    for (i, (old, old_value)) in removed.iter().enumerate() {
        match added.get(i) {
            Some((new, new_value)) if new_value.exceeds(old_value) => {
                let detail = format!(
                    "timeout raised: `{}` became `{}`",
                    old.text.trim(),
                    new.text.trim()
                );
                flags.push(flag(RedFlagKind::TimeoutRaised, path, new.new, detail));
            }
            None if !moved.added_elsewhere(&old.text) => {
                let detail = format!("timeout removed: `{}`", old.text.trim());
                flags.push(flag(RedFlagKind::TimeoutRaised, path, old.old, detail));
            }
            _ => {}
        }
    }
}

/// A timeout value: milliseconds when a unit was given, else the bare number.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Duration {
    value: f64,
    has_unit: bool,
}

impl Duration {
    /// Only comparable when both sides agree on having a unit.
    fn exceeds(&self, other: &Duration) -> bool {
        self.has_unit == other.has_unit && self.value > other.value
    }
}

/// The first number after the last `timeout` on the line (`timeout = 5`, `timeout(5)`,
/// `setTimeout(1000)`, `testTimeout: 5000`, `-timeout 30s`).
fn timeout_value(text: &str) -> Option<Duration> {
    let lower = text.to_ascii_lowercase();
    let at = lower.rfind("timeout")? + "timeout".len();
    let after = &lower[at..];
    let start = after.find(|c: char| c.is_ascii_digit())?;
    if after[..start].chars().any(char::is_alphabetic) {
        return None;
    }
    let digits: String = after[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '_')
        .filter(|c| *c != '_')
        .collect();
    let value: f64 = digits.parse().ok()?;
    let unit: String = after[start + digits.len()..]
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    let scale = match unit.as_str() {
        "ms" => Some(1.0),
        "s" | "sec" | "secs" => Some(1000.0),
        "m" | "min" | "mins" => Some(60_000.0),
        "h" => Some(3_600_000.0),
        _ => None,
    };
    Some(Duration {
        value: value * scale.unwrap_or(1.0),
        has_unit: scale.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_timeout_values() {
        let v = |t: &str| timeout_value(t).map(|d| (d.value, d.has_unit));
        assert_eq!(v("timeout = 5"), Some((5.0, false)));
        assert_eq!(v("@pytest.mark.timeout(300)"), Some((300.0, false)));
        assert_eq!(v("  jest.setTimeout(10_000);"), Some((10_000.0, false)));
        assert_eq!(v("go test -timeout 2m ./..."), Some((120_000.0, true)));
        assert_eq!(v("slow-timeout = \"30s\""), Some((30_000.0, true)));
        assert_eq!(v("def on_timeout(self, n=3):"), None);
    }

    #[test]
    fn finds_json_sections_by_depth() {
        let diff = "diff --git a/package.json b/package.json\n--- a/package.json\n+++ b/package.json\n\
                    @@ -1,5 +1,5 @@\n {\n   \"scripts\": {\n     \"build\": \"tsc\",\n-    \"test\": \"jest\"\n\
                    +    \"test\": \"jest || true\"\n   },\n";
        let files = crate::gate::red_flags::diff::parse(diff);
        let mut flags = Vec::new();
        gate_config(&files[0], &mut flags);
        assert_eq!(flags.len(), 1);
        assert_eq!(flags[0].line, Some(4));
        assert!(
            flags[0].detail.contains("\"scripts\""),
            "{}",
            flags[0].detail
        );
    }
}
