//! The forges' CI payloads, read into one shape, and the verdict over them.
//!
//! - GitHub: `GET /repos/{o}/{r}/commits/{sha}/check-runs` (`check_runs[]`: `name`, `status`,
//!   `conclusion`, `id`, `html_url`) and `GET /repos/{o}/{r}/commits/{sha}/status` (combined
//!   status: `statuses[]`: `context`, `state`, `target_url`).
//! - Gitea / Forgejo: `GET /repos/{o}/{r}/commits/{sha}/status` (`statuses[]`: `context`,
//!   `status` (or `state`), `target_url`, `id`).
//! - GitLab: `GET /projects/{id}/pipelines?sha=` then `GET /projects/{id}/pipelines/{p}/jobs`
//!   (`[]`: `name`, `status`, `id`, `web_url`, `allow_failure`).

use serde::Serialize;
use serde_json::Value;

use super::config::Required;

/// One check, status or job, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CiJob {
    /// Its name.
    pub name: String,
    /// Where it stands.
    pub state: JobState,
    /// The forge's id (a GitHub check run's id is its Actions job id), for the log.
    pub id: Option<u64>,
    /// A link for people (never fetched with the token).
    pub url: Option<String>,
    /// `check_run`, `status` or `job`.
    pub source: &'static str,
}

/// A check's state, reduced to what the wait needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Queued or running.
    Pending,
    /// Finished and passed.
    Success,
    /// Did not run (skipped, neutral, or allowed to fail): counts as passed.
    Skipped,
    /// Finished and failed (or was cancelled).
    Failure,
}

/// What the checks say now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CiVerdict {
    /// Not all required checks have finished (or none has appeared yet).
    Pending,
    /// Every required check passed.
    Green,
    /// The first failing required check: feedback starts from it without waiting for the rest.
    Failed(CiJob),
}

fn text(v: &Value, k: &str) -> Option<String> {
    v[k].as_str().map(|s| s.chars().take(200).collect())
}

/// GitHub check runs.
pub fn github_check_runs(v: &Value) -> Vec<CiJob> {
    let runs = v["check_runs"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    runs.iter()
        .filter_map(|r| {
            let state = match (r["status"].as_str()?, r["conclusion"].as_str()) {
                ("completed", Some("success")) => JobState::Success,
                ("completed", Some("neutral" | "skipped")) => JobState::Skipped,
                ("completed", _) => JobState::Failure,
                _ => JobState::Pending,
            };
            Some(CiJob {
                name: text(r, "name")?,
                state,
                id: r["id"].as_u64(),
                url: text(r, "html_url").or_else(|| text(r, "details_url")),
                source: "check_run",
            })
        })
        .collect()
}

/// GitHub's combined status, and Gitea's / Forgejo's (which call the field `status`).
pub fn commit_statuses(v: &Value) -> Vec<CiJob> {
    let list = v["statuses"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    list.iter()
        .filter_map(|s| {
            let raw = s["status"].as_str().or(s["state"].as_str())?;
            let state = match raw {
                "success" => JobState::Success,
                "pending" => JobState::Pending,
                "warning" => JobState::Skipped,
                _ => JobState::Failure,
            };
            Some(CiJob {
                name: text(s, "context")?,
                state,
                id: s["id"].as_u64(),
                url: text(s, "target_url"),
                source: "status",
            })
        })
        .collect()
}

/// GitLab pipeline jobs. A job allowed to fail never fails the pipeline.
pub fn gitlab_jobs(v: &Value) -> Vec<CiJob> {
    let list = v.as_array().map(Vec::as_slice).unwrap_or(&[]);
    list.iter()
        .filter_map(|j| {
            let state = match j["status"].as_str()? {
                "success" => JobState::Success,
                "skipped" | "manual" => JobState::Skipped,
                "failed" if j["allow_failure"].as_bool() == Some(true) => JobState::Skipped,
                "failed" | "canceled" => JobState::Failure,
                _ => JobState::Pending,
            };
            Some(CiJob {
                name: text(j, "name")?,
                state,
                id: j["id"].as_u64(),
                url: text(j, "web_url"),
                source: "job",
            })
        })
        .collect()
}

/// The newest entry per name wins (a rerun replaces the run it repeats).
fn latest(jobs: &[CiJob]) -> Vec<&CiJob> {
    let mut out: Vec<&CiJob> = Vec::new();
    for j in jobs {
        match out.iter_mut().find(|o| o.name == j.name) {
            Some(o) if j.id.unwrap_or(0) > o.id.unwrap_or(0) => *o = j,
            Some(_) => {}
            None => out.push(j),
        }
    }
    out
}

/// Decide over the commit's checks: the first failing required one fails at once; green when
/// every required one passed (each named one must have appeared; with `All`, at least one).
pub fn verdict(jobs: &[CiJob], required: &Required) -> CiVerdict {
    let jobs: Vec<&CiJob> = latest(jobs)
        .into_iter()
        .filter(|j| required.covers(&j.name))
        .collect();
    if let Some(f) = jobs.iter().find(|j| j.state == JobState::Failure) {
        return CiVerdict::Failed((*f).clone());
    }
    let all_seen = match required {
        Required::All => !jobs.is_empty(),
        Required::Names(n) => n.iter().all(|name| jobs.iter().any(|j| &j.name == name)),
    };
    if all_seen && jobs.iter().all(|j| j.state != JobState::Pending) {
        CiVerdict::Green
    } else {
        CiVerdict::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let p = format!("{}/tests/fixtures/ci/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}")))
            .unwrap()
    }

    #[test]
    fn github_check_runs_and_statuses() {
        let runs = github_check_runs(&fixture("github/check-runs-failed.json"));
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert_eq!(
            (runs[0].name.as_str(), runs[0].state),
            ("lint", JobState::Success)
        );
        assert_eq!(
            (runs[1].name.as_str(), runs[1].state, runs[1].id),
            ("test", JobState::Failure, Some(4))
        );
        let st = commit_statuses(&fixture("github/status-pending.json"));
        assert_eq!(
            (st[0].name.as_str(), st[0].state),
            ("continuous-integration/jenkins", JobState::Pending)
        );
    }

    #[test]
    fn gitea_and_gitlab() {
        let st = commit_statuses(&fixture("gitea/status-failure.json"));
        assert_eq!(st[0].state, JobState::Failure, "{st:?}");
        let jobs = gitlab_jobs(&fixture("gitlab/jobs-failed.json"));
        let states: Vec<_> = jobs.iter().map(|j| (j.name.as_str(), j.state)).collect();
        assert_eq!(
            states,
            [
                ("rspec:other", JobState::Failure),
                ("teaspoon", JobState::Skipped)
            ]
        );
    }

    fn job(name: &str, state: JobState, id: u64) -> CiJob {
        CiJob {
            name: name.into(),
            state,
            id: Some(id),
            url: None,
            source: "check_run",
        }
    }

    #[test]
    fn verdicts() {
        use JobState::*;
        let all = Required::All;
        assert_eq!(verdict(&[], &all), CiVerdict::Pending);
        assert_eq!(
            verdict(&[job("a", Success, 1), job("b", Pending, 2)], &all),
            CiVerdict::Pending
        );
        assert_eq!(
            verdict(&[job("a", Success, 1), job("b", Skipped, 2)], &all),
            CiVerdict::Green
        );
        // The first failure decides at once, while others still run.
        let v = verdict(&[job("a", Pending, 1), job("b", Failure, 2)], &all);
        assert!(matches!(v, CiVerdict::Failed(j) if j.name == "b"));
        // A rerun that passed replaces the failed run.
        assert_eq!(
            verdict(&[job("a", Failure, 1), job("a", Success, 9)], &all),
            CiVerdict::Green
        );
        let named = Required::Names(vec!["test".into()]);
        assert_eq!(
            verdict(&[job("lint", Failure, 1)], &named),
            CiVerdict::Pending
        );
        assert_eq!(
            verdict(&[job("lint", Failure, 1), job("test", Success, 2)], &named),
            CiVerdict::Green
        );
    }
}
