//! Cache eviction: mirrors and extracted trees unused for `cache_max_age` go, and past
//! `cache_bytes` the least recently used go first. An entry a live task uses is never
//! removed: every task holds a shared lock on `<entry>.use` while it lives, and eviction
//! removes only what it can lock exclusively without waiting.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::fcntl::{Flock, FlockArg};

use super::bounded::dir_bytes;
use super::WorkspaceError;
use crate::policy::prepare_limits::PrepareLimits;

/// Half-written entries (a prepare that died) older than this are removed too.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// One cached entry as eviction sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub bytes: u64,
    pub last_used: SystemTime,
}

/// Pure: which entries to evict (indices into `entries`), oldest first.
pub fn plan(entries: &[Entry], now: SystemTime, max_age: Duration, max_bytes: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|i| entries[*i].last_used);
    let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
    let mut out = Vec::new();
    for i in order {
        let age = now.duration_since(entries[i].last_used).unwrap_or_default();
        if age > max_age || total > max_bytes {
            total = total.saturating_sub(entries[i].bytes);
            out.push(i);
        }
    }
    out
}

/// A shared hold on `entry` for as long as the returned lock lives.
pub fn hold(entry: &Path) -> Result<Flock<File>, WorkspaceError> {
    let p = use_file(entry);
    let f = File::create(&p).map_err(WorkspaceError::io("create lock", &p))?;
    Flock::lock(f, FlockArg::LockShared).map_err(|(_, e)| WorkspaceError::io("lock", &p)(e.into()))
}

/// Mark `entry` as used now (its mtime orders eviction).
pub fn touch(entry: &Path) {
    if let Ok(f) = File::open(entry) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// Remember a tree's size so eviction does not walk it.
pub fn record_size(entry: &Path, bytes: u64) {
    let _ = fs::write(sidecar(entry, "bytes"), bytes.to_string());
}

/// Evict from `<cache>/repos` and `<cache>/trees`. Errors are logged: eviction never fails a
/// task.
pub fn evict_caches(cache: &Path, limits: &PrepareLimits, now: SystemTime) -> Vec<PathBuf> {
    let mut entries = Vec::new();
    for sub in ["repos", "trees"] {
        let dir = cache.join(sub);
        let Ok(list) = fs::read_dir(&dir) else {
            continue;
        };
        for e in list.flatten() {
            let path = e.path();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let name = e.file_name().to_string_lossy().into_owned();
            if !meta.is_dir() {
                continue;
            }
            let last_used = meta.modified().unwrap_or(now);
            if name.contains(".tmp-") {
                let stale = now.duration_since(last_used).unwrap_or_default() > STALE_TMP;
                if stale && fs::remove_dir_all(&path).is_ok() {
                    tracing::info!(path = %path.display(), "removed a half-written cache entry");
                }
                continue;
            }
            let bytes = fs::read_to_string(sidecar(&path, "bytes"))
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or_else(|| dir_bytes(&path));
            entries.push(Entry {
                path,
                bytes,
                last_used,
            });
        }
    }
    let mut removed = Vec::new();
    for i in plan(&entries, now, limits.cache_max_age, limits.cache_bytes) {
        let path = &entries[i].path;
        if remove_if_unused(path) {
            tracing::info!(path = %path.display(), bytes = entries[i].bytes, "evicted a cache entry");
            removed.push(path.clone());
        }
    }
    removed
}

/// Remove `entry` if no task holds it (and, for a mirror, no prepare is fetching into it).
fn remove_if_unused(entry: &Path) -> bool {
    let mut guards = Vec::new();
    let mirror_lock = entry.with_extension("lock");
    for p in [mirror_lock, use_file(entry)] {
        let Ok(f) = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&p)
        else {
            return false;
        };
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(g) => guards.push(g),
            Err(_) => return false,
        }
    }
    let ok = fs::remove_dir_all(entry).is_ok();
    let _ = fs::remove_file(sidecar(entry, "bytes"));
    ok
}

fn use_file(entry: &Path) -> PathBuf {
    sidecar(entry, "use")
}

fn sidecar(entry: &Path, ext: &str) -> PathBuf {
    let mut s = entry.as_os_str().to_owned();
    s.push(format!(".{ext}"));
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, bytes: u64, age_s: u64, now: SystemTime) -> Entry {
        Entry {
            path: name.into(),
            bytes,
            last_used: now - Duration::from_secs(age_s),
        }
    }

    #[test]
    fn old_entries_go_then_the_least_recently_used_past_the_size() {
        let now = SystemTime::now();
        let e = vec![
            entry("fresh-big", 60, 10, now),
            entry("old", 5, 100_000, now),
            entry("mid", 30, 500, now),
            entry("newer", 30, 100, now),
        ];
        let picked: Vec<&str> = plan(&e, now, Duration::from_secs(86_400), 100)
            .into_iter()
            .map(|i| e[i].path.to_str().unwrap())
            .collect();
        assert_eq!(picked, vec!["old", "mid"]);
        assert!(plan(&e, now, Duration::from_secs(86_400 * 10), 1000).is_empty());
    }

    #[test]
    fn held_entries_survive_and_free_ones_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let trees = tmp.path().join("trees");
        for n in ["a", "b"] {
            fs::create_dir_all(trees.join(n)).unwrap();
            fs::write(trees.join(n).join("f"), "x").unwrap();
        }
        let _held = hold(&trees.join("a")).unwrap();
        let limits = PrepareLimits {
            cache_max_age: Duration::from_secs(1),
            ..PrepareLimits::default()
        };
        let later = SystemTime::now() + Duration::from_secs(60);
        let removed = evict_caches(tmp.path(), &limits, later);
        assert_eq!(removed, vec![trees.join("b")]);
        assert!(trees.join("a").is_dir() && !trees.join("b").exists());
    }
}
