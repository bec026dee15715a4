//! `models.toml`: the operator's model providers. Parsed fail-closed (unknown keys, bad values),
//! every message naming the file and the field.
//!
//! ```toml
//! [[provider]]
//! name = "anthropic"                       # [a-z][a-z0-9_]*: AIRLOCK_MODEL_ANTHROPIC_URL/_KEY
//! upstream = "https://api.anthropic.com"   # https; plain http only to 127.0.0.1/localhost/[::1]
//! auth = "x-api-key"                       # x-api-key | bearer | x-goog-api-key
//! key_file = "/etc/airlock/anthropic.key"  # mode 0600 (or 0400); or key_command = [argv]
//! routes = ["POST /v1/messages"]           # METHOD /path-prefix; nothing else is forwarded
//! [provider.budget]                        # per task; every key optional
//! requests = 500
//! request_bytes = "8m"
//! response_bytes = "64m"
//! total_bytes = "1g"
//! idle_timeout = "5m"
//! ```

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::route::Route;
use crate::units::{parse_bytes, parse_duration};

/// Longest provider name (it becomes part of an environment variable name).
const MAX_NAME: usize = 32;
/// Longest a `key_command` may run.
pub const KEY_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How the real key is sent upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthStyle {
    /// `x-api-key: KEY` (Anthropic).
    XApiKey,
    /// `Authorization: Bearer KEY` (OpenAI and most others).
    Bearer,
    /// `x-goog-api-key: KEY` (Gemini).
    XGoogApiKey,
}

/// Where the real key comes from. Read on the host at task start, never passed to a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// A file holding the key (readable by its owner only).
    File(PathBuf),
    /// A command that prints the key (argv, run on the host without a shell).
    Command(Vec<String>),
}

/// The upstream origin (and optional base path) requests are forwarded to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upstream {
    /// The URL as `models.toml` wrote it.
    pub url: String,
    /// Whether it is `https://` (else plain `http://`, loopback only).
    pub https: bool,
    /// The host requests go to.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Prefix joined before the request's path (`""` or `/something`, no trailing `/`).
    pub base_path: String,
}

/// Per-task budgets of one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelBudget {
    /// Requests forwarded per task.
    pub requests: u64,
    /// Bytes of request bodies forwarded per task.
    pub request_bytes: u64,
    /// Bytes of response bodies returned per task.
    pub response_bytes: u64,
    /// Request and response bytes together per task.
    pub total_bytes: u64,
    /// How long a response may go without a byte before it is cut.
    #[serde(with = "secs")]
    pub idle_timeout: Duration,
}

impl Default for ModelBudget {
    fn default() -> Self {
        ModelBudget {
            requests: 1000,
            request_bytes: 8 << 20,
            response_bytes: 64 << 20,
            total_bytes: 1 << 30,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// One provider, validated.
#[derive(Debug, Clone, Serialize)]
pub struct Provider {
    /// The provider's name in `models.toml` (and in `[agent] models`).
    pub name: String,
    /// Where requests are forwarded.
    pub upstream: Upstream,
    /// How the real key is sent upstream (a header, bearer).
    pub auth: AuthStyle,
    /// Where the real key comes from.
    pub key: KeySource,
    /// The `METHOD /prefix` pairs the proxy forwards; anything else is refused.
    pub routes: Vec<Route>,
    /// Per-task budgets.
    pub budget: ModelBudget,
}

impl Provider {
    /// The `NAME` in `AIRLOCK_MODEL_<NAME>_URL`.
    pub fn env_name(&self) -> String {
        self.name.to_ascii_uppercase()
    }
}

/// Every provider the operator configured.
#[derive(Debug, Clone, Serialize)]
pub struct ModelsConfig {
    /// The file it was read from (for messages).
    pub file: String,
    /// Providers by name.
    pub providers: BTreeMap<String, Provider>,
}

/// A `models.toml` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {}{message}", field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct ConfigError {
    /// The file (`models.toml`).
    pub file: String,
    /// The field at fault, when there is one.
    pub field: Option<String>,
    /// What is wrong and what is accepted.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModels {
    #[serde(default)]
    provider: Vec<RawProvider>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: String,
    upstream: String,
    auth: String,
    key_file: Option<String>,
    key_command: Option<Vec<String>>,
    routes: Vec<String>,
    budget: Option<RawBudget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    requests: Option<i64>,
    request_bytes: Option<String>,
    response_bytes: Option<String>,
    total_bytes: Option<String>,
    idle_timeout: Option<String>,
}

/// Parse `text` as the models file `file`; relative key paths resolve against `dir`.
pub fn parse(text: &str, file: &str, dir: &Path) -> Result<ModelsConfig, ConfigError> {
    let c = Ctx { file };
    let raw: RawModels = toml::from_str(text).map_err(|e| {
        let p = crate::tomlpath::describe(text, &e);
        ConfigError {
            file: file.into(),
            field: p.field,
            message: p.message,
        }
    })?;
    let mut providers = BTreeMap::new();
    for (i, p) in raw.provider.into_iter().enumerate() {
        let p = c.provider(i, p, dir)?;
        if providers.contains_key(&p.name) {
            return Err(c.err(
                &format!("provider[{i}].name"),
                format!("`{}` is defined twice", p.name),
            ));
        }
        providers.insert(p.name.clone(), p);
    }
    Ok(ModelsConfig {
        file: file.into(),
        providers,
    })
}

/// Load `dir/models.toml`; `None` when there is none (then no level can grant a model).
pub fn load(dir: &Path) -> Result<Option<ModelsConfig>, ConfigError> {
    let p = dir.join("models.toml");
    let file = p.display().to_string();
    match std::fs::read_to_string(&p) {
        Ok(text) => parse(&text, &file, dir).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError {
            file,
            field: None,
            message: format!("cannot read: {e}"),
        }),
    }
}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.into(),
            field: Some(field.into()),
            message: message.into(),
        }
    }

    fn provider(&self, i: usize, p: RawProvider, dir: &Path) -> Result<Provider, ConfigError> {
        let f = |k: &str| format!("provider[{i}].{k}");
        valid_name(&p.name).map_err(|m| self.err(&f("name"), m))?;
        let upstream = upstream(&p.upstream).map_err(|m| self.err(&f("upstream"), m))?;
        let auth = match p.auth.as_str() {
            "x-api-key" => AuthStyle::XApiKey,
            "bearer" => AuthStyle::Bearer,
            "x-goog-api-key" => AuthStyle::XGoogApiKey,
            v => {
                return Err(self.err(
                    &f("auth"),
                    format!("`{v}` is not accepted; use x-api-key, bearer or x-goog-api-key"),
                ))
            }
        };
        let key = match (p.key_file, p.key_command) {
            (Some(path), None) => {
                KeySource::File(key_file(&dir.join(path)).map_err(|m| self.err(&f("key_file"), m))?)
            }
            (None, Some(argv)) => {
                if argv.first().map_or(true, |a| a.trim().is_empty()) {
                    return Err(self.err(
                        &f("key_command"),
                        "is an empty argv; give the program and its arguments",
                    ));
                }
                KeySource::Command(argv)
            }
            _ => {
                return Err(self.err(
                    &format!("provider[{i}]"),
                    "needs exactly one of `key_file` or `key_command`",
                ))
            }
        };
        if p.routes.is_empty() {
            return Err(self.err(&f("routes"), "is empty; nothing would be forwarded"));
        }
        let routes = p
            .routes
            .iter()
            .enumerate()
            .map(|(j, r)| {
                Route::parse(r).map_err(|m| self.err(&format!("provider[{i}].routes[{j}]"), m))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let budget = self.budget(i, p.budget)?;
        Ok(Provider {
            name: p.name,
            upstream,
            auth,
            key,
            routes,
            budget,
        })
    }

    fn budget(&self, i: usize, b: Option<RawBudget>) -> Result<ModelBudget, ConfigError> {
        let mut out = ModelBudget::default();
        let Some(b) = b else { return Ok(out) };
        let f = |k: &str| format!("provider[{i}].budget.{k}");
        let bytes = |k: &str, v: Option<String>, d: u64| -> Result<u64, ConfigError> {
            match v {
                None => Ok(d),
                Some(v) => match parse_bytes(&v) {
                    Ok(0) => Err(self.err(&f(k), "must be more than 0")),
                    Ok(n) => Ok(n),
                    Err(m) => Err(self.err(&f(k), m)),
                },
            }
        };
        if let Some(r) = b.requests {
            if r < 1 {
                return Err(self.err(&f("requests"), format!("`{r}` must be at least 1")));
            }
            out.requests = r as u64;
        }
        out.request_bytes = bytes("request_bytes", b.request_bytes, out.request_bytes)?;
        out.response_bytes = bytes("response_bytes", b.response_bytes, out.response_bytes)?;
        out.total_bytes = bytes("total_bytes", b.total_bytes, out.total_bytes)?;
        if let Some(t) = b.idle_timeout {
            out.idle_timeout = parse_duration(&t).map_err(|m| self.err(&f("idle_timeout"), m))?;
        }
        Ok(out)
    }
}

fn valid_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= MAX_NAME
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a provider name ([a-z][a-z0-9_]*, at most {MAX_NAME} characters)"
        ))
    }
}

/// https to anywhere, plain http only to loopback (a local model server, tests). No
/// credentials, query or fragment.
fn upstream(url: &str) -> Result<Upstream, String> {
    crate::push::check_api_url(url)?;
    let url = url.trim_end_matches('/').to_string();
    let https = url.starts_with("https://");
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (host, port) = split_authority(authority, if https { 443 } else { 80 })?;
    if path.contains("..") || path.contains("//") || path.contains('%') {
        return Err(format!(
            "`{url}` has an unusual path; give an origin and a plain base path"
        ));
    }
    Ok(Upstream {
        https,
        host,
        port,
        base_path: path.to_string(),
        url,
    })
}

fn split_authority(authority: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, rest) = v6.split_once(']').ok_or("unclosed `[` in the host")?;
        (format!("[{h}]"), rest.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p.parse().map_err(|_| format!("`{p}` is not a port"))?,
    };
    Ok((host.to_ascii_lowercase(), port))
}

/// A key file must be a regular file readable by its owner only (0600 or 0400).
fn key_file(path: &Path) -> Result<PathBuf, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("`{}`: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("`{}` is not a regular file", path.display()));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "`{}` has mode {mode:04o}; a key file must be readable by its owner only (chmod 600)",
            path.display()
        ));
    }
    Ok(path.to_path_buf())
}

mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::units::format_duration(*d))
    }
}
