//! "A pull request was closed" from a forge's webhook payload, and which task it belongs to.
//! Pure. The route that calls it has already checked the forge's signature.

use serde_json::Value;

use crate::store::PrOutcome;
use crate::trigger::{Forge, Headers};

/// A closed pull (merge) request of an airlock branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrClosed {
    /// The task id the branch names.
    pub task_id: String,
    /// The PR's head (source) branch, `agent/<task>-<slug>`.
    pub branch: String,
    /// Merged or closed unmerged.
    pub outcome: PrOutcome,
    /// The repository as the payload names it.
    pub repository: String,
}

/// What a payload means for the statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrEvent {
    /// Not a pull request event (the trigger parsers handle it).
    NotPr,
    /// A pull request event that records nothing, and why.
    Ignored(String),
    /// A PR of an airlock branch was closed.
    Closed(PrClosed),
}

/// Parse a webhook request body for a closed pull request.
pub fn parse(forge: Forge, h: &(impl Headers + ?Sized), v: &Value) -> PrEvent {
    match forge {
        Forge::Github => pr_event(
            h.get("x-github-event"),
            v,
            "pull_request.head.ref",
            "repository.full_name",
            github_like,
        ),
        Forge::Gitea | Forge::Forgejo => {
            let event = h.get("x-gitea-event").or(h.get("x-forgejo-event"));
            pr_event(
                event,
                v,
                "pull_request.head.ref",
                "repository.full_name",
                github_like,
            )
        }
        Forge::Gitlab => pr_event(
            h.get("x-gitlab-event"),
            v,
            "object_attributes.source_branch",
            "project.path_with_namespace",
            gitlab,
        ),
    }
}

fn pr_event(
    event: Option<&str>,
    v: &Value,
    branch_at: &str,
    repo_at: &str,
    outcome: fn(&Value) -> Result<Option<PrOutcome>, String>,
) -> PrEvent {
    if !matches!(event, Some("pull_request" | "Merge Request Hook")) {
        return PrEvent::NotPr;
    }
    let o = match outcome(v) {
        Ok(Some(o)) => o,
        Ok(None) => return PrEvent::Ignored("the pull request was not closed".into()),
        Err(m) => return PrEvent::Ignored(m),
    };
    let branch = at(v, branch_at).as_str().unwrap_or("");
    let Some(task_id) = task_of_branch(branch) else {
        return PrEvent::Ignored(
            "the pull request's branch is not an airlock branch (agent/<task>-<slug>)".into(),
        );
    };
    PrEvent::Closed(PrClosed {
        task_id,
        branch: branch.into(),
        outcome: o,
        repository: at(v, repo_at).as_str().unwrap_or("").into(),
    })
}

/// GitHub and Gitea/Forgejo: `action = "closed"` with `pull_request.merged`.
fn github_like(v: &Value) -> Result<Option<PrOutcome>, String> {
    if v["action"].as_str() != Some("closed") {
        return Ok(None);
    }
    match v["pull_request"]["merged"].as_bool() {
        Some(true) => Ok(Some(PrOutcome::Merged)),
        Some(false) => Ok(Some(PrOutcome::ClosedUnmerged)),
        None => Err("the payload has no `pull_request.merged`".into()),
    }
}

/// GitLab: `object_attributes.action` is `merge` or `close`.
fn gitlab(v: &Value) -> Result<Option<PrOutcome>, String> {
    match v["object_attributes"]["action"].as_str() {
        Some("merge") => Ok(Some(PrOutcome::Merged)),
        Some("close") => Ok(Some(PrOutcome::ClosedUnmerged)),
        _ => Ok(None),
    }
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |cur, k| &cur[k])
}

/// The task id in `agent/<task>-<slug>`, for the daemon's ids (`YYYYMMDD-HHMMSS-xxxxxx`). The
/// store also requires the task's recorded branch to equal the whole branch name.
pub fn task_of_branch(branch: &str) -> Option<String> {
    let rest = branch.strip_prefix("agent/")?;
    let id = rest.get(..22)?;
    let after = &rest[22..];
    let shape = id.char_indices().all(|(i, c)| match i {
        8 | 15 => c == '-',
        0..=14 => c.is_ascii_digit(),
        _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
    });
    (shape && (after.is_empty() || after.starts_with('-'))).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BRANCH: &str = "agent/20261201-230000-abc123-fix-the-thing";

    #[test]
    fn branch_names_map_to_task_ids() {
        assert_eq!(
            task_of_branch(BRANCH).as_deref(),
            Some("20261201-230000-abc123")
        );
        assert_eq!(
            task_of_branch("agent/20261201-230000-abc123").as_deref(),
            Some("20261201-230000-abc123")
        );
        for b in [
            "main",
            "agent/",
            "agent/2026-12-01",
            "feature/20261201-230000-abc123-x",
            "agent/20261201-230000-abc12Z-x",
            "agent/20261201-230000-abc1234",
        ] {
            assert_eq!(task_of_branch(b), None, "{b}");
        }
    }

    fn gh(action: &str, merged: bool, branch: &str) -> Value {
        json!({ "action": action, "pull_request": { "merged": merged, "head": { "ref": branch } }, "repository": { "full_name": "acme/app" } })
    }

    #[test]
    fn github_and_gitea_closed_pull_requests() {
        let h: &[(&str, &str)] = &[("X-GitHub-Event", "pull_request")];
        let PrEvent::Closed(c) = parse(Forge::Github, h, &gh("closed", true, BRANCH)) else {
            panic!()
        };
        assert_eq!(
            (c.task_id.as_str(), c.outcome, c.repository.as_str()),
            ("20261201-230000-abc123", PrOutcome::Merged, "acme/app")
        );
        let PrEvent::Closed(c) = parse(Forge::Github, h, &gh("closed", false, BRANCH)) else {
            panic!()
        };
        assert_eq!(c.outcome, PrOutcome::ClosedUnmerged);
        assert!(matches!(
            parse(Forge::Github, h, &gh("opened", false, BRANCH)),
            PrEvent::Ignored(_)
        ));
        assert!(matches!(
            parse(Forge::Github, h, &gh("closed", true, "feature/x")),
            PrEvent::Ignored(_)
        ));
        let issues: &[(&str, &str)] = &[("X-GitHub-Event", "issues")];
        assert_eq!(
            parse(Forge::Github, issues, &gh("closed", true, BRANCH)),
            PrEvent::NotPr
        );
        let gitea: &[(&str, &str)] = &[("X-Gitea-Event", "pull_request")];
        assert!(matches!(
            parse(Forge::Gitea, gitea, &gh("closed", true, BRANCH)),
            PrEvent::Closed(_)
        ));
        let forgejo: &[(&str, &str)] = &[("X-Forgejo-Event", "pull_request")];
        assert!(matches!(
            parse(Forge::Forgejo, forgejo, &gh("closed", false, BRANCH)),
            PrEvent::Closed(PrClosed {
                outcome: PrOutcome::ClosedUnmerged,
                ..
            })
        ));
    }

    #[test]
    fn gitlab_merge_request_hooks() {
        let h: &[(&str, &str)] = &[("X-Gitlab-Event", "Merge Request Hook")];
        let mr = |action: &str| json!({ "object_attributes": { "action": action, "source_branch": BRANCH }, "project": { "path_with_namespace": "g/app" } });
        assert!(matches!(
            parse(Forge::Gitlab, h, &mr("merge")),
            PrEvent::Closed(PrClosed {
                outcome: PrOutcome::Merged,
                ..
            })
        ));
        assert!(matches!(
            parse(Forge::Gitlab, h, &mr("close")),
            PrEvent::Closed(PrClosed {
                outcome: PrOutcome::ClosedUnmerged,
                ..
            })
        ));
        assert!(matches!(
            parse(Forge::Gitlab, h, &mr("update")),
            PrEvent::Ignored(_)
        ));
    }
}
