//! Several `airlock daemon` runners sharing one PostgreSQL queue, against the real engine: the
//! claim race, a runner killed mid-task, the push record, partitions (a proxy that cuts
//! traffic), SIGSTOP, a skewed clock, a database restart, and the shared artifact store.
//!
//! Each test starts its own PostgreSQL cluster (as `nobody`, on a free loopback port) and its
//! own runners; containers are found by their task label.

mod common;
mod queue_support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::World;
use queue_support::{inspect_label, task_containers, Pg, Runner};

/// Leases short enough that tests see them expire.
const SHORT: &str = "lease = \"6s\"\nheartbeat = \"1s\"\nrequeues = 2";
/// A lease that never expires during a test (the race measures claims, not expiry).
const LONG: &str = "lease = \"60s\"\nheartbeat = \"5s\"";

fn spec(world: &World, argv: &[&str]) -> String {
    std::fs::read_to_string(world.spec("L1", argv, "")).unwrap()
}

fn runners(world: &World, pg: &Pg, names: &[&str], queue: &str, extra: &str) -> Vec<Runner> {
    names
        .iter()
        .map(|n| {
            let mut r = Runner::new(
                world.tmp.path(),
                n,
                &world.policies,
                pg,
                &pg.url(),
                queue,
                extra,
            );
            r.spawn();
            r
        })
        .collect()
}

/// `event` bodies of one task, from the database.
fn db_events(pg: &Pg, id: &str, kind: &str) -> Vec<Value> {
    let rows = pg.sql(&format!(
        "SELECT body FROM events WHERE task_id = '{id}' AND body::json->>'event' = '{kind}' ORDER BY id"
    ));
    rows.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn wait_until(secs: u64, what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The runner session whose container runs task `id` now (`<runner>@<epoch>`).
fn running_label(id: &str, secs: u64) -> String {
    let mut label = String::new();
    wait_until(secs, &format!("a container of {id}"), || {
        let running = queue_support::list_containers(&format!("label=airlock.task={id}"));
        label = running
            .first()
            .map(|c| inspect_label(c, "airlock.session"))
            .unwrap_or_default();
        !label.is_empty()
    });
    label
}

#[test]
fn two_runners_race_for_fifty_tasks_and_each_is_claimed_and_finished_once() {
    let world = World::new();
    let pg = Pg::start();
    let rs = runners(&world, &pg, &["a", "b"], LONG, "");
    let text = spec(&world, &["true"]);
    let ids: Vec<String> = (0..50).map(|i| rs[i % 2].submit(&text)).collect();
    for id in &ids {
        let t = rs[0].wait_final(id, 600);
        assert_eq!(t["state"], "green", "{t}\n{}", rs[0].log());
    }
    let rows = pg.sql("SELECT id, epoch, restarts, session FROM tasks ORDER BY seq");
    let mut by_runner: HashMap<String, usize> = HashMap::new();
    for line in rows.lines() {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!((f[1], f[2]), ("1", "0"), "claimed more than once: {line}");
        *by_runner.entry(f[3].to_string()).or_default() += 1;
    }
    assert_eq!(rows.lines().count(), 50);
    for id in &ids {
        assert_eq!(db_events(&pg, id, "started").len(), 1, "{id} started twice");
        assert_eq!(db_events(&pg, id, "done").len(), 1, "{id} finished twice");
    }
    let sessions: HashSet<&String> = by_runner.keys().collect();
    let expected: HashSet<&String> = rs.iter().map(|r| &r.session).collect();
    assert_eq!(sessions, expected, "both runners claim: {by_runner:?}");
    let claimed: u64 = rs
        .iter()
        .map(|r| metric(&r.metrics(), "airlock_tasks_claimed_total"))
        .sum();
    assert_eq!(claimed, 50);
    let m = rs[1].metrics();
    for name in [
        "airlock_queue_depth 0",
        "airlock_lease_renew_failures_total 0",
        "airlock_tasks_requeued_total 0",
    ] {
        assert!(m.lines().any(|l| l == name), "missing `{name}`:\n{m}");
    }
    assert!(m.contains("airlock_claim_duration_seconds_count"), "{m}");
    let fifo: Vec<String> = pg
        .sql("SELECT id FROM tasks ORDER BY started_at, seq")
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(fifo.len(), 50);
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn a_runner_killed_mid_task_is_replaced_after_its_lease_without_orphans_or_duplicates() {
    let world = World::new();
    let pg = Pg::start();
    let mut rs = runners(&world, &pg, &["a"], SHORT, "");
    let id = rs[0].submit(&spec(&world, &["sh", "-c", "echo started; sleep 8"]));
    let first = running_label(&id, 60);
    assert!(first.starts_with(&format!("{}@", rs[0].session)), "{first}");
    let mut b = Runner::new(
        world.tmp.path(),
        "b",
        &world.policies,
        &pg,
        &pg.url(),
        SHORT,
        "",
    );
    b.spawn();
    assert!(
        !task_containers(&id).is_empty(),
        "b's start-up sweep left a live task alone"
    );
    rs[0].kill9();
    let killed_at = Instant::now();
    let t = b.wait_final(&id, 120);
    assert_eq!(t["state"], "green", "{t}\n{}", b.log());
    assert!(
        killed_at.elapsed() >= Duration::from_secs(4),
        "re-queued before the lease ran out"
    );
    assert_eq!(
        (t["restarts"].as_i64(), t["epoch"].as_i64()),
        (Some(1), Some(2)),
        "{t}"
    );
    assert_eq!(db_events(&pg, &id, "done").len(), 1, "one finish");
    assert_eq!(db_events(&pg, &id, "requeued").len(), 1);
    let started = db_events(&pg, &id, "started");
    assert_eq!(started.len(), 2);
    assert_eq!(started[1]["session"], b.session.as_str(), "{started:?}");
    wait_until(30, "no container of the task", || {
        task_containers(&id).is_empty()
    });
    assert!(metric(&b.metrics(), "airlock_tasks_requeued_total") == 1);
}

#[test]
fn a_task_whose_push_started_is_never_requeued_but_ends_runner_lost() {
    let world = World::new();
    let pg = Pg::start();
    let mut rs = runners(&world, &pg, &["a"], SHORT, "");
    let id = rs[0].submit(&spec(&world, &["sh", "-c", "sleep 30"]));
    running_label(&id, 60);
    // What the push gate records (fenced) just before a push starts.
    pg.sql(&format!(
        "UPDATE tasks SET push_started_at = now() WHERE id = '{id}'"
    ));
    rs[0].kill9();
    let mut b = Runner::new(
        world.tmp.path(),
        "b",
        &world.policies,
        &pg,
        &pg.url(),
        SHORT,
        "",
    );
    b.spawn();
    let t = b.wait_final(&id, 60);
    assert_eq!(
        (t["state"].as_str(), t["reason"].as_str()),
        (Some("error"), Some("runner_lost")),
        "{t}"
    );
    assert!(t["message"].as_str().unwrap().contains("push"), "{t}");
    assert_eq!(t["summary"]["reason"], "runner_lost", "{t}");
    assert_eq!(db_events(&pg, &id, "started").len(), 1, "never run again");
    assert!(db_events(&pg, &id, "requeued").is_empty());
    wait_until(30, "the dead runner's container swept", || {
        task_containers(&id).is_empty()
    });
}
