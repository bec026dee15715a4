//! The final lines of `airlock run` say what happened to a red or stopped task: the failing
//! tests with file:line (the first few, then a count), the red flag with its file:line, the scope
//! rule and its paths; container text is escaped. Real engine and the demo image (python3 and
//! pytest); never skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use common::{toml_argv, toml_str, World};

fn world() -> World {
    let w = World::with_files(&[
        ("README.md", "calc\n"),
        ("calc.py", "def add(a, b):\n    return a + b\n"),
        (
            "tests/test_calc.py",
            "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        ),
        ("tests/test_more.py", "def test_more():\n    assert True\n"),
        ("src/app.py", "print('hi')\n"),
    ]);
    let demo = std::process::Command::new("docker")
        .args(["image", "inspect", "airlock/demo"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(demo, "image airlock/demo is missing: run `make images`");
    w
}

/// One L2 attempt in the demo image running `script`, pytest as the gate, `extra` TOML appended.
fn spec(w: &World, script: &str, extra: &str) -> std::path::PathBuf {
    w.write_spec(&format!(
        "title = \"final lines\"\nlevel = \"L2\"\n[repo]\nurl = {}\nbase = \"main\"\n[issue]\ntext = \"x\"\n[agent]\nimage = \"airlock/demo:latest\"\ncommand = {}\n[gate]\ncommands = [[\"python3\", \"-m\", \"pytest\", \"-q\", \"-p\", \"no:cacheprovider\", \"tests\"]]\n[limits]\nattempts = 1\n{extra}\n",
        toml_str(&w.repo.display().to_string()),
        toml_argv(&["sh", "-c", script]),
    ))
}

/// The final lines: everything after the last progress or log line (the text starting at the
/// state line).
fn final_lines(ran: &common::Ran) -> String {
    let state = ran.summary()["state"].as_str().unwrap().to_string();
    let at = ran
        .stderr
        .find(&format!("{state} ("))
        .unwrap_or_else(|| panic!("no final lines in:\n{}", ran.stderr));
    ran.stderr[at..].to_string()
}

/// Seven failing tests, one whose message carries terminal control characters.
const FAILING: &str = r#"cat > tests/test_new.py <<'EOF'
def test_f0():
    assert 1 == 2, "bell\x07 and \x1b[2J clear"


def test_f1():
    assert 1 == 2


def test_f2():
    assert 1 == 2


def test_f3():
    assert 1 == 2


def test_f4():
    assert 1 == 2


def test_f5():
    assert 1 == 2


def test_f6():
    assert 1 == 2
EOF"#;

#[test]
fn a_failing_pytest_test_is_named_with_its_file_and_line_then_counted() {
    let w = world();
    let ran = w.run(&spec(&w, FAILING, ""));
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let lines = final_lines(&ran);
    assert!(
        lines.contains("failing in attempt 1 (7):"),
        "no failure header in:\n{lines}"
    );
    assert!(
        lines.contains("tests/test_new.py::test_f1 at tests/test_new.py:6"),
        "no test id with file:line in:\n{lines}"
    );
    assert!(lines.contains("\n    and 2 more"), "no count in:\n{lines}");
    assert!(
        !lines.contains("test_f6"),
        "more than the first few listed:\n{lines}"
    );
    // The container's control characters never reach the terminal raw.
    assert!(
        !ran.stderr.chars().any(|c| c.is_control() && c != '\n'),
        "a control character reached stderr:\n{:?}",
        ran.stderr
    );
    w.assert_clean(&ran.task_id());
}

#[test]
fn a_deleted_test_names_the_red_flag_and_its_file() {
    let w = world();
    let ran = w.run(&spec(
        &w,
        "rm tests/test_calc.py && echo '# done' >> calc.py",
        "",
    ));
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "red_flag".into()),
        "{}",
        ran.stderr
    );
    let lines = final_lines(&ran);
    assert!(
        lines.contains("gate passed, 1 red flag(s) -> stop"),
        "the attempt line does not say why it stopped:\n{lines}"
    );
    assert!(
        lines.contains("red flags in attempt 1 (1):"),
        "no red flag header in:\n{lines}"
    );
    assert!(
        lines.contains("test_file_deleted at tests/test_calc.py"),
        "no red flag with its file in:\n{lines}"
    );
    w.assert_clean(&ran.task_id());
}

#[test]
fn an_out_of_scope_change_names_the_rule_and_the_paths() {
    let w = world();
    let ran = w.run(&spec(
        &w,
        "echo '# ok' >> calc.py && echo x >> src/app.py && echo y >> README.md",
        "[scope]\nallowed = [\"calc.py\", \"tests/**\"]\n",
    ));
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "out_of_scope".into()),
        "{}",
        ran.stderr
    );
    let lines = final_lines(&ran);
    assert!(
        lines.contains(
            "out_of_scope paths: README.md, src/app.py (outside the task's [scope] allowed"
        ),
        "no rule and paths in:\n{lines}"
    );
    assert!(
        !lines.contains("failing in attempt"),
        "a passing gate listed failures:\n{lines}"
    );
    w.assert_clean(&ran.task_id());
}
