use std::path::PathBuf;

use super::*;
use crate::daemon::config::triggers::{parse_cron, Template};
use crate::store::{LocalStore, Store};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;

fn rule(cron: &str) -> ScheduleRule {
    let table: toml::Table = toml::from_str(
        "title = \"nightly\"\nlevel = \"L4\"\n[repo]\nurl = \"https://example.org/x.git\"\nbase = \"main\"\n[issue]\ntext = \"tidy up\"\n[agent]\nimage = \"i\"\ncommand = [\"true\"]\n",
    )
    .unwrap();
    ScheduleRule {
        name: "nightly".into(),
        cron: parse_cron(cron).unwrap(),
        cron_text: cron.into(),
        template: Template {
            path: PathBuf::from("/etc/airlock/nightly.toml"),
            table,
            level: Level::L4,
            repo_url: "https://example.org/x.git".into(),
        },
    }
}

#[test]
fn due_is_the_latest_slot_after_the_last_one() {
    let c = parse_cron("0 2 * * *").unwrap();
    assert_eq!(due(&c, T0, T0 + HOUR), None);
    assert_eq!(
        due(&c, T0, T0 + 2 * HOUR),
        Some(T0 + 2 * HOUR),
        "inclusive of now"
    );
    assert_eq!(
        due(&c, T0, T0 + 3 * DAY + 5 * HOUR),
        Some(T0 + 3 * DAY + 2 * HOUR),
        "only the latest missed slot"
    );
    assert_eq!(
        due(&c, T0 + 3 * DAY + 2 * HOUR, T0 + 3 * DAY + 5 * HOUR),
        None
    );
    let every_two_seconds = parse_cron("*/2 * * * * *").unwrap();
    assert_eq!(due(&every_two_seconds, T0, T0 + 3_500), Some(T0 + 2_000));
}

fn open(path: &std::path::Path) -> LocalStore {
    LocalStore::new(Store::open(path).unwrap())
}

#[tokio::test]
async fn missed_slots_run_once_and_a_restart_does_not_repeat_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = open(&path);
    let rules = [rule("0 2 * * *")];
    let mut s = Scheduler::load(&store, &rules, Some(Level::L3), T0)
        .await
        .unwrap();
    assert!(
        s.tick(&store, T0 + HOUR).await.is_empty(),
        "no slot since the schedule was first seen"
    );
    // The daemon is down for three nights; at start the latest slot runs, once.
    let now = T0 + 3 * DAY + 5 * HOUR;
    let fired = s.tick(&store, now).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].slot_ms, T0 + 3 * DAY + 2 * HOUR);
    assert!(s.tick(&store, now + 1000).await.is_empty());
    let row = store.get(fired[0].task_id.clone()).await.unwrap().unwrap();
    assert_eq!(row.level, "L3", "capped by [sources] schedule");
    drop(s);
    drop(store);
    // A restart right after: the slot is recorded, nothing runs again.
    let store = open(&path);
    let mut s = Scheduler::load(&store, &rules, Some(Level::L3), now + 2000)
        .await
        .unwrap();
    assert!(s.tick(&store, now + 2000).await.is_empty());
    let next = s.tick(&store, T0 + 4 * DAY + 2 * HOUR).await;
    assert_eq!(next.len(), 1);
    assert_eq!(store.list(None, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn two_schedulers_on_one_store_start_a_slot_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let rules = [rule("0 2 * * *")];
    let mut a = Scheduler::load(&store, &rules, Some(Level::L3), T0)
        .await
        .unwrap();
    let mut b = Scheduler::load(&store, &rules, Some(Level::L3), T0 + 1)
        .await
        .unwrap();
    let now = T0 + 2 * HOUR + 10;
    assert_eq!(a.tick(&store, now).await.len(), 1);
    assert!(b.tick(&store, now).await.is_empty(), "the slot ran already");
    assert_eq!(store.list(None, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn without_a_schedule_source_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let mut s = Scheduler::load(&store, &[rule("0 2 * * *")], None, T0)
        .await
        .unwrap();
    assert!(s.tick(&store, T0 + DAY).await.is_empty());
    assert!(store.list(None, 10).await.unwrap().is_empty());
}
