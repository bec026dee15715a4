//! The lifecycle over the recording fake engine ([`super::fake_engine`]): admit, prepare (a real
//! workspace on a real git repository), attempts, judge, export, finish; only the containers are
//! scripted. Each test names the behaviour it pins; the real-engine tests in `tests/` stay the
//! proof of isolation and cleanup.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::fake_engine::{attempt, FakeContainers, Scripted};
use super::{run_task_on, Connect, Progress, RunOptions};
use crate::artifacts::{AttemptVerdict, Summary};
use crate::policy::Trigger;
use crate::sandbox::{ContainerPlan, Ended};
use crate::vocab::{Reason, State};

const FAILED: &str = "F\n=========================== short test summary info ============================\nFAILED tests/test_app.py::test_x - assert 1 == 2\n1 failed in 0.01s\n";
pub(super) const PASSED: &str = "1 passed in 0.01s\n";
const NODE: &str = "tests/test_app.py::test_x";

pub(super) struct World {
    pub tmp: tempfile::TempDir,
    pub repo: PathBuf,
    pub opts: RunOptions,
}

pub(super) fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-euc")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
}

impl World {
    pub fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("src-work");
        std::fs::create_dir_all(work.join("src")).unwrap();
        std::fs::create_dir_all(work.join("tests")).unwrap();
        std::fs::write(work.join("README.md"), "hello\n").unwrap();
        std::fs::write(work.join("src/app.py"), "print('hi')\n").unwrap();
        std::fs::write(
            work.join("tests/test_app.py"),
            "def test_x():\n    assert 1 == 1\n",
        )
        .unwrap();
        sh(&work, "git init -q -b main . && git add -A && git -c user.name=t -c user.email=t@t commit -qm init && git clone -q --bare . ../src.git");
        let policies = tmp.path().join("policies");
        std::fs::create_dir(&policies).unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        for e in std::fs::read_dir(shipped).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), policies.join(e.file_name())).unwrap();
        }
        let op = policies.join("operator.toml");
        let dir = tmp.path().display().to_string();
        let text = std::fs::read_to_string(&op).unwrap().replacen(
            "local_dirs = []",
            &format!("local_dirs = [{dir:?}]"),
            1,
        ) + &format!("\n[[repos]]\nmatch = \"{dir}/**\"\nmax_level = \"L4\"\n");
        std::fs::write(&op, text).unwrap();
        let opts = RunOptions {
            artifacts_root: tmp.path().join("artifacts"),
            state_dir: tmp.path().join("state"),
            keep: false,
            trigger: Trigger::cli(),
            policies: crate::policy::load_dir(&policies).unwrap(),
            session: "unit".into(),
            task_id: None,
            push_gate: None,
        };
        World {
            repo: tmp.path().join("src.git"),
            tmp,
            opts,
        }
    }

    /// An L2 task with a pytest gate and `limits` appended.
    pub fn spec(&self, limits: &str) -> crate::spec::TaskSpec {
        self.spec_at("L2", limits)
    }

    /// A task at `level` with a pytest gate and `limits` appended.
    pub fn spec_at(&self, level: &str, limits: &str) -> crate::spec::TaskSpec {
        let text = format!(
            "title = \"unit\"\nlevel = \"{level}\"\n[repo]\nurl = {:?}\nbase = \"main\"\n[issue]\ntext = \"do it\"\n[agent]\nimage = \"airlock/fake:latest\"\ncommand = [\"agent\"]\n[gate]\nimage = \"airlock/fake:latest\"\ncommands = [[\"python3\", \"-m\", \"pytest\", \"-q\"]]\n[limits]\n{limits}\n",
            self.repo.display().to_string()
        );
        let path = self.tmp.path().join("spec.toml");
        std::fs::write(&path, &text).unwrap();
        crate::spec::parse_str(&text, &path).unwrap()
    }

    pub async fn run(
        &self,
        spec: crate::spec::TaskSpec,
        fake: &Arc<FakeContainers>,
        cancel: CancellationToken,
    ) -> Summary {
        let summary = run_task_on(
            spec,
            &self.opts,
            cancel,
            Progress::silent(),
            Connect::Given(fake.clone()),
        )
        .await
        .unwrap();
        assert_eq!(
            fake.swept(),
            vec![summary.task_id.clone()],
            "the task's containers are swept at the end"
        );
        let tasks = self.opts.state_dir.join("tasks").join(&summary.task_id);
        assert!(!tasks.exists(), "the work dir is torn down");
        let written = self
            .opts
            .artifacts_root
            .join(&summary.task_id)
            .join("summary.json");
        assert!(written.exists(), "summary.json is written");
        summary
    }
}

fn is_rerun(plan: &ContainerPlan) -> bool {
    plan.name.contains(&format!("gate{}-1", attempt(plan))) && plan.argv.iter().any(|a| a == NODE)
}

pub(super) fn edit(ws: &Path, file: &str, text: &str) {
    std::fs::write(ws.join(file), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_failure_is_fed_back_and_the_next_attempt_goes_green() {
    let world = World::new();
    let seen: Arc<Mutex<Option<String>>> = Arc::default();
    let seen_in = seen.clone();
    let fake = FakeContainers::new(move |plan| match (plan.role.as_str(), attempt(plan)) {
        ("agent", 1) => Scripted::ok().effect(|ws, _| edit(ws, "src/app.py", "print(1)\n")),
        ("agent", _) => {
            let seen = seen_in.clone();
            Scripted::ok().effect(move |ws, airlock| {
                *seen.lock().unwrap() = std::fs::read_to_string(airlock.join("feedback.json")).ok();
                edit(ws, "src/app.py", "print(2)\n");
            })
        }
        ("gate", 1) => Scripted::exit(1).output(FAILED),
        ("gate", _) => Scripted::ok().output(PASSED),
        _ => Scripted::ok(),
    });
    let summary = world
        .run(world.spec("attempts = 3"), &fake, CancellationToken::new())
        .await;
    assert_eq!(
        (summary.state, summary.reason),
        (State::Green, Reason::GatePassed)
    );
    let verdicts: Vec<AttemptVerdict> = summary.attempts.iter().map(|a| a.verdict).collect();
    assert_eq!(verdicts, [AttemptVerdict::Retry, AttemptVerdict::Green]);
    let fed = seen
        .lock()
        .unwrap()
        .clone()
        .expect("attempt 2 got /airlock/feedback.json");
    let fed: serde_json::Value = serde_json::from_str(&fed).unwrap();
    assert_eq!(fed["attempt"], 1, "{fed}");
    assert!(fed["failures"].to_string().contains(NODE), "{fed}");
    assert_eq!(fake.role("agent").len(), 2);
    // The failure failed both flaky-check reruns: a real failure, not flaky.
    let reruns = fake.role("gate").iter().filter(|p| is_rerun(p)).count();
    assert_eq!(reruns, 2, "{:#?}", fake.role("gate"));
    assert!(summary.attempts[0].flaky.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_that_passes_on_rerun_is_flaky_not_fed_back() {
    let world = World::new();
    let fake = FakeContainers::new(|plan| match plan.role.as_str() {
        "agent" => Scripted::ok().effect(|ws, _| edit(ws, "src/app.py", "print(1)\n")),
        "gate" if is_rerun(plan) => Scripted::ok().output(PASSED),
        "gate" => Scripted::exit(1).output(FAILED),
        _ => Scripted::ok(),
    });
    let summary = world
        .run(world.spec("attempts = 3"), &fake, CancellationToken::new())
        .await;
    // L2's policy: a gate red only on flaky tests goes to a human, and is not retried.
    assert_eq!(
        (summary.state, summary.reason),
        (State::NeedsHuman, Reason::FlakyGate)
    );
    assert_eq!(summary.attempts.len(), 1, "a flaky gate is not retried");
    let a = &summary.attempts[0];
    assert_eq!(a.flaky.len(), 1, "{:?}", a.flaky);
    assert_eq!(a.flaky[0].test_id.as_deref(), Some(NODE));
    assert!(a.failures.is_empty(), "{:?}", a.failures);
    let gate = fake.role("gate");
    assert_eq!(gate.len(), 2, "one run, one rerun of the failing test only");
    assert!(gate[1].argv.iter().any(|a| a == NODE), "{:?}", gate[1].argv);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_test_is_a_red_flag_that_stops_a_green_gate() {
    let world = World::new();
    let fake = FakeContainers::new(|plan| match plan.role.as_str() {
        "agent" => Scripted::ok().effect(|ws, _| {
            std::fs::remove_file(ws.join("tests/test_app.py")).unwrap();
        }),
        _ => Scripted::ok().output(PASSED),
    });
    let summary = world
        .run(world.spec("attempts = 3"), &fake, CancellationToken::new())
        .await;
    assert_eq!(
        (summary.state, summary.reason),
        (State::NeedsHuman, Reason::RedFlag)
    );
    assert_eq!(summary.attempts.len(), 1, "a red flag is not retried");
    assert_eq!(summary.attempts[0].gate_passed, Some(true));
    let flags = &summary.attempts[0].red_flags;
    assert!(
        flags.iter().any(|f| f.file == "tests/test_app.py"),
        "{flags:?}"
    );
    assert_eq!(summary.paths, vec!["tests/test_app.py".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_never_exits_ends_at_the_task_timeout() {
    let world = World::new();
    let fake = FakeContainers::new(|plan| match plan.role.as_str() {
        "agent" => Scripted::hang(),
        _ => Scripted::ok(),
    });
    let started = Instant::now();
    let summary = world
        .run(
            world.spec("attempts = 3\ntimeout = \"3s\""),
            &fake,
            CancellationToken::new(),
        )
        .await;
    assert_eq!(
        (summary.state, summary.reason),
        (State::NeedsHuman, Reason::Timeout)
    );
    let agent = summary.attempts[0].agent.as_ref().unwrap();
    assert_eq!(agent.ended, Ended::Timeout);
    assert_eq!(summary.attempts.len(), 1);
    assert!(
        fake.role("gate").is_empty(),
        "no gate after a timed-out agent"
    );
    // The fake gives up by itself after 120 s: the runner's deadline must come first.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_the_agent_ends_the_task_cancelled() {
    let world = World::new();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let fake = FakeContainers::new(move |plan| match plan.role.as_str() {
        "agent" => {
            let trigger = trigger.clone();
            Scripted::hang().effect(move |_, _| trigger.cancel())
        }
        _ => Scripted::ok(),
    });
    let summary = world.run(world.spec("attempts = 3"), &fake, cancel).await;
    assert_eq!(
        (summary.state, summary.reason),
        (State::Cancelled, Reason::Cancelled)
    );
    assert_eq!(summary.attempts.len(), 1, "no attempt after a cancel");
    let agent = summary.attempts[0].agent.as_ref().unwrap();
    assert_eq!(agent.ended, Ended::Cancelled);
    assert!(fake.role("gate").is_empty(), "no gate after a cancel");
}

/// Every blocking step (diff, red flags' trees, gate views, branch export, tear-down) runs on
/// the blocking pool: the whole lifecycle works on a current-thread runtime, where
/// `block_in_place` panics.
#[tokio::test(flavor = "current_thread")]
async fn the_lifecycle_runs_on_a_current_thread_runtime() {
    let world = World::new();
    let fake = FakeContainers::new(|plan| match plan.role.as_str() {
        "agent" => Scripted::ok().effect(|ws, _| edit(ws, "src/app.py", "print(1)\n")),
        _ => Scripted::ok().output(PASSED),
    });
    let summary = world
        .run(world.spec("attempts = 2"), &fake, CancellationToken::new())
        .await;
    assert_eq!(
        (summary.state, summary.reason),
        (State::Green, Reason::GatePassed)
    );
    assert_eq!(summary.files_changed, vec!["src/app.py".to_string()]);
    let dir = world.opts.artifacts_root.join(&summary.task_id);
    assert!(summary.commit.is_some(), "L2 exports a branch");
    assert!(dir.join("branch.bundle").exists());
}
