//! A level's `[output]` table: bounds on what the host keeps of a container's output. Every
//! byte a container prints is hostile input; each cut is recorded (`truncated` fields, a
//! marker in the text).

use serde::{Deserialize, Serialize};

use super::files::Ctx;
use super::PolicyError;
use crate::units::parse_bytes;

/// Bounds on captured output, per level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OutputLimits {
    /// One line as the gate parsers see it; the rest of a longer line is dropped.
    pub line_bytes: u64,
    /// Gate output handed to the parsers per command; the log still keeps head and tail.
    pub parse_bytes: u64,
    /// Structured failures kept per attempt (the rest are counted).
    pub failures: u64,
    /// Events written to `events.jsonl` per task (then one marker; the final ones always).
    pub events: u64,
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits {
            line_bytes: 16 << 10,
            parse_bytes: 2 << 20,
            failures: 100,
            events: 5000,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutput {
    line_bytes: String,
    parse_bytes: String,
    failures: i64,
    events: i64,
}

pub(super) fn output_limits(c: &Ctx, raw: Option<RawOutput>) -> Result<OutputLimits, PolicyError> {
    let Some(r) = raw else {
        return Ok(OutputLimits::default());
    };
    let bytes = |f: &str, v: &str, min: u64| {
        let b = parse_bytes(v).map_err(|m| c.err(&format!("output.{f}"), m))?;
        if b < min {
            return Err(c.err(
                &format!("output.{f}"),
                format!("`{v}` is below the minimum {min}"),
            ));
        }
        Ok(b)
    };
    let count = |f: &str, v: i64| {
        if !(1..=1_000_000).contains(&v) {
            return Err(c.err(
                &format!("output.{f}"),
                format!("`{v}` is out of range; accepted: 1 to 1000000"),
            ));
        }
        Ok(v as u64)
    };
    Ok(OutputLimits {
        line_bytes: bytes("line_bytes", &r.line_bytes, 256)?,
        parse_bytes: bytes("parse_bytes", &r.parse_bytes, 4096)?,
        failures: count("failures", r.failures)?,
        events: count("events", r.events)?.max(100),
    })
}
