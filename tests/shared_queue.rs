//! Several `airlock daemon` runners sharing one PostgreSQL queue, against the real engine: the
//! claim race, a runner killed mid-task, the push record, partitions (a proxy that cuts
//! traffic), SIGSTOP, a skewed clock, a database restart, and the shared artifact store.
//!
//! Each test starts its own PostgreSQL cluster (as `nobody`, on a free loopback port) and its
//! own runners; containers are found by their task label.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

mod common;
mod queue_support;
mod support;

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::World;
use queue_support::{inspect_label, task_containers, Moto, Pg, Proxy, Runner};

/// Leases short enough that tests see them expire.
const SHORT: &str = "lease = \"6s\"\nheartbeat = \"1s\"\nrequeues = 2";
/// A lease with room for a short cut (see `a_cut_shorter_than_the_lease_changes_nothing`).
const MEDIUM: &str = "lease = \"10s\"\nheartbeat = \"1s\"\nrequeues = 2";
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

/// A runner whose database traffic goes through a proxy the test can cut.
fn cut_off_runner(world: &World, pg: &Pg, proxy: &Proxy, name: &str) -> Runner {
    cut_off_runner_with(world, pg, proxy, name, SHORT)
}

fn cut_off_runner_with(world: &World, pg: &Pg, proxy: &Proxy, name: &str, queue: &str) -> Runner {
    let url = pg.url_on(proxy.port);
    let mut r = Runner::new(world.tmp.path(), name, &world.policies, pg, &url, queue, "");
    r.spawn();
    r
}

fn direct_runner(world: &World, pg: &Pg, name: &str, queue: &str, extra: &str) -> Runner {
    let mut r = Runner::new(
        world.tmp.path(),
        name,
        &world.policies,
        pg,
        &pg.url(),
        queue,
        extra,
    );
    r.spawn();
    r
}

#[test]
fn a_runner_cut_off_longer_than_its_lease_stops_its_containers_and_its_late_writes_are_refused() {
    let world = World::new();
    let pg = Pg::start();
    let proxy = Proxy::start(pg.port);
    let a = cut_off_runner(&world, &pg, &proxy, "a");
    let id = a.submit(&spec(&world, &["sh", "-c", "echo started; sleep 12"]));
    let label = running_label(&id, 60);
    assert!(label.starts_with(&format!("{}@1", a.session)), "{label}");
    let b = direct_runner(&world, &pg, "b", SHORT, "");
    proxy.cut(true);
    let cut_at = Instant::now();
    // a gives up at 3/4 of the lease (4.5 s) and stops its containers itself, before the
    // lease (6 s) ends and b may claim.
    wait_until(30, "a's container stopped", || {
        queue_support::list_containers(&format!("label=airlock.session={label}")).is_empty()
    });
    assert!(
        cut_at.elapsed() < Duration::from_secs(12),
        "a did not stop its task"
    );
    let t = b.wait_final(&id, 120);
    assert_eq!(t["state"], "green", "{t}\n{}", b.log());
    assert_eq!(t["epoch"], 2, "{t}");
    proxy.cut(false);
    wait_until(60, "a's late write refused", || {
        a.log().contains("late write refused by the fence")
    });
    assert!(a.log().contains("lease lost"), "{}", a.log());
    assert_eq!(db_events(&pg, &id, "done").len(), 1, "one finish, by b");
    assert_eq!(
        pg.sql(&format!("SELECT session FROM tasks WHERE id = '{id}'")),
        b.session
    );
    let m = a.metrics();
    assert!(metric(&m, "airlock_tasks_abandoned_total") == 1, "{m}");
    assert!(metric(&m, "airlock_fenced_writes_total") >= 1, "{m}");
    wait_until(30, "no container of the task", || {
        task_containers(&id).is_empty()
    });
}

#[test]
fn a_cut_shorter_than_the_lease_changes_nothing() {
    let world = World::new();
    let pg = Pg::start();
    let proxy = Proxy::start(pg.port);
    // Lease 10 s, heartbeat 1 s: a gives up after 7.5 s without a renewal, each call has 2.5 s.
    // A 4 s cut always fails the renewal that falls in it (asked within 1 s of the cut's start,
    // timed out before its end) and leaves at least 1.8 s before giving up whatever the
    // heartbeat's phase. (With lease 6 s and a 3 s cut the margin was 0.4 s: a loaded CI
    // machine abandoned the task.)
    let a = cut_off_runner_with(&world, &pg, &proxy, "a", MEDIUM);
    let id = a.submit(&spec(
        &world,
        &["sh", "-c", "echo before; sleep 3; echo after; sleep 5"],
    ));
    let label = running_label(&id, 60);
    assert!(label.starts_with(&a.session), "{label}");
    let b = direct_runner(&world, &pg, "b", SHORT, "");
    std::thread::sleep(Duration::from_secs(1));
    proxy.cut(true);
    std::thread::sleep(Duration::from_secs(4));
    proxy.cut(false);
    let t = b.wait_final(&id, 120);
    assert_eq!(t["state"], "green", "{t}\n{}", a.log());
    assert_eq!(
        (t["epoch"].as_i64(), t["restarts"].as_i64()),
        (Some(1), Some(0)),
        "{t}"
    );
    assert_eq!(
        pg.sql(&format!("SELECT session FROM tasks WHERE id = '{id}'")),
        a.session
    );
    let m = a.metrics();
    assert_eq!(
        metric(&m, "airlock_tasks_abandoned_total"),
        0,
        "{m}\n{}",
        a.log()
    );
    assert!(
        metric(&m, "airlock_lease_renew_failures_total") >= 1,
        "the cut was felt: {m}"
    );
    let events = b.events(&id);
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(
        kinds.contains(&"agent_finished") || kinds.contains(&"container_finished"),
        "events copied during the cut were kept: {kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "done").count(),
        1,
        "{kinds:?}"
    );
}

#[test]
fn a_runner_paused_longer_than_its_lease_has_its_writes_refused_after_sigcont() {
    let world = World::new();
    let pg = Pg::start();
    let a = direct_runner(&world, &pg, "a", SHORT, "");
    let id = a.submit(&spec(&world, &["sh", "-c", "echo started; sleep 10"]));
    running_label(&id, 60);
    let b = direct_runner(&world, &pg, "b", SHORT, "");
    a.signal(nix::sys::signal::Signal::SIGSTOP);
    let t = b.wait_final(&id, 120);
    a.signal(nix::sys::signal::Signal::SIGCONT);
    assert_eq!(t["state"], "green", "{t}\n{}", b.log());
    assert_eq!(t["epoch"], 2, "{t}");
    wait_until(30, "a learns its lease is gone", || {
        a.log().contains("lease lost")
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        db_events(&pg, &id, "done").len(),
        1,
        "a wrote no second finish"
    );
    assert_eq!(
        pg.sql(&format!("SELECT session FROM tasks WHERE id = '{id}'")),
        b.session
    );
    wait_until(60, "a's late write refused", || {
        a.log().contains("late write refused by the fence")
    });
    let m = a.metrics();
    assert_eq!(metric(&m, "airlock_tasks_abandoned_total"), 1, "{m}");
    assert!(metric(&m, "airlock_fenced_writes_total") >= 1, "{m}");
    wait_until(30, "no container of the task", || {
        task_containers(&id).is_empty()
    });
}

/// libfaketime from Debian's `faketime` package (preloaded directly, so the runner's pid is
/// the process a test kills).
fn faketime_lib() -> String {
    let lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(
        std::path::Path::new(lib).exists(),
        "{lib} is missing: run `bash scripts/test-services.sh` (make test does)"
    );
    lib.into()
}

#[test]
fn runners_with_clocks_skewed_by_ten_minutes_hold_and_reap_leases_the_same() {
    let world = World::new();
    let pg = Pg::start();
    let skewed = |name: &str, offset: &str| {
        let mut r = Runner::new(
            world.tmp.path(),
            name,
            &world.policies,
            &pg,
            &pg.url(),
            SHORT,
            "",
        );
        r.env = vec![
            ("LD_PRELOAD".into(), faketime_lib()),
            ("FAKETIME".into(), offset.into()),
            ("FAKETIME_DONT_RESET".into(), "1".into()),
        ];
        r.spawn();
        r
    };
    let ahead = skewed("ahead", "+10m");
    let behind = skewed("behind", "-10m");
    // Longer than the lease: held by renewals, never reaped by the other runner.
    let id = ahead.submit(&spec(&world, &["sh", "-c", "sleep 9"]));
    let label = running_label(&id, 60);
    let t = behind.wait_final(&id, 120);
    assert_eq!(t["state"], "green", "{t}\n{}", ahead.log());
    assert_eq!(
        (t["epoch"].as_i64(), t["restarts"].as_i64()),
        (Some(1), Some(0)),
        "{t}"
    );
    assert!(label.starts_with(&ahead.session) || label.starts_with(&behind.session));
    // The runner's own clock really was off: its summary's start vs the database's.
    let ran = |k: &str| {
        humantime::parse_rfc3339_weak(t[k].as_str().unwrap().trim_end_matches('Z')).unwrap()
    };
    let runner_clock = humantime::parse_rfc3339_weak(
        t["summary"]["started_at"]
            .as_str()
            .unwrap()
            .trim_end_matches('Z'),
    )
    .unwrap();
    let db_clock = ran("started_at");
    let skew = match runner_clock > db_clock {
        true => runner_clock.duration_since(db_clock).unwrap(),
        false => db_clock.duration_since(runner_clock).unwrap(),
    };
    assert!(skew > Duration::from_secs(9 * 60), "no skew: {skew:?} {t}");
    // A killed runner's task is re-queued after the lease by the database's clock.
    let id = behind.submit(&spec(&world, &["sh", "-c", "sleep 30"]));
    let label = running_label(&id, 60);
    let mut rs = [ahead, behind];
    let owner = rs
        .iter()
        .position(|r| label.starts_with(&format!("{}@", r.session)))
        .unwrap();
    rs[owner].kill9();
    let killed = Instant::now();
    wait_until(60, "the re-queue", || {
        !db_events(&pg, &id, "requeued").is_empty()
    });
    let waited = killed.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(20),
        "re-queued after {waited:?}"
    );
}

#[test]
fn a_database_restart_mid_run_loses_nothing() {
    let world = World::new();
    let pg = Pg::start();
    let queue = "lease = \"15s\"\nheartbeat = \"2s\"";
    let a = direct_runner(&world, &pg, "a", queue, "");
    let id = a.submit(&spec(
        &world,
        &["sh", "-c", "echo one; sleep 4; echo two; sleep 4"],
    ));
    running_label(&id, 60);
    std::thread::sleep(Duration::from_secs(2));
    pg.down();
    std::thread::sleep(Duration::from_secs(2));
    pg.up();
    let t = a.wait_final(&id, 120);
    assert_eq!(t["state"], "green", "{t}\n{}", a.log());
    assert_eq!(
        (t["epoch"].as_i64(), t["restarts"].as_i64()),
        (Some(1), Some(0)),
        "{t}"
    );
    let log = a.artifacts.join(&id).join("events.jsonl");
    let on_disk = std::fs::read_to_string(&log).unwrap().lines().count();
    let stored = a.events(&id).len();
    // Stored: every runner event plus the daemon's queued/started/done.
    assert!(
        stored >= on_disk,
        "events lost: {stored} stored, {on_disk} written"
    );
    let next = a.submit(&spec(&world, &["true"]));
    assert_eq!(a.wait_final(&next, 60)["state"], "green");
}

fn s3_extra(moto: &Moto, dir: &std::path::Path) -> String {
    let creds = dir.join("s3.toml");
    std::fs::write(
        &creds,
        "access_key_id = \"testing\"\nsecret_access_key = \"testing\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&creds, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    format!(
        "[artifacts]\nurl = \"s3://airlock-test/runs\"\nendpoint = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\ncredentials_file = {:?}\n",
        moto.port,
        creds.display().to_string()
    )
}

#[test]
fn artifacts_are_published_to_s3_manifest_last_and_any_runner_serves_the_bundle() {
    let world = World::new();
    let pg = Pg::start();
    let moto = Moto::start();
    moto.create_bucket("airlock-test");
    let extra = s3_extra(&moto, world.tmp.path());
    let a = direct_runner(&world, &pg, "a", LONG, &extra);
    let b = direct_runner(&world, &pg, "b", LONG, &extra);
    let id = a.submit(&spec(
        &world,
        &["sh", "-c", "echo hello > out.txt; echo logged"],
    ));
    let t = b.wait_final(&id, 120);
    assert_eq!(t["state"], "green", "{t}\n{}\n{}", a.log(), b.log());
    let prefix = t["artifacts_prefix"].as_str().unwrap().to_string();
    assert_eq!(prefix, format!("runs/tasks/{id}/1-1"));
    let keys = moto.keys("airlock-test", &prefix);
    for want in ["manifest.json", "summary.json", &format!("{id}.tar.gz")] {
        assert!(
            keys.iter().any(|k| k == &format!("{prefix}/{want}")),
            "{want} missing in {keys:?}"
        );
    }
    for r in [&a, &b] {
        let (code, body) = r.raw("GET", &format!("/v1/tasks/{id}/bundle"));
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(&body[..2], &[0x1f, 0x8b], "a gzip bundle");
    }
}

#[test]
fn the_object_store_down_during_export_ends_the_task_with_a_reason_and_publishes_nothing() {
    let world = World::new();
    let pg = Pg::start();
    let mut moto = Moto::start();
    moto.create_bucket("airlock-test");
    let extra = s3_extra(&moto, world.tmp.path());
    let a = direct_runner(&world, &pg, "a", LONG, &extra);
    let id = a.submit(&spec(&world, &["sh", "-c", "sleep 3"]));
    running_label(&id, 60);
    moto.stop();
    let t = a.wait_final(&id, 120);
    assert_eq!(
        (t["state"].as_str(), t["reason"].as_str()),
        (Some("error"), Some("artifact_store_failed")),
        "{t}"
    );
    assert!(
        t["message"].as_str().unwrap().contains("artifact store"),
        "{t}"
    );
    assert!(t.get("artifacts_prefix").is_none(), "{t}");
    assert_eq!(
        pg.sql(&format!(
            "SELECT artifacts_prefix IS NULL FROM tasks WHERE id = '{id}'"
        )),
        "t"
    );
    assert_eq!(t["summary"]["reason"], "artifact_store_failed", "{t}");
}

const HOOK_SECRET: &str = "hook-secret-0123456789abcdef";

/// `[[trigger]]` (GitHub, label `airlock` on acme/tasks-app) and `extra` for every runner; the
/// template's agent waits `secs` so the task is still live while the test looks.
fn intake_extra(world: &World, secs: u32, extra: &str) -> String {
    let dir = world.tmp.path().join("intake");
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("hook.secret");
    std::fs::write(&secret, format!("{HOOK_SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let template = dir.join("template.toml");
    std::fs::write(
        &template,
        format!(
            "level = \"L2\"\n[repo]\nurl = {}\nbase = \"main\"\n[agent]\nimage = \"airlock/sandbox-test:latest\"\ncommand = [\"sh\", \"-c\", \"cat /airlock/issue.md > /airlock/out/report; sleep {secs}\"]\n[gate]\ncommands = [[\"true\"]]\n",
            common::toml_str(&world.repo.display().to_string())
        ),
    )
    .unwrap();
    format!(
        "[[trigger]]\nforge = \"github\"\nsecret_file = {secret:?}\nrepository = \"acme/tasks-app\"\nlabel = \"airlock\"\ntemplate = {template:?}\n{}",
        extra.replace("TEMPLATE", &format!("{template:?}"))
    )
}

fn labeled_event() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webhooks/github-issues-labeled.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    v["repository"]["full_name"] = "acme/tasks-app".into();
    v["label"]["name"] = "airlock".into();
    v.to_string()
}

fn github(r: &Runner, delivery: &str, body: &str) -> (u16, Value) {
    let sig = airlock::trigger::verify::sign_hex(HOOK_SECRET.as_bytes(), body.as_bytes());
    let h = [
        ("X-GitHub-Event", "issues".to_string()),
        ("X-GitHub-Delivery", delivery.to_string()),
        ("X-Hub-Signature-256", format!("sha256={sig}")),
        ("Content-Type", "application/json".to_string()),
    ];
    r.post("/v1/hooks/github", &h, body)
}

/// A forge that delivers one event to two runners (two webhooks, or a retry landing on the
/// other runner): both answer, one task starts, the other answer names it.
#[test]
fn the_same_signed_delivery_to_two_runners_starts_exactly_one_task() {
    let world = World::new();
    let pg = Pg::start();
    let extra = intake_extra(&world, 4, "");
    let rs = runners(&world, &pg, &["a", "b"], LONG, &extra);
    let body = labeled_event();
    let gate = std::sync::Barrier::new(2);
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let hs: Vec<_> = rs
            .iter()
            .map(|r| {
                let (gate, body) = (&gate, &body);
                s.spawn(move || {
                    gate.wait();
                    github(r, "race-1", body)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let started: Vec<&(u16, Value)> = answers.iter().filter(|a| a.0 == 202).collect();
    assert_eq!(
        started.len(),
        1,
        "{answers:?}\n{}\n{}",
        rs[0].log(),
        rs[1].log()
    );
    let id = started[0].1["id"].as_str().unwrap().to_string();
    let other = answers.iter().find(|a| a.0 != 202).unwrap();
    assert_eq!(other.0, 200, "{other:?}");
    assert_eq!(other.1["id"].as_str(), Some(id.as_str()), "{other:?}");
    assert!(
        other.1["ignored"]
            .as_str()
            .unwrap()
            .contains("already started"),
        "{other:?}"
    );
    assert_eq!(pg.sql("SELECT COUNT(*) FROM tasks"), "1");
    assert_eq!(
        pg.sql("SELECT delivery, task_id FROM deliveries"),
        format!("github:race-1|{id}")
    );
    // Another delivery for the same issue while its task is live, on either runner.
    for (r, d) in rs.iter().zip(["busy-a", "busy-b"]) {
        let (code, busy) = github(r, d, &body);
        assert_eq!(code, 200, "{busy}");
        assert!(
            busy["ignored"]
                .as_str()
                .unwrap()
                .contains("queued or running"),
            "{busy}"
        );
    }
    let t = rs[1].wait_final(&id, 120);
    assert_eq!(
        (t["state"].as_str(), t["level"].as_str()),
        (Some("green"), Some("L2")),
        "{t}"
    );
    let trig = db_events(&pg, &id, "triggered");
    assert_eq!(trig.len(), 1, "{trig:?}");
    assert_eq!(trig[0]["delivery"], "race-1", "{trig:?}");
    assert_eq!(pg.sql("SELECT COUNT(*) FROM tasks"), "1", "one task in all");
    // After it ended, a new delivery for the issue starts a new task.
    let (code, again) = github(&rs[0], "after-1", &body);
    assert_eq!(code, 202, "{again}");
    let next = again["id"].as_str().unwrap().to_string();
    assert_eq!(rs[0].wait_final(&next, 120)["state"], "green");
}

/// Every runner ticks the same per-second schedule; each slot starts one task.
#[test]
fn two_runners_with_the_same_schedule_fire_each_slot_once() {
    let world = World::new();
    let pg = Pg::start();
    let sched = "[[schedule]]\nname = \"tick\"\ncron = \"*/2 * * * * *\"\ntemplate = TEMPLATE\n";
    let extra = intake_extra(&world, 0, sched);
    let rs = runners(&world, &pg, &["a", "b"], LONG, &extra);
    wait_until(60, "four scheduled tasks", || {
        pg.sql("SELECT COUNT(*) FROM tasks").parse::<u32>().unwrap() >= 4
    });
    let slots = pg.sql(
        "SELECT body::json->>'slot_ms' FROM events WHERE body::json->>'event' = 'triggered' \
         ORDER BY 1",
    );
    let slots: Vec<&str> = slots.lines().collect();
    let mut unique = slots.clone();
    unique.dedup();
    assert!(slots.len() >= 4, "{slots:?}");
    assert_eq!(unique, slots, "a slot fired twice");
    // Every scheduled task has its slot row and every slot row its task.
    assert_eq!(
        pg.sql(
            "SELECT COUNT(*) FROM tasks t FULL JOIN schedule_slots s ON s.task_id = t.id \
             WHERE t.id IS NULL OR s.task_id IS NULL"
        ),
        "0"
    );
    let first = rs[0].wait_final(&pg.sql("SELECT id FROM tasks ORDER BY seq LIMIT 1"), 120);
    assert_eq!(first["state"], "green", "{first}");
}

/// A push world for L3 tasks: the git smart-HTTP server serving the world's repo as
/// `tasks.git`, a token provider granted `refs/heads/agent/*` on it, push.toml pointing there.
fn push_world() -> (support::world::PushWorld, support::provider::Provider) {
    use std::time::SystemTime;
    let w = support::world::PushWorld::new();
    let token = support::provider::test_token();
    let provider = support::provider::Provider::new(
        &w.fixtures.join("provider"),
        &token,
        SystemTime::now() + Duration::from_secs(1800),
    );
    w.git.grant(
        &token,
        support::git_server::Grant {
            repo: "tasks.git".into(),
            expires: SystemTime::now() + Duration::from_secs(3600),
            ref_prefix: "refs/heads/agent/".into(),
        },
    );
    w.push_toml(&provider.toml(), "");
    (w, provider)
}

/// A runner of the shared queue whose API submissions are trusted (so L3 tasks push).
fn trusted_runner(world: &World, pg: &Pg, name: &str) -> Runner {
    let mut r = Runner::new(
        world.tmp.path(),
        name,
        &world.policies,
        pg,
        &pg.url(),
        SHORT,
        "",
    );
    let text = std::fs::read_to_string(&r.config).unwrap();
    std::fs::write(&r.config, format!("author_trusted = true\n{text}")).unwrap();
    r.spawn();
    r
}

fn l3_spec(world: &World, script: &str) -> String {
    std::fs::read_to_string(world.spec("L3", &["sh", "-c", script], support::world::GATE)).unwrap()
}

/// A runner killed with `kill -9` before the push of an L3 task: another runner re-queues it
/// after the lease, runs it again and pushes once; the server saw exactly one receive-pack,
/// the branch holds the change, and nothing of the dead runner is left.
#[test]
fn a_runner_killed_before_its_push_is_replaced_and_the_branch_is_pushed_exactly_once() {
    let (w, _provider) = push_world();
    let pg = Pg::start();
    let mut a = trusted_runner(&w.world, &pg, "a");
    let id = a.submit(&l3_spec(&w.world, "echo feature > feature.txt; sleep 8"));
    let first = running_label(&id, 60);
    assert!(first.starts_with(&format!("{}@1", a.session)), "{first}");
    let b = trusted_runner(&w.world, &pg, "b");
    a.kill9();
    let t = b.wait_final(&id, 180);
    let s = &t["summary"];
    assert_eq!(
        (t["state"].as_str(), s["pushed"].as_bool()),
        (Some("green"), Some(true)),
        "{t}\n{}",
        b.log()
    );
    assert_eq!(
        (t["restarts"].as_i64(), t["epoch"].as_i64()),
        (Some(1), Some(2)),
        "{t}"
    );
    assert_eq!(
        w.git.receive_packs(),
        1,
        "exactly one push reached the server"
    );
    let branch = s["branch"].as_str().unwrap();
    let commit = w
        .git
        .ref_of("tasks.git", &format!("refs/heads/{branch}"))
        .expect("the branch on the server");
    assert_eq!(
        w.git
            .git("tasks.git", &["show", &format!("{commit}:feature.txt")]),
        "feature\n"
    );
    let recorded = db_events(&pg, &id, "push_recorded");
    assert_eq!(recorded.len(), 1, "one push record: {recorded:?}");
    assert_eq!(db_events(&pg, &id, "done").len(), 1, "one finish");
    assert_eq!(db_events(&pg, &id, "requeued").len(), 1);
    assert_eq!(
        pg.sql(&format!(
            "SELECT push_started_at IS NOT NULL, session FROM tasks WHERE id = '{id}'"
        )),
        format!("t|{}", b.session)
    );
    wait_until(30, "no container of the task", || {
        task_containers(&id).is_empty()
    });
    // Nothing pushes again later (the dead runner's task is settled, b's is done).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(w.git.receive_packs(), 1);
}

/// A runner killed with `kill -9` while its push is on the wire (the server's pre-receive hook
/// holds it for seconds): the push record is in the database, so the runner that reaps the
/// lease ends the task `runner_lost` instead of running it again, and no second push ever
/// reaches the server.
#[test]
fn a_runner_killed_during_its_push_is_never_requeued_and_nothing_is_pushed_twice() {
    let (w, _provider) = push_world();
    let hook = w.git.root.join("tasks.git/hooks/pre-receive");
    let text = std::fs::read_to_string(&hook).unwrap();
    let slow = text.replacen("#!/bin/sh\n", "#!/bin/sh\nsleep 8\n", 1);
    assert_ne!(slow, text, "the hook starts with #!/bin/sh");
    std::fs::write(&hook, slow).unwrap();
    let pg = Pg::start();
    let mut a = trusted_runner(&w.world, &pg, "a");
    let id = a.submit(&l3_spec(&w.world, "echo feature > feature.txt"));
    wait_until(120, "a's push recorded", || {
        pg.sql(&format!(
            "SELECT push_started_at IS NOT NULL FROM tasks WHERE id = '{id}'"
        )) == "t"
    });
    // The server is holding the push in its hook; kill the runner now.
    std::thread::sleep(Duration::from_millis(1500));
    let state = pg.sql(&format!("SELECT state FROM tasks WHERE id = '{id}'"));
    assert_eq!(state, "running", "killed before the finish");
    a.kill9();
    let b = trusted_runner(&w.world, &pg, "b");
    let t = b.wait_final(&id, 120);
    assert_eq!(
        (t["state"].as_str(), t["reason"].as_str()),
        (Some("error"), Some("runner_lost")),
        "{t}\n{}",
        b.log()
    );
    assert!(t["message"].as_str().unwrap().contains("push"), "{t}");
    assert_eq!(db_events(&pg, &id, "started").len(), 1, "never run again");
    assert!(db_events(&pg, &id, "requeued").is_empty());
    assert_eq!(db_events(&pg, &id, "push_recorded").len(), 1);
    // Let the held push end on the server, then look again: one push at most, ever.
    std::thread::sleep(Duration::from_secs(9));
    assert!(w.git.receive_packs() <= 1, "{}", w.git.receive_packs());
    wait_until(30, "the dead runner's container swept", || {
        task_containers(&id).is_empty()
    });
}

/// Writes wake listeners after they commit (NOTIFY in a transaction of its own): a client
/// listening on the database hears a submitted task on the queue channel and its events
/// (queued, started, done) on the events channel, each with the task id.
#[test]
fn committed_writes_notify_the_queue_and_events_channels_with_the_task_id() {
    use futures_util::StreamExt;
    let world = World::new();
    let pg = Pg::start();
    let rs = runners(&world, &pg, &["a"], LONG, "");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let heard: Vec<(String, String)> = rt.block_on(async {
        let mut config: tokio_postgres::Config = pg.url().parse().unwrap();
        let pw = std::fs::read_to_string(&pg.password_file).unwrap();
        config.password(pw.trim());
        let (client, mut conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
            while let Some(Ok(m)) = messages.next().await {
                if let tokio_postgres::AsyncMessage::Notification(n) = m {
                    let _ = tx.send((n.channel().to_string(), n.payload().to_string()));
                }
            }
        });
        client
            .batch_execute("LISTEN airlock_queue; LISTEN airlock_events")
            .await
            .unwrap();
        let id = rs[0].submit(&spec(&world, &["true"]));
        let t = rs[0].wait_final(&id, 120);
        assert_eq!(t["state"], "green", "{t}");
        let mut heard = Vec::new();
        while let Ok(Some(n)) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
            heard.push(n);
        }
        heard.retain(|(_, p)| p == &id);
        heard
    });
    assert!(
        heard.iter().any(|(c, _)| c == "airlock_queue"),
        "the submit woke the dispatchers: {heard:?}"
    );
    let events = heard.iter().filter(|(c, _)| c == "airlock_events").count();
    assert!(events >= 3, "queued, started and done at least: {heard:?}");
}
