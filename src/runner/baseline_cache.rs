//! The baseline cache: one file per (base commit, gate image id, gate commands, env, runtime)
//! under `<state>/baseline/`, written temp-then-rename with a format version, and a lock per
//! key so that concurrent tasks on one base compute it once.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::artifacts::write_atomic;
use crate::gate::Baseline;

/// Bumped when the file's meaning changes; other versions are ignored (recomputed).
pub(super) const FORMAT_VERSION: u32 = 1;

/// Everything the gate's behaviour on the base depends on that airlock controls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Key {
    pub base_commit: String,
    pub gate_image_id: String,
    pub commands: Vec<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub runtime: String,
}

impl Key {
    /// SHA-256 of the key: a file name nobody can steer into another key's (the full key is
    /// also stored and compared on load).
    pub fn stem(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        let d = ring::digest::digest(&ring::digest::SHA256, &bytes);
        d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    format_version: u32,
    key: Key,
    /// The task whose run computed it, and when.
    computed_by: String,
    created_at: String,
    baseline: Baseline,
}

/// Where the cache lives, created host-owned and private.
pub(super) fn dir(state_dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let d = state_dir.join("baseline");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)?;
    Ok(d)
}

/// The cached baseline for `key`, with the task that computed it; `None` when absent, of
/// another format version, for another key, or unreadable.
pub(super) fn load(dir: &Path, key: &Key) -> Option<(Baseline, String)> {
    let text = std::fs::read(dir.join(format!("{}.json", key.stem()))).ok()?;
    let file: CacheFile = serde_json::from_slice(&text).ok()?;
    (file.format_version == FORMAT_VERSION && file.key == *key)
        .then_some((file.baseline, file.computed_by))
}

pub(super) fn store(
    dir: &Path,
    key: &Key,
    task_id: &str,
    baseline: &Baseline,
) -> Result<(), String> {
    let file = CacheFile {
        format_version: FORMAT_VERSION,
        key: key.clone(),
        computed_by: task_id.into(),
        created_at: crate::artifacts::now_rfc3339(),
        baseline: baseline.clone(),
    };
    let bytes = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
    write_atomic(&dir.join(format!("{}.json", key.stem())), &bytes).map_err(|e| e.to_string())
}

/// Wait for the key's lock (another task may be computing the same baseline).
pub(super) fn lock(dir: &Path, key: &Key) -> Result<Flock<File>, String> {
    let path = dir.join(format!("{}.lock", key.stem()));
    let file = crate::artifacts::nofollow::open_append(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(commit: &str) -> Key {
        Key {
            base_commit: commit.into(),
            gate_image_id: "sha256:abc".into(),
            commands: vec![vec!["pytest".into()]],
            env: vec![],
            runtime: "runc".into(),
        }
    }

    #[test]
    fn round_trip_and_every_key_field_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let d = dir(tmp.path()).unwrap();
        let b = Baseline::default();
        assert!(load(&d, &key("a")).is_none());
        store(&d, &key("a"), "t1", &b).unwrap();
        assert_eq!(load(&d, &key("a")), Some((b, "t1".to_string())));
        assert!(load(&d, &key("b")).is_none());
        let mut other = key("a");
        other.gate_image_id = "sha256:def".into();
        assert_ne!(other.stem(), key("a").stem());
        other = key("a");
        other.commands[0].push("-x".into());
        assert_ne!(other.stem(), key("a").stem());
    }

    #[test]
    fn another_format_version_or_a_foreign_key_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let d = dir(tmp.path()).unwrap();
        store(&d, &key("a"), "t1", &Baseline::default()).unwrap();
        let p = d.join(format!("{}.json", key("a").stem()));
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &p,
            text.replace("\"format_version\": 1", "\"format_version\": 99"),
        )
        .unwrap();
        assert!(load(&d, &key("a")).is_none());
        // A file renamed onto another key's name is not that key's baseline.
        store(&d, &key("b"), "t2", &Baseline::default()).unwrap();
        std::fs::rename(d.join(format!("{}.json", key("b").stem())), &p).unwrap();
        assert!(load(&d, &key("a")).is_none());
    }
}
