use std::path::Path;

use super::*;

const GOOD: &str = r#"
title = "Add a delete command"
level = "L2"
[repo]
url = "."
base = "main"
[issue]
text = "please add delete"
[agent]
image = "airlock/demo:latest"
command = ["demo-agent"]
env = { MODE = "good" }
[gate]
commands = [["python3", "-m", "pytest", "-q"]]
[limits]
timeout = "10m"
attempts = 3
"#;

fn parse(text: &str) -> Result<TaskSpec, SpecError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("task.toml");
    parse_str(text, &path)
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn good_spec_parses_with_gate_image_defaulting_to_agent() {
    let s = parse(GOOD).unwrap();
    assert_eq!(s.level, Level::L2);
    assert_eq!(s.gate.unwrap().image, "airlock/demo:latest");
    assert_eq!(s.limits.attempts, Some(3));
    assert_eq!(s.limits.timeout, Some(std::time::Duration::from_secs(600)));
}

#[test]
fn unknown_key_names_file_and_key() {
    let e = err(&GOOD.replace("[limits]", "[limits]\nnetwork = \"host\""));
    assert!(e.contains("task.toml"), "{e}");
    assert!(e.contains("network"), "{e}");
}

#[test]
fn missing_field_is_named() {
    let e = err(&GOOD.replace("title = \"Add a delete command\"", ""));
    assert!(e.contains("missing field") && e.contains("title"), "{e}");
}

#[test]
fn invalid_level_lists_accepted_values() {
    let e = err(&GOOD.replace("\"L2\"", "\"L9\""));
    assert!(
        e.contains("field `level`") && e.contains("L0, L1, L2, L3, L4"),
        "{e}"
    );
}

#[test]
fn empty_argv_is_rejected() {
    let e = err(&GOOD.replace("[\"demo-agent\"]", "[]"));
    assert!(
        e.contains("agent.command") && e.contains("empty argv"),
        "{e}"
    );
    let e = err(&GOOD.replace("[[\"python3\", \"-m\", \"pytest\", \"-q\"]]", "[[]]"));
    assert!(e.contains("gate.commands[0]"), "{e}");
}

#[test]
fn unreadable_issue_file_is_named() {
    let e = err(&GOOD.replace("text = \"please add delete\"", "file = \"nope.md\""));
    assert!(e.contains("issue.file") && e.contains("nope.md"), "{e}");
}

#[test]
fn nonexistent_repo_path_is_named() {
    let e = err(&GOOD.replace("url = \".\"", "url = \"/no/such/repo.git\""));
    assert!(
        e.contains("repo.url") && e.contains("/no/such/repo.git"),
        "{e}"
    );
}

#[test]
fn hostile_urls_and_refs_are_rejected() {
    for url in [
        "ext::sh -c touch% /tmp/pwned",
        "--upload-pack=touch /tmp/x",
        "fd::17",
    ] {
        let e = err(&GOOD.replace("url = \".\"", &format!("url = {url:?}")));
        assert!(e.contains("repo.url"), "{url}: {e}");
    }
    for base in ["--orphan", "main..x", "HEAD@{1}", "a b"] {
        let e = err(&GOOD.replace("base = \"main\"", &format!("base = {base:?}")));
        assert!(e.contains("repo.base"), "{base}: {e}");
    }
}

#[test]
fn env_cannot_carry_secrets_or_reserved_names() {
    for name in ["GITHUB_TOKEN", "AIRLOCK_LEVEL", "HOME", "1BAD"] {
        let e = err(&GOOD.replace("MODE = \"good\"", &format!("{name} = \"x\"")));
        assert!(e.contains(&format!("agent.env.{name}")), "{name}: {e}");
    }
}

#[test]
fn limits_are_parsed_and_checked() {
    let e = err(&GOOD
        .replace("timeout  = \"10m\"", "")
        .replace("timeout = \"10m\"", "timeout = \"soon\""));
    assert!(e.contains("limits.timeout") && e.contains("soon"), "{e}");
    let e = err(&GOOD.replace("attempts = 3", "attempts = 0"));
    assert!(e.contains("limits.attempts"), "{e}");
}

#[test]
fn issue_needs_exactly_one_source() {
    let e = err(&GOOD.replace("text = \"please add delete\"", ""));
    assert!(e.contains("field `issue`"), "{e}");
}

#[test]
fn load_names_a_missing_spec_file() {
    let e = load(Path::new("/no/such/task.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/no/such/task.toml"), "{e}");
}

#[test]
fn issue_url_is_optional_and_must_be_http() {
    let s = parse(&GOOD.replace(
        "text = \"please add delete\"",
        "text = \"x\"\nurl = \"https://forge.example/acme/app/issues/3\"",
    ))
    .unwrap();
    assert_eq!(
        s.issue_url.as_deref(),
        Some("https://forge.example/acme/app/issues/3")
    );
    let e = err(&GOOD.replace(
        "text = \"please add delete\"",
        "text = \"x\"\nurl = \"javascript:alert(1)\"",
    ));
    assert!(e.contains("issue.url"), "{e}");
}
