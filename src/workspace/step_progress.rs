//! How far a long prepare step got (clone, fetch, checkout), reported to whoever shows it:
//! `airlock run` draws a bar on a terminal and prints plain lines otherwise; the daemon shows
//! nothing. The figures are the bytes written so far, measured by the size watch that bounds
//! the step anyway (no extra work).

use std::sync::Arc;
use std::time::Duration;

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The step began.
    Started,
    /// The step is under way (sent periodically).
    Running,
    /// The step finished.
    Done,
}

/// One report: the step (`clone`, `fetch`, `checkout`), its stage, the bytes written so far,
/// the bytes expected when known (a checkout's tree size) and the time since the step started.
#[derive(Debug, Clone, Copy)]
pub struct StepReport<'a> {
    /// The step (`clone`, `fetch`, `checkout`).
    pub step: &'a str,
    /// Where it is.
    pub stage: Stage,
    /// Bytes written so far.
    pub bytes: u64,
    /// Bytes expected, when known.
    pub total: Option<u64>,
    /// Time since the step started.
    pub elapsed: Duration,
}

type Sink = dyn Fn(&StepReport) + Send + Sync;

/// A receiver of [`StepReport`]s; the default reports nowhere.
#[derive(Clone, Default)]
pub struct StepProgress(Option<Arc<Sink>>);

impl StepProgress {
    /// Reports go to `f`.
    pub fn new(f: impl Fn(&StepReport) + Send + Sync + 'static) -> Self {
        StepProgress(Some(Arc::new(f)))
    }

    /// Send `r` to the receiver, if there is one.
    pub fn report(&self, r: &StepReport) {
        if let Some(f) = &self.0 {
            f(r);
        }
    }
}

impl std::fmt::Debug for StepProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "StepProgress(on)"
        } else {
            "StepProgress(off)"
        })
    }
}
