//! L3 push end to end against a real git smart-HTTP server on 127.0.0.1 (git http-backend) that
//! accepts only an unexpired token granted for the repository and `refs/heads/agent/*`. Real
//! engine; never skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;
mod support;

use std::time::{Duration, SystemTime};

use support::git_server::Grant;
use support::leaks::{assert_text_clean, assert_tree_clean, InspectWatch};
use support::provider::{test_token, Provider};
use support::world::{PushWorld, GATE};

const HOUR: Duration = Duration::from_secs(3600);

/// The agent adds a file, and records its environment and every `/proc/*/environ` it can see.
const AGENT: &str = "echo feature > feature.txt; env > /airlock/out/env.txt; \
    cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' > /airlock/out/proc-environ.txt; sleep 1";

fn granted(w: &PushWorld, token: &str, repo: &str, prefix: &str, expires: SystemTime) {
    w.git.grant(
        token,
        Grant {
            repo: repo.into(),
            expires,
            ref_prefix: prefix.into(),
        },
    );
}

#[test]
fn l3_push_lands_and_the_token_leaves_no_trace() {
    let w = PushWorld::new();
    let token = test_token();
    let provider = Provider::new(
        &w.fixtures.join("provider"),
        &token,
        SystemTime::now() + HOUR / 2,
    );
    granted(
        &w,
        &token,
        "tasks.git",
        "refs/heads/agent/",
        SystemTime::now() + HOUR,
    );
    w.push_toml(&provider.toml(), "");
    let spec = w.world.spec("L3", &["sh", "-c", AGENT], GATE);
    let watch = InspectWatch::start();
    let ran = w.run(
        &spec,
        &[],
        &[
            ("GIT_TRACE", "1"),
            ("GIT_CURL_VERBOSE", "1"),
            ("GIT_TRACE_CURL", "1"),
            ("AIRLOCK_LOG", "debug"),
        ],
    );
    let id = ran.task_id();
    let inspected = watch.finish(&id);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let s = ran.summary();
    assert_eq!(
        (s["state"].as_str(), s["pushed"].as_bool()),
        (Some("green"), Some(true)),
        "{s}"
    );
    let branch = s["branch"].as_str().unwrap();
    assert!(
        branch.starts_with(&format!("agent/{id}-test-task-")),
        "{branch}"
    );

    // It landed: the server's branch is the exported commit, on top of main, holding the change.
    let commit = w
        .git
        .ref_of("tasks.git", &format!("refs/heads/{branch}"))
        .expect("branch on the server");
    assert_eq!(
        w.git
            .git("tasks.git", &["rev-parse", &format!("{commit}^")]),
        w.git.git("tasks.git", &["rev-parse", "main"])
    );
    assert_eq!(
        w.git
            .git("tasks.git", &["show", &format!("{commit}:feature.txt")]),
        "feature\n"
    );
    assert!(w
        .git
        .git("tasks.git", &["log", "-1", "--format=%an", &commit])
        .contains("airlock agent"));
    assert_eq!(w.git.receive_packs(), 1);

    // Minted once, after every container of the task was gone; revoked with the right token.
    let calls = provider.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0].contains(&format!("task={id} ")) && calls[0].ends_with("containers=0"),
        "{calls:?}"
    );
    assert!(
        calls[0].contains(&format!("ref=refs/heads/{branch} ")),
        "{calls:?}"
    );
    assert_eq!(provider.revokes(), vec!["revoked"]);
    let events = std::fs::read_to_string(w.artifacts_of(&ran).join("events.jsonl")).unwrap();
    for e in ["\"token_minted\"", "\"pushed\"", "\"token_revoked\""] {
        assert!(events.contains(e), "no {e} event");
    }
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.artifacts_of(&ran).join("push.json")).unwrap())
            .unwrap();
    assert_eq!(
        (record["stage"].as_str(), record["commit"].as_str()),
        (Some("pushed"), Some(commit.as_str()))
    );

    // The token is nowhere: containers (inspect), what the agent could see, artifacts and the
    // bundle, the kept work dir (branch.git/config included), airlock's own output.
    assert!(
        !inspected.is_empty(),
        "no container of the task was inspected"
    );
    for j in &inspected {
        assert_text_clean(j, &token, "docker inspect");
    }
    let env = std::fs::read_to_string(w.artifacts_of(&ran).join("out/proc-environ.txt")).unwrap();
    assert!(
        env.contains("AIRLOCK_TASK_ID="),
        "the agent's /proc view was not captured"
    );
    let checked =
        assert_tree_clean(&w.world.artifacts, &token) + assert_tree_clean(&w.world.state, &token);
    assert!(checked > 10, "only {checked} files checked");
    let config = w
        .world
        .state
        .join("tasks")
        .join(&id)
        .join("branch.git/config");
    assert!(config.exists(), "the push repository was not kept");
    assert_text_clean(&ran.stdout, &token, "stdout");
    assert_text_clean(&ran.stderr, &token, "stderr");
    assert!(!ran.stderr.contains("trace: "), "GIT_TRACE reached git");
    w.cleanup(&ran);
}

#[test]
fn the_server_refuses_expired_wrong_repo_and_out_of_scope_tokens() {
    let w = PushWorld::new();
    // (grant repo, ref scope, server-side expiry, expected reason, expected words)
    let cases = [
        (
            "tasks.git",
            "refs/heads/agent/",
            SystemTime::now() - Duration::from_secs(5),
            "push_unauthorized",
            "HTTP 401",
        ),
        (
            "other.git",
            "refs/heads/agent/",
            SystemTime::now() + HOUR,
            "push_forbidden",
            "HTTP 403",
        ),
        (
            "tasks.git",
            "refs/heads/release/",
            SystemTime::now() + HOUR,
            "push_rejected",
            "token may not push",
        ),
    ];
    for (i, (repo, scope, expires, reason, words)) in cases.into_iter().enumerate() {
        let token = test_token();
        // The provider claims a valid lifetime; only the server knows better.
        let provider = Provider::new(
            &w.fixtures.join(format!("p{i}")),
            &token,
            SystemTime::now() + HOUR / 2,
        );
        granted(&w, &token, repo, scope, expires);
        w.push_toml(&provider.toml(), "");
        let ran = w.run(
            &w.world.spec("L3", &["sh", "-c", "echo x > x.txt"], GATE),
            &[],
            &[],
        );
        assert_eq!(ran.code, 4, "{}", ran.stderr);
        let s = ran.summary();
        assert_eq!(ran.state_reason(), ("error".into(), reason.into()), "{s}");
        let msg = s["message"].as_str().unwrap();
        assert!(
            msg.contains(words) && msg.contains(&w.git.url("tasks.git")),
            "{reason}: {msg}"
        );
        assert_eq!(s["pushed"], false);
        // The result is still exported: diff, branch bundle, evidence.
        let dir = w.artifacts_of(&ran);
        assert!(std::fs::read_to_string(dir.join("diff.patch"))
            .unwrap()
            .contains("+x"));
        assert!(dir.join("branch.bundle").exists() && dir.join("evidence.md").exists());
        assert!(w
            .git
            .ref_of(
                "tasks.git",
                &format!("refs/heads/{}", s["branch"].as_str().unwrap())
            )
            .is_none());
        assert_eq!(provider.calls().len(), 1);
        assert_eq!(
            provider.revokes(),
            vec!["revoked"],
            "revoked even when the push failed"
        );
        assert_tree_clean(&dir, &token);
        assert_text_clean(&ran.stderr, &token, "stderr");
        w.cleanup(&ran);
    }
}

#[test]
fn below_l3_and_unfinished_tasks_never_call_the_provider() {
    let w = PushWorld::new();
    let provider = Provider::new(
        &w.fixtures.join("provider"),
        &test_token(),
        SystemTime::now() + HOUR / 2,
    );
    w.push_toml(&provider.toml(), "");
    let change = ["sh", "-c", "echo y > y.txt"];
    let runs = [
        (
            "L0",
            w.world
                .spec("L0", &["sh", "-c", "echo r > /airlock/out/report.md"], ""),
        ),
        ("L1", w.world.spec("L1", &change, "")),
        ("L2", w.world.spec("L2", &change, GATE)),
        (
            "L3 red",
            w.world.spec(
                "L3",
                &change,
                "[gate]\ncommands = [[\"false\"]]\n[limits]\nattempts = 1",
            ),
        ),
        ("L3 empty", w.world.spec("L3", &["true"], GATE)),
    ];
    for (what, spec) in runs {
        let ran = w.run(&spec, &[], &[]);
        let s = ran.summary();
        assert_eq!(s["pushed"], false, "{what}: {s}");
        assert!(!w.artifacts_of(&ran).join("push.json").exists(), "{what}");
        assert_eq!(
            provider.calls(),
            Vec::<String>::new(),
            "{what} called the provider"
        );
        w.cleanup(&ran);
    }
    assert_eq!(w.git.requests(), 0, "something talked to the remote");
}

#[test]
fn a_failed_mint_ends_error_with_the_diff_exported() {
    let w = PushWorld::new();
    let provider = Provider::failing(&w.fixtures.join("provider"));
    w.push_toml(&provider.toml(), "");
    let (ran, msg) = w.run_failing_mint("z");
    assert!(
        msg.contains("vault: permission denied") && msg.contains("mint.sh"),
        "{msg}"
    );
    assert!(w
        .world
        .artifact(&ran, "evidence.md")
        .contains("`error` (token_mint_failed)"));
    w.cleanup(&ran);
}

#[test]
fn dry_run_writes_the_exact_request_and_mints_nothing() {
    let w = PushWorld::new();
    let provider = Provider::new(
        &w.fixtures.join("provider"),
        &test_token(),
        SystemTime::now() + HOUR / 2,
    );
    let pr = "[remote.pr]\nforge = \"gitlab\"\napi_url = \"https://gitlab.test/api/v4\"\nproject = \"grp/tasks-app\"\nlabels = [\"airlock\", \"agent\"]\n";
    w.push_toml(&provider.toml(), pr);
    let ran = w.run(
        &w.world.spec("L3", &["sh", "-c", "echo d > d.txt"], GATE),
        &["--dry-run"],
        &[],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let s = ran.summary();
    assert_eq!(
        (s["state"].as_str(), s["pushed"].as_bool()),
        (Some("green"), Some(false))
    );
    let plan: serde_json::Value = serde_json::from_str(&w.world.artifact(&ran, "pr.json")).unwrap();
    assert_eq!(plan["dry_run"], true);
    let req = &plan["requests"][0];
    assert_eq!(req["method"], "POST");
    assert_eq!(
        req["url"],
        "https://gitlab.test/api/v4/projects/grp%2Ftasks-app/merge_requests"
    );
    assert_eq!(req["headers"]["Authorization"], "Bearer [REDACTED]");
    assert_eq!(req["body"]["source_branch"], s["branch"]);
    assert_eq!(req["body"]["target_branch"], "main");
    assert_eq!(req["body"]["labels"], "airlock,agent");
    let evidence = w.world.artifact(&ran, "evidence.md");
    assert!(req["body"]["description"]
        .as_str()
        .unwrap()
        .starts_with(&evidence));
    assert!(plan["push"]["refspec"]
        .as_str()
        .unwrap()
        .ends_with(&format!(":refs/heads/{}", s["branch"].as_str().unwrap())));
    assert_eq!(provider.calls(), Vec::<String>::new());
    assert_eq!(w.git.requests(), 0);
    w.cleanup(&ran);
}
