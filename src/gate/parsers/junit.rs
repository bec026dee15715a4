//! JUnit XML reports (pytest `--junitxml`, vitest/jest junit reporters, Maven, Gradle ...).
//!
//! Reports are usually one long line with embedded newlines, so this parser buffers from the
//! first `<testsuite`/`<testcase` and scans each prefix that ends with `</testcase>`: every
//! test case before that point is complete (test cases do not nest).

use super::classify::test_failure;
use super::dispatch::{Finding, LineParser};
use super::js_test::first_js_location;
use super::pytest::crash_location;
use super::text::{first_line, head_and_tail, join_trimmed, Draft};
use super::xml::{attr, tokens, Token};
use crate::gate::{Failure, FailureKind, MAX_EXCERPT_CHARS};

const TOOL: &str = "junit";
const CASE_END: &str = "</testcase>";

#[derive(Default)]
pub(crate) struct Junit {
    active: bool,
    buf: String,
    /// Set by `<testsuite name="pytest">`: pytest class names need a different id mapping.
    pytest: bool,
    case: Option<Case>,
}

#[derive(Default)]
struct Case {
    classname: String,
    name: String,
    file: Option<String>,
    line: Option<u32>,
    problem: Option<Problem>,
    capturing: bool,
}

struct Problem {
    error: bool,
    message: String,
    kind: Option<String>,
    text: String,
}

impl LineParser for Junit {
    fn line(&mut self, line: &str, out: &mut Vec<Finding>) {
        if !(self.active || line.contains("<testsuite") || line.contains("<testcase")) {
            return;
        }
        self.active = true;
        self.buf.push_str(line);
        self.buf.push('\n');
        if let Some(end) = self.buf.rfind(CASE_END) {
            let complete: String = self.buf.drain(..end + CASE_END.len()).collect();
            self.scan(&complete, out);
        }
        if self.buf.contains("</testsuites>") {
            // End of one report; another may follow (several report files concatenated).
            self.flush(out);
            self.active = false;
            self.pytest = false;
        }
    }

    fn finish(&mut self, out: &mut Vec<Finding>) {
        self.flush(out);
    }
}

impl Junit {
    fn flush(&mut self, out: &mut Vec<Finding>) {
        let rest = std::mem::take(&mut self.buf);
        self.scan(&rest, out);
    }

    fn scan(&mut self, xml: &str, out: &mut Vec<Finding>) {
        for token in tokens(xml) {
            self.token(token, out);
        }
    }

    fn token(&mut self, token: Token<'_>, out: &mut Vec<Finding>) {
        match token {
            Token::Start {
                name,
                attrs,
                self_closing,
            } => match name {
                "testsuite" | "testsuites" => {
                    let suite = attr(&attrs, "name").unwrap_or("");
                    self.pytest |= suite == "pytest" || suite == "pytest tests";
                }
                "testcase" => {
                    self.case = Some(new_case(&attrs));
                    if self_closing {
                        self.end_case(out);
                    }
                }
                "failure" | "error" => self.start_problem(name == "error", &attrs, self_closing),
                _ => {}
            },
            Token::End { name } => match name {
                "testcase" => self.end_case(out),
                "failure" | "error" => self.set_capturing(false),
                _ => {}
            },
            Token::Text(text) => self.text(&text),
        }
    }

    fn start_problem(&mut self, error: bool, attrs: &[(&str, String)], self_closing: bool) {
        let Some(case) = &mut self.case else { return };
        if case.problem.is_some() {
            return;
        }
        case.problem = Some(Problem {
            error,
            message: attr(attrs, "message").unwrap_or("").to_string(),
            kind: attr(attrs, "type").map(str::to_string),
            text: String::new(),
        });
        case.capturing = !self_closing;
    }

    fn set_capturing(&mut self, on: bool) {
        if let Some(case) = &mut self.case {
            case.capturing = on;
        }
    }

    fn text(&mut self, text: &str) {
        let Some(case) = &mut self.case else { return };
        if let (true, Some(problem)) = (case.capturing, &mut case.problem) {
            problem.text.push_str(text);
        }
    }

    fn end_case(&mut self, out: &mut Vec<Finding>) {
        let Some(case) = self.case.take() else { return };
        if let Some(problem) = &case.problem {
            out.push(Finding::error(case_failure(&case, problem, self.pytest)));
        }
    }
}

fn new_case(attrs: &[(&str, String)]) -> Case {
    Case {
        classname: attr(attrs, "classname").unwrap_or("").to_string(),
        name: attr(attrs, "name").unwrap_or("").to_string(),
        file: attr(attrs, "file").map(str::to_string),
        line: attr(attrs, "line").and_then(|l| l.parse().ok()),
        ..Case::default()
    }
}

fn case_failure(case: &Case, problem: &Problem, pytest: bool) -> Failure {
    let text = join_trimmed(&problem.text.lines().collect::<Vec<_>>());
    let message = match first_line(&problem.message) {
        "" => first_line(&text),
        m => m,
    };
    let (file, line) = locate(case, &text);
    Draft::new(TOOL, kind(problem, message, &text))
        .at(file, line)
        .test(test_id(case, pytest))
        .message(message)
        .excerpt(&head_and_tail(
            &[if text.is_empty() { message } else { &text }],
            MAX_EXCERPT_CHARS,
        ))
        .build()
}

/// The crash site from the failure text (pytest or JS stack), else the test case's attributes.
fn locate<'a>(case: &'a Case, text: &'a str) -> (Option<&'a str>, Option<u32>) {
    let lines: Vec<&str> = text.lines().collect();
    match crash_location(text).or_else(|| first_js_location(&lines)) {
        Some((file, line)) => (Some(file), Some(line)),
        None => (case.file.as_deref(), case.line),
    }
}

/// `failure` means a failed check; `error` an unexpected exception. The exception type (from
/// the `type` attribute or the message's `SomeError:` prefix) refines that.
fn kind(problem: &Problem, message: &str, text: &str) -> FailureKind {
    let exc = problem
        .kind
        .as_deref()
        .or_else(|| exception_prefix(message))
        .unwrap_or("");
    let default = if problem.error || !exc.is_empty() {
        FailureKind::Error
    } else {
        FailureKind::Assertion
    };
    let subject = if exc.contains("Assertion") {
        exc
    } else {
        message
    };
    test_failure(subject, text, default)
}

/// `ZeroDivisionError` in `ZeroDivisionError: division by zero`.
fn exception_prefix(message: &str) -> Option<&str> {
    let (head, _) = message.split_once(':')?;
    let ident = head
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '.');
    (ident && (head.ends_with("Error") || head.ends_with("Exception"))).then_some(head)
}

/// Ids in the form the originating tool prints, so `rerun_argv` and humans can use them. A
/// case named after its class is a suite-level error (vitest: module failed to load): no test.
fn test_id(case: &Case, pytest: bool) -> Option<String> {
    let (class, name) = (case.classname.as_str(), case.name.as_str());
    if class == name {
        return None;
    }
    Some(if class.contains('/') || is_js_file(class) {
        format!("{class} > {name}")
    } else if pytest || case.file.as_deref().is_some_and(|f| f.ends_with(".py")) {
        pytest_node(class, name, case.file.as_deref())
    } else if class.is_empty() {
        name.to_string()
    } else {
        format!("{class}.{name}")
    })
}

fn is_js_file(s: &str) -> bool {
    [".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs"]
        .iter()
        .any(|ext| s.ends_with(ext))
}

/// `tests.test_params.TestMath` + `test_x` -> `tests/test_params.py::TestMath::test_x`. Without
/// a `file` attribute, class parts are the segments from the first capitalised one on.
fn pytest_node(classname: &str, name: &str, file: Option<&str>) -> String {
    let segments: Vec<&str> = classname.split('.').filter(|s| !s.is_empty()).collect();
    let module_len = match file {
        Some(f) => f.trim_end_matches(".py").split('/').count(),
        None => segments
            .iter()
            .position(|s| s.starts_with(char::is_uppercase))
            .unwrap_or(segments.len()),
    };
    let module_len = module_len.min(segments.len());
    let file = file.map_or_else(
        || format!("{}.py", segments[..module_len].join("/")),
        str::to_string,
    );
    let mut parts = vec![file];
    parts.extend(segments[module_len..].iter().map(|s| s.to_string()));
    parts.push(name.to_string());
    parts.join("::")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::parse_output;

    #[test]
    fn maps_ids_per_producer() {
        assert_eq!(
            pytest_node("tests.test_p.TestM", "test_x[1]", None),
            "tests/test_p.py::TestM::test_x[1]"
        );
        assert_eq!(
            pytest_node("tests.test_p.TestM", "test_x", Some("tests/test_p.py")),
            "tests/test_p.py::TestM::test_x"
        );
        let case = Case {
            classname: "com.acme.FooTest".into(),
            name: "bar".into(),
            ..Case::default()
        };
        assert_eq!(
            test_id(&case, false).as_deref(),
            Some("com.acme.FooTest.bar")
        );
    }

    #[test]
    fn parses_a_multiline_maven_style_report() {
        let xml = "<testsuite name=\"FooTest\">\n<testcase classname=\"FooTest\" name=\"ok\"/>\n\
                   <testcase classname=\"FooTest\" name=\"bad\">\n\
                   <failure message=\"expected:&lt;1&gt; but was:&lt;2&gt;\" \
                   type=\"org.opentest4j.AssertionFailedError\">trace</failure>\n\
                   </testcase>\n<testcase classname=\"FooTest\" name=\"npe\">\
                   <error type=\"java.lang.NullPointerException\"/></testcase>\n</testsuite>\n";
        let f = parse_output(xml, 1);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].message, "expected:<1> but was:<2>");
        assert_eq!(f[0].kind, FailureKind::Assertion);
        assert_eq!(f[1].test_id.as_deref(), Some("FooTest.npe"));
        assert_eq!(f[1].kind, FailureKind::Error);
    }
}
