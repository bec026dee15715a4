//! Captured container output: capped (head and tail kept, a marker between) and neutralised
//! (terminal control sequences rendered as visible text, so `cat`-ing a log is safe).

use std::collections::VecDeque;

/// A log being captured. Feed it chunks with arbitrary boundaries.
#[derive(Debug)]
pub struct CappedLog {
    head_cap: usize,
    tail_cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    omitted: u64,
    /// Bytes of an incomplete UTF-8 sequence from the end of the previous chunk.
    carry: Vec<u8>,
}

impl CappedLog {
    /// A log of at most about `cap` bytes: half head, half tail.
    pub fn new(cap: u64) -> Self {
        let cap = cap.max(64) as usize;
        CappedLog {
            head_cap: cap / 2,
            tail_cap: cap - cap / 2,
            head: Vec::new(),
            tail: VecDeque::new(),
            omitted: 0,
            carry: Vec::new(),
        }
    }

    /// Append `chunk` (any boundary, even mid-UTF-8), neutralised, to the head or the tail.
    pub fn push(&mut self, chunk: &[u8]) {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(chunk);
        let keep = incomplete_suffix(&bytes);
        self.carry = bytes.split_off(bytes.len() - keep);
        let clean = neutralise(&String::from_utf8_lossy(&bytes));
        self.store(clean.as_bytes());
    }

    fn store(&mut self, mut bytes: &[u8]) {
        let room = self.head_cap.saturating_sub(self.head.len());
        if room > 0 && self.tail.is_empty() {
            let n = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        self.tail.extend(bytes);
        while self.tail.len() > self.tail_cap {
            let excess = self.tail.len() - self.tail_cap;
            self.tail.drain(..excess);
            self.omitted += excess as u64;
        }
    }

    /// Bytes dropped from the middle so far.
    pub fn omitted(&self) -> u64 {
        self.omitted
    }

    /// The text as it will be written.
    pub fn finish(mut self) -> Vec<u8> {
        let carry = std::mem::take(&mut self.carry);
        if !carry.is_empty() {
            self.store(neutralise(&String::from_utf8_lossy(&carry)).as_bytes());
        }
        let mut out = self.head;
        if self.omitted > 0 {
            out.extend_from_slice(
                format!(
                    "\n[airlock: {} bytes omitted here; head and tail kept]\n",
                    self.omitted
                )
                .as_bytes(),
            );
        }
        out.extend(self.tail);
        out
    }
}

/// Length of a trailing incomplete (but so far valid) UTF-8 sequence.
fn incomplete_suffix(b: &[u8]) -> usize {
    for back in 1..=3.min(b.len()) {
        let byte = b[b.len() - back];
        if byte & 0xC0 == 0x80 {
            continue; // continuation byte; look further back for the lead
        }
        let need = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return 0,
        };
        return if need > back { back } else { 0 };
    }
    0
}

pub use crate::untrusted::neutralise;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_neutralised() {
        let s = neutralise("a\x1b[31mred\x1b]0;title\x07\u{9b}2J\rover\r\nok\tx");
        assert!(!s.contains('\x1b') && !s.contains('\x07') && !s.contains('\u{9b}'));
        assert_eq!(s, "a\\x1b[31mred\\x1b]0;title\\x07\\u{9b}2J\nover\nok\tx");
    }

    #[test]
    fn flood_keeps_head_and_tail_with_marker() {
        let mut log = CappedLog::new(1000);
        log.push(b"HEAD-START\n");
        for i in 0..10_000 {
            log.push(format!("line {i}\n").as_bytes());
        }
        log.push(b"TAIL-END\n");
        let out = String::from_utf8(log.finish()).unwrap();
        assert!(out.starts_with("HEAD-START"));
        assert!(out.ends_with("TAIL-END\n"));
        assert!(out.contains("bytes omitted"));
        assert!(out.len() < 1100);
    }

    #[test]
    fn utf8_split_across_chunks_survives() {
        let mut log = CappedLog::new(1000);
        let s = "héllo ✓ wörld".as_bytes();
        for b in s {
            log.push(&[*b]);
        }
        assert_eq!(String::from_utf8(log.finish()).unwrap(), "héllo ✓ wörld");
    }

    #[test]
    fn small_logs_are_kept_whole() {
        let mut log = CappedLog::new(1 << 20);
        log.push(b"just this\n");
        assert_eq!(log.finish(), b"just this\n");
    }
}
