//! Run one container to completion: create, start, stream logs, wait under a deadline, inspect,
//! and remove it on every path.

use std::time::{Duration, Instant, SystemTime};

use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, KillContainerOptions, StopContainerOptions,
};
use futures_util::StreamExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::error::is_not_found;
use super::hardening::{create_body, engine_tmpfs, ContainerPlan, MountPlan};
use super::hostfs::HostScratch;
use super::oom;
use super::{Engine, EngineKind, SandboxError, STOP_GRACE};

pub use crate::vocab::Ended;

/// What one container run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    /// The container's name.
    pub container: String,
    /// How it ended.
    pub ended: Ended,
    /// Its exit code, when it exited.
    pub exit_code: Option<i64>,
    /// Whether the OOM killer ended it.
    pub oom_killed: bool,
    /// Wall-clock time from start to end.
    #[serde(with = "secs")]
    pub duration: Duration,
}

/// Longest we keep draining logs after the container has exited.
const LOG_DRAIN: Duration = Duration::from_secs(10);

impl Engine {
    /// Run `plan` until it exits, `deadline` passes or `cancel` fires; feed its output (stdout
    /// and stderr interleaved) to `sink`. The container is removed before this returns.
    pub async fn run(
        &self,
        plan: &ContainerPlan,
        deadline: tokio::time::Instant,
        cancel: &CancellationToken,
        sink: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<RunOutcome, SandboxError> {
        let started = Instant::now();
        // Engines without capped tmpfs options get host-side scratch mounts, bound in; they are
        // unmounted when `_scratch` drops, after the container is removed.
        let (plan, _scratch) = self.with_scratch(plan)?;
        let plan = &plan;
        let since = SystemTime::now();
        let id = self.create(plan).await?;
        let result = self.drive(&id, deadline, cancel, sink).await;
        let outcome = match result {
            Ok((ended, _)) => self.inspect_end(&id, ended, started, since).await,
            Err(e) => Err(e),
        };
        let removed = self.remove(&id).await;
        match (outcome, removed) {
            (Ok(o), Ok(())) => Ok(o),
            (Ok(_), Err(c)) => Err(c),
            (Err(e), Ok(())) => Err(e),
            (Err(e), Err(c)) => {
                tracing::warn!(container = %id, error = %c, "cleanup after a failed run also failed");
                Err(e)
            }
        }
    }

    fn with_scratch(
        &self,
        plan: &ContainerPlan,
    ) -> Result<(ContainerPlan, Option<HostScratch>), SandboxError> {
        let mut plan = plan.clone();
        if engine_tmpfs(self.info().kind) {
            return Ok((plan, None));
        }
        let scratch = HostScratch::create(&plan.scratch, &plan.name, &plan.limits)?;
        plan.mounts
            .extend(scratch.binds().map(|(host, target, read_only)| MountPlan {
                source: host.to_path_buf(),
                target: target.into(),
                read_only,
            }));
        Ok((plan, Some(scratch)))
    }

    async fn create(&self, plan: &ContainerPlan) -> Result<String, SandboxError> {
        if self.info().kind == EngineKind::Podman {
            return super::libpod::create(self.endpoint(), plan).await;
        }
        let opts = CreateContainerOptions {
            name: Some(plan.name.clone()),
            platform: String::new(),
        };
        match self
            .docker()
            .create_container(Some(opts), create_body(plan, self.info().kind))
            .await
        {
            Ok(r) => Ok(r.id),
            Err(e) if is_not_found(&e) => Err(SandboxError::ImageMissing {
                image: plan.image.clone(),
            }),
            Err(e) => Err(SandboxError::Engine {
                op: "create container",
                target: plan.name.clone(),
                source: e,
            }),
        }
    }

    async fn drive(
        &self,
        id: &str,
        deadline: tokio::time::Instant,
        cancel: &CancellationToken,
        sink: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<(Ended, ()), SandboxError> {
        let engine_err = |op, e| SandboxError::Engine {
            op,
            target: id.to_string(),
            source: e,
        };
        // Attach before start so no output is missed, and stream it live rather than through
        // the engine's log file (whose rotation would lose the tail of a flood).
        let attach = AttachContainerOptions {
            stdout: true,
            stderr: true,
            stream: true,
            logs: false,
            ..Default::default()
        };
        let mut logs = self
            .docker()
            .attach_container(id, Some(attach))
            .await
            .map_err(|e| engine_err("attach to container", e))?
            .output;
        self.docker()
            .start_container(id, None)
            .await
            .map_err(|e| engine_err("start container", e))?;
        let mut wait = self.docker().wait_container(id, None);
        let mut ended = Ended::Exited;
        let mut logs_open = true;
        // The stop runs beside the log stream, never instead of it: an engine that cannot hand
        // the output on (nobody reading the attach stream) holds the container's exit, and a
        // stop that waited for that exit would wait for the engine's own timeout (#10 item 1).
        let mut stopping: Option<futures_util::future::BoxFuture<'_, Result<(), SandboxError>>> =
            None;
        #[allow(
            clippy::expect_used,
            reason = "the branch is guarded by `stopping.is_some()`"
        )]
        loop {
            tokio::select! {
                chunk = logs.next(), if logs_open => match chunk {
                    Some(Ok(out)) => sink(&out.into_bytes()),
                    Some(Err(e)) => { tracing::warn!(container = %id, error = %e, "log stream ended early"); logs_open = false; }
                    None => logs_open = false,
                },
                _ = wait.next() => break,
                stopped = async { stopping.as_mut().expect("guarded").await }, if stopping.is_some() => {
                    stopping = None;
                    stopped?;
                }
                _ = tokio::time::sleep_until(deadline), if ended == Ended::Exited => {
                    ended = Ended::Timeout;
                    stopping = Some(Box::pin(self.stop(id)));
                }
                _ = cancel.cancelled(), if ended == Ended::Exited => {
                    ended = Ended::Cancelled;
                    stopping = Some(Box::pin(self.stop(id)));
                }
            }
        }
        if logs_open {
            drain(&mut logs, sink).await;
        }
        Ok((ended, ()))
    }

    /// SIGTERM, then SIGKILL after [`STOP_GRACE`]; kill directly if stop itself fails.
    async fn stop(&self, id: &str) -> Result<(), SandboxError> {
        let opts = StopContainerOptions {
            t: Some(STOP_GRACE.as_secs() as i32),
            signal: None,
        };
        if let Err(e) = self.docker().stop_container(id, Some(opts)).await {
            tracing::warn!(container = %id, error = %e, "stop failed; killing");
            let kill = KillContainerOptions {
                signal: "KILL".into(),
            };
            match self.docker().kill_container(id, Some(kill)).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(SandboxError::Engine {
                        op: "kill container",
                        target: id.into(),
                        source: e,
                    })
                }
            }
        }
        Ok(())
    }

    async fn inspect_end(
        &self,
        id: &str,
        ended: Ended,
        started: Instant,
        since: SystemTime,
    ) -> Result<RunOutcome, SandboxError> {
        let mut info = self.inspect(id).await?;
        let mut state = info.state.clone().unwrap_or_default();
        let mut oom_killed = state.oom_killed.unwrap_or(false);
        if oom::needs_check(ended, state.exit_code, oom_killed) {
            // The engine's OOM fact may trail its exit fact (see `oom`): its event, or a
            // second look at its state, settles it.
            let event = self.saw_oom_event(id, since).await;
            info = self.inspect(id).await?;
            state = info.state.clone().unwrap_or_default();
            oom_killed = event || state.oom_killed.unwrap_or(false);
            tracing::info!(container = %id, oom_event = event, oom_killed, "exit 137: checked for a late oom fact");
        }
        Ok(RunOutcome {
            container: info
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            ended,
            exit_code: state.exit_code,
            oom_killed,
            duration: started.elapsed(),
        })
    }

    async fn inspect(
        &self,
        id: &str,
    ) -> Result<bollard::models::ContainerInspectResponse, SandboxError> {
        self.docker()
            .inspect_container(id, None)
            .await
            .map_err(|e| SandboxError::Engine {
                op: "inspect container",
                target: id.into(),
                source: e,
            })
    }
}

async fn drain<S>(logs: &mut S, sink: &mut (dyn FnMut(&[u8]) + Send))
where
    S: futures_util::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>>
        + Unpin,
{
    let until = tokio::time::Instant::now() + LOG_DRAIN;
    while let Ok(Some(Ok(out))) = tokio::time::timeout_at(until, logs.next()).await {
        sink(&out.into_bytes());
    }
}

mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
    }
}
