//! Looking for a token anywhere: raw, base64 (alone and inside a Basic auth value, both
//! alphabets) and URL-encoded, in files, in bundles, in text.

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
use base64::Engine;

/// The forms to look for, computed here independently of airlock's own redactor.
pub fn forms(token: &str) -> Vec<String> {
    let url: String = token
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let basic = format!("x-access-token:{token}");
    vec![
        token.to_string(),
        url,
        STANDARD_NO_PAD.encode(token),
        URL_SAFE.encode(token).trim_end_matches('=').to_string(),
        STANDARD.encode(&basic).trim_end_matches('=').to_string(),
        URL_SAFE.encode(&basic).trim_end_matches('=').to_string(),
    ]
}

/// Panic naming `what` if `text` holds any form.
pub fn assert_text_clean(text: &str, token: &str, what: &str) {
    for f in forms(token) {
        assert!(!text.contains(&f), "{what} holds the token (as `{f}`)");
    }
}

/// Every file under `dir` (and inside every `.tar.gz` there) is free of every form.
pub fn assert_tree_clean(dir: &Path, token: &str) -> usize {
    let mut checked = 0;
    walk(dir, &mut |p| {
        let bytes = std::fs::read(p).unwrap_or_default();
        assert_text_clean(
            &String::from_utf8_lossy(&bytes),
            token,
            &p.display().to_string(),
        );
        checked += 1;
        if p.to_string_lossy().ends_with(".tar.gz") {
            let out = tempfile::tempdir().unwrap();
            let ok = std::process::Command::new("tar")
                .arg("-xzf")
                .arg(p)
                .arg("-C")
                .arg(out.path())
                .status()
                .unwrap();
            assert!(ok.success(), "cannot unpack {}", p.display());
            checked += assert_tree_clean(out.path(), token);
        }
    });
    checked
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            walk(&e.path(), f);
        } else if ft.is_file() {
            f(&e.path());
        }
    }
}

/// `docker inspect` of every airlock container seen while a run goes on.
pub struct InspectWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<Vec<(String, String)>>>,
}

impl InspectWatch {
    pub fn start() -> InspectWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut seen: Vec<(String, String)> = Vec::new();
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                for id in crate::common::managed_containers(None) {
                    if seen.iter().any(|(i, _)| *i == id) {
                        continue;
                    }
                    let out = std::process::Command::new("docker")
                        .args(["inspect", &id])
                        .output()
                        .unwrap();
                    if out.status.success() {
                        seen.push((id, String::from_utf8_lossy(&out.stdout).into_owned()));
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            seen
        });
        InspectWatch {
            stop,
            handle: Some(handle),
        }
    }

    /// The inspect JSON of each container labelled with `task_id`.
    pub fn finish(mut self, task_id: &str) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let all = self.handle.take().unwrap().join().unwrap();
        let label = format!("\"airlock.task\": \"{task_id}\"");
        all.into_iter()
            .filter(|(_, j)| j.contains(&label))
            .map(|(_, j)| j)
            .collect()
    }
}
