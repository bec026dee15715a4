//! The push itself: host git, hardened, from a host-owned repository, to the pinned URL. The
//! token reaches git only through environment-only config (`GIT_CONFIG_COUNT`/`KEY`/`VALUE`, an
//! `http.<url>.extraHeader` scoped to the pinned URL): never argv, a URL or a file. Everything
//! git prints is redacted as it streams in.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use super::error::PushError;
use super::outcome::{classify, GitOutput, Pushed};
use crate::secrets::Redactor;

/// Config for every git run that carries the token, on top of the host hardening.
pub const PUSH_HARDENING: &[&str] = &[
    "transfer.credentialsInUrl=die",
    "http.followRedirects=false",
    "push.recurseSubmodules=no",
    "push.gpgSign=false",
    "push.followTags=false",
    "submodule.recurse=false",
];
const TIMEOUT: Duration = Duration::from_secs(300);
const MAX_OUTPUT: usize = 16 << 10;

/// Where to push and as whom.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The push URL (validated by `push.toml`'s loader).
    pub url: &'a str,
    /// The one ref pushed.
    pub refname: &'a str,
    /// The commit it is set to.
    pub commit: &'a str,
    /// The user name sent with the token.
    pub auth_user: &'a str,
}

/// Hardened git in `git_dir`, carrying `token` for `url` only.
pub fn command(git_dir: &Path, url: &str, user: &str, token: &SecretString) -> Command {
    let mut cmd = crate::hostgit::git(git_dir);
    for c in PUSH_HARDENING {
        cmd.arg("-c").arg(c);
    }
    // The operator's proxy for https (the host git environment is otherwise cleared).
    if url.starts_with("https://") {
        for k in ["https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"] {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
    }
    let basic = STANDARD.encode(format!("{user}:{}", token.expose_secret()));
    cmd.env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", format!("http.{url}.extraHeader"))
        .env(
            "GIT_CONFIG_VALUE_0",
            format!("Authorization: Basic {basic}"),
        );
    cmd
}

/// Push `commit` to `refname` (never forced). `Ok` says whether the ref was already there.
pub fn push(
    git_dir: &Path,
    t: Target,
    token: &SecretString,
    redactor: &Redactor,
) -> Result<Pushed, PushError> {
    let mut cmd = command(git_dir, t.url, t.auth_user, token);
    cmd.args(["push", "--porcelain", "--no-verify", t.url])
        .arg(format!("{}:{}", t.commit, t.refname));
    let out = run(cmd, "push", t.url, redactor)?;
    classify(&out, t)
}

/// The commit `refname` points at on the remote, if it exists.
pub fn remote_ref(
    git_dir: &Path,
    t: Target,
    token: &SecretString,
    redactor: &Redactor,
) -> Result<Option<String>, PushError> {
    let mut cmd = command(git_dir, t.url, t.auth_user, token);
    cmd.args(["ls-remote", "--refs", t.url, t.refname]);
    let out = run(cmd, "ls-remote", t.url, redactor)?;
    if !out.status.success() {
        return Err(super::outcome::failure("ls-remote", &out, t));
    }
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .find(|(_, r)| *r == t.refname)
        .map(|(sha, _)| sha.to_string()))
}

/// Run git with a time limit, both pipes redacted as they stream.
fn run(
    mut cmd: Command,
    op: &'static str,
    url: &str,
    redactor: &Redactor,
) -> Result<GitOutput, PushError> {
    let spawn_err = |e: std::io::Error| PushError::Git {
        op,
        url: url.into(),
        message: format!("cannot run git: {e}"),
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(spawn_err)?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    std::thread::scope(|s| {
        let out = s.spawn(|| capture(stdout, redactor));
        let err = s.spawn(|| capture(stderr, redactor));
        let status = super::provider_cmd::wait(&mut child, TIMEOUT);
        let (stdout, stderr) = (
            out.join().unwrap_or_default(),
            err.join().unwrap_or_default(),
        );
        match status {
            Some(status) => Ok(GitOutput {
                status,
                stdout,
                stderr,
            }),
            None => Err(PushError::Git {
                op,
                url: url.into(),
                message: format!("no answer within {}s; git was killed", TIMEOUT.as_secs()),
            }),
        }
    })
}

/// Read a pipe through a stream redactor, keeping the first [`MAX_OUTPUT`] bytes.
fn capture<R: Read>(pipe: Option<R>, redactor: &Redactor) -> String {
    let Some(mut pipe) = pipe else {
        return String::new();
    };
    let mut stream = redactor.stream();
    let (mut kept, mut buf) = (Vec::new(), [0u8; 4096]);
    while let Ok(n) = pipe.read(&mut buf) {
        if n == 0 {
            break;
        }
        let clean = stream.push(&buf[..n]);
        kept.extend_from_slice(&clean[..clean.len().min(MAX_OUTPUT.saturating_sub(kept.len()))]);
    }
    let tail = stream.finish();
    kept.extend_from_slice(&tail[..tail.len().min(MAX_OUTPUT.saturating_sub(kept.len()))]);
    crate::untrusted::neutralise(&String::from_utf8_lossy(&kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_only_in_env_config() {
        let token = SecretString::from("ghs_unit_test_token_9876");
        let cmd = command(
            Path::new("/tmp/x.git"),
            "https://h/a/b.git",
            "x-access-token",
            &token,
        );
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into()).collect();
        assert!(!args.iter().any(|a| a.contains("ghs_unit")), "{args:?}");
        assert!(args.iter().any(|a| a == "transfer.credentialsInUrl=die"));
        let envs: Vec<(String, String)> = cmd
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into(),
                    v.map(|v| v.to_string_lossy().into()).unwrap_or_default(),
                )
            })
            .collect();
        assert!(!envs
            .iter()
            .any(|(k, _)| k.starts_with("GIT_TRACE") || k == "GIT_CURL_VERBOSE"));
        let key = envs.iter().find(|(k, _)| k == "GIT_CONFIG_KEY_0").unwrap();
        assert_eq!(key.1, "http.https://h/a/b.git.extraHeader");
        let value = &envs
            .iter()
            .find(|(k, _)| k == "GIT_CONFIG_VALUE_0")
            .unwrap()
            .1;
        let basic = STANDARD
            .decode(value.strip_prefix("Authorization: Basic ").unwrap())
            .unwrap();
        assert_eq!(basic, b"x-access-token:ghs_unit_test_token_9876");
    }
}
