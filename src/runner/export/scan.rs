//! Before the bundle is written, every artifact is read and checked for the secrets the task
//! held (in every encoded form); any file that holds one is removed, never bundled.

use std::path::Path;

use crate::secrets::Redactor;

/// Remove every file under `dir` that holds a secret; their paths relative to `dir`.
pub fn remove_hits(dir: &Path, redactor: &Redactor) -> Vec<String> {
    let mut hits = Vec::new();
    walk(dir, dir, redactor, &mut hits);
    hits.sort();
    hits
}

fn walk(root: &Path, dir: &Path, redactor: &Redactor, hits: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            walk(root, &path, redactor, hits);
        } else if ft.is_file() && holds_secret(&path, redactor) {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            match std::fs::remove_file(&path) {
                Ok(()) => hits.push(rel),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot remove an artifact holding a secret");
                    hits.push(format!("{rel} (could not be removed)"));
                }
            }
        }
    }
}

/// Unreadable files count as holding one: a file that cannot be checked is not bundled.
fn holds_secret(path: &Path, redactor: &Redactor) -> bool {
    match std::fs::read(path) {
        Ok(bytes) => redactor.contains(&bytes),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn removes_files_holding_any_form() {
        let dir = tempfile::tempdir().unwrap();
        let token = "ghs_scan_test_token_1234567";
        let b64 =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        std::fs::write(dir.path().join("clean.txt"), "nothing here").unwrap();
        std::fs::write(
            dir.path().join("logs/agent-1.log"),
            format!("Authorization: Basic {b64}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("url.txt"),
            format!("x={}", crate::secrets::url_encode(token)),
        )
        .unwrap();
        let mut r = Redactor::new();
        r.add(token);
        assert_eq!(
            remove_hits(dir.path(), &r),
            vec!["logs/agent-1.log", "url.txt"]
        );
        assert!(dir.path().join("clean.txt").exists());
        assert!(!dir.path().join("url.txt").exists());
    }
}
