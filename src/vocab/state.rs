//! [`State`]: the final state of a task (contract).

use serde::{Deserialize, Serialize};

use super::Exit;

/// Final state of a task (contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The gate passed (or, without a gate, the agent finished).
    Green,
    /// Finished, not green: a human must look.
    NeedsHuman,
    /// A scope rule blocked the result.
    Blocked,
    /// Refused by policy before anything ran.
    Refused,
    /// Cancelled.
    Cancelled,
    /// A runner, engine, export or push fault.
    Error,
}

impl State {
    /// Every state.
    pub const ALL: [State; 6] = [
        State::Green,
        State::NeedsHuman,
        State::Blocked,
        State::Refused,
        State::Cancelled,
        State::Error,
    ];

    /// The CLI exit for a task that ran to this state (contract).
    pub fn exit(self) -> Exit {
        match self {
            State::Green => Exit::Ok,
            State::NeedsHuman | State::Blocked | State::Cancelled => Exit::NotGreen,
            State::Refused => Exit::Refused,
            State::Error => Exit::Fault,
        }
    }

    /// The CLI exit code for a task that ran to this state (contract).
    pub fn exit_code(self) -> i32 {
        self.exit().code()
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Green => "green",
            State::NeedsHuman => "needs_human",
            State::Blocked => "blocked",
            State::Refused => "refused",
            State::Cancelled => "cancelled",
            State::Error => "error",
        }
    }

    /// The state named `name`, if there is one.
    pub fn parse(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_serde_names_and_exits_are_the_contract() {
        for s in State::ALL {
            assert_eq!(serde_json::to_value(s).unwrap().as_str(), Some(s.as_str()));
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        let exits: Vec<i32> = State::ALL.iter().map(|s| s.exit_code()).collect();
        assert_eq!(exits, [0, 1, 1, 3, 1, 4]);
    }
}
