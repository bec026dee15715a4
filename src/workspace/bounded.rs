//! Host git under bounds: a deadline, a size watch on the directory it writes, and
//! cancellation. Whichever trips first kills git's whole process group (remote helpers, ssh,
//! index-pack) and the step fails with the figure and the limit.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Stage, StepProgress, StepReport, WorkspaceError};

/// How often the deadline, the size and the cancel flag are looked at.
const POLL: Duration = Duration::from_millis(100);
/// Largest stderr kept from a failed git.
const MAX_STDERR: usize = 64 << 10;

/// What bounds one git step.
#[derive(Debug, Clone)]
pub struct Bounds {
    /// When the step must have finished.
    pub deadline: Instant,
    /// The whole prepare's time budget, for messages.
    pub budget: Duration,
    /// Set when the task is cancelled; the step stops.
    pub cancel: Arc<AtomicBool>,
}

impl Bounds {
    /// Bounds that never trip (tests, and steps with nothing to bound).
    pub fn unbounded() -> Bounds {
        Bounds {
            deadline: Instant::now() + Duration::from_secs(365 * 86400),
            budget: Duration::from_secs(365 * 86400),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    fn check(&self, what: &str) -> Result<(), WorkspaceError> {
        if self.cancel.load(Ordering::SeqCst) {
            return Err(WorkspaceError::Cancelled);
        }
        if Instant::now() >= self.deadline {
            return Err(WorkspaceError::PrepareTimeout {
                what: what.into(),
                limit: self.budget,
            });
        }
        Ok(())
    }
}

/// A directory whose size is capped while git writes into it.
pub struct SizeWatch<'a> {
    pub dir: &'a Path,
    pub limit: u64,
    pub what: &'static str,
    /// Told the size at start, at each measurement and at the end, with `total` if known.
    pub progress: &'a StepProgress,
    pub total: Option<u64>,
}

impl SizeWatch<'_> {
    fn report(&self, op: &str, stage: Stage, bytes: u64, started: Instant) {
        self.progress.report(&StepReport {
            step: op,
            stage,
            bytes,
            total: self.total,
            elapsed: started.elapsed(),
        });
    }
}

/// Run `cmd` (stdout discarded unless `keep_stdout`) under `bounds` and, if given, `watch`.
pub fn run_bounded(
    mut cmd: Command,
    op: &str,
    bounds: &Bounds,
    watch: Option<SizeWatch>,
) -> Result<Output, WorkspaceError> {
    bounds.check(op)?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| WorkspaceError::Git {
            op: op.into(),
            message: format!("cannot run git: {e}"),
        })?;
    let pgid = child.id() as i32;
    let stdout = child.stdout.take().map(reader);
    let stderr = child.stderr.take().map(reader);
    let started = Instant::now();
    let mut last_size = started;
    if let Some(w) = &watch {
        w.report(op, Stage::Started, 0, started);
    }
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| WorkspaceError::Git {
            op: op.into(),
            message: e.to_string(),
        })? {
            break status;
        }
        let mut tripped = bounds.check(op).err();
        if let (Some(w), None) = (&watch, &tripped) {
            if last_size.elapsed() >= Duration::from_millis(500) {
                last_size = Instant::now();
                let size = dir_bytes(w.dir);
                w.report(op, Stage::Running, size, started);
                if size > w.limit {
                    tripped = Some(WorkspaceError::TooLarge {
                        what: w.what,
                        figure: size,
                        limit: w.limit,
                    });
                }
            }
        }
        if let Some(e) = tripped {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            return Err(e);
        }
        std::thread::sleep(POLL);
    };
    // git has exited; a helper it left holding the pipes is killed so the readers end.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let stdout = stdout.map(join).unwrap_or_default();
    let stderr = stderr.map(join).unwrap_or_default();
    if let Some(w) = &watch {
        let size = dir_bytes(w.dir);
        w.report(op, Stage::Done, size, started);
        if size > w.limit {
            return Err(WorkspaceError::TooLarge {
                what: w.what,
                figure: size,
                limit: w.limit,
            });
        }
    }
    let out = Output {
        status,
        stdout,
        stderr,
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(WorkspaceError::Git {
            op: op.into(),
            message: stderr.trim().chars().take(2000).collect(),
        });
    }
    Ok(out)
}

type Reader = std::thread::JoinHandle<Vec<u8>>;

fn reader<R: std::io::Read + Send + 'static>(r: R) -> Reader {
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = Vec::new();
        // Keep the first MAX_STDERR * 16 bytes; drain (and drop) the rest.
        let cap = (MAX_STDERR * 16) as u64;
        let mut r = r;
        let _ = (&mut r).take(cap).read_to_end(&mut buf);
        let _ = std::io::copy(&mut r, &mut std::io::sink());
        buf
    })
}

fn join(h: Reader) -> Vec<u8> {
    h.join().unwrap_or_default()
}

/// Bytes used by regular files under `dir` (not following symlinks).
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_command_is_killed_at_the_deadline_with_its_children() {
        let b = Bounds {
            deadline: Instant::now() + Duration::from_millis(300),
            budget: Duration::from_millis(300),
            cancel: Arc::new(AtomicBool::new(false)),
        };
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30 & sleep 30; echo late"]);
        let t = Instant::now();
        let e = run_bounded(cmd, "fetch", &b, None).unwrap_err();
        assert!(matches!(e, WorkspaceError::PrepareTimeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn cancel_and_size_trip() {
        let b = Bounds::unbounded();
        b.cancel.store(true, Ordering::SeqCst);
        let e = run_bounded(Command::new("true"), "clone", &b, None).unwrap_err();
        assert!(matches!(e, WorkspaceError::Cancelled));
        let tmp = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("head -c 300000 /dev/zero > big; sleep 5")
            .current_dir(tmp.path());
        let w = SizeWatch {
            dir: tmp.path(),
            limit: 100_000,
            what: "mirror",
            progress: &StepProgress::default(),
            total: None,
        };
        let e = run_bounded(cmd, "clone", &Bounds::unbounded(), Some(w)).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("300000") && m.contains("100000"), "{m}");
    }
}
