//! Secret values and their redaction.
//!
//! A secret lives in a [`secrecy`] type (no `Debug`/`Display` of its value, zeroed on drop) and
//! is exposed only at the one call that must send it. Everything airlock writes while it holds a
//! secret goes through a [`Redactor`], which masks the secret and its base64 and URL-encoded
//! forms, in whole buffers or in streams split anywhere ([`StreamRedactor`]); the log writer
//! masks every secret registered with [`mask`].

mod forms;
mod global;
mod redact;

pub use forms::{forms, url_encode, MIN_SECRET_LEN};
pub use global::{mask, redact_logged, EventWriter, Held, MaskGuard, RedactingStderr};
pub use redact::{Redactor, StreamRedactor, REDACTED};
pub use secrecy::{ExposeSecret, SecretString};
