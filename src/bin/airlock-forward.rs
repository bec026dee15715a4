//! airlock-forward: the sandbox side of model egress. std only, linked statically (see
//! `build.rs`), so it runs in any image, even one without a libc.
//!
//! `airlock-forward --map PORT=SOCKET [--map ...] -- PROGRAM ARGS...`
//!
//! For each map it listens on `127.0.0.1:PORT` inside the container (whose network is `none`:
//! loopback only) and copies bytes both ways between each connection and the unix socket
//! `SOCKET`, which airlock's per-task proxy serves on the host. Then it runs the program and
//! exits with its exit code (128 + signal when it was killed). SIGTERM, SIGINT, SIGHUP and
//! SIGQUIT sent to the forwarder (the engine's stop, via the container's init) are passed on to
//! the program, so the agent gets its chance to stop cleanly. It knows no key, parses no HTTP
//! and can reach nothing but the sockets it was given.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread;

/// The signals passed on to the program.
const FORWARDED: [i32; 4] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT];
const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGQUIT: i32 = 3;
const SIGTERM: i32 = 15;

// The few libc calls signal forwarding needs; the binary is std only (no crates), and std
// links libc anyway. `signal` is glibc's (BSD semantics: the handler stays, calls restart).
extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
    fn kill(pid: i32, sig: i32) -> i32;
}

/// The program's pid once it runs; 0 before.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// A signal not passed on yet (it came before the program ran); 0 when none.
static PENDING: AtomicI32 = AtomicI32::new(0);

/// Async-signal-safe: atomics and `kill`. A signal that comes before the program runs waits in
/// `PENDING` for [`deliver_pending`]; whichever side takes it from there sends it, once.
extern "C" fn pass_on(sig: i32) {
    PENDING.store(sig, Ordering::SeqCst);
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        let sig = PENDING.swap(0, Ordering::SeqCst);
        if sig != 0 {
            // SAFETY: kill is async-signal-safe; pid is our own child (never 0: not the group).
            unsafe { kill(pid, sig) };
        }
    }
}

/// Called once the program runs: pass on a signal that came before.
fn deliver_pending(pid: i32) {
    CHILD.store(pid, Ordering::SeqCst);
    let sig = PENDING.swap(0, Ordering::SeqCst);
    if sig != 0 {
        // SAFETY: plain libc call on our own child.
        unsafe { kill(pid, sig) };
    }
}

fn forward_signals() {
    for s in FORWARDED {
        // SAFETY: installs a handler that only does async-signal-safe work.
        unsafe { signal(s, pass_on as extern "C" fn(i32) as usize) };
    }
}

/// Exit code when the forwarder itself cannot start (as `docker run` uses for its own faults).
const SETUP_FAILED: u8 = 125;

struct Args {
    maps: Vec<(u16, PathBuf)>,
    argv: Vec<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut maps = Vec::new();
    loop {
        match args.next().as_deref() {
            Some("--map") => {
                let m = args.next().ok_or("--map needs PORT=SOCKET")?;
                let (port, sock) = m.split_once('=').ok_or("--map needs PORT=SOCKET")?;
                let port: u16 = port.parse().map_err(|_| format!("bad port in `{m}`"))?;
                maps.push((port, PathBuf::from(sock)));
            }
            Some("--") => break,
            Some(other) => return Err(format!("unknown argument `{other}`")),
            None => return Err("missing `-- PROGRAM ARGS...`".into()),
        }
    }
    let argv: Vec<String> = args.collect();
    if argv.is_empty() {
        return Err("no program given after `--`".into());
    }
    Ok(Args { maps, argv })
}

/// Copy `from` to `to` until EOF, then half-close `to` so the peer sees the end.
fn pump(mut from: impl Read, mut to: impl Write, done: impl FnOnce()) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    done();
}

fn relay(tcp: TcpStream, sock: PathBuf) {
    let Ok(unix) = UnixStream::connect(&sock) else {
        let _ = tcp.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(tcp2), Ok(unix2)) = (tcp.try_clone(), unix.try_clone()) else {
        return;
    };
    let up = thread::spawn(move || {
        pump(&tcp, &unix, || {
            let _ = unix.shutdown(Shutdown::Write);
        })
    });
    pump(&unix2, &tcp2, || {
        let _ = tcp2.shutdown(Shutdown::Write);
    });
    let _ = up.join();
}

fn listen(port: u16, sock: PathBuf) -> Result<(), String> {
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let sock = sock.clone();
            thread::spawn(move || relay(conn, sock));
        }
    });
    Ok(())
}

fn run(args: Args) -> Result<u8, String> {
    for (port, sock) in args.maps {
        listen(port, sock)?;
    }
    forward_signals();
    let mut child = Command::new(&args.argv[0])
        .args(&args.argv[1..])
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", args.argv[0]))?;
    deliver_pending(child.id() as i32);
    let status = child
        .wait()
        .map_err(|e| format!("cannot wait for `{}`: {e}", args.argv[0]))?;
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(s)) => 128u8.wrapping_add(s as u8),
        (None, None) => 1,
    })
}

fn main() -> ExitCode {
    let result = parse(std::env::args().skip(1)).and_then(run);
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("airlock-forward: {e}");
            ExitCode::from(SETUP_FAILED)
        }
    }
}
