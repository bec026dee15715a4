//! The attempt loop: agent container, gate containers over a throwaway view, diff, scope, judge.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::context::AirlockDir;
use super::{deadline_after, event_log, state_json, Progress, RunOptions};
use crate::artifacts::{
    ArtifactDir, ArtifactError, AttemptRecord, CappedLog, ContainerRecord, EventLog, State, Summary,
};
use crate::gate::{self, Failure, StreamParser};
use crate::judge::{judge, AttemptFacts, Budget, ContainerFacts, GateFacts, Verdict};
use crate::policy::{scope, Admission, Checkout, ScopeVerdict};
use crate::sandbox::{ContainerPlan, Engine, MountPlan, SandboxError, SandboxLimits, LABEL_TASK};
use crate::spec::TaskSpec;
use crate::workspace::{mount_tmpfs, Diff, DiffLimits, Workspace};

/// Largest single file the diff will read.
const MAX_DIFF_FILE: u64 = 64 << 20;

/// One task in flight. Owns everything that must be cleaned up.
pub struct TaskRun {
    pub(super) spec: TaskSpec,
    pub(super) adm: Admission,
    pub(super) engine: Engine,
    pub(super) ws: Workspace,
    pub(super) artifacts: ArtifactDir,
    pub(super) events: EventLog,
    pub(super) airlock: AirlockDir,
    pub(super) task_id: String,
    pub(super) session: String,
    pub(super) progress: Progress,
    pub(super) started: Instant,
    pub(super) started_at: String,
    pub(super) attempts: Vec<AttemptRecord>,
    pub(super) facts: Vec<AttemptFacts>,
    pub(super) last_failures: Vec<Failure>,
    pub(super) last_diff: Diff,
}

/// A container run as recorded, with the facts the judge needs and its output.
struct Ran {
    record: ContainerRecord,
    facts: ContainerFacts,
    failures: Vec<Failure>,
    log: Vec<u8>,
}

impl TaskRun {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        spec: TaskSpec,
        adm: Admission,
        engine: Engine,
        ws: Workspace,
        opts: &RunOptions,
        task_id: String,
        progress: Progress,
        started: Instant,
    ) -> Result<TaskRun, ArtifactError> {
        let artifacts = ArtifactDir::create(&opts.artifacts_root, &task_id)?;
        let mut events = event_log(&artifacts);
        let airlock = AirlockDir::create(&ws.root)?;
        if let Err(e) = mount_tmpfs(
            &airlock.out,
            adm.limits.out,
            adm.limits.tmpfs_inodes,
            crate::sandbox::hardening::SANDBOX_UID,
        ) {
            return Err(ArtifactError::io("mount out/ tmpfs at", &airlock.out)(
                std::io::Error::other(e.to_string()),
            ));
        }
        airlock.write_packet(&spec, &task_id, adm.level.as_str(), &ws.base_commit)?;
        events.emit("admitted", json!({ "level": adm.level, "runtime": adm.runtime, "limits": adm.limits, "rules": adm.rules }));
        events.emit(
            "prepared",
            json!({ "base": spec.repo.base, "base_commit": ws.base_commit }),
        );
        Ok(TaskRun {
            spec,
            adm,
            engine,
            ws,
            artifacts,
            events,
            airlock,
            task_id,
            session: opts.session.clone(),
            progress,
            started,
            started_at: crate::artifacts::now_rfc3339(),
            attempts: Vec::new(),
            facts: Vec::new(),
            last_failures: Vec::new(),
            last_diff: Diff::default(),
        })
    }

    /// Run attempts until the judge stops, then export. Always returns a summary.
    pub async fn execute(&mut self, cancel: CancellationToken) -> Summary {
        let (state, reason, message) = self.attempt_loop(&cancel).await;
        self.events.emit("finished", state_json(state, &reason));
        self.export(state, &reason, message)
    }

    async fn attempt_loop(
        &mut self,
        cancel: &CancellationToken,
    ) -> (State, String, Option<String>) {
        let mut feedback: Option<Value> = None;
        loop {
            let n = self.attempts.len() as u32 + 1;
            if let Err(e) = self.attempt(n, feedback.as_ref(), cancel).await {
                self.events
                    .emit("error", json!({ "message": e.to_string() }));
                return (State::Error, "engine_error".into(), Some(e.to_string()));
            }
            let verdict = judge(&self.facts, self.budget());
            let verdict_name = match &verdict {
                Verdict::Retry => "retry".to_string(),
                Verdict::Stop {
                    state: State::Green,
                    ..
                } => "green".to_string(),
                Verdict::Stop { .. } => "stop".to_string(),
            };
            if let Some(a) = self.attempts.last_mut() {
                a.verdict = verdict_name.clone();
            }
            self.events
                .emit("verdict", json!({ "attempt": n, "verdict": verdict }));
            self.progress
                .phase("judge", &format!("attempt {n}: {verdict_name}"));
            match verdict {
                Verdict::Retry => feedback = Some(self.feedback(n)),
                Verdict::Stop { state, reason } => return (state, reason, None),
            }
        }
    }

    fn budget(&self) -> Budget {
        // Another attempt needs at least a little time; below this it would only time out.
        let left = self
            .adm
            .limits
            .timeout
            .saturating_sub(self.started.elapsed());
        Budget {
            attempts: self.adm.limits.attempts,
            time_left: left.as_secs() >= 5,
            flaky_is_green: false,
        }
    }

    fn feedback(&self, n: u32) -> Value {
        json!({ "attempt": n, "failures": self.last_failures })
    }

    async fn attempt(
        &mut self,
        n: u32,
        feedback: Option<&Value>,
        cancel: &CancellationToken,
    ) -> Result<(), SandboxError> {
        self.airlock
            .write_attempt(&self.spec, n, feedback)
            .map_err(|e| fault(&e))?;
        self.events.emit("attempt_started", json!({ "attempt": n }));
        let agent = self.run_agent(n, cancel).await?;
        let gate = if agent.facts.ok() && self.adm.run_gate {
            Some(self.run_gate(n, cancel).await?)
        } else {
            None
        };
        let diff = self.diff().map_err(|e| fault(&e))?;
        let scope = self.scope(&diff);
        let red_flags = gate::red_flags(&String::from_utf8_lossy(&diff.patch));
        self.record(n, agent, gate, &diff, scope, red_flags);
        self.last_diff = diff;
        Ok(())
    }

    fn record(
        &mut self,
        n: u32,
        agent: Ran,
        gate: Option<Vec<Ran>>,
        diff: &Diff,
        scope: ScopeVerdict,
        red_flags: Vec<gate::RedFlag>,
    ) {
        let failures: Vec<Failure> = gate
            .iter()
            .flatten()
            .flat_map(|g| g.failures.clone())
            .collect();
        let gate_facts = gate.as_ref().map(|g| GateFacts {
            containers: g.iter().map(|r| r.facts).collect(),
            flaky_only: false,
        });
        let gate_passed = gate_facts
            .as_ref()
            .map(|g| g.containers.iter().all(ContainerFacts::ok));
        let mut signatures: Vec<String> = failures.iter().map(|f| f.signature.clone()).collect();
        signatures.sort();
        signatures.dedup();
        self.facts.push(AttemptFacts {
            agent: agent.facts,
            gate: gate_facts,
            scope: scope.clone(),
            red_flags: red_flags.len(),
            signatures,
        });
        self.attempts.push(AttemptRecord {
            n,
            agent: Some(agent.record),
            gate: gate.into_iter().flatten().map(|g| g.record).collect(),
            gate_passed,
            failures: failures.iter().map(|f| json!(f)).collect(),
            flaky: vec![],
            red_flags: red_flags.iter().map(|f| json!(f)).collect(),
            scope: json!(scope),
            verdict: String::new(),
            files_changed: diff.files.len(),
        });
        self.events.emit("attempt_finished", json!({ "attempt": n, "gate_passed": gate_passed, "files_changed": diff.files.len(), "scope": scope, "red_flags": red_flags.len() }));
        self.last_failures = failures;
    }

    async fn run_agent(&mut self, n: u32, cancel: &CancellationToken) -> Result<Ran, SandboxError> {
        let read_only = self.adm.policy.checkout == Checkout::ReadOnly;
        let mut mounts = vec![
            MountPlan {
                source: self.ws.work_tree.clone(),
                target: "/workspace".into(),
                read_only,
            },
            MountPlan {
                source: self.airlock.dir.clone(),
                target: "/airlock".into(),
                read_only: true,
            },
            MountPlan {
                source: self.airlock.out.clone(),
                target: "/airlock/out".into(),
                read_only: false,
            },
        ];
        mounts.dedup();
        let argv = self.spec.agent.command.clone();
        let image = self.spec.agent.image.clone();
        self.progress
            .phase("agent", &format!("attempt {n}: {}", argv.join(" ")));
        let ran = self
            .run_container("agent", n, 0, &image, argv, mounts, None, cancel)
            .await?;
        self.write_log("agent", n, &[&ran]);
        Ok(ran)
    }

    async fn run_gate(
        &mut self,
        n: u32,
        cancel: &CancellationToken,
    ) -> Result<Vec<Ran>, SandboxError> {
        let Some(gate) = self.spec.gate.clone() else {
            return Ok(vec![]);
        };
        let view_name = format!("gate-{n}");
        let view = self.ws.gate_view(&view_name).map_err(|e| fault(&e))?;
        let result = self.run_gate_commands(n, &gate, view, cancel).await;
        if let Err(e) = self.ws.drop_view(&view_name) {
            tracing::warn!(error = %e, "cannot drop the gate view");
        }
        let runs = result?;
        self.write_log("gate", n, &runs.iter().collect::<Vec<_>>());
        Ok(runs)
    }

    async fn run_gate_commands(
        &mut self,
        n: u32,
        gate: &crate::spec::GateSpec,
        view: PathBuf,
        cancel: &CancellationToken,
    ) -> Result<Vec<Ran>, SandboxError> {
        let mounts = vec![
            MountPlan {
                source: view,
                target: "/workspace".into(),
                read_only: false,
            },
            MountPlan {
                source: self.airlock.dir.clone(),
                target: "/airlock".into(),
                read_only: true,
            },
        ];
        let mut runs = Vec::new();
        for (i, argv) in gate.commands.iter().enumerate() {
            self.progress
                .phase("gate", &format!("attempt {n}: {}", argv.join(" ")));
            let ran = self
                .run_container(
                    "gate",
                    n,
                    i,
                    &gate.image,
                    argv.clone(),
                    mounts.clone(),
                    Some(StreamParser::new()),
                    cancel,
                )
                .await?;
            let ok = ran.facts.ok();
            runs.push(ran);
            if !ok {
                break; // like CI: later steps are not run after a failing one
            }
        }
        Ok(runs)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_container(
        &mut self,
        role: &str,
        n: u32,
        step: usize,
        image: &str,
        argv: Vec<String>,
        mounts: Vec<MountPlan>,
        parser: Option<StreamParser>,
        cancel: &CancellationToken,
    ) -> Result<Ran, SandboxError> {
        let plan = self.plan(role, n, step, image, argv.clone(), mounts);
        let mut log = CappedLog::new(self.adm.limits.log_bytes);
        let mut parser = parser;
        let mut partial: Vec<Failure> = Vec::new();
        let deadline = deadline_after(self.started, self.adm.limits.timeout);
        let outcome = {
            let mut sink = |chunk: &[u8]| {
                log.push(chunk);
                if let Some(p) = parser.as_mut() {
                    partial.extend(p.feed(chunk));
                }
            };
            self.engine.run(&plan, deadline, cancel, &mut sink).await?
        };
        for f in &partial {
            self.events.emit(
                "gate_failure",
                json!({ "attempt": n, "partial": true, "failure": f }),
            );
        }
        let exit = outcome.exit_code.unwrap_or(-1);
        let failures = parser
            .map(|p| if exit == 0 { vec![] } else { p.finish(exit) })
            .unwrap_or_default();
        let facts = ContainerFacts {
            ended: outcome.ended,
            exit_code: outcome.exit_code,
            oom_killed: outcome.oom_killed,
        };
        self.events.emit(
            "container_finished",
            json!({ "role": role, "attempt": n, "outcome": outcome }),
        );
        let record = ContainerRecord {
            container: outcome.container.clone(),
            argv,
            ended: serde_json::to_value(outcome.ended)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            exit_code: outcome.exit_code,
            oom_killed: outcome.oom_killed,
            duration_s: (outcome.duration.as_secs_f64() * 1000.0).round() / 1000.0,
            log: format!("logs/{role}-{n}.log"),
            log_bytes_omitted: log.omitted(),
        };
        Ok(Ran {
            record,
            facts,
            failures,
            log: log.finish(),
        })
    }

    fn plan(
        &self,
        role: &str,
        n: u32,
        step: usize,
        image: &str,
        argv: Vec<String>,
        mounts: Vec<MountPlan>,
    ) -> ContainerPlan {
        let l = &self.adm.limits;
        let mut env: Vec<(String, String)> = self
            .spec
            .agent
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.push(("AIRLOCK_TASK_ID".into(), self.task_id.clone()));
        env.push(("AIRLOCK_ATTEMPT".into(), n.to_string()));
        env.push(("AIRLOCK_LEVEL".into(), self.adm.level.to_string()));
        env.push(("AIRLOCK_ROLE".into(), role.into()));
        ContainerPlan {
            name: format!(
                "airlock-{}-{role}{n}-{step}-{}",
                self.task_id,
                super::random_hex(3)
            ),
            image: image.into(),
            argv,
            env,
            task_id: self.task_id.clone(),
            session: self.session.clone(),
            role: role.into(),
            runtime: self.adm.runtime.as_str().into(),
            mounts,
            limits: SandboxLimits {
                cpus: l.cpus,
                memory: l.memory,
                pids: l.pids,
                tmpfs: l.tmpfs,
                tmpfs_inodes: l.tmpfs_inodes,
            },
            workdir: "/workspace".into(),
        }
    }

    /// One log per role and attempt; several gate commands are separated by a header line.
    fn write_log(&mut self, role: &str, n: u32, runs: &[&Ran]) {
        let mut text = Vec::new();
        for r in runs {
            if role == "gate" {
                let header = format!("$ {}\n", r.record.argv.join(" "));
                text.extend_from_slice(crate::artifacts::neutralise(&header).as_bytes());
            }
            text.extend_from_slice(&r.log);
        }
        let path = self.artifacts.log_path(role, n);
        if let Err(e) = crate::artifacts::write_atomic(&path, &text) {
            tracing::warn!(error = %e, "cannot write log");
        }
    }

    fn diff(&self) -> Result<Diff, crate::workspace::WorkspaceError> {
        let limits = DiffLimits {
            max_file_bytes: MAX_DIFF_FILE.min(self.adm.policy.scope.max_diff_bytes.max(1)),
            max_paths: self.adm.policy.scope.max_files_changed * 10 + 10,
        };
        tokio::task::block_in_place(|| self.ws.diff(limits))
    }

    fn scope(&self, diff: &Diff) -> ScopeVerdict {
        let too_large: Vec<String> = diff
            .skipped
            .iter()
            .filter(|(_, why)| why == "too_large")
            .map(|(p, _)| p.clone())
            .collect();
        if !too_large.is_empty() {
            return ScopeVerdict::Blocked {
                reason: "diff_too_large".into(),
                paths: too_large,
            };
        }
        if diff.skipped.iter().any(|(_, why)| why == "too_many_paths") {
            return ScopeVerdict::Blocked {
                reason: "too_many_files".into(),
                paths: vec![],
            };
        }
        scope::check(&self.adm.policy.scope, &diff.files, diff.patch.len() as u64)
    }

    /// Remove every container of this task (whatever happened) and tear the workspace down.
    pub async fn finish(&mut self, keep: bool) {
        let (_, err) = self.engine.sweep(Some((LABEL_TASK, &self.task_id))).await;
        if let Some(e) = err {
            tracing::warn!(error = %e, "sweep of the task's containers failed");
        }
        if let Err(e) = tokio::task::block_in_place(|| self.ws.tear_down(keep)) {
            tracing::warn!(error = %e, "workspace tear-down failed");
        }
    }
}

fn fault(e: &dyn std::fmt::Display) -> SandboxError {
    SandboxError::Runner {
        message: e.to_string(),
    }
}
