//! One gate container with its own throwaway world: a fresh overlay over the agent's tree and
//! a fresh read-only `/airlock` holding only copies of the packet files, so nothing a gate
//! command writes reaches the next command, a rerun, the diff or the agent's `out/` (a
//! read-only bind is not recursive on Docker 20.10: the agent's writable `out/` submount must
//! not be under what the gate mounts at all).

use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::containers::{Job, Ran};
use super::task::TaskRun;
use crate::sandbox::{MountPlan, SandboxError};

impl TaskRun {
    /// Run `argv` as gate step `step` of attempt `n` in a view made for it alone.
    pub(super) async fn gate_container(
        &mut self,
        n: u32,
        step: usize,
        image: &str,
        argv: Vec<String>,
        cancel: &CancellationToken,
    ) -> Result<Ran, SandboxError> {
        let name = format!("gate-{n}-{step}");
        let view_name = name.clone();
        let view = self
            .ctx
            .on_workspace(move |ws| ws.gate_view(&view_name))
            .await
            .map_err(fault)?;
        let packet = self.ctx.ws.root.join(&name).join("airlock");
        let (from, to) = (self.ctx.airlock.dir.clone(), packet.clone());
        let made = super::context::blocking(move || copy_packet(&from, &to)).await;
        let result = match made {
            Ok(()) => {
                let mounts = vec![
                    MountPlan {
                        source: view,
                        target: "/workspace".into(),
                        read_only: false,
                    },
                    MountPlan {
                        source: packet,
                        target: "/airlock".into(),
                        read_only: true,
                    },
                ];
                let job = Job {
                    role: "gate",
                    attempt: n,
                    step,
                    image,
                    argv,
                    mounts,
                    parse: true,
                };
                self.run_container(job, cancel).await
            }
            Err(e) => Err(fault(e)),
        };
        let view_name = name.clone();
        if let Err(e) = self
            .ctx
            .on_workspace(move |ws| ws.drop_view(&view_name))
            .await
        {
            tracing::warn!(error = %e, view = %name, "cannot drop the gate view");
        }
        result
    }
}

/// Copy the regular files at the top of `from` (task.json, issue.md, prompt.md, feedback.json)
/// into a new `to`; sub-directories (the agent's `out/`, sockets) are left out.
fn copy_packet(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

fn fault(e: impl std::fmt::Display) -> SandboxError {
    super::attempt::fault(&e)
}
