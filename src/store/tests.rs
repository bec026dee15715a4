use super::*;
use crate::vocab::Reason;
use crate::vocab::State;

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("airlock.db")).unwrap()
}

fn task(id: &str) -> NewTask {
    NewTask {
        id: id.into(),
        title: format!("title {id}"),
        level: "L1".into(),
        source: "task.toml".into(),
        spec: "title = \"x\"".into(),
        trigger: "api".into(),
        author_trusted: false,
    }
}

fn end(state: State, reason: Reason) -> End {
    End {
        state,
        reason,
        message: None,
        summary: Some("{\"state\":\"x\"}".into()),
    }
}

fn phase(s: &Store, id: &str) -> Phase {
    s.get(id).unwrap().unwrap().phase
}

#[test]
fn claims_are_fifo_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    for id in ["a", "b", "c"] {
        s.insert(&task(id), 1).unwrap();
    }
    let got: Vec<String> = s
        .claim(2, "sess", 2)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(got, ["a", "b"]);
    assert_eq!(phase(&s, "a"), Phase::Running);
    assert_eq!(phase(&s, "c"), Phase::Queued);
    let rest: Vec<String> = s
        .claim(5, "sess", 3)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(rest, ["c"]);
    assert!(s.claim(5, "sess", 4).unwrap().is_empty());
}

#[test]
fn finish_only_from_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    s.insert(&task("a"), 1).unwrap();
    assert!(!s
        .finish("a", &end(State::Green, Reason::GatePassed), 2)
        .unwrap());
    s.claim(1, "sess", 2).unwrap();
    assert!(s
        .finish("a", &end(State::Green, Reason::GatePassed), 3)
        .unwrap());
    let row = s.get("a").unwrap().unwrap();
    assert_eq!(row.phase, Phase::Done(State::Green));
    assert_eq!(row.reason.as_deref(), Some(Reason::GatePassed.as_str()));
    assert_eq!(row.finished_at, Some(3));
    assert!(!s
        .finish("a", &end(State::Error, Reason::RunnerFault), 4)
        .unwrap());
}

#[test]
fn cancel_depends_on_the_phase() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    s.insert(&task("q"), 1).unwrap();
    s.insert(&task("r"), 1).unwrap();
    s.claim(1, "sess", 2).unwrap(); // q runs
    let c = end(State::Cancelled, Reason::Cancelled);
    assert_eq!(s.cancel("q", &c, 3).unwrap(), CancelOutcome::Running);
    assert!(s.get("q").unwrap().unwrap().cancel_requested);
    assert_eq!(s.cancel("r", &c, 3).unwrap(), CancelOutcome::Cancelled);
    assert_eq!(phase(&s, "r"), Phase::Done(State::Cancelled));
    assert_eq!(
        s.cancel("r", &c, 4).unwrap(),
        CancelOutcome::AlreadyFinal(Phase::Done(State::Cancelled))
    );
    assert_eq!(s.cancel("nope", &c, 4).unwrap(), CancelOutcome::NotFound);
    assert!(
        s.claim(5, "sess", 5).unwrap().is_empty(),
        "a cancelled task never runs"
    );
}

#[test]
fn recovery_requeues_or_ends() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    s.insert(&task("a"), 1).unwrap();
    s.insert(&task("b"), 1).unwrap();
    s.claim(2, "old", 2).unwrap();
    let e = end(State::Error, Reason::RunnerRestart);
    assert!(s.recover("a", false, &e, 3).unwrap());
    assert!(s.recover("b", true, &e, 3).unwrap());
    assert_eq!(phase(&s, "a"), Phase::Done(State::Error));
    let b = s.get("b").unwrap().unwrap();
    assert_eq!((b.phase, b.restarts), (Phase::Queued, 1));
    assert!(!s.recover("a", true, &e, 4).unwrap(), "final stays final");
}

#[test]
fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = open(&dir);
        s.insert(&task("a"), 1).unwrap();
        s.append_events("a", &["{\"event\":\"x\"}".into()]).unwrap();
        s.add_session("sess-1", 1).unwrap();
    }
    let s = open(&dir);
    assert_eq!(phase(&s, "a"), Phase::Queued);
    let events: Vec<String> = s
        .events_after("a", 0)
        .unwrap()
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(events.len(), 2);
    assert!(events[0].contains("\"queued\""));
    assert_eq!(events[1], "{\"event\":\"x\"}");
    assert_eq!(s.sessions().unwrap(), ["sess-1"]);
}

#[test]
fn events_are_read_after_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    s.insert(&task("a"), 1).unwrap();
    s.insert(&task("b"), 1).unwrap();
    s.append_events("a", &["1".into(), "2".into()]).unwrap();
    let all = s.events_after("a", 0).unwrap();
    assert_eq!(all.len(), 3);
    let after = s.events_after("a", all[1].0).unwrap();
    assert_eq!(
        after.iter().map(|e| e.1.as_str()).collect::<Vec<_>>(),
        ["2"]
    );
}

#[test]
fn only_finished_tasks_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    s.insert(&task("a"), 1).unwrap();
    s.insert(&task("b"), 1).unwrap();
    s.claim(1, "sess", 2).unwrap();
    s.finish("a", &end(State::Green, Reason::GatePassed), 3)
        .unwrap();
    let finished = s.finished().unwrap();
    assert_eq!(finished.len(), 1);
    assert_eq!(s.delete_finished(&["a".into(), "b".into()]).unwrap(), 1);
    assert!(s.get("a").unwrap().is_none());
    assert!(s.events_after("a", 0).unwrap().is_empty());
    assert_eq!(phase(&s, "b"), Phase::Queued);
}

#[test]
fn counts_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    for id in ["a", "b", "c"] {
        s.insert(&task(id), 1).unwrap();
    }
    s.claim(1, "sess", 2).unwrap();
    let mut counts = s.counts().unwrap();
    counts.sort();
    assert_eq!(counts, [("queued".to_string(), 2), ("running".into(), 1)]);
    let queued: Vec<String> = s
        .list(Some(Phase::Queued), 10)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(queued, ["c", "b"], "newest first");
    assert_eq!(s.list(None, 2).unwrap().len(), 2);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("airlock.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA user_version = 99").unwrap();
    }
    let err = Store::open(&path).err().unwrap();
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[test]
fn the_journal_is_wal() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let mode: String = s
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_taken_id_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    s.insert(&task("a"), 1).unwrap();
    let e = s.insert(&task("a"), 2).unwrap_err();
    assert!(e.is_duplicate(), "{e}");
}
