//! [`Level`]: a task's permission level (contract).

use serde::{Deserialize, Serialize};

/// A permission level, L0 (read-only) to L4 (automation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    /// Read-only checkout, no gate: a report in `out/`.
    L0,
    /// Draft: writable checkout, optional gate, a diff artifact.
    L1,
    /// Branch edit: gated, a diff and a local branch.
    L2,
    /// Branch and PR: must be green; a pushed branch and a draft PR with a scoped token.
    L3,
    /// Automation: as L3, started by a label, comment command or schedule the policy allows.
    L4,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 5] = [Level::L0, Level::L1, Level::L2, Level::L3, Level::L4];

    /// The level written `text` (`"L0"` to `"L4"`), if there is one.
    pub fn parse(text: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == text)
    }

    /// The name as written in specs and `summary.json` (`"L2"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::L0 => "L0",
            Level::L1 => "L1",
            Level::L2 => "L2",
            Level::L3 => "L3",
            Level::L4 => "L4",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
