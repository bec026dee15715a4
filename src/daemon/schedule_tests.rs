use std::path::PathBuf;

use super::*;
use crate::daemon::config::triggers::{parse_cron, Template};

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

#[test]
fn missed_slots_run_once_and_a_restart_does_not_repeat_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut store = Store::open(&path).unwrap();
    let rules = [rule("0 2 * * *")];
    let mut s = Scheduler::load(&mut store, &rules, Some(Level::L3), T0).unwrap();
    assert!(
        s.tick(&mut store, T0 + HOUR).is_empty(),
        "no slot since the schedule was first seen"
    );
    // The daemon is down for three nights; at start the latest slot runs, once.
    let now = T0 + 3 * DAY + 5 * HOUR;
    let fired = s.tick(&mut store, now);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].slot_ms, T0 + 3 * DAY + 2 * HOUR);
    assert!(s.tick(&mut store, now + 1000).is_empty());
    let row = store.get(&fired[0].task_id).unwrap().unwrap();
    assert_eq!(row.level, "L3", "capped by [sources] schedule");
    drop(s);
    drop(store);
    // A restart right after: the slot is recorded, nothing runs again.
    let mut store = Store::open(&path).unwrap();
    let mut s = Scheduler::load(&mut store, &rules, Some(Level::L3), now + 2000).unwrap();
    assert!(s.tick(&mut store, now + 2000).is_empty());
    let next = s.tick(&mut store, T0 + 4 * DAY + 2 * HOUR);
    assert_eq!(next.len(), 1);
    assert_eq!(store.list(None, 10).unwrap().len(), 2);
}

#[test]
fn without_a_schedule_source_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("db")).unwrap();
    let mut s = Scheduler::load(&mut store, &[rule("0 2 * * *")], None, T0).unwrap();
    assert!(s.tick(&mut store, T0 + DAY).is_empty());
    assert!(store.list(None, 10).unwrap().is_empty());
}
