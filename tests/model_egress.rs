//! Model egress end to end on the real engine, under runc and runsc: the sandbox keeps network
//! `none`, reaches the scripted model server on the host only through airlock's per-task proxy,
//! holds only a placeholder key, and the server gets the real one. Never skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;
mod support;

use std::os::unix::fs::PermissionsExt;

use common::{unique, World};
use support::leaks::{assert_text_clean, assert_tree_clean, InspectWatch};
use support::model_server::{ModelServer, Script};

struct Rig {
    w: World,
    server: ModelServer,
    key: String,
}

/// A world whose levels L1..L4 grant provider `anthropic`, defined in models.toml with a
/// key file (mode 0600) and `budget` (TOML lines for `[provider.budget]`).
fn rig(budget: &str) -> Rig {
    let w = World::new();
    let key = format!("sk-ant-REAL-{}", unique("k").replace('-', ""));
    let server = ModelServer::start(
        &key,
        Script {
            file: "hello.txt".into(),
            content: "model-edit\n".into(),
        },
    );
    let key_file = w.tmp.path().join("anthropic.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let models = format!(
        "[[provider]]\nname = \"anthropic\"\nupstream = \"{}\"\nauth = \"x-api-key\"\nkey_file = \"{}\"\nroutes = [\"POST /v1/messages\"]\n[provider.budget]\n{budget}\n",
        server.url(),
        key_file.display()
    );
    std::fs::write(w.policies.join("models.toml"), models).unwrap();
    w.edit_policies(
        "network = \"none\"",
        "network = \"none\"\nmodels = [\"anthropic\"]",
    );
    Rig { w, server, key }
}

fn agent_script(server_port: u16) -> String {
    format!(
        r#"U=$AIRLOCK_MODEL_ANTHROPIC_URL; K=$AIRLOCK_MODEL_ANTHROPIC_KEY
wget -q -O /airlock/out/reply.sse --header "x-api-key: $K" --header "content-type: application/json" --post-data '{{"model":"m","stream":true,"messages":[{{"role":"user","content":"hi"}}]}}' "$U/v1/messages?beta=true" && echo ok-allowed
wget -q -O /dev/null --header "x-api-key: $K" "$U/v1/files"; echo "forbidden-exit=$?"
wget -q -O /dev/null --post-data '{{}}' "$U/v1/messages"; echo "nokey-exit=$?"
if nc -w 2 127.0.0.1 {server_port} </dev/null; then echo DIRECT-OK; else echo direct-failed; fi
wc -l < /proc/net/route > /airlock/out/routes.txt
echo model-edit > /workspace/hello.txt
{{ env; cat /proc/[0-9]*/environ | tr '\0' '\n'; cat /proc/[0-9]*/cmdline | tr '\0' ' '; find /airlock /workspace /home /tmp -type f -size -1000k -not -path '/airlock/out/*' -exec cat {{}} + ; }} > /airlock/out/dump.txt 2>/dev/null
echo agent-done"#
    )
}

fn egress_end_to_end(runtime: &str) {
    let r = rig("requests = 10");
    let watch = InspectWatch::start();
    let script = agent_script(r.server.server.port);
    let spec = r.w.spec(
        "L2",
        &["sh", "-c", &script],
        &format!("runtime = \"{runtime}\"\nmodels = [\"anthropic\"]\n[gate]\ncommands = [[\"sh\", \"-c\", \"grep -q model-edit hello.txt && test ! -e /airlock/model/anthropic.sock\"]]"),
    );
    let ran = r.w.run(&spec);
    let task = ran.task_id();
    let inspects = watch.finish(&task);
    assert_eq!(
        ran.state_reason(),
        ("green".into(), "gate_passed".into()),
        "{}",
        ran.stderr
    );
    let log = r.w.artifact(&ran, "logs/agent-1.log");
    for want in [
        "ok-allowed",
        "forbidden-exit=1",
        "nokey-exit=1",
        "direct-failed",
        "agent-done",
    ] {
        assert!(log.contains(want), "agent log lacks {want}:\n{log}");
    }
    assert_eq!(
        r.w.artifact(&ran, "out/routes.txt").trim(),
        "1",
        "a route exists in the sandbox"
    );
    assert!(
        r.w.artifact(&ran, "out/reply.sse")
            .contains("event: message_stop"),
        "the SSE reply streamed through"
    );
    assert!(r.w.artifact(&ran, "diff.patch").contains("+model-edit"));

    // What the server received: the real key, one allowed request, nothing refused.
    let reqs = r.server.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(
        (
            reqs[0].method.as_str(),
            reqs[0].path.as_str(),
            reqs[0].query.as_str()
        ),
        ("POST", "/v1/messages", "beta=true")
    );
    assert_eq!(reqs[0].header("x-api-key"), Some(r.key.as_str()));
    assert!(
        !format!("{:?}", reqs[0].headers).contains("sk-airlock-"),
        "the placeholder went upstream"
    );

    // What the sandbox saw: the placeholder, never the key.
    let dump = r.w.artifact(&ran, "out/dump.txt");
    assert!(
        dump.contains("AIRLOCK_MODEL_ANTHROPIC_KEY=sk-airlock-"),
        "the dump is not of the agent's env"
    );
    assert!(dump.contains("AIRLOCK_MODEL_ANTHROPIC_URL=http://127.0.0.1:41100"));
    assert_text_clean(&dump, &r.key, "the sandbox's env, /proc and files");
    assert!(assert_tree_clean(&r.w.artifacts, &r.key) > 5);
    assert!(!inspects.is_empty());
    for i in &inspects {
        assert_text_clean(i, &r.key, "docker inspect");
        assert!(i.contains("\"NetworkMode\": \"none\""), "{i}");
    }
    assert_text_clean(&ran.stderr, &r.key, "airlock's stderr");

    // The traffic report: counts, the refused requests by method and path.
    let t = &ran.summary()["model_traffic"]["providers"]["anthropic"];
    assert_eq!(t["requests"], 1, "{t}");
    assert_eq!(t["status"]["200"], 1, "{t}");
    assert!(t["bytes_down"].as_u64().unwrap() > 100, "{t}");
    let refused = t["refused"].as_array().unwrap();
    assert!(
        refused
            .iter()
            .any(|x| x["method"] == "GET" && x["path"] == "/v1/files" && x["status"] == 403),
        "{t}"
    );
    assert!(
        refused
            .iter()
            .any(|x| x["path"] == "/v1/messages" && x["status"] == 401),
        "{t}"
    );
    let evidence = r.w.artifact(&ran, "evidence.md");
    assert!(
        evidence.contains("## Model traffic") && evidence.contains("GET /v1/files"),
        "{evidence}"
    );
    let events = r.w.artifact(&ran, "events.jsonl");
    assert!(events.contains("\"model_egress\""));
    r.w.assert_clean(&task);
}

#[test]
fn egress_through_the_proxy_under_runc() {
    egress_end_to_end("runc");
}

#[test]
fn egress_through_the_proxy_under_runsc() {
    egress_end_to_end("runsc");
}

fn budget_overrun(runtime: &str) {
    let r = rig("requests = 2");
    let script = r#"for i in 1 2 3 4; do wget -q -O /dev/null --header "x-api-key: $AIRLOCK_MODEL_ANTHROPIC_KEY" --post-data '{"messages":[]}' "$AIRLOCK_MODEL_ANTHROPIC_URL/v1/messages"; echo "req $i exit $?"; done; sleep 120"#;
    let spec = r.w.spec(
        "L1",
        &["sh", "-c", script],
        &format!("runtime = \"{runtime}\"\nmodels = [\"anthropic\"]"),
    );
    let ran = r.w.run(&spec);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "model_budget_exhausted".into())
    );
    let s = ran.summary();
    assert_eq!(
        s["attempts"][0]["agent"]["ended"], "cancelled",
        "the agent is stopped, not left to its sleep"
    );
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("request budget of 2"),
        "{s}"
    );
    assert_eq!(s["model_traffic"]["providers"]["anthropic"]["requests"], 2);
    assert!(s["model_traffic"]["exhausted"].as_str().is_some());
    assert_eq!(
        r.server.requests().len(),
        2,
        "nothing past the budget went upstream"
    );
    r.w.assert_clean(&ran.task_id());
}

#[test]
fn a_budget_overrun_ends_the_task_under_runc() {
    budget_overrun("runc");
}

#[test]
fn a_budget_overrun_ends_the_task_under_runsc() {
    budget_overrun("runsc");
}

#[test]
fn admission_refuses_providers_the_level_does_not_grant() {
    let r = rig("requests = 10");
    r.w.edit_policies("models = [\"anthropic\"]", "models = []");
    let spec = r.w.spec("L1", &["true"], "models = [\"anthropic\"]");
    let ran = r.w.run(&spec);
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert_eq!(ran.state_reason().1, "model_not_allowed");
    assert!(ran.summary()["message"]
        .as_str()
        .unwrap()
        .contains("`anthropic` is not granted at L1"));
    assert!(r.server.requests().is_empty());
}

#[test]
fn a_key_file_others_can_read_is_refused_naming_file_and_field() {
    let r = rig("requests = 10");
    let key_file = r.w.tmp.path().join("anthropic.key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let spec = r.w.spec("L1", &["true"], "models = [\"anthropic\"]");
    let ran = r.w.run(&spec);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("models.toml")
            && ran.stderr.contains("provider[0].key_file")
            && ran.stderr.contains("0644"),
        "{}",
        ran.stderr
    );
    assert_text_clean(&ran.stderr, &r.key, "the error");
}

#[test]
fn policy_check_prints_a_presets_argv_and_env() {
    let r = rig("requests = 10");
    let text = format!(
        "title = \"t\"\nlevel = \"L2\"\n[repo]\nurl = {}\nbase = \"main\"\n[issue]\ntext = \"x\"\n[agent]\nimage = \"airlock/agents:latest\"\npreset = \"claude-code\"\nmodel = \"claude-x\"\nmodels = [\"anthropic\"]\n[gate]\ncommands = [[\"true\"]]\n",
        common::toml_str(&r.w.repo.display().to_string())
    );
    let spec = r.w.write_spec(&text);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["policy", "check"])
        .arg(&spec)
        .arg("--policies")
        .arg(&r.w.policies)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = &v["agent"];
    assert_eq!(a["preset"], "claude-code", "{v}");
    let argv: Vec<&str> = a["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(argv[0], "/airlock/model/airlock-forward", "{argv:?}");
    let cli = argv.iter().position(|x| *x == "--").unwrap() + 1;
    assert_eq!(
        &argv[cli..],
        [
            "claude",
            "-p",
            "--output-format",
            "text",
            "--dangerously-skip-permissions",
            "--model",
            "claude-x",
            "<the text of /airlock/prompt.md>"
        ]
    );
    assert_eq!(a["env"]["ANTHROPIC_BASE_URL"], "http://127.0.0.1:41100");
    assert_eq!(
        a["env"]["ANTHROPIC_API_KEY"],
        "sk-airlock-<per-task placeholder>"
    );
    assert_eq!(
        a["env"]["AIRLOCK_MODEL_ANTHROPIC_URL"],
        "http://127.0.0.1:41100"
    );
    assert_text_clean(
        &String::from_utf8_lossy(&out.stdout),
        &r.key,
        "policy check",
    );
}
