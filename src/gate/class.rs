//! The six classes a reviewer sorts gate failures into.
//!
//! `kind` says what the tool reported (a panic, an assertion, an uncaught exception); `class`
//! says whose problem it is and what to do about it: fix the code (compile, test), look again
//! (flaky), fix the runner or the image (environment, dependency), or tidy up (lint).

use serde::{Deserialize, Serialize};

use super::FailureKind;

/// A failure's class, beside its `kind`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The code does not build, import or collect.
    Compile,
    /// A test ran and failed: an assertion, a panic, an uncaught exception.
    #[default]
    Test,
    /// Passed on a rerun, or failed on time (timeouts, deadlines).
    Flaky,
    /// The gate could not run as written: a missing command, permissions, an unrecognised exit.
    Environment,
    /// A missing package or module, or the network (which the sandbox does not have).
    Dependency,
    /// A linter or formatter.
    Lint,
}

impl FailureClass {
    /// The class a failure of `kind` belongs to before any rerun.
    pub fn of(kind: FailureKind) -> FailureClass {
        match kind {
            FailureKind::Compile => FailureClass::Compile,
            FailureKind::Assertion | FailureKind::Panic | FailureKind::Error => FailureClass::Test,
            FailureKind::Timeout => FailureClass::Flaky,
            FailureKind::Lint => FailureClass::Lint,
            FailureKind::Dependency | FailureKind::Network => FailureClass::Dependency,
            // Nothing a parser recognised: a command that failed without saying why, which is
            // how set-up failures look.
            FailureKind::Env | FailureKind::Unknown => FailureClass::Environment,
        }
    }

    /// The serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Compile => "compile",
            FailureClass::Test => "test",
            FailureClass::Flaky => "flaky",
            FailureClass::Environment => "environment",
            FailureClass::Dependency => "dependency",
            FailureClass::Lint => "lint",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_of_six_classes() {
        use FailureKind::*;
        let all = [
            Compile, Assertion, Panic, Error, Timeout, Lint, Env, Dependency, Network, Unknown,
        ];
        let classes: std::collections::HashSet<_> =
            all.iter().map(|k| FailureClass::of(*k)).collect();
        assert_eq!(classes.len(), 6, "{classes:?}");
        assert_eq!(FailureClass::of(Assertion).as_str(), "test");
        assert_eq!(FailureClass::of(Network).as_str(), "dependency");
        assert_eq!(
            serde_json::to_value(FailureClass::of(Timeout)).unwrap(),
            "flaky"
        );
    }
}
