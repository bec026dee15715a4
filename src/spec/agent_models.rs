//! `[agent] models`, `preset` and `model`: shapes only (admission decides what is granted).

use crate::egress::preset::Preset;

/// Provider names: `[a-z][a-z0-9_]*`, as in `models.toml`, no duplicates.
pub fn models(names: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let ok = n.len() <= 32
            && n.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(format!("`{n}` is not a provider name ([a-z][a-z0-9_]*)"));
        }
        if out.contains(n) {
            return Err(format!("`{n}` is named twice"));
        }
        out.push(n.clone());
    }
    Ok(out)
}

/// A known preset; it needs a provider to talk to.
pub fn preset(name: &str, models: &[String]) -> Result<Preset, String> {
    let accepted: Vec<&str> = Preset::ALL.iter().map(|p| p.as_str()).collect();
    let p = Preset::parse(name).ok_or_else(|| {
        format!(
            "`{name}` is not a preset; accepted: {}",
            accepted.join(", ")
        )
    })?;
    if models.is_empty() {
        return Err(format!(
            "preset `{name}` needs a model provider; add `models = [\"...\"]` to [agent]"
        ));
    }
    Ok(p)
}

/// A model name for a preset: short, no whitespace or quotes.
pub fn model(m: &str, has_preset: bool) -> Result<(), String> {
    if !has_preset {
        return Err("is only used with a `preset`".into());
    }
    let ok = !m.is_empty()
        && m.len() <= 100
        && !m.starts_with('-')
        && m.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{m}` is not a model name (letters, digits and ._:/@-)"
        ))
    }
}
