//! Publishing a run's artifacts to the store every runner shares (`[artifacts] url`):
//! `tasks/<id>/<attempt>-<epoch>/…`, every file first and `manifest.json` (names, sizes,
//! SHA-256) last. The fenced finish then names the prefix; a prefix without a manifest, or one
//! no finish names, is never served. A failed upload ends the task `error` /
//! `artifact_store_failed` with the store's reason, and nothing is published.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, PutPayload, RetryConfig};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::config::{ArtifactStore, S3Artifacts};
use super::shared::Shared;
use crate::store::{Claimed, End};

/// Bound on one request to the object store (retries included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest artifact file published (bundles are capped well below this by the runner).
const MAX_FILE: u64 = 256 << 20;

/// Why the artifact store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("artifact store: {0}")]
    Store(#[from] object_store::Error),
    #[error("artifact store credentials {path}: {message}")]
    Credentials { path: PathBuf, message: String },
    #[error("artifact store: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The shared store and the key prefix everything goes under.
pub struct Artifacts {
    pub store: Arc<dyn ObjectStore>,
    pub root: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: Option<SecretString>,
}

/// Open the configured store (no request is sent yet).
pub fn open(config: &ArtifactStore) -> Result<Artifacts, PublishError> {
    match config {
        ArtifactStore::File(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| PublishError::Io {
                op: "create",
                path: dir.clone(),
                source,
            })?;
            Ok(Artifacts {
                store: Arc::new(LocalFileSystem::new_with_prefix(dir)?),
                root: String::new(),
            })
        }
        ArtifactStore::S3(s3) => open_s3(s3),
    }
}

fn open_s3(s3: &S3Artifacts) -> Result<Artifacts, PublishError> {
    let mut b = AmazonS3Builder::new()
        .with_bucket_name(&s3.bucket)
        .with_region(&s3.region)
        .with_retry(RetryConfig {
            max_retries: 2,
            retry_timeout: REQUEST_TIMEOUT,
            ..Default::default()
        })
        .with_client_options(
            ClientOptions::new()
                .with_timeout(REQUEST_TIMEOUT)
                .with_connect_timeout(Duration::from_secs(3)),
        );
    if let Some(e) = &s3.endpoint {
        b = b
            .with_endpoint(e)
            .with_allow_http(e.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    if let Some(path) = &s3.credentials_file {
        let c = read_credentials(path)?;
        b = b
            .with_access_key_id(c.access_key_id)
            .with_secret_access_key(c.secret_access_key.expose_secret());
        if let Some(t) = c.session_token {
            b = b.with_token(t.expose_secret());
        }
    }
    Ok(Artifacts {
        store: Arc::new(b.build()?),
        root: s3.prefix.clone(),
    })
}

fn read_credentials(path: &Path) -> Result<Credentials, PublishError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |message: String| PublishError::Credentials {
        path: path.to_path_buf(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(err("is readable by group or others; chmod 600 it".into()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    toml::from_str(&text).map_err(|e| {
        err(format!(
            "{} (expected access_key_id and secret_access_key)",
            e.message()
        ))
    })
}

/// The prefix of one run: `[root/]tasks/<id>/<attempt>-<epoch>`.
pub fn run_prefix(root: &str, id: &str, attempt: i64, epoch: i64) -> String {
    let key = format!("tasks/{id}/{attempt}-{epoch}");
    match root {
        "" => key,
        r => format!("{r}/{key}"),
    }
}

/// After a run (shared artifact store only): `Some(Ok(prefix))` once published, `Some(Err)`
/// with the reason if not; `None` without a shared store.
pub async fn after_run(ctx: &Shared, task: &Claimed, _end: &End) -> Option<Result<String, String>> {
    let a = ctx.artifacts.as_ref()?;
    let prefix = run_prefix(&a.root, &task.id, task.restarts + 1, task.epoch);
    let dir = ctx.config.artifacts_dir.join(&task.id);
    let r = upload(a, &dir, &prefix, task).await;
    Some(match r {
        Ok(n) => {
            tracing::info!(task = %task.id, prefix, files = n, "artifacts published");
            Ok(prefix)
        }
        Err(e) => {
            tracing::error!(task = %task.id, prefix, error = %e, "cannot publish the artifacts; nothing is published");
            Err(format!(
                "the artifacts could not be published to the artifact store: {e}"
            ))
        }
    })
}

async fn upload(
    a: &Artifacts,
    dir: &Path,
    prefix: &str,
    task: &Claimed,
) -> Result<usize, PublishError> {
    let files = tokio::task::spawn_blocking({
        let dir = dir.to_path_buf();
        move || list_files(&dir)
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
    .map_err(|source| PublishError::Io {
        op: "list",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut manifest = Vec::new();
    for rel in &files {
        let path = dir.join(rel);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| PublishError::Io {
                op: "read",
                path: path.clone(),
                source,
            })?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        let sha: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        manifest.push(json!({ "path": rel, "size": bytes.len(), "sha256": sha }));
        let key = ObjectPath::from(format!("{prefix}/{rel}"));
        a.store.put(&key, PutPayload::from(bytes)).await?;
    }
    let body = json!({ "task_id": task.id, "attempt": task.restarts + 1, "epoch": task.epoch, "files": manifest });
    let key = ObjectPath::from(format!("{prefix}/manifest.json"));
    a.store
        .put(&key, PutPayload::from(body.to_string().into_bytes()))
        .await?;
    Ok(files.len())
}

/// Regular files under `dir`, relative, sorted; symlinks and oversized files are skipped.
fn list_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let t = entry.file_type()?;
            let name = rel.join(entry.file_name());
            if t.is_dir() {
                stack.push(name);
            } else if t.is_file() && entry.metadata()?.len() <= MAX_FILE {
                if let Some(s) = name.to_str() {
                    out.push(s.to_string());
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_name_the_attempt_and_epoch() {
        assert_eq!(run_prefix("", "t-1", 1, 3), "tasks/t-1/1-3");
        assert_eq!(
            run_prefix("airlock/prod", "t-1", 2, 7),
            "airlock/prod/tasks/t-1/2-7"
        );
    }

    #[test]
    fn files_are_listed_relative_and_links_skipped() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("logs")).unwrap();
        std::fs::write(d.path().join("summary.json"), "{}").unwrap();
        std::fs::write(d.path().join("logs/agent-1.log"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("link")).unwrap();
        assert_eq!(
            list_files(d.path()).unwrap(),
            ["logs/agent-1.log", "summary.json"]
        );
    }
}
