//! A test world for pushes: the common `World` (source repo, policies, state, artifacts) plus a
//! git smart-HTTP server serving a copy of the source as `tasks.git` (and `other.git`), and a
//! fixtures dir for providers, keys and canaries, outside everything airlock writes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{ran, Ran, World};

use super::git_server::{GitServer, Grant};
use super::provider::{test_token, Provider};

pub const GATE: &str = "[gate]\ncommands = [[\"sh\", \"-c\", \"sleep 1\"]]";

pub struct PushWorld {
    pub world: World,
    pub git: GitServer,
    pub fixtures: PathBuf,
}

impl PushWorld {
    /// A token provider under `fixtures/provider` whose token (valid half an hour) the git
    /// server grants for `refs/heads/agent/*` of `tasks.git` for an hour: the token and the
    /// provider.
    pub fn granted_provider(&self) -> (String, Provider) {
        let hour = std::time::Duration::from_secs(3600);
        let token = test_token();
        let provider = Provider::new(
            &self.fixtures.join("provider"),
            &token,
            std::time::SystemTime::now() + hour / 2,
        );
        self.git.grant(
            &token,
            Grant {
                repo: "tasks.git".into(),
                expires: std::time::SystemTime::now() + hour,
                ref_prefix: "refs/heads/agent/".into(),
            },
        );
        (token, provider)
    }

    pub fn new() -> PushWorld {
        PushWorld::from_world(World::new())
    }

    pub fn from_world(world: World) -> PushWorld {
        let fixtures = world.tmp.path().join("fixtures");
        std::fs::create_dir_all(&fixtures).unwrap();
        let git = GitServer::start(&fixtures.join("srv"));
        git.add_repo("tasks.git", &world.repo);
        git.add_repo("other.git", &world.repo);
        PushWorld {
            world,
            git,
            fixtures,
        }
    }

    /// Write `policies/push.toml`: one remote for the world's repo, pushing to `tasks.git`.
    pub fn push_toml(&self, token_toml: &str, extra: &str) {
        let text = format!(
            "[[remote]]\nrepo = {:?}\npush_url = {:?}\nprotected = [\"main\", \"release/*\"]\n{token_toml}\n{extra}\n",
            self.world.repo.display().to_string(),
            self.git.url("tasks.git"),
        );
        std::fs::write(self.world.policies.join("push.toml"), text).unwrap();
    }

    /// `airlock run` with extra arguments and environment; the work dir is kept (`--keep`) so
    /// that what it held can be checked.
    pub fn run(&self, spec: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let mut cmd: Command = self.world.command(spec);
        cmd.arg("--keep").args(args).envs(env.iter().copied());
        ran(cmd.output().expect("run airlock"))
    }

    /// `airlock run` of a task writing `<c>.txt` (holding `c`) whose token mint fails: exit 4,
    /// `error` for `token_mint_failed`, the diff exported all the same, nothing sent to the
    /// remote. The run and the summary's message.
    pub fn run_failing_mint(&self, c: &str) -> (Ran, String) {
        let agent = format!("echo {c} > {c}.txt");
        let ran = self.run(
            &self.world.spec("L3", &["sh", "-c", &agent], GATE),
            &[],
            &[],
        );
        assert_eq!(ran.code, 4, "{}", ran.stderr);
        assert_eq!(
            ran.state_reason(),
            ("error".into(), "token_mint_failed".into())
        );
        assert!(self
            .world
            .artifact(&ran, "diff.patch")
            .contains(&format!("+{c}")));
        assert_eq!(self.git.requests(), 0, "something talked to the remote");
        let msg = ran.summary()["message"].as_str().unwrap().to_string();
        (ran, msg)
    }

    pub fn artifacts_of(&self, ran: &Ran) -> PathBuf {
        self.world.artifacts.join(ran.task_id())
    }

    /// The kept work dir of a task, then removed (with its mounts) so that nothing remains.
    pub fn cleanup(&self, ran: &Ran) {
        let work = self.world.state.join("tasks").join(ran.task_id());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut targets: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&*work.to_string_lossy()))
            .collect();
        targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
        for t in targets {
            let _ = Command::new("umount").arg("-l").arg(t).status();
        }
        let _ = std::fs::remove_dir_all(&work);
    }
}
