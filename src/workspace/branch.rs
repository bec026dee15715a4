//! The task's local branch: a commit of the diffed tree on top of the base, exported as a git
//! bundle (L2+). Written to a throwaway repo so the shared mirror never gets the agent's refs.

use std::path::Path;

use super::git::{args, git, run};
use super::{Workspace, WorkspaceError};

/// Author and committer of every commit airlock makes.
pub const AUTHOR_NAME: &str = "airlock agent";
pub const AUTHOR_EMAIL: &str = "airlock-agent@localhost";

impl Workspace {
    /// Commit the last diffed tree as `branch` and write `bundle` holding base..branch.
    /// Returns the commit id. Call after [`Workspace::diff`].
    pub fn export_branch(
        &self,
        branch: &str,
        message: &str,
        bundle: &Path,
    ) -> Result<String, WorkspaceError> {
        self.export_branch_on(branch, message, bundle, None)
    }

    /// [`Workspace::export_branch`], the commit's parent being `parent` (a commit this
    /// workspace exported before, so that a follow-up push is a fast-forward) instead of the
    /// base.
    pub fn export_branch_on(
        &self,
        branch: &str,
        message: &str,
        bundle: &Path,
        parent: Option<&str>,
    ) -> Result<String, WorkspaceError> {
        let tree = self.last_tree()?;
        let parent = parent.unwrap_or(&self.base_commit);
        let mut commit = args(
            git(&self.git_dir),
            ["commit-tree", &tree, "-p", parent, "-m", message],
        );
        self.objects_env(&mut commit);
        for (k, v) in [
            ("GIT_AUTHOR_NAME", AUTHOR_NAME),
            ("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL),
            ("GIT_COMMITTER_NAME", AUTHOR_NAME),
            ("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL),
        ] {
            commit.env(k, v);
        }
        let commit = text(run(commit, "commit-tree")?.stdout);
        let repo = self.root.join("branch.git");
        let _ = std::fs::remove_dir_all(&repo);
        let mut init = args(
            super::git::git_no_dir(),
            ["init", "--quiet", "--bare", "--template="],
        );
        init.arg(&repo);
        run(init, "init")?;
        let alternates = format!(
            "{}\n{}\n",
            self.objects.display(),
            self.git_dir.join("objects").display()
        );
        std::fs::create_dir_all(repo.join("objects/info"))
            .map_err(WorkspaceError::io("create dir", &repo))?;
        std::fs::write(repo.join("objects/info/alternates"), alternates)
            .map_err(WorkspaceError::io("write", &repo))?;
        let refname = format!("refs/heads/{branch}");
        run(
            args(git(&repo), ["update-ref", &refname, &commit]),
            "update-ref",
        )?;
        let base_excl = format!("^{}", self.base_commit);
        let mut b = args(git(&repo), ["bundle", "create", "--quiet"]);
        b.arg(bundle).args([refname.as_str(), base_excl.as_str()]);
        run(b, "bundle create")?;
        Ok(commit)
    }

    /// The tree of the last diffed work tree (the base tree when nothing could change).
    pub fn last_tree(&self) -> Result<String, WorkspaceError> {
        let index = self.root.join("diff.index");
        if !index.exists() {
            let spec = format!("{}^{{tree}}", self.base_commit);
            return Ok(text(
                run(
                    args(git(&self.git_dir), ["rev-parse", "--verify", &spec]),
                    "rev-parse",
                )?
                .stdout,
            ));
        }
        let mut tree = args(git(&self.git_dir), ["write-tree"]);
        self.objects_env(&mut tree).env("GIT_INDEX_FILE", &index);
        Ok(text(run(tree, "write-tree")?.stdout))
    }

    /// `git diff --binary` between two trees (e.g. two attempts' results).
    pub fn diff_trees(&self, from: &str, to: &str) -> Result<Vec<u8>, WorkspaceError> {
        let mut cmd = args(
            git(&self.git_dir),
            [
                "diff",
                "--binary",
                "--no-ext-diff",
                "--no-textconv",
                "-M",
                "--no-color",
                from,
                to,
                "--",
            ],
        );
        self.objects_env(&mut cmd);
        Ok(run(cmd, "diff trees")?.stdout)
    }

    fn objects_env<'a>(&self, cmd: &'a mut std::process::Command) -> &'a mut std::process::Command {
        cmd.env("GIT_OBJECT_DIRECTORY", &self.objects).env(
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            self.git_dir.join("objects"),
        )
    }
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).trim().to_string()
}
