//! Was it this branch? The gate's behaviour on the untouched base, and what an attempt's gate
//! run means next to it: which failures were already there (same signature fails on the base),
//! and which tests the base ran that the attempt no longer reports.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::red_flags::flag;
use super::{
    reported_test_ids, test_counts, Failure, FailureKind, FailureOrigin as Origin, RedFlag,
    RedFlagKind, TestCounts,
};

/// How one gate command behaved on the untouched base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseCommand {
    /// The command, as the gate ran it.
    pub argv: Vec<String>,
    /// Its exit code, when it exited.
    pub exit_code: Option<i64>,
    /// It ended by exiting (not by a timeout, OOM or cancel).
    pub exited: bool,
    /// From the runner's summary line; `None` when it printed none.
    pub counts: Option<TestCounts>,
    /// Ids of the tests it reported; `None` when the runner prints none or the log was cut.
    pub test_ids: Option<Vec<String>>,
    /// The failures parsed from its output.
    pub failures: Vec<Failure>,
}

/// The gate on the base: every command, run whatever the previous one did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// One entry per gate command, in the gate's order.
    pub commands: Vec<BaseCommand>,
}

impl Baseline {
    /// Describe one command's run on the base from its output.
    pub fn command(
        argv: Vec<String>,
        exit_code: Option<i64>,
        exited: bool,
        output: &str,
        truncated: bool,
        failures: Vec<Failure>,
    ) -> BaseCommand {
        BaseCommand {
            argv,
            exit_code,
            exited,
            counts: test_counts(output),
            test_ids: (!truncated).then(|| reported_test_ids(output)).flatten(),
            failures,
        }
    }

    fn fails(&self, signature: &str) -> bool {
        self.commands
            .iter()
            .flat_map(|c| &c.failures)
            .any(|f| f.signature == signature)
    }
}

/// Set each failure's origin. A failure nothing recognised (`unknown`: a bare non-zero exit) is
/// never pre-existing: there is no telling it is the same failure. Without a baseline every
/// failure counts as introduced, which is the direction that never turns a task green.
pub fn mark_origins(failures: &mut [Failure], base: Option<&Baseline>) {
    for f in failures {
        let pre = f.kind != FailureKind::Unknown && base.is_some_and(|b| b.fails(&f.signature));
        f.origin = Some(if pre {
            Origin::Preexisting
        } else {
            Origin::Introduced
        });
    }
}

/// What the attempt's run of one gate command showed.
#[derive(Debug, Clone, Copy)]
pub struct CommandView<'a> {
    /// The command's exit code, when it exited.
    pub exit_code: Option<i64>,
    /// Whether it ended by exiting (not by a timeout, OOM or cancel).
    pub exited: bool,
    /// Its captured output.
    pub output: &'a str,
    /// The captured log lost its middle to the cap: ids are not compared.
    pub truncated: bool,
}

/// Red flag `tests_not_run` when a command that passed no longer reports tests the base ran.
///
/// Only a command that exited 0 is checked: a failing command is already red, and the tests a
/// failure hides (a collection error hides its whole file) are its consequence, not a cheat.
/// Tests the diff visibly removed are already flagged (`flags`) and not counted again.
pub fn tests_not_run(
    base: &BaseCommand,
    run: CommandView<'_>,
    flags: &[RedFlag],
) -> Option<RedFlag> {
    if !(run.exited && run.exit_code == Some(0) && base.exited) {
        return None;
    }
    let command = base.argv.join(" ");
    let base_ran = base.counts.map(|c| c.passed + c.failed);
    let Some(now) = test_counts(run.output) else {
        return base_ran.filter(|n| *n > 0).map(|n| {
            let detail = format!("`{command}` exited 0 printing no test runner summary; on the base it reported {n} test(s)");
            flag(RedFlagKind::TestsNotRun, &command, None, detail)
        });
    };
    let ids = (!run.truncated)
        .then(|| reported_test_ids(run.output))
        .flatten();
    if let (Some(before), Some(after)) = (&base.test_ids, &ids) {
        return missing_ids(&command, before, after, flags);
    }
    missing_count(&command, base_ran?, now.passed + now.failed, flags)
}

fn removed_files(flags: &[RedFlag]) -> BTreeSet<&str> {
    flags
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                RedFlagKind::TestRemoved | RedFlagKind::TestFileDeleted
            )
        })
        .map(|f| f.file.as_str())
        .collect()
}

fn missing_ids(
    command: &str,
    before: &[String],
    after: &[String],
    flags: &[RedFlag],
) -> Option<RedFlag> {
    let after: BTreeSet<&str> = after.iter().map(String::as_str).collect();
    let removed = removed_files(flags);
    let missing: Vec<&str> = before
        .iter()
        .map(String::as_str)
        .filter(|id| !after.contains(id))
        .filter(|id| {
            !id.split_once("::")
                .is_some_and(|(file, _)| removed.contains(file))
        })
        .collect();
    let first = missing.first()?;
    let file = first.split_once("::").map_or(command, |(f, _)| f);
    let shown: Vec<&str> = missing.iter().take(10).copied().collect();
    let more = missing.len().saturating_sub(shown.len());
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let detail = format!(
        "{} test(s) the base ran are no longer reported by `{command}`: {}{tail}",
        missing.len(),
        shown.join(", ")
    );
    Some(flag(RedFlagKind::TestsNotRun, file, None, detail))
}

fn missing_count(command: &str, before: u64, now: u64, flags: &[RedFlag]) -> Option<RedFlag> {
    if flags.iter().any(|f| f.kind == RedFlagKind::TestFileDeleted) {
        return None; // a deleted file's tests cannot be counted; it is flagged already
    }
    let removed = flags
        .iter()
        .filter(|f| f.kind == RedFlagKind::TestRemoved)
        .count() as u64;
    (now + removed < before).then(|| {
        let detail = format!("`{command}` ran {now} test(s); on the base it ran {before} ({removed} visibly removed)");
        flag(RedFlagKind::TestsNotRun, command, None, detail)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::parse_output;

    fn base(output: &str, exit: i64) -> BaseCommand {
        Baseline::command(
            vec!["pytest".into()],
            Some(exit),
            true,
            output,
            false,
            parse_output(output, exit),
        )
    }

    fn view(output: &str) -> CommandView<'_> {
        CommandView {
            exit_code: Some(0),
            exited: true,
            output,
            truncated: false,
        }
    }

    const RED_BASE: &str = "=== FAILURES ===\n___ test_old ___\n\n    def test_old():\n>       assert 1 == 2\nE       assert 1 == 2\n\ntests/test_a.py:2: AssertionError\n=== short test summary info ===\nFAILED tests/test_a.py::test_old - assert 1 == 2\n1 failed, 3 passed in 0.02s\n";

    #[test]
    fn same_signature_on_the_base_is_preexisting() {
        let b = Baseline {
            commands: vec![base(RED_BASE, 1)],
        };
        let mut now = parse_output(&RED_BASE.replace("3 passed", "4 passed"), 1);
        let other = "=== FAILURES ===\n___ test_new ___\n\n    def test_new():\n>       assert f() == 3\nE       assert 2 == 3\n\ntests/test_b.py:9: AssertionError\n=== 1 failed in 0.01s ===\n";
        now.extend(parse_output(other, 1));
        mark_origins(&mut now, Some(&b));
        let origins: Vec<_> = now.iter().map(|f| f.origin).collect();
        assert_eq!(
            origins,
            [Some(Origin::Preexisting), Some(Origin::Introduced)],
            "{now:?}"
        );
        let mut none = parse_output(RED_BASE, 1);
        mark_origins(&mut none, None);
        assert_eq!(none[0].origin, Some(Origin::Introduced));
    }

    #[test]
    fn a_bare_exit_is_never_preexisting() {
        let b = Baseline {
            commands: vec![base("", 1)],
        };
        let mut now = parse_output("", 1);
        mark_origins(&mut now, Some(&b));
        assert_eq!(now[0].origin, Some(Origin::Introduced));
    }

    #[test]
    fn exit_zero_without_a_summary_is_flagged() {
        let b = base("....\n4 passed in 0.01s\n", 0);
        let f = tests_not_run(&b, view(""), &[]).expect("flag");
        assert_eq!(f.kind, RedFlagKind::TestsNotRun);
        assert!(f.detail.contains("4 test(s)"), "{}", f.detail);
        assert!(tests_not_run(&b, view("....\n4 passed in 0.02s\n"), &[]).is_none());
        assert!(tests_not_run(&b, view(".....\n5 passed in 0.02s\n"), &[]).is_none());
    }

    #[test]
    fn fewer_tests_by_count_or_by_id() {
        let b = base("....\n4 passed in 0.01s\n", 0);
        let f = tests_not_run(&b, view("..\n2 passed in 0.01s\n"), &[]).expect("flag");
        assert!(
            f.detail.contains("ran 2 test(s); on the base it ran 4"),
            "{}",
            f.detail
        );
        let removed = vec![flag(RedFlagKind::TestRemoved, "t.py", Some(1), String::new()); 2];
        assert!(tests_not_run(&b, view("..\n2 passed in 0.01s\n"), &removed).is_none());
        let v =
            "tests/a.py::x PASSED\ntests/a.py::y PASSED\ntests/b.py::z PASSED\n3 passed in 0.1s\n";
        let b = base(v, 0);
        let now =
            "tests/a.py::x PASSED\ntests/b.py::w PASSED\ntests/b.py::v PASSED\n3 passed in 0.1s\n";
        let f = tests_not_run(&b, view(now), &[]).expect("flag");
        assert_eq!(f.file, "tests/a.py");
        assert!(
            f.detail.contains("tests/a.py::y, tests/b.py::z"),
            "{}",
            f.detail
        );
        let deleted = [
            flag(
                RedFlagKind::TestRemoved,
                "tests/a.py",
                Some(2),
                String::new(),
            ),
            flag(
                RedFlagKind::TestFileDeleted,
                "tests/b.py",
                None,
                String::new(),
            ),
        ];
        assert!(tests_not_run(&b, view(now), &deleted).is_none());
    }

    #[test]
    fn a_failing_command_is_not_checked() {
        let b = base("....\n4 passed in 0.01s\n", 0);
        let v = CommandView {
            exit_code: Some(2),
            ..view("")
        };
        assert!(tests_not_run(&b, v, &[]).is_none());
    }
}
