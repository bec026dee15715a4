//! Red flags in an agent's diff: changes that make a gate green without fixing anything.
//!
//! An agent under pressure to pass tests can delete them, skip them, loosen their assertions,
//! raise their timeouts, silence the linter, rewrite snapshots or reconfigure the gate. Each of
//! those is sometimes legitimate, so flags are evidence for the judge (and a human), not
//! verdicts. Heuristics are tuned against false positives on ordinary work: a test moved from
//! one file to another, or a line only re-indented, is not flagged.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use self::diff::{Change, FileDiff};
use self::testpath::{file_name, is_code_path, is_snapshot_path, is_test_file_name, is_test_path};
mod bidi;
mod config_edits;
pub(crate) mod diff;
mod markers;
mod test_edits;
pub(crate) mod testpath;

/// One suspicious change, citing the file and line (the new file's line number where the line
/// exists there, else the old file's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedFlag {
    /// Which detector fired.
    pub kind: RedFlagKind,
    /// The file the change is in.
    pub file: String,
    /// The line, where the flag is about one line.
    pub line: Option<u32>,
    /// What was seen, one line (neutralised).
    pub detail: String,
    /// Found in the change from the previous attempt, not in the diff from the base (e.g. a
    /// test the agent wrote in attempt 1 and deleted in attempt 2); the line is in that change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub since_previous_attempt: bool,
}

/// The suspicious changes the detectors look for in a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedFlagKind {
    /// A test file was deleted.
    TestFileDeleted,
    /// A test function or case was removed.
    TestRemoved,
    /// An assertion was removed.
    AssertionRemoved,
    /// An assertion was made weaker (the old and new lines are in `detail`).
    AssertionWeakened,
    /// A skip, ignore or xfail marker was added to a test.
    SkipAdded,
    /// A test's timeout was raised.
    TimeoutRaised,
    /// A lint was disabled (an allow, noqa, eslint-disable, ...).
    LintDisabled,
    /// A snapshot file was rewritten.
    SnapshotRewritten,
    /// The gate's own configuration (CI, test runner or linter config) was edited.
    GateConfigEdited,
    /// Tests the base ran that the agent's gate run no longer reports (see `origin`).
    TestsNotRun,
    /// A bidirectional control character (Trojan Source) in an added line or a file name.
    BidiControl,
}

impl RedFlagKind {
    /// Every kind, in declaration order.
    pub const ALL: [RedFlagKind; 11] = [
        RedFlagKind::TestFileDeleted,
        RedFlagKind::TestRemoved,
        RedFlagKind::AssertionRemoved,
        RedFlagKind::AssertionWeakened,
        RedFlagKind::SkipAdded,
        RedFlagKind::TimeoutRaised,
        RedFlagKind::LintDisabled,
        RedFlagKind::SnapshotRewritten,
        RedFlagKind::GateConfigEdited,
        RedFlagKind::TestsNotRun,
        RedFlagKind::BidiControl,
    ];

    /// The kind as `summary.json` and the policy files spell it (`bidi_control`).
    pub fn name(self) -> &'static str {
        match self {
            RedFlagKind::TestFileDeleted => "test_file_deleted",
            RedFlagKind::TestRemoved => "test_removed",
            RedFlagKind::AssertionRemoved => "assertion_removed",
            RedFlagKind::AssertionWeakened => "assertion_weakened",
            RedFlagKind::SkipAdded => "skip_added",
            RedFlagKind::TimeoutRaised => "timeout_raised",
            RedFlagKind::LintDisabled => "lint_disabled",
            RedFlagKind::SnapshotRewritten => "snapshot_rewritten",
            RedFlagKind::GateConfigEdited => "gate_config_edited",
            RedFlagKind::TestsNotRun => "tests_not_run",
            RedFlagKind::BidiControl => "bidi_control",
        }
    }
}

/// Inspect a unified diff (`git diff --binary`) and list its red flags, ordered by file, line.
pub fn red_flags(diff: &str) -> Vec<RedFlag> {
    let files = diff::parse(diff);
    let moved = Moved::new(&files);
    let mut flags = Vec::new();
    for file in &files {
        deleted_test_file(file, &mut flags);
        bidi::bidi_controls(file, &mut flags);
        snapshot_rewritten(file, &mut flags);
        markers::added_markers(file, &moved, &mut flags);
        config_edits::gate_config(file, &mut flags);
        config_edits::timeouts(file, &moved, &mut flags);
    }
    test_edits::removed_tests(&files, &mut flags);
    test_edits::assertions(&files, &moved, &mut flags);
    flags.sort_by(|a, b| (&a.file, a.line, a.kind).cmp(&(&b.file, b.line, b.kind)));
    flags.dedup_by(|a, b| (&a.file, a.line, a.kind) == (&b.file, b.line, b.kind));
    flags
}

pub(crate) fn flag(kind: RedFlagKind, file: &str, line: Option<u32>, detail: String) -> RedFlag {
    RedFlag {
        kind,
        file: file.to_string(),
        line,
        detail,
        since_previous_attempt: false,
    }
}

/// Whitespace-insensitive text of every added and removed line in the diff. A line removed in
/// one place and added in another was moved (or re-indented), not dropped or introduced.
pub(crate) struct Moved {
    added: HashSet<String>,
    removed: HashSet<String>,
}

impl Moved {
    fn new(files: &[FileDiff]) -> Self {
        let mut moved = Moved {
            added: HashSet::new(),
            removed: HashSet::new(),
        };
        for line in files.iter().flat_map(FileDiff::lines) {
            match line.change {
                Change::Added => moved.added.insert(squash(&line.text)),
                Change::Removed => moved.removed.insert(squash(&line.text)),
                Change::Context => false,
            };
        }
        moved
    }

    pub(crate) fn added_elsewhere(&self, removed_text: &str) -> bool {
        self.added.contains(&squash(removed_text))
    }

    pub(crate) fn removed_elsewhere(&self, added_text: &str) -> bool {
        self.removed.contains(&squash(added_text))
    }
}

fn squash(text: &str) -> String {
    text.split_whitespace().collect()
}

/// A test file deleted, or renamed to a name test discovery no longer picks up.
fn deleted_test_file(file: &FileDiff, flags: &mut Vec<RedFlag>) {
    let Some(old) = file.old_path.as_deref() else {
        return;
    };
    if !is_test_path(old) || !is_code_path(old) {
        return;
    }
    let detail = match file.new_path.as_deref() {
        None => format!("test file {old} deleted"),
        Some(new) if renamed_out_of_discovery(old, new) => {
            format!("test file {old} renamed to {new}, which test discovery skips")
        }
        Some(_) => return,
    };
    flags.push(flag(RedFlagKind::TestFileDeleted, old, None, detail));
}

fn renamed_out_of_discovery(old: &str, new: &str) -> bool {
    let by_name = |p: &str| is_test_file_name(file_name(p));
    !is_code_path(new) || (by_name(old) && !by_name(new))
}

/// An existing snapshot changed or deleted; new snapshot files for new tests are fine.
fn snapshot_rewritten(file: &FileDiff, flags: &mut Vec<RedFlag>) {
    let path = file.path();
    if file.added || !is_snapshot_path(path) {
        return;
    }
    let removed = file.lines().filter(|l| l.change == Change::Removed).count();
    let added = file.lines().filter(|l| l.change == Change::Added).count();
    if removed == 0 && !file.deleted && !file.binary {
        return;
    }
    let first = file.lines().find(|l| l.change != Change::Context);
    let verb = if file.deleted { "deleted" } else { "rewritten" };
    let detail = format!("snapshot {verb}: -{removed} +{added} lines");
    flags.push(flag(
        RedFlagKind::SnapshotRewritten,
        path,
        first.and_then(|l| l.cite()),
        detail,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_serialised_names() {
        for k in RedFlagKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.name(), "{k:?}");
        }
    }

    #[test]
    fn a_new_snapshot_is_fine_a_changed_one_is_not() {
        let new =
            "diff --git a/__snapshots__/a.snap b/__snapshots__/a.snap\nnew file mode 100644\n\
                   --- /dev/null\n+++ b/__snapshots__/a.snap\n@@ -0,0 +1 @@\n+x\n";
        assert!(red_flags(new).is_empty());
        let changed = "diff --git a/t/x.snap b/t/x.snap\n--- a/t/x.snap\n+++ b/t/x.snap\n\
                       @@ -1 +1 @@\n-a\n+b\n";
        let flags = red_flags(changed);
        assert_eq!(flags.len(), 1);
        assert_eq!(
            (flags[0].kind, flags[0].line),
            (RedFlagKind::SnapshotRewritten, Some(1))
        );
    }

    #[test]
    fn renaming_a_test_out_of_discovery_counts_as_deletion() {
        let diff = "diff --git a/tests/test_a.py b/tests/test_b.py\nsimilarity index 100%\n\
                    rename from tests/test_a.py\nrename to tests/test_b.py\n";
        assert!(red_flags(diff).is_empty(), "still collected");
        for hidden in ["tests/disabled_a.py", "tests/test_a.py.bak"] {
            let flags = red_flags(&diff.replace("tests/test_b.py", hidden));
            assert_eq!(flags.len(), 1, "{hidden}");
            assert_eq!(flags[0].kind, RedFlagKind::TestFileDeleted);
        }
    }
}
