//! A fake GitHub REST API on 127.0.0.1 that checks what the real one checks: the App JWT's RS256
//! signature against the App's public key and its claims, the headers and body shapes of
//! "create an installation access token", "create a pull request", "add labels" and "revoke an
//! installation access token". Minted tokens are granted on the test git server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use serde_json::{json, Value};

use super::git_server::{Grant, Grants};
use super::http::{Req, Resp, Server};

/// The App's key pair, made with openssl: PKCS#1 PEM (as GitHub issues it) and public DER.
pub struct AppKeys {
    pub pem: PathBuf,
    pub public_der: Vec<u8>,
}

impl AppKeys {
    pub fn generate(dir: &Path, name: &str) -> AppKeys {
        let pem = dir.join(format!("{name}.pem"));
        let der = dir.join(format!("{name}.pub.der"));
        let ok = Command::new("openssl")
            .args(["genrsa", "-traditional", "-out"])
            .arg(&pem)
            .arg("2048")
            .output()
            .map(|o| o.status.success());
        assert_eq!(
            ok.ok(),
            Some(true),
            "openssl is needed to make the test App key"
        );
        let ok = Command::new("openssl")
            .args(["rsa", "-in"])
            .arg(&pem)
            .args(["-RSAPublicKey_out", "-outform", "DER", "-out"])
            .arg(&der)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        AppKeys {
            pem,
            public_der: std::fs::read(der).unwrap(),
        }
    }
}

/// What the fake saw and did.
#[derive(Debug, Default)]
pub struct Record {
    /// `METHOD path` of every request.
    pub requests: Vec<String>,
    /// Every check that failed (each answered 4xx).
    pub violations: Vec<String>,
    pub minted: Vec<String>,
    pub revoked: Vec<String>,
    pub prs: Vec<Value>,
    pub labels: Vec<Value>,
}

pub struct FakeGithub {
    pub server: Server,
    pub record: Arc<Mutex<Record>>,
}

/// The fake's fixed facts.
#[derive(Clone)]
pub struct Setup {
    pub app_id: u64,
    pub installation_id: u64,
    pub owner: String,
    pub repo: String,
    pub public_der: Vec<u8>,
    pub grants: Grants,
}

impl FakeGithub {
    pub fn start(setup: Setup) -> FakeGithub {
        let record: Arc<Mutex<Record>> = Arc::default();
        let r = record.clone();
        let server = Server::start(Arc::new(move |req: Req| {
            let mut rec = r.lock().unwrap();
            rec.requests.push(format!("{} {}", req.method, req.path));
            match route(&setup, &req, &mut rec) {
                Ok(resp) => resp,
                Err((status, why)) => {
                    rec.violations
                        .push(format!("{} {}: {why}", req.method, req.path));
                    Resp::json(status, json!({ "message": why }))
                }
            }
        }));
        FakeGithub { server, record }
    }

    pub fn url(&self) -> String {
        self.server.url("")
    }
}

type Checked = Result<Resp, (u16, String)>;

fn route(s: &Setup, req: &Req, rec: &mut Record) -> Checked {
    common_headers(req)?;
    let mint_path = format!("/app/installations/{}/access_tokens", s.installation_id);
    let repo = format!("/repos/{}/{}", s.owner, s.repo);
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", p) if p == mint_path => mint(s, req, rec),
        ("POST", p) if p.starts_with("/app/installations/") => Err((404, "Not Found".into())),
        ("POST", p) if p == format!("{repo}/pulls") => pull(s, req, rec),
        ("POST", p) if p.starts_with(&format!("{repo}/issues/")) && p.ends_with("/labels") => {
            labels(req, rec)
        }
        ("DELETE", "/installation/token") => revoke(s, req, rec),
        _ => Err((404, "Not Found".into())),
    }
}

fn common_headers(req: &Req) -> Result<(), (u16, String)> {
    if req.header("accept") != Some("application/vnd.github+json") {
        return Err((
            415,
            format!(
                "Accept must be application/vnd.github+json, got {:?}",
                req.header("accept")
            ),
        ));
    }
    if req.header("x-github-api-version") != Some("2022-11-28") {
        return Err((400, "X-GitHub-Api-Version must be 2022-11-28".into()));
    }
    if req.header("user-agent").map_or(true, str::is_empty) {
        return Err((403, "a User-Agent is required".into()));
    }
    Ok(())
}

fn bearer(req: &Req) -> Result<&str, (u16, String)> {
    req.header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .ok_or((401, "Requires authentication".into()))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Verify the App JWT: RS256 signature with the public key, `iss`, `iat` and `exp`.
fn check_jwt(s: &Setup, jwt: &str) -> Result<(), (u16, String)> {
    let bad = |why: &str| (401, format!("A JSON web token could not be decoded: {why}"));
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, sig] = parts[..] else {
        return Err(bad("not three parts"));
    };
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|_| bad("header"))?)
            .map_err(|_| bad("header"))?;
    if header["alg"] != "RS256" {
        return Err(bad("alg must be RS256"));
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| bad("signature encoding"))?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &s.public_der)
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| bad("signature does not match the App's public key"))?;
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).map_err(|_| bad("claims"))?)
            .map_err(|_| bad("claims"))?;
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap_or(0),
        claims["exp"].as_u64().unwrap_or(0),
    );
    let iss_ok = claims["iss"] == json!(s.app_id) || claims["iss"] == json!(s.app_id.to_string());
    if !iss_ok {
        return Err(bad("iss is not this App"));
    }
    if iat > now() + 60 || exp <= now() || exp - iat > 600 {
        return Err((
            401,
            "'Expiration time' claim ('exp') is too far in the future or in the past".into(),
        ));
    }
    Ok(())
}

fn mint(s: &Setup, req: &Req, rec: &mut Record) -> Checked {
    check_jwt(s, bearer(req)?)?;
    let body = req.json();
    if body["repositories"] != json!([s.repo]) {
        return Err((
            422,
            format!(
                "repositories must be [\"{}\"], got {}",
                s.repo, body["repositories"]
            ),
        ));
    }
    if body["permissions"] != json!({ "contents": "write", "pull_requests": "write" }) {
        return Err((
            422,
            format!(
                "permissions must be contents+pull_requests write, got {}",
                body["permissions"]
            ),
        ));
    }
    let token = format!("ghs_{}", hex(18));
    let expires = SystemTime::now() + Duration::from_secs(3600);
    s.grants.lock().unwrap().insert(
        token.clone(),
        Grant {
            repo: format!("{}.git", s.repo),
            expires,
            ref_prefix: "refs/heads/agent/".into(),
        },
    );
    rec.minted.push(token.clone());
    Ok(Resp::json(
        201,
        json!({
            "token": token,
            "expires_at": humantime::format_rfc3339_seconds(expires).to_string(),
            "permissions": { "contents": "write", "pull_requests": "write", "metadata": "read" },
            "repository_selection": "selected",
            "repositories": [{ "name": s.repo, "full_name": format!("{}/{}", s.owner, s.repo) }],
        }),
    ))
}

fn live_token<'a>(req: &'a Req, rec: &Record) -> Result<&'a str, (u16, String)> {
    let t = bearer(req)?;
    if !rec.minted.iter().any(|m| m == t) || rec.revoked.iter().any(|r| r == t) {
        return Err((401, "Bad credentials".into()));
    }
    Ok(t)
}

fn pull(s: &Setup, req: &Req, rec: &mut Record) -> Checked {
    live_token(req, rec)?;
    let b = req.json();
    let ok = b["title"].is_string()
        // `agent/...`, or `<fork owner>:agent/...` for a branch pushed to a fork.
        && b["head"].as_str().is_some_and(|h| {
            let branch = h.split_once(':').map_or(h, |(owner, b)| {
                if owner.is_empty() || !owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    ""
                } else {
                    b
                }
            });
            branch.starts_with("agent/")
        })
        && b["base"] == "main"
        && b["body"].as_str().is_some_and(|x| !x.is_empty())
        && b["draft"] == true;
    if !ok {
        return Err((422, format!("Validation Failed: {b}")));
    }
    rec.prs.push(b);
    let number = 6 + rec.prs.len() as u64;
    Ok(Resp::json(
        201,
        json!({ "number": number, "html_url": format!("https://github.test/{}/{}/pull/{number}", s.owner, s.repo), "draft": true, "state": "open" }),
    ))
}

fn labels(req: &Req, rec: &mut Record) -> Checked {
    live_token(req, rec)?;
    let b = req.json();
    let Some(names) = b["labels"]
        .as_array()
        .filter(|l| l.iter().all(Value::is_string))
    else {
        return Err((422, "labels must be an array of names".into()));
    };
    let out: Vec<Value> = names.iter().map(|n| json!({ "name": n })).collect();
    rec.labels.push(b.clone());
    Ok(Resp::json(200, json!(out)))
}

fn revoke(s: &Setup, req: &Req, rec: &mut Record) -> Checked {
    let t = live_token(req, rec)?.to_string();
    s.grants.lock().unwrap().remove(&t);
    rec.revoked.push(t);
    Ok(Resp::empty(204))
}

pub fn hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}
