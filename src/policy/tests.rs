//! Policy loading: the shipped files parse, match the embedded copy, and bad files name the
//! file and field.

use std::path::Path;

use super::super::{load_dir, load_embedded, Checkout, GateRule};
use crate::spec::Level;

fn shipped_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))
}

#[test]
fn embedded_defaults_parse_and_match_the_shipped_files() {
    let embedded = load_embedded().unwrap();
    let shipped = load_dir(shipped_dir()).unwrap();
    let a = serde_json::to_value((&embedded.levels, &embedded.operator)).unwrap();
    let b = serde_json::to_value((&shipped.levels, &shipped.operator)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn levels_have_their_defining_properties() {
    let p = load_embedded().unwrap();
    assert_eq!(p.level(Level::L0).checkout, Checkout::ReadOnly);
    assert_eq!(p.level(Level::L0).gate, GateRule::None);
    assert_eq!(p.level(Level::L1).gate, GateRule::Optional);
    for l in [Level::L2, Level::L3, Level::L4] {
        assert_eq!(p.level(l).gate, GateRule::Required);
    }
    for l in Level::ALL {
        assert_eq!(p.level(l).push, l >= Level::L3, "{l}");
    }
}

/// Copy the shipped files to a temp dir, apply `edit` to one of them, and load.
fn load_edited(file: &str, edit: impl Fn(&str) -> String) -> String {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(shipped_dir()).unwrap() {
        let entry = entry.unwrap();
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let name = entry.file_name().into_string().unwrap();
        let text = if name == file { edit(&text) } else { text };
        std::fs::write(dir.path().join(&name), text).unwrap();
    }
    load_dir(dir.path()).unwrap_err().to_string()
}

#[test]
fn malformed_files_name_file_and_field() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "L2.toml",
            "network = \"none\"",
            "network = \"bridge\"",
            "field `network`",
        ),
        (
            "L2.toml",
            "push = false",
            "push = false\nbogus = 1",
            "bogus",
        ),
        (
            "L1.toml",
            "attempts = 3",
            "attempts = 0",
            "field `limits.attempts`",
        ),
        (
            "L3.toml",
            "memory = \"2g\"",
            "memory = \"lots\"",
            "field `limits.memory`",
        ),
        (
            "L2.toml",
            "gate = \"required\"",
            "gate = \"optional\"",
            "field `gate`",
        ),
        ("L1.toml", "push = false", "push = true", "field `push`"),
        (
            "L0.toml",
            "checkout = \"read_only\"",
            "checkout = \"writable\"",
            "field `checkout`",
        ),
        (
            "L2.toml",
            "default = \"runc\"",
            "default = \"kata\"",
            "field `runtime.default`",
        ),
        (
            "L2.toml",
            "action = \"blocked\"",
            "action = \"shrug\"",
            "scope.protected[2].action",
        ),
        (
            "L4.toml",
            "level = \"L4\"",
            "level = \"L3\"",
            "field `level`",
        ),
        (
            "operator.toml",
            "cli = \"L3\"",
            "cli = \"L9\"",
            "field `sources.cli`",
        ),
        (
            "operator.toml",
            "cli = \"L3\"",
            "cli = \"L3\"\ntelepathy = \"L4\"",
            "sources.telepathy",
        ),
        (
            "operator.toml",
            "untrusted_max = \"L1\"",
            "",
            "untrusted_max",
        ),
    ];
    for (file, from, to, want) in cases {
        let e = load_edited(file, |t| {
            assert!(t.contains(from), "{file} lacks {from}");
            t.replacen(from, to, 1)
        });
        assert!(e.contains(file), "{file}: {e}");
        assert!(e.contains(want), "{file} {to}: want {want} in: {e}");
    }
}

#[test]
fn a_missing_level_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(shipped_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "L3.toml" {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    let e = load_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("L3.toml") && e.contains("cannot read"), "{e}");
}
