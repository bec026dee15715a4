//! [`ScopeVerdict`]: the outcome of the scope rules for one diff (`attempts[].scope`).

use serde::{Deserialize, Serialize};

use super::Reason;

/// The outcome of the scope rules for one diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum ScopeVerdict {
    /// Within scope.
    Ok,
    /// A human must look (a protected path).
    NeedsHuman {
        /// Which rule.
        reason: Reason,
        /// The paths it names.
        paths: Vec<String>,
    },
    /// The result is blocked (a forbidden path, too large, ...).
    Blocked {
        /// Which rule.
        reason: Reason,
        /// The paths it names.
        paths: Vec<String>,
    },
}
