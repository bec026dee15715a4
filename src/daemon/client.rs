//! The CLI's side of the API: the daemon's errors over [`crate::unixhttp`], and preparing a task
//! spec for submission (the client reads `issue.file` and makes local paths absolute, so the
//! daemon never reads files on a client's behalf).

use std::path::{Path, PathBuf};

use crate::unixhttp::UnixHttpError;
pub use crate::unixhttp::{Client, Reply};

/// Talking to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers on the socket.
    #[error("cannot reach the airlock daemon at {}: {source}; is it running (`airlock daemon`, or `systemctl status airlock`)? Set --socket or AIRLOCK_SOCKET if it listens elsewhere", socket.display())]
    Connect {
        /// The socket's path.
        socket: PathBuf,
        /// Why `connect(2)` failed.
        source: std::io::Error,
    },
    /// Connected, but the HTTP exchange failed.
    #[error("the daemon at {}: {message}", socket.display())]
    Http {
        /// The socket's path.
        socket: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl From<UnixHttpError> for ClientError {
    fn from(e: UnixHttpError) -> Self {
        match e {
            UnixHttpError::Connect { socket, source } => ClientError::Connect { socket, source },
            UnixHttpError::Http { socket, message } => ClientError::Http { socket, message },
        }
    }
}

/// The spec at `path` made self-contained for the API: `issue.file` read and inlined as
/// `issue.text`, a relative local `repo.url` made absolute (both relative to the spec's dir).
/// Returns the name to show in messages and the TOML to send.
pub fn prepare_submission(path: &Path) -> Result<(String, String), String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{shown}: cannot read the task spec: {e}"))?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{shown}: {}", e.to_string().trim_end()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    inline_issue(&mut table, dir).map_err(|m| format!("{shown}: field `issue.file`: {m}"))?;
    absolute_repo(&mut table, dir).map_err(|m| format!("{shown}: field `repo.url`: {m}"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = toml::to_string(&table).map_err(|e| format!("{shown}: {e}"))?;
    Ok((name, out))
}

fn inline_issue(table: &mut toml::Table, dir: &Path) -> Result<(), String> {
    let Some(issue) = table.get_mut("issue").and_then(|i| i.as_table_mut()) else {
        return Ok(());
    };
    let Some(file) = issue.get("file").and_then(|f| f.as_str()).map(String::from) else {
        return Ok(());
    };
    if issue.contains_key("text") {
        return Ok(()); // both given: the daemon names the error
    }
    let p = dir.join(&file);
    let bytes = std::fs::read(&p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
    issue.remove("file");
    issue.insert(
        "text".into(),
        toml::Value::String(String::from_utf8_lossy(&bytes).into_owned()),
    );
    Ok(())
}

fn absolute_repo(table: &mut toml::Table, dir: &Path) -> Result<(), String> {
    let Some(repo) = table.get_mut("repo").and_then(|r| r.as_table_mut()) else {
        return Ok(());
    };
    let Some(url) = repo.get("url").and_then(|u| u.as_str()).map(String::from) else {
        return Ok(());
    };
    let local = match url.strip_prefix("file://") {
        Some(l) => l,
        None if url.contains("://") || url.contains("::") => return Ok(()),
        None => url.as_str(),
    };
    if local.starts_with('/') {
        return Ok(());
    }
    let abs = std::fs::canonicalize(dir.join(local))
        .map_err(|e| format!("repository `{local}` cannot be opened: {e}"))?;
    repo.insert(
        "url".into(),
        toml::Value::String(abs.to_string_lossy().into_owned()),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submissions_are_made_self_contained() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src.git")).unwrap();
        std::fs::write(dir.path().join("issue.md"), "Fix the bug\n").unwrap();
        let spec = dir.path().join("task.toml");
        std::fs::write(&spec, "title = \"t\"\n[repo]\nurl = \"src.git\"\nbase = \"main\"\n[issue]\nfile = \"issue.md\"\n").unwrap();
        let (name, text) = prepare_submission(&spec).unwrap();
        assert_eq!(name, "task.toml");
        let t: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(t["issue"]["text"].as_str(), Some("Fix the bug\n"));
        assert!(t["issue"].get("file").is_none());
        let url = t["repo"]["url"].as_str().unwrap();
        assert!(url.starts_with('/') && url.ends_with("src.git"), "{url}");
        assert!(crate::daemon::api::api_rules(&t).is_ok());
    }

    #[test]
    fn remote_urls_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("t.toml");
        std::fs::write(
            &spec,
            "[repo]\nurl = \"https://example.org/x.git\"\n[issue]\ntext = \"x\"\n",
        )
        .unwrap();
        let (_, text) = prepare_submission(&spec).unwrap();
        assert!(text.contains("https://example.org/x.git"));
    }

    #[test]
    fn a_missing_issue_file_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("t.toml");
        std::fs::write(&spec, "[issue]\nfile = \"nope.md\"\n").unwrap();
        let e = prepare_submission(&spec).unwrap_err();
        assert!(e.contains("field `issue.file`"), "{e}");
    }
}
