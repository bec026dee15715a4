//! The forge's CI, read over HTTP from a fake forge serving the forges' documented payloads and
//! real-looking logs (timestamps, colours, group and section markers): a failing job's log is
//! fetched and parsed with the gate's parsers, the token never reaches the log's redirect host,
//! and CI that never finishes ends in a timeout within the wait.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;
mod support;

use std::time::{Duration, Instant};

use airlock::push::ci::fetch::{CiSource, ForgeCi};
use airlock::push::ci::{wait_for_ci, CiConfig, CiOutcome, Required};
use airlock::push::Forge;
use secrecy::SecretString;
use support::fake_ci::{FakeCi, Script};

const TOKEN: &str = "ghs_ci_read_token_0123456789";

fn cfg(ci: &FakeCi, forge: Forge, wait: Duration) -> CiConfig {
    CiConfig {
        wait,
        poll: Duration::from_millis(100),
        required: Required::All,
        forge,
        api_url: ci.api_url(),
        project: "acme/tasks-app".into(),
    }
}

fn wait(ci: &FakeCi, forge: Forge, sha: &str, secs: u64) -> (CiOutcome, Duration) {
    let cfg = cfg(ci, forge, Duration::from_secs(secs));
    let token = SecretString::from(TOKEN);
    let mut source = ForgeCi {
        cfg: &cfg,
        token: &token,
    };
    let start = Instant::now();
    let out = wait_for_ci(
        &mut source,
        sha,
        &cfg,
        &mut || start.elapsed(),
        &mut std::thread::sleep,
    );
    (out, start.elapsed())
}

#[test]
fn a_failed_github_job_log_is_parsed_and_the_token_stays_on_the_api_host() {
    let ci = FakeCi::start(|_| Script::Fails);
    let (out, _) = wait(&ci, Forge::Github, "aaaa", 10);
    assert_eq!(out.reason().map(|r| r.as_str()), Some("ci_failed"));
    let CiOutcome::Failed {
        job,
        failures,
        log_error,
    } = out
    else {
        panic!("{out:?}");
    };
    assert_eq!(job.name, "test");
    assert_eq!(log_error, None);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(
        failures[0].test_id.as_deref(),
        Some("tests/test_calc.py::test_add")
    );
    assert_eq!(failures[0].message, "assert -1 == 3");
    let api = ci.api_log.lock().unwrap();
    let log_req = api
        .iter()
        .find(|r| r.path.ends_with("/logs"))
        .expect("log requested");
    assert_eq!(
        log_req.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let blobs = ci.blob_log.lock().unwrap();
    assert_eq!(blobs.len(), 1, "the redirect was followed once");
    let b = &blobs[0];
    assert_eq!(b.query, "sig=pre-signed");
    assert_eq!(
        b.header("authorization"),
        None,
        "token forwarded to the redirect host"
    );
    for (k, v) in &b.headers {
        assert!(!v.contains(TOKEN) && !k.contains("token"), "{k}: {v}");
    }
}

#[test]
fn ci_that_never_finishes_times_out_within_the_wait() {
    let ci = FakeCi::start(|_| Script::NeverFinishes);
    let (out, took) = wait(&ci, Forge::Github, "bbbb", 1);
    match &out {
        CiOutcome::Timeout { pending } => assert_eq!(pending[0].name, "test", "{out:?}"),
        o => panic!("{o:?}"),
    }
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(out.reason().map(|r| r.as_str()), Some("ci_timeout"));
    assert!(ci.api_log.lock().unwrap().len() >= 4, "it polled");
}

#[test]
fn the_second_commit_goes_green() {
    let ci = FakeCi::start(|sha| {
        if sha == "first" {
            Script::Fails
        } else {
            Script::Passes
        }
    });
    assert!(matches!(
        wait(&ci, Forge::Github, "first", 5).0,
        CiOutcome::Failed { .. }
    ));
    assert!(matches!(
        wait(&ci, Forge::Github, "second", 5).0,
        CiOutcome::Green { .. }
    ));
}

#[test]
fn a_gitlab_trace_is_parsed_and_allowed_failures_do_not_count() {
    let ci = FakeCi::start(|_| Script::Fails);
    let (out, _) = wait(&ci, Forge::Gitlab, "cccc", 5);
    let CiOutcome::Failed { job, failures, .. } = out else {
        panic!("{out:?}");
    };
    assert_eq!(job.name, "rspec:other");
    assert_eq!(
        failures[0].test_id.as_deref(),
        Some("tests/test_calc.py::test_add")
    );
    let cfg = cfg(&ci, Forge::Gitlab, Duration::from_secs(1));
    let token = SecretString::from(TOKEN);
    let jobs = ForgeCi {
        cfg: &cfg,
        token: &token,
    }
    .jobs("cccc")
    .unwrap();
    assert_eq!(jobs.len(), 2);
}
