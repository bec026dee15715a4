//! Status back to the forge for tasks a webhook started: the trigger label is removed once the
//! task is accepted (GitHub, GitLab; Gitea's API removes labels only by id, so it stays there),
//! and a comment goes on the issue when the task starts and when it ends.
//!
//! Only where the operator's `push.toml` pins a remote with `[remote.pr]` for the template's
//! repository; each call mints its own short-lived token through that remote's provider (the
//! same machinery as the push, with `AIRLOCK_PUSH_REF` empty), uses it for the request and
//! revokes it. Failures are logged and never affect the task. Every text from the task that goes
//! into a comment is escaped ([`crate::trigger::text`]).

use std::sync::Arc;
use std::time::SystemTime;

use secrecy::SecretString;
use serde_json::json;

use super::config::triggers::TriggerRule;
use super::shared::Shared;
use crate::push::config::{Forge, PrConfig, Remote};
use crate::push::http::ApiRequest;
use crate::push::mint::{self, Revoked, Scope};
use crate::secrets::{url_encode, Redactor};
use crate::store::End;
use crate::trigger::text;

/// Where a task's status goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The remote whose token posts the comments.
    pub remote: Remote,
    /// The forge and project.
    pub pr: PrConfig,
    /// The task spec's `repo.url`.
    pub repo_url: String,
    /// The issue's number.
    pub issue: u64,
    /// The label that started the task (removed once it is accepted), if one did.
    pub label: Option<String>,
}

/// The moments a comment is posted.
#[derive(Debug, Clone)]
pub enum Moment {
    /// The task was queued.
    Accepted,
    /// A worker started it.
    Started {
        /// The level it runs at.
        level: String,
    },
    /// It reached a final state.
    Ended {
        /// How it ended.
        end: End,
        /// The PR it opened, if any.
        pr_url: Option<String>,
    },
}

/// The comment for `moment` (`None`: nothing to say, e.g. at acceptance).
pub fn comment(task_id: &str, moment: &Moment) -> Option<String> {
    match moment {
        Moment::Accepted => None,
        Moment::Started { level } => Some(format!(
            "airlock: task `{task_id}` started at {level}. It runs in a sandbox without network or secrets; this issue gets a comment when it ends."
        )),
        Moment::Ended { end, pr_url } => {
            let mut c = format!(
                "airlock: task `{task_id}` ended **{}** (`{}`).",
                end.state.as_str(),
                safe_word(end.reason.as_str())
            );
            if let Some(m) = &end.message {
                c.push_str(&format!("\n\n> {}", one_line(m)));
            }
            match pr_url {
                Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                    c.push_str(&format!("\n\nDraft PR: {}", one_line(u)))
                }
                _ if end.state != crate::artifacts::State::Green => {
                    c.push_str("\n\nIt needs a human: the artifacts and evidence are on the runner.")
                }
                _ => {}
            }
            Some(c)
        }
    }
}

fn safe_word(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

/// Hostile text as one escaped line: controls removed, mentions neutralised, Markdown and HTML
/// specials escaped, capped.
fn one_line(s: &str) -> String {
    let t = text::neutralise_mentions(&text::strip_controls(s).replace(['\n', '\t'], " "));
    let mut out = String::new();
    for c in t.chars().take(500) {
        if "\\`*_[]<>#|~!".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The requests for `moment`: the comment, and at acceptance the label's removal.
pub fn requests(
    t: &Target,
    task_id: &str,
    moment: &Moment,
    token: &SecretString,
) -> Vec<ApiRequest> {
    let mut out = Vec::new();
    if let Some(body) = comment(task_id, moment) {
        out.push(comment_request(&t.pr, t.issue, &body, token));
    }
    if let (Moment::Accepted, Some(label)) = (moment, &t.label) {
        out.extend(unlabel_request(&t.pr, t.issue, label, token));
    }
    out
}

fn comment_request(pr: &PrConfig, issue: u64, body: &str, token: &SecretString) -> ApiRequest {
    let url = match pr.forge {
        Forge::Gitlab => format!(
            "{}/projects/{}/issues/{issue}/notes",
            pr.api_url,
            url_encode(&pr.project)
        ),
        _ => format!(
            "{}/repos/{}/issues/{issue}/comments",
            pr.api_url, pr.project
        ),
    };
    crate::push::forge::auth(pr, ApiRequest::new("POST", url), token).json(json!({ "body": body }))
}

fn unlabel_request(
    pr: &PrConfig,
    issue: u64,
    label: &str,
    token: &SecretString,
) -> Option<ApiRequest> {
    let req = match pr.forge {
        Forge::Github => ApiRequest::new(
            "DELETE",
            format!(
                "{}/repos/{}/issues/{issue}/labels/{}",
                pr.api_url,
                pr.project,
                url_encode(label)
            ),
        ),
        Forge::Gitlab => ApiRequest::new(
            "PUT",
            format!(
                "{}/projects/{}/issues/{issue}",
                pr.api_url,
                url_encode(&pr.project)
            ),
        )
        .json(json!({ "remove_labels": label })),
        Forge::Gitea => return None,
    };
    Some(crate::push::forge::auth(pr, req, token))
}

/// The target for a task started by `rule` on issue `issue`, if push.toml pins one.
pub fn target(ctx: &Shared, rule: &TriggerRule, issue: u64) -> Option<Target> {
    let push = ctx
        .policies
        .levels
        .values()
        .find_map(|l| l.push_config.as_ref())?;
    let remote = push.remote_for(&rule.template.repo_url)?;
    let pr = remote.pr.clone()?;
    Some(Target {
        remote: remote.clone(),
        pr,
        repo_url: rule.template.repo_url.clone(),
        issue,
        label: rule.label.clone(),
    })
}

/// The target of a task a webhook started, from its stored delivery (`None` for other tasks).
pub async fn target_of(ctx: &Arc<Shared>, task_id: &str) -> Option<Target> {
    let id = task_id.to_string();
    let key = ctx.db.issue_of(id).await.ok()??;
    let (route, rest) = key.split_once(':')?;
    let (repo, number) = rest.rsplit_once('#')?;
    let rule = ctx
        .config
        .triggers
        .iter()
        .find(|t| t.forge.route() == route && t.repository.eq_ignore_ascii_case(repo))?;
    target(ctx, rule, number.parse().ok()?)
}

/// The draft PR's URL from the task's `pr.json`, if it opened one.
pub fn pr_url(artifacts: &std::path::Path, task_id: &str) -> Option<String> {
    let bytes = std::fs::read(artifacts.join(task_id).join("pr.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["url"].as_str().map(str::to_string)
}

/// Post `moment` for `task_id` in the background.
pub fn post(ctx: &Arc<Shared>, target: Option<Target>, task_id: &str, moment: Moment) {
    let Some(t) = target else { return };
    if ctx
        .policies
        .levels
        .values()
        .any(|l| l.push_config.as_ref().is_some_and(|p| p.dry_run))
    {
        return tracing::info!(task = task_id, "push.toml dry_run: no status comment");
    }
    let id = task_id.to_string();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = send(&t, &id, &moment) {
            tracing::warn!(task = %id, error = %e, "status to the forge failed");
        }
    });
}

fn send(t: &Target, id: &str, moment: &Moment) -> Result<(), String> {
    let scope = Scope {
        task_id: id,
        repo: &t.repo_url,
        push_url: &t.remote.push_url,
        refname: "",
        access: mint::Access::Write,
    };
    let token = mint::mint(&t.remote.token, scope, SystemTime::now()).map_err(|e| e.to_string())?;
    let _mask = crate::secrets::mask(token.secret());
    let mut result = Ok(());
    for req in requests(t, id, moment, token.secret()) {
        match req.send() {
            Ok(r) if (200..300).contains(&r.status) => {}
            Ok(r) => {
                result = Err(format!(
                    "{} {}: HTTP {}: {}",
                    req.method,
                    req.url,
                    r.status,
                    r.excerpt()
                ))
            }
            Err(e) => result = Err(format!("{} {}: {e}", req.method, req.url)),
        }
    }
    let mut redactor = Redactor::new();
    redactor.add(secrecy::ExposeSecret::expose_secret(token.secret()));
    if let Revoked::Failed(e) = mint::revoke(&t.remote.token, scope, &token, &redactor) {
        tracing::warn!(task = id, error = %e, "the status token was not revoked (it expires by itself)");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::State;
    use crate::vocab::Reason;

    #[test]
    fn end_comments_escape_what_the_task_wrote() {
        let end = End {
            state: State::NeedsHuman,
            reason: Reason::RetryBudgetExhausted,
            message: Some("3 attempts failed\n@octocat <img src=x> `rm -rf` \u{1b}[31m".into()),
            summary: None,
        };
        let c = comment("t1", &Moment::Ended { end, pr_url: None }).unwrap();
        assert!(
            c.contains("**needs_human** (`retry_budget_exhausted`)"),
            "{c}"
        );
        assert!(
            c.contains("\\`@octocat\\`") && c.contains("\\<img src=x\\>"),
            "{c}"
        );
        assert!(!c.contains('\u{1b}') && c.contains("needs a human"), "{c}");
        assert!(comment("t1", &Moment::Accepted).is_none());
    }

    fn target(forge: Forge, api: &str, project: &str) -> Target {
        let remote: Remote = crate::push::parse(
            "[[remote]]\nrepo = \"/srv/r.git\"\npush_url = \"https://h/r.git\"\nauth_user = \"x\"\n[remote.token]\nprovider = \"command\"\ncommand = [\"/bin/true\"]\n",
            None,
        )
        .unwrap()
        .remotes
        .remove(0);
        Target {
            remote,
            pr: PrConfig {
                forge,
                api_url: api.into(),
                project: project.into(),
                labels: vec![],
                head_owner: None,
            },
            repo_url: "/srv/r.git".into(),
            issue: 4,
            label: Some("ai lock".into()),
        }
    }

    #[test]
    fn each_forge_gets_its_own_comment_and_unlabel_requests() {
        let tok = SecretString::from("tok_secret_value");
        let shape = |t: &Target, m: &Moment| -> Vec<String> {
            requests(t, "t1", m, &tok)
                .iter()
                .map(|r| {
                    let v = r.redacted();
                    format!(
                        "{} {}",
                        v["method"].as_str().unwrap(),
                        v["url"].as_str().unwrap()
                    )
                })
                .collect()
        };
        let gh = target(Forge::Github, "https://api.github.com", "acme/app");
        assert_eq!(
            shape(&gh, &Moment::Accepted),
            ["DELETE https://api.github.com/repos/acme/app/issues/4/labels/ai%20lock"]
        );
        assert_eq!(
            shape(&gh, &Moment::Started { level: "L2".into() }),
            ["POST https://api.github.com/repos/acme/app/issues/4/comments"]
        );
        let gl = target(Forge::Gitlab, "https://gl/api/v4", "grp/app");
        assert_eq!(
            shape(&gl, &Moment::Accepted),
            ["PUT https://gl/api/v4/projects/grp%2Fapp/issues/4"]
        );
        assert_eq!(
            shape(&gl, &Moment::Started { level: "L2".into() }),
            ["POST https://gl/api/v4/projects/grp%2Fapp/issues/4/notes"]
        );
        let gt = target(Forge::Gitea, "https://gt/api/v1", "acme/app");
        assert!(
            shape(&gt, &Moment::Accepted).is_empty(),
            "Gitea removes labels by id only"
        );
        let r = requests(&gt, "t1", &Moment::Started { level: "L2".into() }, &tok);
        assert_eq!(
            r[0].redacted()["headers"]["Authorization"],
            "token [REDACTED]"
        );
    }
}
