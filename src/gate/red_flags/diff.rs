//! A unified diff reader (`git diff --binary` output, also plain `diff -u`).
//!
//! Hunk bodies are consumed by their line counts rather than by prefix, so content lines that
//! happen to start with `diff --git` or `---` are never mistaken for headers. Binary patches are
//! skipped: only their existence, paths and status matter for red flags.

/// How a diff line relates to the two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Context,
    Added,
    Removed,
}

#[derive(Debug, Clone)]
pub(crate) struct DiffLine {
    pub change: Change,
    pub text: String,
    pub old: Option<u32>,
    pub new: Option<u32>,
}

impl DiffLine {
    /// The line number to cite: the new file's where the line exists there, else the old one's.
    pub(crate) fn cite(&self) -> Option<u32> {
        self.new.or(self.old)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Hunk {
    /// The text after the second `@@` (git's enclosing-function guess).
    pub context: String,
    pub lines: Vec<DiffLine>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct FileDiff {
    pub old_path: Option<String>,
    pub new_path: Option<String>,
    pub added: bool,
    pub deleted: bool,
    pub binary: bool,
    pub hunks: Vec<Hunk>,
}

impl FileDiff {
    /// The path to cite: the new one, or the old one for deletions.
    pub(crate) fn path(&self) -> &str {
        self.new_path
            .as_deref()
            .or(self.old_path.as_deref())
            .unwrap_or("")
    }

    pub(crate) fn lines(&self) -> impl Iterator<Item = &DiffLine> {
        self.hunks.iter().flat_map(|h| h.lines.iter())
    }
}

/// Remaining line counts of the hunk being read, plus the next line numbers.
struct Cursor {
    old_left: u32,
    new_left: u32,
    old_no: u32,
    new_no: u32,
}

/// Parse every file section of a diff.
pub(crate) fn parse(diff: &str) -> Vec<FileDiff> {
    let mut files: Vec<FileDiff> = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for line in diff.lines() {
        if let Some(c) = cursor.as_mut().filter(|c| c.old_left > 0 || c.new_left > 0) {
            if let Some(file) = files.last_mut() {
                body_line(file, c, line);
            }
            continue;
        }
        cursor = None;
        if let Some(rest) = line.strip_prefix("diff --git ") {
            files.push(git_header(rest));
        } else if let Some(h) = line.strip_prefix("@@ ") {
            cursor = start_hunk(&mut files, h);
        } else {
            header_line(&mut files, line);
        }
    }
    files
}

fn body_line(file: &mut FileDiff, c: &mut Cursor, line: &str) {
    let (change, text) = match line.chars().next() {
        Some('+') => (Change::Added, &line[1..]),
        Some('-') => (Change::Removed, &line[1..]),
        Some('\\') => return,
        Some(' ') => (Change::Context, &line[1..]),
        _ => (Change::Context, line),
    };
    let old = (change != Change::Added).then_some(c.old_no);
    let new = (change != Change::Removed).then_some(c.new_no);
    if old.is_some() {
        c.old_no += 1;
        c.old_left = c.old_left.saturating_sub(1);
    }
    if new.is_some() {
        c.new_no += 1;
        c.new_left = c.new_left.saturating_sub(1);
    }
    if let Some(hunk) = file.hunks.last_mut() {
        hunk.lines.push(DiffLine {
            change,
            text: text.to_string(),
            old,
            new,
        });
    }
}

/// `@@ -a,b +c,d @@ context`.
fn start_hunk(files: &mut Vec<FileDiff>, header: &str) -> Option<Cursor> {
    let (ranges, context) = header.split_once(" @@").unwrap_or((header, ""));
    let mut parts = ranges.split_whitespace();
    let (old_no, old_left) = range(parts.next()?.strip_prefix('-')?)?;
    let (new_no, new_left) = range(parts.next()?.strip_prefix('+')?)?;
    if files.is_empty() {
        files.push(FileDiff::default());
    }
    let file = files.last_mut()?;
    file.hunks.push(Hunk {
        context: context.trim().to_string(),
        lines: Vec::new(),
    });
    Some(Cursor {
        old_left,
        new_left,
        old_no,
        new_no,
    })
}

/// `12,3` or `12` (count 1).
fn range(s: &str) -> Option<(u32, u32)> {
    match s.split_once(',') {
        Some((start, count)) => Some((start.parse().ok()?, count.parse().ok()?)),
        None => Some((s.parse().ok()?, 1)),
    }
}

fn header_line(files: &mut Vec<FileDiff>, line: &str) {
    // Plain `diff -u` output has no `diff --git` line: `---` after a hunk starts a new file.
    if line.starts_with("--- ") && files.last().map_or(true, |f| !f.hunks.is_empty()) {
        files.push(FileDiff::default());
    }
    let Some(file) = files.last_mut() else { return };
    if let Some(p) = line.strip_prefix("--- ") {
        file.old_path = side_path(p);
    } else if let Some(p) = line.strip_prefix("+++ ") {
        file.new_path = side_path(p);
    } else if let Some(p) = line.strip_prefix("rename from ") {
        file.old_path = Some(unquote(p));
    } else if let Some(p) = line.strip_prefix("rename to ") {
        file.new_path = Some(unquote(p));
    } else if line.starts_with("deleted file mode") {
        file.deleted = true;
        file.new_path = None;
    } else if line.starts_with("new file mode") {
        file.added = true;
        file.old_path = None;
    } else if line.starts_with("GIT binary patch") || line.starts_with("Binary files ") {
        file.binary = true;
    }
}

/// `a/path`, `"a/quoted path"`, `/dev/null`, possibly followed by a tab and a timestamp.
fn side_path(p: &str) -> Option<String> {
    let p = p.split('\t').next().unwrap_or(p);
    if p == "/dev/null" {
        return None;
    }
    let p = unquote(p);
    Some(
        match p.strip_prefix("a/").or_else(|| p.strip_prefix("b/")) {
            Some(rest) => rest.to_string(),
            None => p,
        },
    )
}

/// `a/x b/x` from `diff --git a/x b/x`; when both sides are equal the split is unambiguous even
/// with spaces in the name.
fn git_header(rest: &str) -> FileDiff {
    let (old, new) = if rest.starts_with('"') {
        quoted_pair(rest)
    } else {
        let half = rest.len().saturating_sub(1) / 2;
        match (rest.get(..half), rest.get(half..)) {
            (Some(a), Some(b)) if b.strip_prefix(' ').is_some_and(|b| side_eq(a, b)) => {
                (a.to_string(), b[1..].to_string())
            }
            _ => match rest.split_once(" b/") {
                Some((a, b)) => (a.to_string(), format!("b/{b}")),
                None => (rest.to_string(), rest.to_string()),
            },
        }
    };
    FileDiff {
        old_path: side_path(&old),
        new_path: side_path(&new),
        ..FileDiff::default()
    }
}

fn side_eq(a: &str, b: &str) -> bool {
    a.get(2..).is_some_and(|x| b.get(2..) == Some(x))
}

fn quoted_pair(rest: &str) -> (String, String) {
    let end = rest[1..].find("\" ").map_or(rest.len(), |i| i + 2);
    let (a, b) = rest.split_at(end.min(rest.len()));
    (a.to_string(), b.trim_start().to_string())
}

/// Undo git's C-style quoting of unusual file names (`"a/caf\303\251.py"`).
fn unquote(p: &str) -> String {
    let Some(inner) = p.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return p.to_string();
    };
    let mut bytes = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => bytes.push(b'\n'),
            Some('t') => bytes.push(b'\t'),
            Some(d @ '0'..='7') => {
                let digits: String = std::iter::once(d).chain(chars.by_ref().take(2)).collect();
                bytes.push(u8::from_str_radix(&digits, 8).unwrap_or(b'?'));
            }
            Some(other) => bytes.push(u8::try_from(other).unwrap_or(b'?')),
            None => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hunks_with_line_numbers() {
        let diff = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -2,3 +2,3 @@ def f():\n \
                    a\n-b\n+c\n d\n";
        let files = parse(diff);
        assert_eq!(files.len(), 1);
        let lines: Vec<_> = files[0].lines().map(|l| (l.change, l.old, l.new)).collect();
        assert_eq!(
            lines,
            vec![
                (Change::Context, Some(2), Some(2)),
                (Change::Removed, Some(3), None),
                (Change::Added, None, Some(3)),
                (Change::Context, Some(4), Some(4)),
            ]
        );
        assert_eq!(files[0].hunks[0].context, "def f():");
    }

    #[test]
    fn content_that_looks_like_headers_stays_content() {
        let diff = "diff --git a/n.txt b/n.txt\n--- a/n.txt\n+++ b/n.txt\n@@ -1,1 +1,1 @@\n\
                    --- a/fake\n+diff --git a/y b/y\n";
        let files = parse(diff);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].lines().count(), 2);
    }

    #[test]
    fn reads_paths_with_spaces_quotes_and_renames() {
        let f = git_header("a/my file.py b/my file.py");
        assert_eq!(f.new_path.as_deref(), Some("my file.py"));
        assert_eq!(unquote("\"a/caf\\303\\251.py\""), "a/café.py");
        let diff = "diff --git a/t/a.py b/t/b.py\nsimilarity index 90%\nrename from t/a.py\n\
                    rename to t/b.py\n";
        let f = &parse(diff)[0];
        assert_eq!(
            (f.old_path.as_deref(), f.path()),
            (Some("t/a.py"), "t/b.py")
        );
    }

    #[test]
    fn plain_unified_diffs_work_too() {
        let diff = "--- a.py\t2024-01-01\n+++ a.py\t2024-01-02\n@@ -1 +1 @@\n-x\n+y\n\
                    --- b.py\n+++ b.py\n@@ -1 +1 @@\n-p\n+q\n";
        let files = parse(diff);
        assert_eq!(files.len(), 2);
        assert_eq!(files[1].path(), "b.py");
    }
}
