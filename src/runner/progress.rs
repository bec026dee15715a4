//! Progress lines on stderr: one per phase, with the elapsed time. Quiet when stderr is not a
//! terminal unless verbose. Everything printed is neutralised.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use crate::artifacts::neutralise;

pub struct Progress {
    started: Instant,
    enabled: bool,
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
    pub fn new(verbose: bool) -> Self {
        Progress {
            started: Instant::now(),
            enabled: verbose || std::io::stderr().is_terminal(),
            hook: None,
        }
    }

    /// Call `hook` with each phase's name (`prepare`, `agent`, `waiting_ci`, ...).
    pub fn with_hook(mut self, hook: PhaseHook) -> Self {
        self.hook = Some(hook);
        self
    }

    pub fn silent() -> Self {
        Progress {
            started: Instant::now(),
            enabled: false,
            hook: None,
        }
    }

    pub fn phase(&self, phase: &str, detail: &str) {
        if let Some(hook) = &self.hook {
            hook(phase);
        }
        if !self.enabled {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64();
        let line = neutralise(&format!("[{secs:7.1}s] {phase:<8} {detail}"));
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}
