//! One container of a task: its plan (hardening comes from the sandbox module), its run with
//! live capture, and its record.

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::deadline_after;
use super::task::TaskRun;
use crate::artifacts::{neutralise, write_atomic, CappedLog, ContainerRecord};
use crate::gate::{Failure, ParseLimits, StreamParser, Truncation};
use crate::judge::ContainerFacts;
use crate::policy::Checkout;
use crate::sandbox::{ContainerPlan, MountPlan, SandboxError, SandboxLimits};

/// A container run as recorded, with the facts the judge needs and its output.
pub(super) struct Ran {
    pub record: ContainerRecord,
    pub facts: ContainerFacts,
    pub failures: Vec<Failure>,
    pub log: Vec<u8>,
}

/// What varies between the containers of one task.
pub(super) struct Job<'a> {
    pub role: &'a str,
    pub attempt: u32,
    pub step: usize,
    pub image: &'a str,
    pub argv: Vec<String>,
    pub mounts: Vec<MountPlan>,
    /// Parse the output as gate output, emitting failures as they appear.
    pub parse: bool,
}

impl TaskRun {
    pub(super) async fn run_agent(
        &mut self,
        n: u32,
        cancel: &CancellationToken,
    ) -> Result<Ran, SandboxError> {
        let read_only = self.ctx.adm.policy.checkout == Checkout::ReadOnly;
        let mut mounts = vec![
            MountPlan {
                source: self.ctx.ws.work_tree.clone(),
                target: "/workspace".into(),
                read_only,
            },
            MountPlan {
                source: self.ctx.airlock.dir.clone(),
                target: "/airlock".into(),
                read_only: true,
            },
            MountPlan {
                source: self.ctx.airlock.out.clone(),
                target: "/airlock/out".into(),
                read_only: false,
            },
        ];
        mounts.extend(self.egress_mount());
        let (argv, _) = self.agent_argv_env();
        let image = self.ctx.spec.agent.image.clone();
        self.ctx
            .progress
            .phase("agent", &format!("attempt {n}: {}", argv.join(" ")));
        let job = Job {
            role: "agent",
            attempt: n,
            step: 0,
            image: &image,
            argv,
            mounts,
            parse: false,
        };
        let (cancel, link) = self.agent_cancel(cancel);
        let ran = self.run_container(job, &cancel).await;
        if let Some(link) = link {
            link.abort();
        }
        let ran = ran?;
        self.write_log("agent", n, &[&ran]);
        Ok(ran)
    }

    /// Run one container to its end; gate output is parsed while it streams and each failure
    /// is emitted as an event at once (partial feedback).
    pub(super) async fn run_container(
        &mut self,
        job: Job<'_>,
        cancel: &CancellationToken,
    ) -> Result<Ran, SandboxError> {
        let plan = self.plan(&job);
        let mut log = CappedLog::new(self.ctx.adm.limits.log_bytes);
        let out = self.ctx.adm.policy.output;
        let limits = ParseLimits {
            line_bytes: out.line_bytes as usize,
            parse_bytes: out.parse_bytes,
            failures: out.failures as usize,
        };
        let mut parser = job.parse.then(|| StreamParser::with_limits(limits));
        let deadline = deadline_after(self.ctx.started, self.ctx.adm.limits.timeout);
        let engine = self.ctx.engine.clone();
        let events = &mut self.events;
        let n = job.attempt;
        let mut sink = |chunk: &[u8]| {
            log.push(chunk);
            for f in parser.as_mut().map(|p| p.feed(chunk)).unwrap_or_default() {
                events.emit(
                    "gate_failure",
                    json!({ "attempt": n, "partial": true, "failure": f }),
                );
            }
        };
        let outcome = match engine.run(&plan, deadline, cancel, &mut sink).await {
            Ok(o) => o,
            Err(e) => {
                // What the container printed before the engine failed is often why it failed:
                // it reaches the log, with the fault named, before the error ends the task.
                let mut text = log.finish();
                let note = format!("\n[airlock: the engine failed during this container: {e}; the output above is what was captured]\n");
                text.extend_from_slice(neutralise(&note).as_bytes());
                self.write_log_bytes(job.role, n, &text);
                return Err(e);
            }
        };
        let exit = outcome.exit_code.unwrap_or(-1);
        let (failures, cut) = match parser {
            Some(p) if exit != 0 => p.finish_bounded(exit),
            Some(p) => (vec![], p.truncation()),
            None => (vec![], Truncation::default()),
        };
        let omitted = log.omitted();
        let log = log.finish();
        let not_runnable = super::startfail::could_not_start(
            outcome.ended,
            outcome.exit_code,
            outcome.oom_killed,
            &log,
        );
        if not_runnable {
            self.history.set_not_runnable(super::startfail::message(
                job.role,
                &job.argv,
                job.image,
                outcome.exit_code,
                &log,
            ));
        }
        let facts = ContainerFacts {
            ended: outcome.ended,
            exit_code: outcome.exit_code,
            oom_killed: outcome.oom_killed,
            not_runnable,
        };
        self.events.emit(
            "container_finished",
            json!({ "role": job.role, "attempt": n, "outcome": outcome }),
        );
        let record = ContainerRecord {
            container: outcome.container.clone(),
            argv: job.argv,
            ended: outcome.ended,
            exit_code: outcome.exit_code,
            oom_killed: outcome.oom_killed,
            duration_s: (outcome.duration.as_secs_f64() * 1000.0).round() / 1000.0,
            log: format!("logs/{}-{n}.log", job.role),
            log_bytes_omitted: omitted,
            truncated: cut.any().then_some(cut),
        };
        Ok(Ran {
            record,
            facts,
            failures,
            log,
        })
    }

    pub(super) fn plan(&self, job: &Job<'_>) -> ContainerPlan {
        let l = &self.ctx.adm.limits;
        let mut env: Vec<(String, String)> = self
            .ctx
            .spec
            .agent
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.push(("AIRLOCK_TASK_ID".into(), self.ctx.task_id.clone()));
        env.push(("AIRLOCK_ATTEMPT".into(), job.attempt.to_string()));
        env.push(("AIRLOCK_LEVEL".into(), self.ctx.adm.level.to_string()));
        env.push(("AIRLOCK_ROLE".into(), job.role.into()));
        if job.role == "agent" {
            env.extend(self.agent_argv_env().1);
        }
        ContainerPlan {
            name: format!(
                "airlock-{}-{}{}-{}-{}",
                self.ctx.task_id,
                job.role,
                job.attempt,
                job.step,
                super::random_hex(3)
            ),
            image: job.image.into(),
            argv: job.argv.clone(),
            env,
            task_id: self.ctx.task_id.clone(),
            session: self.ctx.session.clone(),
            role: job.role.into(),
            runtime: self.ctx.adm.runtime.as_str().into(),
            mounts: job.mounts.clone(),
            limits: SandboxLimits {
                cpus: l.cpus,
                memory: l.memory,
                pids: l.pids,
                tmpfs: l.tmpfs,
                tmpfs_inodes: l.tmpfs_inodes,
            },
            workdir: "/workspace".into(),
            lock: Some(self.ctx.ws.lock.path().to_path_buf()),
            scratch: self.ctx.ws.root.join("scratch"),
        }
    }

    /// One log per role and attempt; several gate commands are separated by a header line.
    pub(super) fn write_log(&mut self, role: &str, n: u32, runs: &[&Ran]) {
        let mut text = Vec::new();
        for r in runs {
            if role == "gate" {
                text.extend_from_slice(
                    neutralise(&format!("$ {}\n", r.record.argv.join(" "))).as_bytes(),
                );
            }
            text.extend_from_slice(&r.log);
        }
        self.write_log_bytes(role, n, &text);
    }

    fn write_log_bytes(&self, role: &str, n: u32, text: &[u8]) {
        if let Err(e) = write_atomic(&self.ctx.artifacts.log_path(role, n), text) {
            tracing::warn!(error = %e, "cannot write log");
        }
    }
}
