//! The one place TOML errors are turned into config errors, for every loader (task spec, policy
//! files, push.toml, models.toml, the daemon's airlock.toml):
//!
//! - the message keeps the shape the toml crate gives it: the sentence, then the line of the file
//!   with a caret under the problem, each on its own line (never folded onto one line);
//! - the field is the dotted path of the key, resolved by TOML's own table rules: the header in
//!   force at the error (a `[[trigger]]` after `[tcp]` is top-level `trigger`, not
//!   `tcp.trigger`), dotted keys (`agent.image = ..`), inline tables (`env = { .. }`), and lines
//!   inside multi-line arrays and strings that only look like headers.

/// A TOML error as a loader reports it: the field it names (if any) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlProblem {
    /// Dotted path of the key the error is about (`agent.image_typo`), when it names one.
    pub field: Option<String>,
    /// The toml crate's message with its source excerpt, multi-line, without a trailing newline.
    pub message: String,
}

/// Describe `e`, an error from deserialising `text`.
pub fn describe(text: &str, e: &toml::de::Error) -> TomlProblem {
    TomlProblem {
        field: error_field(text, e),
        message: e.to_string().trim_end().to_string(),
    }
}

/// The field a toml error names (`unknown field` / `missing field`), qualified by its table.
pub fn error_field(text: &str, e: &toml::de::Error) -> Option<String> {
    let msg = e.message();
    let unknown = msg.starts_with("unknown field");
    if !(unknown || msg.starts_with("missing field")) {
        return None;
    }
    let key = msg.split('`').nth(1)?;
    let Some(span) = e.span() else {
        return Some(key.to_string());
    };
    // An unknown key is reported at the key itself; a missing one at the table that lacks it.
    let mut path = if unknown {
        path_at(text, span.start)
    } else {
        // The span starts at the table's header (`[agent]`): look from just inside it.
        table_at(text, span.start + 1)
    };
    path.push(key.to_string());
    Some(path.join("."))
}

/// The dotted path of `key` at byte offset `at` of `text` (kept for callers that have a key and
/// an offset rather than a toml error).
pub fn qualify(text: &str, at: usize, key: &str) -> String {
    let mut path = path_at(text, at);
    path.push(key.to_string());
    path.join(".")
}

/// The keys enclosing the key that starts at `at` (not including it).
fn path_at(text: &str, at: usize) -> Vec<String> {
    let scan = Scan::new(text, at);
    match scan.header_at {
        // A key inside a header: its parents are the header's segments before it.
        Some(segs) => segs
            .into_iter()
            .filter(|s| s.end <= at)
            .map(|s| s.name)
            .collect(),
        None => {
            let mut path = scan.table;
            path.extend(scan.key_prefix);
            path
        }
    }
}

/// The table in force at `at` (for a header line, the table the header opens).
fn table_at(text: &str, at: usize) -> Vec<String> {
    let scan = Scan::new(text, at);
    match scan.header_at {
        Some(segs) => segs.into_iter().map(|s| s.name).collect(),
        None => {
            let mut path = scan.table;
            path.extend(scan.key_prefix);
            path
        }
    }
}

/// One key of a header or a dotted key, with the byte offset where it ends.
struct Seg {
    name: String,
    end: usize,
}

/// What a scan of `text` up to an offset found.
struct Scan {
    /// Segments of the header in force (`[a.b]` → a, b).
    table: Vec<String>,
    /// When the offset lies on a header line: that header's segments.
    header_at: Option<Vec<Seg>>,
    /// Keys of the assignment(s) and inline tables open at the offset (`x.y = {` → x, y).
    key_prefix: Vec<String>,
}

/// A value open at the scan position: an inline table (whose keys are being read) or an array,
/// with the keys that lead to it.
enum Open {
    Table(Vec<String>),
    Array(Vec<String>),
}

impl Scan {
    fn new(text: &str, at: usize) -> Scan {
        let at = at.min(text.len());
        let mut scan = Scan {
            table: Vec::new(),
            header_at: None,
            key_prefix: Vec::new(),
        };
        let bytes = text.as_bytes();
        let mut open: Vec<Open> = Vec::new();
        let mut line_start = 0;
        let mut i = 0;
        // Keys of the assignment being read (before its `=`), each with where it ends.
        let mut keys: Vec<Seg> = Vec::new();
        let mut expect_key = true;
        while i < at {
            match bytes[i] {
                b'\n' => {
                    line_start = i + 1;
                    if open.is_empty() {
                        keys.clear();
                        expect_key = true;
                    }
                    i += 1;
                }
                b'#' => i = skip_to_eol(bytes, i),
                b'"' | b'\'' => {
                    let (s, next) = read_string(text, i);
                    if expect_key {
                        keys.push(Seg { name: s, end: next });
                    }
                    i = next;
                }
                b'[' if open.is_empty() && expect_key && is_line_start(bytes, line_start, i) => {
                    let (segs, next) = read_header(text, i);
                    if at < next {
                        scan.header_at = Some(segs);
                        return scan;
                    }
                    scan.table = segs.into_iter().map(|s| s.name).collect();
                    i = next;
                }
                b'=' if expect_key => {
                    expect_key = false;
                    let j = skip_spaces(bytes, i + 1);
                    let lead: Vec<String> = keys.drain(..).map(|s| s.name).collect();
                    if j >= at {
                        // The offset is in this value.
                        scan.key_prefix = flat(&open);
                        scan.key_prefix.extend(lead);
                        return scan;
                    }
                    match bytes[j] {
                        b'{' => {
                            open.push(Open::Table(lead));
                            expect_key = true;
                            i = j + 1;
                        }
                        b'[' => {
                            open.push(Open::Array(lead));
                            i = j + 1;
                        }
                        _ => i = j,
                    }
                }
                b'{' => {
                    open.push(Open::Table(Vec::new()));
                    expect_key = true;
                    i += 1;
                }
                b'[' => {
                    open.push(Open::Array(Vec::new()));
                    expect_key = false;
                    i += 1;
                }
                b'}' | b']' => {
                    open.pop();
                    expect_key = false;
                    keys.clear();
                    i += 1;
                }
                b',' => {
                    if matches!(open.last(), Some(Open::Table(_))) {
                        expect_key = true;
                        keys.clear();
                    }
                    i += 1;
                }
                b if expect_key && is_bare_key(b) => {
                    let start = i;
                    while i < bytes.len() && is_bare_key(bytes[i]) {
                        i += 1;
                    }
                    keys.push(Seg {
                        name: text[start..i].to_string(),
                        end: i,
                    });
                }
                _ => i += 1,
            }
        }
        // An error reported at the `[` of a header is about that header's key.
        if open.is_empty()
            && expect_key
            && bytes.get(at) == Some(&b'[')
            && is_line_start(bytes, line_start, at)
        {
            scan.header_at = Some(read_header(text, at).0);
            return scan;
        }
        // The offset is at a key: the keys before it, inside the open inline tables.
        scan.key_prefix = flat(&open);
        scan.key_prefix
            .extend(keys.into_iter().filter(|k| k.end <= at).map(|k| k.name));
        scan
    }
}

fn flat(open: &[Open]) -> Vec<String> {
    open.iter()
        .flat_map(|o| match o {
            Open::Table(k) | Open::Array(k) => k.iter().cloned(),
        })
        .collect()
}

fn is_bare_key(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_line_start(bytes: &[u8], line_start: usize, i: usize) -> bool {
    bytes[line_start..i]
        .iter()
        .all(|b| *b == b' ' || *b == b'\t')
}

fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
        i += 1;
    }
    i
}

fn skip_to_eol(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i] != b'\n' {
        i += 1;
    }
    i
}

/// A basic or literal string starting at `i` (single- or multi-line): its text (escapes kept
/// as written, which is enough for key names) and the offset after it.
fn read_string(text: &str, i: usize) -> (String, usize) {
    let bytes = text.as_bytes();
    let q = bytes[i];
    let triple = bytes.get(i..i + 3) == Some(&[q, q, q][..]);
    let open = if triple { 3 } else { 1 };
    let mut j = i + open;
    while j < bytes.len() {
        if q == b'"' && bytes[j] == b'\\' {
            j += 2;
            continue;
        }
        if bytes[j] == q && (!triple || bytes.get(j..j + 3) == Some(&[q, q, q][..])) {
            let body = text.get(i + open..j).unwrap_or("").to_string();
            let mut end = j + open;
            // A multi-line string may end with up to two more quotes that belong to it.
            while triple && end < bytes.len() && bytes[end] == q {
                end += 1;
            }
            return (body, end);
        }
        if !triple && bytes[j] == b'\n' {
            break;
        }
        j += 1;
    }
    (text.get(i + open..j).unwrap_or("").to_string(), j)
}

/// A `[a.b]` or `[[a."b c"]]` header at `i`: its segments and the offset after it.
fn read_header(text: &str, i: usize) -> (Vec<Seg>, usize) {
    let bytes = text.as_bytes();
    let mut j = i;
    while j < bytes.len() && bytes[j] == b'[' {
        j += 1;
    }
    let mut segs = Vec::new();
    while j < bytes.len() && bytes[j] != b'\n' {
        match bytes[j] {
            b']' => {
                while j < bytes.len() && bytes[j] == b']' {
                    j += 1;
                }
                return (segs, j);
            }
            b'"' | b'\'' => {
                let (s, next) = read_string(text, j);
                segs.push(Seg { name: s, end: next });
                j = next;
            }
            b if is_bare_key(b) => {
                let start = j;
                while j < bytes.len() && is_bare_key(bytes[j]) {
                    j += 1;
                }
                segs.push(Seg {
                    name: text[start..j].to_string(),
                    end: j,
                });
            }
            _ => j += 1,
        }
    }
    (segs, j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        title: Option<String>,
        tcp: Option<Tcp>,
        agent: Option<Agent>,
        #[serde(default)]
        trigger: Vec<Trigger>,
        #[serde(default)]
        commands: Vec<Vec<String>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Tcp {
        listen: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Agent {
        image: String,
        env: Option<Env>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Env {
        mode: Option<String>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Trigger {
        label: String,
    }

    fn problem(text: &str) -> TomlProblem {
        let e = toml::from_str::<Config>(text).unwrap_err();
        describe(text, &e)
    }

    fn field(text: &str) -> String {
        problem(text).field.unwrap_or_default()
    }

    #[test]
    fn unknown_keys_are_named_with_their_table() {
        assert_eq!(
            field("[agent]\nimage = \"i\"\nimage_typo = 1\n"),
            "agent.image_typo"
        );
        assert_eq!(field("bogus = 1\n"), "bogus");
        assert_eq!(field("[tcp]\nlisten = \"x\"\nport = 1\n"), "tcp.port");
    }

    #[test]
    fn a_top_level_array_of_tables_after_a_table_is_top_level() {
        // Config has `trigger`, so an unknown key in it is trigger.x, not tcp.trigger.x.
        let text = "[tcp]\nlisten = \"x\"\n\n[[trigger]]\nlabel = \"a\"\nlabl = \"b\"\n";
        assert_eq!(field(text), "trigger.labl");
        // An unknown top-level array of tables after [tcp] is `triggers`, not `tcp.triggers`.
        let text = "[tcp]\nlisten = \"x\"\n\n[[triggers]]\nlabel = \"a\"\n";
        assert_eq!(field(text), "triggers");
        let text = "[tcp]\nlisten = \"x\"\n\n[tcpx]\nlabel = \"a\"\n";
        assert_eq!(field(text), "tcpx");
    }

    #[test]
    fn dotted_keys_and_inline_tables() {
        assert_eq!(
            field("agent.image = \"i\"\nagent.imagex = 1\n"),
            "agent.imagex"
        );
        assert_eq!(
            field("[agent]\nimage = \"i\"\nenv = { mode = \"a\", other = \"b\" }\n"),
            "agent.env.other"
        );
    }

    #[test]
    fn lines_inside_arrays_and_strings_are_not_headers() {
        let text = "commands = [\n  [\"pytest\"],\n  [\"ruff\"],\n]\ntitle = \"\"\"\n[agent]\n\"\"\"\nbogus = 1\n";
        assert_eq!(field(text), "bogus");
    }

    #[test]
    fn missing_keys_are_named_with_the_table_that_lacks_them() {
        assert_eq!(field("[agent]\nenv = {}\n"), "agent.image");
        assert_eq!(field("[tcp]\n"), "tcp.listen");
    }

    #[test]
    fn the_message_keeps_its_snippet_and_caret_on_their_own_lines() {
        let p = problem("[agent]\nimage = \"i\"\nimage_typo = 1\n");
        let lines: Vec<&str> = p.message.lines().collect();
        assert!(lines.len() >= 4, "{}", p.message);
        assert!(
            p.message.contains("unknown field `image_typo`"),
            "{}",
            p.message
        );
        let snippet = lines
            .iter()
            .position(|l| l.contains("image_typo = 1"))
            .unwrap();
        let caret = lines[snippet + 1];
        assert!(
            caret.trim_start_matches([' ', '|']).starts_with('^'),
            "{}",
            p.message
        );
        // The caret sits under the key.
        let col = lines[snippet].find("image_typo").unwrap();
        assert_eq!(caret.find('^'), Some(col), "{}", p.message);
        assert!(!p.message.ends_with('\n'));
    }

    #[test]
    fn qualify_names_a_key_at_an_offset() {
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
