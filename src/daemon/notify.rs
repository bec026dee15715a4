//! Notify hooks on every final state: the operator's command (argv, summary JSON on stdin)
//! and/or a plain-HTTP webhook POST. Each runs in the background under a timeout; failures are
//! logged and never block the queue.

use std::process::Stdio;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::config::{Notify, Webhook};

/// Most hooks running at once; the rest wait their turn in the background.
const MAX_PARALLEL: usize = 4;

/// Runs the configured hooks.
#[derive(Clone)]
pub struct Notifier {
    config: Arc<Notify>,
    permits: Arc<Semaphore>,
}

impl Notifier {
    pub fn new(config: Notify) -> Notifier {
        Notifier {
            config: Arc::new(config),
            permits: Arc::new(Semaphore::new(MAX_PARALLEL)),
        }
    }

    /// Fire the hooks for one task's final summary (JSON) and return at once.
    pub fn send(&self, task_id: &str, summary: String) {
        if self.config.command.is_none() && self.config.webhook.is_none() {
            return;
        }
        let (me, id) = (self.clone(), task_id.to_string());
        tokio::spawn(async move {
            let Ok(_permit) = me.permits.acquire().await else {
                return;
            };
            let timeout = me.config.timeout;
            if let Some(argv) = &me.config.command {
                let r = tokio::time::timeout(timeout, run_command(argv, &id, &summary)).await;
                log_failure(
                    &id,
                    "command",
                    r.unwrap_or_else(|_| Err("timed out".into())),
                );
            }
            if let Some(hook) = &me.config.webhook {
                let r = tokio::time::timeout(timeout, post(hook, summary)).await;
                log_failure(
                    &id,
                    "webhook",
                    r.unwrap_or_else(|_| Err("timed out".into())),
                );
            }
        });
    }
}

fn log_failure(id: &str, hook: &str, r: Result<(), String>) {
    if let Err(e) = r {
        tracing::warn!(task = id, hook, error = %e, "notify hook failed");
    }
}

/// The command gets a minimal environment: PATH and the task id; no daemon secrets.
async fn run_command(argv: &[String], id: &str, summary: &str) -> Result<(), String> {
    let mut child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("AIRLOCK_TASK_ID", id)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start `{}`: {e}", argv[0]))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(summary.as_bytes()).await;
    }
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` exited with {status}", argv[0]))
    }
}

async fn post(hook: &Webhook, summary: String) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect((hook.host.as_str(), hook.port))
        .await
        .map_err(|e| format!("{hook}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{hook}: {e}"))?;
    tokio::spawn(conn);
    let req = hyper::Request::post(&hook.path)
        .header("host", format!("{}:{}", hook.host, hook.port))
        .header("content-type", "application/json")
        .header("user-agent", concat!("airlock/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(Bytes::from(summary)))
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("{hook}: {e}"))?;
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{hook} answered {status}"))
    }
}
