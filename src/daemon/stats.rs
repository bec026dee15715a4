//! Whether delegating pays, per kind of task: outcome counts, scope stops, red flags, median
//! attempts and run time, and merged vs closed-unmerged pull requests. Pure: outcome rows in,
//! statistics (JSON, text, Prometheus) out. No "lines generated" or "number of PRs" figure:
//! those reward the wrong thing.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::store::{OutcomeRow, PrOutcome};
use crate::vocab::Reason;

/// Reasons that mean a scope rule stopped the task.
pub const SCOPE_REASONS: &[Reason] = &[
    Reason::OutOfScope,
    Reason::DependencyChange,
    Reason::ForbiddenPath,
    Reason::ProtectedPath,
    Reason::TooManyFiles,
    Reason::DiffTooLarge,
    Reason::BinaryChange,
    Reason::UnrepresentablePath,
];

/// The statistics of one kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KindStats {
    /// The kind (`docs`, `bugfix`, ...).
    pub kind: String,
    /// Finished tasks of the kind.
    pub tasks: u64,
    /// Those that ended green.
    pub green: u64,
    /// Those that ended needs_human.
    pub needs_human: u64,
    /// Those that ended blocked.
    pub blocked: u64,
    /// Refused, cancelled or error.
    pub other: u64,
    /// Tasks in which any attempt raised a red flag.
    pub red_flags: u64,
    /// Tasks a scope rule stopped.
    pub scope_stops: u64,
    /// Over the tasks that ran at least one attempt.
    pub median_attempts: Option<f64>,
    /// Median seconds a task ran.
    pub median_duration_s: Option<f64>,
    /// Pull requests the forge reported closed.
    pub merged: u64,
    /// Pull requests closed without merging.
    pub closed_unmerged: u64,
}

/// Statistics per kind, in kind order.
pub fn compute(rows: &[OutcomeRow]) -> Vec<KindStats> {
    let mut by_kind: BTreeMap<&str, Vec<&OutcomeRow>> = BTreeMap::new();
    for r in rows {
        by_kind.entry(r.kind.as_str()).or_default().push(r);
    }
    by_kind.into_iter().map(|(k, rs)| one(k, &rs)).collect()
}

fn one(kind: &str, rows: &[&OutcomeRow]) -> KindStats {
    let mut s = KindStats {
        kind: kind.into(),
        ..KindStats::default()
    };
    for r in rows {
        s.tasks += 1;
        match r.state.as_str() {
            "green" => s.green += 1,
            "needs_human" => s.needs_human += 1,
            "blocked" => s.blocked += 1,
            _ => s.other += 1,
        }
        s.red_flags += u64::from(r.red_flags);
        let reason = Reason::parse(&r.reason);
        s.scope_stops += u64::from(reason.is_some_and(|x| SCOPE_REASONS.contains(&x)));
        match r.pr {
            Some(PrOutcome::Merged) => s.merged += 1,
            Some(PrOutcome::ClosedUnmerged) => s.closed_unmerged += 1,
            None => {}
        }
    }
    let ran: Vec<&&OutcomeRow> = rows.iter().filter(|r| r.attempts > 0).collect();
    s.median_attempts = median(ran.iter().map(|r| f64::from(r.attempts)).collect());
    s.median_duration_s = median(ran.iter().map(|r| r.duration_s).collect());
    s
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// A table for `airlock stats`.
pub fn render_text(stats: &[KindStats]) -> String {
    let mut out = String::from(
        "kind        tasks  green  needs_human  blocked  other  red_flags  scope_stops  median_attempts  median_time  merged  closed_unmerged\n",
    );
    if stats.is_empty() {
        out.push_str("(no finished task yet)\n");
    }
    for s in stats {
        let att = s.median_attempts.map_or("-".into(), |m| format!("{m:.1}"));
        let time = s
            .median_duration_s
            .map_or("-".into(), |m| format!("{m:.1}s"));
        let _ = writeln!(
            out,
            "{:<11} {:>5}  {:>5}  {:>11}  {:>7}  {:>5}  {:>9}  {:>11}  {:>15}  {:>11}  {:>6}  {:>15}",
            s.kind, s.tasks, s.green, s.needs_human, s.blocked, s.other, s.red_flags,
            s.scope_stops, att, time, s.merged, s.closed_unmerged
        );
    }
    out
}

/// A metric family: name, help, and the figure it reads.
type Family<T> = (&'static str, &'static str, fn(&KindStats) -> T);

/// The Prometheus families for `/metrics`.
pub fn render_metrics(stats: &[KindStats], out: &mut String) {
    let counter = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    };
    let name = "airlock_kind_tasks_total";
    counter(
        out,
        name,
        "Finished tasks by kind and final state (all time, kept past retention).",
    );
    for s in stats {
        for (state, n) in [
            ("green", s.green),
            ("needs_human", s.needs_human),
            ("blocked", s.blocked),
            ("other", s.other),
        ] {
            let _ = writeln!(out, "{name}{{kind=\"{}\",state=\"{state}\"}} {n}", s.kind);
        }
    }
    let families: [Family<u64>; 2] = [
        (
            "airlock_kind_red_flag_tasks_total",
            "Tasks by kind in which an attempt raised a red flag.",
            |s| s.red_flags,
        ),
        (
            "airlock_kind_scope_stops_total",
            "Tasks by kind a scope rule stopped.",
            |s| s.scope_stops,
        ),
    ];
    for (name, help, get) in families {
        counter(out, name, help);
        for s in stats {
            let _ = writeln!(out, "{name}{{kind=\"{}\"}} {}", s.kind, get(s));
        }
    }
    let name = "airlock_kind_pull_requests_closed_total";
    counter(
        out,
        name,
        "Pull requests of airlock tasks the forge reported closed, merged or not, by kind.",
    );
    for s in stats {
        for (outcome, n) in [("merged", s.merged), ("closed_unmerged", s.closed_unmerged)] {
            let _ = writeln!(
                out,
                "{name}{{kind=\"{}\",outcome=\"{outcome}\"}} {n}",
                s.kind
            );
        }
    }
    let gauges: [Family<Option<f64>>; 2] = [
        (
            "airlock_kind_median_attempts",
            "Median attempts of tasks that ran, by kind.",
            |s| s.median_attempts,
        ),
        (
            "airlock_kind_median_duration_seconds",
            "Median run time of tasks that ran, by kind.",
            |s| s.median_duration_s,
        ),
    ];
    for (name, help, get) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for s in stats {
            if let Some(v) = get(s) {
                let _ = writeln!(out, "{name}{{kind=\"{}\"}} {v}", s.kind);
            }
        }
    }
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
