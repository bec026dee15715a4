//! Rerunning only the failing tests, for flake detection.
//!
//! A failure that passes when rerun alone is a flake, not the agent's doing. The rerun must use
//! the gate's own argv (same runner, same options) narrowed to the failing tests, and only where
//! the tool can select tests precisely; anything else returns `None` and the judge falls back
//! to rerunning the whole gate or not at all.

use super::Failure;

/// An argv that reruns only `failures`, or `None` when the tool cannot select them (compile
/// errors, lint findings, mixed tools, failures without a test id, unknown runners).
pub fn rerun_argv(gate_argv: &[String], failures: &[Failure]) -> Option<Vec<String>> {
    let tool = failures.first()?.tool.as_str();
    if failures
        .iter()
        .any(|f| f.tool != tool || f.test_id.is_none())
    {
        return None;
    }
    let ids: Vec<&str> = failures
        .iter()
        .filter_map(|f| f.test_id.as_deref())
        .collect();
    match tool {
        "pytest" => pytest(gate_argv, &ids),
        "junit" if ids.iter().all(|id| id.contains("::")) => pytest(gate_argv, &ids),
        "cargo-test" => cargo_test(gate_argv, &ids),
        "go-test" => go_test(gate_argv, &ids),
        "jest" => js(gate_argv, "jest", &ids, " › "),
        "vitest" => js(gate_argv, "vitest", &ids, " > "),
        _ => None,
    }
}

/// An id that reads as an option to a runner whose argv has no end-of-options marker after
/// the ids (libtest's filters, jest's paths): such a failure is not rerun (#10 item 11).
fn looks_like_option(id: &str) -> bool {
    id.starts_with('-')
}

fn basename(arg: &str) -> &str {
    arg.rsplit('/').next().unwrap_or(arg)
}

/// pytest options whose value is a separate argument (so it is not mistaken for a test path).
const PYTEST_VALUE_OPTS: &[&str] = &[
    "-m",
    "-p",
    "-c",
    "-o",
    "-W",
    "-n",
    "--maxfail",
    "--tb",
    "--junitxml",
    "--junit-xml",
    "--rootdir",
    "--confcutdir",
    "--basetemp",
    "--deselect",
    "--ignore",
    "--ignore-glob",
    "--durations",
    "--timeout",
    "--cov",
    "--log-level",
    "--dist",
    "--import-mode",
    "--override-ini",
    "--capture",
    "--color",
    "--cov-report",
];

/// Keep the options, drop the test paths and any `-k` filter, append the node ids.
fn pytest(argv: &[String], ids: &[&str]) -> Option<Vec<String>> {
    let start = argv
        .iter()
        .position(|a| matches!(basename(a), "pytest" | "py.test"))?;
    let mut out: Vec<String> = argv[..=start].to_vec();
    let mut args = argv[start + 1..].iter();
    while let Some(arg) = args.next() {
        if arg == "-k" {
            args.next();
        } else if arg.starts_with("-k") {
            continue;
        } else if PYTEST_VALUE_OPTS.contains(&arg.as_str()) {
            out.push(arg.clone());
            out.extend(args.next().cloned());
        } else if arg.starts_with('-') && arg != "--" {
            out.push(arg.clone());
        }
    }
    // Node ids come from the gate's output: after `--` none of them can be an option.
    out.push("--".to_string());
    out.extend(ids.iter().map(|id| id.to_string()));
    Some(out)
}

/// cargo test options whose value is a separate argument.
const CARGO_VALUE_OPTS: &[&str] = &[
    "-p",
    "--package",
    "--test",
    "--bin",
    "--example",
    "--bench",
    "--features",
    "-F",
    "--manifest-path",
    "-j",
    "--jobs",
    "--target",
    "--target-dir",
    "--profile",
    "--color",
    "--message-format",
    "--config",
    "-Z",
    "--exclude",
];

/// `cargo test [opts] -- [harness opts] --exact name...`; a positional filter is dropped.
fn cargo_test(argv: &[String], ids: &[&str]) -> Option<Vec<String>> {
    if ids.iter().any(|id| looks_like_option(id)) {
        return None;
    }
    let cargo = argv.iter().position(|a| basename(a) == "cargo")?;
    let test = cargo + 1 + argv[cargo + 1..].iter().position(|a| a == "test")?;
    let split = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
    let mut out: Vec<String> = argv[..=test].to_vec();
    let mut args = argv[test + 1..split].iter();
    while let Some(arg) = args.next() {
        if CARGO_VALUE_OPTS.contains(&arg.as_str()) {
            out.push(arg.clone());
            out.extend(args.next().cloned());
        } else if arg.starts_with('-') {
            out.push(arg.clone());
        }
    }
    out.push("--".to_string());
    out.extend(
        argv.iter()
            .skip(split + 1)
            .filter(|a| *a != "--exact")
            .cloned(),
    );
    out.push("--exact".to_string());
    out.extend(ids.iter().map(|id| id.to_string()));
    Some(out)
}

/// `go test -run '^(TestA|TestB)$' -count=1 ...`: top-level names (a subtest reruns with its
/// parent), replacing any `-run` the gate had; `-count=1` defeats the test cache.
fn go_test(argv: &[String], ids: &[&str]) -> Option<Vec<String>> {
    let go = argv.iter().position(|a| basename(a) == "go")?;
    let test = go + 1 + argv[go + 1..].iter().position(|a| a == "test")?;
    let mut names: Vec<String> = Vec::new();
    for id in ids {
        let top = regex_escape(id.split('/').next().unwrap_or(id));
        if !names.contains(&top) {
            names.push(top);
        }
    }
    let mut out: Vec<String> = argv[..=test].to_vec();
    out.push("-run".to_string());
    out.push(format!("^({})$", names.join("|")));
    if !argv.iter().any(|a| a.starts_with("-count")) {
        out.push("-count=1".to_string());
    }
    let mut rest = argv[test + 1..].iter();
    while let Some(arg) = rest.next() {
        if arg == "-run" || arg == "--run" {
            rest.next();
        } else if !arg.starts_with("-run=") && !arg.starts_with("--run=") {
            out.push(arg.clone());
        }
    }
    Some(out)
}

/// Jest and vitest: test files as path filters plus `-t` with the exact full names (the runners
/// join describe blocks and the test name with spaces). Behind `npm test`, the extra arguments
/// go after `--`.
fn js(argv: &[String], runner: &str, ids: &[&str], sep: &str) -> Option<Vec<String>> {
    let direct = argv.iter().any(|a| basename(a).starts_with(runner));
    let npm =
        argv.first().is_some_and(|a| basename(a) == "npm") && argv.iter().any(|a| a == "test");
    if !direct && !npm {
        return None;
    }
    let mut files: Vec<&str> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for id in ids {
        let (file, name) = id.split_once(sep)?;
        if looks_like_option(file) {
            return None;
        }
        if !files.contains(&file) {
            files.push(file);
        }
        names.push(regex_escape(&name.replace(sep, " ")));
    }
    let mut out = strip_name_filter(argv);
    if npm && !out.iter().any(|a| a == "--") {
        out.push("--".to_string());
    }
    out.extend(files.iter().map(|f| f.to_string()));
    out.push("-t".to_string());
    out.push(format!("^(?:{})$", names.join("|")));
    Some(out)
}

fn strip_name_filter(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut args = argv.iter();
    while let Some(arg) = args.next() {
        if arg == "-t" || arg == "--testNamePattern" {
            args.next();
        } else if !arg.starts_with("--testNamePattern=") {
            out.push(arg.clone());
        }
    }
    out
}

/// Escape regex metacharacters (Go RE2 and JavaScript agree on this set).
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::parsers::text::Draft;
    use crate::gate::FailureKind;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn failed(tool: &'static str, id: &str) -> Failure {
        Draft::new(tool, FailureKind::Assertion)
            .test(Some(id.to_string()))
            .message("x")
            .build()
    }

    #[test]
    fn pytest_drops_paths_and_k() {
        let f = [
            failed("pytest", "tests/a.py::test_x"),
            failed("pytest", "tests/b.py::T::t[1]"),
        ];
        let got = rerun_argv(&argv("python3 -m pytest -q -k slow --maxfail 3 tests/"), &f);
        assert_eq!(
            got,
            Some(argv(
                "python3 -m pytest -q --maxfail 3 -- tests/a.py::test_x tests/b.py::T::t[1]"
            ))
        );
    }

    #[test]
    fn an_id_that_reads_as_an_option_never_becomes_one() {
        let f = [failed("pytest", "--co"), failed("pytest", "a.py::t")];
        let got = rerun_argv(&argv("pytest -q -- tests/"), &f).expect("argv");
        assert_eq!(got, argv("pytest -q -- --co a.py::t"));
        assert_eq!(
            rerun_argv(&argv("cargo test"), &[failed("cargo-test", "--list")]),
            None
        );
        let jest = [failed("jest", "--watch › t")];
        assert_eq!(rerun_argv(&argv("npx jest"), &jest), None);
    }

    #[test]
    fn cargo_uses_exact_names() {
        let f = [failed("cargo-test", "tests::adds")];
        let got = rerun_argv(&argv("cargo test -p core parser -- --test-threads=1"), &f);
        assert_eq!(
            got,
            Some(argv(
                "cargo test -p core -- --test-threads=1 --exact tests::adds"
            ))
        );
    }

    #[test]
    fn go_reruns_top_level_tests() {
        let f = [
            failed("go-test", "TestTable/pos"),
            failed("go-test", "TestAdd"),
        ];
        let got = rerun_argv(&argv("go test -run Foo ./..."), &f);
        assert_eq!(
            got,
            Some(vec![
                "go".into(),
                "test".into(),
                "-run".into(),
                "^(TestTable|TestAdd)$".into(),
                "-count=1".into(),
                "./...".into()
            ])
        );
    }

    #[test]
    fn jest_behind_npm_gets_a_separator() {
        let f = [failed("jest", "src/m.test.js › math › adds (1+1)")];
        let got = rerun_argv(&argv("npm test"), &f).expect("argv");
        assert_eq!(
            got,
            vec![
                "npm",
                "test",
                "--",
                "src/m.test.js",
                "-t",
                "^(?:math adds \\(1\\+1\\))$"
            ]
        );
    }

    #[test]
    fn refuses_what_cannot_be_selected() {
        let compile = Draft::new("rustc", FailureKind::Compile)
            .message("e")
            .build();
        assert_eq!(rerun_argv(&argv("cargo test"), &[compile]), None);
        let mixed = [failed("pytest", "a.py::t"), failed("jest", "a.test.js › t")];
        assert_eq!(rerun_argv(&argv("pytest"), &mixed), None);
        assert_eq!(
            rerun_argv(&argv("make test"), &[failed("pytest", "a.py::t")]),
            None
        );
        assert_eq!(rerun_argv(&argv("pytest"), &[]), None);
    }
}
