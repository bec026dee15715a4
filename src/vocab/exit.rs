//! [`Exit`]: the CLI's exit codes (contract).

/// How an `airlock` command exits (contract: `0` green · `1` finished, not green · `2` invalid
/// input, nothing ran · `3` refused by policy, nothing ran · `4` runner or engine fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `0`: green (a task), or done (a daemon command).
    Ok = 0,
    /// `1`: the task finished not green (needs_human, blocked, cancelled); for daemon commands,
    /// the task is not in a state that allows the request.
    NotGreen = 1,
    /// `2`: invalid input (spec, config, arguments, no such task); nothing ran.
    Invalid = 2,
    /// `3`: refused by policy; nothing ran.
    Refused = 3,
    /// `4`: runner or engine fault (or the daemon cannot be reached).
    Fault = 4,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> std::process::ExitCode {
        std::process::ExitCode::from(e as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_contract() {
        let codes: Vec<i32> = [
            Exit::Ok,
            Exit::NotGreen,
            Exit::Invalid,
            Exit::Refused,
            Exit::Fault,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 4]);
    }
}
