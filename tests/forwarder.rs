//! airlock-forward on the host (no engine needed for this part): signals sent to the forwarder
//! reach the agent it runs, which can stop cleanly and whose exit code the forwarder returns.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// Kills the whole process group (the forwarder and its program) when the test ends, passed
/// or not: a forwarder that died of the signal would leave the program running.
struct Group(Pid);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = killpg(self.0, Signal::SIGKILL);
    }
}

fn forwarder_passes_on(sig: Signal, name: &str) {
    let script =
        format!("trap 'echo got-{name}; exit 7' {name}; echo ready; while :; do sleep 0.05; done");
    let mut child = Command::new(env!("CARGO_BIN_EXE_airlock-forward"))
        .args(["--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(child.id() as i32);
    let _group = Group(pid);
    let (tx, lines) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let wait = Duration::from_secs(10);
    assert_eq!(lines.recv_timeout(wait).as_deref(), Ok("ready"));
    kill(pid, sig).unwrap();
    assert_eq!(
        lines.recv_timeout(wait),
        Ok(format!("got-{name}")),
        "the agent never saw {name}"
    );
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < wait, "the forwarder did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(7), "the agent's own exit code");
}

#[test]
fn sigterm_reaches_the_agent_and_its_exit_code_comes_back() {
    forwarder_passes_on(Signal::SIGTERM, "TERM");
}

#[test]
fn sigint_reaches_the_agent_and_its_exit_code_comes_back() {
    forwarder_passes_on(Signal::SIGINT, "INT");
}
