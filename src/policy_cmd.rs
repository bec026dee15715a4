//! `airlock policy show [LEVEL]` and `airlock policy check TASK.toml`.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use airlock::policy::{admit, Source, Trigger};
use airlock::spec::{self, Level};
use airlock::vocab::Exit;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Print the effective rules of one level, or of all levels and operator.toml.
    Show {
        /// L0..L4; all levels when omitted.
        level: Option<String>,
    },
    /// Print the admission decision for a task spec and why. Exit 0 admitted, 3 refused.
    Check {
        task: PathBuf,
        /// The trigger: cli, api, webhook:issue_label, webhook:comment, schedule.
        #[arg(long, default_value = "cli")]
        source: String,
        /// The issue author has no write access to the repository.
        #[arg(long)]
        untrusted_author: bool,
    },
}

pub fn run(cmd: PolicyCommand, dir: Option<&Path>) -> i32 {
    let policies = match crate::load_policies(dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("airlock: {e}");
            return Exit::Invalid.code();
        }
    };
    match cmd {
        PolicyCommand::Show { level } => show(&policies, level.as_deref()),
        PolicyCommand::Check {
            task,
            source,
            untrusted_author,
        } => check(&policies, &task, &source, untrusted_author),
    }
}

fn show(p: &airlock::policy::Policies, level: Option<&str>) -> i32 {
    let origin = p
        .dir
        .as_ref()
        .map_or("embedded defaults".to_string(), |d| d.display().to_string());
    let value = match level {
        Some(l) => match Level::parse(l) {
            Some(l) => serde_json::json!({ "policies": origin, "level": p.level(l) }),
            None => {
                eprintln!("airlock: `{l}` is not a level; accepted: L0, L1, L2, L3, L4");
                return Exit::Invalid.code();
            }
        },
        None => {
            serde_json::json!({ "policies": origin, "levels": p.levels, "operator": p.operator })
        }
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
    Exit::Ok.code()
}

/// The agent's argv and env as a run of `spec` builds them (preset or command, wrapped in the
/// forwarder), with stand-ins for the per-task placeholder and the prompt's text.
fn agent_preview(spec: &spec::TaskSpec, a: &airlock::policy::Admission) -> serde_json::Value {
    let names: Vec<String> = a.models.iter().map(|p| p.name.clone()).collect();
    let mut grants = airlock::egress::plan_grants(&names);
    for g in &mut grants {
        g.placeholder = "sk-airlock-<per-task placeholder>".into();
    }
    let (argv, env) =
        airlock::runner::model_egress::agent_run(spec, &grants, "<the text of /airlock/prompt.md>");
    let env: serde_json::Map<String, serde_json::Value> =
        env.into_iter().map(|(k, v)| (k, v.into())).collect();
    serde_json::json!({ "preset": spec.agent.preset, "argv": argv, "env": env })
}

fn check(p: &airlock::policy::Policies, task: &Path, source: &str, untrusted: bool) -> i32 {
    let spec = match spec::load(task) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("airlock: {e}");
            return Exit::Invalid.code();
        }
    };
    let Some(source) = Source::ALL.into_iter().find(|s| s.key() == source) else {
        eprintln!("airlock: --source `{source}` is unknown; accepted: cli, api, webhook:issue_label, webhook:comment, schedule");
        return Exit::Invalid.code();
    };
    match admit(
        &spec,
        p,
        Trigger {
            source,
            author_trusted: !untrusted,
        },
    ) {
        Ok(a) => {
            let mut out = serde_json::json!({ "decision": "admitted", "level": a.level, "runtime": a.runtime, "run_gate": a.run_gate, "limits": a.limits, "rules": a.rules });
            if !a.models.is_empty() {
                out["agent"] = agent_preview(&spec, &a);
            }
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Exit::Ok.code()
        }
        Err(r) => {
            let out = serde_json::json!({ "decision": "refused", "reason": r.reason, "message": r.message });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Exit::Refused.code()
        }
    }
}
