//! A recording fake of [`Containers`] for the lifecycle's unit tests: each container's outcome
//! is scripted by a function of its plan, and every plan is kept for the test to read.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::engine_port::Containers;
use crate::sandbox::{ContainerPlan, Ended, EngineInfo, EngineKind, RunOutcome, SandboxError};

/// What a fake container does to its mounts: `(workspace, airlock)` host dirs.
pub type Effect = dyn FnOnce(&std::path::Path, &std::path::Path) + Send;

/// How one fake container ends.
pub struct Scripted {
    pub exit_code: i64,
    pub output: Vec<u8>,
    pub oom_killed: bool,
    /// Run until the deadline passes or the task is cancelled (whichever comes first), like a
    /// container that never exits on its own.
    pub hang: bool,
    /// Done to the container's view before it "exits" (the agent's edits): gets the host
    /// directory mounted at `/workspace` and the one mounted at `/airlock`.
    pub effect: Option<Box<Effect>>,
}

impl Scripted {
    pub fn exit(code: i64) -> Scripted {
        Scripted {
            exit_code: code,
            output: Vec::new(),
            oom_killed: false,
            hang: false,
            effect: None,
        }
    }

    pub fn ok() -> Scripted {
        Scripted::exit(0)
    }

    pub fn output(mut self, text: &str) -> Scripted {
        self.output = text.as_bytes().to_vec();
        self
    }

    pub fn hang() -> Scripted {
        Scripted {
            hang: true,
            ..Scripted::ok()
        }
    }

    pub fn effect(
        mut self,
        f: impl FnOnce(&std::path::Path, &std::path::Path) + Send + 'static,
    ) -> Scripted {
        self.effect = Some(Box::new(f));
        self
    }
}

type Script = dyn Fn(&ContainerPlan) -> Scripted + Send + Sync;

/// The fake engine.
pub struct FakeContainers {
    info: EngineInfo,
    script: Box<Script>,
    plans: Mutex<Vec<ContainerPlan>>,
    swept: Mutex<Vec<String>>,
}

impl FakeContainers {
    pub fn new(script: impl Fn(&ContainerPlan) -> Scripted + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(FakeContainers {
            info: EngineInfo {
                kind: EngineKind::Docker,
                version: "fake".into(),
                api_version: "1.41".into(),
            },
            script: Box::new(script),
            plans: Mutex::new(Vec::new()),
            swept: Mutex::new(Vec::new()),
        })
    }

    /// Every plan run so far, in order.
    pub fn plans(&self) -> Vec<ContainerPlan> {
        self.plans.lock().unwrap().clone()
    }

    /// The plans of `role` (`agent`, `gate`, `baseline`), in order.
    pub fn role(&self, role: &str) -> Vec<ContainerPlan> {
        self.plans()
            .into_iter()
            .filter(|p| p.role == role)
            .collect()
    }

    /// Tasks whose containers were swept at the end.
    pub fn swept(&self) -> Vec<String> {
        self.swept.lock().unwrap().clone()
    }
}

/// The attempt a plan belongs to (`AIRLOCK_ATTEMPT`).
pub fn attempt(plan: &ContainerPlan) -> u32 {
    env(plan, "AIRLOCK_ATTEMPT")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The value of `key` in the plan's environment.
pub fn env<'p>(plan: &'p ContainerPlan, key: &str) -> Option<&'p str> {
    plan.env
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn mount(plan: &ContainerPlan, target: &str) -> PathBuf {
    plan.mounts
        .iter()
        .find(|m| m.target == target)
        .map(|m| m.source.clone())
        .unwrap_or_default()
}

#[async_trait]
impl Containers for FakeContainers {
    fn info(&self) -> &EngineInfo {
        &self.info
    }

    async fn run<'s>(
        &self,
        plan: &ContainerPlan,
        deadline: tokio::time::Instant,
        cancel: &CancellationToken,
        sink: &'s mut (dyn for<'b> FnMut(&'b [u8]) + Send + 's),
    ) -> Result<RunOutcome, SandboxError> {
        self.plans.lock().unwrap().push(plan.clone());
        let s = (self.script)(plan);
        if let Some(effect) = s.effect {
            effect(&mount(plan, "/workspace"), &mount(plan, "/airlock"));
        }
        sink(&s.output);
        let started = std::time::Instant::now();
        let (ended, exit_code) = if s.hang {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => (Ended::Timeout, 143),
                _ = cancel.cancelled() => (Ended::Cancelled, 143),
                // A hang that outlives a test's patience is a bug in the test or the runner.
                _ = tokio::time::sleep(Duration::from_secs(120)) => (Ended::Exited, 99),
            }
        } else {
            (Ended::Exited, s.exit_code)
        };
        Ok(RunOutcome {
            container: plan.name.clone(),
            ended,
            exit_code: Some(exit_code),
            oom_killed: s.oom_killed,
            duration: started.elapsed(),
        })
    }

    async fn image_id(&self, image: &str) -> Result<String, String> {
        Ok(format!("sha256:fake-{image}"))
    }

    async fn task_containers(&self, _task_id: &str) -> Result<Vec<String>, SandboxError> {
        Ok(Vec::new())
    }

    async fn sweep_task(&self, task_id: &str) -> Option<SandboxError> {
        self.swept.lock().unwrap().push(task_id.into());
        None
    }
}
