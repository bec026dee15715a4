//! What one wait for CI on one pushed commit found, as recorded in `summary.json` (`ci[]`),
//! and the judge's inputs from it: each failure marked introduced or pre-existing against the
//! base commit's CI, where the forge has a result for the same job there.

use serde::{Deserialize, Serialize};

use super::fetch::CiSource;
use super::logs::failures_in;
use super::status::{CiJob, JobState};
use super::wait::CiOutcome;
use crate::gate::{Failure, FailureClass, FailureKind, FailureOrigin};

/// A job as a person follows it: its name, state and link (never fetched with a token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLink {
    /// The job's name.
    pub name: String,
    /// Where it stands.
    pub state: JobState,
    /// Its web page, when the forge gives one (plain https only).
    pub url: Option<String>,
}

impl From<&CiJob> for JobLink {
    fn from(j: &CiJob) -> JobLink {
        JobLink {
            name: j.name.clone(),
            state: j.state,
            url: j.url.clone(),
        }
    }
}

/// How the same job did on the base commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaseCi {
    /// The job passed on the base commit.
    Passed,
    /// The job failed on the base commit too.
    Failed,
    /// The forge has no finished result for this job on the base (or could not be read).
    Unknown,
}

/// One wait (`summary.ci[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiRound {
    /// The pushed commit whose CI this is.
    pub commit: String,
    /// `green`, `failed`, `timeout` or `unreadable`.
    pub result: String,
    /// Seconds spent waiting.
    pub waited_s: u64,
    /// The failing required job; on a timeout, the jobs still pending.
    pub jobs: Vec<JobLink>,
    /// The failing job's log, parsed by the gate's parsers, each with its origin.
    pub failures: Vec<Failure>,
    /// Why the failing job's log could not be read, or why the forge could not be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The failing job on the base commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseCi>,
}

impl CiRound {
    /// The round for `commit` from a wait's outcome.
    pub fn new(commit: &str, outcome: &CiOutcome, waited_s: u64) -> CiRound {
        let (result, jobs, failures, error) = match outcome {
            CiOutcome::Green { .. } => ("green", vec![], vec![], None),
            CiOutcome::Failed {
                job,
                failures,
                log_error,
            } => (
                "failed",
                vec![JobLink::from(job)],
                with_fallback(job, failures, log_error.as_deref()),
                log_error.clone(),
            ),
            CiOutcome::Timeout { pending } => (
                "timeout",
                pending.iter().map(JobLink::from).collect(),
                vec![],
                None,
            ),
            CiOutcome::Unreadable { error } => ("unreadable", vec![], vec![], Some(error.clone())),
        };
        CiRound {
            commit: commit.into(),
            result: result.into(),
            waited_s,
            jobs,
            failures,
            error,
            base: None,
        }
    }

    /// The links of the failing (or pending) jobs, for messages and notifications.
    pub fn links(&self) -> String {
        self.jobs
            .iter()
            .map(|j| match &j.url {
                Some(u) => format!("`{}` {u}", j.name),
                None => format!("`{}`", j.name),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Signatures of the introduced failures (what the judge compares between rounds).
    pub fn signatures(&self) -> Vec<String> {
        let mut s: Vec<String> = self
            .failures
            .iter()
            .filter(|f| f.origin != Some(FailureOrigin::Preexisting))
            .map(|f| f.signature.clone())
            .collect();
        s.sort();
        s.dedup();
        s
    }

    /// Every failure the base commit's CI has too.
    pub fn preexisting_only(&self) -> bool {
        !self.failures.is_empty()
            && self
                .failures
                .iter()
                .all(|f| f.origin == Some(FailureOrigin::Preexisting))
    }
}

/// A failed job with nothing parsed from its log (none served, or unreadable) still yields
/// one failure naming the job, so the agent and the judge see it.
fn with_fallback(job: &CiJob, failures: &[Failure], log_error: Option<&str>) -> Vec<Failure> {
    if !failures.is_empty() {
        return failures.to_vec();
    }
    let why = log_error.unwrap_or("the forge serves no log for it");
    let message: String = format!("CI job `{}` failed ({why})", job.name)
        .chars()
        .take(crate::gate::MAX_MESSAGE_CHARS)
        .collect();
    vec![Failure {
        tool: "ci".into(),
        kind: FailureKind::Unknown,
        file: None,
        line: None,
        test_id: None,
        excerpt: job.url.clone().unwrap_or_default(),
        signature: signature(&job.name),
        class: FailureClass::of(FailureKind::Unknown),
        origin: None,
        message,
    }]
}

fn signature(name: &str) -> String {
    crate::gate::parsers::signature::signature(
        "ci",
        FailureKind::Unknown,
        None,
        Some(name),
        "job failed",
    )
}

/// The failures of job `name` on the base commit, read once (no wait): `Passed` (none),
/// `Failed` with its parsed log, or `Unknown`.
pub fn base_result(source: &mut dyn CiSource, base: &str, name: &str) -> (BaseCi, Vec<Failure>) {
    let Ok(jobs) = source.jobs(base) else {
        return (BaseCi::Unknown, vec![]);
    };
    let Some(job) = jobs
        .iter()
        .filter(|j| j.name == name)
        .max_by_key(|j| j.id.unwrap_or(0))
    else {
        return (BaseCi::Unknown, vec![]);
    };
    match job.state {
        JobState::Success | JobState::Skipped => (BaseCi::Passed, vec![]),
        JobState::Pending => (BaseCi::Unknown, vec![]),
        JobState::Failure => match source.log(job) {
            Ok(Some(log)) => (BaseCi::Failed, failures_in(&log)),
            _ => (BaseCi::Failed, vec![]),
        },
    }
}

/// Mark each failure of `round` against the base: pre-existing when the same job failed on
/// the base with the same signature (a failure nothing recognised never is).
pub fn mark(round: &mut CiRound, base: BaseCi, base_failures: &[Failure]) {
    round.base = Some(base);
    for f in &mut round.failures {
        let pre = base == BaseCi::Failed
            && f.kind != FailureKind::Unknown
            && base_failures.iter().any(|b| b.signature == f.signature);
        f.origin = Some(if pre {
            FailureOrigin::Preexisting
        } else {
            FailureOrigin::Introduced
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> CiJob {
        CiJob {
            name: "test".into(),
            state: JobState::Failure,
            id: Some(4),
            url: Some("https://github.com/acme/r/runs/4".into()),
            source: "check_run",
        }
    }

    #[test]
    fn origins_against_the_base() {
        let log = include_bytes!("../../../tests/fixtures/ci/github/job-log.txt");
        let failures = failures_in(log);
        let out = CiOutcome::Failed {
            job: job(),
            failures: failures.clone(),
            log_error: None,
        };
        let mut r = CiRound::new("c1", &out, 3);
        mark(&mut r, BaseCi::Failed, &failures);
        assert!(r.preexisting_only(), "{r:?}");
        assert!(r.signatures().is_empty());
        let mut r = CiRound::new("c1", &out, 3);
        mark(&mut r, BaseCi::Passed, &[]);
        assert!(!r.preexisting_only());
        assert_eq!(r.failures[0].origin, Some(FailureOrigin::Introduced));
        assert_eq!(r.signatures().len(), 1);
        assert!(r.links().contains("https://github.com/acme/r/runs/4"));
    }

    #[test]
    fn a_job_without_a_log_still_fails_with_its_name() {
        let out = CiOutcome::Failed {
            job: job(),
            failures: vec![],
            log_error: Some("GET log: HTTP 404".into()),
        };
        let mut r = CiRound::new("c1", &out, 1);
        mark(&mut r, BaseCi::Failed, &[]);
        assert_eq!(r.failures.len(), 1);
        assert!(r.failures[0].message.contains("`test`"));
        assert_eq!(r.failures[0].origin, Some(FailureOrigin::Introduced));
    }
}
