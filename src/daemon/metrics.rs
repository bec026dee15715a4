//! `/metrics` in the Prometheus text format: queue depth, running tasks, tasks by final state,
//! task duration and container-start duration histograms. Recording and rendering are pure.

use std::fmt::Write;
use std::sync::Mutex;

use crate::artifacts::State;
use crate::store::FINAL_STATES;

/// Task run time (seconds): from a worker taking it to its final state.
const TASK_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// Container start (seconds): the engine's `create` to `start` of one container.
const START_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A cumulative histogram.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        for (i, b) in self.bounds.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

/// Claim round trips (seconds).
const CLAIM_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug)]
struct Inner {
    finished: [u64; FINAL_STATES.len()],
    claim_seconds: Histogram,
    claimed: u64,
    renew_failures: u64,
    abandoned: u64,
    fenced_writes: u64,
    requeued: u64,
    task_seconds: Histogram,
    start_seconds: Histogram,
    connections_refused: u64,
    followers_refused: u64,
}

/// The daemon's metrics since it started (queue depth and running are read at scrape time).
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            inner: Mutex::new(Inner {
                finished: [0; FINAL_STATES.len()],
                claim_seconds: Histogram::new(CLAIM_BUCKETS),
                claimed: 0,
                renew_failures: 0,
                abandoned: 0,
                fenced_writes: 0,
                requeued: 0,
                task_seconds: Histogram::new(TASK_BUCKETS),
                start_seconds: Histogram::new(START_BUCKETS),
                connections_refused: 0,
                followers_refused: 0,
            }),
        }
    }
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// A task reached `state`; `run_seconds` is `None` when it never ran (cancelled queued).
    pub fn finished(&self, state: State, run_seconds: Option<f64>) {
        self.with(|m| {
            if let Some(i) = FINAL_STATES.iter().position(|s| *s == state) {
                m.finished[i] += 1;
            }
            if let Some(s) = run_seconds {
                m.task_seconds.observe(s);
            }
        });
    }

    /// A claim round trip that took `n` tasks.
    pub fn claimed(&self, seconds: f64, n: usize) {
        self.with(|m| {
            m.claim_seconds.observe(seconds);
            m.claimed += n as u64;
        });
    }

    pub fn renew_failed(&self) {
        self.with(|m| m.renew_failures += 1);
    }

    pub fn abandoned(&self) {
        self.with(|m| m.abandoned += 1);
    }

    pub fn fenced_write(&self) {
        self.with(|m| m.fenced_writes += 1);
    }

    pub fn requeued(&self, n: usize) {
        self.with(|m| m.requeued += n as u64);
    }

    /// A connection beyond `[api] max_connections` was closed at once.
    pub fn connection_refused(&self) {
        self.with(|m| m.connections_refused += 1);
    }

    /// A follow stream beyond `[api] max_followers[_per_task]` was refused.
    pub fn follower_refused(&self) {
        self.with(|m| m.followers_refused += 1);
    }

    pub fn container_started(&self, seconds: f64) {
        self.with(|m| m.start_seconds.observe(seconds));
    }

    /// The exposition text.
    pub fn render(&self, queued: i64, running: i64) -> String {
        let mut out = String::new();
        gauge(
            &mut out,
            "airlock_queue_depth",
            "Tasks waiting for a worker.",
            queued,
        );
        gauge(
            &mut out,
            "airlock_tasks_running",
            "Tasks running now.",
            running,
        );
        self.with(|m| {
            let name = "airlock_tasks_finished_total";
            let _ = writeln!(out, "# HELP {name} Tasks that reached a final state since the daemon started.\n# TYPE {name} counter");
            for (s, n) in FINAL_STATES.iter().zip(m.finished) {
                let _ = writeln!(out, "{name}{{state=\"{}\"}} {n}", s.as_str());
            }
            counter(&mut out, "airlock_tasks_claimed_total", "Tasks this runner claimed from the queue.", m.claimed);
            counter(&mut out, "airlock_lease_renew_failures_total", "Lease renewals that failed or were refused.", m.renew_failures);
            counter(&mut out, "airlock_tasks_abandoned_total", "Tasks this runner abandoned after losing their lease.", m.abandoned);
            counter(&mut out, "airlock_fenced_writes_total", "Writes the queue refused because the lease was lost.", m.fenced_writes);
            counter(&mut out, "airlock_tasks_requeued_total", "Tasks this runner's reaper re-queued after their lease expired.", m.requeued);
            counter(&mut out, "airlock_api_connections_refused_total", "Connections closed at once because the listener was at api.max_connections.", m.connections_refused);
            counter(&mut out, "airlock_api_followers_refused_total", "Event follow streams refused at api.max_followers or max_followers_per_task.", m.followers_refused);
            m.claim_seconds.render(&mut out, "airlock_claim_duration_seconds", "Round trip of one claim from the queue.");
            m.task_seconds.render(&mut out, "airlock_task_duration_seconds", "Run time of tasks, from start to final state.");
            m.start_seconds.render(&mut out, "airlock_container_start_duration_seconds", "Engine create-to-start time of task containers.");
        });
        out
    }
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}

fn gauge(out: &mut String, name: &str, help: &str, v: i64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let mut h = Histogram::new(&[1.0, 2.0]);
        for v in [0.5, 1.5, 3.0] {
            h.observe(v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"2\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_sum 5\nx_count 3\n"), "{out}");
    }

    #[test]
    fn the_exposition_has_every_family() {
        let m = Metrics::default();
        m.finished(State::Green, Some(1.2));
        m.finished(State::Cancelled, None);
        m.container_started(0.03);
        let text = m.render(7, 2);
        for line in [
            "airlock_queue_depth 7",
            "airlock_tasks_running 2",
            "airlock_tasks_finished_total{state=\"green\"} 1",
            "airlock_tasks_finished_total{state=\"cancelled\"} 1",
            "airlock_tasks_finished_total{state=\"error\"} 0",
            "airlock_task_duration_seconds_count 1",
            "airlock_container_start_duration_seconds_bucket{le=\"0.05\"} 1",
            "# TYPE airlock_task_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }
}
