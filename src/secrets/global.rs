//! The secrets the process holds right now, masked in everything it logs: the tracing writer
//! ([`RedactingStderr`]) runs every event through them, whatever crate produced it.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};

use super::Redactor;

static MASKS: Mutex<Vec<(u64, Arc<Redactor>)>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(1);

/// Masks a secret in every log line until dropped.
#[derive(Debug)]
#[must_use = "the secret is masked only while the guard lives"]
pub struct MaskGuard {
    id: u64,
}

/// Mask `secret` (and its encoded forms) in every log line from now until the guard drops.
pub fn mask(secret: &SecretString) -> MaskGuard {
    let mut r = Redactor::new();
    r.add(secret.expose_secret());
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    masks().push((id, Arc::new(r)));
    MaskGuard { id }
}

impl Drop for MaskGuard {
    fn drop(&mut self) {
        masks().retain(|(id, _)| *id != self.id);
    }
}

fn masks() -> std::sync::MutexGuard<'static, Vec<(u64, Arc<Redactor>)>> {
    MASKS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The secrets one task holds: a [`Redactor`] for what it writes, and the log masks, which are
/// lifted when this is dropped.
#[derive(Debug, Default)]
pub struct Held {
    /// Masks the task's secrets in what it writes.
    pub redactor: Redactor,
    guards: Vec<MaskGuard>,
}

impl Held {
    /// Hold `secret`: redact it from the task's output and mask it in airlock's own log from now on.
    pub fn add(&mut self, secret: &SecretString) {
        self.redactor.add(secret.expose_secret());
        self.guards.push(mask(secret));
    }
}

/// `bytes` with every secret currently masked replaced.
pub fn redact_logged(bytes: &[u8]) -> Vec<u8> {
    let active: Vec<Arc<Redactor>> = masks().iter().map(|(_, r)| r.clone()).collect();
    active
        .iter()
        .fold(bytes.to_vec(), |text, r| r.redact(&text))
}

/// A `tracing_subscriber` writer for stderr that masks every registered secret. Each event is
/// buffered whole and redacted before it is written, so no write boundary can split a secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingStderr;

/// One event being formatted.
#[derive(Debug, Default)]
pub struct EventWriter {
    buf: Vec<u8>,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> EventWriter {
        EventWriter::default()
    }
}

impl Write for EventWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = std::io::stderr()
                .lock()
                .write_all(&redact_logged(&self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_while_the_guard_lives() {
        let secret = SecretString::from("global-test-secret-4f2a9c");
        let line = b"token=global-test-secret-4f2a9c end";
        {
            let _g = mask(&secret);
            assert_eq!(redact_logged(line), b"token=[REDACTED] end");
        }
        assert_eq!(redact_logged(line), line);
    }
}
