//! Reading CI from the forge: the commit's checks and a failed job's log.
//!
//! A job log on GitHub answers `302` to a pre-signed URL on another host (blob storage). That
//! URL carries its own authorisation; the token is never sent there: a redirect to another
//! origin (scheme, host, port) is followed without any `Authorization` header, and at most
//! [`MAX_REDIRECTS`] times.

use secrecy::SecretString;

use super::config::CiConfig;
use super::status::{commit_statuses, github_check_runs, gitlab_jobs, CiJob};
use crate::push::config::{Forge, PrConfig};
use crate::push::forge::auth;
use crate::push::http::{ApiRequest, ApiResponse};
use crate::secrets::url_encode;

/// Redirects followed for a log, at most.
pub const MAX_REDIRECTS: usize = 3;

/// Where the runner reads CI from (a fake in tests).
pub trait CiSource {
    /// Every check, status or job the forge reports for `sha`.
    fn jobs(&mut self, sha: &str) -> Result<Vec<CiJob>, String>;
    /// The log of a failed job, when the forge serves one.
    fn log(&mut self, job: &CiJob) -> Result<Option<Vec<u8>>, String>;
}

/// The forge's API, with a CI-read token.
pub struct ForgeCi<'a> {
    /// The `[remote.ci]` it reads for.
    pub cfg: &'a CiConfig,
    /// The read token.
    pub token: &'a SecretString,
}

impl ForgeCi<'_> {
    fn pr(&self) -> PrConfig {
        PrConfig {
            forge: self.cfg.forge,
            api_url: self.cfg.api_url.clone(),
            project: self.cfg.project.clone(),
            labels: vec![],
            head_owner: None,
        }
    }

    fn get(&self, url: String) -> Result<ApiResponse, String> {
        let resp = auth(&self.pr(), ApiRequest::new("GET", url.clone()), self.token).send()?;
        if resp.status / 100 != 2 {
            return Err(format!(
                "GET {url}: HTTP {}: {}",
                resp.status,
                resp.excerpt()
            ));
        }
        Ok(resp)
    }

    fn repo(&self, rest: &str) -> String {
        format!("{}/repos/{}/{rest}", self.cfg.api_url, self.cfg.project)
    }

    fn gitlab(&self, rest: &str) -> String {
        format!(
            "{}/projects/{}/{rest}",
            self.cfg.api_url,
            url_encode(&self.cfg.project)
        )
    }
}

impl CiSource for ForgeCi<'_> {
    fn jobs(&mut self, sha: &str) -> Result<Vec<CiJob>, String> {
        match self.cfg.forge {
            Forge::Github => {
                let mut jobs = github_check_runs(
                    &self
                        .get(self.repo(&format!("commits/{sha}/check-runs?per_page=100")))?
                        .json(),
                );
                jobs.extend(commit_statuses(
                    &self
                        .get(self.repo(&format!("commits/{sha}/status")))?
                        .json(),
                ));
                Ok(jobs)
            }
            Forge::Gitea => Ok(commit_statuses(
                &self
                    .get(self.repo(&format!("commits/{sha}/status")))?
                    .json(),
            )),
            Forge::Gitlab => {
                let pipelines = self
                    .get(self.gitlab(&format!("pipelines?sha={sha}&per_page=1")))?
                    .json();
                let Some(id) = pipelines[0]["id"].as_u64() else {
                    return Ok(vec![]);
                };
                Ok(gitlab_jobs(
                    &self
                        .get(self.gitlab(&format!("pipelines/{id}/jobs?per_page=100")))?
                        .json(),
                ))
            }
        }
    }

    fn log(&mut self, job: &CiJob) -> Result<Option<Vec<u8>>, String> {
        let Some(id) = job.id else {
            return Ok(None);
        };
        let url = match (self.cfg.forge, job.source) {
            (Forge::Github, "check_run") => self.repo(&format!("actions/jobs/{id}/logs")),
            (Forge::Gitlab, "job") => self.gitlab(&format!("jobs/{id}/trace")),
            // Gitea's commit statuses do not name the Actions job: the link is reported.
            _ => return Ok(None),
        };
        fetch_log(&self.pr(), url, self.token).map(Some)
    }
}

/// `scheme://host:port` of a URL.
fn origin(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&url[..scheme.len() + 3 + host_end])
}

/// GET `url` with the token; follow redirects, sending the token only to the same origin.
pub fn fetch_log(pr: &PrConfig, url: String, token: &SecretString) -> Result<Vec<u8>, String> {
    let first = origin(&url).map(str::to_string);
    let mut next = url;
    for _ in 0..=MAX_REDIRECTS {
        let same = origin(&next).map(str::to_string) == first;
        let req = ApiRequest::new("GET", next.clone());
        let req = if same { auth(pr, req, token) } else { req };
        let resp = req.send()?;
        match (resp.status, resp.location) {
            (300..=399, Some(loc)) => {
                if !(loc.starts_with("https://")
                    || loc.starts_with("http://127.0.0.1")
                    || loc.starts_with("http://localhost"))
                {
                    return Err(format!(
                        "log redirect to `{}`: only https (or loopback http) is followed",
                        crate::untrusted::neutralise(&loc)
                    ));
                }
                next = loc;
            }
            (200..=299, _) => return Ok(resp.body),
            (s, _) => return Err(format!("GET log: HTTP {s}")),
        }
    }
    Err(format!("more than {MAX_REDIRECTS} redirects for a job log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://api.github.com/repos/x"),
            Some("https://api.github.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/a?b"),
            Some("http://127.0.0.1:8080")
        );
        assert_ne!(
            origin("http://127.0.0.1:8080/a"),
            origin("http://127.0.0.1:8081/a")
        );
    }
}
