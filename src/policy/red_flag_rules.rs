//! A level's `[red_flags]` table. Every red flag stops the task `needs_human` / `red_flag`,
//! at every level: a flag is how a cheat (a deleted test, a silenced linter) or a Trojan Source
//! change (`bidi_control`: code that reads one way in review and runs another) reaches a human,
//! so no level may downgrade one or ignore it. The table exists so that an operator who tries
//! gets a refusal at load naming the file, the key, the value and what is accepted, rather
//! than a generic "unknown field" (or, worse, a key silently doing nothing).

use std::collections::BTreeMap;

use super::files::Ctx;
use super::PolicyError;
use crate::gate::RedFlagKind;

/// The only action a level may name for a red flag.
pub const STOP: &str = "stop";

/// Check `[red_flags]`: each key a red flag kind, each value `"stop"`.
pub(super) fn check(
    c: &Ctx,
    raw: Option<&BTreeMap<String, toml::Value>>,
) -> Result<(), PolicyError> {
    for (key, value) in raw.into_iter().flatten() {
        let field = format!("red_flags.{key}");
        let Some(kind) = RedFlagKind::ALL.iter().find(|k| k.name() == key) else {
            let kinds: Vec<&str> = RedFlagKind::ALL.iter().map(|k| k.name()).collect();
            return Err(c.err(
                &field,
                format!(
                    "`{}` is not a red flag kind; kinds: {}",
                    crate::untrusted::neutralise(key),
                    kinds.join(", ")
                ),
            ));
        };
        if value.as_str() != Some(STOP) {
            return Err(c.err(&field, refusal(*kind, value)));
        }
    }
    Ok(())
}

fn refusal(kind: RedFlagKind, value: &toml::Value) -> String {
    let shown = match value.as_str() {
        Some(s) => format!("`{}`", crate::untrusted::neutralise(s)),
        None => format!("`{value}`"),
    };
    let why = match kind {
        RedFlagKind::BidiControl => {
            " (bidirectional control characters are Trojan Source: code that reads one way in \
             review and runs another)"
        }
        _ => "",
    };
    format!(
        "{shown} is not accepted: no level may downgrade or ignore a red flag{why}; every red \
         flag stops the task needs_human/red_flag; accepted: \"{STOP}\" (or leave the key out)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> Result<(), String> {
        let raw: BTreeMap<String, toml::Value> = toml::from_str(text).unwrap();
        check(&Ctx { file: "L4.toml" }, Some(&raw)).map_err(|e| e.to_string())
    }

    #[test]
    fn stop_is_accepted_anything_else_is_refused_naming_key_value_and_what_is_accepted() {
        assert_eq!(
            check_text("bidi_control = \"stop\"\ntest_removed = \"stop\""),
            Ok(())
        );
        for value in [
            "\"risk_note\"",
            "\"ignore\"",
            "\"off\"",
            "false",
            "{ action = \"note\" }",
        ] {
            let e = check_text(&format!("bidi_control = {value}")).unwrap_err();
            assert!(
                e.starts_with("L4.toml: field `red_flags.bidi_control`: "),
                "{e}"
            );
            assert!(
                e.contains("Trojan Source") && e.contains("accepted: \"stop\""),
                "{e}"
            );
            let shown = value.trim_matches('"');
            assert!(
                e.contains(&format!("`{shown}`")) || value.starts_with('{'),
                "{e}"
            );
        }
        let e = check_text("skip_added = \"warn\"").unwrap_err();
        assert!(
            e.contains("red_flags.skip_added") && e.contains("`warn`"),
            "{e}"
        );
        let e = check_text("bidi = \"stop\"").unwrap_err();
        assert!(
            e.contains("not a red flag kind") && e.contains("bidi_control"),
            "{e}"
        );
    }
}
