//! Incremental parsing of a gate's output while it still runs.
//!
//! The runner reads container logs in chunks of arbitrary size; a chunk may end in the middle
//! of a line or of a UTF-8 sequence. Only complete lines are handed to the engine. Splitting at
//! `\n` is safe for UTF-8 because the byte 0x0A never occurs inside a multi-byte sequence.

use super::dispatch::Dispatcher;
use crate::gate::Failure;

/// Feed chunks with [`feed`](Self::feed) to get failures as soon as they are complete; call
/// [`finish`](Self::finish) with the exit code to get the full list, identical to
/// [`parse_output`](crate::gate::parse_output) on the concatenated output.
pub struct StreamParser {
    dispatcher: Dispatcher,
    pending: Vec<u8>,
    limits: ParseLimits,
    /// Bytes handed to the parsers so far.
    parsed: u64,
    /// Inside a line longer than `line_bytes`: drop bytes until its newline.
    skipping: bool,
    cut: Truncation,
}

/// Bounds on what the parsers are fed (a gate's output is hostile: it may never end a line,
/// or print without end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Longest line kept whole; the rest of a longer line is dropped.
    pub line_bytes: usize,
    /// Bytes of output fed to the parsers; the rest is only counted.
    pub parse_bytes: u64,
    /// Failures kept; later ones are counted, not stored.
    pub failures: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            line_bytes: 16 << 10,
            parse_bytes: 2 << 20,
            failures: 100,
        }
    }
}

/// What the parsers did not see or keep (recorded in the summary as `truncated`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Truncation {
    /// Lines cut at `line_bytes`.
    pub lines_cut: u64,
    /// Bytes past `parse_bytes` that were not parsed.
    pub bytes_not_parsed: u64,
    /// Failures past the per-attempt cap.
    pub failures_omitted: u64,
}

impl Truncation {
    /// Whether anything was cut.
    pub fn any(&self) -> bool {
        *self != Truncation::default()
    }
}

impl Default for StreamParser {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamParser {
    /// A parser with the default [`ParseLimits`].
    pub fn new() -> Self {
        StreamParser::with_limits(ParseLimits::default())
    }

    /// A parser under `limits`: memory and time per chunk stay bounded whatever the output.
    pub fn with_limits(limits: ParseLimits) -> Self {
        StreamParser {
            dispatcher: Dispatcher::with_max_failures(limits.failures.max(1)),
            pending: Vec::new(),
            limits,
            parsed: 0,
            skipping: false,
            cut: Truncation::default(),
        }
    }

    /// Consume a chunk; returns failures completed by it (each failure is returned once).
    /// Work per chunk is linear in the chunk: the pending line never exceeds `line_bytes`.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Failure> {
        let mut fresh = Vec::new();
        for piece in chunk.split_inclusive(|b| *b == b'\n') {
            let ends_line = piece.last() == Some(&b'\n');
            let body = if ends_line {
                &piece[..piece.len() - 1]
            } else {
                piece
            };
            if !self.skipping {
                let room = self.limits.line_bytes.saturating_sub(self.pending.len());
                self.pending
                    .extend_from_slice(&body[..body.len().min(room)]);
                if body.len() > room {
                    self.skipping = true;
                    self.cut.lines_cut += 1;
                }
            }
            if ends_line {
                self.skipping = false;
                let line = std::mem::take(&mut self.pending);
                fresh.extend(self.parse_line(&line));
            }
        }
        fresh
    }

    fn parse_line(&mut self, line: &[u8]) -> Vec<Failure> {
        let cost = line.len() as u64 + 1;
        if self.parsed + cost > self.limits.parse_bytes {
            self.cut.bytes_not_parsed += cost;
            return Vec::new();
        }
        self.parsed += cost;
        self.dispatcher.push_line(&String::from_utf8_lossy(line))
    }

    /// What was cut so far.
    pub fn truncation(&self) -> Truncation {
        let mut t = self.cut;
        t.failures_omitted = self.dispatcher.omitted();
        t
    }

    /// End of output: flush the last partial line and return every failure of the run (at
    /// most `failures` of them) and what was cut.
    pub fn finish_bounded(mut self, exit_code: i64) -> (Vec<Failure>, Truncation) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.parse_line(&rest);
        }
        let mut cut = self.cut;
        let (mut all, omitted) = self.dispatcher.finish_counted(exit_code);
        let max = self.limits.failures.max(1);
        if all.len() > max {
            cut.failures_omitted += (all.len() - max) as u64;
            all.truncate(max);
        }
        cut.failures_omitted += omitted;
        (all, cut)
    }

    /// End of output: every failure of the run (see [`finish_bounded`](Self::finish_bounded)).
    pub fn finish(self, exit_code: i64) -> Vec<Failure> {
        self.finish_bounded(exit_code).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::parse_output;

    #[test]
    fn an_endless_line_is_cut_and_work_per_chunk_stays_small() {
        let mut p = StreamParser::with_limits(ParseLimits {
            line_bytes: 1000,
            ..ParseLimits::default()
        });
        let chunk = vec![b'A'; 64 << 10];
        let t = std::time::Instant::now();
        for _ in 0..2000 {
            p.feed(&chunk);
        }
        assert!(p.pending.len() <= 1000);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
        p.feed(b"\nx.py:1:1: E302 expected 2 blank lines\n");
        let (failures, cut) = p.finish_bounded(1);
        assert_eq!(cut.lines_cut, 1);
        assert!(failures.iter().any(|f| f.file.as_deref() == Some("x.py")));
    }

    #[test]
    fn a_flood_of_unique_failures_keeps_the_cap_and_counts_the_rest() {
        let limits = ParseLimits {
            failures: 50,
            parse_bytes: 1 << 20,
            ..ParseLimits::default()
        };
        let mut p = StreamParser::with_limits(limits);
        let mut streamed = 0;
        for i in 0..100_000 {
            streamed += p
                .feed(format!("f.py:{}:1: E302 x\n", i + 1).as_bytes())
                .len();
        }
        assert!(streamed <= 50, "{streamed} streamed");
        let (failures, cut) = p.finish_bounded(1);
        assert_eq!(failures.len(), 50);
        assert!(
            cut.failures_omitted > 0 && cut.bytes_not_parsed > 0,
            "{cut:?}"
        );
    }

    #[test]
    fn split_utf8_and_lines_match_batch_parsing() {
        let text = "x.py:1:1: E302 expected 2 blank lines — found 0\n";
        let mut parser = StreamParser::new();
        for byte in text.as_bytes() {
            parser.feed(std::slice::from_ref(byte));
        }
        assert_eq!(parser.finish(1), parse_output(text, 1));
    }

    #[test]
    fn last_line_without_newline_is_parsed() {
        let text = "sh: 1: pytestx: not found";
        let mut parser = StreamParser::new();
        assert!(parser.feed(text.as_bytes()).is_empty());
        let failures = parser.finish(127);
        assert_eq!(failures, parse_output(text, 127));
        assert_eq!(failures[0].message, text);
    }
}
