//! A real git smart-HTTP server for the tests: `git http-backend` (CGI) behind the test HTTP
//! server on 127.0.0.1. It accepts only a token it has granted, unexpired, for the repository
//! asked for, and (by a pre-receive hook) only refs under the grant's prefix. Pushes are never
//! forced (`receive.denyNonFastForwards`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::http::{Req, Resp, Server};

/// What a token may do.
#[derive(Debug, Clone)]
pub struct Grant {
    /// `tasks.git`
    pub repo: String,
    pub expires: SystemTime,
    /// `refs/heads/agent/`
    pub ref_prefix: String,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
}

pub type Grants = Arc<Mutex<HashMap<String, Grant>>>;

pub struct GitServer {
    pub server: Server,
    pub root: PathBuf,
    pub grants: Grants,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

const HOOK: &str = r#"#!/bin/sh
while read old new ref; do
  case "$ref" in
    "$TEST_REF_PREFIX"*) ;;
    *) echo "token may not push $ref (its scope is ${TEST_REF_PREFIX}*)" >&2; exit 1 ;;
  esac
done
"#;

impl GitServer {
    pub fn start(root: &Path) -> GitServer {
        std::fs::create_dir_all(root).unwrap();
        let grants: Grants = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (g, s, r) = (grants.clone(), seen.clone(), root.to_path_buf());
        let server = Server::start(Arc::new(move |req: Req| {
            let resp = serve(&r, &g, &req);
            s.lock().unwrap().push(Seen {
                method: req.method.clone(),
                path: req.path.clone(),
                query: req.query.clone(),
                status: resp.status,
            });
            resp
        }));
        GitServer {
            server,
            root: root.to_path_buf(),
            grants,
            seen,
        }
    }

    /// A bare copy of `from` served as `/<name>`, pushable, with the ref-scope hook.
    pub fn add_repo(&self, name: &str, from: &Path) {
        let dest = self.root.join(name);
        run(Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(from)
            .arg(&dest));
        for kv in [
            ["http.receivepack", "true"],
            ["receive.denyNonFastForwards", "true"],
            ["receive.denyDeletes", "true"],
        ] {
            run(Command::new("git")
                .arg("--git-dir")
                .arg(&dest)
                .arg("config")
                .args(kv));
        }
        let hook = dest.join("hooks/pre-receive");
        std::fs::write(&hook, HOOK).unwrap();
        run(Command::new("chmod").arg("+x").arg(&hook));
    }

    pub fn url(&self, repo: &str) -> String {
        self.server.url(&format!("/{repo}"))
    }

    pub fn grant(&self, token: &str, grant: Grant) {
        self.grants.lock().unwrap().insert(token.to_string(), grant);
    }

    /// The commit `refname` points at in `repo`, if any.
    pub fn ref_of(&self, repo: &str, refname: &str) -> Option<String> {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(self.root.join(repo))
            .args(["rev-parse", "--verify", "-q", refname])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `git <args>` in the served repo.
    pub fn git(&self, repo: &str, args: &[&str]) -> String {
        crate::common::git(&self.root.join(repo), args)
    }

    /// How many pushes (receive-pack POSTs) reached the server, whatever their outcome.
    pub fn receive_packs(&self) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == "POST" && s.path.ends_with("/git-receive-pack"))
            .count()
    }

    pub fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn serve(root: &Path, grants: &Grants, req: &Req) -> Resp {
    let repo = req
        .path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    let Some((user, token)) = basic(req) else {
        return unauthorized("no credentials");
    };
    let grant = match grants.lock().unwrap().get(&token) {
        None => return unauthorized("unknown token"),
        Some(g) if g.expires <= SystemTime::now() => return unauthorized("token expired"),
        Some(g) => g.clone(),
    };
    if grant.repo != repo {
        return Resp {
            status: 403,
            headers: vec![],
            body: format!("token is for {}, not {repo}\n", grant.repo).into_bytes(),
        };
    }
    cgi(root, req, &user, &grant)
}

fn unauthorized(why: &str) -> Resp {
    Resp {
        status: 401,
        headers: vec![("WWW-Authenticate".into(), "Basic realm=\"test\"".into())],
        body: format!("{why}\n").into_bytes(),
    }
}

/// `(user, token)` from `Authorization: Basic ...`.
fn basic(req: &Req) -> Option<(String, String)> {
    let b64 = req.header("authorization")?.strip_prefix("Basic ")?;
    let raw = String::from_utf8(STANDARD.decode(b64).ok()?).ok()?;
    let (u, t) = raw.split_once(':')?;
    Some((u.into(), t.into()))
}

fn cgi(root: &Path, req: &Req, user: &str, grant: &Grant) -> Resp {
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", root)
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &req.method)
        .env("PATH_INFO", &req.path)
        .env("QUERY_STRING", &req.query)
        .env("CONTENT_TYPE", req.header("content-type").unwrap_or(""))
        .env("CONTENT_LENGTH", req.body.len().to_string())
        .env("REMOTE_USER", user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("TEST_REF_PREFIX", &grant.ref_prefix)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(enc) = req.header("content-encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", enc);
    }
    if let Some(p) = req.header("git-protocol") {
        cmd.env("GIT_PROTOCOL", p);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let body = req.body.clone();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    parse_cgi(&out.stdout)
}

fn parse_cgi(out: &[u8]) -> Resp {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2)));
    let Some((at, sep)) = split else {
        return Resp {
            status: 500,
            headers: vec![],
            body: out.to_vec(),
        };
    };
    let mut resp = Resp {
        status: 200,
        headers: vec![],
        body: out[at + sep..].to_vec(),
    };
    for line in String::from_utf8_lossy(&out[..at]).lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        if k.eq_ignore_ascii_case("status") {
            resp.status = v
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(500);
        } else {
            resp.headers.push((k.trim().to_string(), v));
        }
    }
    resp
}
