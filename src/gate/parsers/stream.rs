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
}

impl Default for StreamParser {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamParser {
    pub fn new() -> Self {
        StreamParser {
            dispatcher: Dispatcher::new(),
            pending: Vec::new(),
        }
    }

    /// Consume a chunk; returns failures completed by it (each failure is returned once).
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Failure> {
        self.pending.extend_from_slice(chunk);
        let Some(last_newline) = self.pending.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.pending.drain(..=last_newline).collect();
        let mut fresh = Vec::new();
        for line in complete[..last_newline].split(|b| *b == b'\n') {
            fresh.extend(self.dispatcher.push_line(&String::from_utf8_lossy(line)));
        }
        fresh
    }

    /// End of output: flush the last partial line and return every failure of the run.
    pub fn finish(mut self, exit_code: i64) -> Vec<Failure> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.dispatcher.push_line(&String::from_utf8_lossy(&rest));
        }
        self.dispatcher.finish(exit_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::parse_output;

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
