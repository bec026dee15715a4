//! Jest and Vitest default reporters.
//!
//! Jest prints `FAIL src/x.test.js`, then one `  ● Suite › test` block per failure (message,
//! diff, code frame, `at fn (file:line:col)` stack). Vitest prints a `FAIL  file > suite > test`
//! header per failure, the error, `❯ file:line:col` frames, and a `⎯⎯⎯[1/6]⎯` separator. Colour
//! codes are already stripped; after that, coloured jest and vitest differ only in those shapes.

use super::classify::test_failure;
use super::dispatch::{Finding, LineParser};
use super::text::{first_line, join_trimmed, looks_like_file, split_location, Draft};
use crate::gate::{Failure, FailureKind};

/// Lines of a block searched for classification phrases (the message, not the code frame).
const DETAIL_LINES: usize = 8;

/// The first project frame of a JS stack (`at fn (file:l:c)`, `at file:l:c`, `❯ fn file:l:c`),
/// skipping `node_modules` and Node internals: the innermost place the agent can change.
pub(crate) fn first_js_location<'a>(lines: &[&'a str]) -> Option<(&'a str, u32)> {
    lines.iter().find_map(|line| {
        let target = frame_target(line.trim())?;
        let target = target.strip_prefix("file://").unwrap_or(target);
        let loc = split_location(target)?;
        let internal = loc.path.contains("node_modules")
            || loc.path.starts_with("node:")
            || loc.path.starts_with("internal/");
        (loc.col.is_some() && !internal).then_some((loc.path, loc.line))
    })
}

fn frame_target(line: &str) -> Option<&str> {
    if let Some(at) = line.strip_prefix("at ") {
        return Some(match at.rsplit_once('(') {
            Some((_, inner)) => inner.strip_suffix(')').unwrap_or(inner),
            None => at,
        });
    }
    line.strip_prefix("❯ ")?.split_whitespace().last()
}

/// A failure block common to both reporters.
struct Block {
    file: Option<String>,
    test_id: Option<String>,
    lines: Vec<String>,
}

fn block_failure(tool: &'static str, block: &Block) -> Failure {
    let lines: Vec<&str> = block.lines.iter().map(String::as_str).collect();
    let text = join_trimmed(&lines);
    let message = first_line(&text);
    let detail: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty())
        .take(DETAIL_LINES)
        .collect();
    let default = match block.test_id {
        Some(_) => FailureKind::Error,
        None => FailureKind::Compile,
    };
    let kind = test_failure(message, &detail.join("\n"), default);
    let (file, line) = match first_js_location(&lines) {
        Some((file, line)) => (Some(file), Some(line)),
        None => (block.file.as_deref(), None),
    };
    Draft::new(tool, kind)
        .at(file, line)
        .test(block.test_id.clone())
        .message(message)
        .excerpt(&text)
        .build()
}

#[derive(Default)]
pub(crate) struct Jest {
    suite: Option<String>,
    block: Option<Block>,
}

impl LineParser for Jest {
    fn line(&mut self, line: &str, out: &mut Vec<Finding>) {
        let trimmed = line.trim();
        if let Some(path) = jest_suite(trimmed) {
            self.close(out);
            self.suite = Some(path.to_string());
        } else if let Some(name) = line.strip_prefix("  ● ") {
            self.close(out);
            if !name.starts_with("Console") {
                self.block = Some(self.open(name.trim()));
            }
        } else if is_jest_summary(trimmed) {
            self.close(out);
        } else if let Some(block) = &mut self.block {
            block.lines.push(line.to_string());
        }
    }

    fn finish(&mut self, out: &mut Vec<Finding>) {
        self.close(out);
    }
}

impl Jest {
    fn open(&self, name: &str) -> Block {
        let test_id = match (name, &self.suite) {
            ("Test suite failed to run", _) => None,
            (name, Some(suite)) => Some(format!("{suite} › {name}")),
            (name, None) => Some(name.to_string()),
        };
        Block {
            file: self.suite.clone(),
            test_id,
            lines: Vec::new(),
        }
    }

    fn close(&mut self, out: &mut Vec<Finding>) {
        if let Some(block) = self.block.take() {
            out.push(Finding::error(block_failure("jest", &block)));
        }
    }
}

/// `FAIL src/x.test.js` / `PASS src/x.test.js (5 s)`, but not vitest's `FAIL  a > b` headers.
fn jest_suite(trimmed: &str) -> Option<&str> {
    let rest = trimmed
        .strip_prefix("FAIL ")
        .or_else(|| trimmed.strip_prefix("PASS "))?
        .trim();
    let path = rest.split_whitespace().next()?;
    let vitest = rest.contains(" > ") || rest.contains(" [ ");
    (!vitest && looks_like_file(path)).then_some(path)
}

fn is_jest_summary(trimmed: &str) -> bool {
    trimmed.starts_with("Test Suites:")
        || trimmed.starts_with("Tests:")
        || trimmed.starts_with("Summary of all failing tests")
}

#[derive(Default)]
pub(crate) struct Vitest {
    block: Option<Block>,
}

impl LineParser for Vitest {
    fn line(&mut self, line: &str, out: &mut Vec<Finding>) {
        let trimmed = line.trim();
        if let Some(block) = trimmed.strip_prefix("FAIL ").and_then(vitest_header) {
            self.close(out);
            self.block = Some(block);
        } else if trimmed.starts_with('⎯') || trimmed.starts_with("Test Files ") {
            self.close(out);
        } else if let Some(block) = &mut self.block {
            block.lines.push(line.to_string());
        }
    }

    fn finish(&mut self, out: &mut Vec<Finding>) {
        self.close(out);
    }
}

impl Vitest {
    fn close(&mut self, out: &mut Vec<Finding>) {
        if let Some(block) = self.block.take() {
            out.push(Finding::error(block_failure("vitest", &block)));
        }
    }
}

/// `src/x.test.ts > suite > test` (a test) or `src/x.test.ts [ src/x.test.ts ]` (a suite).
fn vitest_header(rest: &str) -> Option<Block> {
    let rest = rest.trim();
    if rest.contains(" > ") {
        let parts: Vec<&str> = rest.split(" > ").map(str::trim).collect();
        return Some(Block {
            file: parts.first().map(|f| f.to_string()),
            test_id: Some(parts.join(" > ")),
            lines: Vec::new(),
        });
    }
    let (file, _) = rest.strip_suffix(" ]")?.split_once(" [ ")?;
    Some(Block {
        file: Some(file.to_string()),
        test_id: None,
        lines: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_project_frames() {
        let lines = [
            "at Resolver._throw (../node_modules/jest-resolve/build/index.js:1031:11)",
            "at Array.map (<anonymous>)",
            "at Object.require (src/other.test.js:1:17)",
        ];
        assert_eq!(first_js_location(&lines), Some(("src/other.test.js", 1)));
        assert_eq!(
            first_js_location(&["❯ parse src/math.ts:2:74"]),
            Some(("src/math.ts", 2))
        );
        assert_eq!(first_js_location(&["at node:internal/x:1:2"]), None);
    }

    #[test]
    fn tells_jest_suites_from_vitest_headers() {
        assert_eq!(jest_suite("FAIL src/a.test.js"), Some("src/a.test.js"));
        assert_eq!(
            jest_suite("PASS src/a.test.js (5.1 s)"),
            Some("src/a.test.js")
        );
        assert_eq!(jest_suite("FAIL  src/a.test.ts > s > t"), None);
        assert_eq!(jest_suite("FAIL\texample.com/calc\t0.004s"), None);
        let block = vitest_header("src/a.test.ts > s > t").expect("header");
        assert_eq!(block.test_id.as_deref(), Some("src/a.test.ts > s > t"));
        assert!(
            vitest_header("src/b.test.ts [ src/b.test.ts ]").is_some_and(|b| b.test_id.is_none())
        );
    }
}
