//! Draft PR / MR requests for GitHub, Gitea/Forgejo and GitLab, built as data (pure) and their
//! responses read. airlock only ever opens drafts; it has no request that merges.

use secrecy::SecretString;
use serde_json::json;

use super::config::{Forge, PrConfig};
use super::http::{ApiRequest, ApiResponse};
use crate::secrets::url_encode;

/// Forges cap PR bodies (GitHub at 65536 characters); evidence beyond this is cut.
pub const MAX_BODY_CHARS: usize = 60_000;

/// What the PR proposes.
#[derive(Debug)]
pub struct Proposal<'a> {
    /// The PR's title.
    pub title: &'a str,
    /// The pushed branch.
    pub branch: &'a str,
    /// The branch it targets.
    pub base: &'a str,
    /// `evidence.md`.
    pub evidence: &'a str,
    /// The task's id (in the PR's body).
    pub task_id: &'a str,
    /// A link to the issue the task came from, when the task names one.
    pub issue: Option<&'a str>,
}

/// An opened PR / MR.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Opened {
    /// Its number.
    pub number: u64,
    /// Its web page.
    pub url: String,
}

/// The PR body: the evidence (capped), the issue link, and what opened it.
pub fn body(p: &Proposal) -> String {
    let mut b: String = p.evidence.chars().take(MAX_BODY_CHARS).collect();
    if b.len() < p.evidence.len() {
        b.push_str("\n\n… evidence cut here; the full `evidence.md` is in the task's artifacts.\n");
    }
    if let Some(issue) = p.issue {
        b.push_str(&format!("\n---\nIssue: {issue}\n"));
    }
    b.push_str(&format!(
        "\n---\nOpened as a draft by airlock for task `{}`. airlock never merges; a human reviews.\n",
        p.task_id
    ));
    b
}

/// The request that opens the draft.
pub fn open_request(pr: &PrConfig, p: &Proposal, token: &SecretString) -> ApiRequest {
    let body = body(p);
    // A branch pushed to a fork is named `<fork owner>:<branch>` in the upstream's PR.
    let head = match &pr.head_owner {
        Some(owner) => format!("{owner}:{}", p.branch),
        None => p.branch.to_string(),
    };
    match pr.forge {
        Forge::Github => {
            auth(pr, ApiRequest::new("POST", repo_url(pr, "pulls")), token).json(json!({
                "title": p.title, "head": head, "base": p.base, "body": body,
                "draft": true, "maintainer_can_modify": false,
            }))
        }
        Forge::Gitea => {
            auth(pr, ApiRequest::new("POST", repo_url(pr, "pulls")), token).json(json!({
                "title": format!("WIP: {}", p.title), "head": head, "base": p.base, "body": body,
            }))
        }
        Forge::Gitlab => {
            let url = format!(
                "{}/projects/{}/merge_requests",
                pr.api_url,
                url_encode(&pr.project)
            );
            auth(pr, ApiRequest::new("POST", url), token).json(json!({
                "source_branch": p.branch, "target_branch": p.base,
                "title": format!("Draft: {}", p.title), "description": body,
                "labels": pr.labels.join(","), "remove_source_branch": false, "squash": false,
            }))
        }
    }
}

/// The request that labels the opened PR (GitLab sets labels at creation: none).
pub fn labels_request(
    pr: &PrConfig,
    number: impl std::fmt::Display,
    token: &SecretString,
) -> Option<ApiRequest> {
    if pr.labels.is_empty() || pr.forge == Forge::Gitlab {
        return None;
    }
    let url = repo_url(pr, &format!("issues/{number}/labels"));
    Some(auth(pr, ApiRequest::new("POST", url), token).json(json!({ "labels": pr.labels })))
}

/// Number and web URL from a 201 response.
pub fn parse_opened(forge: Forge, resp: &ApiResponse) -> Result<Opened, String> {
    if resp.status != 201 {
        let v = resp.json();
        let msg = v["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| resp.excerpt());
        return Err(format!(
            "HTTP {}: {}",
            resp.status,
            crate::untrusted::neutralise(&msg)
        ));
    }
    let v = resp.json();
    let (num, url) = match forge {
        Forge::Gitlab => (&v["iid"], &v["web_url"]),
        _ => (&v["number"], &v["html_url"]),
    };
    match (num.as_u64(), url.as_str()) {
        (Some(number), Some(url)) => Ok(Opened {
            number,
            url: url.into(),
        }),
        _ => Err("the response has no number and URL".into()),
    }
}

fn repo_url(pr: &PrConfig, rest: &str) -> String {
    format!("{}/repos/{}/{rest}", pr.api_url, pr.project)
}

pub(crate) fn auth(pr: &PrConfig, req: ApiRequest, token: &SecretString) -> ApiRequest {
    match pr.forge {
        Forge::Github => req
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", super::github_app::API_VERSION)
            .auth("Authorization", "Bearer", token),
        Forge::Gitea => {
            req.header("Accept", "application/json")
                .auth("Authorization", "token", token)
        }
        Forge::Gitlab => {
            req.header("Accept", "application/json")
                .auth("Authorization", "Bearer", token)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pr(forge: Forge, api: &str, project: &str) -> PrConfig {
        PrConfig {
            forge,
            api_url: api.into(),
            project: project.into(),
            labels: vec!["airlock".into(), "agent".into()],
            head_owner: None,
        }
    }

    fn proposal() -> Proposal<'static> {
        Proposal {
            title: "Add delete",
            branch: "agent/t1-add-delete",
            base: "main",
            evidence: "# Add delete\n",
            task_id: "t1",
            issue: Some("https://forge/issues/3"),
        }
    }

    #[test]
    fn github_draft_pr_and_labels() {
        let t = SecretString::from("ghs_secret_value");
        let r = open_request(
            &pr(Forge::Github, "https://api.github.com", "acme/app"),
            &proposal(),
            &t,
        )
        .redacted();
        assert_eq!(r["url"], "https://api.github.com/repos/acme/app/pulls");
        assert_eq!(r["body"]["draft"], true);
        assert_eq!(r["body"]["head"], "agent/t1-add-delete");
        assert!(r["body"]["body"]
            .as_str()
            .unwrap()
            .starts_with("# Add delete\n"));
        assert!(r["body"]["body"]
            .as_str()
            .unwrap()
            .contains("Issue: https://forge/issues/3"));
        let l = labels_request(
            &pr(Forge::Github, "https://api.github.com", "acme/app"),
            9,
            &t,
        )
        .unwrap()
        .redacted();
        assert_eq!(
            l["url"],
            "https://api.github.com/repos/acme/app/issues/9/labels"
        );
        assert_eq!(l["body"]["labels"], json!(["airlock", "agent"]));
    }

    #[test]
    fn a_fork_branch_is_named_with_its_owner() {
        let t = SecretString::from("ghs_secret_value");
        for forge in [Forge::Github, Forge::Gitea] {
            let mut cfg = pr(forge, "https://api.github.com", "acme/app");
            cfg.head_owner = Some("airlock-bot".into());
            let r = open_request(&cfg, &proposal(), &t).redacted();
            assert_eq!(r["body"]["head"], "airlock-bot:agent/t1-add-delete");
            assert_eq!(r["url"], "https://api.github.com/repos/acme/app/pulls");
        }
    }

    #[test]
    fn gitea_and_gitlab_shapes() {
        let t = SecretString::from("tok_secret_value");
        let g = open_request(
            &pr(Forge::Gitea, "https://gitea.local/api/v1", "acme/app"),
            &proposal(),
            &t,
        )
        .redacted();
        assert_eq!(g["url"], "https://gitea.local/api/v1/repos/acme/app/pulls");
        assert_eq!(g["headers"]["Authorization"], "token [REDACTED]");
        assert_eq!(g["body"]["title"], "WIP: Add delete");
        let l = open_request(
            &pr(Forge::Gitlab, "https://gl.local/api/v4", "grp/sub/app"),
            &proposal(),
            &t,
        )
        .redacted();
        assert_eq!(
            l["url"],
            "https://gl.local/api/v4/projects/grp%2Fsub%2Fapp/merge_requests"
        );
        assert_eq!(l["body"]["title"], "Draft: Add delete");
        assert_eq!(l["body"]["labels"], "airlock,agent");
        assert!(labels_request(
            &pr(Forge::Gitlab, "https://gl.local/api/v4", "grp/app"),
            1,
            &t
        )
        .is_none());
    }

    #[test]
    fn responses_are_read() {
        let ok = ApiResponse {
            location: None,
            status: 201,
            body: br#"{"iid": 4, "web_url": "https://gl/mr/4"}"#.to_vec(),
        };
        assert_eq!(
            parse_opened(Forge::Gitlab, &ok).unwrap(),
            Opened {
                number: 4,
                url: "https://gl/mr/4".into()
            }
        );
        let no = ApiResponse {
            location: None,
            status: 422,
            body: br#"{"message": "Validation Failed"}"#.to_vec(),
        };
        assert_eq!(
            parse_opened(Forge::Github, &no).unwrap_err(),
            "HTTP 422: Validation Failed"
        );
    }

    #[test]
    fn long_evidence_is_cut() {
        let long = "x".repeat(MAX_BODY_CHARS + 10);
        let p = Proposal {
            evidence: &long,
            ..proposal()
        };
        assert!(body(&p).contains("evidence cut here"));
    }
}
