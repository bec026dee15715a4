//! Reading policy files: raw serde types that reject unknown keys, then validation.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{
    Checkout, GateRule, LevelPolicy, Limits, Operator, Policies, PolicyError, Preexisting,
    ProtectedRule, RepoRule, Runtime, Scope, ScopeAction,
};
use crate::spec::Level;
use crate::units::{parse_bytes, parse_duration};

/// The shipped policy files, embedded so a runner works without a policies directory.
const EMBEDDED: [(&str, &str); 6] = [
    ("L0.toml", include_str!("../../policies/L0.toml")),
    ("L1.toml", include_str!("../../policies/L1.toml")),
    ("L2.toml", include_str!("../../policies/L2.toml")),
    ("L3.toml", include_str!("../../policies/L3.toml")),
    ("L4.toml", include_str!("../../policies/L4.toml")),
    (
        "operator.toml",
        include_str!("../../policies/operator.toml"),
    ),
];

/// Known trigger sources in `operator.toml` `[sources]`.
pub const SOURCES: [&str; 5] = [
    "cli",
    "api",
    "webhook:issue_label",
    "webhook:comment",
    "schedule",
];

/// The embedded defaults (the files shipped in `policies/`).
pub fn load_embedded() -> Result<Policies, PolicyError> {
    let texts: BTreeMap<&str, String> = EMBEDDED.iter().map(|(n, t)| (*n, t.to_string())).collect();
    build(None, |name| {
        texts
            .get(name)
            .cloned()
            .ok_or_else(|| missing(&format!("<embedded>/{name}")))
    })
}

/// Load every policy file from `dir`. Any missing or malformed file is an error.
pub fn load_dir(dir: &Path) -> Result<Policies, PolicyError> {
    build(Some(dir), |name| {
        let p = dir.join(name);
        std::fs::read_to_string(&p).map_err(|e| PolicyError {
            file: p.display().to_string(),
            field: None,
            message: format!(
                "cannot read policy file: {e}; every level L0..L4 and operator.toml are required"
            ),
        })
    })
}

fn missing(file: &str) -> PolicyError {
    PolicyError {
        file: file.into(),
        field: None,
        message: "missing".into(),
    }
}

fn build(
    dir: Option<&Path>,
    read: impl Fn(&str) -> Result<String, PolicyError>,
) -> Result<Policies, PolicyError> {
    let display = |name: &str| match dir {
        Some(d) => d.join(name).display().to_string(),
        None => format!("<embedded>/{name}"),
    };
    let mut levels = BTreeMap::new();
    for level in Level::ALL {
        let name = format!("{level}.toml");
        let file = display(&name);
        levels.insert(level, parse_level(&read(&name)?, &file, level)?);
    }
    let name = "operator.toml";
    let operator = parse_operator(&read(name)?, &display(name))?;
    let push = match dir {
        Some(d) => load_push(d)?,
        None => None,
    };
    let risk = super::risk::load(dir)?;
    for l in levels.values_mut().filter(|l| l.push) {
        l.push_config = push.clone();
    }
    let models = match dir {
        Some(d) => crate::egress::config::load(d).map_err(|e| PolicyError {
            file: e.file,
            field: e.field,
            message: e.message,
        })?,
        None => None,
    };
    for l in levels.values() {
        check_models(l, models.as_ref(), &display(&format!("{}.toml", l.level)))?;
    }
    Ok(Policies {
        dir: dir.map(Path::to_path_buf),
        levels,
        operator,
        risk,
        push,
        models,
    })
}

/// Every provider a level grants must be defined in `models.toml`.
fn check_models(
    l: &LevelPolicy,
    models: Option<&crate::egress::ModelsConfig>,
    file: &str,
) -> Result<(), PolicyError> {
    let c = Ctx { file };
    for (i, name) in l.models.iter().enumerate() {
        let field = format!("models[{i}]");
        match models {
            None => {
                return Err(c.err(
                    &field,
                    format!("grants `{name}` but there is no models.toml beside the level files"),
                ))
            }
            Some(m) if !m.providers.contains_key(name) => {
                let known: Vec<&str> = m.providers.keys().map(String::as_str).collect();
                return Err(c.err(
                    &field,
                    format!(
                        "`{name}` is not a provider in {}; defined: {}",
                        m.file,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The optional `push.toml` (there are no embedded defaults: without it nothing pushes).
fn load_push(dir: &Path) -> Result<Option<crate::push::PushConfig>, PolicyError> {
    let p = dir.join("push.toml");
    let file = p.display().to_string();
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(PolicyError {
                file,
                field: None,
                message: format!("cannot read: {e}"),
            })
        }
    };
    crate::push::parse(&text, Some(dir))
        .map(Some)
        .map_err(|e| PolicyError {
            file,
            field: e.field,
            message: e.message,
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLevel {
    level: String,
    checkout: String,
    gate: String,
    push: bool,
    network: String,
    flaky_reruns: i64,
    flaky_is_green: bool,
    #[serde(default)]
    stop_high_risk: bool,
    #[serde(default)]
    preexisting: Option<String>,
    runtime: RawRuntime,
    limits: RawLimits,
    #[serde(default)]
    output: Option<super::output_limits::RawOutput>,
    scope: RawScope,
    #[serde(default)]
    models: Vec<String>,
    /// Refused unless every value is `"stop"` (see `red_flag_rules`).
    #[serde(default)]
    red_flags: Option<BTreeMap<String, toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    default: String,
    allowed: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    timeout: String,
    attempts: i64,
    cpus: f64,
    memory: String,
    pids: i64,
    tmpfs: String,
    tmpfs_inodes: i64,
    out: String,
    log_bytes: String,
    workspace: String,
    workspace_inodes: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScope {
    max_files_changed: i64,
    max_diff_bytes: String,
    allow_binary: bool,
    #[serde(default)]
    protected: Vec<RawProtected>,
    dependencies: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProtected {
    action: String,
    paths: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperator {
    sources: BTreeMap<String, String>,
    authors: RawAuthors,
    #[serde(default)]
    repos: Vec<RawRepo>,
    #[serde(default)]
    repo_access: Option<RawRepoAccess>,
    #[serde(default)]
    prepare: Option<super::prepare_limits::RawPrepare>,
    #[serde(default)]
    sandbox: Option<super::sandbox_user::RawSandbox>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRepoAccess {
    #[serde(default)]
    pub(super) schemes: Option<Vec<String>>,
    #[serde(default)]
    pub(super) local_dirs: Vec<String>,
    #[serde(default)]
    pub(super) cli_local_anywhere: Option<bool>,
    #[serde(default)]
    pub(super) ssh_key: Option<String>,
    #[serde(default)]
    pub(super) ssh_known_hosts: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthors {
    untrusted_max: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepo {
    #[serde(rename = "match")]
    pattern: String,
    max_level: String,
    #[serde(default)]
    sources: Option<Vec<String>>,
}

/// Errors for one file.
pub(super) struct Ctx<'a> {
    pub(super) file: &'a str,
}

impl Ctx<'_> {
    pub(super) fn err(&self, field: &str, message: impl Into<String>) -> PolicyError {
        PolicyError {
            file: self.file.into(),
            field: Some(field.into()),
            message: message.into(),
        }
    }

    fn toml<T: serde::de::DeserializeOwned>(&self, text: &str) -> Result<T, PolicyError> {
        toml::from_str(text).map_err(|e| {
            let p = crate::tomlpath::describe(text, &e);
            PolicyError {
                file: self.file.into(),
                field: p.field,
                message: p.message,
            }
        })
    }

    fn level(&self, field: &str, v: &str) -> Result<Level, PolicyError> {
        Level::parse(v).ok_or_else(|| {
            self.err(
                field,
                format!("`{v}` is not a level; accepted: L0, L1, L2, L3, L4"),
            )
        })
    }

    fn bytes(&self, field: &str, v: &str) -> Result<u64, PolicyError> {
        parse_bytes(v).map_err(|m| self.err(field, m))
    }

    fn count(&self, field: &str, v: i64) -> Result<i64, PolicyError> {
        if v < 1 {
            return Err(self.err(field, format!("`{v}` must be at least 1")));
        }
        Ok(v)
    }

    fn runtime(&self, field: &str, v: &str) -> Result<Runtime, PolicyError> {
        Runtime::parse(v).ok_or_else(|| {
            self.err(
                field,
                format!("`{v}` is not a runtime; accepted: runc, runsc"),
            )
        })
    }
}

/// `preexisting = "report" | "must_fix"`; absent means `report`.
fn preexisting(c: &Ctx<'_>, raw: Option<&str>) -> Result<Preexisting, PolicyError> {
    match raw {
        None | Some("report") => Ok(Preexisting::Report),
        Some("must_fix") => Ok(Preexisting::MustFix),
        Some(v) => Err(c.err(
            "preexisting",
            format!("`{v}` is not accepted; use report or must_fix"),
        )),
    }
}

fn parse_level(text: &str, file: &str, expect: Level) -> Result<LevelPolicy, PolicyError> {
    let c = Ctx { file };
    let raw: RawLevel = c.toml(text)?;
    let level = c.level("level", &raw.level)?;
    if level != expect {
        return Err(c.err(
            "level",
            format!("says {level} but the file is {expect}.toml"),
        ));
    }
    if raw.network != "none" {
        return Err(c.err(
            "network",
            format!(
                "`{}` is not supported; only \"none\" is accepted for now",
                raw.network
            ),
        ));
    }
    if raw.push && level < Level::L3 {
        return Err(c.err("push", format!("{level} may not push; only L3 and L4 can")));
    }
    let checkout = match raw.checkout.as_str() {
        "read_only" => Checkout::ReadOnly,
        "writable" => Checkout::Writable,
        v => {
            return Err(c.err(
                "checkout",
                format!("`{v}` is not accepted; use read_only or writable"),
            ))
        }
    };
    if level == Level::L0 && checkout != Checkout::ReadOnly {
        return Err(c.err("checkout", "L0 is read-only by definition; use read_only"));
    }
    let gate = match raw.gate.as_str() {
        "none" => GateRule::None,
        "optional" => GateRule::Optional,
        "required" => GateRule::Required,
        v => {
            return Err(c.err(
                "gate",
                format!("`{v}` is not accepted; use none, optional or required"),
            ))
        }
    };
    if level >= Level::L2 && gate != GateRule::Required {
        return Err(c.err("gate", format!("{level} requires the gate; use required")));
    }
    if raw.stop_high_risk && !raw.push {
        return Err(c.err(
            "stop_high_risk",
            format!(
                "{level} does not push; stop_high_risk applies only to levels with push = true"
            ),
        ));
    }
    super::red_flag_rules::check(&c, raw.red_flags.as_ref())?;
    let (runtime_default, runtime_allowed) = runtime(&c, raw.runtime)?;
    Ok(LevelPolicy {
        level,
        checkout,
        gate,
        push: raw.push,
        flaky_reruns: flaky_reruns(&c, raw.flaky_reruns)?,
        flaky_is_green: raw.flaky_is_green,
        preexisting: preexisting(&c, raw.preexisting.as_deref())?,
        runtime_default,
        runtime_allowed,
        limits: limits(&c, raw.limits)?,
        output: super::output_limits::output_limits(&c, raw.output)?,
        scope: scope(&c, raw.scope)?,
        stop_high_risk: raw.stop_high_risk,
        models: raw.models,
        push_config: None,
    })
}

fn flaky_reruns(c: &Ctx, n: i64) -> Result<u32, PolicyError> {
    if !(0..=5).contains(&n) {
        return Err(c.err(
            "flaky_reruns",
            format!("`{n}` is out of range; accepted: 0 to 5"),
        ));
    }
    Ok(n as u32)
}

fn runtime(c: &Ctx, raw: RawRuntime) -> Result<(Runtime, Vec<Runtime>), PolicyError> {
    let default = c.runtime("runtime.default", &raw.default)?;
    let allowed = raw
        .allowed
        .iter()
        .map(|r| c.runtime("runtime.allowed", r))
        .collect::<Result<Vec<_>, _>>()?;
    if !allowed.contains(&default) {
        return Err(c.err(
            "runtime.default",
            format!("`{}` is not in runtime.allowed", raw.default),
        ));
    }
    Ok((default, allowed))
}

fn limits(c: &Ctx, l: RawLimits) -> Result<Limits, PolicyError> {
    if !(l.cpus.is_finite() && l.cpus >= 0.01) {
        return Err(c.err("limits.cpus", format!("`{}` must be at least 0.01", l.cpus)));
    }
    Ok(Limits {
        timeout: parse_duration(&l.timeout).map_err(|m| c.err("limits.timeout", m))?,
        attempts: c.count("limits.attempts", l.attempts)?.min(100) as u32,
        cpus: l.cpus,
        memory: c.bytes("limits.memory", &l.memory)?,
        pids: c.count("limits.pids", l.pids)?,
        tmpfs: c.bytes("limits.tmpfs", &l.tmpfs)?,
        tmpfs_inodes: c.count("limits.tmpfs_inodes", l.tmpfs_inodes)? as u64,
        out: c.bytes("limits.out", &l.out)?,
        log_bytes: c.bytes("limits.log_bytes", &l.log_bytes)?,
        workspace: c.bytes("limits.workspace", &l.workspace)?,
        workspace_inodes: c.count("limits.workspace_inodes", l.workspace_inodes)? as u64,
    })
}

fn scope(c: &Ctx, s: RawScope) -> Result<Scope, PolicyError> {
    let mut protected = Vec::new();
    for (i, p) in s.protected.into_iter().enumerate() {
        let field = format!("scope.protected[{i}]");
        let action = match p.action.as_str() {
            "request_review" => ScopeAction::RequestReview,
            "blocked" => ScopeAction::Blocked,
            v => {
                return Err(c.err(
                    &format!("{field}.action"),
                    format!("`{v}` is not accepted; use request_review or blocked"),
                ))
            }
        };
        for pat in &p.paths {
            super::scope::compile(pat).map_err(|m| c.err(&format!("{field}.paths"), m))?;
        }
        protected.push(ProtectedRule {
            action,
            paths: p.paths,
        });
    }
    let dependencies = match s.dependencies.as_deref() {
        None => crate::spec::Dependencies::Review,
        Some(d) => crate::spec::Dependencies::parse(d).ok_or_else(|| {
            c.err(
                "scope.dependencies",
                format!("`{d}` is not accepted; use review or forbid"),
            )
        })?,
    };
    Ok(Scope {
        dependencies,
        max_files_changed: c.count("scope.max_files_changed", s.max_files_changed)? as usize,
        max_diff_bytes: c.bytes("scope.max_diff_bytes", &s.max_diff_bytes)?,
        allow_binary: s.allow_binary,
        protected,
    })
}

fn parse_operator(text: &str, file: &str) -> Result<Operator, PolicyError> {
    let c = Ctx { file };
    let raw: RawOperator = c.toml(text)?;
    let mut sources = BTreeMap::new();
    for (name, level) in &raw.sources {
        if !SOURCES.contains(&name.as_str()) {
            return Err(c.err(
                &format!("sources.{name}"),
                format!("unknown source; accepted: {}", SOURCES.join(", ")),
            ));
        }
        sources.insert(name.clone(), c.level(&format!("sources.{name}"), level)?);
    }
    let repos = raw
        .repos
        .iter()
        .enumerate()
        .map(|(i, r)| repo_rule(&c, i, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Operator {
        sources,
        untrusted_author_max: c.level("authors.untrusted_max", &raw.authors.untrusted_max)?,
        repos,
        repo_access: super::access_file::repo_access(&c, raw.repo_access)?,
        prepare: super::prepare_limits::prepare_limits(&c, raw.prepare)?,
        sandbox: super::sandbox_user::sandbox_user(&c, raw.sandbox)?,
    })
}

fn repo_rule(c: &Ctx, i: usize, r: &RawRepo) -> Result<RepoRule, PolicyError> {
    super::scope::compile(&r.pattern).map_err(|m| c.err(&format!("repos[{i}].match"), m))?;
    if let Some(bad) = r
        .sources
        .iter()
        .flatten()
        .find(|s| !SOURCES.contains(&s.as_str()))
    {
        return Err(c.err(
            &format!("repos[{i}].sources"),
            format!("`{bad}` is not a source; accepted: {}", SOURCES.join(", ")),
        ));
    }
    Ok(RepoRule {
        pattern: r.pattern.clone(),
        max_level: c.level(&format!("repos[{i}].max_level"), &r.max_level)?,
        sources: r.sources.clone(),
    })
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
