//! Waiting for CI on a pushed commit: poll until the verdict is in or the wait is over. The
//! clock and the sleep are passed in, so the loop is tested without time passing.

use std::time::Duration;

use serde::Serialize;

use super::config::CiConfig;
use super::fetch::CiSource;
use super::logs::failures_in;
use super::status::{verdict, CiJob, CiVerdict};
use crate::gate::Failure;

/// How the wait ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "ci", rename_all = "snake_case")]
pub enum CiOutcome {
    /// Every required job passed.
    Green {
        /// The jobs that counted.
        jobs: Vec<CiJob>,
    },
    /// The first failing required job, its parsed failures (empty when no log was served) and
    /// why its log could not be read, if it could not.
    Failed {
        /// The failing job.
        job: CiJob,
        /// Its parsed failures.
        failures: Vec<Failure>,
        /// Why its log could not be read.
        log_error: Option<String>,
    },
    /// The wait ran out with these jobs still pending (or none reported).
    Timeout {
        /// The jobs still pending.
        pending: Vec<CiJob>,
    },
    /// The forge could not be read (after the wait ran out).
    Unreadable {
        /// What failed.
        error: String,
    },
}

impl CiOutcome {
    /// The stop reason of a task whose CI ended this way (`None`: green).
    pub fn reason(&self) -> Option<crate::vocab::Reason> {
        use crate::vocab::Reason;
        match self {
            CiOutcome::Green { .. } => None,
            CiOutcome::Failed { .. } => Some(Reason::CiFailed),
            CiOutcome::Timeout { .. } => Some(Reason::CiTimeout),
            CiOutcome::Unreadable { .. } => Some(Reason::CiUnreadable),
        }
    }
}

/// Poll `source` for `sha` every `cfg.poll` until a verdict or `cfg.wait` has passed.
/// `elapsed` reads the time since the wait began; `sleep` waits.
pub fn wait_for_ci(
    source: &mut dyn CiSource,
    sha: &str,
    cfg: &CiConfig,
    elapsed: &mut dyn FnMut() -> Duration,
    sleep: &mut dyn FnMut(Duration),
) -> CiOutcome {
    let mut last_jobs = vec![];
    loop {
        let last_error = match source.jobs(sha) {
            Ok(jobs) => {
                match verdict(&jobs, &cfg.required) {
                    CiVerdict::Green => return CiOutcome::Green { jobs },
                    CiVerdict::Failed(job) => return failed(source, job),
                    CiVerdict::Pending => last_jobs = jobs,
                }
                None
            }
            Err(e) => Some(e),
        };
        if elapsed() + cfg.poll > cfg.wait {
            return match last_error {
                Some(error) => CiOutcome::Unreadable { error },
                None => CiOutcome::Timeout {
                    pending: last_jobs
                        .into_iter()
                        .filter(|j| {
                            j.state == super::JobState::Pending && cfg.required.covers(&j.name)
                        })
                        .collect(),
                },
            };
        }
        sleep(cfg.poll);
    }
}

fn failed(source: &mut dyn CiSource, job: CiJob) -> CiOutcome {
    match source.log(&job) {
        Ok(Some(log)) => CiOutcome::Failed {
            failures: failures_in(&log),
            job,
            log_error: None,
        },
        Ok(None) => CiOutcome::Failed {
            job,
            failures: vec![],
            log_error: None,
        },
        Err(e) => CiOutcome::Failed {
            job,
            failures: vec![],
            log_error: Some(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::ci::{JobState, Required};
    use crate::push::config::Forge;

    struct Script {
        polls: Vec<Vec<CiJob>>,
        log: Vec<u8>,
        calls: usize,
    }

    impl CiSource for Script {
        fn jobs(&mut self, _sha: &str) -> Result<Vec<CiJob>, String> {
            self.calls += 1;
            Ok(self
                .polls
                .get(self.calls - 1)
                .or(self.polls.last())
                .cloned()
                .unwrap_or_default())
        }
        fn log(&mut self, _job: &CiJob) -> Result<Option<Vec<u8>>, String> {
            Ok(Some(self.log.clone()))
        }
    }

    fn cfg() -> CiConfig {
        CiConfig {
            wait: Duration::from_secs(60),
            poll: Duration::from_secs(10),
            required: Required::All,
            forge: Forge::Github,
            api_url: "https://api.github.com".into(),
            project: "a/b".into(),
        }
    }

    fn job(state: JobState) -> CiJob {
        CiJob {
            name: "test".into(),
            state,
            id: Some(1),
            url: None,
            source: "check_run",
        }
    }

    fn run(s: &mut Script) -> (CiOutcome, Duration) {
        let mut t = Duration::ZERO;
        let now = std::cell::Cell::new(Duration::ZERO);
        let out = wait_for_ci(s, "abc", &cfg(), &mut || now.get(), &mut |d| {
            now.set(now.get() + d)
        });
        t += now.get();
        (out, t)
    }

    #[test]
    fn pending_then_failed_fetches_the_log_at_once() {
        let log = include_bytes!("../../../tests/fixtures/ci/github/job-log.txt").to_vec();
        let mut s = Script {
            polls: vec![
                vec![],
                vec![job(JobState::Pending)],
                vec![job(JobState::Failure)],
            ],
            log,
            calls: 0,
        };
        let (out, t) = run(&mut s);
        assert_eq!(t, Duration::from_secs(20));
        match out {
            CiOutcome::Failed { failures, .. } => assert_eq!(
                failures[0].test_id.as_deref(),
                Some("tests/test_calc.py::test_add")
            ),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn never_finishing_is_a_timeout_within_the_wait() {
        let mut s = Script {
            polls: vec![vec![job(JobState::Pending)]],
            log: vec![],
            calls: 0,
        };
        let (out, t) = run(&mut s);
        assert!(
            matches!(out, CiOutcome::Timeout { ref pending } if pending.len() == 1),
            "{out:?}"
        );
        assert!(t <= Duration::from_secs(60), "{t:?}");
        let mut g = Script {
            polls: vec![vec![job(JobState::Success)]],
            log: vec![],
            calls: 0,
        };
        assert!(matches!(run(&mut g).0, CiOutcome::Green { .. }));
    }
}
