//! Forge webhooks and schedules against the real daemon process and the real engine: signed
//! events (real payloads from tests/fixtures/webhooks) start tasks at the template's level, capped
//! for untrusted authors; bad signatures store nothing; redeliveries and a second event for a
//! busy issue start nothing; Gitea/Forgejo and GitLab events run too; schedules fire.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use airlock::trigger::verify::sign_hex;
use common::api::{kind_row, ApiDaemon};
use common::{free_port, toml_str, write_0600, World};

const SECRET: &str = "hook-secret-0123456789abcdef";
/// How long a hook's task may take to end.
const WAIT: u64 = 90;

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn a_signed_github_label_event_runs_at_the_template_level_exactly_once() {
    let d = Hooked::start(&["github"], "");
    let mut v = labeled_issue();
    v["issue"]["body"] = "Fix it, @octocat.\u{1b}[31m\u{202e}evil".into();
    let body = v.to_string();
    let (code, r) = d.github("issues", "d-1", &body, &sig(SECRET, &body));
    assert_eq!(code, 202, "{r}\n{}", d.log());
    let id = r["id"].as_str().unwrap().to_string();
    let (code, again) = d.github("issues", "d-1", &body, &sig(SECRET, &body));
    assert_eq!(
        (code, again["id"].as_str()),
        (200, Some(id.as_str())),
        "redelivery: {again}"
    );
    assert!(
        again["ignored"]
            .as_str()
            .unwrap()
            .contains("already started"),
        "{again}"
    );
    let (code, busy) = d.github("issues", "d-2", &body, &sig(SECRET, &body));
    assert_eq!(code, 200, "{busy}");
    assert!(
        busy["ignored"]
            .as_str()
            .unwrap()
            .contains("queued or running"),
        "{busy}"
    );
    let t = d.wait_final(&id, WAIT);
    assert_eq!(
        (t["state"].as_str(), t["level"].as_str()),
        (Some("green"), Some("L2")),
        "{t}"
    );
    assert_eq!(d.tasks().len(), 1, "one task for three deliveries");
    let report = d.artifact(&id, "out/report");
    assert!(report.contains("Fix it, `@octocat`."), "{report}");
    assert!(
        !report.contains('\u{1b}') && !report.contains('\u{202e}'),
        "{report:?}"
    );
    let ev = d.events(&id);
    let trig = ev
        .iter()
        .find(|e| e["event"] == "triggered")
        .expect("a triggered event");
    assert_eq!(trig["source"], "webhook:issue_label", "{trig}");
    assert_eq!(trig["delivery"], "d-1", "{trig}");
    // After the task ended, a new delivery for the same issue starts a new task.
    let (code, r) = d.github("issues", "d-3", &body, &sig(SECRET, &body));
    assert_eq!(code, 202, "{r}");
}

#[test]
fn a_wrong_or_missing_signature_is_401_and_stores_nothing() {
    let d = Hooked::start(&["github", "gitea", "gitlab"], "");
    let body = labeled_issue().to_string();
    let (code, r) = d.github(
        "issues",
        "x-1",
        &body,
        &sig("wrong-secret-0123456789", &body),
    );
    assert_eq!(code, 401, "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("X-Hub-Signature-256"),
        "{r}"
    );
    let tampered = body.replace("acme/tasks-app", "acme/tasks-apq");
    assert_eq!(
        d.github("issues", "x-2", &tampered, &sig(SECRET, &body)).0,
        401
    );
    let (code, _) = d.post_with(
        "/v1/hooks/github",
        &[
            ("X-GitHub-Event", "issues".into()),
            ("X-GitHub-Delivery", "x-3".into()),
        ],
        &body,
    );
    assert_eq!(code, 401, "no signature");
    let gl = [
        ("X-Gitlab-Event", "Issue Hook".to_string()),
        ("X-Gitlab-Token", "nope-nope-nope-nope".into()),
        ("X-Gitlab-Event-UUID", "u-1".into()),
    ];
    assert_eq!(d.post_with("/v1/hooks/gitlab", &gl, "{}").0, 401);
    let ge = [
        ("X-Gitea-Event", "issues".to_string()),
        ("X-Gitea-Signature", sig_hex("x", "{}")),
        ("X-Gitea-Delivery", "g-1".into()),
    ];
    assert_eq!(d.post_with("/v1/hooks/gitea", &ge, "{}").0, 401);
    // A signed redelivery of x-1 is not a redelivery: 401 recorded nothing.
    let (code, r) = d.github("issues", "x-1", &body, &sig(SECRET, &body));
    assert_eq!(code, 202, "{r}");
    assert_eq!(d.tasks().len(), 1);
    let (code, r) = d.github(
        "ping",
        "x-4",
        "{\"zen\":\"hi\"}",
        &sig(SECRET, "{\"zen\":\"hi\"}"),
    );
    assert_eq!((code, r["ignored"].is_string()), (200, true), "{r}");
    let big = "x".repeat((1 << 20) + 10);
    assert_eq!(d.github("issues", "x-5", &big, &sig(SECRET, &big)).0, 413);
}

#[test]
fn untrusted_authors_are_capped_and_comment_commands_follow_the_commenter() {
    let d = Hooked::start(&["github"], "level = \"L3\"");
    let mut label = labeled_issue();
    label["issue"]["author_association"] = "NONE".into();
    let body = label.to_string();
    let (code, r) = d.github("issues", "u-1", &body, &sig(SECRET, &body));
    assert_eq!(code, 202, "{r}\n{}", d.log());
    let capped = d.wait_final(r["id"].as_str().unwrap(), WAIT);
    assert_eq!(
        (capped["state"].as_str(), capped["level"].as_str()),
        (Some("green"), Some("L1")),
        "{capped}"
    );
    let mut c = fixture("github-issue_comment-created.json");
    c["repository"]["full_name"] = "acme/tasks-app".into();
    c["issue"]["number"] = 7.into();
    c["issue"]["author_association"] = "NONE".into();
    c["comment"]["body"] = "/airlock please add a test".into();
    let mut ids = vec![];
    for (n, assoc) in [(7, "COLLABORATOR"), (8, "NONE")] {
        c["issue"]["number"] = n.into();
        c["comment"]["author_association"] = assoc.into();
        let body = c.to_string();
        let (code, r) = d.github(
            "issue_comment",
            &format!("c-{n}"),
            &body,
            &sig(SECRET, &body),
        );
        assert_eq!(code, 202, "{assoc}: {r}");
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    let collab = d.wait_final(&ids[0], WAIT);
    assert_eq!(
        (collab["state"].as_str(), collab["level"].as_str()),
        (Some("green"), Some("L3")),
        "{collab}"
    );
    let none = d.wait_final(&ids[1], WAIT);
    assert_eq!(
        (none["state"].as_str(), none["level"].as_str()),
        (Some("green"), Some("L1")),
        "{none}"
    );
    assert!(d
        .artifact(&ids[0], "out/report")
        .contains("please add a test"));
    c["comment"]["body"] = "thanks!".into();
    let body = c.to_string();
    let (code, r) = d.github("issue_comment", "c-9", &body, &sig(SECRET, &body));
    assert_eq!((code, r["ignored"].is_string()), (200, true), "{r}");
}

#[test]
fn gitea_forgejo_and_gitlab_events_each_run_a_task() {
    let d = Hooked::start(&["gitea", "gitlab"], "");
    let v = fixture("gitea-issues-label_updated.json");
    let body = v.to_string();
    let h = [
        ("X-Gitea-Event", "issues".to_string()),
        ("X-Gitea-Event-Type", "issue_label".into()),
        ("X-Gitea-Delivery", "g-1".into()),
        ("X-Gitea-Signature", sig_hex(SECRET, &body)),
    ];
    let (code, r) = d.post_with("/v1/hooks/gitea", &h, &body);
    assert_eq!(code, 202, "{r}\n{}", d.log());
    let gitea = r["id"].as_str().unwrap().to_string();
    let mut c = fixture("gitea-issue_comment-created.json");
    c["issue"]["number"] = 2.into();
    let body = c.to_string();
    let h = [
        ("X-Forgejo-Event", "issue_comment".to_string()),
        ("X-Forgejo-Delivery", "f-1".into()),
        ("X-Forgejo-Signature", sig_hex(SECRET, &body)),
    ];
    let (code, r) = d.post_with("/v1/hooks/gitea", &h, &body);
    assert_eq!(code, 202, "forgejo: {r}");
    let forgejo = r["id"].as_str().unwrap().to_string();
    let mut n = fixture("gitlab-note-hook-issue.json");
    n["object_attributes"]["note"] = "/airlock go".into();
    let body = n.to_string();
    let h = [
        ("X-Gitlab-Event", "Note Hook".to_string()),
        ("X-Gitlab-Event-UUID", "l-1".into()),
        ("X-Gitlab-Token", SECRET.into()),
    ];
    let (code, r) = d.post_tcp("/v1/hooks/gitlab", &h, &body);
    assert_eq!(code, 202, "gitlab over TCP without a bearer token: {r}");
    let gitlab = r["id"].as_str().unwrap().to_string();
    for (id, level) in [(&gitea, "L2"), (&forgejo, "L2"), (&gitlab, "L2")] {
        let t = d.wait_final(id, WAIT);
        assert_eq!(
            (t["state"].as_str(), t["level"].as_str()),
            (Some("green"), Some(level)),
            "{t}"
        );
    }
    let (code, _) = d.post_tcp("/v1/tasks", &[], "title = \"x\"");
    assert_eq!(
        code, 401,
        "the rest of the TCP API still needs the bearer token"
    );
}

#[test]
fn bad_trigger_and_schedule_tables_stop_the_daemon_naming_file_and_field() {
    let world = World::new();
    let dir = world.tmp.path();
    let secret = write_0600(&dir.join("s"), &format!("{SECRET}\n"));
    let open = dir.join("open");
    std::fs::write(&open, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let good = dir.join("t.toml");
    let repo = toml_str(&world.repo.display().to_string());
    std::fs::write(&good, format!("level = \"L1\"\n[repo]\nurl = {repo}\nbase = \"main\"\n[agent]\nimage = \"i\"\ncommand = [\"true\"]\n")).unwrap();
    let with_issue = dir.join("i.toml");
    std::fs::write(
        &with_issue,
        std::fs::read_to_string(&good).unwrap() + "[issue]\ntext = \"x\"\n",
    )
    .unwrap();
    let cfg = dir.join("airlock.toml");
    let head = format!(
        "state_dir = {:?}\nsocket = {:?}\npolicies_dir = {:?}\n",
        dir.join("st"),
        dir.join("s.sock"),
        world.policies
    );
    let trig = |secret: &Path, template: &Path, extra: &str| {
        format!("[[trigger]]\nforge = \"github\"\nsecret_file = {secret:?}\nrepository = \"a/b\"\nlabel = \"airlock\"\ntemplate = {template:?}\n{extra}")
    };
    let cases = [
        (
            trig(&open, &good, ""),
            "trigger[0].secret_file",
            "chmod 600",
        ),
        (
            trig(&secret, &with_issue, ""),
            "trigger[0].template",
            "[issue]",
        ),
        (
            trig(&secret, &good, "bogus = 1\n"),
            "trigger.bogus",
            "unknown field",
        ),
        (
            trig(&secret, &good, "trusted = [\"x\"]\n"),
            "trigger[0].trusted",
            "author_association",
        ),
        (
            trig(&secret, &good, "").replace("github", "gitbucket"),
            "trigger[0].forge",
            "accepted: github, gitea, forgejo, gitlab",
        ),
        (
            format!("[[schedule]]\ncron = \"0 2 * *\"\ntemplate = {good:?}\n"),
            "schedule[0].cron",
            "5 (minute",
        ),
        (
            format!("[[schedule]]\ncron = \"0 99 * * *\"\ntemplate = {good:?}\n"),
            "schedule[0].cron",
            "not a cron",
        ),
    ];
    for (table, field, why) in cases {
        std::fs::write(&cfg, format!("{head}{table}")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(["daemon", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{table}: {err}");
        assert!(
            err.contains(&cfg.display().to_string())
                && err.contains(&format!("field `{field}`"))
                && err.contains(why),
            "{table}: {err}"
        );
    }
}

/// A per-second cron (seconds field first) fires in the real daemon; after a restart the latest
/// slot missed while it was down runs once, and no slot ever runs twice.
#[test]
fn a_schedule_fires_and_a_restart_runs_the_missed_slot_once() {
    let sched = "[[schedule]]\nname = \"tick\"\ncron = \"*/3 * * * * *\"\ntemplate = TEMPLATE\n";
    let mut d = Hooked::start_with(&[], "", sched);
    let until = Instant::now() + Duration::from_secs(30);
    while d.triggers().is_empty() {
        assert!(Instant::now() < until, "no scheduled task:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let first = d.triggers()[0].clone();
    assert_eq!(
        (first["source"].as_str(), first["schedule"].as_str()),
        (Some("schedule"), Some("tick")),
        "{first}"
    );
    let id = first["task_id"].as_str().unwrap().to_string();
    let t = d.wait_final(&id, WAIT);
    assert_eq!(
        (t["state"].as_str(), t["level"].as_str()),
        (Some("green"), Some("L2")),
        "{t}"
    );
    assert!(d.artifact(&id, "out/report").contains("scheduled run"));
    d.stop();
    let down = airlock::store::now_ms();
    std::thread::sleep(Duration::from_millis(7_500));
    let up = airlock::store::now_ms();
    d.spawn();
    std::thread::sleep(Duration::from_millis(1_500));
    let slots: Vec<i64> = d
        .triggers()
        .iter()
        .map(|e| e["slot_ms"].as_i64().unwrap())
        .collect();
    // At least two slots passed while it was down; at most one of them ran (the latest, unless
    // the first tick after the restart already saw a newer slot), and nothing older.
    let after: Vec<i64> = slots.iter().copied().filter(|s| *s > down).collect();
    let missed = after.iter().filter(|s| **s <= up).count();
    assert!(
        !after.is_empty() && missed <= 1,
        "slots {slots:?}, down {down}, up {up}:\n{}",
        d.log()
    );
    assert!(
        after.iter().all(|s| *s > up - 3_000),
        "an older missed slot ran: {after:?}, up {up}"
    );
    let mut unique = slots.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), slots.len(), "a slot ran twice: {slots:?}");
}

/// With a push.toml remote for the repository, the daemon removes the trigger label once the
/// task is accepted and comments when it starts and when it ends, each time with a token minted
/// for the call by the remote's provider and revoked after; nothing else reaches the forge.
#[test]
fn status_goes_back_to_the_forge_with_a_short_lived_token() {
    use std::sync::{Arc, Mutex};
    use support::http::{Req, Resp, Server};
    let seen: Arc<Mutex<Vec<Req>>> = Arc::default();
    let log = seen.clone();
    let forge = Server::start(Arc::new(move |r: Req| {
        log.lock().unwrap().push(r.clone());
        match r.method.as_str() {
            "POST" => Resp::json(201, json!({ "id": 1 })),
            _ => Resp::json(200, json!([])),
        }
    }));
    let world = World::new();
    let token = "ghs_statusTOKEN_0123456789";
    let expires = std::time::SystemTime::now() + Duration::from_secs(600);
    let provider =
        support::provider::Provider::new(&world.tmp.path().join("provider"), token, expires);
    std::fs::write(world.policies.join("push.toml"), format!(
        "[[remote]]\nrepo = {}\npush_url = \"http://127.0.0.1:9/tasks-app.git\"\nprotected = [\"main\"]\nauth_user = \"x-access-token\"\n{}\n[remote.pr]\nforge = \"github\"\napi_url = \"{}\"\nproject = \"acme/tasks-app\"\n",
        toml_str(&world.repo.display().to_string()), provider.toml(), forge.url("").trim_end_matches('/'),
    )).unwrap();
    let d = Hooked::start_in(world, &["github"], "", "");
    let body = labeled_issue().to_string();
    let (code, r) = d.github("issues", "s-1", &body, &sig(SECRET, &body));
    assert_eq!(code, 202, "{r}\n{}", d.log());
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(d.wait_final(&id, WAIT)["state"], "green");
    let until = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < 3 {
        assert!(
            Instant::now() < until,
            "forge saw {:?}\n{}",
            seen.lock().unwrap(),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let reqs = seen.lock().unwrap().clone();
    let lines: Vec<String> = reqs
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(reqs.len(), 3, "{lines:?}");
    assert!(
        lines.contains(&"DELETE /repos/acme/tasks-app/issues/1/labels/airlock".to_string()),
        "{lines:?}"
    );
    let comments: Vec<String> = reqs
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.json()["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(comments.len(), 2, "{lines:?}");
    assert!(reqs
        .iter()
        .filter(|r| r.method == "POST")
        .all(|r| r.path == "/repos/acme/tasks-app/issues/1/comments"));
    assert!(
        comments[0].contains(&id) && comments[0].contains("started at L2"),
        "{comments:?}"
    );
    assert!(comments[1].contains("ended **green**"), "{comments:?}");
    for r in &reqs {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {token}").as_str())
        );
    }
    assert!(comments.iter().all(|c| !c.contains(token)));
    let calls = std::fs::read_to_string(provider.dir.join("calls.log")).unwrap();
    let revokes = std::fs::read_to_string(provider.dir.join("revokes.log")).unwrap();
    assert_eq!(
        (
            calls.lines().count(),
            revokes.lines().filter(|l| *l == "revoked").count()
        ),
        (3, 3),
        "{calls}\n{revokes}"
    );
    assert!(
        !d.log().contains(token),
        "the token reached the daemon's log"
    );
}

// ---------------------------------------------------------------------------------------------
// The harness

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webhooks")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// GitHub's `issues` `labeled` event for the triggers' repository and label.
fn labeled_issue() -> Value {
    let mut v = fixture("github-issues-labeled.json");
    v["repository"]["full_name"] = "acme/tasks-app".into();
    v["label"]["name"] = "airlock".into();
    v
}

fn sig(secret: &str, body: &str) -> String {
    format!("sha256={}", sign_hex(secret.as_bytes(), body.as_bytes()))
}

fn sig_hex(secret: &str, body: &str) -> String {
    sign_hex(secret.as_bytes(), body.as_bytes())
}

/// A daemon with `[[trigger]]`s for the named forges (repositories as in the fixtures) and a
/// TCP listener, all sharing [`SECRET`] and one template.
type Hooked = ApiDaemon;

impl Hooked {
    fn start(forges: &[&str], level_line: &str) -> Hooked {
        Hooked::start_with(forges, level_line, "")
    }

    /// `extra` is appended to airlock.toml; `TEMPLATE` in it is the template's path.
    fn start_with(forges: &[&str], level_line: &str, extra: &str) -> Hooked {
        Hooked::start_in(World::new(), forges, level_line, extra)
    }

    /// As [`Hooked::start_with`] in a world the test prepared (a push.toml, say).
    fn start_in(world: World, forges: &[&str], level_line: &str, extra: &str) -> Hooked {
        let mut d = Hooked::owning(world);
        let dir = d.dir.clone();
        let secret = write_0600(&dir.join("hook.secret"), &format!("{SECRET}\n"));
        let token = write_0600(&dir.join("api.token"), "api-token-0123456789abcdef\n");
        let template = dir.join("template.toml");
        let level = if level_line.is_empty() {
            "level = \"L2\""
        } else {
            level_line
        };
        std::fs::write(&template, format!(
            "{level}\n[repo]\nurl = {}\nbase = \"main\"\n[agent]\nimage = \"airlock/sandbox-test:latest\"\ncommand = [\"sh\", \"-c\", \"cat /airlock/issue.md > /airlock/out/report; sleep 2\"]\n[gate]\ncommands = [[\"true\"]]\n",
            toml_str(&d.world().repo.display().to_string())
        )).unwrap();
        let tcp = free_port();
        let mut cfg = format!(
            "{}concurrency = 4\n[tcp]\nlisten = \"127.0.0.1:{tcp}\"\ntoken_file = {:?}\n[recovery]\nsweep = \"owned\"\n",
            d.dirs_toml(d.world()),
            token,
        );
        for f in forges {
            let (forge, repo, extra) = match *f {
                "github" => ("github", "acme/tasks-app", ""),
                "gitea" => ("gitea", "gitea/webhooks", "trusted = [\"gitea\"]\n"),
                _ => (
                    "gitlab",
                    "gitlab-org/gitlab-test",
                    "trusted = [\"user1\"]\n",
                ),
            };
            cfg.push_str(&format!(
                "[[trigger]]\nforge = \"{forge}\"\nsecret_file = {secret:?}\nrepository = \"{repo}\"\nlabel = \"airlock\"\ncommand = \"/airlock\"\ntemplate = {template:?}\n{extra}"
            ));
        }
        cfg.push_str(&extra.replace("TEMPLATE", &format!("{template:?}")));
        std::fs::write(&d.config, cfg).unwrap();
        d.tcp = Some(tcp);
        d.spawn();
        d
    }

    /// Each task's `triggered` event.
    fn triggers(&self) -> Vec<Value> {
        self.tasks()
            .iter()
            .filter_map(|t| {
                let id = t["id"].as_str().unwrap();
                self.events(id)
                    .into_iter()
                    .find(|e| e["event"] == "triggered")
            })
            .collect()
    }

    fn github(&self, event: &str, delivery: &str, body: &str, signature: &str) -> (u16, Value) {
        let h = [
            ("X-GitHub-Event", event.to_string()),
            ("X-GitHub-Delivery", delivery.to_string()),
            ("X-Hub-Signature-256", signature.to_string()),
            ("Content-Type", "application/json".to_string()),
        ];
        self.post_with("/v1/hooks/github", &h, body)
    }

    fn tasks(&self) -> Vec<Value> {
        self.get("/v1/tasks").1["tasks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

#[test]
fn a_closed_pull_request_moves_its_task_to_merged_in_the_stats() {
    // The trigger's template declares the kind of the tasks it starts.
    let mut d = Hooked::start(&["github"], "level = \"L2\"\nkind = \"docs\"");
    // API submissions may carry a trusted author: restart with `author_trusted = true`.
    let cfg = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, format!("author_trusted = true\n{cfg}")).unwrap();
    d.stop();
    d.spawn();
    let body = labeled_issue().to_string();
    let (code, r) = d.github("issues", "k-1", &body, &sig(SECRET, &body));
    assert_eq!(code, 202, "{r}\n{}", d.log());
    d.wait_final(r["id"].as_str().unwrap(), WAIT);
    // A task with a branch, submitted over the API.
    let spec = format!(
        "title = \"Fix the docs link\"\nlevel = \"L2\"\nkind = \"bugfix\"\n[repo]\nurl = {}\nbase = \"main\"\n[issue]\ntext = \"x\"\n[agent]\nimage = \"airlock/sandbox-test:latest\"\ncommand = [\"sh\", \"-c\", \"echo fixed >> README.md\"]\n[gate]\ncommands = [[\"true\"]]\n",
        toml_str(&d.world().repo.display().to_string())
    );
    let (code, r) = d.post("/v1/tasks?name=task.toml&author=trusted", &spec);
    assert_eq!(code, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let t = d.wait_final(&id, WAIT);
    assert_eq!(t["state"], "green", "{t}");
    let branch = t["summary"]["branch"].as_str().unwrap().to_string();
    assert!(branch.starts_with(&format!("agent/{id}-")), "{branch}");
    let closed = |merged: bool, branch: &str, repo: &str| {
        json!({ "action": "closed", "number": 7,
                "pull_request": { "merged": merged, "head": { "ref": branch }, "base": { "ref": "main" } },
                "repository": { "full_name": repo } })
        .to_string()
    };
    // Unsigned: 401, nothing recorded.
    let b = closed(true, &branch, "acme/tasks-app");
    let (code, _) = d.github("pull_request", "p-0", &b, "sha256=00");
    assert_eq!(code, 401);
    // Another repository's PR, a branch of no task: recorded nowhere.
    let b = closed(true, &branch, "evil/other");
    let (code, r) = d.github("pull_request", "p-1", &b, &sig(SECRET, &b));
    assert_eq!(code, 200, "{r}");
    assert!(r["ignored"].as_str().unwrap().contains("evil/other"), "{r}");
    let other = format!("agent/{id}-another-slug");
    let b = closed(true, &other, "acme/tasks-app");
    let (code, r) = d.github("pull_request", "p-2", &b, &sig(SECRET, &b));
    assert_eq!((code, r["ignored"].is_string()), (200, true), "{r}");
    let stats = d.get("/v1/stats").1;
    assert_eq!(kind_row(&stats, "bugfix")["merged"], 0, "{stats}");
    assert_eq!(
        kind_row(&stats, "docs")["tasks"],
        1,
        "the template's kind: {stats}"
    );
    // The bugfix row's (merged, closed_unmerged).
    let bugfix_closes = || {
        let bugfix = kind_row(&d.get("/v1/stats").1, "bugfix");
        (
            bugfix["merged"].as_u64(),
            bugfix["closed_unmerged"].as_u64(),
        )
    };
    // Closed unmerged, then reopened and merged: the last report counts.
    let b = closed(false, &branch, "acme/tasks-app");
    let (code, r) = d.github("pull_request", "p-3", &b, &sig(SECRET, &b));
    assert_eq!(
        (code, r["recorded"].as_str(), r["task"].as_str()),
        (200, Some("closed_unmerged"), Some(id.as_str())),
        "{r}"
    );
    assert_eq!(bugfix_closes(), (Some(0), Some(1)));
    let b = closed(true, &branch, "acme/tasks-app");
    let (code, r) = d.github("pull_request", "p-4", &b, &sig(SECRET, &b));
    assert_eq!((code, r["recorded"].as_str()), (200, Some("merged")), "{r}");
    assert_eq!(bugfix_closes(), (Some(1), Some(0)));
    let metrics = d.text("/metrics");
    let line = "airlock_kind_pull_requests_closed_total{kind=\"bugfix\",outcome=\"merged\"} 1";
    assert!(
        metrics.lines().any(|l| l == line),
        "missing {line}:\n{metrics}"
    );
}
