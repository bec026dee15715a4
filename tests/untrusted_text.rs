//! Container-produced text reaches no output unescaped (#10 items 10 and 11): C0/C1 controls and
//! bidi characters planted in a failure message, a test id and a file name are shown as visible
//! escapes in summary.json, events.jsonl, `--json` output, the terminal and evidence.md; the
//! bidi controls the agent added are a red flag citing file:line; Markdown and HTML in a
//! failure message stay text in evidence.md (the PR body). Under the most permissive shipped
//! rules a bidi control still stops the task with the flag. Real engine; never skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;
mod support;

use std::time::{Duration, SystemTime};

use common::World;
use serde_json::Value;
use support::provider::{test_token, Provider};
use support::world::PushWorld;

/// A control (but newline/tab), a C1 control, or a bidi/zero-width character.
fn forbidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}'..='\u{200f}')
}

fn assert_inert(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|c| forbidden(*c)) {
        panic!("{what} holds U+{:04X} unescaped:\n{text}", c as u32);
    }
}

fn assert_inert_json(what: &str, v: &Value) {
    match v {
        Value::String(s) => assert_inert(what, s),
        Value::Array(a) => a.iter().for_each(|v| assert_inert_json(what, v)),
        Value::Object(m) => m.iter().for_each(|(k, v)| {
            assert_inert(what, k);
            assert_inert_json(what, v)
        }),
        _ => {}
    }
}

/// `md` without its fenced code blocks.
fn outside_fences(md: &str) -> String {
    let mut fence: Option<String> = None;
    let mut out = String::new();
    for line in md.lines() {
        let ticks: String = line.chars().take_while(|c| *c == '`').collect();
        match &fence {
            None if ticks.len() >= 3 => fence = Some(ticks),
            Some(f) if ticks == *f && line.trim_end() == f => fence = None,
            None => {
                out.push_str(line);
                out.push('\n');
            }
            Some(_) => {}
        }
    }
    out
}

#[test]
fn planted_controls_and_markup_reach_no_output_unescaped() {
    let world = World::new();
    // The agent adds a file whose name holds a C1 control and a bidi override, with a bidi
    // override in its line; the gate fails a test whose id and message hold controls and markup.
    let agent = r#"printf 'x = "\342\200\256"\n' > "$(printf 'src/ev\302\233il\342\200\256.py')""#;
    let gate = r#"printf '=========================== short test summary info ============================\nFAILED tests/test_x.py::test_a\302\233[2J - AssertionError: <img src=x onerror=alert(1)> [c](javascript:alert(1)) `x` @admin \342\200\256evil\033[31m\n========================= 1 failed in 0.01s =========================\n'; exit 1"#;
    let extra = format!(
        "[gate]\ncommands = [[\"sh\", \"-c\", {}]]\n[limits]\nattempts = 1\n",
        common::toml_str(gate)
    );
    let spec = world.spec("L2", &["sh", "-c", agent], &extra);
    let out = world.command(&spec).arg("-v").output().unwrap();
    let ran = common::ran(out);
    assert!(ran.summary.is_some(), "no --json summary: {}", ran.stdout);
    assert_inert("--json output", &ran.stdout);
    assert_inert_json("--json output", ran.summary());
    assert_inert("the terminal (stderr)", &ran.stderr);
    let summary: Value = serde_json::from_str(&world.artifact(&ran, "summary.json")).unwrap();
    assert_inert_json("summary.json", &summary);
    for line in world.artifact(&ran, "events.jsonl").lines() {
        assert_inert_json("events.jsonl", &serde_json::from_str(line).unwrap());
    }
    let evidence = world.artifact(&ran, "evidence.md");
    assert_inert("evidence.md", &evidence);
    for log in ["logs/agent-1.log", "logs/gate-1.log"] {
        assert_inert(log, &world.artifact(&ran, log));
    }

    // The failure was parsed, its text kept visible as escapes.
    let failure = &summary["attempts"][0]["failures"][0];
    let id = failure["test_id"].as_str().unwrap_or_default();
    assert!(id.contains("\\u{9b}"), "{failure}");
    let msg = failure["message"].as_str().unwrap_or_default();
    assert!(msg.contains("\\u{202e}evil"), "{failure}");

    // Trojan Source: a red flag at the file and line, and one for the file name.
    let flags = summary["attempts"][0]["red_flags"].as_array().unwrap();
    let bidi: Vec<&Value> = flags
        .iter()
        .filter(|f| f["kind"] == "bidi_control")
        .collect();
    assert!(
        bidi.iter().any(|f| f["line"] == 1) && bidi.iter().any(|f| f["line"].is_null()),
        "{flags:?}"
    );
    assert!(
        bidi[0]["file"].as_str().unwrap().contains("\\u{9b}"),
        "{flags:?}"
    );
    assert_eq!(summary["reason"], "red_flag", "{summary}");
    assert!(evidence.contains("bidi\\_control"), "{evidence}");

    // Markup in the failure message is text in the PR body: no tag, no link, no mention
    // (fenced code blocks, where the gate's own argv is quoted, render nothing).
    let evidence = outside_fences(&evidence);
    assert!(!evidence.contains("<img"), "{evidence}");
    assert!(
        evidence.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{evidence}"
    );
    assert!(
        !evidence.replace("\\](", "").contains("](javascript:"),
        "an unescaped link: {evidence}"
    );
    assert!(
        evidence.contains("\\[c\\](javascript:alert(1))"),
        "{evidence}"
    );
    assert!(evidence.contains("\\`x\\`"), "{evidence}");
    let prose: String = evidence
        .split("<code>")
        .map(|part| part.split_once("</code>").map_or(part, |(_, after)| after))
        .collect();
    assert!(!prose.contains("@admin"), "a mention outside code: {prose}");
    assert!(prose.contains("@&#8203;admin"), "{prose}");
    world.assert_clean(&ran.task_id());
}

/// The agent appends a line holding a right-to-left override and an isolate (Trojan Source)
/// to src/app.py, which has one line.
const TROJAN: &str =
    r#"printf 'access = "user\342\200\256 \342\201\246// admin\342\201\251"\n' >> src/app.py"#;

/// The flags of `kind` in the last attempt of `summary`.
fn flags_of<'a>(summary: &'a Value, kind: &str) -> Vec<&'a Value> {
    let attempts = summary["attempts"].as_array().unwrap();
    let last = attempts.last().unwrap();
    let flags = last["red_flags"].as_array().unwrap();
    flags.iter().filter(|f| f["kind"] == kind).collect()
}

/// No level can let a bidi control through: under the most permissive shipped rules (L3, the
/// highest the CLI may start, with push configured and a green gate; L1, with no gate at all)
/// the task stops needs_human/red_flag citing src/app.py:2, and nothing reaches the remote or
/// the token provider. (A level file that tries to downgrade the flag is refused at load:
/// tests/levels.rs.)
#[test]
fn a_bidi_control_stops_the_task_under_the_most_permissive_shipped_levels() {
    let w = PushWorld::new();
    let provider = Provider::new(
        &w.fixtures.join("provider"),
        &test_token(),
        SystemTime::now() + Duration::from_secs(1800),
    );
    w.push_toml(&provider.toml(), "");
    let green_gate = "[gate]\ncommands = [[\"true\"]]\n";
    for (level, extra) in [("L3", green_gate), ("L1", "")] {
        let ran = w.run(&w.world.spec(level, &["sh", "-c", TROJAN], extra), &[], &[]);
        let summary: Value = serde_json::from_str(&w.world.artifact(&ran, "summary.json")).unwrap();
        assert_eq!(
            (summary["state"].as_str(), summary["reason"].as_str()),
            (Some("needs_human"), Some("red_flag")),
            "{level}: {}\n{summary}",
            ran.stderr
        );
        assert_eq!(ran.code, 1, "{level}");
        let last = summary["attempts"].as_array().unwrap().last().unwrap();
        if level == "L3" {
            assert_eq!(
                last["gate_passed"], true,
                "the flag, not the gate, stopped it"
            );
        }
        let bidi = flags_of(&summary, "bidi_control");
        assert_eq!(bidi.len(), 1, "{level}: {bidi:?}");
        assert_eq!(
            (bidi[0]["file"].as_str(), bidi[0]["line"].as_u64()),
            (Some("src/app.py"), Some(2))
        );
        let detail = bidi[0]["detail"].as_str().unwrap();
        assert!(
            detail.contains("U+202E") && detail.contains("U+2066"),
            "{detail}"
        );
        assert_eq!(summary["pushed"], false, "{level}: {summary}");
        assert!(!w.artifacts_of(&ran).join("push.json").exists(), "{level}");
        assert!(
            w.world
                .artifact(&ran, "evidence.md")
                .contains("src/app.py:2"),
            "{level}: the evidence cites the line"
        );
        w.cleanup(&ran);
        w.world.assert_clean(&ran.task_id());
    }
    assert_eq!(
        provider.calls(),
        Vec::<String>::new(),
        "a flagged task minted a token"
    );
    assert_eq!(w.git.requests(), 0, "a flagged task talked to the remote");
}
