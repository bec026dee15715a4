//! export: diff, out/, evidence, summary and the bundle, every file temp-then-rename.

use serde_json::json;

use super::push_step::Exported;
use super::task::TaskRun;
use super::{branch_name, event_log, state_json, RunOptions};
use crate::artifacts::{
    bundle, copy_tree, now_rfc3339, write_atomic, ArtifactDir, CopyReport, DiffStats, RepoRecord,
    State, Summary, SUMMARY_FORMAT,
};
use crate::gate::RedFlag;
use crate::policy::{Refusal, ScopeVerdict};
use crate::secrets::Redactor;
use crate::spec::{Level, TaskSpec};
use crate::vocab::Reason;

mod evidence;
mod evidence_ci;
#[cfg(test)]
mod evidence_golden;
mod evidence_md;
mod evidence_models;
mod evidence_sections;
mod scan;

impl TaskRun {
    /// Write every artifact, push (L3+, green), and return the summary. A failure to write turns
    /// the state into `error` / `export_failed`, but everything that can be written still is.
    pub(super) async fn export(
        &mut self,
        state: State,
        reason: Reason,
        message: Option<String>,
    ) -> Summary {
        let mut summary = self.summary(state, reason, message);
        let mut held = std::mem::take(&mut self.ci.held);
        for key in self.ctx.egress.iter().flat_map(|e| e.keys()) {
            held.add(key);
        }
        match self.export_files(&mut summary).await {
            Ok(exported) => {
                let before = summary.state;
                self.push_step(&mut summary, &exported, &mut held).await;
                self.scan_for_secrets(&mut summary, &held.redactor);
                if summary.state != before {
                    self.rewrite_evidence(&summary, &held.redactor);
                }
            }
            Err(e) => {
                summary.state = State::Error;
                summary.reason = Reason::ExportFailed;
                summary.message = Some(e);
            }
        }
        self.ctx.progress.phase("export", &summary.artifacts);
        self.write_summary_and_bundle(&summary, &held.redactor);
        self.ci.held = held;
        summary
    }

    /// After the wait for CI (`ci_step`): the summary, evidence and bundle written again with
    /// the final state, scanned for every token the task minted.
    pub(super) fn rewrite_after_ci(&mut self, summary: &mut Summary) {
        let held = std::mem::take(&mut self.ci.held);
        self.events
            .emit("finished", state_json(summary.state, summary.reason));
        self.scan_for_secrets(summary, &held.redactor);
        self.rewrite_evidence(summary, &held.redactor);
        self.write_summary_and_bundle(summary, &held.redactor);
        self.ci.held = held;
    }

    async fn export_files(&mut self, summary: &mut Summary) -> Result<Exported, String> {
        write_atomic(
            &self.ctx.artifacts.path("diff.patch"),
            &self.history.last_diff().patch,
        )
        .map_err(|e| e.to_string())?;
        let mut report = CopyReport::default();
        copy_tree(
            &self.ctx.airlock.out,
            &self.ctx.artifacts.path("out"),
            self.ctx.adm.limits.out,
            &mut report,
        )
        .map_err(|e| e.to_string())?;
        if !report.skipped.is_empty() {
            let skipped: Vec<String> = report
                .skipped
                .iter()
                .map(|(p, why)| format!("{}: {why}", p.display()))
                .collect();
            self.events.emit("out_skipped", json!({ "paths": skipped }));
        }
        let commit = if self.wants_branch(summary) {
            Some(self.export_branch(summary).await?)
        } else {
            None
        };
        let evidence = self.evidence(summary);
        write_atomic(&self.ctx.artifacts.path("evidence.md"), evidence.as_bytes())
            .map_err(|e| e.to_string())?;
        Ok(Exported { commit, evidence })
    }

    /// Every artifact written so far is scanned for the secrets held; one that holds any is
    /// removed and the task ends `error` / `secret_in_artifact`.
    fn scan_for_secrets(&mut self, summary: &mut Summary, redactor: &Redactor) {
        if redactor.is_empty() {
            return;
        }
        let hits = scan::remove_hits(&self.ctx.artifacts.dir, redactor);
        if hits.is_empty() {
            return;
        }
        self.events
            .emit("secret_in_artifact", json!({ "removed": hits }));
        summary.state = State::Error;
        summary.reason = Reason::SecretInArtifact;
        summary.message = Some(format!(
            "the push token (or an encoding of it) was found in {}; removed from the artifacts",
            hits.join(", ")
        ));
    }

    /// The evidence again, for a state the push changed (masked, in case).
    fn rewrite_evidence(&self, summary: &Summary, redactor: &Redactor) {
        let evidence = self.evidence(summary);
        let bytes = redactor.redact(evidence.as_bytes());
        if let Err(e) = write_atomic(&self.ctx.artifacts.path("evidence.md"), &bytes) {
            tracing::error!(error = %e, "cannot rewrite evidence.md");
        }
    }

    fn evidence(&self, summary: &Summary) -> String {
        evidence::render(&evidence::Evidence {
            spec: &self.ctx.spec,
            summary,
            diff: self.history.last_diff(),
            adm: &self.ctx.adm,
        })
    }

    /// L2 and above keep a local branch of a non-empty result in the bundle.
    fn wants_branch(&self, summary: &Summary) -> bool {
        self.ctx.adm.level >= Level::L2
            && !self.history.last_diff().files.is_empty()
            && summary.state != State::Error
    }

    async fn export_branch(&mut self, summary: &mut Summary) -> Result<String, String> {
        let branch = branch_name(&self.ctx.task_id, &self.ctx.spec.title);
        let message = format!(
            "{}\n\nairlock task {}",
            self.ctx.spec.title, self.ctx.task_id
        );
        let bundle_path = self.ctx.artifacts.path("branch.bundle");
        let parent = self.ci.pushed.clone();
        let on = branch.clone();
        let commit = self
            .ctx
            .on_workspace(move |ws| {
                ws.export_branch_on(&on, &message, &bundle_path, parent.as_deref())
            })
            .await
            .map_err(|e| e.to_string())?;
        self.events
            .emit("branch", json!({ "branch": branch, "commit": commit }));
        summary.branch = Some(branch);
        summary.commit = Some(commit.clone());
        Ok(commit)
    }

    fn summary(&self, state: State, reason: Reason, message: Option<String>) -> Summary {
        let d = self.history.last_diff();
        let paths = match self.history.last().map(|a| &a.facts.scope) {
            _ if reason == super::risk_step::HIGH_RISK => {
                super::risk_step::high_paths(&self.risk())
            }
            Some(ScopeVerdict::Blocked { paths, .. })
            | Some(ScopeVerdict::NeedsHuman { paths, .. }) => paths.clone(),
            _ => red_flag_paths(
                self.history
                    .last()
                    .map(|a| a.record.red_flags.as_slice())
                    .unwrap_or(&[]),
            ),
        };
        Summary {
            format_version: SUMMARY_FORMAT,
            task_id: self.ctx.task_id.clone(),
            title: self.ctx.spec.title.clone(),
            state,
            reason,
            message,
            level: self.ctx.adm.level.to_string(),
            runtime: Some(self.ctx.adm.runtime.as_str().into()),
            engine: Some(self.ctx.engine.info().clone()),
            repo: RepoRecord {
                url: Some(self.ctx.spec.repo.url.clone()),
                base: Some(self.ctx.spec.repo.base.clone()),
                base_commit: Some(self.ctx.ws.base_commit.clone()),
            },
            attempts: self.history.records(),
            files_changed: d.files.iter().map(|f| f.path.clone()).collect(),
            diff: DiffStats {
                files: d.files.len(),
                insertions: d.insertions,
                deletions: d.deletions,
                bytes: d.patch.len() as u64,
                skipped: d.skipped.clone(),
            },
            paths,
            branch: None,
            commit: None,
            pushed: false,
            kind: self.ctx.spec.kind.as_str().into(),
            risk: Some(self.risk()),
            task_scope: Some(self.ctx.adm.task_scope.clone()),
            started_at: self.ctx.started_at.clone(),
            finished_at: now_rfc3339(),
            duration_s: (self.ctx.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            artifacts: self.ctx.artifacts.dir.display().to_string(),
            model_traffic: self.model_traffic(),
            ci: self.ci.rounds.clone(),
        }
    }

    fn write_summary_and_bundle(&mut self, summary: &Summary, redactor: &Redactor) {
        self.events
            .emit("exported", state_json(summary.state, summary.reason));
        write_summary_masked(&self.ctx.artifacts, summary, redactor);
    }
}

fn red_flag_paths(flags: &[RedFlag]) -> Vec<String> {
    let mut paths: Vec<String> = flags.iter().map(|f| f.file.clone()).collect();
    paths.dedup();
    paths
}

/// `summary.json`, then the tar.gz of everything. Failures are logged: nothing more can be done.
fn write_summary(dir: &ArtifactDir, summary: &Summary) {
    write_summary_masked(dir, summary, &Redactor::new());
}

/// [`write_summary`], with every held secret masked in the summary.
fn write_summary_masked(dir: &ArtifactDir, summary: &Summary, redactor: &Redactor) {
    let json = crate::untrusted::to_json(summary, true).unwrap_or_default();
    let bytes = redactor.redact(json.as_bytes());
    if let Err(e) = write_atomic(&dir.path("summary.json"), &bytes) {
        tracing::error!(error = %e, "cannot write summary.json");
    }
    if let Err(e) = bundle(&dir.dir, &dir.task_id) {
        tracing::error!(error = %e, "cannot write the artifact bundle");
    }
}

/// The record of a refused task: summary and events, nothing ran.
pub(super) fn refused(spec: &TaskSpec, task_id: &str, opts: &RunOptions, r: &Refusal) -> Summary {
    ended_before_run(spec, task_id, opts, r, State::Refused)
}

/// The summary of a task that ended before any container ran (refused, over a prepare limit,
/// cancelled during prepare).
pub(super) fn ended_before_run(
    spec: &TaskSpec,
    task_id: &str,
    opts: &RunOptions,
    r: &Refusal,
    state: State,
) -> Summary {
    let artifacts = opts.artifacts_root.join(task_id).display().to_string();
    let level = spec.level.to_string();
    let message = Some(r.message.clone());
    let mut summary = Summary::not_run(
        task_id,
        &spec.title,
        &level,
        state,
        r.reason,
        message,
        artifacts,
    );
    summary.repo = RepoRecord {
        url: Some(spec.repo.url.clone()),
        base: Some(spec.repo.base.clone()),
        base_commit: None,
    };
    summary.kind = spec.kind.as_str().into();
    if let Ok(dir) = ArtifactDir::create(&opts.artifacts_root, task_id) {
        let mut events = event_log(&dir);
        events.emit(
            "refused",
            json!({ "reason": r.reason, "message": r.message }),
        );
        write_summary(&dir, &summary);
    }
    summary
}
