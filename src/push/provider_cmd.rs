//! The `command` token provider: an operator argv (never a shell string) that prints
//! `{"token": ..., "expires_at": ...}`, with a time limit. Its optional revoke command gets the
//! token on stdin, never in argv or the environment.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use secrecy::ExposeSecret;

use super::config::CommandProvider;
use super::error::MintError;
use super::token::{parse_output, Token};
use crate::secrets::Redactor;

const MAX_STDOUT: usize = 64 << 10;
const MAX_STDERR: usize = 4 << 10;

/// Run the provider and parse the token it prints. `env` tells it what the token is for.
pub fn mint(
    p: &CommandProvider,
    env: &[(&str, String)],
    now: SystemTime,
    max_ttl: Duration,
) -> Result<Token, MintError> {
    let out = run(&p.argv, env, None, p.timeout, &Redactor::new())?;
    parse_output(&out, &p.argv[0], now, max_ttl)
}

/// Run the revoke command, if any, with `{"token": ...}` on stdin.
pub fn revoke(
    p: &CommandProvider,
    env: &[(&str, String)],
    token: &Token,
    redactor: &Redactor,
) -> Result<bool, MintError> {
    let Some(argv) = &p.revoke else {
        return Ok(false);
    };
    let input = serde_json::json!({ "token": token.secret().expose_secret() }).to_string();
    let mut input = input.into_bytes();
    let result = run(argv, env, Some(&input), p.timeout, redactor);
    secrecy::zeroize::Zeroize::zeroize(&mut input);
    result.map(|_| true)
}

/// Run `argv`; its stdout on success. Failures carry the (redacted, capped) stderr only.
fn run(
    argv: &[String],
    env: &[(&str, String)],
    stdin: Option<&[u8]>,
    timeout: Duration,
    redactor: &Redactor,
) -> Result<Vec<u8>, MintError> {
    let program = argv[0].clone();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_remove("GIT_TRACE")
        .env_remove("GIT_CURL_VERBOSE")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|source| MintError::Spawn {
        program: program.clone(),
        source,
    })?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(data);
    }
    let out = capture(child.stdout.take(), MAX_STDOUT);
    let err = capture(child.stderr.take(), MAX_STDERR);
    let status = wait(&mut child, timeout).ok_or_else(|| MintError::Timeout {
        program: program.clone(),
        secs: timeout.as_secs(),
    })?;
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        let text = String::from_utf8_lossy(&redactor.redact(&stderr))
            .trim()
            .to_string();
        return Err(MintError::Failed {
            program,
            status: status.to_string(),
            stderr: crate::untrusted::neutralise(&text),
        });
    }
    Ok(stdout)
}

/// Read a pipe to its end, keeping the first `cap` bytes.
fn capture<R: Read + Send + 'static>(pipe: Option<R>, cap: usize) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let Some(mut pipe) = pipe else { return kept };
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = cap.saturating_sub(kept.len()).min(n);
            kept.extend_from_slice(&buf[..room]);
        }
        kept
    })
}

/// Wait for the child; past `timeout`, kill its whole process group (a helper such as
/// git-remote-http would otherwise keep the pipes open) and return `None`.
pub(super) fn wait(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(script: &str) -> CommandProvider {
        CommandProvider {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            revoke: None,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn prints_a_token_with_the_context_in_env() {
        let now = SystemTime::now();
        let exp = crate::push::token::rfc3339(now + Duration::from_secs(600));
        let p = provider(&format!(
            r#"printf '{{"token":"tok-%s-xyz","expires_at":"{exp}"}}' "$AIRLOCK_PUSH_REF""#
        ));
        let env = [("AIRLOCK_PUSH_REF", "agent-b".to_string())];
        let t = mint(&p, &env, now, Duration::from_secs(3600)).unwrap();
        assert_eq!(t.secret().expose_secret(), "tok-agent-b-xyz");
    }

    #[test]
    fn failure_and_timeout_are_named() {
        let now = SystemTime::now();
        let e = mint(
            &provider("echo vault sealed >&2; exit 3"),
            &[],
            now,
            Duration::from_secs(60),
        );
        let e = e.unwrap_err().to_string();
        assert!(
            e.contains("vault sealed") && e.contains("exit status: 3"),
            "{e}"
        );
        let mut slow = provider("sleep 30");
        slow.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let e = mint(&slow, &[], now, Duration::from_secs(60)).unwrap_err();
        assert!(matches!(e, MintError::Timeout { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let e = mint(
            &CommandProvider {
                argv: vec!["/nonexistent/mint".into()],
                ..provider("")
            },
            &[],
            now,
            Duration::from_secs(60),
        );
        assert!(e.unwrap_err().to_string().contains("/nonexistent/mint"));
    }
}
