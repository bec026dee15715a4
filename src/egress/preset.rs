//! Presets: the headless argv and environment of a known agent CLI, built from the prompt
//! airlock wrote to `/airlock/prompt.md` and the contract's `AIRLOCK_MODEL_<NAME>_*` values.
//! Each maps the contract onto the CLI's own variables, turns off telemetry, update checks and
//! price-list fetches, and keeps every write under `HOME` (a tmpfs) or `/workspace`. Pure.

use std::fmt;

use serde::Serialize;

use super::Grant;

/// A known agent CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// OpenAI's Codex CLI.
    Codex,
    /// Anthropic's Claude Code.
    ClaudeCode,
    /// Aider.
    Aider,
    /// Google's Gemini CLI.
    Gemini,
    /// opencode.
    Opencode,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 5] = [
        Preset::Codex,
        Preset::ClaudeCode,
        Preset::Aider,
        Preset::Gemini,
        Preset::Opencode,
    ];

    /// The preset named `s` in `[agent] preset`, if there is one.
    pub fn parse(s: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The name as written in specs.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Codex => "codex",
            Preset::ClaudeCode => "claude-code",
            Preset::Aider => "aider",
            Preset::Gemini => "gemini",
            Preset::Opencode => "opencode",
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a preset runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresetRun {
    /// The command to run.
    pub argv: Vec<String>,
    /// The environment it needs (model URL, key, config paths).
    pub env: Vec<(String, String)>,
}

/// The argv and env of `preset` for the provider `grant`, the prompt text and an optional
/// model. `grant`'s values appear as the contract variables too (set by the runner).
pub fn build(preset: Preset, model: Option<&str>, grant: &Grant, prompt: &str) -> PresetRun {
    let key_var = format!("AIRLOCK_MODEL_{}_KEY", grant.env_name);
    let url = grant.url();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
    match preset {
        Preset::Codex => {
            let mut argv = s(&[
                "codex",
                "exec",
                "--skip-git-repo-check",
                "--dangerously-bypass-approvals-and-sandbox",
                "--color",
                "never",
                "-C",
                "/workspace",
            ]);
            for c in [
                "model_provider=\"airlock\"".to_string(),
                "model_providers.airlock.name=\"airlock\"".to_string(),
                format!("model_providers.airlock.base_url=\"{url}/v1\""),
                format!("model_providers.airlock.env_key=\"{key_var}\""),
                "model_providers.airlock.wire_api=\"responses\"".to_string(),
                "check_for_update_on_startup=false".to_string(),
                "analytics.enabled=false".to_string(),
                "otel.exporter=\"none\"".to_string(),
            ] {
                argv.push("-c".into());
                argv.push(c);
            }
            if let Some(m) = model {
                argv.extend(["-m".to_string(), m.to_string()]);
            }
            argv.push(prompt.to_string());
            PresetRun {
                argv,
                // CODEX_HOME stays unset: Codex refuses a set one that does not exist yet, and
                // its default, $HOME/.codex, is on the HOME tmpfs.
                env: vec![kv("NO_COLOR", "1")],
            }
        }
        Preset::ClaudeCode => {
            let mut argv = s(&[
                "claude",
                "-p",
                "--output-format",
                "text",
                "--dangerously-skip-permissions",
            ]);
            if let Some(m) = model {
                argv.extend(["--model".to_string(), m.to_string()]);
            }
            argv.push(prompt.to_string());
            PresetRun {
                argv,
                env: vec![
                    kv("ANTHROPIC_BASE_URL", &url),
                    kv("ANTHROPIC_API_KEY", &grant.placeholder),
                    kv("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
                    kv("DISABLE_TELEMETRY", "1"),
                    kv("DISABLE_ERROR_REPORTING", "1"),
                    kv("DISABLE_AUTOUPDATER", "1"),
                    kv("DISABLE_BUG_COMMAND", "1"),
                    kv("DISABLE_NON_ESSENTIAL_MODEL_CALLS", "1"),
                    kv("CLAUDE_CONFIG_DIR", "/home/agent/.claude"),
                ],
            }
        }
        Preset::Aider => {
            let m = model.unwrap_or("gpt-4.1");
            let argv = vec![
                "aider".into(),
                "--model".into(),
                format!("openai/{m}"),
                "--yes-always".into(),
                "--no-git".into(),
                "--no-auto-commits".into(),
                "--no-check-update".into(),
                "--no-show-release-notes".into(),
                "--analytics-disable".into(),
                "--no-pretty".into(),
                "--no-detect-urls".into(),
                "--message".into(),
                prompt.to_string(),
            ];
            PresetRun {
                argv,
                env: vec![
                    kv("OPENAI_API_BASE", &format!("{url}/v1")),
                    kv("OPENAI_API_KEY", &grant.placeholder),
                    kv("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
                    kv("AIDER_ANALYTICS", "false"),
                ],
            }
        }
        Preset::Gemini => {
            let mut argv = s(&["gemini", "--yolo"]);
            if let Some(m) = model {
                argv.extend(["--model".to_string(), m.to_string()]);
            }
            argv.extend(["--prompt".to_string(), prompt.to_string()]);
            PresetRun {
                argv,
                env: vec![
                    kv("GOOGLE_GEMINI_BASE_URL", &url),
                    kv("GEMINI_API_KEY", &grant.placeholder),
                    kv("GEMINI_TELEMETRY_ENABLED", "false"),
                    kv("GEMINI_CLI_DISABLE_AUTO_UPDATE", "true"),
                ],
            }
        }
        Preset::Opencode => {
            let m = model.unwrap_or("gpt-4.1");
            let config = serde_json::json!({
                "$schema": "https://opencode.ai/config.json",
                "autoupdate": false,
                "share": "disabled",
                "model": format!("airlock/{m}"),
                "provider": { "airlock": {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "airlock",
                    "options": { "baseURL": format!("{url}/v1"), "apiKey": format!("{{env:{key_var}}}") },
                    "models": { m: {} },
                }},
            });
            PresetRun {
                argv: vec!["opencode".into(), "run".into(), prompt.to_string()],
                env: vec![
                    kv("OPENCODE_CONFIG_CONTENT", &config.to_string()),
                    kv("OPENCODE_DISABLE_AUTOUPDATE", "1"),
                    kv("OPENCODE_DISABLE_MODELS_FETCH", "1"),
                    kv("OPENCODE_DISABLE_LSP_DOWNLOAD", "1"),
                ],
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            name: "openai".into(),
            env_name: "OPENAI".into(),
            port: 41100,
            placeholder: "sk-airlock-ph".into(),
        }
    }

    fn env<'a>(r: &'a PresetRun, k: &str) -> Option<&'a str> {
        r.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn codex_uses_a_responses_provider_on_the_forwarder() {
        let r = build(Preset::Codex, Some("gpt-5"), &grant(), "do it");
        assert_eq!(&r.argv[..2], ["codex", "exec"]);
        assert!(r
            .argv
            .contains(&"model_providers.airlock.wire_api=\"responses\"".to_string()));
        assert!(r.argv.contains(
            &"model_providers.airlock.base_url=\"http://127.0.0.1:41100/v1\"".to_string()
        ));
        assert!(r
            .argv
            .contains(&"model_providers.airlock.env_key=\"AIRLOCK_MODEL_OPENAI_KEY\"".to_string()));
        assert!(r.argv.windows(2).any(|w| w == ["-m", "gpt-5"]));
        assert_eq!(r.argv.last().map(String::as_str), Some("do it"));
    }

    #[test]
    fn claude_code_maps_base_url_and_key_and_turns_traffic_off() {
        let r = build(Preset::ClaudeCode, None, &grant(), "p");
        assert_eq!(
            env(&r, "ANTHROPIC_BASE_URL"),
            Some("http://127.0.0.1:41100")
        );
        assert_eq!(env(&r, "ANTHROPIC_API_KEY"), Some("sk-airlock-ph"));
        assert_eq!(
            env(&r, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"),
            Some("1")
        );
        assert!(r.argv.contains(&"-p".to_string()));
    }

    #[test]
    fn aider_gemini_opencode_map_their_own_variables() {
        let a = build(Preset::Aider, None, &grant(), "p");
        assert_eq!(
            env(&a, "OPENAI_API_BASE"),
            Some("http://127.0.0.1:41100/v1")
        );
        assert!(a.argv.contains(&"--no-check-update".to_string()));
        let g = build(Preset::Gemini, None, &grant(), "p");
        assert_eq!(
            env(&g, "GOOGLE_GEMINI_BASE_URL"),
            Some("http://127.0.0.1:41100")
        );
        assert_eq!(env(&g, "GEMINI_API_KEY"), Some("sk-airlock-ph"));
        let o = build(Preset::Opencode, Some("m1"), &grant(), "p");
        let cfg: serde_json::Value =
            serde_json::from_str(env(&o, "OPENCODE_CONFIG_CONTENT").unwrap()).unwrap();
        assert_eq!(
            cfg["provider"]["airlock"]["options"]["baseURL"],
            "http://127.0.0.1:41100/v1"
        );
        assert_eq!(
            cfg["provider"]["airlock"]["options"]["apiKey"],
            "{env:AIRLOCK_MODEL_OPENAI_KEY}"
        );
        assert_eq!(cfg["model"], "airlock/m1");
    }

    #[test]
    fn no_preset_ever_holds_anything_but_the_placeholder() {
        for p in Preset::ALL {
            let r = build(p, None, &grant(), "p");
            let all = format!("{:?}", r);
            assert!(!all.contains("sk-real"), "{p}");
            assert_eq!(Preset::parse(p.as_str()), Some(p));
        }
    }
}
