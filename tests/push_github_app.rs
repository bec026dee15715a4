//! The GitHub App provider against a fake GitHub API on 127.0.0.1 that verifies the App JWT's
//! RS256 signature with the App's public key and checks GitHub's documented request shapes;
//! minted tokens are what the test git server accepts. End to end through `airlock run`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;
mod support;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use support::fake_github::{AppKeys, FakeGithub, Setup};
use support::git_server::{GitServer, Grants};
use support::leaks::{assert_text_clean, assert_tree_clean};
use support::world::{PushWorld, GATE};

const APP_ID: u64 = 424242;
const INSTALLATION: u64 = 987;

/// The fake GitHub of the App `keys` belong to; the tokens it mints go into `grants` (the git
/// server's, so that they push).
fn fake(grants: &Grants, keys: &AppKeys) -> FakeGithub {
    FakeGithub::start(Setup {
        app_id: APP_ID,
        installation_id: INSTALLATION,
        owner: "acme".into(),
        repo: "tasks".into(),
        public_der: keys.public_der.clone(),
        grants: grants.clone(),
    })
}

fn app_toml(api: &str, key: &std::path::Path) -> String {
    format!(
        "[remote.token]\nprovider = \"github_app\"\napp_id = {APP_ID}\ninstallation_id = {INSTALLATION}\nprivate_key_file = {:?}\nrepository = \"tasks\"\napi_url = {api:?}\nmax_ttl = \"1h\"\n\
         [remote.pr]\nforge = \"github\"\napi_url = {api:?}\nproject = \"acme/tasks\"\nlabels = [\"airlock\", \"needs-review\"]\n",
        key.display().to_string()
    )
}

/// `push::flow::run` without `airlock run`: a source repo served as `tasks.git`, a clone of it
/// with one commit on top, the App's fake GitHub, and a remote for `/src` pushing there with
/// the App's tokens (`pr_extra` appended to its `[remote.pr]`).
struct Flow {
    remote: airlock::push::Remote,
    gh: FakeGithub,
    git: GitServer,
    /// The commit to push, and the clone's git dir holding it.
    commit: String,
    git_dir: PathBuf,
    /// The job's `push.json` and `pr.json`.
    record: PathBuf,
    pr_file: PathBuf,
    /// Holds all of it; removed last.
    _tmp: tempfile::TempDir,
}

impl Flow {
    fn new(pr_extra: &str) -> Flow {
        let tmp = tempfile::tempdir().unwrap();
        let src = common::make_repo(tmp.path(), &[("README.md", "hello\n")]);
        let git = GitServer::start(&tmp.path().join("srv"));
        git.add_repo("tasks.git", &src);
        let clone = tmp.path().join("clone");
        common::sh(tmp.path(), &format!("git clone -q {} clone", src.display()));
        let commit = common::sh(&clone, "echo c > c.txt && git add -A && git -c user.name=a -c user.email=a@a commit -qm c && git rev-parse HEAD");
        let keys = AppKeys::generate(tmp.path(), "app");
        let gh = fake(&git.grants, &keys);
        let text = format!(
            "[[remote]]\nrepo = \"/src\"\npush_url = {:?}\n{}{pr_extra}",
            git.url("tasks.git"),
            app_toml(&gh.url(), &keys.pem)
        );
        let remote = airlock::push::parse(&text, None).unwrap().remotes.remove(0);
        Flow {
            remote,
            gh,
            git,
            commit: commit.trim().to_string(),
            git_dir: clone.join(".git"),
            record: tmp.path().join("push.json"),
            pr_file: tmp.path().join("pr.json"),
            _tmp: tmp,
        }
    }

    /// A job pushing the commit to `branch`.
    fn job<'a>(
        &'a self,
        task_id: &'a str,
        title: &'a str,
        branch: &'a str,
        evidence: &'a str,
    ) -> airlock::push::Job<'a> {
        airlock::push::Job {
            task_id,
            title,
            repo: "/src",
            base: "main",
            branch,
            commit: &self.commit,
            git_dir: &self.git_dir,
            evidence,
            issue: None,
            record: &self.record,
            pr_file: &self.pr_file,
            after: None,
            cancelled: None,
        }
    }

    /// One run of the flow, with nothing held from an earlier one.
    fn push(&self, job: &airlock::push::Job) -> airlock::push::Report {
        let mut held = airlock::secrets::Held::default();
        airlock::push::flow::run(
            &self.remote,
            job,
            &mut held,
            SystemTime::now(),
            &mut |_, _| {},
        )
    }
}

#[test]
fn github_app_mint_push_draft_pr_labels_and_revoke() {
    let w = PushWorld::new();
    let keys = AppKeys::generate(&w.fixtures, "app");
    let gh = fake(&w.git.grants, &keys);
    w.push_toml(&app_toml(&gh.url(), &keys.pem), "");
    let spec = w
        .world
        .spec("L3", &["sh", "-c", "echo feature > feature.txt"], GATE);
    // At trace level the HTTP client logs the wire, headers and all: the log writer must mask.
    let ran = w.run(&spec, &[], &[("AIRLOCK_LOG", "trace")]);
    assert_eq!(
        ran.code,
        0,
        "{}",
        ran.stderr
            .chars()
            .rev()
            .take(3000)
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>()
    );
    let s = ran.summary();
    assert_eq!(
        (s["state"].as_str(), s["pushed"].as_bool()),
        (Some("green"), Some(true)),
        "{s}"
    );
    let branch = s["branch"].as_str().unwrap().to_string();

    let rec = gh.record.lock().unwrap();
    assert_eq!(
        rec.violations,
        Vec::<String>::new(),
        "requests GitHub would refuse"
    );
    assert_eq!(rec.minted.len(), 1);
    assert_eq!(rec.revoked, rec.minted, "the token was not revoked");
    assert_eq!(
        rec.requests,
        vec![
            format!("POST /app/installations/{INSTALLATION}/access_tokens"),
            "POST /repos/acme/tasks/pulls".to_string(),
            "POST /repos/acme/tasks/issues/7/labels".to_string(),
            "DELETE /installation/token".to_string(),
        ]
    );
    let token = rec.minted[0].clone();
    assert!(
        w.git
            .ref_of("tasks.git", &format!("refs/heads/{branch}"))
            .is_some(),
        "not pushed with the App token"
    );

    // The draft PR: head = the branch, body = evidence.md, labels from push.toml.
    let pr = &rec.prs[0];
    assert_eq!(
        (
            pr["head"].as_str(),
            pr["base"].as_str(),
            pr["draft"].as_bool()
        ),
        (Some(branch.as_str()), Some("main"), Some(true))
    );
    let evidence = w.world.artifact(&ran, "evidence.md");
    assert!(
        pr["body"].as_str().unwrap().starts_with(&evidence),
        "PR body is not evidence.md"
    );
    assert_eq!(
        rec.labels[0]["labels"],
        serde_json::json!(["airlock", "needs-review"])
    );
    let pr_json: serde_json::Value =
        serde_json::from_str(&w.world.artifact(&ran, "pr.json")).unwrap();
    assert_eq!(
        (pr_json["number"].as_u64(), pr_json["draft"].as_bool()),
        (Some(7), Some(true))
    );
    assert_eq!(pr_json["url"], "https://github.test/acme/tasks/pull/7");
    assert!(s["message"].as_str().unwrap().contains("draft PR #7"));

    // The token is nowhere, even with every log level on.
    assert!(
        ran.stderr.contains("ureq::run"),
        "the HTTP client's logs did not reach stderr"
    );
    assert!(
        !ran.stderr.contains("ureq_proto::util"),
        "the HTTP wire (headers and all) was logged"
    );
    assert!(
        !ran.stderr.contains("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."),
        "the App JWT was logged"
    );
    assert_text_clean(&ran.stderr, &token, "stderr (AIRLOCK_LOG=trace)");
    assert_text_clean(&ran.stdout, &token, "stdout");
    assert_tree_clean(&w.world.artifacts, &token);
    assert_tree_clean(&w.world.state, &token);
    drop(rec);
    w.cleanup(&ran);
}

#[test]
fn a_jwt_signed_with_another_key_is_refused_and_reported() {
    let w = PushWorld::new();
    let keys = AppKeys::generate(&w.fixtures, "app");
    let other = AppKeys::generate(&w.fixtures, "not-the-app");
    let gh = fake(&w.git.grants, &keys);
    w.push_toml(&app_toml(&gh.url(), &other.pem), "");
    let (ran, msg) = w.run_failing_mint("f");
    assert!(
        msg.contains("HTTP 401") && msg.contains("signature does not match"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("/app/installations/{INSTALLATION}/access_tokens")),
        "{msg}"
    );
    let rec = gh.record.lock().unwrap();
    assert!(rec.minted.is_empty());
    drop(rec);
    w.cleanup(&ran);
}

#[test]
fn the_app_flow_without_an_engine() {
    // The provider alone, as a library call: the request GitHub documents, and revoke.
    let tmp = tempfile::tempdir().unwrap();
    let keys = AppKeys::generate(tmp.path(), "app");
    let grants = Grants::default();
    let gh = fake(&grants, &keys);
    let app = airlock::push::config::GithubApp {
        app_id: APP_ID.to_string(),
        installation_id: INSTALLATION,
        private_key_file: keys.pem.clone(),
        api_url: gh.url(),
        repository: "tasks".into(),
    };
    let token = airlock::push::github_app::mint(&app, SystemTime::now(), Duration::from_secs(3600))
        .unwrap();
    assert!(format!("{token:?}").contains("REDACTED"));
    assert_eq!(grants.lock().unwrap().len(), 1);
    airlock::push::github_app::revoke(&app, &token).unwrap();
    assert!(
        grants.lock().unwrap().is_empty(),
        "revoked token still granted"
    );
    let wrong = airlock::push::config::GithubApp {
        installation_id: 1,
        ..app
    };
    let e = airlock::push::github_app::mint(&wrong, SystemTime::now(), Duration::from_secs(3600))
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 404"), "{e}");
    assert_eq!(gh.record.lock().unwrap().violations.len(), 1);
}

#[test]
fn a_rerun_after_a_crash_neither_pushes_nor_proposes_twice() {
    let f = Flow::new("");
    let job = f.job("t9", "C", "agent/t9-c", "# C\n");
    let (git, gh) = (&f.git, &f.gh);
    let mut runs = Vec::new();
    for _ in 0..2 {
        let r = f.push(&job);
        assert!(r.error.is_none(), "{:?}", r.error);
        runs.push(r);
    }
    assert!(!runs[0].earlier && runs[1].earlier);
    assert_eq!(runs[0].pr, runs[1].pr);
    assert_eq!(git.receive_packs(), 1);
    let rec = gh.record.lock().unwrap();
    assert_eq!(rec.prs.len(), 1, "a second PR was opened");
    assert_eq!(
        rec.minted.len(),
        1,
        "nothing left to do, yet a token was minted"
    );
    assert_eq!(rec.revoked, rec.minted);
    assert_eq!(rec.violations, Vec::<String>::new());
}

/// Push to a fork: `push_url` is the fork's, and the draft PR on the upstream names the branch
/// `<fork owner>:<branch>` (GitHub's `head` for a cross-repository PR). The fake GitHub checks
/// the request's shape and records its body.
#[test]
fn a_fork_push_opens_the_pr_with_the_fork_owner_in_its_head() {
    // `tasks.git` is the fork, as the runner's token sees it.
    let f = Flow::new("head_owner = \"airlock-bot\"\n");
    let job = f.job("t7", "Fork", "agent/t7-fork", "# Fork\n");
    let (git, gh) = (&f.git, &f.gh);
    let r = f.push(&job);
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(
        git.ref_of("tasks.git", "refs/heads/agent/t7-fork")
            .as_deref(),
        Some(f.commit.as_str()),
        "the branch is on the fork"
    );
    let rec = gh.record.lock().unwrap();
    assert_eq!(rec.violations, Vec::<String>::new());
    assert_eq!(rec.prs.len(), 1);
    let pr = &rec.prs[0];
    assert_eq!(pr["head"], "airlock-bot:agent/t7-fork", "{pr}");
    assert_eq!(pr["base"], "main");
    assert_eq!(pr["draft"], true);
    assert_eq!(pr["maintainer_can_modify"], false);
    assert!(
        rec.requests
            .iter()
            .any(|r| r == "POST /repos/acme/tasks/pulls"),
        "{:?}",
        rec.requests
    );
}
