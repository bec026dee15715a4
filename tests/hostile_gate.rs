//! A hostile gate (issue 10 items 1 and 2): its output is bounded on the host whatever it
//! prints, the timeout holds whatever the output, and it cannot write anything the export
//! reads nor leave anything for the next gate command. Real engine, real `airlock run`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;

use std::time::{Duration, Instant};

use common::World;

const AGENT: &[&str] = &["sh", "-c", "echo agent-report > /airlock/out/report.md"];

fn gate(commands: &[&[&str]], extra: &str) -> String {
    let cmds: Vec<String> = commands.iter().map(|c| common::toml_argv(c)).collect();
    format!("[gate]\ncommands = [{}]\n{extra}", cmds.join(", "))
}

/// The ceiling on the debug `airlock run` process's peak resident set while a gate floods.
/// Before the fix the process grew by ~100 MB/s (7.2 GB in 72 s), so 20 s of flood would pass
/// 1.5 GB; bounded, the debug build peaked at 64.2 MiB in CI (an unoptimised binary and the
/// allocator's slack), too close to 64 MiB to be the test's line. The 64 MiB figure is for the release
/// build and is measured by `make bench` (scripts/bench-flood.py), not by a timed test.
const DEBUG_RSS_CEILING_KB: u64 = 160 * 1024;

/// Run `spec` and sample the airlock process's resident set while it runs: (ran, peak kB).
fn run_sampling_rss(world: &World, spec: &std::path::Path) -> (common::Ran, u64) {
    let mut child = common::spawn(&mut world.command(spec));
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(text) = std::fs::read_to_string(&status) {
            for l in text.lines() {
                if let Some(v) = l.strip_prefix("VmHWM:") {
                    let kb: u64 = v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0);
                    peak = peak.max(kb);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (common::ran(child.wait_with_output().unwrap()), peak)
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).unwrap().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            dir_bytes(&e.path())
        } else {
            m.len()
        };
    }
    total
}

/// What a flood leaves, checked alike for every flooding gate: run `flood` as the only gate
/// command of an L2 task with a 20 s timeout, sampling airlock's RSS. The task ends at its
/// timeout (not an engine error minutes later), airlock stays under the debug RSS ceiling, the
/// artifacts stay under the caps (12 MiB in all, the gate log at `log_bytes` with head and tail
/// kept and the rest counted, events under the event cap), at most `failures` structured
/// failures are kept, and nothing of the task remains. Returns the summary's gate record, for
/// the caller's checks of what was cut.
fn assert_flood_bounded(flood: &[&str]) -> serde_json::Value {
    let world = World::new();
    let spec = world.spec(
        "L2",
        AGENT,
        &gate(&[flood], "[limits]\ntimeout = \"20s\"\nattempts = 1"),
    );
    let t = Instant::now();
    let (ran, peak_kb) = run_sampling_rss(&world, &spec);
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(
        ran.state_reason(),
        ("needs_human".into(), "timeout".into()),
        "{}",
        ran.stderr
    );
    assert!(
        peak_kb < DEBUG_RSS_CEILING_KB,
        "airlock's peak RSS was {peak_kb} kB (ceiling {DEBUG_RSS_CEILING_KB} kB)"
    );
    let attempt = &ran.summary()["attempts"][0];
    let failures = attempt["failures"].as_array().unwrap().len();
    assert!(failures <= 100, "{failures} failures kept");
    let dir = world.artifacts.join(ran.task_id());
    let total = dir_bytes(&dir);
    assert!(total < 12 << 20, "artifacts are {total} bytes");
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let n = events.lines().count();
    assert!(n <= 5000 + 10, "{n} events");
    let log = std::fs::metadata(dir.join("logs/gate-1.log"))
        .unwrap()
        .len();
    assert!(log <= (1 << 20) + 4096, "gate log is {log} bytes");
    let record = attempt["gate"][0].clone();
    // How much the gate printed depends on how much of the 20 s the machine left it; a log at
    // its cap must record what it left out.
    assert!(
        record["log_bytes_omitted"].as_u64().unwrap_or(0) > 0 || log < 1 << 20,
        "the log's cut is not recorded: {record}"
    );
    world.assert_clean(&ran.task_id());
    record
}

#[test]
fn a_gate_flooding_unique_lint_lines_stays_bounded_in_memory_and_artifacts() {
    let flood = [
        "sh",
        "-c",
        "i=0; while :; do echo \"f$i.py:1:1: E302 x\"; i=$((i+1)); done",
    ];
    let record = assert_flood_bounded(&flood);
    assert!(
        record["truncated"]["failures_omitted"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "the failures' cut is not recorded: {record}"
    );
}

#[test]
fn the_gate_cannot_forge_the_report_and_each_command_gets_a_fresh_view() {
    let world = World::new();
    let forge = [
        "sh",
        "-c",
        "echo forged > /airlock/out/report.md; echo forged > /airlock/out/extra; touch /workspace/gate-marker; mkdir -p /airlock/out 2>/dev/null; exit 0",
    ];
    let fresh = [
        "sh",
        "-c",
        "test ! -e /workspace/gate-marker && test ! -e /airlock/out/report.md",
    ];
    let spec = world.spec("L2", AGENT, &gate(&[&forge, &fresh], ""));
    let ran = world.run(&spec);
    assert_eq!(
        ran.state_reason(),
        ("green".into(), "gate_passed".into()),
        "{}\n{}",
        ran.stderr,
        world.artifact(&ran, "logs/gate-1.log")
    );
    assert_eq!(world.artifact(&ran, "out/report.md"), "agent-report\n");
    let out = world.artifacts.join(ran.task_id()).join("out");
    assert!(
        !out.join("extra").exists(),
        "the gate wrote into the export"
    );
    let patch = world.artifact(&ran, "diff.patch");
    assert!(!patch.contains("gate-marker"), "{patch}");
    world.assert_clean(&ran.task_id());
}

#[test]
fn a_gate_printing_one_endless_line_ends_at_its_timeout_with_bounded_memory() {
    let record = assert_flood_bounded(&["sh", "-c", "yes A | tr -d '\\n'"]);
    assert!(
        record["truncated"]["lines_cut"].as_u64().unwrap_or(0) >= 1,
        "the cut line is not recorded: {record}"
    );
}
