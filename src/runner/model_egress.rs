//! The runner's side of model egress: start the task's proxies, wrap the agent's argv in the
//! forwarder, give the agent (never the gate) the socket dir and the contract's variables, end
//! the task when a budget runs out, and report the traffic.

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::packet::AirlockDir;
use super::task::TaskRun;
use crate::egress::{self, preset, Egress};
use crate::policy::Admission;
use crate::sandbox::MountPlan;
use crate::spec::TaskSpec;

/// Start the proxies of every granted provider; `None` when the task was granted none.
pub(super) fn start(
    root: &std::path::Path,
    airlock: &AirlockDir,
    adm: &Admission,
) -> Result<Option<Egress>, String> {
    if adm.models.is_empty() {
        return Ok(None);
    }
    // The mount point inside the read-only /airlock; only the agent gets something mounted on it.
    let mountpoint = airlock.dir.join("model");
    std::fs::create_dir_all(&mountpoint)
        .map_err(|e| format!("create {}: {e}", mountpoint.display()))?;
    let names: Vec<String> = adm.models.iter().map(|p| p.name.clone()).collect();
    let grants = egress::plan_grants(&names);
    Egress::start(&root.join("model"), &adm.models, grants)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The argv and extra env of the agent: a preset's, or the spec's command; wrapped by the
/// forwarder when the task has model egress.
pub fn agent_run(
    spec: &TaskSpec,
    grants: &[egress::Grant],
    prompt: &str,
) -> (Vec<String>, Vec<(String, String)>) {
    let (argv, mut env) = match (spec.agent.preset, grants.first()) {
        (Some(p), Some(g)) => {
            let run = preset::build(p, spec.agent.model.as_deref(), g, prompt);
            (run.argv, run.env)
        }
        _ => (spec.agent.command.clone(), Vec::new()),
    };
    if grants.is_empty() {
        return (argv, env);
    }
    env.extend(egress::contract_env(grants));
    (egress::wrap_argv(grants, &argv), env)
}

impl TaskRun {
    pub(super) fn emit_egress_started(&mut self) {
        let Some(e) = &self.ctx.egress else { return };
        let providers: Vec<_> = e
            .grants
            .iter()
            .map(|g| json!({ "provider": g.name, "url": g.url() }))
            .collect();
        self.events
            .emit("model_egress", json!({ "providers": providers }));
    }

    /// The agent's argv and its model env for attempt `n` (the prompt was written already).
    pub(super) fn agent_argv_env(&self) -> (Vec<String>, Vec<(String, String)>) {
        let grants = self
            .ctx
            .egress
            .as_ref()
            .map(|e| e.grants.as_slice())
            .unwrap_or(&[]);
        let prompt =
            std::fs::read_to_string(self.ctx.airlock.dir.join("prompt.md")).unwrap_or_default();
        agent_run(&self.ctx.spec, grants, &prompt)
    }

    /// The socket dir, for the agent's container only.
    pub(super) fn egress_mount(&self) -> Option<MountPlan> {
        self.ctx.egress.as_ref().map(|e| MountPlan {
            source: e.dir.clone(),
            target: egress::CONTAINER_DIR.into(),
            read_only: true,
        })
    }

    /// A token for the agent's container that also fires when a model budget runs out. The
    /// returned task is aborted when the container is done.
    pub(super) fn agent_cancel(
        &self,
        cancel: &CancellationToken,
    ) -> (CancellationToken, Option<tokio::task::JoinHandle<()>>) {
        let token = cancel.child_token();
        let Some(e) = &self.ctx.egress else {
            return (token, None);
        };
        let exhausted = e.traffic().exhausted_token();
        let t = token.clone();
        let link = tokio::spawn(async move {
            exhausted.cancelled().await;
            t.cancel();
        });
        (token, Some(link))
    }

    /// The budget that ran out, if one did.
    pub(super) fn model_budget_exhausted(&self) -> Option<String> {
        self.ctx
            .egress
            .as_ref()
            .and_then(|e| e.traffic().exhausted())
    }

    /// `summary.json`'s `model_traffic`.
    pub(super) fn model_traffic(&self) -> Option<egress::TrafficReport> {
        self.ctx.egress.as_ref().map(|e| e.traffic().report())
    }

    pub(super) fn stop_egress(&mut self) {
        if let Some(e) = &self.ctx.egress {
            e.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_without_models_is_left_alone_and_models_wrap_it() {
        let spec = crate::spec::parse_str(
            "title='t'\nlevel='L1'\n[repo]\nurl='https://x/y.git'\nbase='main'\n[issue]\ntext='x'\n[agent]\nimage='i'\ncommand=['a','b']\n",
            std::path::Path::new("/t/task.toml"),
        )
        .unwrap();
        assert_eq!(
            agent_run(&spec, &[], "p"),
            (vec!["a".into(), "b".into()], vec![])
        );
        let grants = egress::plan_grants(&["anthropic".into()]);
        let (argv, env) = agent_run(&spec, &grants, "p");
        assert_eq!(argv[0], egress::FORWARDER_PATH);
        assert_eq!(&argv[argv.len() - 3..], ["--", "a", "b"]);
        assert!(argv.contains(&"41100=/airlock/model/anthropic.sock".to_string()));
        assert!(env.contains(&(
            "AIRLOCK_MODEL_ANTHROPIC_URL".into(),
            "http://127.0.0.1:41100".into()
        )));
        assert!(env
            .iter()
            .any(|(k, v)| k == "AIRLOCK_MODEL_ANTHROPIC_KEY" && v.starts_with("sk-airlock-")));
    }
}
