//! Copy a task's `events.jsonl` into the store as the runner appends to it.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Longest line kept; a longer one is cut (events are small JSON objects).
const MAX_LINE: usize = 1 << 20;
/// Most bytes read per call: a flood of events is copied in bounded steps, never all at once.
const MAX_READ: u64 = 4 << 20;

/// A reader of complete lines appended to a file since it was opened.
pub struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    /// Start at the file's current end, so a re-run's old events are not copied twice.
    pub fn from_end(path: PathBuf) -> Tail {
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Tail {
            path,
            offset,
            partial: Vec::new(),
        }
    }

    /// Complete lines appended since the last call (a missing file has none yet).
    pub fn read_lines(&mut self) -> Vec<String> {
        let mut buf = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&self.path) {
            if f.seek(SeekFrom::Start(self.offset)).is_ok() {
                let _ = f.take(MAX_READ).read_to_end(&mut buf);
            }
        }
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        self.split()
    }

    fn split(&mut self) -> Vec<String> {
        let Some(last_nl) = self.partial.iter().rposition(|b| *b == b'\n') else {
            if self.partial.len() > MAX_LINE {
                self.partial.clear();
            }
            return Vec::new();
        };
        let rest = self.partial.split_off(last_nl + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        done.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(&l[..l.len().min(MAX_LINE)]).into_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_only_complete_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        std::fs::write(&p, "{\"old\":1}\n").unwrap();
        let mut t = Tail::from_end(p.clone());
        assert!(t.read_lines().is_empty());
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"a\":1}\n{\"b\":").unwrap();
        assert_eq!(t.read_lines(), ["{\"a\":1}"]);
        f.write_all(b"2}\n").unwrap();
        assert_eq!(t.read_lines(), ["{\"b\":2}"]);
        assert!(t.read_lines().is_empty());
    }

    #[test]
    fn a_missing_file_has_no_lines() {
        let mut t = Tail::from_end("/nonexistent/events.jsonl".into());
        assert!(t.read_lines().is_empty());
    }
}
