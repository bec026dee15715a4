//! Progress lines on stderr: one per phase, with the elapsed time. Quiet when stderr is not a
//! terminal unless verbose. Everything printed is neutralised.
//!
//! Long prepare steps (clone, fetch, checkout) also say how far they got: a bar (`indicatif`)
//! on a terminal, and plain lines otherwise, like CI runners' logs: one when the step starts,
//! one every [`PLAIN_EVERY`] while it runs, one when it ends.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::artifacts::neutralise;
use crate::workspace::{Stage, StepProgress, StepReport};

/// How often a plain progress line is printed while a step runs.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

/// The progress line printer of one task (and, in the daemon, its phase hook).
pub struct Progress {
    started: Instant,
    enabled: bool,
    terminal: bool,
    /// Told the name of every phase (the daemon shows it in the task's status).
    hook: Option<PhaseHook>,
}

/// See [`Progress::with_hook`].
pub type PhaseHook = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("enabled", &self.enabled)
            .finish()
    }
}

impl Progress {
    /// Lines on a terminal, or anywhere when `verbose`.
    pub fn new(verbose: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        Progress {
            started: Instant::now(),
            enabled: verbose || terminal,
            terminal,
            hook: None,
        }
    }

    /// Call `hook` with each phase's name (`prepare`, `agent`, `waiting_ci`, ...).
    pub fn with_hook(mut self, hook: PhaseHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// No lines at all (the daemon's tasks, tests).
    pub fn silent() -> Self {
        Progress {
            started: Instant::now(),
            enabled: false,
            terminal: false,
            hook: None,
        }
    }

    /// The task entered `phase`; `detail` says what it is doing (printed neutralised).
    pub fn phase(&self, phase: &str, detail: &str) {
        if let Some(hook) = &self.hook {
            hook(phase);
        }
        if self.enabled {
            line(self.started, phase, detail);
        }
    }

    /// A receiver for the prepare steps' reports (off when the progress is silent).
    pub fn steps(&self) -> StepProgress {
        if !self.enabled {
            return StepProgress::default();
        }
        let shown = Steps {
            started: self.started,
            terminal: self.terminal,
            state: Mutex::new(None),
        };
        StepProgress::new(move |r| shown.report(r))
    }
}

fn line(started: Instant, phase: &str, detail: &str) {
    let secs = started.elapsed().as_secs_f64();
    let line = neutralise(&format!("[{secs:7.1}s] {phase:<8} {detail}"));
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The step being shown: its bar on a terminal, or when its last plain line was printed.
struct Steps {
    started: Instant,
    terminal: bool,
    state: Mutex<Option<(Option<ProgressBar>, Instant)>>,
}

impl Steps {
    fn report(&self, r: &StepReport) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        match r.stage {
            Stage::Started => {
                line(self.started, "prepare", &format!("{}: started", r.step));
                let bar = self.terminal.then(|| bar(r));
                *state = Some((bar, Instant::now()));
            }
            Stage::Running => match state.as_mut() {
                Some((Some(bar), _)) => bar.set_position(r.bytes),
                Some((None, last)) if last.elapsed() >= PLAIN_EVERY => {
                    *last = Instant::now();
                    line(self.started, "prepare", &so_far(r));
                }
                _ => {}
            },
            Stage::Done => {
                if let Some((Some(bar), _)) = state.take() {
                    bar.finish_and_clear();
                }
                line(
                    self.started,
                    "prepare",
                    &format!(
                        "{}: done, {} in {:.1}s",
                        r.step,
                        HumanBytes(r.bytes),
                        r.elapsed.as_secs_f64()
                    ),
                );
            }
        }
    }
}

/// `clone: 12.3 MiB (4.0s)` or `checkout-index: 12.3 MiB of 40.0 MiB, 30% (4.0s)`.
fn so_far(r: &StepReport) -> String {
    let of = r
        .total
        .filter(|t| *t > 0)
        .map(|t| format!(" of {}, {}%", HumanBytes(t), (r.bytes.min(t) * 100) / t))
        .unwrap_or_default();
    format!(
        "{}: {}{of} ({:.1}s)",
        r.step,
        HumanBytes(r.bytes),
        r.elapsed.as_secs_f64()
    )
}

/// A bar when the total is known, a spinner with the bytes so far otherwise; drawn on stderr.
fn bar(r: &StepReport) -> ProgressBar {
    let step = neutralise(r.step);
    let (bar, template) = match r.total {
        Some(t) if t > 0 => (
            ProgressBar::new(t),
            "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {elapsed}",
        ),
        _ => (
            ProgressBar::new_spinner(),
            "{prefix:>10} {spinner} {bytes} {elapsed}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_prefix(step);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_line_names_the_step_the_bytes_and_the_share_done() {
        let r = StepReport {
            step: "checkout-index",
            stage: Stage::Running,
            bytes: 3 << 20,
            total: Some(12 << 20),
            elapsed: Duration::from_millis(4000),
        };
        assert_eq!(
            so_far(&r),
            "checkout-index: 3.00 MiB of 12.00 MiB, 25% (4.0s)"
        );
        let r = StepReport {
            total: None,
            step: "clone",
            ..r
        };
        assert_eq!(so_far(&r), "clone: 3.00 MiB (4.0s)");
    }
}
