//! push (L3+, green only): after export, once every container of the task is gone, hand the
//! exported branch to [`crate::push::flow`]. L0–L2 never get here: their level policy carries no
//! push configuration and `push::decide` refuses them before anything else is looked at.

use std::path::PathBuf;
use std::time::SystemTime;

use serde_json::{json, Value};

use super::task::TaskRun;
use super::PushGate;
use crate::artifacts::{State, Summary};
use crate::push::{self, flow, Job, PushError, Remote, Skip};
use crate::secrets::Held;

/// [`Job`] with its data owned, so it can cross onto the blocking pool.
struct OwnedJob {
    task_id: String,
    title: String,
    repo: String,
    base: String,
    branch: String,
    commit: String,
    git_dir: PathBuf,
    evidence: String,
    issue: Option<String>,
    record: PathBuf,
    pr_file: PathBuf,
    after: Option<String>,
}

impl OwnedJob {
    fn borrowed(&self) -> Job<'_> {
        Job {
            task_id: &self.task_id,
            title: &self.title,
            repo: &self.repo,
            base: &self.base,
            branch: &self.branch,
            commit: &self.commit,
            git_dir: &self.git_dir,
            evidence: &self.evidence,
            issue: self.issue.as_deref(),
            record: &self.record,
            pr_file: &self.pr_file,
            after: self.after.as_deref(),
        }
    }
}

/// What the blocking push hands back: the report (or why it could not run), the events it
/// emitted, and the held secrets with every token it minted added.
struct Pushed {
    report: flow::Report,
    events: Vec<(String, Value)>,
    held: Held,
}

/// Ask the push gate (a shared queue's fenced record; it may block on its store) off the
/// runtime's worker threads. A panic in it goes on as a panic here.
async fn ask_gate(gate: Option<PushGate>) -> Result<(), PushError> {
    let Some(gate) = gate else {
        return Ok(());
    };
    match tokio::task::spawn_blocking(move || (gate.0)()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(PushError::LeaseLost { message }),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// [`flow::run`] (git, the token provider, the forge: all blocking) on the blocking pool. A
/// panic there goes on as a panic here, as it did when the push ran on the worker thread.
async fn push_blocking(remote: Remote, job: OwnedJob, mut held: Held) -> Pushed {
    let handle = tokio::task::spawn_blocking(move || {
        let mut events: Vec<(String, Value)> = Vec::new();
        let report = flow::run(
            &remote,
            &job.borrowed(),
            &mut held,
            SystemTime::now(),
            &mut |k, v| events.push((k.to_string(), v)),
        );
        Pushed {
            report,
            events,
            held,
        }
    });
    match handle.await {
        Ok(pushed) => pushed,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// What export produced that the push needs.
pub(super) struct Exported {
    pub commit: Option<String>,
    pub evidence: String,
}

impl TaskRun {
    /// Push the task's branch and open the draft PR, if this task may. Every secret minted is
    /// added to `held` (the caller scans the artifacts with it before the bundle is written).
    /// The blocking parts (the push gate, git, the forge) run on tokio's blocking pool with
    /// owned data, so this works on any runtime flavour.
    pub(super) async fn push_step(
        &mut self,
        summary: &mut Summary,
        exported: &Exported,
        held: &mut Held,
    ) {
        let Some(remote) = self.remote(summary) else {
            return;
        };
        let (Some(branch), Some(commit)) = (summary.branch.clone(), exported.commit.clone()) else {
            return;
        };
        if let Err(e) = self.containers_gone().await {
            return fail(summary, &e, held);
        }
        let job = OwnedJob {
            task_id: self.ctx.task_id.clone(),
            title: self.ctx.spec.title.clone(),
            repo: self.ctx.spec.repo.url.clone(),
            base: self.ctx.spec.repo.base.clone(),
            branch: branch.clone(),
            commit,
            git_dir: self.ctx.ws.root.join("branch.git"),
            evidence: exported.evidence.clone(),
            issue: self.ctx.spec.issue_url.clone(),
            record: self.ctx.artifacts.path("push.json"),
            pr_file: self.ctx.artifacts.path("pr.json"),
            after: self.ci.pushed.clone(),
        };
        if self
            .ctx
            .adm
            .policy
            .push_config
            .as_ref()
            .is_some_and(|c| c.dry_run)
        {
            let result = flow::dry_run(&remote, &job.borrowed());
            return self.dry_run_done(summary, result.map(|_| ()), held);
        }
        if let Err(e) = ask_gate(self.ctx.push_gate.clone()).await {
            return fail(summary, &e, held);
        }
        self.ctx
            .progress
            .phase("push", &format!("{branch} -> {}", remote.push_url));
        let pushed = push_blocking(remote.clone(), job, std::mem::take(held)).await;
        *held = pushed.held;
        for (kind, fields) in pushed.events {
            self.emit_redacted(&kind, fields, held);
        }
        self.pushed(summary, pushed.report, &branch, &remote, held);
    }

    /// The remote to push to, or `None` with the reason recorded (nothing for L0–L2).
    fn remote(&mut self, summary: &mut Summary) -> Option<Remote> {
        let config = self.ctx.adm.policy.push_config.as_ref();
        let remote = config.and_then(|c| c.remote_for(&self.ctx.spec.repo.url));
        let decided = push::decide(
            self.ctx.adm.level,
            self.ctx.adm.policy.push,
            summary.state,
            summary.branch.as_deref(),
            remote,
        );
        match decided {
            Ok(r) => Some(r.clone()),
            Err(Skip::Never) => None,
            Err(skip) => {
                self.events
                    .emit("push_skipped", json!({ "reason": skip.reason() }));
                if skip == Skip::NoRemote && summary.message.is_none() {
                    summary.message = Some(format!(
                        "not pushed: push.toml pins no remote for `{}`; the branch is in branch.bundle",
                        self.ctx.spec.repo.url
                    ));
                }
                None
            }
        }
    }

    /// No token exists while a container of the task does.
    pub(super) async fn containers_gone(&self) -> Result<(), PushError> {
        let listed = self.ctx.engine.task_containers(&self.ctx.task_id).await;
        match listed {
            Ok(ids) if ids.is_empty() => Ok(()),
            Ok(ids) => Err(PushError::ContainersRemain { count: ids.len() }),
            Err(e) => Err(PushError::Engine {
                message: e.to_string(),
            }),
        }
    }

    fn dry_run_done(&mut self, summary: &mut Summary, result: Result<(), PushError>, held: &Held) {
        match result {
            Ok(()) => {
                self.events
                    .emit("push_dry_run", json!({ "file": "pr.json" }));
                summary.message = Some(
                    "dry run: nothing minted or pushed; the draft PR request is in pr.json".into(),
                );
            }
            Err(e) => fail(summary, &e, held),
        }
    }

    fn pushed(
        &mut self,
        summary: &mut Summary,
        report: flow::Report,
        branch: &str,
        remote: &Remote,
        held: &Held,
    ) {
        summary.pushed = report.pushed;
        if let Some(e) = &report.error {
            self.emit_redacted(
                "push_failed",
                json!({ "reason": e.reason(), "message": e.to_string() }),
                held,
            );
            return fail(summary, e, held);
        }
        let mut m = format!("pushed {branch} to {}", remote.push_url);
        if report.earlier {
            m.push_str(" (by an earlier run of this task; not pushed again)");
        }
        if let Some(pr) = &report.pr {
            m.push_str(&format!("; draft PR #{}: {}", pr.number, pr.url));
        }
        self.ctx.progress.phase("push", &m);
        summary.message = Some(m);
    }

    fn emit_redacted(&mut self, kind: &str, fields: Value, held: &Held) {
        let text = held.redactor.redact(fields.to_string().as_bytes());
        let fields = serde_json::from_slice(&text).unwrap_or_else(|_| json!({ "redacted": true }));
        self.events.emit(kind, fields);
    }
}

/// The task ends `error` with the push error's reason; the diff and branch stay exported.
fn fail(summary: &mut Summary, e: &PushError, held: &Held) {
    summary.state = State::Error;
    summary.reason = e.reason();
    summary.message = Some(held.redactor.redact_str(&e.to_string()));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::push::config::{CommandProvider, Provider, TokenConfig};

    fn remote(push_url: String) -> Remote {
        let exp = crate::push::token::rfc3339(SystemTime::now() + Duration::from_secs(600));
        Remote {
            repo: "/src/repo".into(),
            push_url,
            protected: vec![],
            auth_user: "x-access-token".into(),
            token: TokenConfig {
                provider: Provider::Command(CommandProvider {
                    argv: vec![
                        "sh".into(),
                        "-c".into(),
                        format!(r#"printf '{{"token":"tok-unit-7f3a","expires_at":"{exp}"}}'"#),
                    ],
                    revoke: None,
                    timeout: Duration::from_secs(10),
                }),
                max_ttl: Duration::from_secs(3600),
            },
            pr: None,
            ci: None,
        }
    }

    fn job(dir: &std::path::Path) -> OwnedJob {
        OwnedJob {
            task_id: "t-unit".into(),
            title: "unit".into(),
            repo: "/src/repo".into(),
            base: "main".into(),
            branch: "agent/t-unit".into(),
            commit: "0".repeat(40),
            git_dir: dir.join("branch.git"),
            evidence: String::new(),
            issue: None,
            record: dir.join("push.json"),
            pr_file: dir.join("pr.json"),
            after: None,
        }
    }

    /// The push runs on a current-thread runtime (where `block_in_place` panics), mints, fails
    /// to push to a remote that does not exist, and hands the minted token back in `held`.
    #[tokio::test(flavor = "current_thread")]
    async fn push_runs_on_a_current_thread_runtime_and_returns_the_held_token() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/no-such-remote.git", dir.path().display());
        let pushed = push_blocking(remote(url), job(dir.path()), Held::default()).await;
        assert!(pushed.report.error.is_some(), "a push to nowhere must fail");
        assert!(!pushed.report.pushed);
        assert_eq!(
            pushed.held.redactor.redact_str("x tok-unit-7f3a y"),
            "x [REDACTED] y",
            "the minted token must come back in `held` so the artifacts are scanned for it"
        );
        let kinds: Vec<&str> = pushed.events.iter().map(|(k, _)| k.as_str()).collect();
        assert!(kinds.contains(&"token_minted"), "{kinds:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn push_gate_runs_on_a_current_thread_runtime() {
        assert!(ask_gate(None).await.is_ok());
        let open = PushGate(Arc::new(|| Ok(())));
        assert!(ask_gate(Some(open)).await.is_ok());
        let closed = PushGate(Arc::new(|| Err("lease lost at 12:00".into())));
        match ask_gate(Some(closed)).await {
            Err(PushError::LeaseLost { message }) => assert_eq!(message, "lease lost at 12:00"),
            other => panic!("expected lease_lost, got {other:?}"),
        }
    }
}
