//! A hostile repository or submitter at prepare: which repositories the host clones (issue 10
//! items 4–6), what a repository may cost the host, and how `repo.base` resolves. Real git,
//! real `airlock run`, the real engine.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{sh, toml_str, World};

/// A spec for `url` at `base`, agent `true`.
fn spec_for(world: &World, url: &str, base: &str) -> PathBuf {
    world.write_spec(&format!(
        "title = \"hostile repo\"\nlevel = \"L1\"\n[repo]\nurl = {}\nbase = {}\n[issue]\ntext = \"x\"\n[agent]\nimage = \"airlock/sandbox-test:latest\"\ncommand = [\"true\"]\n",
        toml_str(url),
        toml_str(base)
    ))
}

fn edit_operator(world: &World, from: &str, to: &str) {
    let p = world.policies.join("operator.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "operator.toml lacks {from}");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
}

fn append_operator(world: &World, extra: &str) {
    let p = world.policies.join("operator.toml");
    let text = std::fs::read_to_string(&p).unwrap() + extra;
    std::fs::write(&p, text).unwrap();
}

/// `airlock policy check` as `source`: (exit code, decision JSON).
fn policy_check(policies: Option<&Path>, spec: &Path, source: &str) -> (i32, serde_json::Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlock"));
    cmd.args(["policy", "check"])
        .arg(spec)
        .args(["--source", source]);
    if let Some(p) = policies {
        cmd.arg("--policies").arg(p);
    }
    let out = cmd.output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out.status.code().unwrap_or(-1), v)
}

/// A directory with a fake `ssh` first on PATH: it records its argv and then runs `then`.
fn fake_ssh(dir: &Path, then: &str) -> (PathBuf, PathBuf) {
    let bin = dir.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = dir.join("ssh-argv");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" >> {}\n{then}\n",
        record.display()
    );
    std::fs::write(bin.join("ssh"), script).unwrap();
    std::fs::set_permissions(bin.join("ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    (PathBuf::from(path), record)
}

#[test]
fn the_state_dir_is_never_a_repository_not_even_through_a_symlink() {
    let world = World::new();
    let first = world.run(&world.spec("L1", &["true"], ""));
    assert_eq!(first.code, 0, "{}", first.stderr);
    let repos = world.state.join("cache/repos");
    let mirror = std::fs::read_dir(&repos)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "git"))
        .expect("a mirror");
    let link = world.tmp.path().join("innocent.git");
    std::os::unix::fs::symlink(&mirror, &link).unwrap();
    for url in [mirror.clone(), link, world.state.clone()] {
        let ran = world.run(&spec_for(&world, &url.display().to_string(), "main"));
        assert_eq!(ran.code, 3, "{}: {}", url.display(), ran.stderr);
        assert_eq!(
            ran.state_reason(),
            ("refused".into(), "repo_not_allowed".into())
        );
        assert!(ran.stderr.contains("state dir"), "{}", ran.stderr);
    }
}

#[test]
fn the_shipped_policy_lets_api_tasks_use_no_repository_until_the_operator_names_it() {
    let world = World::new();
    let https = spec_for(&world, "https://git.example.com/acme/app.git", "main");
    let (code, v) = policy_check(None, &https, "api");
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["reason"], "repo_not_allowed", "{v}");
    let local = spec_for(&world, &world.repo.display().to_string(), "main");
    let (code, v) = policy_check(None, &local, "api");
    assert_eq!(
        (code, v["reason"].as_str()),
        (3, Some("repo_not_allowed")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("local_dirs"), "{v}");
    // The operator at the shell keeps using local repositories (the demo does).
    let (code, v) = policy_check(None, &local, "cli");
    assert_eq!(code, 0, "{v}");
}

#[test]
fn patterns_match_the_normalised_url_and_dot_segments_are_refused() {
    let world = World::new();
    append_operator(
        &world,
        "\n[[repos]]\nmatch = \"https://git.example.com/acme/**\"\nmax_level = \"L2\"\n",
    );
    let p = Some(world.policies.as_path());
    let ok = spec_for(&world, "https://GIT.example.com:443/acme/app.git", "main");
    assert_eq!(policy_check(p, &ok, "api").0, 0);
    for url in [
        "https://git.example.com/acme/../evil/app.git",
        "https://git.example.com/acme/%2e%2e/evil/app.git",
        "https://git.example.com/acme//x.git",
        "http://git.example.com/acme/app.git",
        "git://git.example.com/acme/app.git",
        "https://git.example.com/evil/app.git",
    ] {
        let (code, v) = policy_check(p, &spec_for(&world, url, "main"), "api");
        assert_eq!(
            (code, v["reason"].as_str()),
            (3, Some("repo_not_allowed")),
            "{url}: {v}"
        );
    }
    // Outside local_dirs, an API task may not name a host path at all.
    let outside = spec_for(&world, "/etc", "main");
    let (code, v) = policy_check(p, &outside, "api");
    assert_eq!(code, 3, "{v}");
}

#[test]
fn ssh_uses_only_the_operators_key_and_known_hosts() {
    let world = World::new();
    append_operator(
        &world,
        "\n[[repos]]\nmatch = \"ssh://127.0.0.1/**\"\nmax_level = \"L4\"\n",
    );
    let url = "ssh://git@127.0.0.1/acme/app.git";
    let (path, record) = fake_ssh(world.tmp.path(), "exit 128");
    // No identity configured: refused before any ssh runs.
    let ran = common::ran(
        world
            .command(&spec_for(&world, url, "main"))
            .env("PATH", &path)
            .output()
            .unwrap(),
    );
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert!(ran.stderr.contains("ssh_key"), "{}", ran.stderr);
    assert!(!record.exists(), "ssh ran without an operator identity");
    let key = world.tmp.path().join("id_ed25519");
    let kh = world.tmp.path().join("known_hosts");
    std::fs::write(&key, "not a key\n").unwrap();
    std::fs::write(&kh, "").unwrap();
    edit_operator(
        &world,
        "# ssh_key = \"/etc/airlock/ssh/id_ed25519\"",
        &format!(
            "ssh_key = {}\nssh_known_hosts = {}",
            toml_str(&key.display().to_string()),
            toml_str(&kh.display().to_string())
        ),
    );
    let ran = common::ran(
        world
            .command(&spec_for(&world, url, "main"))
            .env("PATH", &path)
            .output()
            .unwrap(),
    );
    assert_eq!(ran.code, 2, "the fake server refuses: {}", ran.stderr);
    let argv = std::fs::read_to_string(&record).expect("ssh was run");
    for want in [
        "IdentitiesOnly=yes".to_string(),
        format!("IdentityFile={}", key.display()),
        format!("UserKnownHostsFile={}", kh.display()),
        "GlobalKnownHostsFile=/dev/null".into(),
        "StrictHostKeyChecking=yes".into(),
        "IdentityAgent=none".into(),
        "BatchMode=yes".into(),
    ] {
        assert!(
            argv.lines().any(|l| l == want),
            "want {want} in ssh argv:\n{argv}"
        );
    }
    assert!(argv.contains("/dev/null"), "no -F /dev/null:\n{argv}");
}

#[test]
fn a_repository_over_the_prepare_limits_is_refused_with_figure_and_limit() {
    let files: Vec<(String, String)> = (0..20)
        .map(|i| (format!("f{i}.txt"), "x\n".to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let world = World::with_files(&refs);
    edit_operator(&world, "checkout_files = 200000", "checkout_files = 10");
    let ran = world.run(&world.spec("L1", &["true"], ""));
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert_eq!(
        ran.state_reason(),
        ("refused".into(), "repo_too_large".into())
    );
    let msg = ran.summary()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("11 files") && msg.contains("limit of 10"),
        "{msg}"
    );
    assert!(world
        .artifacts
        .join(ran.task_id())
        .join("summary.json")
        .is_file());
    let trees = world.state.join("cache/trees");
    let extracted = std::fs::read_dir(&trees)
        .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0);
    assert_eq!(extracted, 0, "nothing may be extracted over the limit");

    // The mirror's bytes: a 3 MiB incompressible file over a 1 MiB cap.
    let world = World::new();
    sh(world.tmp.path(), "cd src-work && head -c 3000000 /dev/urandom > blob.bin && git add blob.bin && git -c user.name=t -c user.email=t@t commit -qm big && git push -q ../src.git main");
    edit_operator(&world, "mirror_bytes = \"2g\"", "mirror_bytes = \"1m\"");
    let ran = world.run(&world.spec("L1", &["true"], ""));
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert_eq!(
        ran.state_reason(),
        ("refused".into(), "repo_too_large".into())
    );
    let msg = ran.summary()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("mirror") && msg.contains("1048576 bytes"),
        "{msg}"
    );
    world.assert_clean(&ran.task_id());
}

#[test]
fn a_stalled_git_ends_at_git_timeout_and_a_cancel_stops_it_at_once() {
    let world = World::new();
    append_operator(
        &world,
        "\n[[repos]]\nmatch = \"ssh://127.0.0.1/**\"\nmax_level = \"L4\"\n",
    );
    let kh = world.tmp.path().join("known_hosts");
    std::fs::write(&kh, "").unwrap();
    edit_operator(
        &world,
        "# ssh_key = \"/etc/airlock/ssh/id_ed25519\"",
        &format!(
            "ssh_key = {}\nssh_known_hosts = {}",
            toml_str(&kh.display().to_string()),
            toml_str(&kh.display().to_string())
        ),
    );
    edit_operator(&world, "git_timeout = \"10m\"", "git_timeout = \"3s\"");
    // A server that never answers: the fake ssh (and its child) sleep for a minute.
    let (path, _) = fake_ssh(world.tmp.path(), "sleep 61.7 & sleep 61.7");
    let spec = spec_for(&world, "ssh://git@127.0.0.1/slow.git", "main");
    let t = Instant::now();
    let ran = common::ran(world.command(&spec).env("PATH", &path).output().unwrap());
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert_eq!(
        ran.state_reason(),
        ("refused".into(), "prepare_timeout".into())
    );
    assert!(
        ran.summary()["message"].as_str().unwrap().contains("3s"),
        "{}",
        ran.stdout
    );
    // Cancel (SIGTERM) while git hangs: ends `cancelled` within a few seconds.
    edit_operator(&world, "git_timeout = \"3s\"", "git_timeout = \"5m\"");
    let child = common::spawn(world.command(&spec).env("PATH", &path));
    std::thread::sleep(Duration::from_secs(2));
    let t = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let ran = common::ran(child.wait_with_output().unwrap());
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "cancel took {:?}",
        t.elapsed()
    );
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(ran.state_reason(), ("cancelled".into(), "cancelled".into()));
    std::thread::sleep(Duration::from_millis(300));
    let left = sh(world.tmp.path(), "pgrep -f '[s]leep 61.7' || true");
    assert!(
        left.trim().is_empty(),
        "git's helpers were left running: {left}"
    );
}

#[test]
fn caches_are_evicted_by_size_and_age_but_never_under_a_live_task() {
    let world = World::new();
    let ran = world.run(&world.spec("L1", &["true"], ""));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let count = |sub: &str| {
        std::fs::read_dir(world.state.join("cache").join(sub))
            .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
            .unwrap_or(0)
    };
    assert_eq!((count("repos"), count("trees")), (1, 1));
    // A second repository, with the cache capped at one byte: the first one's entries go.
    let other = tempfile::tempdir_in(world.tmp.path()).unwrap();
    let repo2 = common::make_repo(other.path(), &[("b.txt", "b\n")]);
    edit_operator(&world, "cache_bytes = \"20g\"", "cache_bytes = \"1\"");
    let ran = world.run(&spec_for(&world, &repo2.display().to_string(), "main"));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        (count("repos"), count("trees")),
        (1, 1),
        "only the second task's entries remain"
    );
    // Age: everything older than a second goes at the next prepare (which re-clones its own).
    edit_operator(&world, "cache_bytes = \"1\"", "cache_bytes = \"20g\"");
    edit_operator(
        &world,
        "cache_max_age = \"14days\"",
        "cache_max_age = \"1s\"",
    );
    std::thread::sleep(Duration::from_millis(2100));
    let ran = world.run(&world.spec("L1", &["true"], ""));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!((count("repos"), count("trees")), (1, 1));
}

#[test]
fn base_is_a_branch_or_a_full_commit_never_a_tag_or_a_short_id() {
    let world = World::new();
    let work = world.tmp.path().join("src-work");
    // A tag named `main` on a different commit than branch main.
    sh(&work, "echo tagged > t.txt && git add t.txt && git -c user.name=t -c user.email=t@t commit -qm tagged && git tag main && git reset -q --hard HEAD~1 && git push -q --force ../src.git refs/heads/main refs/tags/main");
    let branch = sh(&work, "git rev-parse refs/heads/main")
        .trim()
        .to_string();
    let ran = world.run(&world.spec("L1", &["true"], ""));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        ran.summary()["repo"]["base_commit"],
        branch.as_str(),
        "the branch wins, never the tag"
    );
    let ran = world.run(&spec_for(
        &world,
        &world.repo.display().to_string(),
        &branch,
    ));
    assert_eq!(ran.code, 0, "a full commit id: {}", ran.stderr);
    for base in [&branch[..10], "v-no-such-tag"] {
        let ran = world.run(&spec_for(&world, &world.repo.display().to_string(), base));
        assert_eq!(ran.code, 2, "{base}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("repo.base") && ran.stderr.contains("40-hex"),
            "{}",
            ran.stderr
        );
    }
}
