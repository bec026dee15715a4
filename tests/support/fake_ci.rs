//! A fake forge CI API (GitHub's check runs, combined status and job logs; GitLab's pipelines,
//! jobs and traces) on 127.0.0.1, and a second "blob storage" server the GitHub log endpoint
//! redirects to. Both record every request. Payloads come from `tests/fixtures/ci/` (sources
//! named in its README).

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::http::{Handler, Req, Resp, Server};

/// What the CI of one commit looks like to the fake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Script {
    /// The `test` check fails (its log is the pytest failure fixture).
    Fails,
    Passes,
    /// Queued forever.
    NeverFinishes,
}

pub struct FakeCi {
    pub api: Server,
    pub blobs: Server,
    pub api_log: Arc<Mutex<Vec<Req>>>,
    pub blob_log: Arc<Mutex<Vec<Req>>>,
}

pub fn fixture(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ci")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn check_runs(script: Script) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("github/check-runs-failed.json")).unwrap();
    let runs = v["check_runs"].as_array_mut().unwrap();
    match script {
        Script::Fails => {}
        Script::Passes => runs[1]["conclusion"] = "success".into(),
        Script::NeverFinishes => {
            runs[1]["status"] = "queued".into();
            runs[1]["conclusion"] = serde_json::Value::Null;
        }
    }
    v
}

impl FakeCi {
    /// `script(sha)` decides each commit's CI.
    pub fn start(script: impl Fn(&str) -> Script + Send + Sync + 'static) -> FakeCi {
        let blob_log = Arc::new(Mutex::new(Vec::new()));
        let b = blob_log.clone();
        let blobs = Server::start(Arc::new(move |req: Req| {
            b.lock().unwrap().push(req);
            Resp {
                status: 200,
                headers: vec![("Content-Type".into(), "text/plain".into())],
                body: fixture("github/job-log.txt"),
            }
        }));
        let blob_url = blobs.url("/job-logs/4?sig=pre-signed");
        let api_log = Arc::new(Mutex::new(Vec::new()));
        let a = api_log.clone();
        let handler: Handler = Arc::new(move |req: Req| {
            a.lock().unwrap().push(req.clone());
            let p = req.path.as_str();
            if let Some(rest) = p.strip_prefix("/repos/acme/tasks-app/commits/") {
                let (sha, what) = rest.split_once('/').unwrap_or((rest, ""));
                return match what {
                    "check-runs" => Resp::json(200, check_runs(script(sha))),
                    "status" => Resp::json(
                        200,
                        serde_json::json!({ "state": "success", "statuses": [] }),
                    ),
                    _ => Resp::empty(404),
                };
            }
            if p == "/repos/acme/tasks-app/actions/jobs/4/logs" {
                return Resp {
                    status: 302,
                    headers: vec![("Location".into(), blob_url.clone())],
                    body: vec![],
                };
            }
            if p == "/projects/acme%2Ftasks-app/pipelines" {
                return Resp::json(200, serde_json::json!([{ "id": 6, "status": "failed" }]));
            }
            if p == "/projects/acme%2Ftasks-app/pipelines/6/jobs" {
                return Resp::json(
                    200,
                    serde_json::from_slice(&fixture("gitlab/jobs-failed.json")).unwrap(),
                );
            }
            if p == "/projects/acme%2Ftasks-app/jobs/6/trace" {
                return Resp {
                    status: 200,
                    headers: vec![],
                    body: fixture("gitlab/job-trace.txt"),
                };
            }
            Resp::empty(404)
        });
        FakeCi {
            api: Server::start(handler),
            blobs,
            api_log,
            blob_log,
        }
    }

    pub fn api_url(&self) -> String {
        self.api.url("")
    }
}
