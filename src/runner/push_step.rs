//! push (L3+, green only): after export, once every container of the task is gone, hand the
//! exported branch to [`crate::push::flow`]. L0–L2 never get here: their level policy carries no
//! push configuration and `push::decide` refuses them before anything else is looked at.

use std::time::SystemTime;

use serde_json::{json, Value};

use super::attempt::TaskRun;
use crate::artifacts::{State, Summary};
use crate::push::{self, flow, Job, PushError, Remote, Skip};
use crate::sandbox::LABEL_TASK;
use crate::secrets::Held;

/// What export produced that the push needs.
pub(super) struct Exported {
    pub commit: Option<String>,
    pub evidence: String,
}

impl TaskRun {
    /// Push the task's branch and open the draft PR, if this task may. Every secret minted is
    /// added to `held` (the caller scans the artifacts with it before the bundle is written).
    pub(super) fn push_step(
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
        if let Err(e) = self.containers_gone() {
            return fail(summary, &e, held);
        }
        let (record, pr_file) = (
            self.artifacts.path("push.json"),
            self.artifacts.path("pr.json"),
        );
        let git_dir = self.ws.root.join("branch.git");
        let job = Job {
            task_id: &self.task_id,
            title: &self.spec.title,
            repo: &self.spec.repo.url,
            base: &self.spec.repo.base,
            branch: &branch,
            commit: &commit,
            git_dir: &git_dir,
            evidence: &exported.evidence,
            issue: self.spec.issue_url.as_deref(),
            record: &record,
            pr_file: &pr_file,
        };
        if self
            .adm
            .policy
            .push_config
            .as_ref()
            .is_some_and(|c| c.dry_run)
        {
            let result = flow::dry_run(&remote, &job);
            return self.dry_run_done(summary, result.map(|_| ()), held);
        }
        if let Some(gate) = &self.push_gate {
            if let Err(message) = tokio::task::block_in_place(|| (gate.0)()) {
                return fail(summary, &PushError::LeaseLost { message }, held);
            }
        }
        self.progress
            .phase("push", &format!("{branch} -> {}", remote.push_url));
        let mut events: Vec<(String, Value)> = Vec::new();
        let report = tokio::task::block_in_place(|| {
            flow::run(&remote, &job, held, SystemTime::now(), &mut |k, v| {
                events.push((k.to_string(), v))
            })
        });
        for (kind, fields) in events {
            self.emit_redacted(&kind, fields, held);
        }
        self.pushed(summary, report, &branch, &remote, held);
    }

    /// The remote to push to, or `None` with the reason recorded (nothing for L0–L2).
    fn remote(&mut self, summary: &mut Summary) -> Option<Remote> {
        let config = self.adm.policy.push_config.as_ref();
        let remote = config.and_then(|c| c.remote_for(&self.spec.repo.url));
        let decided = push::decide(
            self.adm.level,
            self.adm.policy.push,
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
                        self.spec.repo.url
                    ));
                }
                None
            }
        }
    }

    /// No token exists while a container of the task does.
    fn containers_gone(&self) -> Result<(), PushError> {
        let listed = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(self.engine.list_managed(Some((LABEL_TASK, &self.task_id))))
        });
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
        self.progress.phase("push", &m);
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
