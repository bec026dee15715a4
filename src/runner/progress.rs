//! Progress lines on stderr: one per phase, with the elapsed time. Quiet when stderr is not a
//! terminal unless verbose. Everything printed is neutralised.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use crate::artifacts::neutralise;

#[derive(Debug)]
pub struct Progress {
    started: Instant,
    enabled: bool,
}

impl Progress {
    pub fn new(verbose: bool) -> Self {
        Progress {
            started: Instant::now(),
            enabled: verbose || std::io::stderr().is_terminal(),
        }
    }

    pub fn silent() -> Self {
        Progress {
            started: Instant::now(),
            enabled: false,
        }
    }

    pub fn phase(&self, phase: &str, detail: &str) {
        if !self.enabled {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64();
        let line = neutralise(&format!("[{secs:7.1}s] {phase:<8} {detail}"));
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}
