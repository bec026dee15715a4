//! Per-tool assertions on captured gate output: tool, kind, file, line and test id of every
//! failure, plus the messages and signatures that matter.

use super::{check, describe, fixture, messages, parse, signatures};
use crate::gate::parse_output;

#[test]
fn pytest_failures() {
    let want = [
        "pytest assertion tests/test_calc.py:5 tests/test_calc.py::test_add",
        "pytest error calc.py:6 tests/test_calc.py::test_div_zero",
    ];
    let q = check("pytest/assertion_q.txt", &want);
    let expected = ["assert -1 == 5", "ZeroDivisionError: division by zero"];
    assert_eq!(messages(&q), expected);
    assert_eq!(check("pytest/assertion_rA.txt", &want), q);
    check(
        "pytest/class_param.txt",
        &[
            "pytest assertion tests/test_params.py:7 \
             tests/test_params.py::TestMath::test_square[3-10]",
            "pytest assertion tests/test_params.py:10 tests/test_params.py::TestMath::test_keys",
        ],
    );
    check("pytest/passing.txt", &[]);
}

#[test]
fn pytest_environmental_failures() {
    let f = check(
        "pytest/collection_error.txt",
        &["pytest dependency tests/test_missing.py:1 -"],
    );
    let expected = ["ModuleNotFoundError: No module named 'requests_nonexistent'"];
    assert_eq!(messages(&f), expected);
    check(
        "pytest/network.txt",
        &["pytest network tests/test_net.py:5 tests/test_net.py::test_fetch"],
    );
    check(
        "pytest/timeout.txt",
        &["pytest timeout tests/test_slow.py:7 tests/test_slow.py::test_sleepy"],
    );
}

#[test]
fn flaky_pytest_runs_share_a_signature() {
    let want = ["pytest assertion tests/test_flaky.py:13 tests/test_flaky.py::test_fast_enough"];
    let one = check("pytest/flaky_run1.txt", &want);
    let two = check("pytest/flaky_run2.txt", &want);
    assert_ne!(
        one[0].message, two[0].message,
        "durations and addresses differ"
    );
    assert_eq!(one[0].signature, two[0].signature);
}

#[test]
fn junit_reports() {
    let want = [
        "junit assertion tests/test_calc.py:5 tests/test_calc.py::test_add",
        "junit error calc.py:6 tests/test_calc.py::test_div_zero",
    ];
    check("junit/pytest.xml", &want);
    check("junit/pytest_xunit1.xml", &want);
    let f = check(
        "junit/vitest.xml",
        &[
            "junit dependency src/broken.test.ts:1 -",
            "junit assertion src/math.test.ts:6 src/math.test.ts > math > adds numbers",
            "junit error src/math.ts:2 src/math.test.ts > math > parses",
            "junit assertion src/math.test.ts:15 src/math.test.ts > math > nested > chai assert",
            "junit assertion src/math.test.ts:21 src/math.test.ts > object equality",
            "junit timeout src/math.test.ts:24 src/math.test.ts > slow",
        ],
    );
    assert_eq!(f[1].message, "expected -1 to be 5 // Object.is equality");
}

#[test]
fn cargo_test_failures() {
    let want = [
        "cargo-test assertion src/lib.rs:15 tests::adds",
        "cargo-test panic src/lib.rs:6 tests::parses",
        "cargo-test assertion src/lib.rs:31 tests::plain_assert",
        "cargo-test panic src/lib.rs:25 tests::truthy",
    ];
    let f = check("cargo-test/failing.txt", &want);
    assert_eq!(f[0].message, "assertion `left == right` failed");
    assert!(f[0].excerpt.contains("left: -1"), "{}", f[0].excerpt);
    let with_backtrace = check("cargo-test/failing_backtrace.txt", &want);
    assert!(!with_backtrace[0].excerpt.contains("stack backtrace"));
    check(
        "cargo-test/integration.txt",
        &[
            "cargo-test panic tests/api.rs:15 lookup",
            "cargo-test panic tests/api.rs:8 slow_call",
        ],
    );
    check("cargo-test/passing.txt", &[]);
}

#[test]
fn cargo_signatures_ignore_thread_ids_durations_and_addresses() {
    let failing = signatures("cargo-test/failing.txt");
    assert_eq!(failing, signatures("cargo-test/failing_run2.txt"));
    assert_eq!(failing, signatures("cargo-test/failing_backtrace.txt"));
    let one = parse("cargo-test/integration.txt");
    let two = parse("cargo-test/integration_run2.txt");
    assert_ne!(one[1].message, two[1].message);
    assert_eq!(one[1].signature, two[1].signature);
    let mut distinct = failing;
    distinct.extend(signatures("cargo-test/integration.txt"));
    let count = distinct.len();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        count,
        "different failures, different signatures"
    );
}

#[test]
fn rustc_diagnostics_human_and_json_agree() {
    let want = [
        "rustc dependency src/main.rs:2 -",
        "rustc compile src/main.rs:5 -",
        "rustc compile src/main.rs:6 -",
        "rustc compile src/main.rs:11 -",
    ];
    let human = check("rustc/human.txt", &want);
    assert_eq!(human[1].message, "error[E0308]: mismatched types");
    check("rustc/cargo_test_compile_error.txt", &want);
    check("rustc/json.jsonl", &want);
    assert_eq!(
        signatures("rustc/human.txt"),
        signatures("rustc/json.jsonl")
    );
}

#[test]
fn clippy_diagnostics_human_and_json_agree() {
    let want = [
        "clippy lint src/lib.rs:1 -",
        "clippy lint src/lib.rs:2 -",
        "clippy lint src/lib.rs:7 -",
    ];
    let human = check("clippy/deny_warnings.txt", &want);
    let expected = "error[clippy::len_zero]: length comparison to zero";
    assert_eq!(human[1].message, expected);
    check("clippy/deny_warnings.jsonl", &want);
    let json = signatures("clippy/deny_warnings.jsonl");
    assert_eq!(signatures("clippy/deny_warnings.txt"), json);
}

#[test]
fn go_test_failures_in_every_format() {
    let want = [
        "go-test assertion calc_test.go:7 TestAdd",
        "go-test assertion calc_test.go:15 TestTable/pos",
        "go-test panic /tmp/gatefx/gomod/div/div.go:3 TestDiv",
    ];
    let plain = check("go/plain.txt", &want);
    assert_eq!(
        messages(&plain)[..2],
        ["Add(2, 3) = -1, want 5", "got 0 want 2"]
    );
    check("go/verbose.txt", &want);
    check("go/json.jsonl", &want);
    // Separate runs: goroutine numbers and addresses in the excerpts differ, signatures do not.
    assert_eq!(signatures("go/verbose.txt"), signatures("go/plain.txt"));
    assert_eq!(signatures("go/json.jsonl"), signatures("go/plain.txt"));
    let compile = ["go-test compile bad.go:4 -", "go-test compile bad.go:8 -"];
    check("go/compile_error.txt", &compile);
    check("go/compile_error.jsonl", &compile);
    let timeout = ["go-test timeout /tmp/gatefx/goslow/slow_test.go:9 TestHang"];
    check("go/timeout.txt", &timeout);
    check("go/timeout.jsonl", &timeout);
}

#[test]
fn jest_failures() {
    let jest = check(
        "jest/failing.txt",
        &[
            "jest assertion src/math.test.js:5 src/math.test.js › math › adds numbers",
            "jest error src/math.js:2 src/math.test.js › math › parses",
            "jest assertion src/math.test.js:18 src/math.test.js › object equality",
            "jest dependency src/other.test.js:1 -",
            "jest timeout src/slow.test.js:1 src/slow.test.js › waits forever",
        ],
    );
    assert_eq!(jest[1].message, "TypeError: bad number: x1");
}

#[test]
fn vitest_failures_with_and_without_colour() {
    let want = [
        "vitest dependency src/broken.test.ts:1 -",
        "vitest assertion src/math.test.ts:6 src/math.test.ts > math > adds numbers",
        "vitest error src/math.ts:2 src/math.test.ts > math > parses",
        "vitest assertion src/math.test.ts:15 src/math.test.ts > math > nested > chai assert",
        "vitest assertion src/math.test.ts:21 src/math.test.ts > object equality",
        "vitest timeout src/math.test.ts:24 src/math.test.ts > slow",
    ];
    let coloured = check("vitest/failing.txt", &want);
    let expected = "AssertionError: expected -1 to be 5 // Object.is equality";
    assert_eq!(coloured[1].message, expected);
    assert_eq!(check("vitest/failing_nocolor.txt", &want), coloured);
}

#[test]
fn python_linters() {
    let ruff = [
        "ruff lint app.py:1 -",
        "ruff lint app.py:1 -",
        "ruff lint app.py:2 -",
        "ruff lint app.py:4 -",
        "ruff lint app.py:5 -",
    ];
    let full = check("lint/ruff_full.txt", &ruff);
    assert_eq!(full[1].message, "F401 [*] `os` imported but unused");
    check("lint/ruff_concise.txt", &ruff);
    assert_eq!(
        signatures("lint/ruff_full.txt"),
        signatures("lint/ruff_concise.txt")
    );
    let flake8: Vec<String> = (1..=6)
        .map(|l| format!("flake8 lint app.py:{l} -"))
        .collect();
    let flake8: Vec<&str> = flake8.iter().map(String::as_str).collect();
    let f = check("lint/flake8.txt", &flake8);
    assert_eq!(f[2].message, "E302 expected 2 blank lines, found 0");
}

#[test]
fn eslint_in_three_formats() {
    let want = [
        "eslint lint /tmp/gatefx/lintjs/src/app.js:1 -",
        "eslint lint /tmp/gatefx/lintjs/src/app.js:1 -",
        "eslint lint /tmp/gatefx/lintjs/src/app.js:4 -",
        "eslint lint /tmp/gatefx/lintjs/src/util.js:2 -",
    ];
    let stylish = check("lint/eslint_stylish.txt", &want);
    assert_eq!(
        stylish[2].message,
        "no-undef: 'missingThing' is not defined"
    );
    check("lint/eslint_unix.txt", &want);
    check("lint/eslint_compact.txt", &want);
    let compact = signatures("lint/eslint_compact.txt");
    assert_eq!(signatures("lint/eslint_unix.txt"), compact);
}

#[test]
fn eslint_warnings_count_only_when_nothing_else_explains_the_exit() {
    let text = fixture("lint/eslint_stylish.txt");
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains("  error  ")).collect();
    let warnings_only = lines.join("\n");
    let f = parse_output(&warnings_only, 1);
    let got: Vec<String> = f.iter().map(describe).collect();
    assert_eq!(got, ["eslint lint /tmp/gatefx/lintjs/src/app.js:3 -"]);
    assert!(parse_output(&warnings_only, 0).is_empty());
}

#[test]
fn tsc_plain_and_pretty() {
    let want = [
        "tsc compile ts/a.ts:4 -",
        "tsc compile ts/a.ts:5 -",
        "tsc dependency ts/a.ts:6 -",
    ];
    let plain = check("lint/tsc.txt", &want);
    let expected = "TS2322: Type 'string' is not assignable to type 'number'.";
    assert_eq!(plain[0].message, expected);
    check("lint/tsc_pretty.txt", &want);
    assert_eq!(
        signatures("lint/tsc.txt"),
        signatures("lint/tsc_pretty.txt")
    );
}

#[test]
fn unrecognised_output_yields_one_unknown_failure() {
    let f = check("generic/unrecognised.txt", &["unknown unknown - -"]);
    assert_eq!(f[0].message, "make: *** [Makefile:3: test] Error 3");
    assert!(f[0].excerpt.contains("fixture 3 differs from golden copy"));
    assert!(parse_output(&fixture("generic/unrecognised.txt"), 0).is_empty());
    check("generic/command_not_found.txt", &["unknown env - -"]);
    check("generic/permission_denied.txt", &["unknown env - -"]);
    check("generic/pip_offline.txt", &["unknown network - -"]);
    check("generic/curl_resolve.txt", &["unknown network - -"]);
}
