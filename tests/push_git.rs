//! The push step against the real git smart-HTTP server, without an engine: what the server
//! refuses and how airlock reports it, and that a retried push pushes at most once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use airlock::push::flow::{self, Job};
use airlock::push::git_push::{self, Target};
use airlock::push::record::{self, Record, Stage, RECORD_FORMAT};
use airlock::push::{plan, PushError};
use airlock::secrets::{Held, Redactor, SecretString};
use common::{make_repo, sh};
use support::git_server::{GitServer, Grant};
use support::provider::{test_token, Provider};

const HOUR: Duration = Duration::from_secs(3600);

struct Fixture {
    tmp: tempfile::TempDir,
    git: GitServer,
    /// A host repo holding `commit` (a child of main).
    clone: PathBuf,
    commit: String,
    token: String,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let src = make_repo(tmp.path(), &[("README.md", "hello\n")]);
    let git = GitServer::start(&tmp.path().join("srv"));
    git.add_repo("tasks.git", &src);
    let clone = tmp.path().join("clone");
    sh(tmp.path(), &format!("git clone -q {} clone", src.display()));
    let commit = sh(&clone, "echo change > change.txt && git add -A && git -c user.name=a -c user.email=a@a commit -qm change && git rev-parse HEAD").trim().to_string();
    let token = test_token();
    git.grant(
        &token,
        Grant {
            repo: "tasks.git".into(),
            expires: SystemTime::now() + HOUR,
            ref_prefix: "refs/heads/agent/".into(),
        },
    );
    Fixture {
        tmp,
        git,
        clone: clone.join(".git"),
        commit,
        token,
    }
}

fn target<'a>(f: &'a Fixture, url: &'a str, refname: &'a str) -> Target<'a> {
    Target {
        url,
        refname,
        commit: &f.commit,
        auth_user: "x-access-token",
    }
}

#[test]
fn a_push_to_main_is_refused_by_airlock_and_by_the_server() {
    let f = fixture();
    assert!(
        plan::target_ref("main", "main", &[]).is_err(),
        "airlock itself never targets main"
    );
    let url = f.git.url("tasks.git");
    let mut r = Redactor::new();
    r.add(&f.token);
    let token = SecretString::from(f.token.clone());
    let before = f.git.git("tasks.git", &["rev-parse", "main"]);
    let e = git_push::push(&f.clone, target(&f, &url, "refs/heads/main"), &token, &r).unwrap_err();
    assert!(matches!(e, PushError::Rejected { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("token may not push refs/heads/main") && msg.contains(&url),
        "{msg}"
    );
    support::leaks::assert_text_clean(&msg, &f.token, "the error");
    assert_eq!(f.git.git("tasks.git", &["rev-parse", "main"]), before);
    // The scoped ref is accepted with the same token.
    let ok = git_push::push(
        &f.clone,
        target(&f, &url, "refs/heads/agent/t-x"),
        &token,
        &r,
    )
    .unwrap();
    assert_eq!(ok, airlock::push::outcome::Pushed::Created);
    assert_eq!(
        f.git.ref_of("tasks.git", "refs/heads/agent/t-x").as_deref(),
        Some(f.commit.as_str())
    );
}

fn remote_toml(f: &Fixture, provider: &Provider) -> airlock::push::Remote {
    let text = format!(
        "[[remote]]\nrepo = \"/src\"\npush_url = {:?}\n{}",
        f.git.url("tasks.git"),
        provider.toml()
    );
    airlock::push::parse(&text, None).unwrap().remotes.remove(0)
}

fn job<'a>(f: &'a Fixture, branch: &'a str, record: &'a Path, pr_file: &'a Path) -> Job<'a> {
    Job {
        task_id: "t1",
        title: "Change",
        repo: "/src",
        base: "main",
        branch,
        commit: &f.commit,
        git_dir: &f.clone,
        evidence: "# Change\n",
        issue: None,
        record,
        pr_file,
        after: None,
        cancelled: None,
    }
}

#[test]
fn a_retried_push_pushes_at_most_once() {
    let f = fixture();
    let provider = Provider::new(
        &f.tmp.path().join("provider"),
        &f.token,
        SystemTime::now() + HOUR / 2,
    );
    let remote = remote_toml(&f, &provider);
    let (rec, pr) = (f.tmp.path().join("push.json"), f.tmp.path().join("pr.json"));
    let first_job = job(&f, "agent/t1-change", &rec, &pr);
    let mut events = Vec::new();
    let first = flow::run(
        &remote,
        &first_job,
        &mut Held::default(),
        SystemTime::now(),
        &mut |k, _| events.push(k.to_string()),
    );
    assert!(
        first.error.is_none() && first.pushed && !first.earlier,
        "{:?}",
        first.error
    );
    assert_eq!(events, ["token_minted", "pushed", "token_revoked"]);
    // The task runs again (a daemon restart re-queued it): nothing is pushed twice.
    let again = flow::run(
        &remote,
        &first_job,
        &mut Held::default(),
        SystemTime::now(),
        &mut |_, _| {},
    );
    assert!(
        again.error.is_none() && again.pushed && again.earlier,
        "{:?}",
        again.error
    );
    assert_eq!(f.git.receive_packs(), 1);

    // A crash between "pushing" and "pushed": the remote is asked, and it already has the ref.
    let branch = "agent/t2-change";
    let url = f.git.url("tasks.git");
    let refname = format!("refs/heads/{branch}");
    let token = SecretString::from(f.token.clone());
    git_push::push(
        &f.clone,
        target(&f, &url, &refname),
        &token,
        &Redactor::new(),
    )
    .unwrap();
    let rec2 = f.tmp.path().join("push2.json");
    let crashed = Record {
        format_version: RECORD_FORMAT,
        task_id: "t2".into(),
        remote: url.clone(),
        refname: refname.clone(),
        commit: f.commit.clone(),
        stage: Stage::Pushing,
        pr: None,
        updated_at: "then".into(),
    };
    record::write(&rec2, &crashed).unwrap();
    let packs = f.git.receive_packs();
    let resumed = flow::run(
        &remote,
        &job(&f, branch, &rec2, &pr),
        &mut Held::default(),
        SystemTime::now(),
        &mut |_, _| {},
    );
    assert!(
        resumed.error.is_none() && resumed.earlier,
        "{:?}",
        resumed.error
    );
    assert_eq!(f.git.receive_packs(), packs, "pushed again after a crash");
    assert_eq!(record::read(&rec2).unwrap().stage, Stage::Pushed);
    // The rerun had nothing left to do and minted nothing; the crashed one needed a token to ask.
    assert_eq!(provider.calls().len(), 2);
    assert_eq!(provider.revokes(), vec!["revoked"; 2]);
}

#[test]
fn an_unknown_token_is_reported_as_unauthorized_and_revoked() {
    let f = fixture();
    let stranger = test_token();
    let provider = Provider::new(
        &f.tmp.path().join("provider"),
        &stranger,
        SystemTime::now() + HOUR / 2,
    );
    let remote = remote_toml(&f, &provider);
    let (rec, pr) = (f.tmp.path().join("push.json"), f.tmp.path().join("pr.json"));
    let mut held = Held::default();
    let report = flow::run(
        &remote,
        &job(&f, "agent/t3-x", &rec, &pr),
        &mut held,
        SystemTime::now(),
        &mut |_, _| {},
    );
    let e = report.error.expect("refused");
    assert_eq!(e.reason(), "push_unauthorized");
    assert!(!report.pushed);
    assert!(
        held.redactor.contains(stranger.as_bytes()),
        "the minted token is held for the artifact scan"
    );
    assert_eq!(provider.revokes(), vec!["revoked"]);
    assert_eq!(
        record::read(&rec).unwrap().stage,
        Stage::Pushing,
        "intent recorded before the push"
    );
}
