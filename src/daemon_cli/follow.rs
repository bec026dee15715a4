//! `airlock logs -f` says how far a running task got while no event arrives: a spinner with the
//! last event, the attempt and the elapsed time on a terminal (`indicatif`), and a plain line
//! every [`QUIET_EVERY`] of silence otherwise (a CI log shows the task is alive). Event names
//! come from the daemon's event log; they are escaped before they are shown.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

/// A plain line after this long without an event (off a terminal).
pub const QUIET_EVERY: Duration = Duration::from_secs(10);

/// What the follower has seen so far.
struct Seen {
    last_event: String,
    attempt: Option<u64>,
    at: Instant,
}

/// Shared between the event stream and the ticker.
#[derive(Clone)]
pub struct Follow {
    id: String,
    started: Instant,
    seen: Arc<Mutex<Seen>>,
    bar: Option<ProgressBar>,
}

impl Follow {
    pub fn new(id: &str, terminal: bool) -> Follow {
        let bar = terminal.then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                bar.set_style(style);
            }
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Follow {
            id: airlock::runner::one_line(id),
            started: Instant::now(),
            seen: Arc::new(Mutex::new(Seen {
                last_event: String::new(),
                attempt: None,
                at: Instant::now(),
            })),
            bar,
        }
    }

    /// Print with the spinner out of the way.
    pub fn print<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// An event arrived.
    pub fn saw(&self, event: &Value) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        seen.last_event = airlock::runner::one_line(event["event"].as_str().unwrap_or("?"));
        if let Some(n) = event["attempt"].as_u64() {
            seen.attempt = Some(n);
        }
        seen.at = Instant::now();
        if let Some(bar) = &self.bar {
            bar.set_message(status(&self.id, &seen, None));
        }
    }

    /// Called every second: off a terminal, a plain line after [`QUIET_EVERY`] of silence.
    pub fn tick(&self) {
        if self.bar.is_some() {
            return;
        }
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if seen.at.elapsed() < QUIET_EVERY {
            return;
        }
        let line = status(&self.id, &seen, Some(self.started.elapsed()));
        seen.at = Instant::now();
        eprintln!("{line}");
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `logs: <id> running, attempt 2, last event container_started (45s)`.
fn status(id: &str, seen: &Seen, elapsed: Option<Duration>) -> String {
    let attempt = seen
        .attempt
        .map(|n| format!(", attempt {n}"))
        .unwrap_or_default();
    let last = if seen.last_event.is_empty() {
        ", no event yet".to_string()
    } else {
        format!(", last event {}", seen.last_event)
    };
    let time = elapsed
        .map(|e| format!(" ({:.0}s)", e.as_secs_f64()))
        .unwrap_or_default();
    format!("logs: {id} running{attempt}{last}{time}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_says_the_attempt_and_the_last_event_escaped() {
        let seen = Seen {
            last_event: airlock::runner::one_line("container_started\n\x1b[2J"),
            attempt: Some(2),
            at: Instant::now(),
        };
        assert_eq!(
            status("t1", &seen, Some(Duration::from_secs(45))),
            "logs: t1 running, attempt 2, last event container_started\\u{a}\\u{1b}[2J (45s)"
        );
    }
}
