//! push (L3+, green only): after export, once every container of the task is gone, hand the
//! exported branch to [`crate::push::flow`]. L0–L2 never get here: their level policy carries no
//! push configuration and `push::decide` refuses them before anything else is looked at.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::tail::{End, Exported, Flow};
use super::task::TaskRun;
use super::PushGate;
use crate::artifacts::State;
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
    /// Set when the task's cancel fires; the push looks at it before git runs.
    cancelled: Arc<AtomicBool>,
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
            cancelled: Some(&self.cancelled),
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

impl TaskRun {
    /// Tail step `push`: push the task's branch and open the draft PR, if this task may. Every
    /// secret minted is added to the task's held secrets (the closing scan reads the artifacts
    /// for them before the bundle is written). The blocking parts (the push gate, git, the
    /// forge) run on tokio's blocking pool with owned data, so this works on any runtime
    /// flavour. A cancel that fires while the token is minted stops the push before git runs.
    pub(super) async fn push_step(
        &mut self,
        end: &End,
        exported: &mut Exported,
        cancel: &CancellationToken,
    ) -> Flow {
        let remote = match self.remote(end, exported) {
            Ok(r) => r,
            Err(word) => return word,
        };
        let (Some(branch), Some(commit), Some((evidence, ..))) = (
            exported.branch.clone(),
            exported.commit.clone(),
            exported.evidence.as_ref(),
        ) else {
            return Flow::Continue;
        };
        if let Err(e) = self.containers_gone().await {
            return fail(&e, &self.ci.held);
        }
        let job = OwnedJob {
            task_id: self.ctx.task_id.clone(),
            title: self.ctx.spec.title.clone(),
            repo: self.ctx.spec.repo.url.clone(),
            base: self.ctx.spec.repo.base.clone(),
            branch: branch.clone(),
            commit,
            git_dir: self.ctx.ws.root.join("branch.git"),
            evidence: evidence.clone(),
            issue: self.ctx.spec.issue_url.clone(),
            record: self.ctx.artifacts.path("push.json"),
            pr_file: self.ctx.artifacts.path("pr.json"),
            after: self.ci.pushed.clone(),
            cancelled: Arc::new(AtomicBool::new(cancel.is_cancelled())),
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
            return self.dry_run_done(result.map(|_| ()));
        }
        if let Err(e) = ask_gate(self.ctx.push_gate.clone()).await {
            return fail(&e, &self.ci.held);
        }
        self.ctx
            .progress
            .phase("push", &format!("{branch} -> {}", remote.push_url));
        let watcher = {
            let (flag, cancel) = (job.cancelled.clone(), cancel.clone());
            tokio::spawn(async move {
                cancel.cancelled().await;
                flag.store(true, Ordering::SeqCst);
            })
        };
        let held = std::mem::take(&mut self.ci.held);
        let pushed = push_blocking(remote.clone(), job, held).await;
        watcher.abort();
        self.ci.held = pushed.held;
        for (kind, fields) in pushed.events {
            self.emit_redacted(&kind, fields);
        }
        exported.pushed = pushed.report.pushed;
        self.pushed(pushed.report, &branch, &remote)
    }

    /// The remote to push to, or the step's word when there is none (nothing for L0–L2; a
    /// note when push.toml pins no remote and nothing else was said).
    fn remote(&mut self, end: &End, exported: &Exported) -> Result<Remote, Flow> {
        let config = self.ctx.adm.policy.push_config.as_ref();
        let remote = config.and_then(|c| c.remote_for(&self.ctx.spec.repo.url));
        let decided = push::decide(
            self.ctx.adm.level,
            self.ctx.adm.policy.push,
            end.state,
            exported.branch.as_deref(),
            remote,
        );
        match decided {
            Ok(r) => Ok(r.clone()),
            Err(Skip::Never) => Err(Flow::Continue),
            Err(skip) => {
                self.events
                    .emit("push_skipped", json!({ "reason": skip.reason() }));
                if skip == Skip::NoRemote && end.message.is_none() {
                    return Err(Flow::Note(format!(
                        "not pushed: push.toml pins no remote for `{}`; the branch is in branch.bundle",
                        self.ctx.spec.repo.url
                    )));
                }
                Err(Flow::Continue)
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

    fn dry_run_done(&mut self, result: Result<(), PushError>) -> Flow {
        match result {
            Ok(()) => {
                self.events
                    .emit("push_dry_run", json!({ "file": "pr.json" }));
                Flow::Note(
                    "dry run: nothing minted or pushed; the draft PR request is in pr.json".into(),
                )
            }
            Err(e) => fail(&e, &self.ci.held),
        }
    }

    fn pushed(&mut self, report: flow::Report, branch: &str, remote: &Remote) -> Flow {
        if let Some(e) = &report.error {
            self.emit_redacted(
                "push_failed",
                json!({ "reason": e.reason(), "message": e.to_string() }),
            );
            return fail(e, &self.ci.held);
        }
        let mut m = format!("pushed {branch} to {}", remote.push_url);
        if report.earlier {
            m.push_str(" (by an earlier run of this task; not pushed again)");
        }
        if let Some(pr) = &report.pr {
            m.push_str(&format!("; draft PR #{}: {}", pr.number, pr.url));
        }
        self.ctx.progress.phase("push", &m);
        Flow::Note(m)
    }

    /// An event whose fields are masked with every secret the task holds.
    fn emit_redacted(&mut self, kind: &str, fields: Value) {
        let text = self.ci.held.redactor.redact(fields.to_string().as_bytes());
        let fields = serde_json::from_slice(&text).unwrap_or_else(|_| json!({ "redacted": true }));
        self.events.emit(kind, fields);
    }
}

/// The task stops with the push error's reason: `cancelled` for a cancel that came during the
/// push, `error` otherwise; the diff and branch stay exported.
fn fail(e: &PushError, held: &Held) -> Flow {
    let state = match e {
        PushError::Cancelled => State::Cancelled,
        _ => State::Error,
    };
    let message = held.redactor.redact_str(&e.to_string());
    Flow::Stop(End::new(state, e.reason(), Some(message)))
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
            cancelled: Arc::new(AtomicBool::new(false)),
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
