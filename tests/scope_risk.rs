//! The work packet's own scope, the risk classification and the evidence, through `airlock run`
//! against the real engine. Never skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use common::{managed_containers, toml_argv, toml_str, World};

/// A spec with top-level `top` keys (kind, ...) and extra tables (`[scope]`, `[gate]`).
fn spec(world: &World, level: &str, argv: &[&str], top: &str, tables: &str) -> std::path::PathBuf {
    let name = common::unique("task");
    world.write_spec(&format!(
        "title = \"test {name}\"\nlevel = \"{level}\"\n{top}\n[repo]\nurl = {}\nbase = \"main\"\n[issue]\ntext = \"do the thing\"\n[agent]\nimage = \"airlock/sandbox-test:latest\"\ncommand = {}\n[gate]\ncommands = [[\"true\"]]\n{tables}\n",
        toml_str(&world.repo.display().to_string()),
        toml_argv(argv)
    ))
}

fn world() -> World {
    World::with_files(&[
        ("README.md", "hello\n"),
        (
            "src/auth/validators/email.py",
            "def ok(s):\n    return '@' in s\n",
        ),
        ("src/auth/session/store.py", "SESSIONS = {}\n"),
        ("src/app.py", "print('hi')\n"),
        ("requirements.txt", "requests==2.31.0\n"),
    ])
}

const SCOPE: &str = "[scope]\nallowed = [\"src/auth/validators/**\", \"tests/auth/**\"]\nforbidden = [\"src/auth/session/**\"]\nmax_files_changed = 5\n";

#[test]
fn a_change_outside_the_allowed_list_needs_a_human_and_names_the_path() {
    let world = world();
    let ran = world.run(&spec(
        &world,
        "L2",
        &[
            "sh",
            "-c",
            "echo '# ok' >> src/auth/validators/email.py && echo x >> src/app.py",
        ],
        "",
        SCOPE,
    ));
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "out_of_scope".into())
    );
    assert_eq!(ran.summary()["paths"], serde_json::json!(["src/app.py"]));
    assert!(
        ran.stderr.contains("out_of_scope paths: src/app.py"),
        "final lines do not name the path:\n{}",
        ran.stderr
    );
    let evidence = world.artifact(&ran, "evidence.md");
    assert!(
        evidence.contains("It touched: <code>src/app.py</code>"),
        "{evidence}"
    );
    world.assert_clean(&ran.task_id());
}

#[test]
fn a_forbidden_path_inside_the_allowed_tree_needs_a_human() {
    let world = world();
    let scope = "[scope]\nallowed = [\"src/auth/**\"]\nforbidden = [\"src/auth/session/**\"]\n";
    let ran = world.run(&spec(
        &world,
        "L2",
        &["sh", "-c", "echo 'X = 1' >> src/auth/session/store.py"],
        "",
        scope,
    ));
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "out_of_scope".into())
    );
    assert_eq!(
        ran.summary()["paths"],
        serde_json::json!(["src/auth/session/store.py"])
    );
    assert!(
        ran.stderr.contains("src/auth/session/store.py"),
        "{}",
        ran.stderr
    );
    // The agent was told, in its prompt, what it may not touch.
    assert_eq!(
        ran.summary()["task_scope"]["forbidden"],
        serde_json::json!(["src/auth/session/**"])
    );
}

#[test]
fn dependencies_forbid_stops_a_requirements_edit() {
    let world = world();
    let ran = world.run(&spec(
        &world,
        "L2",
        &["sh", "-c", "echo 'leftpad==1.0' >> requirements.txt"],
        "kind = \"dependency\"",
        "[scope]\ndependencies = \"forbid\"\n",
    ));
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    // The task's own rule is named, not only the level's protected-path review.
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "dependency_change".into())
    );
    assert_eq!(
        ran.summary()["paths"],
        serde_json::json!(["requirements.txt"])
    );
    assert_eq!(ran.summary()["kind"], "dependency");
}

#[test]
fn dependencies_review_records_a_risk_note() {
    let world = world();
    world.edit_policies("\"**/requirements*.txt\", ", "");
    let ran = world.run(&spec(
        &world,
        "L2",
        &["sh", "-c", "echo 'leftpad==1.0' >> requirements.txt"],
        "",
        "[scope]\ndependencies = \"review\"\n",
    ));
    assert_eq!(
        ran.state_reason(),
        ("green".into(), "gate_passed".into()),
        "{}",
        ran.stderr
    );
    let evidence = world.artifact(&ran, "evidence.md");
    assert!(
        evidence
            .contains("Dependency manifests or lock files changed (<code>requirements.txt</code>)"),
        "{evidence}"
    );
    let rules = ran.summary()["risk"]["rules"].to_string();
    assert!(rules.contains("dependency_manifest"), "{rules}");
}

#[test]
fn a_looser_max_files_changed_is_refused_at_admission_naming_the_ceiling() {
    let world = world();
    let ran = world.run(&spec(
        &world,
        "L2",
        &["true"],
        "",
        "[scope]\nmax_files_changed = 500\n",
    ));
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert_eq!(
        ran.state_reason(),
        ("refused".into(), "scope_above_ceiling".into())
    );
    let msg = ran.summary()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("scope.max_files_changed = 500") && msg.contains("ceiling 50"),
        "{msg}"
    );
    assert!(managed_containers(Some(&format!("airlock.task={}", ran.task_id()))).is_empty());
}

#[test]
fn a_tighter_max_files_changed_stops_a_wider_change() {
    let world = world();
    let ran = world.run(&spec(
        &world,
        "L2",
        &[
            "sh",
            "-c",
            "for i in 1 2 3; do echo $i > src/auth/validators/v$i.py; done",
        ],
        "",
        "[scope]\nmax_files_changed = 2\n",
    ));
    assert_eq!(
        ran.state_reason(),
        ("blocked".into(), "too_many_files".into()),
        "{}",
        ran.stderr
    );
}

#[test]
fn risk_rules_fire_on_a_migration_and_a_deleted_file() {
    let world = world();
    let ran = world.run(&spec(
        &world,
        "L2",
        &["sh", "-c", "mkdir -p db/migrations && echo 'up()' > db/migrations/0002_add_email.py && rm src/app.py"],
        "kind = \"feature\"",
        "",
    ));
    assert_eq!(
        ran.state_reason(),
        ("green".into(), "gate_passed".into()),
        "{}",
        ran.stderr
    );
    let risk = &ran.summary()["risk"];
    assert_eq!(risk["level"], "high", "{risk}");
    let rule = |name: &str| {
        risk["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} did not fire: {risk}"))
            .clone()
    };
    assert_eq!(
        rule("schema_migration")["paths"],
        serde_json::json!(["db/migrations/0002_add_email.py"])
    );
    assert_eq!(rule("schema_migration")["risk"], "high");
    assert_eq!(
        rule("deleted_file")["paths"],
        serde_json::json!(["src/app.py"])
    );
    assert_eq!(rule("deleted_file")["risk"], "medium");
    let evidence = world.artifact(&ran, "evidence.md");
    assert!(evidence.contains("Classification: **high**"), "{evidence}");
    assert!(
        evidence.contains(
            "| schema\\_migration | high | <code>db/migrations/0002\\_add\\_email.py</code>"
        ),
        "{evidence}"
    );
    assert!(
        evidence.contains("| deleted\\_file | medium | <code>src/app.py</code>"),
        "{evidence}"
    );
    assert!(
        ran.stderr
            .contains("risk: high (schema_migration, deleted_file)"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_level_can_stop_a_green_high_risk_change_before_push() {
    let world = world();
    for l in ["L3", "L4"] {
        let p = world.policies.join(format!("{l}.toml"));
        let t = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &p,
            t.replacen("stop_high_risk = false", "stop_high_risk = true", 1),
        )
        .unwrap();
    }
    let ran = world.run(&spec(
        &world,
        "L3",
        &[
            "sh",
            "-c",
            "mkdir -p db/migrations && echo 'up()' > db/migrations/0003.py",
        ],
        "",
        "",
    ));
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "high_risk".into())
    );
    assert_eq!(ran.summary()["pushed"], false);
    assert_eq!(
        ran.summary()["paths"],
        serde_json::json!(["db/migrations/0003.py"])
    );
    assert!(world
        .artifact(&ran, "evidence.md")
        .contains("stops high-risk changes before push"));
    // A low-risk change at the same level is not stopped.
    let ran = world.run(&spec(
        &world,
        "L3",
        &["sh", "-c", "echo x >> README.md"],
        "",
        "",
    ));
    assert_eq!(
        ran.state_reason(),
        ("green".into(), "gate_passed".into()),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.summary()["risk"]["level"], "low");
}

#[test]
fn evidence_has_every_reviewer_section_and_escapes_container_output() {
    let world = world();
    let ran = world.run(&spec(
        &world,
        "L2",
        &["sh", "-c", "mkdir -p tests/auth && echo t > 'tests/auth/<img src=x onerror=alert(1)>@admin.py' && echo '# ok' >> src/auth/validators/email.py"],
        "kind = \"bugfix\"\nacceptance = [\"emails with a plus are valid\"]",
        SCOPE,
    ));
    assert_eq!(
        ran.state_reason(),
        ("green".into(), "gate_passed".into()),
        "{}",
        ran.stderr
    );
    let evidence = world.artifact(&ran, "evidence.md");
    let mut at = 0;
    for h in [
        "## Summary",
        "## Acceptance criteria",
        "## Files changed",
        "## Tests run",
        "## Known limitations",
        "## Out of scope",
        "## Risk",
        "## Rollback",
        "## Reproduce the gate locally",
        "_AI-assistance disclosure:",
    ] {
        let i = evidence[at..]
            .find(h)
            .unwrap_or_else(|| panic!("{h} missing or out of order:\n{evidence}"));
        at += i + h.len();
    }
    assert!(!evidence.contains("<img"), "{evidence}");
    assert!(
        evidence.contains("&lt;img src=x onerror=alert(1)&gt;@admin.py"),
        "{evidence}"
    );
    assert!(evidence.contains("It touched none of them."), "{evidence}");
    assert!(evidence.contains("- Kind: bugfix"), "{evidence}");
    let commit = ran.summary()["commit"].as_str().unwrap().to_string();
    assert!(
        evidence.contains(&format!("git revert --no-edit {commit}")),
        "{evidence}"
    );
}
