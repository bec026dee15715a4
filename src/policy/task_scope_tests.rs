use super::*;
use crate::policy::load_embedded;
use crate::spec::Level;

fn file(path: &str) -> ChangedFile {
    ChangedFile {
        path: path.into(),
        old_path: None,
        status: 'M',
        binary: false,
    }
}

fn files(paths: &[&str]) -> Vec<ChangedFile> {
    paths.iter().map(|p| file(p)).collect()
}

fn scope(allowed: &[&str], forbidden: &[&str], deps: Dependencies) -> TaskScope {
    TaskScope {
        allowed: allowed.iter().map(|s| s.to_string()).collect(),
        forbidden: forbidden.iter().map(|s| s.to_string()).collect(),
        dependencies: deps,
        declared: true,
    }
}

#[test]
fn paths_outside_allowed_and_inside_forbidden_are_out_of_scope() {
    let ts = scope(
        &["src/auth/validators/**", "tests/auth/**"],
        &["src/auth/validators/legacy/**"],
        Dependencies::Review,
    );
    assert_eq!(
        check(
            &ts,
            &files(&["src/auth/validators/email.py", "tests/auth/t.py"])
        ),
        ScopeVerdict::Ok
    );
    assert_eq!(
        check(
            &ts,
            &files(&[
                "src/auth/validators/email.py",
                "src/auth/session/store.py",
                "src/auth/validators/legacy/old.py",
            ])
        ),
        ScopeVerdict::NeedsHuman {
            reason: OUT_OF_SCOPE,
            paths: vec![
                "src/auth/session/store.py".into(),
                "src/auth/validators/legacy/old.py".into()
            ]
        }
    );
}

#[test]
fn a_rename_from_outside_the_allowed_list_counts() {
    let ts = scope(&["src/**"], &[], Dependencies::Review);
    let f = ChangedFile {
        path: "src/moved.py".into(),
        old_path: Some("secret/orig.py".into()),
        status: 'R',
        binary: false,
    };
    assert_eq!(
        check(&ts, &[f]),
        ScopeVerdict::NeedsHuman {
            reason: OUT_OF_SCOPE,
            paths: vec!["secret/orig.py".into()]
        }
    );
}

#[test]
fn an_allowed_list_that_cannot_compile_allows_nothing() {
    let ts = scope(&["src/[unclosed"], &[], Dependencies::Review);
    assert!(matches!(
        check(&ts, &files(&["src/a.py"])),
        ScopeVerdict::NeedsHuman { .. }
    ));
}

#[test]
fn dependency_files_of_common_ecosystems_are_recognised() {
    for p in [
        "requirements.txt",
        "requirements-dev.txt",
        "svc/requirements/base.txt",
        "pyproject.toml",
        "poetry.lock",
        "Pipfile",
        "Pipfile.lock",
        "Cargo.toml",
        "crates/x/Cargo.lock",
        "package.json",
        "web/package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "go.mod",
        "go.sum",
        "Gemfile",
        "Gemfile.lock",
        "pom.xml",
        "build.gradle",
        "app/build.gradle.kts",
        "composer.json",
        "composer.lock",
    ] {
        assert!(is_dependency_file(p), "{p}");
    }
    for p in [
        "src/requirements.py",
        "docs/package.md",
        "gomod.txt",
        "README.md",
    ] {
        assert!(!is_dependency_file(p), "{p}");
    }
}

#[test]
fn forbid_stops_a_dependency_change_review_does_not() {
    let fs = files(&["src/a.py", "requirements.txt"]);
    assert_eq!(
        check(&scope(&[], &[], Dependencies::Forbid), &fs),
        ScopeVerdict::NeedsHuman {
            reason: DEPENDENCY_CHANGE,
            paths: vec!["requirements.txt".into()]
        }
    );
    assert_eq!(
        check(&scope(&[], &[], Dependencies::Review), &fs),
        ScopeVerdict::Ok
    );
}

#[test]
fn tighten_only_narrows_and_names_the_ceiling() {
    let p = load_embedded().unwrap();
    let mut level = p.level(Level::L2).scope.clone();
    let ceiling = level.max_files_changed;
    let req = RequestedScope {
        max_files_changed: Some(ceiling + 1),
        ..Default::default()
    };
    let r = tighten(&mut level, &req).unwrap_err();
    assert_eq!(r.reason, SCOPE_ABOVE_CEILING);
    assert!(
        r.message.contains(&format!("ceiling {ceiling}")),
        "{}",
        r.message
    );
    let req = RequestedScope {
        max_files_changed: Some(5),
        dependencies: Some(Dependencies::Forbid),
        ..Default::default()
    };
    let ts = tighten(&mut level, &req).unwrap();
    assert_eq!(level.max_files_changed, 5);
    assert_eq!(ts.dependencies, Dependencies::Forbid);
    assert!(ts.declared);
    level.dependencies = Dependencies::Forbid;
    let req = RequestedScope {
        dependencies: Some(Dependencies::Review),
        ..Default::default()
    };
    let r = tighten(&mut level, &req).unwrap_err();
    assert!(r.message.contains("\"forbid\""), "{}", r.message);
}

#[test]
fn level_files_check_dependencies_and_stop_high_risk() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for e in std::fs::read_dir(&shipped).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    let edit = |file: &str, from: &str, to: &str| {
        let p = dir.path().join(file);
        let t = std::fs::read_to_string(&p).unwrap();
        assert!(t.contains(from), "{file} lacks {from}");
        std::fs::write(&p, t.replacen(from, to, 1)).unwrap();
    };
    edit(
        "L2.toml",
        "dependencies = \"review\"",
        "dependencies = \"forbid\"",
    );
    let p = crate::policy::load_dir(dir.path()).unwrap();
    assert_eq!(p.level(Level::L2).scope.dependencies, Dependencies::Forbid);
    assert_eq!(p.level(Level::L3).scope.dependencies, Dependencies::Review);
    assert!(!p.level(Level::L3).stop_high_risk);
    edit("L3.toml", "stop_high_risk = false", "stop_high_risk = true");
    assert!(
        crate::policy::load_dir(dir.path())
            .unwrap()
            .level(Level::L3)
            .stop_high_risk
    );
    edit(
        "L2.toml",
        "dependencies = \"forbid\"",
        "dependencies = \"maybe\"",
    );
    let e = crate::policy::load_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("L2.toml: field `scope.dependencies`"), "{e}");
    edit(
        "L2.toml",
        "dependencies = \"maybe\"",
        "dependencies = \"review\"",
    );
    edit(
        "L1.toml",
        "flaky_is_green = false",
        "flaky_is_green = false\nstop_high_risk = true",
    );
    let e = crate::policy::load_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("L1.toml: field `stop_high_risk`"), "{e}");
}
