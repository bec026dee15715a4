//! The baseline: the gate once over the untouched base, in the same image, with the same
//! commands, limits and sandbox as the gate, started beside the agent's first run and cached
//! per key (see `baseline_cache`), so every later task on the same base pays nothing.
//!
//! It answers two questions the judge asks about an attempt: was this failure already there
//! (origin), and did the tests the base ran still run (red flag `tests_not_run`). A baseline
//! that cannot be had (engine error, timeout, cancel) makes every failure count as introduced:
//! the direction that never turns a task green.

use std::sync::Arc;

use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::baseline_cache::{self as cache, Key};
use super::containers::Job;
use super::deadline_after;
use super::engine_port::Containers;
use super::gate_run::GateResult;
use super::task::TaskRun;
use crate::artifacts::{neutralise, write_atomic, CappedLog};
use crate::gate::{
    tests_not_run, BaseCommand, Baseline, CommandView, Failure, FailureOrigin as Origin, RedFlag,
    StreamParser, TestCounts,
};
use crate::policy::Preexisting;
use crate::sandbox::{ContainerPlan, Ended, MountPlan, RunOutcome};

/// At most this many failures per command are kept in the cache.
const MAX_FAILURES: usize = 500;
/// Name of the base view under the task dir.
const VIEW: &str = "baseline";

/// Where the task's baseline is.
#[derive(Default)]
pub(super) enum BaselineState {
    /// No gate runs at this level, or it was not started yet.
    #[default]
    Off,
    /// Running beside the agent.
    Pending(JoinHandle<Computed>),
    /// Known (`None`: unavailable).
    Ready(Option<Arc<Baseline>>),
}

/// What the background run produced.
pub(super) struct Computed {
    baseline: Option<Baseline>,
    /// Task that computed a cached baseline found after waiting for the lock.
    cached_from: Option<String>,
    runs: Vec<(Vec<String>, RunOutcome, Vec<u8>)>,
    error: Option<String>,
}

impl TaskRun {
    /// Find the baseline in the cache or start computing it; never fails the task.
    pub(super) async fn start_baseline(&mut self, cancel: &CancellationToken) {
        let Some(gate) = self.ctx.spec.gate.clone().filter(|_| self.ctx.adm.run_gate) else {
            return;
        };
        self.baseline = match self
            .begin_baseline(&gate.image, &gate.commands, cancel)
            .await
        {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(error = %e, "baseline unavailable");
                self.events
                    .emit("baseline", json!({ "status": "unavailable", "error": e }));
                BaselineState::Ready(None)
            }
        };
    }

    async fn begin_baseline(
        &mut self,
        image: &str,
        commands: &[Vec<String>],
        cancel: &CancellationToken,
    ) -> Result<BaselineState, String> {
        let key = Key {
            base_commit: self.ctx.ws.base_commit.clone(),
            gate_image_id: self.ctx.engine.image_id(image).await?,
            commands: commands.to_vec(),
            env: self
                .ctx
                .spec
                .agent
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            runtime: self.ctx.adm.runtime.as_str().into(),
        };
        let dir = cache::dir(&self.ctx.state_dir).map_err(|e| e.to_string())?;
        if let Some((b, from)) = cache::load(&dir, &key) {
            self.events.emit(
                "baseline",
                json!({ "status": "cached", "computed_by": from, "key": key.stem() }),
            );
            self.ctx
                .progress
                .phase("baseline", &format!("cached (computed by task {from})"));
            return Ok(BaselineState::Ready(Some(Arc::new(b))));
        }
        let view = self
            .ctx
            .on_workspace(|ws| ws.base_view(VIEW))
            .await
            .map_err(|e| e.to_string())?;
        let mounts = vec![MountPlan {
            source: view,
            target: "/workspace".into(),
            read_only: false,
        }];
        let plans: Vec<ContainerPlan> = commands
            .iter()
            .enumerate()
            .map(|(i, argv)| {
                self.plan(&Job {
                    role: "baseline",
                    attempt: 0,
                    step: i,
                    image,
                    argv: argv.clone(),
                    mounts: mounts.clone(),
                    parse: true,
                })
            })
            .collect();
        self.events.emit(
            "baseline",
            json!({ "status": "started", "key": key.stem() }),
        );
        self.ctx.progress.phase(
            "baseline",
            "the gate over the untouched base, beside the agent",
        );
        let job = Background {
            engine: self.ctx.engine.clone(),
            plans,
            deadline: deadline_after(self.ctx.started, self.ctx.adm.limits.timeout),
            cancel: cancel.child_token(),
            log_bytes: self.ctx.adm.limits.log_bytes,
            dir,
            key,
            task_id: self.ctx.task_id.clone(),
        };
        Ok(BaselineState::Pending(tokio::spawn(job.run())))
    }

    /// The baseline, waiting for it if it is still running.
    pub(super) async fn baseline(&mut self) -> Option<Arc<Baseline>> {
        if matches!(self.baseline, BaselineState::Pending(_)) {
            if let BaselineState::Pending(handle) = std::mem::take(&mut self.baseline) {
                let computed = handle
                    .await
                    .unwrap_or_else(|e| Computed::failed(e.to_string()));
                let ready = self.settle_baseline(computed).await;
                self.baseline = BaselineState::Ready(ready);
            }
        }
        match &self.baseline {
            BaselineState::Ready(b) => b.clone(),
            _ => None,
        }
    }

    async fn settle_baseline(&mut self, c: Computed) -> Option<Arc<Baseline>> {
        if let Err(e) = self.ctx.on_workspace(|ws| ws.drop_view(VIEW)).await {
            tracing::warn!(error = %e, "cannot drop the baseline view");
        }
        let mut log = Vec::new();
        for (argv, outcome, bytes) in &c.runs {
            self.events.emit(
                "container_finished",
                json!({ "role": "baseline", "attempt": 0, "outcome": outcome }),
            );
            log.extend_from_slice(neutralise(&format!("$ {}\n", argv.join(" "))).as_bytes());
            log.extend_from_slice(bytes);
        }
        if !c.runs.is_empty() {
            if let Err(e) = write_atomic(&self.ctx.artifacts.path("logs/baseline.log"), &log) {
                tracing::warn!(error = %e, "cannot write the baseline log");
            }
        }
        let status = match (&c.baseline, &c.cached_from) {
            (None, _) => "unavailable",
            (Some(_), Some(_)) => "cached",
            (Some(_), None) => "computed",
        };
        let failing: usize = c
            .baseline
            .iter()
            .flat_map(|b| &b.commands)
            .map(|c| c.failures.len())
            .sum();
        self.events.emit("baseline", json!({ "status": status, "computed_by": c.cached_from, "error": c.error, "failures": failing }));
        self.ctx.progress.phase(
            "baseline",
            &format!("{status}: {failing} failure(s) on the base"),
        );
        c.baseline.map(Arc::new)
    }

    /// Stop a baseline still running (the task ends before its gate ran).
    pub(super) fn abort_baseline(&mut self) {
        if let BaselineState::Pending(h) = &self.baseline {
            h.abort();
        }
    }

    /// Red flags `tests_not_run` for each gate command that passed, against the base's run.
    pub(super) fn tests_not_run_flags(
        &self,
        gate: Option<&GateResult>,
        flags: &[RedFlag],
    ) -> Vec<RedFlag> {
        let (Some(gate), BaselineState::Ready(Some(base))) = (gate, &self.baseline) else {
            return vec![];
        };
        gate.runs
            .iter()
            .zip(&base.commands)
            .filter(|(run, b)| run.record.argv == b.argv)
            .filter_map(|(run, b)| {
                let output = String::from_utf8_lossy(&run.log);
                let view = CommandView {
                    exit_code: run.facts.exit_code,
                    exited: run.facts.ended == Ended::Exited && !run.facts.oom_killed,
                    output: &output,
                    truncated: run.record.log_bytes_omitted > 0,
                };
                tests_not_run(b, view, flags)
            })
            .collect()
    }
}

/// The failures of one gate command that block green: every one under `must_fix`; under
/// `report` the introduced ones, or, when none is introduced but the runner counts more
/// failures than on the base, all of them (a new failure the parsers did not tell apart must
/// not hide behind an old one).
pub(super) fn blocking(
    still: &[Failure],
    base: Option<&BaseCommand>,
    counts: Option<TestCounts>,
    policy: Preexisting,
) -> Vec<Failure> {
    let more_failed = match (base.and_then(|b| b.counts), counts) {
        (Some(b), Some(n)) => n.failed > b.failed,
        _ => false,
    };
    let introduced: Vec<Failure> = still
        .iter()
        .filter(|f| f.origin != Some(Origin::Preexisting))
        .cloned()
        .collect();
    if policy == Preexisting::MustFix || (introduced.is_empty() && more_failed) {
        return still.to_vec();
    }
    introduced
}

/// The background half: owns what it needs, so it runs beside the agent's container.
struct Background {
    engine: Arc<dyn Containers>,
    plans: Vec<ContainerPlan>,
    deadline: tokio::time::Instant,
    cancel: CancellationToken,
    log_bytes: u64,
    dir: std::path::PathBuf,
    key: Key,
    task_id: String,
}

impl Computed {
    fn failed(error: String) -> Computed {
        Computed {
            baseline: None,
            cached_from: None,
            runs: vec![],
            error: Some(error),
        }
    }
}

impl Background {
    async fn run(self) -> Computed {
        let (dir, key) = (self.dir.clone(), self.key.clone());
        let lock = match tokio::task::spawn_blocking(move || cache::lock(&dir, &key)).await {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => return Computed::failed(e),
            Err(e) => return Computed::failed(e.to_string()),
        };
        // Another task may have computed it while this one waited for the lock.
        if let Some((b, from)) = cache::load(&self.dir, &self.key) {
            return Computed {
                baseline: Some(b),
                cached_from: Some(from),
                runs: vec![],
                error: None,
            };
        }
        let mut c = Computed {
            baseline: None,
            cached_from: None,
            runs: vec![],
            error: None,
        };
        let mut base = Baseline::default();
        for plan in &self.plans {
            match self.one(plan).await {
                Ok((cmd, outcome, log)) => {
                    let normal = outcome.ended == Ended::Exited && !outcome.oom_killed;
                    c.runs.push((plan.argv.clone(), outcome, log));
                    if !normal {
                        c.error = Some(format!(
                            "`{}` did not exit normally on the base",
                            plan.argv.join(" ")
                        ));
                        return c;
                    }
                    base.commands.push(cmd);
                }
                Err(e) => {
                    c.error = Some(e);
                    return c;
                }
            }
        }
        if let Err(e) = cache::store(&self.dir, &self.key, &self.task_id, &base) {
            tracing::warn!(error = %e, "cannot cache the baseline");
        }
        drop(lock);
        c.baseline = Some(base);
        c
    }

    async fn one(
        &self,
        plan: &ContainerPlan,
    ) -> Result<(BaseCommand, RunOutcome, Vec<u8>), String> {
        let mut log = CappedLog::new(self.log_bytes);
        let mut parser = StreamParser::new();
        let mut sink = |chunk: &[u8]| {
            log.push(chunk);
            parser.feed(chunk);
        };
        let outcome = self
            .engine
            .run(plan, self.deadline, &self.cancel, &mut sink)
            .await
            .map_err(|e| e.to_string())?;
        let exit = outcome.exit_code.unwrap_or(-1);
        let mut failures = if exit != 0 {
            parser.finish(exit)
        } else {
            vec![]
        };
        failures.truncate(MAX_FAILURES);
        let truncated = log.omitted() > 0;
        let bytes = log.finish();
        let cmd = Baseline::command(
            plan.argv.clone(),
            outcome.exit_code,
            outcome.ended == Ended::Exited,
            &String::from_utf8_lossy(&bytes),
            truncated,
            failures,
        );
        Ok((cmd, outcome, bytes))
    }
}
