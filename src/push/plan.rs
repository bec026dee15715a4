//! Whether a finished task pushes, and the one ref it may push. Pure.

use crate::vocab::{Level, Reason, State};

use super::config::Remote;

/// Every branch airlock pushes lives under this prefix.
pub const BRANCH_PREFIX: &str = "agent/";

/// Why a task does not push. `Never` covers everything below L3: no token is minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The level may not push (L0–L2, or a level file with `push = false`).
    Never,
    /// The task did not end green.
    NotGreen,
    /// Nothing changed: there is no branch.
    NoBranch,
    /// `push.toml` pins no remote for this repository.
    NoRemote,
}

impl Skip {
    /// The reason code the skip is recorded under.
    pub fn reason(&self) -> Reason {
        match self {
            Skip::Never => Reason::LevelMayNotPush,
            Skip::NotGreen => Reason::NotGreen,
            Skip::NoBranch => Reason::NoChanges,
            Skip::NoRemote => Reason::NoRemoteConfigured,
        }
    }
}

/// Decide whether to push. Checked in this order so that a level that may not push never even
/// looks at the push configuration.
pub fn decide<'a>(
    level: Level,
    policy_push: bool,
    state: State,
    branch: Option<&str>,
    remote: Option<&'a Remote>,
) -> Result<&'a Remote, Skip> {
    if level < Level::L3 || !policy_push {
        return Err(Skip::Never);
    }
    if state != State::Green {
        return Err(Skip::NotGreen);
    }
    if branch.is_none() {
        return Err(Skip::NoBranch);
    }
    remote.ok_or(Skip::NoRemote)
}

/// `refs/heads/<branch>`, if airlock may push `branch`: under `agent/`, a plain ref name, not
/// the base and matching no protected glob.
pub fn target_ref(branch: &str, base: &str, protected: &[String]) -> Result<String, String> {
    let base = base.strip_prefix("refs/heads/").unwrap_or(base);
    let rest = branch
        .strip_prefix(BRANCH_PREFIX)
        .ok_or_else(|| format!("`{branch}` is not under {BRANCH_PREFIX}"))?;
    let plain = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !rest.starts_with('.')
        && !rest.contains("..")
        && !rest.ends_with(".lock");
    if !plain {
        return Err(format!("`{branch}` is not a plain branch name"));
    }
    if branch == base {
        return Err(format!("`{branch}` is the task's base branch"));
    }
    for p in protected {
        let glob = compile_branch_glob(p)?;
        if glob.is_match(branch) {
            return Err(format!("`{branch}` is protected by `{p}`"));
        }
    }
    Ok(format!("refs/heads/{branch}"))
}

/// A branch glob: `*` stays within one path segment, `**` crosses them.
pub fn compile_branch_glob(p: &str) -> Result<globset::GlobMatcher, String> {
    if p.is_empty() || p.starts_with("refs/") {
        return Err(format!(
            "`{p}` must be a branch name or glob such as main or release/*"
        ));
    }
    globset::GlobBuilder::new(p)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("`{p}` is not a glob: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_agent_branches_that_are_not_base_or_protected() {
        let prot = vec![
            "main".to_string(),
            "release/*".into(),
            "agent/keep-**".into(),
        ];
        assert_eq!(
            target_ref("agent/t1-fix-it", "main", &prot).unwrap(),
            "refs/heads/agent/t1-fix-it"
        );
        for (b, base) in [
            ("main", "dev"),
            ("agent/x", "agent/x"),
            ("agent/x", "refs/heads/agent/x"),
            ("release/1", "main"),
            ("agent/", "main"),
            ("agent/../main", "main"),
            ("agent/a b", "main"),
            ("agent/x:refs/heads/main", "main"),
            ("agent/+main", "main"),
            ("agent/keep-1", "main"),
            ("agent/x.lock", "main"),
        ] {
            assert!(target_ref(b, base, &prot).is_err(), "{b} on {base}");
        }
    }

    #[test]
    fn below_l3_never_reaches_the_remote() {
        let r: Option<&Remote> = None;
        let b = Some("agent/x");
        for l in [Level::L0, Level::L1, Level::L2] {
            assert_eq!(
                decide(l, true, State::Green, b, r).unwrap_err(),
                Skip::Never
            );
        }
        assert_eq!(
            decide(Level::L3, false, State::Green, b, r).unwrap_err(),
            Skip::Never
        );
        assert_eq!(
            decide(Level::L3, true, State::NeedsHuman, b, r).unwrap_err(),
            Skip::NotGreen
        );
        assert_eq!(
            decide(Level::L4, true, State::Green, None, r).unwrap_err(),
            Skip::NoBranch
        );
        assert_eq!(
            decide(Level::L3, true, State::Green, b, r).unwrap_err(),
            Skip::NoRemote
        );
    }

    #[test]
    fn globs_are_checked() {
        assert!(compile_branch_glob("release/*")
            .unwrap()
            .is_match("release/1"));
        assert!(!compile_branch_glob("release/*")
            .unwrap()
            .is_match("release/1/2"));
        assert!(compile_branch_glob("refs/heads/main").is_err());
        assert!(compile_branch_glob("[").is_err());
    }
}
