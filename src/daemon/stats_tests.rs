use super::*;

fn row(kind: &str, state: &str, reason: Reason, attempts: u32, secs: f64) -> OutcomeRow {
    OutcomeRow {
        task_id: format!("{kind}-{state}-{attempts}"),
        kind: kind.into(),
        state: state.into(),
        reason: reason.as_str().into(),
        attempts,
        duration_s: secs,
        red_flags: reason == Reason::RedFlag,
        branch: None,
        pushed: false,
        pr: None,
    }
}

#[test]
fn counts_and_medians_per_kind() {
    let mut merged = row("bugfix", "green", Reason::GatePassed, 1, 10.0);
    merged.pr = Some(PrOutcome::Merged);
    let mut closed = row("bugfix", "green", Reason::GatePassed, 3, 40.0);
    closed.pr = Some(PrOutcome::ClosedUnmerged);
    let rows = vec![
        merged,
        closed,
        row("bugfix", "needs_human", Reason::RedFlag, 2, 20.0),
        row("bugfix", "needs_human", Reason::OutOfScope, 2, 30.0),
        row("bugfix", "refused", Reason::ScopeAboveCeiling, 0, 0.0),
        row("docs", "blocked", Reason::ForbiddenPath, 1, 5.0),
    ];
    let s = compute(&rows);
    assert_eq!(s.len(), 2);
    let b = &s[0];
    assert_eq!(b.kind, "bugfix");
    assert_eq!(
        (b.tasks, b.green, b.needs_human, b.blocked, b.other),
        (5, 2, 2, 0, 1)
    );
    assert_eq!((b.red_flags, b.scope_stops), (1, 1));
    // The refused task never ran: medians are over the four that did.
    assert_eq!(b.median_attempts, Some(2.0));
    assert_eq!(b.median_duration_s, Some(25.0));
    assert_eq!((b.merged, b.closed_unmerged), (1, 1));
    assert_eq!(
        (s[1].kind.as_str(), s[1].blocked, s[1].scope_stops),
        ("docs", 1, 1)
    );
}

#[test]
fn text_and_metrics_name_every_figure_and_nothing_else() {
    let s = compute(&[row("tests", "green", Reason::GatePassed, 1, 2.0)]);
    let text = render_text(&s);
    assert!(text.lines().nth(1).unwrap().starts_with("tests"), "{text}");
    let mut m = String::new();
    render_metrics(&s, &mut m);
    for line in [
        "airlock_kind_tasks_total{kind=\"tests\",state=\"green\"} 1",
        "airlock_kind_tasks_total{kind=\"tests\",state=\"needs_human\"} 0",
        "airlock_kind_red_flag_tasks_total{kind=\"tests\"} 0",
        "airlock_kind_scope_stops_total{kind=\"tests\"} 0",
        "airlock_kind_pull_requests_closed_total{kind=\"tests\",outcome=\"merged\"} 0",
        "airlock_kind_median_attempts{kind=\"tests\"} 1",
        "airlock_kind_median_duration_seconds{kind=\"tests\"} 2",
    ] {
        assert!(m.lines().any(|l| l == line), "missing {line}:\n{m}");
    }
    assert!(!m.contains("lines") && !m.contains("generated"), "{m}");
    assert!(render_text(&[]).contains("no finished task"));
}
