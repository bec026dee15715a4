//! Reading a provider's real key on the host: from an owner-only file or an operator command.
//! The key goes straight into a [`SecretString`]; it is never logged, never in argv or a URL,
//! and never reaches a container.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;

use super::config::{KeySource, KEY_COMMAND_TIMEOUT};

/// Largest key accepted.
const MAX_KEY: usize = 16 << 10;

/// Why a key could not be read. Never carries the key.
#[derive(Debug, thiserror::Error)]
#[error("model provider `{provider}`: {message}")]
pub struct KeyError {
    /// The provider whose key it is.
    pub provider: String,
    /// What failed (never the key).
    pub message: String,
}

/// Read the key of `provider` from `source`.
pub fn read(provider: &str, source: &KeySource) -> Result<SecretString, KeyError> {
    let err = |message: String| KeyError {
        provider: provider.into(),
        message,
    };
    let bytes = match source {
        KeySource::File(path) => from_file(path).map_err(err)?,
        KeySource::Command(argv) => from_command(argv, KEY_COMMAND_TIMEOUT).map_err(err)?,
    };
    let text = String::from_utf8(bytes).map_err(|_| KeyError {
        provider: provider.into(),
        message: "the key is not UTF-8".into(),
    })?;
    let key = text.trim();
    if key.is_empty() || key.len() > MAX_KEY || key.chars().any(|c| c.is_control()) {
        return Err(KeyError {
            provider: provider.into(),
            message: format!(
                "the key is empty, longer than {MAX_KEY} bytes, or holds control characters"
            ),
        });
    }
    Ok(SecretString::from(key.to_string()))
}

/// The mode is checked again at read time: it may have changed since the policies loaded.
fn from_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("key_file `{}`: {e}", path.display()))?;
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "key_file `{}` has mode {:04o}; it must be readable by its owner only (chmod 600)",
            path.display(),
            meta.mode() & 0o777
        ));
    }
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY as u64 + 1).read_to_end(&mut buf))
        .map_err(|e| format!("key_file `{}`: {e}", path.display()))?;
    Ok(buf)
}

fn from_command(argv: &[String], timeout: Duration) -> Result<Vec<u8>, String> {
    let program = argv.first().cloned().unwrap_or_default();
    let mut child = Command::new(&program)
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("key_command `{program}` cannot start: {e}"))?;
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(out) = stdout {
            let _ = out.take(MAX_KEY as u64 + 1).read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                return Err(format!(
                    "key_command `{program}` did not finish within {}s",
                    timeout.as_secs()
                ));
            }
        }
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("key_command `{program}` failed ({status})"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn file_keys_are_trimmed_and_mode_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, "sk-real-key-123\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let k = read("anthropic", &KeySource::File(p.clone())).unwrap();
        assert_eq!(k.expose_secret(), "sk-real-key-123");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read("anthropic", &KeySource::File(p))
            .unwrap_err()
            .to_string();
        assert!(e.contains("0644") && e.contains("anthropic"), "{e}");
        assert!(!e.contains("sk-real"), "{e}");
    }

    #[test]
    fn command_keys_and_failures() {
        let ok = KeySource::Command(vec!["sh".into(), "-c".into(), "echo sk-cmd-key".into()]);
        assert_eq!(read("p", &ok).unwrap().expose_secret(), "sk-cmd-key");
        let bad = KeySource::Command(vec!["sh".into(), "-c".into(), "echo sk-x; exit 3".into()]);
        let e = read("p", &bad).unwrap_err().to_string();
        assert!(e.contains("failed") && !e.contains("sk-x"), "{e}");
        let slow = from_command(&["sleep".into(), "5".into()], Duration::from_millis(200));
        assert!(slow.unwrap_err().contains("did not finish"));
    }
}
