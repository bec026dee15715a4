//! Tests against real tool output captured in `tests/fixtures/gate/` (see its README for the
//! exact commands and versions). Every fixture file must be listed in [`CHECKED`], so a new
//! capture cannot be added without assertions.

mod diffs;
mod tools;

use super::{parse_output, rerun_argv, Failure, StreamParser};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gate");

/// Gate output fixtures and the exit code the command returned.
const OUTPUTS: &[(&str, i64)] = &[
    ("cargo-test/failing.txt", 101),
    ("cargo-test/failing_backtrace.txt", 101),
    ("cargo-test/failing_run2.txt", 101),
    ("cargo-test/integration.txt", 101),
    ("cargo-test/integration_run2.txt", 101),
    ("cargo-test/passing.txt", 0),
    ("clippy/deny_warnings.jsonl", 101),
    ("clippy/deny_warnings.txt", 101),
    ("generic/command_not_found.txt", 127),
    ("generic/curl_resolve.txt", 6),
    ("generic/permission_denied.txt", 126),
    ("generic/pip_offline.txt", 1),
    ("generic/unrecognised.txt", 2),
    ("go/compile_error.jsonl", 2),
    ("go/compile_error.txt", 2),
    ("go/json.jsonl", 1),
    ("go/plain.txt", 1),
    ("go/timeout.jsonl", 1),
    ("go/timeout.txt", 1),
    ("go/verbose.txt", 1),
    ("jest/failing.txt", 1),
    ("junit/pytest.xml", 1),
    ("junit/pytest_xunit1.xml", 1),
    ("junit/vitest.xml", 1),
    ("lint/eslint_compact.txt", 1),
    ("lint/eslint_stylish.txt", 1),
    ("lint/eslint_unix.txt", 1),
    ("lint/flake8.txt", 1),
    ("lint/ruff_concise.txt", 1),
    ("lint/ruff_full.txt", 1),
    ("lint/tsc.txt", 2),
    ("lint/tsc_pretty.txt", 2),
    ("pytest/assertion_q.txt", 1),
    ("pytest/assertion_rA.txt", 1),
    ("pytest/class_param.txt", 1),
    ("pytest/collection_error.txt", 2),
    ("pytest/flaky_run1.txt", 1),
    ("pytest/flaky_run2.txt", 1),
    ("pytest/network.txt", 1),
    ("pytest/passing.txt", 0),
    ("pytest/timeout.txt", 1),
    ("rustc/cargo_test_compile_error.txt", 101),
    ("rustc/human.txt", 101),
    ("rustc/json.jsonl", 101),
    ("vitest/failing.txt", 1),
    ("vitest/failing_nocolor.txt", 1),
];

pub(super) fn fixture(rel: &str) -> String {
    let path = format!("{ROOT}/{rel}");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {path}: {e}; fixtures are checked in"))
}

fn exit_code(rel: &str) -> i64 {
    OUTPUTS.iter().find(|(name, _)| *name == rel).map_or_else(
        || panic!("{rel} is not listed in OUTPUTS"),
        |(_, code)| *code,
    )
}

pub(super) fn parse(rel: &str) -> Vec<Failure> {
    parse_output(&fixture(rel), exit_code(rel))
}

/// `tool kind file:line test_id` with `-` for an absent file or test id: one line per failure,
/// so a mismatch reads like a diff.
pub(super) fn describe(f: &Failure) -> String {
    let loc = match (&f.file, f.line) {
        (Some(file), Some(line)) => format!("{file}:{line}"),
        (Some(file), None) => file.clone(),
        (None, _) => "-".to_string(),
    };
    let id = f.test_id.as_deref().unwrap_or("-");
    format!("{} {} {loc} {id}", f.tool, f.kind.as_str())
}

pub(super) fn check(rel: &str, want: &[&str]) -> Vec<Failure> {
    let failures = parse(rel);
    let got: Vec<String> = failures.iter().map(describe).collect();
    assert_eq!(got, want, "{rel}");
    failures
}

pub(super) fn messages(failures: &[Failure]) -> Vec<&str> {
    failures.iter().map(|f| f.message.as_str()).collect()
}

pub(super) fn signatures(rel: &str) -> Vec<String> {
    parse(rel).into_iter().map(|f| f.signature).collect()
}

#[test]
fn every_fixture_is_checked() {
    let mut found = Vec::new();
    for dir in std::fs::read_dir(ROOT).expect("fixture root") {
        let dir = dir.expect("dir entry").path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).expect("fixture dir") {
            let path = file.expect("file entry").path();
            let rel = path
                .strip_prefix(ROOT)
                .expect("under root")
                .display()
                .to_string();
            found.push(rel);
        }
    }
    for rel in found {
        let listed = OUTPUTS.iter().any(|(n, _)| *n == rel) || diffs::DIFFS.contains(&rel.as_str());
        assert!(
            listed,
            "fixture {rel} has no assertions; add it to OUTPUTS or DIFFS"
        );
    }
}

#[test]
fn every_failure_respects_the_contract() {
    for (rel, code) in OUTPUTS {
        let failures = parse(rel);
        assert!(
            *code == 0 || !failures.is_empty(),
            "{rel}: empty on exit {code}"
        );
        for f in &failures {
            assert!(
                !f.message.contains('\n') && f.message.chars().count() <= 500,
                "{rel}: {f:?}"
            );
            assert!(!f.message.is_empty(), "{rel}: empty message {f:?}");
            assert!(f.excerpt.chars().count() <= 2000, "{rel}: excerpt too long");
            assert_eq!(f.signature.len(), 16, "{rel}");
            assert!(f.signature.chars().all(|c| c.is_ascii_hexdigit()), "{rel}");
        }
    }
}

#[test]
fn streaming_in_7_byte_chunks_matches_batch_parsing() {
    for (rel, code) in OUTPUTS {
        let text = fixture(rel);
        let mut stream = StreamParser::new();
        let mut streamed = Vec::new();
        for chunk in text.as_bytes().chunks(7) {
            streamed.extend(stream.feed(chunk));
        }
        let all = stream.finish(*code);
        assert_eq!(all, parse_output(&text, *code), "{rel}");
        assert!(
            streamed.iter().all(|f| all.contains(f)),
            "{rel}: streamed a failure not in the final list"
        );
    }
}

#[test]
fn streaming_reports_failures_before_the_end() {
    for rel in [
        "pytest/assertion_q.txt",
        "cargo-test/failing.txt",
        "go/json.jsonl",
        "vitest/failing.txt",
    ] {
        let text = fixture(rel);
        let chunks: Vec<&[u8]> = text.as_bytes().chunks(7).collect();
        let mut stream = StreamParser::new();
        let early: usize = chunks[..chunks.len() - 1]
            .iter()
            .map(|c| stream.feed(c).len())
            .sum();
        assert!(early >= 1, "{rel}: nothing reported before the last chunk");
    }
}

fn argv(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[test]
fn rerun_argv_selects_failing_tests() {
    let cases = [
        (
            "pytest/assertion_q.txt",
            "python3 -m pytest -q",
            Some("python3 -m pytest -q -- tests/test_calc.py::test_add tests/test_calc.py::test_div_zero"),
        ),
        (
            "cargo-test/failing.txt",
            "cargo test",
            Some("cargo test -- --exact tests::adds tests::parses tests::plain_assert tests::truthy"),
        ),
        ("go/plain.txt", "go test ./...", Some("go test -run ^(TestAdd|TestTable|TestDiv)$ -count=1 ./...")),
        ("rustc/human.txt", "cargo test", None),
        ("pytest/collection_error.txt", "pytest -q", None),
        ("lint/flake8.txt", "flake8 .", None),
    ];
    for (rel, gate, want) in cases {
        assert_eq!(
            rerun_argv(&argv(gate), &parse(rel)),
            want.map(argv),
            "{rel}"
        );
    }
    let vitest: Vec<Failure> = parse("vitest/failing.txt")
        .into_iter()
        .skip(1)
        .take(2)
        .collect();
    let got = rerun_argv(&argv("npx vitest run"), &vitest).expect("vitest argv");
    assert_eq!(
        got,
        [
            "npx",
            "vitest",
            "run",
            "src/math.test.ts",
            "-t",
            "^(?:math adds numbers|math parses)$"
        ]
    );
}
