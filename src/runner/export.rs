//! export: the tail's writing steps (diff, out/, the branch, evidence, the secret scan, summary
//! and the bundle; their order is in `tail.rs`), every file temp-then-rename.

use serde_json::json;

use super::tail::{End, Exported, Flow};
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
    /// Tail step `files`: `diff.patch` and the agent's `out/`. A failure to write stops the
    /// task `error` / `export_failed`.
    pub(super) fn export_files(&mut self) -> Flow {
        match self.write_files() {
            Ok(()) => Flow::Continue,
            Err(e) => export_failed(e),
        }
    }

    fn write_files(&mut self) -> Result<(), String> {
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
        Ok(())
    }

    /// Tail step `evidence`: `evidence.md`, which is also the draft PR's body.
    pub(super) fn write_evidence(&mut self, end: &End, exported: &mut Exported) -> Flow {
        let summary = self.summary(end, exported);
        let evidence = self.evidence(&summary);
        if let Err(e) = write_atomic(&self.ctx.artifacts.path("evidence.md"), evidence.as_bytes()) {
            return export_failed(e.to_string());
        }
        exported.evidence = Some((evidence, end.state, self.ci.rounds.len()));
        Flow::Continue
    }

    /// Closing step `scan`: every artifact written so far is read for the secrets held; one
    /// that holds any is removed and the task stops `error` / `secret_in_artifact`. The
    /// [`Scanned`] it returns is what writing the bundle takes.
    pub(super) fn scan_for_secrets(&mut self, redactor: &Redactor) -> (Flow, Scanned) {
        if redactor.is_empty() {
            return (Flow::Continue, Scanned(()));
        }
        let hits = scan::remove_hits(&self.ctx.artifacts.dir, redactor);
        if hits.is_empty() {
            return (Flow::Continue, Scanned(()));
        }
        self.events
            .emit("secret_in_artifact", json!({ "removed": hits }));
        let stop = Flow::Ends(End::new(
            State::Error,
            Reason::SecretInArtifact,
            Some(format!(
                "the push token (or an encoding of it) was found in {}; removed from the artifacts",
                hits.join(", ")
            )),
        ));
        (stop, Scanned(()))
    }

    /// The evidence again, for a state or CI rounds that changed since it was written (masked,
    /// in case).
    pub(super) fn rewrite_evidence(&self, summary: &Summary, redactor: &Redactor) {
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
    fn wants_branch(&self, end: &End) -> bool {
        self.ctx.adm.level >= Level::L2
            && !self.history.last_diff().files.is_empty()
            && end.state != State::Error
    }

    /// Tail step `branch`: the local branch (on the commit last pushed, after CI feedback) and
    /// `branch.bundle`, when [`TaskRun::wants_branch`].
    pub(super) async fn export_branch(&mut self, end: &End, exported: &mut Exported) -> Flow {
        if !self.wants_branch(end) {
            return Flow::Continue;
        }
        match self.make_branch().await {
            Ok((branch, commit)) => {
                exported.branch = Some(branch);
                exported.commit = Some(commit);
                Flow::Continue
            }
            Err(e) => export_failed(e),
        }
    }

    async fn make_branch(&mut self) -> Result<(String, String), String> {
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
        Ok((branch, commit))
    }

    /// The summary of the task as `end` and `exported` leave it: the only place a running
    /// task's summary (its `state` included) is made.
    pub(super) fn summary(&self, end: &End, exported: &Exported) -> Summary {
        let (state, reason, message) = (end.state, end.reason, end.message.clone());
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
            branch: exported.branch.clone(),
            commit: exported.commit.clone(),
            pushed: exported.pushed,
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

    /// `summary.json` and the bundle; `_scanned` proves the artifacts were scanned first (the
    /// tail's `close` is the one caller).
    pub(super) fn write_summary_and_bundle(
        &mut self,
        summary: &Summary,
        redactor: &Redactor,
        _scanned: Scanned,
    ) {
        self.events
            .emit("exported", state_json(summary.state, summary.reason));
        write_summary_masked(&self.ctx.artifacts, summary, redactor);
    }
}

/// Proof that the artifacts were scanned for the secrets held: made only by
/// [`TaskRun::scan_for_secrets`] and taken by [`TaskRun::write_summary_and_bundle`], so the
/// bundle cannot be written without a scan before it.
pub(super) struct Scanned(());

/// The task stops `error` / `export_failed` with `message`.
fn export_failed(message: String) -> Flow {
    Flow::Stop(End::new(State::Error, Reason::ExportFailed, Some(message)))
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
