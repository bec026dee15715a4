//! A command that could not start is not a failure of the work: a gate command missing from
//! its image must end the task at once (`gate_not_runnable`), not be fed back to the agent and
//! retried until the budget runs out. Same for the agent's command (`agent_not_runnable`).

use crate::sandbox::Ended;

/// Bytes of a container's output looked at (the init's complaint is its first line).
const HEAD: usize = 4096;
/// At most this many lines of output for exit 126/127 to mean "did not start" (a shell's
/// `sh: python4: not found`), rather than a test run that happened to exit so.
const FEW_LINES: usize = 5;

/// Whether the container's command never ran: the init (tini under dockerd, catatonit under
/// Podman) could not exec it, or it exited 126 (not executable) / 127 (not found) having
/// printed next to nothing.
pub(super) fn could_not_start(ended: Ended, exit: Option<i64>, oom: bool, log: &[u8]) -> bool {
    if ended != Ended::Exited || oom {
        return false;
    }
    let head = String::from_utf8_lossy(&log[..log.len().min(HEAD)]);
    let init_failed = (head.contains("[FATAL tini") && head.contains(" failed"))
        || head.contains("failed to exec pid1");
    let few = head.lines().filter(|l| !l.trim().is_empty()).count() <= FEW_LINES;
    init_failed || (matches!(exit, Some(126 | 127)) && few)
}

/// What the person reads: the command, the image, the exit code and what was printed.
pub(super) fn message(
    role: &str,
    argv: &[String],
    image: &str,
    exit: Option<i64>,
    log: &[u8],
) -> String {
    let head = String::from_utf8_lossy(&log[..log.len().min(HEAD)]);
    let said = head
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no output)");
    let exit = exit.map_or("none".to_string(), |c| c.to_string());
    crate::artifacts::neutralise(&format!(
        "{role} command `{}` could not start in image `{image}` (exit {exit}): {said}; check that the program is installed in the image and on its PATH",
        argv.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_exec_failures_and_bare_127s_are_not_runnable() {
        let e = Ended::Exited;
        let tini = b"[FATAL tini (7)] exec python4 failed: No such file or directory\n";
        assert!(could_not_start(e, Some(127), false, tini));
        let catatonit = b"ERROR (catatonit:6): failed to exec pid1: No such file or directory\n";
        assert!(could_not_start(e, Some(1), false, catatonit));
        assert!(could_not_start(
            e,
            Some(127),
            false,
            b"sh: python4: not found\n"
        ));
        assert!(could_not_start(e, Some(126), false, b""));
        let long = "test output\n".repeat(50);
        assert!(!could_not_start(e, Some(127), false, long.as_bytes()));
        assert!(!could_not_start(
            e,
            Some(1),
            false,
            b"FAILED tests/test_x.py::test_a\n"
        ));
        assert!(!could_not_start(Ended::Timeout, Some(127), false, b""));
        assert!(!could_not_start(e, Some(127), true, b""));
    }

    #[test]
    fn the_message_names_the_command_the_image_and_what_it_said() {
        let m = message(
            "gate",
            &["python4".into(), "-m".into(), "pytest".into()],
            "airlock/demo:latest",
            Some(127),
            b"\n[FATAL tini (7)] exec python4 failed: No such file or directory\n",
        );
        assert!(m.contains("gate command `python4 -m pytest`"), "{m}");
        assert!(m.contains("image `airlock/demo:latest`"), "{m}");
        assert!(m.contains("exit 127"), "{m}");
        assert!(m.contains("exec python4 failed"), "{m}");
    }
}
