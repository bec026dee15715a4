//! [`Ended`]: how a container's run ended.

use serde::{Deserialize, Serialize};

/// How the container's run ended, as airlock saw it (never inferred from log text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// The process exited by itself.
    Exited,
    /// airlock stopped it at the deadline.
    Timeout,
    /// airlock stopped it because the task was cancelled (signal or API).
    Cancelled,
}

impl Ended {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::Exited => "exited",
            Ended::Timeout => "timeout",
            Ended::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_serde_names() {
        for e in [Ended::Exited, Ended::Timeout, Ended::Cancelled] {
            assert_eq!(serde_json::to_value(e).unwrap().as_str(), Some(e.as_str()));
        }
    }
}
