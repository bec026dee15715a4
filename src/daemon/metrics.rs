//! `/metrics` in the Prometheus text format: queue depth, running tasks, tasks by final state,
//! task duration and container-start duration histograms, model-API traffic per provider.
//! Recording and rendering are pure.

use std::fmt::Write;
use std::sync::Mutex;

use std::collections::BTreeMap;

use crate::artifacts::State;
use crate::egress::TrafficReport;
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
    /// Per provider name (operator-defined in models.toml, so few).
    models: BTreeMap<String, ModelCounts>,
}

#[derive(Debug, Default, Clone, Copy)]
struct ModelCounts {
    requests: u64,
    refused: u64,
    bytes_up: u64,
    bytes_down: u64,
    budgets_exhausted: u64,
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
                models: BTreeMap::new(),
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

    /// A finished task's `summary.json` (as stored): add its `model_traffic`, if it has one.
    pub fn model_traffic_of(&self, summary: &str) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(summary) else {
            return;
        };
        let Some(t) = v.get("model_traffic").filter(|t| !t.is_null()) else {
            return;
        };
        if let Ok(r) = serde_json::from_value::<TrafficReport>(t.clone()) {
            self.model_traffic(&r);
        }
    }

    /// Add one task's model traffic.
    pub fn model_traffic(&self, r: &TrafficReport) {
        self.with(|m| {
            for (name, p) in &r.providers {
                let c = m.models.entry(name.clone()).or_default();
                c.requests += p.requests;
                c.refused += p.refused_count;
                c.bytes_up += p.bytes_up;
                c.bytes_down += p.bytes_down;
            }
            // Which provider's budget ran out is in the text; count it on each of the task's.
            if r.exhausted.is_some() {
                for name in r.providers.keys() {
                    if r.exhausted
                        .as_deref()
                        .is_some_and(|e| e.contains(&format!("`{name}`")))
                    {
                        m.models.entry(name.clone()).or_default().budgets_exhausted += 1;
                    }
                }
            }
        });
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
            render_models(&mut out, &m.models);
        });
        out
    }
}

/// Per-provider model families; always present (no samples until a task used a model).
fn render_models(out: &mut String, models: &BTreeMap<String, ModelCounts>) {
    type Field = fn(&ModelCounts) -> u64;
    let families: [(&str, &str, Field); 4] = [
        (
            "airlock_model_requests_total",
            "Model-API requests forwarded upstream, per provider.",
            |c| c.requests,
        ),
        (
            "airlock_model_refused_total",
            "Model-API requests the proxy refused (route, key, budget), per provider.",
            |c| c.refused,
        ),
        (
            "airlock_model_budget_exhausted_total",
            "Tasks ended because a model budget ran out, per provider.",
            |c| c.budgets_exhausted,
        ),
        (
            "airlock_model_bytes_total",
            "Model-API bytes through the proxy, per provider and direction.",
            |_| 0,
        ),
    ];
    for (name, help, f) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (p, c) in models {
            let p = label_value(p);
            if name == "airlock_model_bytes_total" {
                let _ = writeln!(
                    out,
                    "{name}{{provider=\"{p}\",direction=\"up\"}} {}",
                    c.bytes_up
                );
                let _ = writeln!(
                    out,
                    "{name}{{provider=\"{p}\",direction=\"down\"}} {}",
                    c.bytes_down
                );
            } else {
                let _ = writeln!(out, "{name}{{provider=\"{p}\"}} {}", f(c));
            }
        }
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
    fn model_traffic_is_counted_per_provider() {
        let m = Metrics::default();
        let summary = serde_json::json!({
            "state": "needs_human",
            "model_traffic": {
                "exhausted": "model provider `anthropic`: the request budget of 2 is used up",
                "providers": {
                    "anthropic": {"requests": 2, "status": {"200": 2}, "bytes_up": 100, "bytes_down": 5000, "time_s": 0.5, "refused_count": 3, "refused": []},
                    "openai": {"requests": 1, "status": {}, "bytes_up": 1, "bytes_down": 2, "time_s": 0.1, "refused_count": 0, "refused": []}
                }
            }
        });
        m.model_traffic_of(&summary.to_string());
        m.model_traffic_of(&summary.to_string());
        m.model_traffic_of("{\"model_traffic\": null}");
        m.model_traffic_of("not json");
        let text = m.render(0, 0);
        for line in [
            "airlock_model_requests_total{provider=\"anthropic\"} 4",
            "airlock_model_requests_total{provider=\"openai\"} 2",
            "airlock_model_refused_total{provider=\"anthropic\"} 6",
            "airlock_model_budget_exhausted_total{provider=\"anthropic\"} 2",
            "airlock_model_budget_exhausted_total{provider=\"openai\"} 0",
            "airlock_model_bytes_total{provider=\"anthropic\",direction=\"up\"} 200",
            "airlock_model_bytes_total{provider=\"anthropic\",direction=\"down\"} 10000",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
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
