//! The forge's CI after the push, through the real daemon, the real engine, a real git
//! smart-HTTP server (git http-backend) and a fake forge serving GitHub's documented check-run
//! payloads and a job log with real timestamp prefixes and ANSI colours (sources in
//! `tests/fixtures/ci/README.md`):
//!
//! - CI fails once on the pushed commit → the next attempt's `feedback.json` holds the CI
//!   failure, a new commit on top of the pushed one is pushed fast-forward (the server refuses
//!   anything else), CI goes green → the task is green;
//! - CI never finishes → `ci_timeout`, the status showing `waiting_ci` while it waits;
//! - the per-use CI-read token is minted read-only with no container of the task alive, is
//!   never sent to the log's redirect host, and appears nowhere in the artifacts, the state dir
//!   or what the agent could see. Notify hooks get every terminal state with the job links.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;
mod support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::api::ApiDaemon;
use support::fake_ci::{FakeCi, Script};
use support::leaks::{assert_text_clean, assert_tree_clean};
use support::provider::Provider;
use support::world::{PushWorld, GATE};

/// First attempt: add a feature. An attempt that has feedback keeps it (in out/) and changes
/// the file again. Each records what it could see of its environment.
const AGENT: &str = "if [ -f /airlock/feedback.json ]; then \
      cp /airlock/feedback.json /airlock/out/feedback-ci.json; echo fixed >> feature.txt; \
    else echo feature > feature.txt; fi; \
    env >> /airlock/out/env.txt; \
    cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' >> /airlock/out/proc-environ.txt";

#[test]
fn ci_fails_once_then_a_fast_forward_commit_goes_green() {
    let w = PushWorld::new();
    let base = base_commit(&w);
    // The first commit that is not the base fails CI; every later one passes.
    let first: Arc<Mutex<Option<String>>> = Arc::default();
    let (f, b) = (first.clone(), base.clone());
    let ci = FakeCi::start(move |sha| {
        let mut first = f.lock().unwrap();
        if sha == b {
            return Script::Passes;
        }
        match first.as_deref() {
            None => {
                *first = Some(sha.to_string());
                Script::Fails
            }
            Some(s) if s == sha => Script::Fails,
            Some(_) => Script::Passes,
        }
    });
    // Anything but a fast-forward is refused by the server itself.
    w.git.git(
        "tasks.git",
        &["config", "receive.denyNonFastForwards", "true"],
    );
    let (token, provider) = w.granted_provider();
    let (d, id) = submit(&w, &provider, &ci, "30s");
    let t = d.wait_final(&id, 240);
    let s = &t["summary"];
    assert_ended(&d, &t, "green", "gate_passed");
    assert_eq!(s["pushed"], true, "{s}");

    // Two rounds of CI: the first failed with the parsed pytest failure, the second green.
    let rounds = s["ci"].as_array().expect("summary.ci");
    assert_eq!(rounds.len(), 2, "{s}");
    let c1 = first.lock().unwrap().clone().expect("CI was read");
    assert_eq!(rounds[0]["commit"], c1.as_str());
    assert_eq!(rounds[0]["result"], "failed");
    assert_eq!(rounds[0]["base"], "passed");
    assert_eq!(rounds[0]["jobs"][0]["name"], "test");
    assert_eq!(
        rounds[0]["jobs"][0]["url"],
        "https://github.com/github/hello-world/runs/4"
    );
    let fail = &rounds[0]["failures"][0];
    assert_eq!(fail["test_id"], "tests/test_calc.py::test_add", "{fail}");
    assert_eq!(fail["message"], "assert -1 == 3");
    assert_eq!(fail["origin"], "introduced");
    assert_eq!(rounds[1]["result"], "green");
    let c2 = rounds[1]["commit"].as_str().unwrap().to_string();
    assert_ne!(c1, c2);
    assert_eq!(s["commit"], c2.as_str());
    assert_eq!(s["attempts"].as_array().unwrap().len(), 2, "{s}");
    assert_eq!(s["attempts"][0]["verdict"], "retry");

    // The evidence shows both waits, the failing job's link and the parsed failure.
    let ev = d.artifact(&id, "evidence.md");
    assert!(ev.contains("## CI on the forge"), "{ev}");
    assert!(
        ev.contains("<https://github.com/github/hello-world/runs/4>"),
        "{ev}"
    );
    assert!(ev.contains("tests/test\\_calc.py::test\\_add"), "{ev}");

    // The second attempt was told what CI said.
    let fb: Value = serde_json::from_str(&d.artifact(&id, "out/feedback-ci.json")).unwrap();
    assert_eq!(fb["attempt"], 1, "{fb}");
    assert_eq!(fb["ci"]["commit"], c1.as_str(), "{fb}");
    assert_eq!(fb["ci"]["job"]["name"], "test");
    assert_eq!(
        fb["failures"][0]["test_id"], "tests/test_calc.py::test_add",
        "{fb}"
    );

    // On the server: the branch moved forward from c1 to c2 (c1 is c2's parent), in two pushes.
    let branch = s["branch"].as_str().unwrap();
    let head = w
        .git
        .ref_of("tasks.git", &format!("refs/heads/{branch}"))
        .expect("branch on the server");
    assert_eq!(head, c2);
    assert_eq!(
        w.git
            .git("tasks.git", &["rev-parse", &format!("{c2}^")])
            .trim(),
        c1
    );
    w.git
        .git("tasks.git", &["merge-base", "--is-ancestor", &c1, &c2]);
    assert_eq!(
        w.git
            .git("tasks.git", &["show", &format!("{c2}:feature.txt")]),
        "feature\nfixed\n"
    );
    assert_eq!(w.git.receive_packs(), 2);

    // Tokens: push tokens and CI-read tokens, each minted with no container of the task alive;
    // CI reads asked for read access. Every token revoked.
    let calls = provider.calls();
    let reads: Vec<&String> = calls.iter().filter(|c| c.contains("access=read")).collect();
    let writes: Vec<&String> = calls
        .iter()
        .filter(|c| c.contains("access=write"))
        .collect();
    assert_eq!((reads.len(), writes.len()), (2, 2), "{calls:?}");
    for c in &calls {
        assert!(c.ends_with("containers=0"), "{calls:?}");
    }
    assert!(reads.iter().all(|c| c.contains("ref= ")), "{calls:?}");
    assert_eq!(provider.revokes(), vec!["revoked"; 4]);
    assert_ci_token_stayed_home(&ci, &token);

    // Events: the waits and the results, the final `finished` after them.
    let kinds: Vec<String> = d
        .events(&id)
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "waiting_ci").count(), 2);
    assert_eq!(kinds.iter().filter(|k| *k == "ci_result").count(), 2);
    assert_eq!(kinds.iter().filter(|k| *k == "finished").count(), 1);
    let last_ci = kinds.iter().rposition(|k| k == "ci_result").unwrap();
    assert!(kinds.iter().rposition(|k| k == "finished").unwrap() > last_ci);

    // Notify got the terminal state with its CI rounds and links.
    let n = notified(&d, &id);
    assert_eq!(n["state"], "green");
    assert_eq!(
        n["ci"][0]["jobs"][0]["url"],
        "https://github.com/github/hello-world/runs/4"
    );

    // The token is nowhere: artifacts (bundle included), state, what the agent saw, the log.
    let env = d.artifact(&id, "out/proc-environ.txt");
    assert!(env.contains("AIRLOCK_TASK_ID="), "no /proc view captured");
    let checked =
        assert_tree_clean(&w.world.artifacts, &token) + assert_tree_clean(&w.world.state, &token);
    assert!(checked > 10, "only {checked} files checked");
    assert_text_clean(&d.log(), &token, "daemon log");
}

#[test]
fn ci_that_never_finishes_ends_ci_timeout_and_the_status_shows_waiting_ci() {
    let w = PushWorld::new();
    let ci = FakeCi::start(|_| Script::NeverFinishes);
    let (token, provider) = w.granted_provider();
    let (d, id) = submit(&w, &provider, &ci, "4s");
    let until = Instant::now() + Duration::from_secs(180);
    let mut phases = HashSet::new();
    let t = loop {
        let t = d.task(&id);
        if let Some(p) = t["phase"].as_str() {
            phases.insert(p.to_string());
        }
        if !["queued", "running"].contains(&t["state"].as_str().unwrap_or("")) {
            break t;
        }
        assert!(Instant::now() < until, "{id} never ended: {t}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(phases.contains("waiting_ci"), "{phases:?}");
    assert_ended(&d, &t, "needs_human", "ci_timeout");
    let s = &t["summary"];
    assert_eq!(s["pushed"], true);
    let round = &s["ci"][0];
    assert_eq!(round["result"], "timeout", "{s}");
    assert_eq!(round["jobs"][0]["name"], "test");
    assert!(round["waited_s"].as_u64().unwrap() <= 5, "{round}");
    let msg = s["message"].as_str().unwrap();
    assert!(
        msg.contains("https://github.com/github/hello-world/runs/4"),
        "{msg}"
    );
    assert!(ci.api_log.lock().unwrap().len() >= 10, "it polled");
    let n = notified(&d, &id);
    assert_eq!(n["reason"], "ci_timeout");
    let checked =
        assert_tree_clean(&w.world.artifacts, &token) + assert_tree_clean(&w.world.state, &token);
    assert!(checked > 5, "only {checked} files checked");
    assert_eq!(provider.revokes().len(), 2, "{:?}", provider.revokes());
}

#[test]
fn ci_failing_the_same_way_after_the_retry_stops_no_progress() {
    let w = PushWorld::new();
    let base = base_commit(&w);
    let ci = FakeCi::start(move |sha| {
        if sha == base {
            Script::Passes
        } else {
            Script::Fails
        }
    });
    let (token, provider) = w.granted_provider();
    let (d, id) = submit(&w, &provider, &ci, "30s");
    let t = d.wait_final(&id, 240);
    assert_ended(&d, &t, "needs_human", "no_progress");
    let s = &t["summary"];
    let rounds = s["ci"].as_array().unwrap();
    assert_eq!(rounds.len(), 2, "{s}");
    assert!(rounds.iter().all(|r| r["result"] == "failed"));
    // The retry's commit was pushed before CI judged it: the branch holds it.
    let branch = s["branch"].as_str().unwrap();
    assert_eq!(
        w.git
            .ref_of("tasks.git", &format!("refs/heads/{branch}"))
            .as_deref(),
        rounds[1]["commit"].as_str()
    );
    let msg = s["message"].as_str().unwrap();
    assert!(
        msg.contains("https://github.com/github/hello-world/runs/4"),
        "{msg}"
    );
    let n = notified(&d, &id);
    assert_eq!(n["reason"], "no_progress");
    assert_tree_clean(&w.world.artifacts, &token);
}

#[test]
fn a_ci_failure_the_base_commit_has_too_is_preexisting_and_green_under_report() {
    let w = PushWorld::new();
    // Every commit fails the same test, the base included.
    let ci = FakeCi::start(|_| Script::Fails);
    let (_token, provider) = w.granted_provider();
    let (d, id) = submit(&w, &provider, &ci, "30s");
    let t = d.wait_final(&id, 240);
    assert_ended(&d, &t, "green", "gate_passed_preexisting");
    let round = &t["summary"]["ci"][0];
    assert_eq!(round["base"], "failed", "{round}");
    assert_eq!(round["failures"][0]["origin"], "preexisting", "{round}");
    assert_eq!(t["summary"]["ci"].as_array().unwrap().len(), 1);
    assert_eq!(t["summary"]["attempts"].as_array().unwrap().len(), 1);
    // The base's log was read too (two log fetches through the redirect, neither with a token).
    assert_eq!(ci.blob_log.lock().unwrap().len(), 2);
}

#[test]
fn a_cancel_while_waiting_for_ci_ends_the_task_at_once() {
    let w = PushWorld::new();
    let ci = FakeCi::start(|_| Script::NeverFinishes);
    let (_token, provider) = w.granted_provider();
    let (d, id) = submit(&w, &provider, &ci, "10m");
    let until = Instant::now() + Duration::from_secs(180);
    while d.task(&id)["phase"] != "waiting_ci" {
        assert!(Instant::now() < until, "never waiting_ci: {}", d.task(&id));
        std::thread::sleep(Duration::from_millis(100));
    }
    let asked = Instant::now();
    let (code, body) = d.post(&format!("/v1/tasks/{id}/cancel"), "");
    assert_eq!(code, 202, "{body}");
    let t = d.wait_final(&id, 30);
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(
        (t["state"].as_str(), t["reason"].as_str()),
        (Some("cancelled"), Some("cancelled")),
        "{t}"
    );
    assert_eq!(
        provider.revokes().len(),
        2,
        "the CI-read token was not revoked"
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A cancel through the API while the push token is being minted (a slow provider): the push
/// stops before git runs, nothing reaches the server, the token is revoked, and the task ends
/// `cancelled` with its branch and summary written.
#[test]
fn a_cancel_through_the_api_during_the_push_pushes_nothing() {
    let w = PushWorld::new();
    let (_token, provider) = w.granted_provider();
    let slow = "#!/bin/sh\nd=\"$(dirname \"$0\")\"\necho called >> \"$d/calls.log\"\ntouch \"$d/minting\"\nsleep 5\ncat \"$d/token.json\"\n";
    std::fs::write(provider.dir.join("mint.sh"), slow).unwrap();
    w.push_toml(&provider.toml(), "");
    let d = start_daemon(&w);
    let id = d.submit_toml(&spec_text(&w));
    let marker = provider.dir.join("minting");
    let until = Instant::now() + Duration::from_secs(180);
    while !marker.exists() {
        assert!(Instant::now() < until, "no mint within 180 s\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, body) = d.post(&format!("/v1/tasks/{id}/cancel"), "");
    assert_eq!(code, 202, "{body}");
    let t = d.wait_final(&id, 120);
    assert_eq!(
        (t["state"].as_str(), t["reason"].as_str()),
        (Some("cancelled"), Some("cancelled")),
        "{t}\n{}",
        d.log()
    );
    let s = &t["summary"];
    assert_eq!(s["pushed"], false, "{s}");
    let branch = s["branch"].as_str().expect("the branch was exported");
    assert_eq!(
        w.git.ref_of("tasks.git", &format!("refs/heads/{branch}")),
        None
    );
    assert_eq!(w.git.receive_packs(), 0);
    assert_eq!(provider.calls().len(), 1, "{:?}", provider.calls());
    assert_eq!(provider.revokes(), vec!["revoked"]);
    assert!(d.artifact(&id, "diff.patch").contains("feature"));
}

fn ci_toml(ci: &FakeCi, wait: &str) -> String {
    format!(
        "[remote.ci]\nwait = {wait:?}\npoll = \"200ms\"\nrequired = [\"test\"]\nforge = \"github\"\napi_url = {:?}\nproject = \"acme/tasks-app\"\n",
        ci.api_url()
    )
}

/// The push config (the test's token provider, CI read from `ci`, waiting `wait`), a daemon,
/// and the task submitted to it: the daemon and the task's id.
fn submit(w: &PushWorld, provider: &Provider, ci: &FakeCi, wait: &str) -> (ApiDaemon, String) {
    w.push_toml(&provider.toml(), &ci_toml(ci, wait));
    let d = start_daemon(w);
    let id = d.submit_toml(&spec_text(w));
    (d, id)
}

/// The task ended `state` for `reason`.
fn assert_ended(d: &ApiDaemon, t: &Value, state: &str, reason: &str) {
    assert_eq!(
        (t["state"].as_str(), t["reason"].as_str()),
        (Some(state), Some(reason)),
        "{t}\n{}",
        d.log()
    );
}

/// The summary the notify command got for the task.
fn notified(d: &ApiDaemon, id: &str) -> Value {
    serde_json::from_str(&wait_for_file(&d.dir.join(format!("notify-{id}.json")))).unwrap()
}

/// The commit `main` of `tasks.git` is at: the task's base.
fn base_commit(w: &PushWorld) -> String {
    w.git
        .git("tasks.git", &["rev-parse", "main"])
        .trim()
        .to_string()
}

fn spec_text(w: &PushWorld) -> String {
    std::fs::read_to_string(w.world.spec("L3", &["sh", "-c", AGENT], GATE)).unwrap()
}

/// The log request carried the token to the API host; the redirect host never saw it.
fn assert_ci_token_stayed_home(ci: &FakeCi, token: &str) {
    let api = ci.api_log.lock().unwrap();
    assert!(
        api.iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {token}"))),
        "a CI read without the minted token"
    );
    let blobs = ci.blob_log.lock().unwrap();
    assert!(!blobs.is_empty(), "the job log was never fetched");
    for b in blobs.iter() {
        assert_eq!(
            b.header("authorization"),
            None,
            "token sent to the redirect host"
        );
        for (k, v) in &b.headers {
            assert_text_clean(&format!("{k}: {v}"), token, "redirect host request");
        }
    }
}

fn wait_for_file(p: &Path) -> String {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(t) = std::fs::read_to_string(p) {
            if !t.is_empty() {
                return t;
            }
        }
        assert!(Instant::now() < until, "{} never written", p.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The daemon as a process on a unix socket, over the world's policies (push.toml included),
/// one task at a time, notify writing `<daemon dir>/notify-<id>.json`, logging at debug.
fn start_daemon(w: &PushWorld) -> ApiDaemon {
    let mut d = ApiDaemon::new(&w.world);
    d.log_level = "debug";
    let notify = format!(
        "[notify]\ncommand = [\"/bin/sh\", \"-c\", \"cat > {}/notify-$AIRLOCK_TASK_ID.json\"]\ntimeout = \"5s\"\n",
        d.dir.display()
    );
    std::fs::write(
        &d.config,
        format!(
            "{}concurrency = 1\nauthor_trusted = true\n{notify}\n[recovery]\nsweep = \"owned\"\n",
            d.dirs_toml(&w.world)
        ),
    )
    .unwrap();
    d.spawn();
    d
}
