//! Admission: the effective level, limits and runtime of a task, or why it is refused.
//!
//! Pure: spec and policies in, decision out. Nothing in the spec can widen the policy; a
//! looser request is refused, naming the rule and the ceiling.

use serde::Serialize;

use super::{GateRule, LevelPolicy, Limits, Policies, Runtime};
use crate::spec::{Level, TaskSpec};
use crate::vocab::Reason;

/// What started the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Source {
    /// `airlock run` at the runner's shell.
    Cli,
    /// A submission to the daemon's API.
    Api,
    /// A forge webhook: a label added to an issue.
    IssueLabel,
    /// A forge webhook: a comment command on an issue.
    Comment,
    /// A daemon schedule.
    Schedule,
}

impl Source {
    /// Every source.
    pub const ALL: [Source; 5] = [
        Source::Cli,
        Source::Api,
        Source::IssueLabel,
        Source::Comment,
        Source::Schedule,
    ];

    /// The key used in `operator.toml` `[sources]`.
    pub fn key(self) -> &'static str {
        match self {
            Source::Cli => "cli",
            Source::Api => "api",
            Source::IssueLabel => "webhook:issue_label",
            Source::Comment => "webhook:comment",
            Source::Schedule => "schedule",
        }
    }
}

/// The trigger and what is known of the issue's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Trigger {
    /// What started the task.
    pub source: Source,
    /// Whether the issue author has write access to the repository.
    pub author_trusted: bool,
}

impl Trigger {
    /// An operator running `airlock run` at the runner's shell.
    pub fn cli() -> Self {
        Trigger {
            source: Source::Cli,
            author_trusted: true,
        }
    }
}

/// An admitted task: everything the sandbox will enforce.
#[derive(Debug, Clone, Serialize)]
pub struct Admission {
    /// The level the task runs at.
    pub level: Level,
    /// That level's rules.
    pub policy: LevelPolicy,
    /// The effective limits: the spec's requests within the level's ceilings.
    pub limits: Limits,
    /// The OCI runtime the containers run under.
    pub runtime: Runtime,
    /// Whether the gate runs (the level requires it, or allows it and the spec has one).
    pub run_gate: bool,
    /// Model providers granted (each in the level's `models` and in `models.toml`), in the
    /// order the task asked for them.
    pub models: Vec<crate::egress::Provider>,
    /// Human-readable notes on which rule applied, for `policy check` and the evidence.
    pub rules: Vec<String>,
    /// The task's own `[scope]` (the level's file count is already tightened in `policy`).
    pub task_scope: super::TaskScope,
    /// The operator's risk rules.
    pub risk: super::RiskRules,
}

/// Why a task was refused (exit 3, state `refused`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("refused ({reason}): {message}")]
pub struct Refusal {
    /// Stable snake_case code.
    pub reason: Reason,
    /// What rule refused it, for a human.
    pub message: String,
}

fn refuse(reason: Reason, message: String) -> Refusal {
    Refusal { reason, message }
}

/// Decide whether `spec` may run under `policies` when started by `trigger`.
pub fn admit(spec: &TaskSpec, policies: &Policies, trigger: Trigger) -> Result<Admission, Refusal> {
    let level = spec.level;
    let mut rules = vec![format!("requested level {level}")];
    check_source(policies, trigger, level, &mut rules)?;
    check_repo(policies, trigger, &spec.repo.url, level, &mut rules)?;
    check_author(policies, trigger, level, &mut rules)?;
    let mut policy = policies.level(level).clone();
    let limits = tighten(&policy.limits, spec)?;
    let task_scope = super::task_scope::tighten(&mut policy.scope, &spec.scope)?;
    if task_scope.declared {
        rules.push(format!(
            "task scope: {} allowed, {} forbidden pattern(s), at most {} file(s), dependencies {}",
            task_scope.allowed.len(),
            task_scope.forbidden.len(),
            policy.scope.max_files_changed,
            task_scope.dependencies.as_str()
        ));
    }
    let runtime = runtime(&policy, spec.runtime.as_deref())?;
    let run_gate = gate(&policy, spec.gate.is_some())?;
    let models = models(policies, &policy, &spec.agent.models, &mut rules)?;
    rules.push(format!(
        "{level} policy: checkout {:?}, gate {:?}, push {}",
        policy.checkout, policy.gate, policy.push
    ));
    Ok(Admission {
        level,
        policy,
        limits,
        runtime,
        run_gate,
        models,
        rules,
        task_scope,
        risk: policies.risk.clone(),
    })
}

/// Every provider the task asks for must be granted by its level and defined by the operator.
fn models(
    p: &Policies,
    policy: &LevelPolicy,
    asked: &[String],
    rules: &mut Vec<String>,
) -> Result<Vec<crate::egress::Provider>, Refusal> {
    let mut granted = Vec::new();
    for name in asked {
        if !policy.models.contains(name) {
            return Err(refuse(
                Reason::ModelNotAllowed,
                format!(
                    "model provider `{name}` is not granted at {} (its level file's `models` = {:?})",
                    policy.level, policy.models
                ),
            ));
        }
        let provider = p.models.as_ref().and_then(|m| m.providers.get(name));
        let Some(provider) = provider else {
            return Err(refuse(
                Reason::ModelNotAllowed,
                format!("model provider `{name}` is not defined in models.toml"),
            ));
        };
        rules.push(format!(
            "model provider `{name}` granted at {}",
            policy.level
        ));
        granted.push(provider.clone());
    }
    Ok(granted)
}

fn check_source(
    p: &Policies,
    t: Trigger,
    level: Level,
    rules: &mut Vec<String>,
) -> Result<(), Refusal> {
    let key = t.source.key();
    let Some(max) = p.operator.sources.get(key) else {
        return Err(refuse(
            Reason::SourceNotAllowed,
            format!("operator.toml allows no task from source `{key}`"),
        ));
    };
    if level > *max {
        return Err(refuse(Reason::LevelAboveSource, format!("source `{key}` may start at most {max} (operator.toml [sources]); {level} was requested")));
    }
    rules.push(format!("source `{key}` allows up to {max}"));
    Ok(())
}

fn check_repo(
    p: &Policies,
    t: Trigger,
    url: &str,
    level: Level,
    rules: &mut Vec<String>,
) -> Result<(), Refusal> {
    let not_allowed =
        |m: String| refuse(Reason::RepoNotAllowed, format!("repository `{url}`: {m}"));
    let loc = super::repo_access::locate(url).map_err(not_allowed)?;
    super::repo_access::allowed(&loc, &p.operator.repo_access, t.source == Source::Cli)
        .map_err(not_allowed)?;
    let key = loc.key();
    let source = t.source.key();
    let rule = p.operator.repos.iter().find(|r| {
        let for_source = r
            .sources
            .as_ref()
            .map_or(true, |s| s.iter().any(|s| s == source));
        for_source
            && super::scope::compile(&r.pattern)
                .map(|m| m.is_match(&key))
                .unwrap_or(false)
    });
    let Some(rule) = rule else {
        return Err(refuse(
            Reason::RepoNotAllowed,
            format!("repository `{key}` matches no [[repos]] rule for source `{source}` in operator.toml; the operator names the repositories each source may use"),
        ));
    };
    if level > rule.max_level {
        return Err(refuse(
            Reason::LevelAboveRepo,
            format!(
                "repository `{key}` (rule `{}`) allows at most {}; {level} was requested",
                rule.pattern, rule.max_level
            ),
        ));
    }
    rules.push(format!(
        "repo rule `{}` allows up to {}",
        rule.pattern, rule.max_level
    ));
    Ok(())
}

fn check_author(
    p: &Policies,
    t: Trigger,
    level: Level,
    rules: &mut Vec<String>,
) -> Result<(), Refusal> {
    let max = p.operator.untrusted_author_max;
    if !t.author_trusted && level > max {
        return Err(refuse(Reason::UntrustedAuthor, format!("the issue author has no write access; such tasks are capped at {max} (operator.toml [authors] untrusted_max); {level} was requested")));
    }
    if !t.author_trusted {
        rules.push(format!("untrusted author: capped at {max}"));
    }
    Ok(())
}

/// Effective limits: the spec's values where given, each no looser than the ceiling.
fn tighten(ceiling: &Limits, spec: &TaskSpec) -> Result<Limits, Refusal> {
    let r = &spec.limits;
    let mut eff = ceiling.clone();
    if let Some(t) = r.timeout {
        eff.timeout = not_above("timeout", t, ceiling.timeout, |d| {
            crate::units::format_duration(*d)
        })?;
    }
    if let Some(a) = r.attempts {
        eff.attempts = not_above("attempts", a, ceiling.attempts, u32::to_string)?;
    }
    if let Some(m) = r.memory {
        eff.memory = not_above("memory", m, ceiling.memory, |b| {
            crate::units::format_bytes(*b)
        })?;
    }
    if let Some(p) = r.pids {
        eff.pids = not_above("pids", p, ceiling.pids, i64::to_string)?;
    }
    if let Some(c) = r.cpus {
        eff.cpus = not_above("cpus", c, ceiling.cpus, f64::to_string)?;
    }
    Ok(eff)
}

fn not_above<T: PartialOrd + Copy>(
    field: &str,
    want: T,
    ceiling: T,
    show: impl Fn(&T) -> String,
) -> Result<T, Refusal> {
    if want > ceiling {
        return Err(refuse(Reason::LimitAboveCeiling, format!("limits.{field} = {} is above the policy's ceiling {}; a task may only tighten limits", show(&want), show(&ceiling))));
    }
    Ok(want)
}

fn runtime(policy: &LevelPolicy, requested: Option<&str>) -> Result<Runtime, Refusal> {
    let Some(name) = requested else {
        return Ok(policy.runtime_default);
    };
    let rt = Runtime::parse(name).ok_or_else(|| {
        refuse(
            Reason::RuntimeNotAllowed,
            format!("runtime `{name}` is unknown"),
        )
    })?;
    if !policy.runtime_allowed.contains(&rt) {
        return Err(refuse(
            Reason::RuntimeNotAllowed,
            format!(
                "runtime `{name}` is not allowed at {} (allowed: {:?})",
                policy.level, policy.runtime_allowed
            ),
        ));
    }
    Ok(rt)
}

fn gate(policy: &LevelPolicy, has_gate: bool) -> Result<bool, Refusal> {
    match (policy.gate, has_gate) {
        (GateRule::Required, false) => Err(refuse(
            Reason::GateRequired,
            format!(
                "{} requires a gate; add a [gate] with commands",
                policy.level
            ),
        )),
        (GateRule::None, true) => Err(refuse(
            Reason::GateNotAllowed,
            format!("{} runs no gate (read-only); remove [gate]", policy.level),
        )),
        (_, has) => Ok(has),
    }
}
