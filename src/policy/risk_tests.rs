use super::*;

fn file(path: &str, status: char) -> ChangedFile {
    ChangedFile {
        path: path.into(),
        old_path: None,
        status,
        binary: false,
    }
}

fn defaults() -> RiskRules {
    load(None).unwrap()
}

fn classify_paths(files: &[ChangedFile], lines: u64) -> Risk {
    classify(&defaults(), &ChangeFacts { files, lines })
}

fn fired(r: &Risk) -> Vec<&str> {
    r.rules.iter().map(|f| f.name.as_str()).collect()
}

#[test]
fn an_ordinary_change_is_low() {
    let r = classify_paths(
        &[file("src/app.py", 'M'), file("tests/test_app.py", 'A')],
        12,
    );
    assert_eq!(r, Risk::default());
}

#[test]
fn shipped_rules_cover_the_common_layouts() {
    for (path, rule, level) in [
        (
            "app/migrations/0002_add_user.py",
            "schema_migration",
            RiskLevel::High,
        ),
        (
            "db/migrate/20240101_create.rb",
            "schema_migration",
            RiskLevel::High,
        ),
        ("schema/001_init.sql", "schema_migration", RiskLevel::High),
        ("src/auth/validators/email.py", "auth_code", RiskLevel::High),
        ("src/permissions.py", "auth_code", RiskLevel::High),
        ("certs/server.pem", "secrets_key_material", RiskLevel::High),
        (".env.production", "secrets_key_material", RiskLevel::High),
        (".github/workflows/ci.yml", "ci_config", RiskLevel::High),
        (".gitlab-ci.yml", "ci_config", RiskLevel::High),
        (
            "deploy/k8s/app.yaml",
            "deployment_config",
            RiskLevel::Medium,
        ),
        ("Dockerfile", "deployment_config", RiskLevel::Medium),
        ("requirements.txt", "dependency_manifest", RiskLevel::Medium),
        (
            "web/package-lock.json",
            "dependency_manifest",
            RiskLevel::Medium,
        ),
        ("go.sum", "dependency_manifest", RiskLevel::Medium),
    ] {
        let r = classify_paths(&[file(path, 'M')], 3);
        assert!(fired(&r).contains(&rule), "{path}: {:?}", fired(&r));
        assert_eq!(r.level, level, "{path}");
        assert_eq!(r.rules[0].paths, vec![path.to_string()]);
    }
}

#[test]
fn deleted_files_and_size_fire_their_rules() {
    let r = classify_paths(&[file("src/old.py", 'D'), file("src/new.py", 'A')], 10);
    assert_eq!(fired(&r), vec!["deleted_file"]);
    assert_eq!(r.level, RiskLevel::Medium);
    assert_eq!(r.rules[0].paths, vec!["src/old.py".to_string()]);
    let r = classify_paths(&[file("src/a.py", 'M')], 2500);
    assert_eq!(fired(&r), vec!["large_diff", "very_large_diff"]);
    assert_eq!(r.level, RiskLevel::High);
    let many: Vec<_> = (0..30)
        .map(|i| file(&format!("src/f{i}.py"), 'M'))
        .collect();
    let r = classify_paths(&many, 30);
    assert_eq!(fired(&r), vec!["many_files"]);
}

#[test]
fn listed_paths_are_capped_and_the_rest_counted() {
    let many: Vec<_> = (0..25)
        .map(|i| file(&format!("m/migrations/{i}.py"), 'A'))
        .collect();
    let r = classify_paths(&many, 25);
    let m = r
        .rules
        .iter()
        .find(|f| f.name == "schema_migration")
        .unwrap();
    assert_eq!(m.paths.len(), 20);
    assert_eq!(m.more_paths, 5);
}

#[test]
fn operator_rules_are_added_and_checked() {
    let text = format!(
        "{EMBEDDED_RISK}\n[[rule]]\nname = \"billing\"\nrisk = \"high\"\nnote = \"Money moves here.\"\npaths = [\"src/billing/**\"]\nchange = \"modified\"\n"
    );
    let rules = parse(&text, "risk.toml").unwrap();
    let r = classify(
        &rules,
        &ChangeFacts {
            files: &[file("src/billing/charge.py", 'M')],
            lines: 1,
        },
    );
    assert_eq!(fired(&r), vec!["billing"]);
    let r = classify(
        &rules,
        &ChangeFacts {
            files: &[file("src/billing/charge.py", 'A')],
            lines: 1,
        },
    );
    assert!(r.rules.is_empty());
}

#[test]
fn bad_rules_are_refused_naming_the_field() {
    for (body, field) in [
        (
            "name = \"x\"\nrisk = \"severe\"\nnote = \"n\"\npaths = [\"a\"]",
            "rule[0].risk",
        ),
        (
            "name = \"x\"\nrisk = \"high\"\nnote = \"n\"",
            "rule[0].paths",
        ),
        (
            "name = \"x\"\nrisk = \"high\"\nnote = \"n\"\npaths = [\"a\"]\nmin_lines = 3",
            "rule[0].min_lines",
        ),
        (
            "name = \"x\"\nrisk = \"high\"\nnote = \"n\"\nchange = \"moved\"",
            "rule[0].change",
        ),
        (
            "name = \"x\"\nrisk = \"high\"\nnote = \"n\"\nmin_files = 0",
            "rule[0].min_files",
        ),
        (
            "name = \"X Y\"\nrisk = \"high\"\nnote = \"n\"\nmin_files = 2",
            "rule[0].name",
        ),
        (
            "name = \"x\"\nrisk = \"high\"\nnote = \"n\"\npaths = [\"[\"]",
            "rule[0].paths",
        ),
        (
            "name = \"x\"\nrisk = \"high\"\nnote = \"n\"\nmin_files = 2\ntypo = 1",
            "rule.typo",
        ),
    ] {
        let e = parse(&format!("[[rule]]\n{body}\n"), "risk.toml").unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{body}: {e}");
        assert!(e.to_string().starts_with("risk.toml: "), "{e}");
    }
    let dup = "[[rule]]\nname = \"x\"\nrisk = \"high\"\nnote = \"n\"\nmin_files = 2\n";
    let e = parse(&format!("{dup}{dup}"), "risk.toml").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("rule[1].name"));
}

#[test]
fn a_dir_without_risk_toml_uses_the_defaults_and_a_broken_one_fails() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(
        load(Some(d.path())).unwrap().rules.len(),
        defaults().rules.len()
    );
    std::fs::write(d.path().join("risk.toml"), "[[rule]]\nname = 1\n").unwrap();
    assert!(load(Some(d.path())).is_err());
}
